"""AMI event formatting and fan-out to the connected sessions.

Events are formatted once (bytes) and handed to every session whose read permission and
event mask include the event's class; sessions batch their writes (one write per loop turn).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from callcenter.simulator.simclock import SimClock

# include/asterisk/manager.h
EVENT_FLAGS: dict[str, int] = {
    "system": 1 << 0,
    "call": 1 << 1,
    "log": 1 << 2,
    "verbose": 1 << 3,
    "command": 1 << 4,
    "agent": 1 << 5,
    "user": 1 << 6,
    "config": 1 << 7,
    "dtmf": 1 << 8,
    "reporting": 1 << 9,
    "cdr": 1 << 10,
    "dialplan": 1 << 11,
    "originate": 1 << 12,
    "agi": 1 << 13,
    "hookresponse": 1 << 14,
    "cc": 1 << 15,
    "aoc": 1 << 16,
    "test": 1 << 17,
    "security": 1 << 18,
    "message": 1 << 19,
}
ALL_FLAGS = (1 << 20) - 1

SYSTEM = EVENT_FLAGS["system"]
CALL = EVENT_FLAGS["call"]
AGENT = EVENT_FLAGS["agent"]
USER = EVENT_FLAGS["user"]
DTMF = EVENT_FLAGS["dtmf"]
REPORTING = EVENT_FLAGS["reporting"]
CDR = EVENT_FLAGS["cdr"]
DIALPLAN = EVENT_FLAGS["dialplan"]
ORIGINATE = EVENT_FLAGS["originate"]
AGI = EVENT_FLAGS["agi"]
SECURITY = EVENT_FLAGS["security"]

_PRIV_TEXT = {bit: name for name, bit in EVENT_FLAGS.items()}


def perms_from_string(text: str | None) -> int:
    """manager.conf's read/write value (``system,call`` or ``all``) as a bit mask."""
    mask = 0
    for word in (text or "").split(","):
        word = word.strip().lower()
        if not word:
            continue
        if word == "all":
            return ALL_FLAGS
        mask |= EVENT_FLAGS.get(word, 0)
    return mask


def eventmask_from_string(text: str) -> int:
    """The ``Events:`` header (on/off/list/number) like manager.c strings_to_mask()."""
    value = text.strip()
    if not value:
        return -1
    if value.lstrip("-").isdigit():
        return int(value)
    low = value.lower()
    if low in ("on", "yes", "true", "y", "t", "1"):
        return ALL_FLAGS
    if low in ("off", "no", "false", "n", "f", "0"):
        return 0
    mask = perms_from_string(value)
    return mask if mask else -1


class EventSink(Protocol):
    """Something that receives formatted events (an AMI session, a test recorder)."""

    def deliver(self, flag: int, data: bytes) -> None: ...


class EventHub:
    def __init__(self, clock: SimClock, timestampevents: bool = False) -> None:
        self.clock = clock
        self.timestampevents = timestampevents
        self.sinks: list[EventSink] = []
        self.listeners: list[Callable[[str, int, str], None]] = []
        self.count = 0
        self._heads: dict[tuple[str, int], str] = {}
        # an internal consumer that sees every event after the clients did (the CDR engine,
        # which like cdr.c follows the channel events); what it emits comes after
        self.tap: Callable[[str, str], None] | None = None

    def emit(self, name: str, flag: int, body: str) -> None:
        """Publish `Event: name` of class `flag`; `body` is the CRLF-terminated field lines."""
        self.count += 1
        self._publish(name, flag, body)
        if self.tap is not None:
            self.tap(name, body)

    def _publish(self, name: str, flag: int, body: str) -> None:
        if not self.sinks and not self.listeners:
            return
        head = self._heads.get((name, flag))
        if head is None:
            head = self._heads[(name, flag)] = (
                f"Event: {name}\r\nPrivilege: {_PRIV_TEXT[flag]},all\r\n"
            )
        if self.timestampevents:
            head += f"Timestamp: {self.clock.now():.6f}\r\n"
        text = head + body + "\r\n"
        if self.sinks:
            data = text.encode("utf-8")
            for sink in self.sinks:
                sink.deliver(flag, data)
        for listener in self.listeners:
            listener(name, flag, text)
