"""Golden transcripts: parse the real Asterisk captures and compare message shapes.

The captures in shared/asterisk/captures/ are what Asterisk 22 really sent. Golden tests of
the simulator compare the *shape* of its AMI output (event names in order, field names in
order) with them, since values (ids, times) differ from run to run. Parsing is strict about
AMI framing (CRLF lines, blank line after each message) so that it also catches framing
mistakes in the simulator's own output.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

BANNER_PREFIX = "Asterisk Call Manager/"


class CaptureError(ValueError):
    """A capture that does not follow AMI framing; the message says where."""


@dataclass
class AmiMessage:
    """One AMI message: ordered (key, value) pairs, repeated keys kept.

    Keys are compared case-insensitively, as Asterisk does.
    """

    fields: list[tuple[str, str]] = field(default_factory=list)

    def get(self, key: str, default: str | None = None) -> str | None:
        """The first value of `key`, or `default`."""
        lowered = key.lower()
        for name, value in self.fields:
            if name.lower() == lowered:
                return value
        return default

    def get_all(self, key: str) -> list[str]:
        """Every value of a repeatable key (`Variable`, `ChanVariable`, `Output`)."""
        lowered = key.lower()
        return [value for name, value in self.fields if name.lower() == lowered]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    @property
    def is_event(self) -> bool:
        return self.get("Event") is not None

    @property
    def name(self) -> str:
        """The Event name, else the Response value (`Success`, `Error`, `Goodbye`), else ''."""
        return self.get("Event") or self.get("Response") or self.get("Action") or ""

    def keys(self) -> list[str]:
        return [name for name, _ in self.fields]

    def to_bytes(self) -> bytes:
        """The message as Asterisk frames it: `Key: Value\\r\\n` lines and a blank line."""
        text = "".join(f"{name}: {value}\r\n" for name, value in self.fields) + "\r\n"
        return text.encode("utf-8", "surrogateescape")


@dataclass(frozen=True)
class TranscriptEntry:
    """One block of a .txt transcript: `send` (client → Asterisk), `recv`, or `note`."""

    direction: str
    offset: float
    message: AmiMessage | None  # None for the banner and for notes
    text: str


def _parse_line(line: str, where: str) -> tuple[str, str]:
    name, sep, value = line.partition(":")
    if not sep or not name or name != name.strip():
        raise CaptureError(f"{where}: not a 'Key: Value' line: {line!r}")
    return name, value[1:] if value.startswith(" ") else value


def _load(path_or_bytes: str | Path | bytes) -> tuple[bytes, str]:
    if isinstance(path_or_bytes, bytes):
        return path_or_bytes, "<bytes>"
    path = Path(path_or_bytes)
    try:
        return path.read_bytes(), str(path)
    except OSError as exc:
        raise CaptureError(f"{path}: cannot read capture: {exc.strerror}") from exc


def split_banner(path_or_bytes: str | Path | bytes) -> tuple[str | None, bytes]:
    """The `Asterisk Call Manager/x.y.z` banner (single CRLF) and the bytes after it."""
    data, _ = _load(path_or_bytes)
    if data.startswith(BANNER_PREFIX.encode()):
        line, sep, rest = data.partition(b"\r\n")
        return line.decode("ascii", "replace"), rest if sep else b""
    return None, data


@dataclass
class Connection:
    """One AMI connection of a capture: its banner (None if the bytes start mid-session)
    and the messages Asterisk sent on it, in order."""

    banner: str | None
    messages: list[AmiMessage] = field(default_factory=list)


def parse_connections(path_or_bytes: str | Path | bytes) -> list[Connection]:
    """Every connection of a .raw capture. A banner line where a message would start opens
    a new connection: a capture that reconnects (agent_session after `core restart now`)
    holds the second banner mid-file.

    Strict: every line must end in CRLF and every message in a blank line.
    """
    data, where = _load(path_or_bytes)
    text = data.decode("utf-8", "surrogateescape")
    lone_lf = re.search(r"(?<!\r)\n", text)
    if lone_lf:
        raise CaptureError(f"{where}: line ending without CR at byte {lone_lf.start()}")
    connections: list[Connection] = []
    current: Connection | None = None
    offset = 0
    while offset < len(text):
        if text.startswith(BANNER_PREFIX, offset):
            end = text.find("\r\n", offset)
            end = len(text) if end < 0 else end
            current = Connection(text[offset:end])
            connections.append(current)
            offset = end + 2
            continue
        end = text.find("\r\n\r\n", offset)
        if end < 0:
            raise CaptureError(f"{where}: last message not terminated by a blank line")
        block = text[offset:end]
        fields = [_parse_line(line, f"{where} byte {offset}") for line in block.split("\r\n")]
        if current is None:
            current = Connection(None)
            connections.append(current)
        current.messages.append(AmiMessage(fields))
        offset = end + 4
    return connections


def parse_raw(path_or_bytes: str | Path | bytes) -> list[AmiMessage]:
    """Messages of a .raw capture (or of bytes a simulator sent), in order, over all its
    connections; banners skipped. Strict framing, as parse_connections()."""
    return [m for conn in parse_connections(path_or_bytes) for m in conn.messages]


_HEADER = re.compile(r"^### (>>> SEND|<<< RECV|NOTE) t=\+([0-9.]+)s ?(.*)$")
_DIRECTIONS = {">>> SEND": "send", "<<< RECV": "recv", "NOTE": "note"}


def parse_txt(path: str | Path) -> list[TranscriptEntry]:
    """The blocks of a .txt transcript (`### >>> SEND`, `### <<< RECV`, `### NOTE`).

    A block runs to the next header; a RECV block may hold several messages separated by
    blank lines (the turn 2 captures), each becomes an entry with the block's offset.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise CaptureError(f"{path}: cannot read transcript: {exc.strerror}") from exc
    entries: list[TranscriptEntry] = []
    index = 0
    while index < len(lines):
        header = _HEADER.match(lines[index])
        if not header:
            if lines[index].strip():
                raise CaptureError(f"{path}:{index + 1}: text outside a block: {lines[index]!r}")
            index += 1
            continue
        index += 1
        if _DIRECTIONS[header.group(1)] == "note":
            entries.append(_entry(path, index, header, []))
            while index < len(lines) and lines[index] and not _HEADER.match(lines[index]):
                index += 1  # a note's own lines (command output)
            continue
        chunk: list[str] = []
        start = index
        while index < len(lines) and not _HEADER.match(lines[index]):
            if lines[index]:
                chunk.append(lines[index])
            elif chunk:
                entries.extend(_entries(path, start, header, chunk))
                chunk = []
            index += 1
            if not chunk:
                start = index
        if chunk:
            entries.extend(_entries(path, start, header, chunk))
    return entries


