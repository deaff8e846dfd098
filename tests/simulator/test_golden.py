"""Golden transcripts: the simulator replays the capture scenarios of a real Asterisk 22.10.1
(shared/asterisk/captures) with the capture rig's own dialplan, and its AMI output must have
the same events, in the same order per channel, with the same fields in the same order.

Values that differ naturally (Uniqueid, times, channel-name counters) are not compared; the
interleaving of different channels' events depends on Asterisk's threads, so the order is
compared per channel. A few events are published from other threads and float (AgentComplete,
Cdr, DeviceStateChange, QueueMemberStatus): their presence and fields are compared instead.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from callcenter.simulator.captures import AmiMessage, compare_shapes, event_shape, parse_raw
from callcenter.simulator.scenario import Simulator

from .support import FastAgiServer, RawAmiClient, by_channel

FLOATING = {"AgentComplete", "Cdr", "DeviceStateChange", "QueueMemberStatus", "OriginateResponse"}
LIST_EVENTS = {
    "CoreShowChannel",
    "CoreShowChannelsComplete",
    "QueueParams",
    "QueueMember",
    "QueueEntry",
    "QueueStatusComplete",
    "QueueSummary",
    "QueueSummaryComplete",
}
# values that must match too (not only the field names)
VALUE_KEYS = (
    "Application",
    "AppData",
    "Variable",
    "DialStatus",
    "Cause",
    "Reason",
    "Queue",
    "ChannelStateDesc",
    "Context",
    "Digit",
    "Direction",
    "Command",
    "Disposition",
)
NATURAL = ("Uniqueid", "Linkedid", "AppData", "Value")  # differ from run to run


def _values(msgs: list[AmiMessage]) -> list[tuple[str, ...]]:
    out = []
    for m in msgs:
        vals = [m.name]
        for key in VALUE_KEYS:
            v = m.get(key)
            if v is None or key == "AppData" and any(c.isdigit() for c in v) and "." in v:
                continue
            vals.append(f"{key}={v}")
        out.append(tuple(vals))
    return out


def _events(messages: list[AmiMessage]) -> list[AmiMessage]:
    return [
        m
        for m in messages
        if m.is_event
        and m.name not in LIST_EVENTS
        and m.name not in ("FullyBooted", "SuccessfulAuth")
    ]


def assert_same_calls(capture: Path, raw: bytes, *, extra_ignore: set[str] = frozenset()) -> None:
    expected = _events(parse_raw(capture))
    actual = _events(parse_raw(raw))  # strict CRLF framing of the simulator's bytes
    ignore = FLOATING | set(extra_ignore)
    want = by_channel(expected, ignore)
    got = by_channel(actual, ignore)
    assert sorted(got) == sorted(want), f"channels differ: {sorted(got)} vs {sorted(want)}"
    problems: list[str] = []
    for chan, msgs in want.items():
        for p in compare_shapes(msgs, got[chan]):
            problems.append(f"{chan or '(no channel)'}: {p}")
        if _values(msgs) != _values(got[chan]):
            problems.append(
                f"{chan}: values differ\n  want {_values(msgs)}\n  got  {_values(got[chan])}"
            )
    # floating events: same count and same field names
    for name in FLOATING - {"DeviceStateChange"}:
        w = [event_shape(m) for m in expected if m.name == name]
        g = [event_shape(m) for m in actual if m.name == name]
        if Counter(w) != Counter(g):
            problems.append(f"{name}: want {Counter(w)} got {Counter(g)}")
    assert not problems, "\n".join(problems)


async def _login(sim: Simulator, capture: Path) -> RawAmiClient:
    client = RawAmiClient()
    await client.connect(sim.ami_port)
    assert client.banner == b"Asterisk Call Manager/11.0.0\r\n"
    resp = await client.login()
    assert resp.get("Message") == "Authentication accepted"
    await client.wait_for(lambda m: m.get("Event") == "SuccessfulAuth")
    login_expected = parse_raw(capture)[:3]
    assert compare_shapes(login_expected, client.messages[:3], ignore_fields=()) == []
    return client


async def _originate(
    client: RawAmiClient, caller_id: str = "Sim Caller <5551000>", **target: str
) -> AmiMessage:
    """The capture rig's Originate: asynchronous, 30 s to answer."""
    return await client.action(
        "Originate", CallerID=caller_id, Timeout="30000", Async="true", **target
    )


