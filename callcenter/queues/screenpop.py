"""The screen-pop: what an agent sees of a queue call when it is offered and answered.

Asterisk's ``AgentCalled`` names the member and the caller's channel; the IVR left its
account on that channel (``IVR_PATH``, ``IVR_LANGUAGE``, ``IVR_TICKET``, ``IVR_VERIFIED``,
see ``ivr/runner.py``), read with ``Getvar`` before anything is shown. The call is stored
(one row per agent, ``ScreenPop``) before it is published on ``queues.screen_pop.<agent_id>``,
so ``GET /api/v1/agents/me/call`` in any process shows what the websocket showed.

A call passed on to an agent's phone by another agent (a blind transfer to an extension, or
an attended transfer's consultation: a ``Dial`` of ``PJSIP/<ext>`` in the same call) pops up
too, with the same facts and the name of the agent who passed it on; it is answered and
ended by that dial and by its channel's hang-up, as no queue reports on it.

What a reader sees is decided per reader: the calling number and name as the privacy policy
lets the role see them (every unmasked read audited), and the caller's tickets found by the
calling number, open ones first, with numbers typed into titles masked unless the role may
read them.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.auth.models import User
from callcenter.auth.principal import Principal
from callcenter.auth.privacy import PiiPolicy, record_access
from callcenter.auth.users import principal_for
from callcenter.clock import Clock
from callcenter.pii import mask_numbers
from callcenter.queues.agent_state import IN_USE, RINGING
from callcenter.queues.models import Agent, ScreenPop
from callcenter.telephony import events as ev
from callcenter.tickets.models import Ticket, TicketStatus

log = logging.getLogger(__name__)

TOPIC = "queues.screen_pop.{agent_id}"
IVR_VARIABLES = ("IVR_PATH", "IVR_LANGUAGE", "IVR_TICKET", "IVR_VERIFIED")
VERIFIED = frozenset({"caller", "pin"})
"""``IVR_VERIFIED`` outcomes that prove the caller holds the ticket (ivr/models.py)."""
FINISHED = frozenset({TicketStatus.CLOSED, TicketStatus.ARCHIVED, TicketStatus.NOT_ACCEPTED,
                      TicketStatus.MERGED})
LIVE = ("offered", "answered")
OPEN_LIMIT, EARLIER_LIMIT = 20, 10
FOLLOWED_CALLS = 10_000
NEED = "view"
"""The privacy need of a screen-pop: the same as reading a ticket's caller."""


@dataclass(frozen=True, slots=True)
class Ended:
    """Which pops a call's end closes: one agent's (``interface``) or every offered one."""

    linkedid: str
    at: datetime
    interface: str | None = None
    phases: tuple[str, ...] = LIVE


