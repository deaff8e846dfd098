"""The 12345 hotline's own config (config/asterisk) on the simulator: inbound calls through the
IVR (FastAGI) into the queue, agents answering or not, callers giving up, recordings."""

from __future__ import annotations

import asyncio
import wave

import numpy as np
import pytest

from callcenter.simulator import Agent, Caller, Simulator
from callcenter.simulator.captures import AmiMessage, compare_shapes, parse_raw

from .support import CAPTURES, FastAgiServer, RawAmiClient, ami_login, by_channel, role


async def greet(reader, writer, env):  # the service's default IVR: greet, then the queue
    writer.write(b"ANSWER\n")
    await writer.drain()
    await reader.readline()
    writer.write(b'STREAM FILE hello-world ""\n')
    await writer.drain()
    await reader.readline()


@pytest.fixture
def agi_script():
    return greet


def events_of(client: RawAmiClient, channel_role: str) -> list[AmiMessage]:
    return by_channel([m for m in parse_raw(client.raw) if m.is_event]).get(channel_role, [])


async def test_queued_call_answered_by_agent(hotline_sim: Simulator, ivr: FastAgiServer) -> None:
    sim = hotline_sim
    client = await ami_login(sim)
    sim.add_agent(
        "PJSIP/1001", Agent(answer_after=3, voice="a01.wav"), queues=["hotline"], login=True
    )
    call = sim.place_call("13800138000", behaviour=Caller(talk_time=20, voice="c01.wav"))
    await call.ended
    await sim.wait_idle()
    await client.wait_for(lambda m: m.get("Event") == "Cdr" and m.get("Channel") == call.name)
    caller = events_of(client, "PJSIP/trunk")
    names = [m.name for m in caller]
    assert names[:4] == ["Newchannel", "VarSet", "Newexten", "Newexten"]
    assert caller[0].get("CallerIDNum") == "13800138000"
    assert caller[0].get("ChannelStateDesc") == "Ring" and caller[0].get("Exten") == "12345"
    apps = [m.get("Application") for m in caller if m.name == "Newexten"]
    assert apps == ["NoOp", "Answer", "Set", "MixMonitor", "AGI", "Queue"]
    assert ivr.envs[0]["agi_network_script"] == "ivr"
    assert ivr.envs[0]["agi_dnid"] == "12345"
    for event in ("QueueCallerJoin", "AgentCalled", "AgentConnect", "BridgeEnter", "AgentComplete"):
        assert event in names, event
    complete = next(m for m in caller if m.name == "AgentComplete")
    assert complete.get("Reason") == "caller" and 19 <= int(complete.get("TalkTime") or 0) <= 25
    connect = next(m for m in caller if m.name == "AgentConnect")
    assert connect.get("Interface") == "PJSIP/1001" and connect.get("MemberName") == "PJSIP/1001"
    # the caller's channel from entering the queue to its end is what sip_call.raw shows for
    # a real PJSIP caller (RTCP and RTP QoS variables aside)
    real = [
        m
        for m in parse_raw(CAPTURES / "sip_call.raw")
        if m.get("Channel") == "PJSIP/6001-00000000" and m.is_event
    ]
    real = real[next(i for i, m in enumerate(real) if m.get("Application") == "Queue") :]
    real = [
        m
        for m in real
        if not m.name.startswith("RTCP")
        and not (m.get("Variable") or "").startswith(("RTPAUDIOQOS", "BRIDGEPVTCALLID"))
    ]
    ours = caller[next(i for i, m in enumerate(caller) if m.get("Application") == "Queue") :]
    # DialState (RINGING): our members are PJSIP phones that send 180 Ringing, the capture's
    # members were Local channels that never indicate ringing (app_queue.c publishes it)
    floating = ("AgentComplete", "Cdr", "NewConnectedLine", "DialState")
    assert compare_shapes(real, ours, ignore_events=floating, ignore_fields=("Timestamp",)) == []
    dial_state = next(m for m in caller if m.name == "DialState")
    assert dial_state.get("DialStatus") == "RINGING" and dial_state.get("DestChannel")
    # timestampevents = yes in manager.conf: Timestamp right after Privilege, simulated clock
    first = caller[0]
    assert first.keys()[:3] == ["Event", "Privilege", "Timestamp"]
    stamps = [float(m.get("Timestamp") or 0) for m in caller]
    assert stamps == sorted(stamps)
    # simulated seconds (the test takes well under 1 s); generous: a loaded machine stretches
    # the scaled clock, never shrinks it
    assert 20 <= stamps[-1] - stamps[0] < 80
    await client.close()


