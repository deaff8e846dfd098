"""Call control from the agent desk: the agent's own answered queue call, through AMI.

The call is the agent's screen-pop row (``ScreenPop``: answered, with the agent's channel
from ``AgentConnect``), so an agent can only act on the call Asterisk connected to its own
phone. The actions are Asterisk's own, as the captures show them:
- hang up: ``Hangup`` of the agent's channel (the caller is hung up too, as when the phone
  hangs up; app_queue reports ``AgentComplete``);
- blind transfer: ``BlindTransfer`` of the agent's channel (captures/blind_transfer): the
  caller goes to a queue (``[queue-transfer]`` in extensions.conf, by queue name) or to an
  agent's phone (``[agents]``, by extension); app_queue reports ``AgentComplete`` with
  Reason transfer and the call log records the ``BlindTransfer``. A ``Redirect`` of the
  caller would move it too, but app_queue would report it as the caller's hang-up, later,
  with the talk time of the new call (PROTOCOL.md), and no transfer would be recorded.
- attended transfer: ``Setvar TRANSFER_EXTEN`` then ``Atxfer`` of the agent's channel
  (captures/attended_transfer): the caller is held, the agent talks to the target first.
  Without ``TRANSFER_EXTEN`` the target digits that ``Atxfer`` queues are eaten by the
  feature's prompt and nothing is transferred (captures/attended_transfer_dtmf_only). The
  agent completes it by leaving (``Hangup`` of its channel: ``AttendedTransfer``, then
  ``AgentComplete`` with Reason transfer) or cancels it by hanging up the consultation
  (the ``;1`` half of the ``Local`` channel ``Atxfer`` made): the caller comes back.

Nothing changes in the database here: Asterisk's events move the agent's state and end the
screen-pop. Each action is audited before it is sent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.auth.principal import Principal
from callcenter.auth.privacy import record_access
from callcenter.clock import Clock
from callcenter.queues.config import QueuesConfig
from callcenter.queues.errors import NotAllowed, QueueError
from callcenter.queues.models import ScreenPop
from callcenter.queues.service import _asterisk, _need

log = logging.getLogger(__name__)

TRANSFER_CONTEXT = "queue-transfer"
"""extensions.conf context that queues the caller in the queue named by the extension."""
AGENTS_CONTEXT = "agents"
"""extensions.conf context that rings an agent's phone by extension."""


class NoCall(QueueError):
    """The agent has no answered queue call to act on."""

    status = 409
    code = "no_call"


@dataclass(frozen=True, slots=True)
class Target:
    """Where a transfer sends the caller: a queue, or an agent's extension."""

    queue: str | None = None
    extension: str | None = None

    def dialplan(self, config: QueuesConfig, own_extension: str) -> tuple[str, str]:
        """``(context, exten)`` for Asterisk; refuses unknown queues and the agent itself."""
        if (self.queue is None) == (self.extension is None):
            raise NotAllowed("give either a queue or an extension", field="queue")
        if self.queue is not None:
            if self.queue not in config.queue_names:
                raise NotAllowed(f"no queue {self.queue!r} (queues: "
                                 f"{', '.join(config.queue_names)})", field="queue")
            return TRANSFER_CONTEXT, self.queue
        assert self.extension is not None
        if self.extension == own_extension:
            raise NotAllowed("that is your own phone", field="extension")
        return AGENTS_CONTEXT, self.extension

    def label(self) -> str:
        return f"queue:{self.queue}" if self.queue else f"extension:{self.extension}"


def _consultation_context(name: str) -> bool:
    """``Local/1002@agents-00000003;1``: a call to an agent's phone or into a queue."""
    context = name.partition("@")[2].rpartition("-")[0]
    return context in (AGENTS_CONTEXT, TRANSFER_CONTEXT)