class ScreenPops:
    """Stores the agents' current queue calls and renders them for one reader."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], clock: Clock,
                 policy: PiiPolicy) -> None:
        self.sessionmaker = sessionmaker
        self.clock = clock
        self.policy = policy

    # -- writes (telephony role, in event order) ------------------------------------------

    async def offered(self, event: ev.AgentCalled, ivr: dict[str, str | None]) -> int | None:
        """The agent's new current call (replacing the last one); None: not our agent."""
        async with self.sessionmaker() as session, session.begin():
            agent_id = await session.scalar(select(Agent.id).where(
                Agent.interface == event.interface))
            if agent_id is None:
                return None
            pop = await session.get(ScreenPop, agent_id)
            if pop is None:
                pop = ScreenPop(agent_id=agent_id)
                session.add(pop)
            pop.linkedid, pop.queue, pop.phase = event.linkedid, event.queue, "offered"
            pop.caller_channel, pop.agent_channel = event.channel, event.dest_channel
            pop.caller_number = _known(event.caller_num)
            pop.caller_name = _known(event.caller_name)
            pop.offered_at, pop.answered_at, pop.ended_at = event.at, None, None
            pop.ivr_path, pop.ivr_language = ivr.get("IVR_PATH"), ivr.get("IVR_LANGUAGE")
            pop.ivr_ticket, pop.ivr_verified = ivr.get("IVR_TICKET"), ivr.get("IVR_VERIFIED")
        return agent_id

    async def answered(self, event: ev.AgentConnected) -> tuple[int | None, list[int]]:
        """The answering agent's pop, and the other agents rung for the call (now ended)."""
        async with self.sessionmaker() as session, session.begin():
            agent_id = await session.scalar(select(Agent.id).where(
                Agent.interface == event.interface))
            if agent_id is not None:
                await session.execute(update(ScreenPop).where(
                    ScreenPop.agent_id == agent_id, ScreenPop.linkedid == event.linkedid)
                    .values(phase="answered", answered_at=event.at,
                            agent_channel=event.dest_channel or ScreenPop.agent_channel))
            others = await self._end(session, Ended(event.linkedid, event.at,
                                                    phases=("offered",)), exclude=agent_id)
        return agent_id, others

    async def transferred(self, event: ev.DialBegan) -> int | None:
        """A dial of an agent's phone in a call another agent had; None: not a transfer
        (no agent on that phone, no earlier pop of the call, or the queue's own offer)."""
        interface = event.dest_channel.rpartition("-")[0]
        async with self.sessionmaker() as session, session.begin():
            agent = await session.scalar(select(Agent).where(Agent.interface == interface))
            if agent is None:
                return None
            row = (await session.execute(
                select(ScreenPop, Agent.member_name).join(Agent, Agent.id == ScreenPop.agent_id)
                .where(ScreenPop.linkedid == event.linkedid, ScreenPop.agent_id != agent.id)
                .order_by(ScreenPop.offered_at.desc()).limit(1))).first()
            pop = await session.get(ScreenPop, agent.id)
            if row is None or (pop is not None and pop.linkedid == event.linkedid
                               and pop.phase in LIVE):
                return None
            source, by = row
            if pop is None:
                pop = ScreenPop(agent_id=agent.id)
                session.add(pop)
            for name in ("linkedid", "queue", "caller_channel", "caller_number", "caller_name",
                         "ivr_path", "ivr_language", "ivr_ticket", "ivr_verified"):
                setattr(pop, name, getattr(source, name))
            pop.phase, pop.agent_channel, pop.transferred_by = "offered", event.dest_channel, by
            pop.offered_at, pop.answered_at, pop.ended_at = event.at, None, None
        return agent.id

    async def transfer_dialed(self, event: ev.DialEnded) -> list[int]:
        """The dial of a transferred call ended: answered, or not (busy, no answer, ...)."""
        if event.dial_status == "ANSWER":
            return await self._move_transfer(event.dest_channel, ("offered",),
                                             phase="answered", answered_at=event.at)
        return await self._move_transfer(event.dest_channel, ("offered",), phase="ended",
                                         ended_at=event.at)

    async def transfer_hung_up(self, event: ev.ChannelHungUp) -> list[int]:
        return await self._move_transfer(event.channel, LIVE, phase="ended", ended_at=event.at)

    async def _move_transfer(self, channel: str, phases: tuple[str, ...], **values: Any
                             ) -> list[int]:
        """Set ``values`` on the transferred calls' pops of ``channel`` in ``phases``."""
        async with self.sessionmaker() as session, session.begin():
            pops = list(await session.scalars(select(ScreenPop).where(
                ScreenPop.agent_channel == channel, ScreenPop.phase.in_(phases),
                ScreenPop.transferred_by.is_not(None))))
            for pop in pops:
                for name, value in values.items():
                    setattr(pop, name, value)
            return [pop.agent_id for pop in pops]

    async def live_calls(self) -> list[str]:
        """The calls with a live pop (a restarted listener still follows their transfers)."""
        async with self.sessionmaker() as session:
            return list(await session.scalars(select(ScreenPop.linkedid).where(
                ScreenPop.phase.in_(LIVE))))

    async def ended(self, end: Ended) -> list[int]:
        async with self.sessionmaker() as session, session.begin():
            return await self._end(session, end)

    async def _end(self, session: AsyncSession, end: Ended, exclude: int | None = None
                   ) -> list[int]:
        query = select(ScreenPop).where(ScreenPop.linkedid == end.linkedid,
                                        ScreenPop.phase.in_(end.phases))
        if end.interface is not None:
            query = query.join(Agent, Agent.id == ScreenPop.agent_id).where(
                Agent.interface == end.interface)
        ended = []
        for pop in await session.scalars(query):
            if pop.agent_id != exclude:
                pop.phase, pop.ended_at = "ended", end.at
                ended.append(pop.agent_id)
        return ended

    async def settle(self, members: tuple[dict[str, str], ...], at: datetime) -> list[int]:
        """After a (re)connect: live pops of agents whose phone Asterisk shows idle ended
        while the service was away."""
        busy = {m.get("Location") or m.get("Interface") for m in members
                if _int(m.get("Status")) in IN_USE | {RINGING} or m.get("InCall") == "1"}
        async with self.sessionmaker() as session, session.begin():
            rows = (await session.execute(select(ScreenPop, Agent.interface).join(
                Agent, Agent.id == ScreenPop.agent_id).where(ScreenPop.phase.in_(LIVE)))).all()
            ended = []
            for pop, interface in rows:
                if interface not in busy:
                    pop.phase, pop.ended_at = "ended", at
                    ended.append(pop.agent_id)
            return ended

    # -- reads ------------------------------------------------------------------------------

    async def current(self, session: AsyncSession, agent: Agent) -> ScreenPop | None:
        """The call being offered or talked; after it, the answered call while the agent
        is in its after-call work (to write the ticket up); otherwise None."""
        pop = await session.get(ScreenPop, agent.id)
        if pop is None:
            return None
        if pop.phase in LIVE:
            return pop
        wrapping_up = agent.state == "after_call_work" and agent.state_linkedid == pop.linkedid
        return pop if pop.answered_at is not None and wrapping_up else None

    async def render(self, session: AsyncSession, pop: ScreenPop, principal: Principal, *,
                     ip: str | None = None) -> dict[str, Any]:
        """``pop`` as ``principal`` may see it; unmasked caller fields are audited."""
        shown, revealed = self.policy.view(
            principal, {"name": pop.caller_name, "phone": pop.caller_number}, need=NEED)
        numbers = "phone" in self.policy.allowed_fields(principal, need=NEED)
        if revealed:
            await record_access(session, principal, action="call.screen_pop",
                                object_type="call", object_id=pop.linkedid, fields=revealed,
                                ip=ip, clock=self.clock)
        open_, earlier = await self._tickets(session, pop.caller_number, numbers)
        return {
            "agent_id": pop.agent_id, "linkedid": pop.linkedid, "queue": pop.queue,
            "transferred_by": pop.transferred_by, "phase": pop.phase,
            "offered_at": _iso(pop.offered_at), "answered_at": _iso(pop.answered_at),
            "ended_at": _iso(pop.ended_at),
            "caller": {"number": shown.get("phone"), "name": shown.get("name"),
                       "masked": "phone" not in revealed},
            "ivr": {"path": pop.ivr_path, "language": pop.ivr_language,
                    "ticket": pop.ivr_ticket, "verification": pop.ivr_verified,
                    "verified": pop.ivr_verified in VERIFIED},
            "open_tickets": open_, "earlier_tickets": earlier,
        }

    async def _tickets(self, session: AsyncSession, number: str | None, numbers: bool
                       ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The caller's open tickets (all, up to 20) and the newest 10 finished ones."""
        if not number or not number.strip("+").isdigit():
            return [], []
        mine = select(Ticket).where(Ticket.caller_phone == number)
        finished = Ticket.status.in_([str(s) for s in FINISHED])
        newest = (Ticket.created_at.desc(), Ticket.id.desc())
        open_ = await session.scalars(mine.where(~finished).order_by(*newest).limit(OPEN_LIMIT))
        earlier = await session.scalars(mine.where(finished).order_by(*newest)
                                        .limit(EARLIER_LIMIT))
        return ([_ticket(t, numbers) for t in open_], [_ticket(t, numbers) for t in earlier])

    async def principal_of(self, session: AsyncSession, agent_id: int) -> Principal | None:
        user = await session.scalar(select(User).join(Agent, Agent.user_id == User.id)
                                    .where(Agent.id == agent_id))
        return None if user is None else principal_for(user)


class ScreenPopListener:
    """Telephony listener: stores each pop, then publishes it rendered for its agent.
    ``commands`` reads the IVR's variables (None: the pop shows no IVR facts)."""

    def __init__(self, pops: ScreenPops, bus: Any, commands: Any = None, *,
                 getvar_timeout: float = 2.0) -> None:
        self.pops = pops
        self.bus = bus
        self.commands = commands
        self.getvar_timeout = getvar_timeout
        self._events: asyncio.Queue[Any] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._calls: dict[str, None] = {}
        """Calls offered to an agent lately (oldest first): only their dials and hang-ups
        can be transfers, so every other call's events are dropped at once."""

    async def start(self) -> None:
        for linkedid in await self.pops.live_calls():
            self._follow(linkedid)
        self._worker = asyncio.create_task(self._work(), name="queues-screen-pop")

    async def stop(self) -> None:
        if self._worker is not None:
            await self.flush()
            self._worker.cancel()
            self._worker = None

    async def flush(self) -> None:
        """Wait until every event seen so far is stored and published."""
        await self._events.join()

    def __call__(self, event: Any) -> None:
        if isinstance(event, ev.AgentCalled | ev.AgentConnected | ev.AgentRingNoAnswer |
                      ev.AgentCompleted | ev.QueueCallerAbandoned | ev.QueuesSnapshot):
            if isinstance(event, ev.AgentCalled):
                self._follow(event.linkedid)
            self._events.put_nowait(event)
        elif (isinstance(event, ev.DialBegan | ev.DialEnded | ev.ChannelHungUp)
              and event.linkedid in self._calls):
            self._events.put_nowait(event)

    def _follow(self, linkedid: str) -> None:
        self._calls[linkedid] = None
        if len(self._calls) > FOLLOWED_CALLS:
            del self._calls[next(iter(self._calls))]

    async def _work(self) -> None:
        while True:
            event = await self._events.get()
            try:
                await self._handle(event)
            except Exception:  # noqa: BLE001 - one bad pop must not stop the next
                log.exception("queues.screen_pop_failed event=%s", type(event).__name__)
            finally:
                self._events.task_done()

    async def _handle(self, event: Any) -> None:
        pops = self.pops
        if isinstance(event, ev.AgentCalled):
            agent_id = await pops.offered(event, await self._ivr(event.channel))
            changed = [] if agent_id is None else [agent_id]
        elif isinstance(event, ev.AgentConnected):
            agent_id, changed = await pops.answered(event)
            changed = ([] if agent_id is None else [agent_id]) + changed
        elif isinstance(event, ev.AgentRingNoAnswer):
            changed = await pops.ended(Ended(event.linkedid, event.at, event.interface,
                                             ("offered",)))
        elif isinstance(event, ev.AgentCompleted):
            changed = await pops.ended(Ended(event.linkedid, event.at, event.interface))
        elif isinstance(event, ev.QueueCallerAbandoned):
            changed = await pops.ended(Ended(event.linkedid, event.at, phases=("offered",)))
        elif isinstance(event, ev.DialBegan):
            agent_id = (await pops.transferred(event)
                        if event.dest_channel.startswith("PJSIP/") else None)
            changed = [] if agent_id is None else [agent_id]
        elif isinstance(event, ev.DialEnded):
            changed = await pops.transfer_dialed(event)
        elif isinstance(event, ev.ChannelHungUp):
            changed = await pops.transfer_hung_up(event)
        else:
            changed = await pops.settle(event.members, event.at)
        for agent_id in changed:
            await self._publish(agent_id)

    async def _ivr(self, channel: str) -> dict[str, str | None]:
        """The IVR's variables on the caller's channel (unset or unreadable: None)."""
        if self.commands is None:
            return {}

        async def one(name: str) -> str | None:
            try:
                value = await self.commands.getvar(channel, name,
                                                   timeout=self.getvar_timeout)
            except Exception as exc:  # noqa: BLE001 - a pop without IVR facts beats none
                log.warning("queues.screen_pop_getvar_failed var=%s error=%r", name, exc)
                return None
            return value or None

        values = await asyncio.gather(*(one(name) for name in IVR_VARIABLES))
        return dict(zip(IVR_VARIABLES, values, strict=True))

    async def _publish(self, agent_id: int) -> None:
        async with self.pops.sessionmaker() as session, session.begin():
            pop = await session.get(ScreenPop, agent_id)
            principal = await self.pops.principal_of(session, agent_id)
            if pop is None or principal is None:
                return
            payload = await self.pops.render(session, pop, principal)
        if self.bus is not None:
            await self.bus.publish(TOPIC.format(agent_id=agent_id), payload)
        log.info("queues.screen_pop agent=%s linkedid=%s phase=%s", agent_id, pop.linkedid,
                 pop.phase)


def _ticket(ticket: Ticket, numbers: bool) -> dict[str, Any]:
    title = ticket.title if numbers or not ticket.title else mask_numbers(ticket.title)
    return {"id": ticket.id, "number": ticket.number, "status": ticket.status,
            "topic": ticket.topic, "title": title, "created_at": _iso(ticket.created_at)}


def _known(value: str | None) -> str | None:
    """Asterisk writes ``<unknown>`` for a missing caller ID."""
    return None if not value or value == "<unknown>" else value


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0