async def _finish(sim: Simulator, client: RawAmiClient) -> None:
    await sim.wait_idle(30)
    items = await client.list_action("CoreShowChannels")
    assert items[-1].get("ListItems") == "0"
    bye = await client.action("Logoff")
    assert (bye.get("Response"), bye.get("Message")) == ("Goodbye", "Thanks for all the fish.")
    await client.closed()


async def test_queue_call_matches_capture(capture_sim: Simulator, captures: Path) -> None:
    client = await _login(capture_sim, captures / "queue_call.raw")
    resp = await _originate(
        client, Channel="Local/s@caller-sim", Context="queue-test", Exten="s", Priority="1"
    )
    assert resp.get("Message") == "Originate successfully queued"
    await client.wait_for(lambda m: m.get("Event") == "AgentConnect")
    mid = await client.list_action("CoreShowChannels")
    assert mid[-1].get("ListItems") == "4"
    await _finish(capture_sim, client)
    assert_same_calls(captures / "queue_call.raw", client.raw)


async def test_mixmonitor_matches_capture(capture_sim: Simulator, captures: Path) -> None:
    client = await _login(capture_sim, captures / "mixmonitor.raw")
    await _originate(
        client, Channel="Local/s@caller-sim", Context="queue-test", Exten="rec", Priority="1"
    )
    await _finish(capture_sim, client)
    assert_same_calls(captures / "mixmonitor.raw", client.raw)
    start = next(m for m in parse_raw(client.raw) if m.get("Event") == "MixMonitorStart")
    path = await capture_sim.wait_recording(start.get("Uniqueid") or "")
    assert path.name == f"{start.get('Uniqueid')}.wav"


async def test_abandon_matches_capture(capture_sim: Simulator, captures: Path) -> None:
    client = await _login(capture_sim, captures / "abandon.raw")
    await _originate(
        client, Channel="Local/abandon@caller-sim", Context="queue-test", Exten="slow", Priority="1"
    )
    await client.wait_for(lambda m: m.get("Event") == "AgentCalled")
    status = await client.list_action("QueueStatus", Queue="support-slow")
    assert [m.name for m in status] == [
        "Success",
        "QueueParams",
        "QueueMember",
        "QueueEntry",
        "QueueStatusComplete",
    ]
    want = [m for m in parse_raw(captures / "abandon.raw") if m.get("ActionID", "").endswith("/31")]
    assert compare_shapes(want, status) == []
    await _finish(capture_sim, client)
    summary = await _summary_after(capture_sim)
    assert summary == ("1", "1", "0")
    assert_same_calls(captures / "abandon.raw", client.raw)


async def _summary_after(sim: Simulator) -> tuple[str | None, ...]:
    client = RawAmiClient()
    await client.connect(sim.ami_port)
    await client.login()
    items = await client.list_action("QueueSummary", Queue="support-slow")
    await client.close()
    s = items[1]
    return s.get("LoggedIn"), s.get("Available"), s.get("Callers")


async def test_ivr_matches_capture(capture_sim: Simulator, captures: Path) -> None:
    client = await _login(capture_sim, captures / "ivr.raw")
    await _originate(
        client,
        Channel="Local/s@ivr-test",
        Application="Wait",
        Data="10",
        caller_id="IVR Tester <5552000>",
    )
    await _finish(capture_sim, client)
    assert_same_calls(captures / "ivr.raw", client.raw)