async def test_caller_abandons_while_agent_rings(
    hotline_sim: Simulator, ivr: FastAgiServer
) -> None:
    sim = hotline_sim
    client = await ami_login(sim)
    sim.add_agent("PJSIP/1001", Agent(mode="never"), queues=["hotline"], login=True)
    call = sim.place_call("13900000001", behaviour=Caller(patience=6))
    await call.ended
    await sim.wait_idle()
    await client.wait_for(lambda m: m.get("Event") == "Cdr" and m.get("Channel") == call.name)
    names = [m.name for m in events_of(client, "PJSIP/trunk")]
    i = names.index("QueueCallerAbandon")
    assert names.index("HangupRequest") < names.index("MusicOnHoldStop") < i
    assert names[i : i + 3] == ["QueueCallerAbandon", "QueueCallerLeave", "VarSet"]
    dial_ends = [m.get("DialStatus") for m in parse_raw(client.raw) if m.get("Event") == "DialEnd"]
    assert dial_ends == ["CANCEL", "CANCEL"]
    abandon = next(m for m in parse_raw(client.raw) if m.get("Event") == "QueueCallerAbandon")
    assert 5 <= int(abandon.get("HoldTime") or 0) <= 10  # patience 6 s (load only stretches)
    assert call.variables["ABANDONED"] == "TRUE"
    await client.close()


async def test_ring_no_answer_then_next_agent(hotline_sim: Simulator, ivr: FastAgiServer) -> None:
    sim = hotline_sim
    client = await ami_login(sim)
    sim.add_agent("PJSIP/1001", Agent(mode="never"), queues=["hotline"], login=True)
    sim.add_agent("PJSIP/1002", Agent(answer_after=2), queues=["hotline"], login=True)
    call = sim.place_call("13900000002", behaviour=Caller(talk_time=5))
    await call.ended
    await sim.wait_idle()
    await client.wait_for(lambda m: m.get("Event") == "Cdr" and m.get("Channel") == call.name)
    msgs = [m for m in parse_raw(client.raw) if m.is_event]
    seq = [
        (m.name, m.get("Interface") or m.get("DialStatus") or "")
        for m in msgs
        if m.name in ("AgentCalled", "AgentRingNoAnswer", "DialEnd", "AgentConnect")
    ]
    assert seq == [
        ("AgentCalled", "PJSIP/1001"),
        ("AgentRingNoAnswer", "PJSIP/1001"),
        ("DialEnd", "NOANSWER"),
        ("DialEnd", "CANCEL"),
        ("AgentCalled", "PJSIP/1002"),
        ("DialEnd", "ANSWER"),
        ("AgentConnect", "PJSIP/1002"),
    ]
    rna = next(m for m in msgs if m.name == "AgentRingNoAnswer")
    assert rna.get("RingTime") == "15000"  # queues.conf: timeout = 15
    statuses = [
        (m.get("Interface"), m.get("Status")) for m in msgs if m.name == "QueueMemberStatus"
    ]
    assert ("PJSIP/1001", "6") in statuses and ("PJSIP/1002", "2") in statuses
    await client.close()