def _entries(
    path: Path, line_no: int, header: re.Match[str], body: list[str]
) -> list[TranscriptEntry]:
    """One message, or a banner line then possibly a message right below it."""
    if body[0].startswith(BANNER_PREFIX):
        banner = _entry(path, line_no, header, body[:1])
        rest = [_entry(path, line_no + 1, header, body[1:])] if body[1:] else []
        return [banner, *rest]
    return [_entry(path, line_no, header, body)]


def _entry(path: Path, line_no: int, header: re.Match[str], body: list[str]) -> TranscriptEntry:
    direction = _DIRECTIONS[header.group(1)]
    offset = float(header.group(2))
    if direction == "note":
        return TranscriptEntry(direction, offset, None, header.group(3))
    text = "\n".join(body)
    if len(body) == 1 and body[0].startswith(BANNER_PREFIX):
        return TranscriptEntry(direction, offset, None, text)
    fields = [_parse_line(line, f"{path}:{line_no + n + 1}") for n, line in enumerate(body)]
    return TranscriptEntry(direction, offset, AmiMessage(fields), text)


@dataclass(frozen=True)
class AgiLine:
    """One line of fastagi_session.txt: `asterisk` sent it, the `server` sent it, or a note."""

    direction: str
    offset: float | None
    text: str


_AGI_LINE = re.compile(r"^\s*\+([0-9.]+)s (<<<|>>>|---) ?(.*)$")


def parse_agi_session(path: str | Path) -> list[AgiLine]:
    """fastagi_session.txt: `<<<` lines came from Asterisk, `>>>` from the FastAGI server."""
    entries: list[AgiLine] = []
    for raw in Path(path).read_text(encoding="utf-8").splitlines():
        match = _AGI_LINE.match(raw)
        if match:
            kind = {"<<<": "asterisk", ">>>": "server", "---": "note"}[match.group(2)]
            entries.append(AgiLine(kind, float(match.group(1)), match.group(3)))
        elif raw.startswith("#"):
            entries.append(AgiLine("note", None, raw[1:].strip()))
    return entries