async def test_fastagi_matches_capture(capture_sim: Simulator, captures: Path) -> None:
    async def script(reader, writer, env):  # the capture's FastAGI route "test"
        await agi.command(reader, writer, "ANSWER")
        await agi.command(reader, writer, 'STREAM FILE hello-world ""')
        reply = await agi.command(reader, writer, "GET DATA beep 6000 1")
        digit = reply.split("result=")[1].split()[0]
        await agi.command(reader, writer, f'SET VARIABLE IVR_CHOICE "{digit}"')
        await agi.command(reader, writer, f'VERBOSE "FastAGI test got digit {digit}" 1')

    agi = FastAgiServer(script)
    port = await agi.start()
    capture_sim.config.agi_port = port
    # FastAGI round trips take real milliseconds: run this one closer to real time
    capture_sim.clock.rescale(0.25)
    try:
        client = await _login(capture_sim, captures / "fastagi.raw")
        await _originate(
            client, Channel="Local/s@caller-sim", Context="agi-test", Exten="s", Priority="1"
        )
        await _finish(capture_sim, client)
    finally:
        await agi.stop()
    assert [r for _, r in agi.replies] == [
        "200 result=0",
        "200 result=0 endpos=11234",
        "200 result=1",
        "200 result=1",
        "200 result=1",
    ]
    env = agi.envs[0]
    assert list(env)[:4] == ["agi_network", "agi_network_script", "agi_request", "agi_channel"]
    assert env["agi_network_script"] == "test" and env["agi_context"] == "agi-test"
    import os

    if os.environ.get("DBG"):
        from callcenter.simulator.captures import parse_raw as pr

        for m in pr(client.raw):
            if m.get("Channel", "").endswith(";1"):
                print(m.name, m.get("Command") or m.get("Application") or m.get("Variable") or "")
    assert_same_calls(captures / "fastagi.raw", client.raw)


async def test_queue_members_replies_match_capture(capture_sim: Simulator, captures: Path) -> None:
    client = await _login(capture_sim, captures / "queue_members.raw")
    got = [
        await client.action(
            "QueueAdd",
            Interface="Local/102@agents",
            MemberName="Agent 102",
            Paused="false",
            Penalty="0",
            Queue="support",
        ),
    ]
    got += await client.list_action("QueueStatus", Member="Local/102@agents", Queue="support")
    got.append(
        await client.action(
            "QueuePause",
            Interface="Local/102@agents",
            Paused="true",
            Queue="support",
            Reason="lunch",
        )
    )
    got += await client.list_action("QueueStatus", Member="Local/102@agents", Queue="support")
    got.append(
        await client.action(
            "QueuePause", Interface="Local/102@agents", Paused="false", Queue="support"
        )
    )
    got.append(await client.action("QueueRemove", Interface="Local/102@agents", Queue="support"))
    got.append(await client.action("QueueRemove", Interface="Local/102@agents", Queue="support"))
    got += await client.list_action("QueueStatus", Queue="support")
    await client.action("Logoff")
    expected = [m for m in parse_raw(captures / "queue_members.raw")[3:] if m.get("ActionID")]
    expected = [m for m in expected if m.get("Response") != "Goodbye"]
    assert compare_shapes(expected, got) == []
    assert [m.get("Message") for m in got if m.get("Response")] == [
        m.get("Message") for m in expected if m.get("Response")
    ]
    # the unsolicited events in between, in order and with the same fields
    want_events = [m for m in _events(parse_raw(captures / "queue_members.raw"))]
    got_events = [m for m in _events(client.messages)]
    assert compare_shapes(want_events, got_events) == []
    assert [m.get("Device") or m.get("PausedReason") for m in got_events] == [
        m.get("Device") or m.get("PausedReason") for m in want_events
    ]


async def test_queue_status_idle_matches_capture(capture_sim: Simulator, captures: Path) -> None:
    client = await _login(capture_sim, captures / "queue_status.raw")
    got = await client.list_action("QueueStatus")
    got += await client.list_action("QueueSummary", Queue="support")
    want = [
        m
        for m in parse_raw(captures / "queue_status.raw")
        if m.get("ActionID", "").endswith(("/7", "/8"))
    ]
    assert compare_shapes(want, got) == []
    assert [m.get("Queue") for m in got] == [m.get("Queue") for m in want]
    await client.close()
