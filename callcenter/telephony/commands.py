"""The command port: typed AMI actions for the rest of the project.

Every method has a timeout and either returns a result or raises ``AmiActionError`` (with
Asterisk's message), ``AmiTimeout`` or ``AmiNotConnected``. Nothing is queued while
disconnected and nothing is re-sent after a reconnect: an ``Originate`` is dialled at most once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from panoramisk.message import Message

from callcenter.telephony.ami import AmiClient
from callcenter.telephony.errors import AmiActionError
from callcenter.telephony.events import ORIGINATE_OUTCOMES

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OriginateOutcome:
    """Result of an Originate: ``outcome`` is answered, busy, no_answer, congestion or failed
    (from the ``OriginateResponse`` Reason; a synchronous Originate only returns answered)."""

    action_id: str
    success: bool
    outcome: str
    reason: int
    channel: str
    uniqueid: str

    @property
    def answered(self) -> bool:
        return self.outcome == "answered"


class CommandPort:
    """Typed AMI actions over an ``AmiClient``."""

    def __init__(self, client: AmiClient, default_timeout: float | None = None) -> None:
        self._client = client
        self._timeout = default_timeout

    def _t(self, timeout: float | None) -> float | None:
        return timeout if timeout is not None else self._timeout

    async def action(self, name: str, headers: Mapping[str, Any] | None = None, *,
                     timeout: float | None = None) -> Message:
        """Escape hatch for actions without a typed method (single reply)."""
        return await self._client.action(name, headers, timeout=self._t(timeout))

    async def list_action(self, name: str, headers: Mapping[str, Any] | None = None, *,
                          timeout: float | None = None) -> list[Message]:
        """Escape hatch for list actions; always a list."""
        return await self._client.list_action(name, headers, timeout=self._t(timeout))

    # -- calls -----------------------------------------------------------------------------

    async def originate(self, channel: str, *, context: str | None = None,
                        exten: str | None = None, priority: int | None = None,
                        application: str | None = None, data: str | None = None,
                        caller_id: str | None = None,
                        variables: Mapping[str, str] | None = None, timeout_ms: int = 30000,
                        channel_id: str | None = None, async_: bool = True,
                        timeout: float | None = None) -> OriginateOutcome:
        """Place a call. With ``async_`` the result is the ``OriginateResponse`` outcome
        (matched by ActionID); the wait covers the ring time (``timeout_ms``) plus margin.
        ``CC_DIRECTION=outbound`` is set on the channel so the call log knows its direction."""
        if (application is None) == (context is None and exten is None):
            raise ValueError("originate needs either context/exten/priority or application")
        headers: dict[str, Any] = {
            "Channel": channel, "Context": context, "Exten": exten,
            "Priority": priority if priority is not None else (1 if exten else None),
            "Application": application, "Data": data, "CallerID": caller_id,
            "Timeout": timeout_ms, "ChannelId": channel_id,
            "Variable": [f"{k}={v}" for k, v in
                         {"CC_DIRECTION": "outbound", **(variables or {})}.items()],
        }
        wait = self._t(timeout) or self._client.config.action_timeout
        wait += timeout_ms / 1000
        if not async_:
            reply = await self._client.action("Originate", headers, timeout=wait)
            return OriginateOutcome(reply.actionid, True, "answered", 4, channel,
                                    reply.get("Uniqueid", ""))
        headers["Async"] = "true"
        reply, event = await self._client.action_with_event(
            "Originate", headers, "OriginateResponse", timeout=wait)
        reason = int(event.get("Reason") or 0)
        success = event.get("Response") == "Success"
        outcome = "answered" if success else ORIGINATE_OUTCOMES.get(reason, "failed")
        return OriginateOutcome(reply.actionid, success, outcome, reason,
                                event.get("Channel", ""), event.get("Uniqueid", ""))

    async def hangup(self, channel: str, cause: int | None = None, *,
                     timeout: float | None = None) -> None:
        await self.action("Hangup", {"Channel": channel, "Cause": cause}, timeout=timeout)

    async def redirect(self, channel: str, context: str, exten: str, priority: int = 1, *,
                       timeout: float | None = None) -> None:
        await self.action("Redirect", {"Channel": channel, "Context": context,
                                       "Exten": exten, "Priority": priority}, timeout=timeout)

    async def blind_transfer(self, channel: str, context: str, exten: str, *,
                             timeout: float | None = None) -> None:
        """``BlindTransfer``: ``channel`` (the transferer) leaves, its bridge peer goes to
        ``exten@context``; app_queue reports ``AgentComplete`` with Reason transfer."""
        await self.action("BlindTransfer", {"Channel": channel, "Context": context,
                                            "Exten": exten}, timeout=timeout)

    async def atxfer(self, channel: str, context: str, exten: str, *,
                     timeout: float | None = None) -> None:
        """``Atxfer``: queues the atxfer feature code and ``exten`` as DTMF on ``channel``
        (needs features.conf ``atxfer`` and the transfer option on the call's bridge)."""
        await self.action("Atxfer", {"Channel": channel, "Context": context,
                                     "Exten": exten}, timeout=timeout)

    async def reload(self, module: str | None = None, *, timeout: float | None = None) -> None:
        """``Reload`` one module (``res_pjsip.so``) or, with None, everything."""
        await self.action("Reload", {"Module": module}, timeout=timeout)

    async def setvar(self, channel: str | None, name: str, value: str, *,
                     timeout: float | None = None) -> None:
        """Set a channel variable (or a global one with ``channel=None``)."""
        await self.action("Setvar", {"Channel": channel, "Variable": name, "Value": value},
                          timeout=timeout)

    async def getvar(self, channel: str | None, name: str, *,
                     timeout: float | None = None) -> str | None:
        """A channel (or global) variable; None if Asterisk reports it unset."""
        reply = await self.action("Getvar", {"Channel": channel, "Variable": name},
                                  timeout=timeout)
        value = reply.get("Value")
        return None if value in (None, "(null)") else value

    async def play_dtmf(self, channel: str, digit: str, duration_ms: int | None = None, *,
                        timeout: float | None = None) -> None:
        """Completed on its ``Response`` like every action (its reply text says "queued")."""
        await self.action("PlayDTMF", {"Channel": channel, "Digit": digit,
                                       "Duration": duration_ms}, timeout=timeout)

    async def core_show_channels(self, *, timeout: float | None = None) -> list[Message]:
        return await self.list_action("CoreShowChannels", timeout=timeout)

    # -- recordings ------------------------------------------------------------------------

    async def mix_monitor(self, channel: str, file: str, options: str | None = None, *,
                          timeout: float | None = None) -> None:
        await self.action("MixMonitor", {"Channel": channel, "File": file,
                                         "Options": options}, timeout=timeout)

    async def stop_mix_monitor(self, channel: str, *, timeout: float | None = None) -> None:
        await self.action("StopMixMonitor", {"Channel": channel}, timeout=timeout)

    # -- queues ----------------------------------------------------------------------------

    async def queue_add(self, queue: str, interface: str, member_name: str | None = None,
                        penalty: int | None = None, paused: bool = False,
                        state_interface: str | None = None, *,
                        timeout: float | None = None) -> None:
        await self.action("QueueAdd", {
            "Queue": queue, "Interface": interface, "MemberName": member_name,
            "Penalty": penalty, "Paused": paused, "StateInterface": state_interface,
        }, timeout=timeout)

    async def queue_remove(self, queue: str, interface: str, *,
                           timeout: float | None = None) -> None:
        await self.action("QueueRemove", {"Queue": queue, "Interface": interface},
                          timeout=timeout)

    async def queue_pause(self, queue: str | None, interface: str, paused: bool = True,
                          reason: str | None = None, *, timeout: float | None = None) -> None:
        """Pause/unpause a member in one queue, or in every queue with ``queue=None``."""
        await self.action("QueuePause", {"Queue": queue, "Interface": interface,
                                         "Paused": paused, "Reason": reason}, timeout=timeout)

    async def queue_penalty(self, interface: str, penalty: int, queue: str | None = None, *,
                            timeout: float | None = None) -> None:
        await self.action("QueuePenalty", {"Interface": interface, "Penalty": penalty,
                                           "Queue": queue}, timeout=timeout)

    async def queue_status(self, queue: str | None = None, member: str | None = None, *,
                           timeout: float | None = None) -> list[Message]:
        """QueueParams, QueueMember and QueueEntry items, in Asterisk's order."""
        return await self.list_action("QueueStatus", {"Queue": queue, "Member": member},
                                      timeout=timeout)

    async def queue_summary(self, queue: str | None = None, *,
                            timeout: float | None = None) -> list[Message]:
        return await self.list_action("QueueSummary", {"Queue": queue}, timeout=timeout)


__all__ = ["AmiActionError", "CommandPort", "OriginateOutcome"]
