"""AMI wire format: framing, parsing and encoding.

Parsing is the hot path (every AMI event goes through it), so events are parsed into plain
``dict`` objects keyed exactly as Asterisk spells them (Asterisk always uses one spelling).
Action replies, which are rare, are wrapped in panoramisk's case-insensitive ``Message`` so
callers get its familiar API. Anything that is not a well-formed message is reported, never
raised: a bad message must not stop the reader.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from panoramisk.message import Message

log = logging.getLogger(__name__)

EOL = b"\r\n"
END = b"\r\n\r\n"
BANNER_PREFIX = "Asterisk Call Manager/"
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
"""Larger than any real message (a ``Command`` reply with a long listing): beyond it, bytes
without a message end are garbage, dropped so a broken peer cannot exhaust memory."""

Fields = dict[str, Any]
"""One parsed AMI message: header -> value, or a list of values for repeated headers."""


def parse_message(text: str) -> Fields | None:
    """Parse one message (without its terminating blank line).

    A message with ``Event`` is an event (``OriginateResponse`` also has ``Response``), else
    with ``Response`` a reply. Returns None (and logs) for anything else: no ``Key: Value``
    line, no kind, or a repeated ``Event`` (a truncated message glued to the next one).

    The common case (every line ``Key: Value``, no header repeated) is split in C; anything
    else takes the careful line-by-line way.
    """
    lines = text.split("\r\n")
    try:
        fields: Fields = dict(map(str.split, lines, _HEADER_SEPARATOR, _ONCE))
    except ValueError:  # a line without ": " (an empty value written "Key:", garbage)
        return _parse_lines(lines, text)
    if len(fields) != len(lines):  # a repeated header: its values become a list
        return _parse_lines(lines, text)
    return _with_kind(fields, text)


_HEADER_SEPARATOR = itertools.repeat(": ")
_ONCE = itertools.repeat(1)


def _parse_lines(lines: list[str], text: str) -> Fields | None:
    fields: Fields = {}
    bad = 0
    for line in lines:
        key, sep, value = line.partition(": ")
        if not sep:
            if line.endswith(":") and line.count(":") == 1:
                key, value = line[:-1], ""
            else:
                bad += 1
                continue
        old = fields.get(key)
        if old is None:
            fields[key] = value
        elif type(old) is list:
            old.append(value)
        else:
            fields[key] = [old, value]
    if bad:
        log.warning("ami.garbage_lines count=%d sample=%r", bad, text[:120])
    return _with_kind(fields, text)


def _with_kind(fields: Fields, text: str) -> Fields | None:
    """``fields`` if they name one kind of message (``Event`` or ``Response``), else None."""
    kind = fields.get("Event")
    if kind is None:
        kind = fields.get("Response")
        if kind is None:
            kind = _case_insensitive(fields, "event") or _case_insensitive(fields, "response")
    if type(kind) is not str:
        if fields:
            log.warning("ami.malformed_message reason=no_single_kind sample=%r", text[:200])
        return None
    return fields


def _case_insensitive(fields: Fields, key: str) -> Any:
    """Slow path for peers that spell headers in another case (keys are case-insensitive)."""
    for name, value in fields.items():
        if name.lower() == key:
            fields[key.capitalize()] = value
            return value
    return None


class Framer:
    """Splits the AMI byte stream into messages; keeps the incomplete tail for the next read.

    ``keep``, if given, sees the raw text of each message first: a message it refuses is
    dropped unparsed (the hot path: most of what Asterisk sends is not used).
    """

    __slots__ = ("_buffer", "banner", "_on_message", "_keep")

    def __init__(self, on_message: Callable[[Fields], None],
                 keep: Callable[[str], bool] | None = None) -> None:
        self._buffer = b""
        self.banner: str | None = None
        self._on_message = on_message
        self._keep = keep

    def feed(self, data: bytes) -> None:
        buffer = self._buffer + data if self._buffer else data
        if self.banner is None:
            end = buffer.find(EOL)
            if end < 0:
                self._buffer = buffer
                return
            self.banner = buffer[:end].decode("utf-8", "replace")
            buffer = buffer[end + 2:]
            if not self.banner.startswith(BANNER_PREFIX):
                log.warning("ami.unexpected_banner banner=%r", self.banner[:80])
        cut = buffer.rfind(END)
        if cut < 0:
            if len(buffer) > MAX_MESSAGE_BYTES:
                log.warning("ami.oversized_message bytes=%d sample=%r", len(buffer),
                            buffer[:120])
                buffer = b""
            self._buffer = buffer
            return
        self._buffer = buffer[cut + 4:]
        on_message = self._on_message
        keep = self._keep
        messages = buffer[:cut].decode("utf-8", "replace").split("\r\n\r\n")
        # most messages are dropped here: the filter loops in C
        for message in messages if keep is None else filter(keep, messages):
            if not message or message[0] in "\r\n":  # extra blank lines (rare)
                message = message.lstrip("\r\n")
                if not message or (keep is not None and not keep(message)):
                    continue
            fields = parse_message(message)
            if fields is not None:
                on_message(fields)

    def discard_tail(self) -> None:
        """Called when the connection ends: a partial message can never complete."""
        if self._buffer.strip():
            log.warning("ami.truncated_message bytes=%d sample=%r", len(self._buffer),
                        self._buffer[:120])
        self._buffer = b""


def parse_stream(data: bytes, *, expect_banner: bool = True) -> list[Fields]:
    """Parse a whole captured stream (tests, benchmark)."""
    messages: list[Fields] = []
    framer = Framer(messages.append)
    if not expect_banner:
        framer.banner = ""
    framer.feed(data)
    framer.discard_tail()
    return messages


def to_message(fields: Fields) -> Message:
    """Wrap parsed fields in panoramisk's case-insensitive Message (replies to callers)."""
    return Message(fields)


def encode_action(action: str, action_id: str, headers: Mapping[str, Any]) -> bytes:
    """Encode one action; list values become repeated headers (``Variable``)."""
    lines = [f"Action: {action}", f"ActionID: {action_id}"]
    for key, value in headers.items():
        if value is None:
            continue
        values: Iterable[Any] = value if isinstance(value, list | tuple) else (value,)
        for item in values:
            text = _header_value(item)
            if "\r" in text or "\n" in text:
                raise ValueError(f"AMI header {key!r} must not contain a line break")
            lines.append(f"{key}: {text}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


def _header_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def first(fields: Mapping[str, Any], key: str, default: str = "") -> str:
    """The (first) value of a header; repeated headers keep every value in a list."""
    value = fields.get(key, default)
    if type(value) is list:
        return value[0] if value else default
    return value
