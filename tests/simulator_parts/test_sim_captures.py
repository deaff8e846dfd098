"""Golden-transcript helpers on every real capture in shared/asterisk/captures/."""

from __future__ import annotations

from pathlib import Path

import pytest

from callcenter.simulator.captures import (
    AmiMessage,
    CaptureError,
    compare_shapes,
    event_shape,
    events_only,
    filter_linkedid,
    linkedids,
    parse_agi_session,
    parse_connections,
    parse_raw,
    parse_txt,
    split_banner,
)

SCENARIOS = [
    "abandon",
    "agent_session",
    "attended_transfer",
    "attended_transfer_dtmf_only",
    "blind_transfer",
    "chanspy",
    "click_to_call",
    "fastagi",
    "hold",
    "ivr",
    "mixmonitor",
    "queue_call",
    "queue_members",
    "queue_status",
    "revisit_survey",
    "sip_call",
]


def test_every_capture_is_listed(captures_dir: Path) -> None:
    assert sorted(p.stem for p in captures_dir.glob("*.raw")) == SCENARIOS


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_raw_round_trips_byte_for_byte(captures_dir: Path, scenario: str) -> None:
    data = (captures_dir / f"{scenario}.raw").read_bytes()
    banner, _ = split_banner(data)
    assert banner == "Asterisk Call Manager/11.0.0"
    connections = parse_connections(captures_dir / f"{scenario}.raw")
    rebuilt = b""
    for conn in connections:
        assert conn.banner == banner
        assert conn.messages and all(m.name for m in conn.messages)
        assert conn.messages[0].name == "Success"  # the Login response
        rebuilt += conn.banner.encode() + b"\r\n" + b"".join(m.to_bytes() for m in conn.messages)
    assert rebuilt == data
    assert connections[-1].messages[-1].name == "Goodbye"  # "Thanks for all the fish."
    messages = parse_raw(captures_dir / f"{scenario}.raw")
    assert messages == [m for conn in connections for m in conn.messages]


def test_every_raw_capture_in_the_folder_parses(captures_dir: Path) -> None:
    """Whatever .raw lands in the folder (new turns add some) must parse; a banner line in
    the middle starts a new connection (agent_session reconnects after a restart)."""
    raws = sorted(captures_dir.glob("*.raw"))
    assert raws
    for path in raws:
        connections = parse_connections(path)
        assert connections and all(c.banner and c.messages for c in connections), path.name
    assert len(parse_connections(captures_dir / "agent_session.raw")) == 2


def test_banner_mid_stream_starts_a_new_connection() -> None:
    two = (
        b"Asterisk Call Manager/11.0.0\r\nResponse: Goodbye\r\n\r\n"
        b"Asterisk Call Manager/11.0.0\r\nResponse: Success\r\n\r\n"
    )
    first, second = parse_connections(two)
    assert [m.name for m in first.messages] == ["Goodbye"]
    assert [m.name for m in second.messages] == ["Success"]
    assert [m.name for m in parse_raw(two)] == ["Goodbye", "Success"]
    [headless] = parse_connections(b"Event: A\r\n\r\n")
    assert headless.banner is None


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_txt_agrees_with_raw(captures_dir: Path, scenario: str) -> None:
    entries = parse_txt(captures_dir / f"{scenario}.txt")
    raw = parse_raw(captures_dir / f"{scenario}.raw")
    received = [e.message for e in entries if e.direction == "recv" and e.message is not None]
    assert [m.fields for m in received] == [m.fields for m in raw]
    sent = [e for e in entries if e.direction == "send"]
    assert sent[0].message is not None and sent[0].message.get("Action") == "Login"
    assert sent[-1].message is not None and sent[-1].message.get("action") == "Logoff"
    offsets = [e.offset for e in entries]
    assert offsets == sorted(offsets)
    banner = [e for e in entries if e.direction == "recv" and e.message is None]
    connections = parse_connections(captures_dir / f"{scenario}.raw")
    assert [e.text for e in banner] == ["Asterisk Call Manager/11.0.0"] * len(connections)
    assert any(e.direction == "note" for e in entries)


