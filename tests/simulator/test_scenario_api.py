"""The scenario API: Originate outcomes and reason codes, the virtual clock, determinism."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from callcenter.simulator import Agent, Caller, Destination, Simulator
from callcenter.simulator.pbx import OriginateParams

from .support import RawAmiClient


async def _originate(client: RawAmiClient, number: str, **extra: str):
    aid = client.send(
        "Originate",
        Channel=f"PJSIP/trunk/{number}",
        Context="revisit",
        Exten="s",
        Priority="1",
        Async="true",
        Timeout="20000",
        CallerID="12345 <12345>",
        **extra,
    )
    queued = await client.response(aid)
    assert queued.get("Message") == "Originate successfully queued"
    return await client.wait_for(
        lambda m: m.get("Event") == "OriginateResponse" and m.get("ActionID") == aid
    )


async def test_originate_outcomes_and_reasons(hotline_sim: Simulator) -> None:
    sim = hotline_sim
    sim.config.agi_host, sim.config.agi_port = "127.0.0.1", 9  # nobody listens: AGISTATUS=FAILURE
    sim.add_destination("1001001", Destination(mode="answer", answer_after=2, talk_time=5))
    sim.add_destination("1001002", Destination(mode="busy"))
    sim.add_destination("1001003", Destination(mode="noanswer"))
    sim.add_destination("1001004", Destination(mode="congestion"))
    sim.add_destination("1001005", Destination(mode="hangup", answer_after=3))
    client = RawAmiClient()
    await client.connect(sim.ami_port)
    await client.login("callcenter", "CHANGE_ME")
    results = {}
    for n in range(1, 6):
        resp = await _originate(client, f"100100{n}")
        results[n] = (resp.get("Response"), resp.get("Reason"))
        assert resp.keys()[:3] == ["Event", "Privilege", "Timestamp"]
        assert resp.keys()[3:] == [
            "ActionID",
            "Response",
            "Channel",
            "Context",
            "Exten",
            "Reason",
            "Uniqueid",
            "CallerIDNum",
            "CallerIDName",
        ]
    assert results == {
        1: ("Success", "4"),
        2: ("Failure", "5"),
        3: ("Failure", "3"),
        4: ("Failure", "8"),
        5: ("Failure", "0"),  # pbx_dial_reason(): no cause recorded when the far end hangs up
    }
    await sim.wait_idle(10)
    hangups = {
        m.get("Channel", "")[:-9]: (m.get("Cause"), m.get("Cause-txt"))
        for m in client.messages
        if m.get("Event") == "Hangup"
    }
    assert hangups["PJSIP/trunk"]  # every leg ended with a Hangup event
    causes = [m.get("Cause") for m in client.messages if m.get("Event") == "Hangup"]
    assert "17" in causes and "34" in causes
    dispositions = sorted(m.get("Disposition") for m in client.messages if m.get("Event") == "Cdr")
    assert dispositions == ["ANSWERED", "BUSY", "CONGESTION", "NO ANSWER", "NO ANSWER"]
    unknown = await _originate_to(client, "PJSIP/nosuch")
    assert (unknown.get("Response"), unknown.get("Reason"), unknown.get("Uniqueid")) == (
        "Failure",
        "0",
        "<unknown>",
    )
    await client.close()


async def _originate_to(client: RawAmiClient, channel: str):
    aid = client.send("Originate", Channel=channel, Application="Wait", Data="1", Async="true")
    return await client.wait_for(
        lambda m: m.get("Event") == "OriginateResponse" and m.get("ActionID") == aid
    )


async def test_revisit_survey_keys_reach_the_agi_script(hotline_sim: Simulator) -> None:
    from .support import FastAgiServer

    answers: list[str] = []

    async def survey(reader, writer, env):
        answers.append(env["agi_network_script"])
        reply = await agi.command(reader, writer, "GET DATA survey-question 5000 1")
        answers.append(reply)

    agi = FastAgiServer(survey)
    hotline_sim.config.agi_port = await agi.start()
    hotline_sim.add_destination(
        "13700000000", Destination(keys="2", first_key_after=3, talk_time=30)
    )
    ok, reason, chan = await hotline_sim.pbx.originate(
        OriginateParams(channel="PJSIP/trunk/13700000000", context="revisit", exten="s", priority=1)
    )
    assert ok and reason == 4 and chan is not None
    hotline_sim.pbx.after_originate(
        chan, OriginateParams(channel="", context="revisit", exten="s", priority=1)
    )
    await chan.ended
    await agi.stop()
    assert answers == ["revisit", "200 result=2"]


async def test_time_scale_runs_a_minute_in_a_fraction(tmp_path: Path) -> None:
    sim = Simulator(
        port=0, time_scale=0.005, seed=5, recordings_dir=tmp_path, start_time=1_800_000_000
    )
    await sim.start()
    try:
        sim.config.agi_port = 9
        sim.add_agent("PJSIP/1001", Agent(answer_after=5), queues=["hotline"], login=True)
        log = sim.record_events()
        wall = time.monotonic()
        call = sim.place_call("139", behaviour=Caller(talk_time=60))
        await call.ended
        elapsed_wall = time.monotonic() - wall
        simulated = sim.clock.now() - 1_800_000_000
        assert elapsed_wall < 5.0 and simulated >= 65  # ~0.35 s when the machine is idle
        complete = next(t for n, t in log.events if n == "AgentComplete")
        talk = int(complete.split("TalkTime: ")[1].split("\r\n")[0])
        assert 59 <= talk <= 65  # 60 asked; a loaded machine can only stretch it
        assert call.uniqueid.startswith("18000000")
    finally:
        await sim.stop()


async def _run_once(tmp_path: Path) -> tuple[list[str], list[tuple[str, ...]]]:
    sim = Simulator(
        port=0, time_scale=0.05, seed=42, recordings_dir=tmp_path, start_time=1_700_000_000
    )
    await sim.start()
    try:
        sim.config.agi_port = 9
        log = sim.record_events()
        for n in range(3):
            sim.add_agent(
                f"PJSIP/100{n + 1}", Agent(answer_after=1 + n), queues=["hotline"], login=True
            )
        calls = [sim.place_call(f"13{n}", behaviour=Caller(talk_time=10 + 5 * n)) for n in range(4)]
        await asyncio.gather(*(c.ended for c in calls))
        await sim.wait_idle()
        per_channel: dict[str, list[str]] = {}
        for name, text in log.events:
            if "\r\nChannel: " in text:
                chan = text.split("\r\nChannel: ")[1].split("\r\n")[0]
                per_channel.setdefault(chan, []).append(name)
        ids = sorted(c.uniqueid for c in calls)
        return ids, sorted(tuple(v) for v in per_channel.values())
    finally:
        await sim.stop()


async def test_seeded_runs_are_repeatable(tmp_path: Path) -> None:
    """Same seed and start time: same Uniqueids, same story for every channel. (The
    interleaving of different channels' events follows wall-clock timers, as Asterisk's
    threads do, so it is not compared.)"""
    first = await _run_once(tmp_path / "a")
    second = await _run_once(tmp_path / "b")
    assert first == second
    assert first[0][0].startswith("1700000000.")


async def test_place_n_calls_advance_and_await_states(tmp_path: Path) -> None:
    sim = Simulator(port=0, time_scale=0.01, seed=9, recordings_dir=tmp_path)
    await sim.start()
    try:
        sim.config.agi_port = 9  # no IVR server: AGI fails fast, calls go on to the queue
        sim.add_agent("PJSIP/1001", Agent(answer_after=1), queues=["hotline"], login=True)
        calls = sim.place_calls(3, behaviour=lambda i: Caller(talk_time=20 + i))
        assert [c.channel.cid_num for c in calls] == ["13800000000", "13800000001", "13800000002"]
        # one agent: the first caller talks, the other two wait in the queue
        await calls[0].wait_bridged()
        await calls[1].wait_queued()
        await calls[2].wait_queued()
        queue = sim.queues["hotline"]
        assert [e.chan for e in queue.entries] == [calls[1].channel, calls[2].channel]
        before = sim.clock.now()
        await sim.advance(5)
        assert sim.clock.now() - before >= 5
        assert calls[1].channel.bridge is None  # still waiting: the first call lasts 20 s
        await sim.wait_until(lambda: calls[1].channel.bridge is not None, timeout=5)
        assert calls[0].ended.done()
        await asyncio.gather(*(c.ended for c in calls))
    finally:
        await sim.stop()