def event_shape(msg: AmiMessage) -> tuple[str, tuple[str, ...]]:
    """(name, field names in order), without the naming Event/Response key."""
    naming = {"event"} if msg.is_event else {"response"}
    return msg.name, tuple(k for k in msg.keys() if k.lower() not in naming)


def _shapes(
    messages: Iterable[AmiMessage], ignore_events: set[str], ignore_fields: set[str]
) -> list[tuple[str, tuple[str, ...]]]:
    shapes = []
    for message in messages:
        name, keys = event_shape(message)
        if name.lower() in ignore_events:
            continue
        shapes.append((name, tuple(k for k in keys if k.lower() not in ignore_fields)))
    return shapes


def _field_differences(
    position: int, name: str, expected: tuple[str, ...], actual: tuple[str, ...]
) -> list[str]:
    if expected == actual:
        return []
    wanted, got = Counter(expected), Counter(actual)
    missing = list((wanted - got).elements())
    extra = list((got - wanted).elements())
    where = f"#{position} {name}"
    problems = []
    if missing:
        problems.append(f"{where}: missing field(s) {', '.join(missing)}")
    if extra:
        problems.append(f"{where}: extra field(s) {', '.join(extra)}")
    if not missing and not extra:
        problems.append(
            f"{where}: fields out of order: expected {', '.join(expected)}; got {', '.join(actual)}"
        )
    return problems


def compare_shapes(
    expected: Iterable[AmiMessage],
    actual: Iterable[AmiMessage],
    *,
    ignore_events: Iterable[str] = (),
    ignore_fields: Iterable[str] = (),
) -> list[str]:
    """Readable differences between two message sequences' shapes; [] when they agree.

    Events are aligned by name (difflib); an event missing at one place and extra at
    another is reported once as out of order. Aligned events have their fields compared.
    Positions (#n) count from 1 in the filtered `actual` sequence.
    """
    events = {e.lower() for e in ignore_events}
    fields = {f.lower() for f in ignore_fields}
    want = _shapes(expected, events, fields)
    got = _shapes(actual, events, fields)
    matcher = difflib.SequenceMatcher(a=[s[0] for s in want], b=[s[0] for s in got], autojunk=False)
    problems: list[str] = []
    missing: list[tuple[int, str]] = []
    extra: list[tuple[int, str]] = []
    for tag, a0, a1, b0, b1 in matcher.get_opcodes():
        if tag == "equal":
            for offset in range(a1 - a0):
                name, want_fields = want[a0 + offset]
                problems += _field_differences(
                    b0 + offset + 1, name, want_fields, got[b0 + offset][1]
                )
            continue
        missing += [(i + 1, want[i][0]) for i in range(a0, a1)]
        extra += [(j + 1, got[j][0]) for j in range(b0, b1)]
    problems += _order_problems(missing, extra)
    return problems


def _order_problems(missing: list[tuple[int, str]], extra: list[tuple[int, str]]) -> list[str]:
    problems = []
    unmatched_extra = list(extra)
    for position, name in missing:
        moved = next((e for e in unmatched_extra if e[1] == name), None)
        if moved is not None:
            unmatched_extra.remove(moved)
            problems.append(
                f"event {name} out of order: expected as #{position}, got as #{moved[0]}"
            )
        else:
            problems.append(f"missing event {name} (expected as #{position})")
    problems += [f"extra event {name} at #{position}" for position, name in unmatched_extra]
    return problems


def linkedids(messages: Iterable[AmiMessage]) -> list[str]:
    """Linkedids in order of first appearance: one per call."""
    seen: dict[str, None] = {}
    for message in messages:
        for key in ("Linkedid", "DestLinkedid"):
            value = message.get(key)
            if value:
                seen.setdefault(value, None)
    return list(seen)


def filter_linkedid(messages: Iterable[AmiMessage], linkedid: str) -> list[AmiMessage]:
    """The messages of one call: those whose Linkedid (or DestLinkedid) is `linkedid`."""
    return [
        m for m in messages if m.get("Linkedid") == linkedid or m.get("DestLinkedid") == linkedid
    ]


def events_only(messages: Sequence[AmiMessage]) -> list[AmiMessage]:
    """Drop responses, keeping the unsolicited events."""
    return [m for m in messages if m.is_event]