class CallControl:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], clock: Clock,
                 config: QueuesConfig) -> None:
        self.sessionmaker = sessionmaker
        self.clock = clock
        self.config = config

    async def answered_call(self, session: AsyncSession, agent_id: int) -> ScreenPop:
        pop = await session.get(ScreenPop, agent_id)
        if pop is None or pop.phase != "answered":
            raise NoCall("you have no answered queue call")
        return pop

    async def hangup(self, commands: Any, principal: Principal, agent_id: int,
                     ip: str | None = None) -> ScreenPop:
        """Hang up the agent's phone leg of its call (the caller's ends with it)."""
        _need(commands)
        pop = await self._audited(principal, agent_id, "call.hangup", [], ip)
        await _asterisk(commands.hangup(pop.agent_channel))
        log.info("queues.call_hangup agent=%s linkedid=%s", agent_id, pop.linkedid)
        return pop

    async def blind_transfer(self, commands: Any, principal: Principal, agent_id: int,
                             target: Target, own_extension: str, ip: str | None = None
                             ) -> ScreenPop:
        """Send the caller to ``target`` and drop the agent's leg (``BlindTransfer``)."""
        _need(commands)
        context, exten = target.dialplan(self.config, own_extension)
        pop = await self._audited(principal, agent_id, "call.blind_transfer",
                                  [target.label()], ip)
        await _asterisk(commands.blind_transfer(pop.agent_channel, context, exten))
        log.info("queues.call_blind_transfer agent=%s linkedid=%s to=%s@%s", agent_id,
                 pop.linkedid, exten, context)
        return pop

    async def attended_transfer(self, commands: Any, principal: Principal, agent_id: int,
                                target: Target, own_extension: str, ip: str | None = None
                                ) -> ScreenPop:
        """Hold the caller and call ``target`` from the agent's phone (consultation)."""
        _need(commands)
        context, exten = target.dialplan(self.config, own_extension)
        pop = await self._audited(principal, agent_id, "call.attended_transfer",
                                  [target.label()], ip)
        await _asterisk(commands.setvar(pop.agent_channel, "TRANSFER_EXTEN", exten))
        await _asterisk(commands.atxfer(pop.agent_channel, context, exten))
        log.info("queues.call_attended_transfer agent=%s linkedid=%s to=%s@%s", agent_id,
                 pop.linkedid, exten, context)
        return pop

    async def complete_transfer(self, commands: Any, principal: Principal, agent_id: int,
                                ip: str | None = None) -> ScreenPop:
        """The agent leaves: the caller and the consultation's target are joined."""
        _need(commands)
        pop = await self._audited(principal, agent_id, "call.attended_transfer_complete",
                                  [], ip)
        if await self._consultation(commands, pop) is None:
            raise NoCall("no transfer is in progress on your call")
        await _asterisk(commands.hangup(pop.agent_channel))
        log.info("queues.call_transfer_completed agent=%s linkedid=%s", agent_id, pop.linkedid)
        return pop

    async def cancel_transfer(self, commands: Any, principal: Principal, agent_id: int,
                              ip: str | None = None) -> ScreenPop:
        """End the consultation: the agent is back with the caller."""
        _need(commands)
        pop = await self._audited(principal, agent_id, "call.attended_transfer_cancel", [], ip)
        consultation = await self._consultation(commands, pop)
        if consultation is None:
            raise NoCall("no transfer is in progress on your call")
        await _asterisk(commands.hangup(consultation))
        log.info("queues.call_transfer_cancelled agent=%s linkedid=%s", agent_id, pop.linkedid)
        return pop

    @staticmethod
    async def _consultation(commands: Any, pop: ScreenPop) -> str | None:
        """The consultation's ``Local/<exten>@<context>-…;1`` of this call, as Asterisk lists
        it now (nothing kept here: a restart of either side cannot leave it stale)."""
        channels = await _asterisk(commands.core_show_channels()) or []
        for channel in channels:
            name = channel.get("Channel", "")
            if (channel.get("Linkedid") == pop.linkedid and name.startswith("Local/")
                    and name.endswith(";1") and _consultation_context(name)):
                return name
        return None

    async def _audited(self, principal: Principal, agent_id: int, action: str,
                       fields: list[str], ip: str | None) -> ScreenPop:
        """The answered call, with the action in the audit log (written before it is sent:
        an attempt Asterisk refuses is still on record)."""
        async with self.sessionmaker(expire_on_commit=False) as session, session.begin():
            pop = await self.answered_call(session, agent_id)
            await record_access(session, principal, action=action, object_type="call",
                                object_id=pop.linkedid, fields=fields, ip=ip,
                                clock=self.clock)
        return pop
