"""Replaying a capture's ``.raw`` bytes (turn 2 captures hold several messages per ``.txt``
block): every event is timed by its own ``Timestamp``, through the real parser and
translator."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from callcenter.clock import FrozenClock
from callcenter.telephony.events import DomainEvent, EventTranslator
from callcenter.telephony.protocol import parse_stream


def raw_events(path: Path) -> list[DomainEvent]:
    clock = FrozenClock(datetime(2026, 1, 1, tzinfo=UTC))
    translator = EventTranslator(clock)
    out: list[DomainEvent] = []
    for fields in parse_stream(path.read_bytes()):
        if "Event" not in fields:
            continue
        if "ActionID" in fields and fields["Event"] != "OriginateResponse":
            continue  # list items answer an action
        event = translator.translate(fields)
        if event is not None:
            out.append(event)
    return out


def ts(stamp: str) -> datetime:
    """A capture's ``Timestamp`` value as the translator turns it into a time."""
    return datetime.fromtimestamp(float(stamp), UTC)