def test_message_accessors(captures_dir: Path) -> None:
    messages = parse_raw(captures_dir / "queue_call.raw")
    newchannel = next(m for m in messages if m.name == "Newchannel")
    assert newchannel.get("channel") == newchannel.get("Channel")
    assert newchannel.get("AccountCode") == ""
    assert "Linkedid" in newchannel and "Nope" not in newchannel
    name, keys = event_shape(newchannel)
    assert name == "Newchannel"
    assert keys[:3] == ("Privilege", "Channel", "ChannelState")
    assert keys[-2:] == ("Uniqueid", "Linkedid")
    repeated = AmiMessage([("Event", "X"), ("Variable", "a=1"), ("Variable", "b=2")])
    assert repeated.get("Variable") == "a=1"
    assert repeated.get_all("variable") == ["a=1", "b=2"]
    assert repeated.keys() == ["Event", "Variable", "Variable"]


def test_filter_one_call(captures_dir: Path) -> None:
    messages = parse_raw(captures_dir / "queue_call.raw")
    [linkedid] = linkedids(messages)
    call = filter_linkedid(messages, linkedid)
    names = [m.name for m in call]
    assert names[0] == "Newchannel"
    assert {"QueueCallerJoin", "AgentConnect", "BridgeEnter", "Hangup"} <= set(names)
    assert all(m.get("Linkedid") == linkedid or m.get("DestLinkedid") == linkedid for m in call)
    assert filter_linkedid(messages, "no-such-call") == []
    assert all(m.is_event for m in events_only(messages))


def test_compare_shapes_agrees_with_itself(captures_dir: Path) -> None:
    for scenario in SCENARIOS:
        messages = parse_raw(captures_dir / f"{scenario}.raw")
        assert compare_shapes(messages, messages) == []


def test_compare_shapes_reports_differences(captures_dir: Path) -> None:
    call = events_only(parse_raw(captures_dir / "abandon.raw"))
    changed = list(call)
    moved = changed.pop(2)
    changed.insert(7, moved)
    dropped = changed.pop(20)
    changed.append(AmiMessage([("Event", "Bogus"), ("Privilege", "call,all")]))
    first = changed[0]
    last_key = first.fields[-1][0]
    changed[0] = AmiMessage(first.fields[:-1] + [("Extra", "1")])
    problems = compare_shapes(call, changed)
    assert f"event {moved.name} out of order: expected as #3, got as #8" in problems
    assert any(p.startswith(f"missing event {dropped.name}") for p in problems)
    assert any(p.startswith("extra event Bogus at #") for p in problems)
    assert f"#1 {first.name}: missing field(s) {last_key}" in problems
    assert f"#1 {first.name}: extra field(s) Extra" in problems
    swapped = AmiMessage([first.fields[0], first.fields[2], first.fields[1], *first.fields[3:]])
    [order] = compare_shapes([first], [swapped])
    assert "fields out of order" in order
    ignored = (first.fields[1][0], first.fields[2][0])
    assert compare_shapes([first], [swapped], ignore_fields=ignored) == []
    assert compare_shapes(call, [*call, changed[-1]], ignore_events=("bogus",)) == []


def test_strict_framing() -> None:
    good = b"Asterisk Call Manager/11.0.0\r\nEvent: A\r\nX: 1\r\n\r\n"
    assert [m.fields for m in parse_raw(good)] == [[("Event", "A"), ("X", "1")]]
    with pytest.raises(CaptureError, match="without CR"):
        parse_raw(b"Event: A\nX: 1\r\n\r\n")
    with pytest.raises(CaptureError, match="not terminated"):
        parse_raw(b"Event: A\r\nX: 1\r\n")
    with pytest.raises(CaptureError, match="not a 'Key: Value' line"):
        parse_raw(b"Event: A\r\ngarbage\r\n\r\n")
    with pytest.raises(CaptureError, match="cannot read capture"):
        parse_raw(Path("/nonexistent/capture.raw"))


def test_agi_session_capture(captures_dir: Path) -> None:
    lines = parse_agi_session(captures_dir / "fastagi_session.txt")
    from_asterisk = [line.text for line in lines if line.direction == "asterisk"]
    from_server = [line.text for line in lines if line.direction == "server"]
    assert from_asterisk[0] == "agi_network: yes" and from_asterisk[22] == ""
    assert from_server == [
        "ANSWER",
        'STREAM FILE hello-world ""',
        "GET DATA beep 6000 1",
        'SET VARIABLE IVR_CHOICE "1"',
        'VERBOSE "FastAGI test got digit 1" 1',
    ]
    assert from_asterisk[23:] == [
        "200 result=0",
        "200 result=0 endpos=11234",
        "200 result=1",
        "200 result=1",
        "200 result=1",
    ]
