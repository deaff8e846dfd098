"""The agent state machine: Asterisk's queue events in, one state per agent out.

Each agent (keyed by the member interface, ``PJSIP/1001``) keeps the facts Asterisk told us —
its queue memberships, the pause and its reason, the phone's device status, the queue call it
is ringing for or talking in — and its state is a function of those facts, so every event
order ends in the state Asterisk is in. No I/O here: ``AgentBoard.apply`` returns the state
changes for the listener to store and publish, with the time of the event that caused them.

After-call work is a ``QueuePause`` with the configured reason (the service sends it on
``AgentComplete``); between the ``AgentComplete`` and Asterisk's confirming
``QueueMemberPause`` the agent is already in after-call work (``acw_pending``), so no
moment of "available" appears between the call and its wrap-up.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from callcenter.telephony import events as ev

# Asterisk's member Status values (AST_DEVICE_*), as in QueueMember* events.
NOT_INUSE, INUSE, BUSY, RINGING, RINGINUSE, ONHOLD = 1, 2, 3, 6, 7, 8
IN_USE = frozenset({INUSE, BUSY, RINGINUSE, ONHOLD})
CALL_PHASES = ("ringing", "on_call", "on_hold")


@dataclass(frozen=True, slots=True)
class AgentState:
    state: str
    reason: str | None = None
    queue: str | None = None
    linkedid: str | None = None


LOGGED_OUT = AgentState("logged_out")


@dataclass(slots=True)
class QueueCall:
    """The queue call an agent is ringing for or in (from AgentCalled / AgentConnect)."""

    phase: str
    queue: str
    linkedid: str
    channel: str = ""


@dataclass(slots=True)
class AgentFacts:
    interface: str
    member_name: str = ""
    queues: set[str] = field(default_factory=set)
    paused: bool = False
    reason: str = ""
    device: int = NOT_INUSE
    call: QueueCall | None = None
    acw_pending: bool = False
    acw_queue: str | None = None
    acw_linkedid: str | None = None


@dataclass(frozen=True, slots=True)
class Change:
    """One agent's state changed at ``at`` (``call_ended``: a queue call just ended, so the
    service starts after-call work)."""

    interface: str
    member_name: str
    before: AgentState
    after: AgentState
    at: datetime
    call_ended: bool = False


class AgentBoard:
    """Every agent's facts and state; feed it domain events in Asterisk's order."""

    def __init__(self, acw_reason: str, *, after_call_work: bool = True) -> None:
        self.acw_reason = acw_reason
        self.after_call_work = after_call_work
        self.agents: dict[str, AgentFacts] = {}
        self.states: dict[str, AgentState] = {}

    def state(self, interface: str) -> AgentState:
        return self.states.get(interface, LOGGED_OUT)

    def seed(self, interface: str, member_name: str, stored: AgentState,
             queues: Iterable[str]) -> None:
        """What the database says the agent was doing when this process started: kept if
        the next ``QueueStatus`` agrees (a restart of the service continues the period)."""
        facts = AgentFacts(interface, member_name, set(queues))
        if stored.state == "paused":
            facts.paused, facts.reason = True, stored.reason or ""
        if stored.state in CALL_PHASES and stored.queue and stored.linkedid:
            facts.call = QueueCall(stored.state, stored.queue, stored.linkedid)
        if stored.state == "after_call_work":
            facts.paused, facts.reason = True, self.acw_reason
            facts.acw_queue, facts.acw_linkedid = stored.queue, stored.linkedid
        self.agents[interface] = facts
        self.states[interface] = stored

    # -- events ----------------------------------------------------------------------------

    def apply(self, event: ev.DomainEvent) -> list[Change]:
        """The state changes ``event`` causes (empty for events about no agent)."""
        if isinstance(event, ev.QueueMemberEvent):
            return self._member(event)
        if isinstance(event, ev.AgentEvent):
            return self._agent(event)
        if isinstance(event, ev.HoldStarted | ev.HoldEnded):
            return self._hold(event)
        if isinstance(event, ev.QueuesSnapshot):
            return self.snapshot(event.members, event.at)
        return []

    def _member(self, event: ev.QueueMemberEvent) -> list[Change]:
        facts = self._facts(event.interface, event.member_name)
        if isinstance(event, ev.QueueMemberRemoved):
            facts.queues.discard(event.queue)
            if not facts.queues:
                self.agents[event.interface] = AgentFacts(event.interface, facts.member_name)
                return self._settle(event.interface, event.at)
            return []
        if isinstance(event, ev.QueueMemberAdded):
            facts.queues.add(event.queue)
        elif event.queue not in facts.queues:
            return []  # a member we never saw added (static members are not agents)
        facts.paused, facts.reason = event.paused, event.paused_reason if event.paused else ""
        if isinstance(event, ev.QueueMemberPaused):
            facts.acw_pending = False  # confirmed, replaced by another pause, or ended early
        ended = self._device(facts, event.status, event.in_call)
        return self._settle(event.interface, event.at, call_ended=ended)

    def _device(self, facts: AgentFacts, status: int, in_call: bool) -> bool:
        """Record the phone's status; a free phone ends a ringing or call phase that no
        ``AgentRingNoAnswer`` / ``AgentComplete`` ended (another agent answered, the caller
        left, the agent hung up with a feature code). True when that ended a call."""
        facts.device = status
        call = facts.call
        if call is None or status in IN_USE or status == RINGING or in_call:
            return False
        facts.call = None
        if call.phase == "ringing":
            return False
        self._start_acw(facts, call)
        return True

    def _agent(self, event: ev.AgentEvent) -> list[Change]:
        if not event.interface:
            return []
        facts = self._facts(event.interface, event.member_name)
        if not facts.queues:
            return []
        ended = False
        if isinstance(event, ev.AgentCalled):
            facts.call = QueueCall("ringing", event.queue, event.linkedid, event.dest_channel)
        elif isinstance(event, ev.AgentRingNoAnswer):
            if facts.call is not None and facts.call.phase == "ringing":
                facts.call = None
                facts.device = NOT_INUSE  # sent before the phone stops ringing
        elif isinstance(event, ev.AgentConnected):
            facts.call = QueueCall("on_call", event.queue, event.linkedid, event.dest_channel)
            facts.acw_pending = False
        elif isinstance(event, ev.AgentCompleted):
            if facts.call is None and event.linkedid in ("", facts.acw_linkedid):
                return []  # the free phone already ended this call (see ``_device``)
            call = facts.call or QueueCall("on_call", event.queue, event.linkedid)
            facts.call = None
            facts.device = NOT_INUSE  # the queue leg is over; a later status says otherwise
            self._start_acw(facts, call)
            ended = True
        return self._settle(event.interface, event.at, call_ended=ended)

    def _start_acw(self, facts: AgentFacts, call: QueueCall) -> None:
        if self.after_call_work and not facts.paused:
            facts.acw_pending = True
        facts.acw_queue, facts.acw_linkedid = call.queue, call.linkedid

    def _hold(self, event: ev.HoldStarted | ev.HoldEnded) -> list[Change]:
        for facts in self.agents.values():
            call = facts.call
            if call is None or call.phase == "ringing":
                continue
            if event.channel == call.channel or event.channel.startswith(facts.interface + "-"):
                call.phase = "on_hold" if isinstance(event, ev.HoldStarted) else "on_call"
                return self._settle(facts.interface, event.at)
        return []

    def snapshot(self, members: Iterable[Mapping[str, str]], at: datetime) -> list[Change]:
        """``QueueStatus`` after a (re)connect: memberships, pauses and phones as Asterisk
        has them now; a call in progress stays as we knew it if the phone is still busy."""
        seen: dict[str, AgentFacts] = {}
        for row in members:
            interface = row.get("Location") or row.get("Interface") or ""
            if not interface:
                continue
            old = self.agents.get(interface)
            facts = seen.get(interface)
            if facts is None:
                facts = seen[interface] = AgentFacts(interface, row.get("Name", ""))
                if old is not None:
                    facts.call, facts.acw_pending = old.call, old.acw_pending
                    facts.acw_queue, facts.acw_linkedid = old.acw_queue, old.acw_linkedid
            facts.queues.add(row.get("Queue", ""))
            facts.paused = row.get("Paused") == "1"
            facts.reason = row.get("PausedReason", "") if facts.paused else ""
            status = _int(row.get("Status"))
            busy = status in IN_USE or status == RINGING or row.get("InCall") == "1"
            facts.device = status
            if not busy:
                facts.call = None
            if facts.paused and facts.reason == self.acw_reason or not facts.paused:
                facts.acw_pending = False
        changes = []
        for interface in set(self.agents) | set(seen):
            self.agents[interface] = seen.get(interface) or AgentFacts(
                interface, self.agents[interface].member_name)
            changes.extend(self._settle(interface, at))
        return changes

    # -- state -----------------------------------------------------------------------------

    def _facts(self, interface: str, member_name: str) -> AgentFacts:
        facts = self.agents.get(interface)
        if facts is None:
            facts = self.agents[interface] = AgentFacts(interface, member_name)
        if member_name:
            facts.member_name = member_name
        return facts

    def derive(self, facts: AgentFacts) -> AgentState:
        """The state the facts mean (the order of the checks is the precedence)."""
        if not facts.queues:
            return LOGGED_OUT
        if facts.call is not None:
            return AgentState(facts.call.phase, None, facts.call.queue, facts.call.linkedid)
        if facts.acw_pending or facts.paused and facts.reason == self.acw_reason:
            return AgentState("after_call_work", None, facts.acw_queue, facts.acw_linkedid)
        if facts.device == RINGING:
            return AgentState("ringing")
        if facts.device == ONHOLD:
            return AgentState("on_hold")
        if facts.device in IN_USE:
            return AgentState("on_call")
        if facts.paused:
            return AgentState("paused", facts.reason or None)
        return AgentState("available")

    def _settle(self, interface: str, at: datetime, *, call_ended: bool = False
                ) -> list[Change]:
        facts = self.agents[interface]
        before = self.states.get(interface, LOGGED_OUT)
        after = self.derive(facts)
        if after == LOGGED_OUT:
            self.states.pop(interface, None)
            self.agents.pop(interface, None)
        else:
            self.states[interface] = after
        if after == before:
            return []
        return [Change(interface, facts.member_name, before, after, at,
                       call_ended and after.state == "after_call_work")]


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0