async def test_paused_agent_is_skipped_and_wrapup_respected(hotline_sim: Simulator, ivr) -> None:
    sim = hotline_sim
    log = sim.record_events()
    sim.add_agent("PJSIP/1001", Agent(answer_after=1), queues=["hotline"], login=True)
    sim.add_agent("PJSIP/1002", Agent(answer_after=1), queues=["hotline"], login=True)
    assert sim.pbx.queues.set_paused("hotline", "PJSIP/1001", "lunch", True)
    first = sim.place_call("13900000003", behaviour=Caller(talk_time=3))
    await first.ended
    second = sim.place_call("13900000004", behaviour=Caller(talk_time=3))
    await second.ended
    await sim.wait_idle()
    called = [t for n, t in log.events if n == "AgentCalled"]
    assert all("Interface: PJSIP/1002" in t for t in called)

    # 1002 was rung again only after its 5 s wrap-up (1001 paused), on the simulated clock
    def stamp(text: str) -> float:
        return float(text.split("Timestamp: ")[1].split("\r\n")[0])

    def lastcall(text: str) -> int:
        return int(text.split("LastCall: ")[1].split("\r\n")[0])

    # app_queue: time(NULL) - lastcall < wrapuptime, both whole seconds; lastcall is the
    # member's own (QueueMemberStatus), not the AgentComplete stamp, which may be a second later
    before_second = log.events[: log.events.index(("AgentCalled", called[1]))]
    first_end = max(
        lastcall(t) for n, t in before_second if n == "QueueMemberStatus" and "PJSIP/1002" in t
    )
    assert first_end > 0
    assert len(called) == 2 and int(stamp(called[1])) - first_end >= 5


async def test_mixmonitor_wav_has_both_voices(hotline_sim: Simulator, ivr: FastAgiServer) -> None:
    sim = hotline_sim
    sim.add_agent(
        "PJSIP/1001", Agent(answer_after=2, voice="a01.wav"), queues=["hotline"], login=True
    )
    log = sim.record_events()
    call = sim.place_call("13800000005", behaviour=Caller(talk_time=25, voice="c02.wav"))
    await call.ended
    path = await call.recording()
    assert path == sim.config.recordings_dir / f"{call.uniqueid}.wav"
    with wave.open(str(path)) as w:
        assert (w.getframerate(), w.getsampwidth(), w.getnchannels()) == (8000, 2, 1)
        frames = w.readframes(w.getnframes())
        duration = w.getnframes() / 8000

    def stamp(event: str) -> float:
        text = next(t for n, t in log.events if n == event and f"Channel: {call.name}\r" in t)
        return float(text.split("Timestamp: ")[1].split("\r\n")[0])

    # the file lasts from MixMonitor to the hang-up on the simulated clock (a loaded machine
    # stretches the call, the file follows it): at least ring 2 s + talk 25 s + greeting 1.4 s
    started, bridged, ended = stamp("MixMonitorStart"), stamp("BridgeEnter"), stamp("Hangup")
    assert abs(duration - (ended - started)) < 2
    assert duration >= 2 + 25 + 1.4 - 0.5
    samples = np.frombuffer(frames, dtype="<i2").astype(np.float64)
    second = lambda t: samples[int(t * 8000) : int((t + 1) * 8000)]  # noqa: E731
    assert np.sqrt(np.mean(second(bridged - started + 1) ** 2)) > 100  # the agent greets
    assert np.sqrt(np.mean(second(0.2) ** 2)) < 50  # before anyone speaks: silence


async def test_stereo_recording_by_ami_action(hotline_sim: Simulator, ivr: FastAgiServer) -> None:
    sim = hotline_sim
    client = await ami_login(sim)
    sim.add_agent(
        "PJSIP/1001", Agent(answer_after=1, voice="a01.wav"), queues=["hotline"], login=True
    )
    call = sim.place_call("13800000006", behaviour=Caller(talk_time=30, voice="c03.wav"))
    await call.wait_bridged()
    resp = await client.action("MixMonitor", Channel=call.name, File="stereo-test.wav", Options="D")
    assert resp.get("Response") == "Success" and resp.get("Message") is None
    # the agent speaks first (a01.wav, 5.7 s from 0.5 s), then the caller (c03.wav, 6.3 s)
    await sim.advance(14)
    stop = await client.action("StopMixMonitor", Channel=call.name)
    assert stop.get("Response") == "Success"
    await client.wait_for(lambda m: m.get("Event") == "MixMonitorStop")
    call.hangup()
    await call.ended
    await sim.wait_idle()
    path = sim.config.recordings_dir / "stereo-test.wav"
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (2, 2, 8000)
        duration = w.getnframes() / 8000
        frames = w.readframes(w.getnframes())
    assert 14 <= duration < 18  # 14 s asked; a loaded machine adds a little, never less
    both = np.frombuffer(frames, dtype="<i2").reshape(-1, 2).astype(np.float64)

    def rms(channel: int, start: float, end: float) -> float:
        part = both[int(start * 8000) : int(end * 8000), channel]
        return float(np.sqrt(np.mean(part**2)))

    caller_left, agent_right = 0, 1
    assert rms(agent_right, 1, 5) > 100 and rms(caller_left, 1, 5) < 50
    assert rms(caller_left, 8, 12) > 100 and rms(agent_right, 8, 12) < 50
    again = await client.action("StopMixMonitor", Channel="PJSIP/trunk-ffffffff")
    assert again.get("Message") == "No such channel"
    await client.close()


