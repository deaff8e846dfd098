"""Reading the real Asterisk captures (``*.txt`` transcripts with timing) in tests."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from callcenter.clock import FrozenClock
from callcenter.telephony.events import DomainEvent, EventTranslator
from callcenter.telephony.protocol import parse_message

HEAD = re.compile(r"^### (>>> SEND|<<< RECV|NOTE) t=\+([0-9.]+)s", re.M)


@dataclass(frozen=True)
class Block:
    direction: str  # "send", "recv" or "note"
    t: float
    text: str  # the message without its terminating blank line (CRLF framing)

    def fields(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for line in self.text.split("\r\n"):
            key, sep, value = line.partition(": ")
            if sep:
                out.setdefault(key, value)
        return out

    @property
    def wire(self) -> bytes:
        return (self.text + "\r\n\r\n").encode()


def read_transcript(path: Path) -> list[Block]:
    data = path.read_bytes().decode("utf-8")
    blocks: list[Block] = []
    marks = list(HEAD.finditer(data))
    for n, mark in enumerate(marks):
        end = marks[n + 1].start() if n + 1 < len(marks) else len(data)
        body = data[mark.end():end].lstrip("\r\n").rstrip("\r\n")
        kind = {"SEND": "send", "RECV": "recv"}.get(mark.group(1)[-4:], "note")
        blocks.append(Block(kind, float(mark.group(2)), body))
    return blocks


def received_messages(path: Path) -> list[Block]:
    """RECV blocks that are AMI messages (not the banner)."""
    return [b for b in read_transcript(path)
            if b.direction == "recv" and not b.text.startswith("Asterisk Call Manager/")]


def replies_by_action(path: Path) -> dict[str, list[list[bytes]]]:
    """Action name -> for each time it was sent, the captured reply messages (with the
    captured ActionID) in order: the Response, list items, and the list's Complete event."""
    blocks = read_transcript(path)
    sent: dict[str, str] = {}
    order: list[str] = []
    replies: dict[str, list[bytes]] = {}
    for block in blocks:
        if block.direction == "send":
            f = block.fields()
            sent[f["ActionID"]] = f["Action"]
            order.append(f["ActionID"])
            replies[f["ActionID"]] = []
        elif block.direction == "recv":
            action_id = block.fields().get("ActionID")
            if action_id in replies:
                replies[action_id].append(block.wire)
    out: dict[str, list[list[bytes]]] = {}
    for action_id in order:
        out.setdefault(sent[action_id].lower(), []).append(replies[action_id])
    return out


def replay_events(path: Path, start: datetime) -> list[DomainEvent]:
    """Domain events of a transcript, timed as Asterisk sent them (receipt time = ``start``
    plus the captured offset), through the real parser and translator."""
    clock = FrozenClock(start)
    translator = EventTranslator(clock)
    out: list[DomainEvent] = []
    for block in received_messages(path):
        fields = parse_message(block.text)
        if fields is None or "Event" not in fields:
            continue
        if "ActionID" in fields and fields["Event"] != "OriginateResponse":
            continue  # list items answer an action; the client hands them to the caller
        clock.set(start + timedelta(seconds=block.t))
        event = translator.translate(fields)
        if event is not None:
            out.append(event)
    return out
