"""AMI framing and parsing against every real capture."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from callcenter.telephony.protocol import (
    MAX_MESSAGE_BYTES,
    Framer,
    encode_action,
    parse_message,
    parse_stream,
)
from tests.telephony.capture_tools import received_messages

RAW = ["abandon", "fastagi", "ivr", "mixmonitor", "queue_call", "queue_members",
       "queue_status", "sip_call"]


def _naive(data: bytes) -> list[str]:
    """Independent count: split the bytes after the banner on blank lines."""
    text = data.decode()
    text = text.split("\r\n", 1)[1]
    return [chunk for chunk in text.split("\r\n\r\n") if chunk.strip()]


@pytest.mark.parametrize("name", RAW)
def test_every_capture_parses_completely(captures_dir: Path, name: str) -> None:
    data = (captures_dir / f"{name}.raw").read_bytes()
    messages = parse_stream(data)
    chunks = _naive(data)
    assert len(messages) == len(chunks) > 10
    events = [m for m in messages if "Event" in m]
    assert len(events) == sum(1 for c in chunks if c.startswith("Event: "))
    for message, chunk in zip(messages, chunks, strict=True):
        assert len(message) == len({line.partition(": ")[0] for line in chunk.split("\r\n")})
    # the .txt transcript's RECV messages are the same stream
    assert len(received_messages(captures_dir / f"{name}.txt")) == len(messages)


@pytest.mark.parametrize("name", RAW)
def test_capture_split_at_every_chunk_size_gives_the_same_messages(
        captures_dir: Path, name: str) -> None:
    data = (captures_dir / f"{name}.raw").read_bytes()
    whole = parse_stream(data)
    for size in (1, 7, 100, 1500):
        got: list[dict] = []
        framer = Framer(got.append)
        for start in range(0, len(data), size):
            framer.feed(data[start:start + size])
        assert got == whole


def test_fields_of_a_captured_queue_call(captures_dir: Path) -> None:
    messages = parse_stream((captures_dir / "queue_call.raw").read_bytes())
    connect = next(m for m in messages if m.get("Event") == "AgentConnect")
    assert connect["Queue"] == "support"
    assert connect["MemberName"] == "Agent 100"
    assert connect["Interface"] == "Local/100@agents"
    assert connect["Linkedid"] == "1795239874.0"
    assert connect["AccountCode"] == ""
    hangups = [m for m in messages if m.get("Event") == "Hangup"]
    assert [h["Cause-txt"] for h in hangups] == ["Normal Clearing"] * 4
    originate = next(m for m in messages if m.get("Event") == "OriginateResponse")
    assert originate["Response"] == "Success" and originate["Reason"] == "4"
    listing = [m for m in messages if m.get("Event") == "CoreShowChannel"]
    assert len(listing) == 3 and all(m["ActionID"].endswith("/1/3") for m in listing)


def test_queue_status_lists_and_wire_spelling(captures_dir: Path) -> None:
    messages = parse_stream((captures_dir / "queue_status.raw").read_bytes())
    params = [m for m in messages if m.get("Event") == "QueueParams"]
    assert params and "ServicelevelPerf" in params[0]
    complete = [m for m in messages if m.get("EventList") == "Complete"]
    assert {m["Event"] for m in complete} >= {"QueueStatusComplete", "QueueSummaryComplete"}


def test_repeated_keys_become_lists() -> None:
    fields = parse_message("Event: VarSet\r\nChanVariable: A=1\r\nChanVariable: B=2\r\n"
                           "ChanVariable: C=3\r\nUniqueid: 1.1")
    assert fields == {"Event": "VarSet", "ChanVariable": ["A=1", "B=2", "C=3"],
                      "Uniqueid": "1.1"}


def test_empty_values_and_colons_in_values() -> None:
    fields = parse_message("Event: Newexten\r\nAccountCode: \r\nAppData: a: b\r\nEmpty:")
    assert fields == {"Event": "Newexten", "AccountCode": "", "AppData": "a: b", "Empty": ""}


def test_garbage_lines_are_skipped_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        fields = parse_message("Event: Hangup\r\n%%% garbage %%%\r\nUniqueid: 1.2")
    assert fields == {"Event": "Hangup", "Uniqueid": "1.2"}
    assert "ami.garbage_lines" in caplog.text


def test_messages_without_a_single_kind_are_dropped(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert parse_message("just noise") is None
        assert parse_message("Uniqueid: 1.2\r\nChannel: x") is None
        # a truncated message glued to the next one: two Event headers
        assert parse_message("Event: Newchannel\r\nChannel: a\r\nEvent: Hangup\r\nCause: 16") \
            is None
    assert caplog.text.count("ami.malformed_message") == 2


def test_originate_response_is_an_event_despite_its_response_header() -> None:
    fields = parse_message("Event: OriginateResponse\r\nResponse: Failure\r\nReason: 5")
    assert fields is not None and fields["Event"] == "OriginateResponse"


def test_lower_case_keys_are_accepted() -> None:
    fields = parse_message("event: Hangup\r\nuniqueid: 1.3")
    assert fields is not None and fields["Event"] == "Hangup"


def test_truncated_tail_is_reported_on_close(caplog: pytest.LogCaptureFixture) -> None:
    got: list[dict] = []
    framer = Framer(got.append)
    with caplog.at_level(logging.WARNING):
        framer.feed(b"Asterisk Call Manager/11.0.0\r\nEvent: A\r\nX: 1\r\n\r\nEvent: B\r\nY:")
        framer.discard_tail()
    assert got == [{"Event": "A", "X": "1"}]
    assert framer.banner == "Asterisk Call Manager/11.0.0"
    assert "ami.truncated_message" in caplog.text


def test_endless_bytes_without_a_message_end_are_dropped(
        caplog: pytest.LogCaptureFixture) -> None:
    got: list[dict] = []
    framer = Framer(got.append)
    framer.feed(b"Asterisk Call Manager/11.0.0\r\nEvent: Flood\r\n")
    junk = b"x" * 65536
    with caplog.at_level(logging.WARNING):
        for _ in range(MAX_MESSAGE_BYTES // len(junk) + 2):
            framer.feed(junk)
            assert len(framer._buffer) <= MAX_MESSAGE_BYTES
        framer.feed(b"\r\n\r\nEvent: Hangup\r\nUniqueid: 1.1\r\n\r\n")
    assert "ami.oversized_message" in caplog.text
    assert got == [{"Event": "Hangup", "Uniqueid": "1.1"}]  # the flood's tail is skipped too


def test_encode_action_repeats_list_values_and_skips_none() -> None:
    wire = encode_action("Originate", "id-1", {"Channel": "PJSIP/100", "Context": None,
                                               "Variable": ["A=1", "B=2"], "Async": True})
    assert wire == (b"Action: Originate\r\nActionID: id-1\r\nChannel: PJSIP/100\r\n"
                    b"Variable: A=1\r\nVariable: B=2\r\nAsync: true\r\n\r\n")
    with pytest.raises(ValueError):
        encode_action("Setvar", "id-2", {"Value": "a\r\nAction: Hangup"})