async def test_many_callers_share_agents_evenly(hotline_sim: Simulator, ivr: FastAgiServer) -> None:
    sim = hotline_sim
    for n in range(3):
        sim.add_agent(f"PJSIP/100{n + 1}", Agent(answer_after=1), queues=["hotline"], login=True)
    calls = [sim.place_call(f"1380000010{n}", behaviour=Caller(talk_time=10)) for n in range(6)]
    await asyncio.gather(*(c.ended for c in calls))
    await sim.wait_idle()
    taken = {m.interface: m.calls for m in sim.queues["hotline"].members.values()}
    assert sorted(taken.values()) == [2, 2, 2]
    assert sim.queues["hotline"].completed == 6
    assert role("PJSIP/trunk-0000000a") == "PJSIP/trunk"


async def test_ivr_keypresses_and_agent_hangs_up(hotline_sim: Simulator) -> None:
    sim = hotline_sim
    replies: list[str] = []

    async def menu(reader, writer, env):
        replies.append(await agi.command(reader, writer, "ANSWER"))
        replies.append(await agi.command(reader, writer, "GET DATA menu 5000 2"))
        replies.append(await agi.command(reader, writer, "WAIT FOR DIGIT 5000"))
        replies.append(await agi.command(reader, writer, 'SET VARIABLE IVR_CHOICE "done"'))

    agi = FastAgiServer(menu)
    sim.config.agi_port = await agi.start()
    log = sim.record_events()
    sim.add_agent("PJSIP/1003", Agent(answer_after=1, talk_time=8), queues=["hotline"], login=True)
    call = sim.place_call(
        "13600000000", behaviour=Caller(keys="127", key_delay=0.5, talk_time=None)
    )
    await call.ended
    await sim.wait_idle()
    await agi.stop()
    assert replies == ["200 result=0", "200 result=12", "200 result=55", "200 result=1"]
    dtmf = [t.split("Digit: ")[1][0] for n, t in log.events if n == "DTMFEnd"]
    assert dtmf == ["1", "2", "7"]
    assert call.variables["IVR_CHOICE"] == "done"
    complete = next(t for n, t in log.events if n == "AgentComplete")
    talk = int(complete.split("TalkTime: ")[1].split("\r\n")[0])
    assert "Reason: agent\r\n" in complete and 8 <= talk <= 12
    ends = [
        (n, t.split("Channel: ")[1].split("-")[0])
        for n, t in log.events
        if n in ("HangupRequest", "Hangup") and "Channel: " in t
    ]
    assert ends[0] == ("HangupRequest", "PJSIP/1003")
    assert ends[-1] == ("Hangup", "PJSIP/trunk")


async def test_demo_traffic_places_and_ends_calls(hotline_sim: Simulator) -> None:
    from callcenter.simulator.traffic import login_agents, run_traffic

    sim = hotline_sim
    sim.config.agi_host, sim.config.agi_port = "127.0.0.1", 9
    login_agents(sim, count=4)
    stop = asyncio.Event()
    stats = await run_traffic(sim, stop, calls_per_minute=120, max_calls=6)
    assert stats.placed == 6
    await sim.wait_idle(20)
    assert stats.ended == 6
    hotline = sim.queues["hotline"]
    assert hotline.completed + hotline.abandoned == 6
