"""One live call as the tracker knows it, and the rules that turn it into its call-log row.

Kept apart from the event handling (``tracker``) so that what a row says — disposition,
direction, queue outcome, wait, talk and hold — is decided in one place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from fnmatch import fnmatchcase
from functools import lru_cache
from typing import Any

from callcenter.calls.config import CallsConfig

UNKNOWN_NUMBERS = ("", "<unknown>", "unknown")
BUSY_CAUSES = frozenset({17})
FAILED_CAUSES = frozenset({1, 3, 20, 21, 22, 27, 34, 38, 41, 42, 44, 58})
CHANNEL_SUFFIX = re.compile(r"-[0-9a-fA-F]+(;[12])?$")


def channel_base(channel: str) -> str:
    """``PJSIP/1002-00000005`` -> ``PJSIP/1002`` (the device, not this call's channel)."""
    return CHANNEL_SUFFIX.sub("", channel)


@lru_cache(maxsize=4096)
def inbound_context(context: str, patterns: tuple[str, ...]) -> bool:
    """``context`` matches one of the inbound patterns (``CallsConfig.inbound_contexts``).
    Cached: a hotline has a handful of contexts, and every row of an Originated call asks."""
    return any(fnmatchcase(context, pattern) for pattern in patterns)


def dialled_number(dial_string: str) -> str:
    """``trunk/13800138001`` / ``13800138000@citizen-sim`` / ``PJSIP/1001`` -> the number."""
    return dial_string.split("@", 1)[0].split(",", 1)[0].rsplit("/", 1)[-1]


@dataclass(slots=True)
class Attempt:
    """One ringing of one agent for one call (a ``call_agent_attempt`` row)."""

    linkedid: str
    queue: str
    agent_name: str
    interface: str
    called_at: datetime
    outcome: str = "ringing"
    ring_seconds: float = 0.0
    answered_at: datetime | None = None
    completed_at: datetime | None = None
    talk_seconds: float | None = None
    complete_reason: str | None = None

    def stop_ringing(self, outcome: str, at: datetime) -> None:
        self.outcome = outcome
        self.ring_seconds = round(max(0.0, (at - self.called_at).total_seconds()), 3)

    def row(self, pbx: str) -> dict[str, Any]:
        return {"pbx": pbx, "linkedid": self.linkedid, "queue": self.queue,
                "agent_name": self.agent_name, "interface": self.interface,
                "called_at": self.called_at, "outcome": self.outcome,
                "ring_seconds": self.ring_seconds, "answered_at": self.answered_at,
                "completed_at": self.completed_at, "talk_seconds": self.talk_seconds,
                "complete_reason": self.complete_reason}


@dataclass(slots=True)
class Call:
    """What we know about one live call."""

    linkedid: str
    started_at: datetime
    channels: dict[str, str] = field(default_factory=dict)
    caller_number: str | None = None
    called_number: str | None = None
    direction_hint: str | None = None
    originated: bool = False
    """The first channel was created by an AMI Originate (a ``DialBegin`` without caller)."""
    root_contexts: set[str] = field(default_factory=set)
    root_extens: list[tuple[str, str]] = field(default_factory=list)
    """(context, extension) where the first channel ran, in order."""
    originate_dial: str | None = None
    root_dial: str | None = None
    dials_trunk: bool = False
    queue: str | None = None
    queue_joined_at: datetime | None = None
    queue_wait: float = 0.0
    queue_status: str | None = None
    abandoned: bool = False
    agent_connected: bool = False
    waiting_when_saved: bool = False
    agent_name: str | None = None
    agent_interface: str | None = None
    attempts: dict[str, Attempt] = field(default_factory=dict)
    transfer_type: str | None = None
    transferred_to: str | None = None
    transfer_pending: bool = False
    root_up_at: datetime | None = None
    talk_started_at: datetime | None = None
    talk_seconds: float = 0.0
    bridged_since: datetime | None = None
    bridges: dict[str, set[str]] = field(default_factory=dict)
    holds: dict[str, datetime] = field(default_factory=dict)
    hold_seconds: float = 0.0
    ivr: list[str] = field(default_factory=list)
    ivr_declared: str | None = None
    ivr_node_declared: str | None = None
    last_app: str | None = None
    dialled: bool = False
    last_dial_status: str | None = None
    recording_file: str | None = None
    root_cause: int | None = None
    other_cause: int | None = None
    ended_at: datetime | None = None
    end_estimated: bool = False
    start_estimated: bool = False
    answer_estimated: bool = False
    resync_mark: int = 0
    gone: set[str] = field(default_factory=set)
    restored: bool = False
    channels_known: bool = True
    """False for a call restored from its row until a snapshot lists its channels: before
    that, only the hang-up of its first channel (the Linkedid) ends it."""

    @property
    def talking(self) -> bool:
        return any(len(members) >= 2 for members in self.bridges.values())

    @property
    def hangup_cause(self) -> int | None:
        """The first channel's cause, unless it has none (0): a Local channel's ``;1`` half
        says 0 where its ``;2`` half says 17 (busy) or 34 (congestion)."""
        if self.root_cause:
            return self.root_cause
        return self.other_cause if self.other_cause is not None else self.root_cause

    def end_hold(self, uniqueid: str, at: datetime) -> None:
        since = self.holds.pop(uniqueid, None)
        if since is not None:
            self.hold_seconds += max(0.0, (at - since).total_seconds())

    def queue_outcome(self) -> str | None:
        """How the call left its queue (None for a call that never queued)."""
        if self.queue is None:
            return None
        if self.queue_status:
            return self.queue_status.lower()
        if self.agent_connected or self.talk_started_at is not None:
            return "answered"
        if self.abandoned or self.queue_joined_at is not None or self.waiting_when_saved:
            return "abandoned"  # hung up while waiting (the abandon event may be lost)
        return "unknown"

    def answered_unbridged(self, config: CallsConfig) -> bool:
        """An outbound Originate the called party answered, never bridged (a survey, an
        announcement): the answer of its first channel is the person answering."""
        return self._answered_unbridged(self.direction(config))

    def _answered_unbridged(self, direction: str) -> bool:
        return self.talk_started_at is None and self.originated and not self.dialled \
            and self.root_up_at is not None and direction == "outbound"

    def disposition(self, config: CallsConfig) -> str:
        return self._disposition(self._answered_unbridged(self.direction(config)))

    def _disposition(self, answered_unbridged: bool) -> str:
        if self.talk_started_at is not None:
            return "answered"
        if self.queue is not None:
            return "abandoned" if self.queue_outcome() == "abandoned" else "no_answer"
        if answered_unbridged:
            return "answered"
        cause = self.hangup_cause
        if self.dialled:  # an answer before Dial() (the IVR's Answer) is not a person
            status = self.last_dial_status or ""
            if status == "BUSY" or cause in BUSY_CAUSES:
                return "busy"
            if status in ("CHANUNAVAIL", "CONGESTION") or cause in FAILED_CAUSES:
                return "failed"
            return "no_answer"
        if self.root_up_at is not None or self.ivr:
            return "ivr_hangup"
        if cause in BUSY_CAUSES:
            return "busy"
        if cause in FAILED_CAUSES:
            return "failed"
        return "no_answer"

    def ivr_node(self) -> str | None:
        """Where in the IVR the call was when it ended."""
        if self.ivr_node_declared:
            return self.ivr_node_declared
        path = self.ivr + ([self.ivr_declared] if self.ivr_declared else [])
        return path[-1] if path else self.last_app

    def direction(self, config: CallsConfig) -> str:
        if self.direction_hint is not None:
            return self.direction_hint
        if self.originated:
            patterns = config.inbound_contexts
            inbound = any(inbound_context(c, patterns) for c in self.root_contexts)
            return "inbound" if inbound else "outbound"
        if self.dials_trunk:
            return "outbound"
        limit = config.extension_max_digits
        caller, called = self.caller_number or "", self.called_number or ""
        if caller.isdigit() and called.isdigit() and len(caller) <= limit \
                and len(called) <= limit:
            return "internal"
        return "inbound"

    def talk_and_hold(self, now: datetime | None, config: CallsConfig
                      ) -> tuple[float, float]:
        """Talk (bridged time less hold) and hold seconds, counted up to ``now`` for a call
        still going on (None: only what is closed)."""
        return self._talk_and_hold(now, self.answered_unbridged(config))

    def _talk_and_hold(self, now: datetime | None, answered_unbridged: bool
                       ) -> tuple[float, float]:
        talk = self.talk_seconds
        hold = self.hold_seconds
        if now is not None:
            if self.bridged_since is not None:
                talk += max(0.0, (now - self.bridged_since).total_seconds())
            hold += sum(max(0.0, (now - since).total_seconds())
                        for since in self.holds.values())
        if answered_unbridged:
            end = self.ended_at or now  # talking since the answer
            talk = max(0.0, (end - self.root_up_at).total_seconds()) if end else 0.0
        return max(0.0, talk - hold), hold

    def row(self, pbx: str, config: CallsConfig, now: datetime | None = None
            ) -> dict[str, Any]:
        """The call-log row; with ``now``, an ongoing call is counted up to then. Built once
        per write (the direction, which the other rules depend on, is decided once here)."""
        ended = self.ended_at is not None
        direction = self.direction(config)
        unbridged = self._answered_unbridged(direction)
        disposition = self._disposition(unbridged) if ended else None
        talk, hold = self._talk_and_hold(self.ended_at if ended else now, unbridged)
        if self.talk_started_at is not None:
            answered_at = self.talk_started_at
        elif unbridged:
            answered_at = self.root_up_at
        else:
            answered_at = None
        if self.queue is not None:
            wait = self.queue_wait
        elif self.dialled:
            wait = ((self.talk_started_at or self.ended_at or self.started_at)
                    - self.started_at).total_seconds()
        else:
            wait = 0.0
        called = self.called_number
        if direction == "outbound" and (self.root_dial or self.originate_dial):
            called = dialled_number(self.root_dial or self.originate_dial or "") or called
        elif direction == "inbound" and self.originated:  # the number it was sent to call
            patterns = config.inbound_contexts
            called = next((exten for context, exten in self.root_extens
                           if exten and inbound_context(context, patterns)), called)
        path = self.ivr + ([self.ivr_declared] if self.ivr_declared else [])
        return {
            "linkedid": self.linkedid,
            "pbx": pbx,
            "direction": direction,
            "caller_number": self.caller_number,
            "called_number": called,
            "queue": self.queue,
            "queue_outcome": self.queue_outcome() if ended else
            ("answered" if self.agent_connected else None),
            "agent_name": self.agent_name,
            "agent_interface": self.agent_interface,
            "transfer_type": self.transfer_type,
            "transferred_to": self.transferred_to,
            "ivr_path": ">".join(path)[:255] or None,
            "ivr_node": self.ivr_node() if disposition == "ivr_hangup" else None,
            "recording_file": self.recording_file,
            "started_at": self.started_at,
            "answered_at": answered_at,
            "ended_at": self.ended_at,
            "wait_seconds": round(max(wait, 0.0), 3),
            "talk_seconds": round(talk, 3),
            "hold_seconds": round(hold, 3),
            "disposition": disposition,
            "hangup_cause": self.hangup_cause,
            "end_estimated": self.end_estimated,
            "start_estimated": self.start_estimated,
            "answer_estimated": self.answer_estimated,
            "backfilled": False,
        }
