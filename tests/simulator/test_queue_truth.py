"""app_queue as a real Asterisk 22.10.1 does it, where the simulator used to differ.

Ground truth: shared/asterisk/PROTOCOL.md ("More behaviour of real Asterisk 22.10.1" →
"Queues") and the captures; where no capture covers a rule, the test names the function of
apps/app_queue.c it follows.

Every test runs its own small rig (queues.conf + extensions.conf written to tmp_path) so that
ring timeouts, retries and Queue() timeouts are a few seconds. Times are exact: app_queue
subtracts whole-second time() values, and each call starts half-way between two simulated
second boundaries (`at_half_second`), so scheduling jitter never crosses a boundary.
"""

from __future__ import annotations

import asyncio
import random
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from callcenter.simulator import Agent, Caller, Simulator
from callcenter.simulator.captures import AmiMessage, parse_raw
from callcenter.simulator.config import SimulatorConfig
from callcenter.simulator.scenario import CallHandle

from .support import CAPTURE_DIALPLAN, SHARED, SNAPSHOT, RawAmiClient, ami_login, role

START = 1_800_000_000.0
SCALE = 0.05  # 1 simulated second = 50 ms

QUEUES = """
[general]
persistentmembers = no
shared_lastcall = yes

[rna]
strategy = rrmemory
timeout = 4
retry = 1
ringinuse = no
joinempty = yes
leavewhenempty = no

[timeout]
strategy = ringall
timeout = 4
retry = 1
joinempty = yes
leavewhenempty = no
member => Local/300@agents-noanswer,0,Agent 300

[local]
strategy = ringall
timeout = 30
retry = 1
joinempty = yes
member => Local/200@agents-noanswer,0,Agent 200

[cont]
strategy = ringall
timeout = 10
retry = 1
joinempty = yes

[late]
; the hotline's ring timing
strategy = rrmemory
timeout = 15
retry = 2
ringinuse = no
joinempty = yes

[hold]
strategy = ringall
timeout = 10
retry = 1
joinempty = yes

[ringall]
strategy = ringall
timeout = 3
retry = 1
ringinuse = no
joinempty = yes

[leastrecent]
strategy = leastrecent
timeout = 3
retry = 1
ringinuse = no
joinempty = yes

[fewestcalls]
strategy = fewestcalls
timeout = 3
retry = 1
ringinuse = no
joinempty = yes

[random]
strategy = random
timeout = 3
retry = 1
ringinuse = no
joinempty = yes

[rrmemory]
strategy = rrmemory
timeout = 3
retry = 1
ringinuse = no
joinempty = yes

[linear]
strategy = linear
timeout = 3
retry = 1
ringinuse = no
joinempty = yes

[wrandom]
strategy = wrandom
timeout = 3
retry = 1
ringinuse = no
joinempty = yes
"""

EXTENSIONS = """
[general]
static = yes
writeprotect = yes

[in]
exten => timeout,1,Answer()
 same => n,Queue(timeout,,,,7)
 same => n,NoOp(after queue ${QUEUESTATUS})
 same => n,Wait(2)
 same => n,Hangup()
exten => cont,1,Answer()
 same => n,Queue(cont,c)
 same => n,NoOp(continued ${QUEUESTATUS})
 same => n,Wait(2)
 same => n,Hangup()
exten => _[a-z].,1,Answer()
 same => n,Queue(${EXTEN})
 same => n,Hangup()

[elsewhere]
exten => s,1,NoOp(redirected)
 same => n,Wait(3)
 same => n,Hangup()

[agents-noanswer]
exten => _X.,1,NoOp(ringing)
 same => n,Wait(300)
 same => n,Hangup()
"""


def make_sim(tmp_path: Path, time_scale: float = SCALE, seed: int = 3) -> Simulator:
    confdir = tmp_path / "asterisk"
    confdir.mkdir(exist_ok=True)
    for name in ("manager.conf", "pjsip.conf", "cdr_manager.conf"):
        shutil.copy(CAPTURE_DIALPLAN / name, confdir / name)
    (confdir / "queues.conf").write_text(QUEUES)
    (confdir / "extensions.conf").write_text(EXTENSIONS)
    return Simulator(
        SimulatorConfig(
            port=0,
            time_scale=time_scale,
            start_time=START,
            seed=seed,
            asterisk_config_dir=confdir,
            recordings_dir=tmp_path / "rec",
            speech_samples_dir=SHARED / "speech-samples",
            timestampevents=True,
        )
    )


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[Simulator]:
    simulator = make_sim(tmp_path)
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def timed_sim(tmp_path: Path) -> AsyncIterator[Simulator]:
    """For tests that pin times: 0.5 s from a boundary is 125 ms of wall time, more than the
    lateness of a few chained timers on a busy machine (50 ms was not, under a full suite)."""
    simulator = make_sim(tmp_path, time_scale=0.25)
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def slow_sim(tmp_path: Path) -> AsyncIterator[Simulator]:
    """For tests that start 0.2 s off a boundary: 50 ms of wall time."""
    simulator = make_sim(tmp_path, time_scale=0.25)
    await simulator.start()
    yield simulator
    await simulator.stop()


async def at_phase(sim: Simulator, phase: float) -> None:
    """Wait until the simulated clock reads x.`phase` (at least 0.2 s from now). Started there,
    a call stays that far from every second boundary, so time() differences are exact. A
    sleep that woke up late (a busy machine) tries again at the next second."""
    while True:
        now = sim.clock.now()
        target = int(now) + phase
        while target - now < 0.2:
            target += 1
        await asyncio.sleep(sim.clock.wall(target - now))
        if sim.clock.now() - target < 0.05:
            return


async def at_half_second(sim: Simulator) -> None:
    await at_phase(sim, 0.5)


async def login(sim: Simulator) -> RawAmiClient:
    return await ami_login(sim, "cc")


def events(client: RawAmiClient) -> list[AmiMessage]:
    return [m for m in parse_raw(client.raw) if m.is_event]


def named(client: RawAmiClient, *names: str) -> list[AmiMessage]:
    return [m for m in events(client) if m.name in names]


async def gone(call: CallHandle, timeout: float = 20.0) -> None:
    """The call ended (wall seconds: a simulator that never lets it end fails the test)."""
    await asyncio.wait_for(asyncio.shield(call.ended), timeout)


async def cdr_of(client: RawAmiClient, channel: str) -> None:
    """The last event of a channel is its Cdr (cdr_manager)."""
    await client.wait_for(lambda m: m.get("Event") == "Cdr" and m.get("Channel") == channel)


def second(msg: AmiMessage) -> int:
    """The whole simulated second an event was sent in (its Timestamp)."""
    return int(float(msg.get("Timestamp") or 0))


async def test_ring_no_answer_then_next_member_after_retry(timed_sim: Simulator) -> None:
    """PROTOCOL.md (22.10.1, member timeout 4 s, retry 1 s); wait_for_answer() publishes
    DialEnd NOANSWER after rna(), hangupcalls() then CANCEL for the same line."""
    sim = timed_sim
    client = await login(sim)
    sim.add_agent("PJSIP/1001", Agent(mode="never"), queues=["rna"], login=True)
    sim.add_agent("PJSIP/1002", Agent(answer_after=1), queues=["rna"], login=True)
    await at_half_second(sim)
    call = sim.place_call("13900000101", "rna", "in", Caller(name="Citizen", talk_time=3))
    await gone(call)
    await cdr_of(client, call.name)
    mine = [
        m
        for m in events(client)
        if m.name
        in ("QueueCallerJoin", "AgentCalled", "AgentRingNoAnswer", "DialEnd", "QueueCallerLeave")
        + ("AgentConnect", "AgentComplete")
    ]
    seq = [(m.name, role(m.get("DestChannel") or ""), m.get("DialStatus") or "") for m in mine]
    assert seq == [
        ("QueueCallerJoin", "", ""),
        ("AgentCalled", "PJSIP/1001", ""),
        ("AgentRingNoAnswer", "PJSIP/1001", ""),
        ("DialEnd", "PJSIP/1001", "NOANSWER"),  # wait_for_answer(): the ring timed out
        ("DialEnd", "PJSIP/1001", "CANCEL"),  # hangupcalls(): every line still open
        ("AgentCalled", "PJSIP/1002", ""),
        ("DialEnd", "PJSIP/1002", "ANSWER"),
        ("QueueCallerLeave", "", ""),  # leave_queue() before AgentConnect
        ("AgentConnect", "PJSIP/1002", ""),
        ("AgentComplete", "PJSIP/1002", ""),
    ]
    join, called1, rna, end1, cancel1, called2, _, _, connect, complete = mine
    assert end1.get("DestChannel") == cancel1.get("DestChannel") == called1.get("DestChannel")
    assert rna.get("RingTime") == "4000"  # exactly the member timeout, in ms
    assert second(rna) - second(called1) == 4
    assert second(called2) - second(rna) == 1  # retry = 1
    assert (connect.get("HoldTime"), connect.get("RingTime")) == ("6", "1")
    assert (complete.get("HoldTime"), complete.get("TalkTime")) == ("6", "3")
    assert complete.get("Reason") == "caller"
    await client.close()


async def test_queue_timeout_is_an_abandon_and_the_dialplan_goes_on(timed_sim: Simulator) -> None:
    """PROTOCOL.md; queue_exec() checks qe.expire (qe.start + timeout, whole seconds) after
    each try_calling(), whose ring time is cut to what is left: record_abandoned(), then
    leave_queue(), then QUEUESTATUS=TIMEOUT."""
    sim = timed_sim
    client = await login(sim)
    await at_half_second(sim)
    call = sim.place_call("13900000102", "timeout", "in", Caller(talk_time=None))
    await gone(call)
    await cdr_of(client, call.name)
    mine = [m for m in events(client) if m.get("Channel") == call.name]
    story = [
        (m.name, m.get("Variable") or m.get("Application") or "", m.get("Value") or "")
        for m in mine
        if m.name in ("QueueCallerAbandon", "QueueCallerLeave", "Newexten", "Hangup")
        or (m.name == "VarSet" and m.get("Variable") in ("ABANDONED", "QUEUESTATUS"))
    ]
    start = story.index(("VarSet", "ABANDONED", "TRUE"))
    assert story[start:] == [
        ("VarSet", "ABANDONED", "TRUE"),
        ("QueueCallerAbandon", "", ""),
        ("QueueCallerLeave", "", ""),
        ("VarSet", "QUEUESTATUS", "TIMEOUT"),
        ("Newexten", "NoOp", ""),  # the dialplan continues after Queue()
        ("Newexten", "Wait", ""),
        ("Newexten", "Hangup", ""),
        ("Hangup", "", ""),
    ]
    abandon = next(m for m in mine if m.name == "QueueCallerAbandon")
    assert [abandon.get(k) for k in ("Position", "OriginalPosition", "HoldTime")] == ["1", "1", "7"]
    noop = next(m for m in mine if m.get("Application") == "NoOp")
    assert noop.get("AppData") == "after queue TIMEOUT"
    # the member was rung 4 s (timeout), then after retry 1 s for the 2 s left
    rings = [m.get("RingTime") for m in named(client, "AgentRingNoAnswer")]
    assert rings == ["4000", "2000"]
    items = await client.list_action("QueueStatus", Queue="timeout")
    params = next(m for m in items if m.get("Event") == "QueueParams")
    assert (params.get("Abandoned"), params.get("Completed")) == ("1", "0")
    await client.close()


async def test_queue_status_shows_a_ringing_local_member_not_in_use(sim: Simulator) -> None:
    """Local channels do not signal ringing: the member stays Status 1 while rung."""
    client = await login(sim)
    call = sim.place_call("13900000103", "local", "in", Caller(talk_time=None))
    await client.wait_for(lambda m: m.get("Event") == "AgentCalled")
    items = await client.list_action("QueueStatus", Queue="local")
    member = next(m for m in items if m.get("Event") == "QueueMember")
    assert (member.get("Location"), member.get("Status")) == ("Local/200@agents-noanswer", "1")
    entry = next(m for m in items if m.get("Event") == "QueueEntry")
    assert entry.get("Channel") == call.name
    call.hangup()
    await gone(call)
    await cdr_of(client, call.name)
    await client.close()


async def test_agent_called_shows_the_caller_as_the_members_connected_line(
    sim: Simulator,
) -> None:
    """ring_entry() quietly gives the member's channel the caller's number as connected line
    and the caller's extension; AgentCalled shows them, the DialBegin right after still has
    the old snapshot (agent_session capture: 13800138000 and 12345 in AgentCalled, <unknown>
    and s in DialBegin; queue_call: the same for a Local member)."""
    client = await login(sim)
    sim.add_agent("PJSIP/1001", Agent(answer_after=1), queues=["ringall"], login=True)
    call = sim.place_call("13900000104", "ringall", "in", Caller(name="Citizen", talk_time=1))
    await gone(call)
    await cdr_of(client, call.name)
    local = sim.place_call("13900000114", "local", "in", Caller(name="Citizen", talk_time=None))
    await client.wait_for(
        lambda m: m.get("Event") == "DialBegin" and m.get("Channel") == local.name
    )
    local.hangup()
    await cdr_of(client, local.name)
    view = [
        (
            m.name,
            role(m.get("DestChannel") or ""),
            m.get("DestConnectedLineNum"),
            m.get("DestConnectedLineName"),
            m.get("DestExten"),
        )
        for m in named(client, "AgentCalled", "DialBegin")
    ]
    assert view == [
        ("AgentCalled", "PJSIP/1001", "13900000104", "Citizen", "ringall"),
        ("DialBegin", "PJSIP/1001", "<unknown>", "<unknown>", "s"),
        ("AgentCalled", "Local/200@agents-noanswer;1", "13900000114", "Citizen", "local"),
        ("DialBegin", "Local/200@agents-noanswer;1", "<unknown>", "<unknown>", "200"),
    ]
    called = named(client, "AgentCalled")[0]
    assert (called.get("Exten"), called.get("DestChannelStateDesc")) == ("ringall", "Down")
    await client.close()


DEST = [f"Dest{k}" for k in SNAPSHOT]
BLOB = ["Queue", "Interface", "MemberName", "HoldTime", "TalkTime", "Reason"]


def fields(msg: AmiMessage) -> list[str]:
    return [k for k in msg.keys() if k not in ("Event", "Privilege", "Timestamp")]


async def bridged_call(
    sim: Simulator, client: RawAmiClient, queue: str, number: str, caller: Caller
) -> tuple[str, str, AmiMessage]:
    """A caller joins `queue` at x.5 and PJSIP/1001 answers 1 s later: (caller, agent,
    AgentConnect)."""
    await at_half_second(sim)
    call = sim.place_call(number, queue, "in", caller)
    connect = await client.wait_for(
        lambda m: m.get("Event") == "AgentConnect" and m.get("Channel") == call.name
    )
    await call.wait_bridged()
    return call.name, connect.get("DestChannel") or "", connect


async def test_redirected_caller_completes_when_it_hangs_up_elsewhere(timed_sim: Simulator) -> None:
    """PROTOCOL.md: the member's leg is hung up at once; AgentComplete (Reason caller, no
    Dest*) waits for the caller's hang-up (handle_hangup() + send_agent_complete()), and
    update_queue() counts the call with the talk time up to then."""
    sim = timed_sim
    client = await login(sim)
    sim.add_agent("PJSIP/1001", Agent(answer_after=1), queues=["hold"], login=True)
    caller, agent, connect = await bridged_call(
        sim, client, "hold", "13900000105", Caller(talk_time=None)
    )
    assert (connect.get("HoldTime"), connect.get("RingTime")) == ("1", "1")
    await at_half_second(sim)  # 1 s after the connect
    resp = await client.action(
        "Redirect", Channel=caller, Context="elsewhere", Exten="s", Priority="1"
    )
    assert resp.get("Message") == "Redirect successful"
    complete = await client.wait_for(lambda m: m.get("Event") == "AgentComplete")
    msgs = events(client)
    # the member's leg is hung up at once: it leaves the bridge, Hangup cause 16
    mine = [(m.name, m.get("Cause") or "") for m in msgs if m.get("Channel") == agent]
    assert mine[-2:] == [("BridgeLeave", ""), ("Hangup", "16")]
    redirect_at = second(next(m for m in msgs if m.name == "BridgeLeave"))
    # AgentComplete only once the caller hung up in `elsewhere` (Wait(3), Hangup())
    hung_up = next(m for m in msgs if m.name == "SoftHangupRequest" and m.get("Channel") == caller)
    assert msgs.index(complete) > msgs.index(hung_up)
    assert second(hung_up) - redirect_at == 3
    assert fields(complete) == SNAPSHOT + BLOB  # the caller's snapshot, no Dest* fields
    assert (complete.get("Channel"), complete.get("Context")) == (caller, "elsewhere")
    assert complete.get("Reason") == "caller"
    # 1 s talking in the bridge + 3 s after the redirect, all counted
    assert (complete.get("HoldTime"), complete.get("TalkTime")) == ("1", "4")
    items = await client.list_action("QueueStatus", Queue="hold")
    params = next(m for m in items if m.get("Event") == "QueueParams")
    assert [params.get(k) for k in ("Completed", "Abandoned", "Holdtime", "TalkTime")] == [
        "1",
        "0",
        "1",
        "4",
    ]
    member = next(m for m in items if m.get("Event") == "QueueMember")
    assert (member.get("CallsTaken"), member.get("InCall")) == ("1", "0")
    await client.close()


async def test_ami_hangup_of_the_member_reports_reason_caller_without_the_caller(
    timed_sim: Simulator,
) -> None:
    """PROTOCOL.md: Reason caller (not agent), after both channels are gone, no Channel*
    fields; the caller is hung up too, cause 16."""
    sim = timed_sim
    client = await login(sim)
    sim.add_agent("PJSIP/1001", Agent(answer_after=1), queues=["hold"], login=True)
    caller, agent, _ = await bridged_call(
        sim, client, "hold", "13900000106", Caller(talk_time=None)
    )
    await at_phase(sim, 0.5)
    await at_phase(sim, 0.5)  # 2 s of talk
    resp = await client.action("Hangup", Channel=agent)
    assert resp.get("Message") == "Channel Hungup"
    complete = await client.wait_for(lambda m: m.get("Event") == "AgentComplete")
    msgs = events(client)
    hangups = {
        m.get("Channel"): (msgs.index(m), m.get("Cause")) for m in msgs if m.name == "Hangup"
    }
    # both channels are gone first; the caller was hung up too, cause 16
    assert hangups[caller][1] == hangups[agent][1] == "16"
    assert msgs.index(complete) > max(hangups[caller][0], hangups[agent][0])
    assert fields(complete) == DEST + BLOB  # no Channel* fields
    assert (complete.get("Reason"), complete.get("DestChannel")) == ("caller", agent)
    assert (complete.get("HoldTime"), complete.get("TalkTime")) == ("1", "2")
    await client.close()


async def test_ami_hangup_of_the_member_lets_a_c_caller_go_on(sim: Simulator) -> None:
    """Queue(cont,c): the caller continues in the dialplan after the member is hung up."""
    client = await login(sim)
    sim.add_agent("PJSIP/1001", Agent(answer_after=1), queues=["cont"], login=True)
    caller, agent, _ = await bridged_call(
        sim, client, "cont", "13900000107", Caller(talk_time=None)
    )
    await client.action("Hangup", Channel=agent)
    noop = await client.wait_for(
        lambda m: m.get("Event") == "Newexten" and m.get("Application") == "NoOp"
    )
    assert (noop.get("Channel"), noop.get("AppData")) == (caller, "continued CONTINUE")
    assert not any(m.name == "AgentComplete" for m in events(client))  # the caller is still up
    complete = await client.wait_for(lambda m: m.get("Event") == "AgentComplete")
    caller_hangup = next(
        m for m in events(client) if m.name == "Hangup" and m.get("Channel") == caller
    )
    assert events(client).index(complete) > events(client).index(caller_hangup)
    assert fields(complete) == DEST + BLOB
    assert (complete.get("Reason"), complete.get("TalkTime")) == ("caller", "0")
    await client.close()


async def test_member_hanging_up_by_itself_reports_reason_agent(timed_sim: Simulator) -> None:
    """PROTOCOL.md / handle_hangup(): the member's own hang-up request gives Reason agent
    with both snapshots."""
    sim = timed_sim
    client = await login(sim)
    sim.add_agent("PJSIP/1001", Agent(answer_after=1, talk_time=3), queues=["hold"], login=True)
    caller, agent, _ = await bridged_call(
        sim, client, "hold", "13900000108", Caller(talk_time=None)
    )
    complete = await client.wait_for(lambda m: m.get("Event") == "AgentComplete")
    assert fields(complete) == SNAPSHOT + DEST + BLOB  # both snapshots
    assert (complete.get("Channel"), complete.get("DestChannel")) == (caller, agent)
    assert (complete.get("Reason"), complete.get("HoldTime"), complete.get("TalkTime")) == (
        "agent",
        "1",
        "3",
    )
    await client.close()


async def test_ami_hangup_of_the_caller_reports_reason_caller_without_the_member(
    timed_sim: Simulator,
) -> None:
    """PROTOCOL.md: an AMI Hangup of the caller gives Reason caller without Dest* fields."""
    sim = timed_sim
    client = await login(sim)
    sim.add_agent("PJSIP/1001", Agent(answer_after=1), queues=["hold"], login=True)
    caller, _, _ = await bridged_call(sim, client, "hold", "13900000109", Caller(talk_time=None))
    await at_half_second(sim)
    resp = await client.action("Hangup", Channel=caller)
    assert resp.get("Message") == "Channel Hungup"
    complete = await client.wait_for(lambda m: m.get("Event") == "AgentComplete")
    assert fields(complete) == SNAPSHOT + BLOB  # no Dest* fields
    assert (complete.get("Channel"), complete.get("Reason")) == (caller, "caller")
    assert (complete.get("HoldTime"), complete.get("TalkTime")) == ("1", "1")
    await client.close()


@pytest.mark.parametrize(
    ("join_phase", "wait", "hold", "talk"),
    [
        # joins at x.8 (QueueStatus at (x+1).1), answered 1.4 s later at (x+2).2, talks
        # 4.4 s to (x+6).6
        (0.8, "1", "2", "4"),
        # joins at x.4 (QueueStatus at x.7), answered at (x+1).8, talks 4.4 s to (x+6).2
        (0.4, "0", "1", "5"),
    ],
)
async def test_hold_and_talk_times_count_second_boundaries(
    slow_sim: Simulator, join_phase: float, wait: str, hold: str, talk: str
) -> None:
    """HoldTime/TalkTime/Wait subtract whole-second time() values (qe->start,
    member->starttime in app_queue.c), so 1.4 s of hold and 4.4 s of talk give 1 or 2 and 4 or
    5 depending on where the second boundaries fall. AgentConnect's RingTime is
    (orig - to) / 1000 in try_calling(): milliseconds of ringing, truncated (1.4 s → 1)."""
    sim = slow_sim
    client = await login(sim)
    sim.add_agent("PJSIP/1001", Agent(answer_after=1.4), queues=["hold"], login=True)
    await at_phase(sim, join_phase)
    call = sim.place_call("13900000110", "hold", "in", Caller(talk_time=4.4))
    await client.wait_for(lambda m: m.get("Event") == "QueueCallerJoin")
    await at_phase(sim, (join_phase + 0.3) % 1)  # 0.3 s later (or 1.3 s)
    status = await client.list_action("QueueStatus", Queue="hold")
    queued = next(m for m in status if m.get("Event") == "QueueEntry")
    assert queued.get("Wait") == wait  # 0.3 s after joining
    await gone(call)
    await cdr_of(client, call.name)
    connect = named(client, "AgentConnect")[0]
    complete = named(client, "AgentComplete")[0]
    assert (connect.get("HoldTime"), connect.get("RingTime")) == (hold, "1")
    assert (complete.get("HoldTime"), complete.get("TalkTime")) == (hold, talk)
    queuewait = [
        m.get("Value")
        for m in events(client)
        if m.name == "VarSet" and m.get("Variable") == "QUEUEWAIT" and m.get("Value")
    ]
    assert queuewait == [hold]
    await client.close()


async def test_member_added_while_another_rings_is_rung_at_the_next_attempt(
    timed_sim: Simulator,
) -> None:
    """rrmemory, timeout 15, retry 2 (the hotline): 1001 rings 15 s unanswered, 1002 logs in
    meanwhile and is rung after the retry: hold 20 s with its 3 s to answer, not 37."""
    sim = timed_sim
    client = await login(sim)
    sim.add_agent("PJSIP/1001", Agent(mode="never"), queues=["late"], login=True)
    sim.add_agent("PJSIP/1002", Agent(answer_after=3))  # registered, not in the queue yet
    await at_half_second(sim)
    call = sim.place_call("13900000111", "late", "in", Caller(talk_time=1))
    await client.wait_for(lambda m: m.get("Event") == "AgentCalled")
    resp = await client.action("QueueAdd", Queue="late", Interface="PJSIP/1002")
    assert resp.get("Response") == "Success"
    await gone(call)
    await cdr_of(client, call.name)
    called = [(m.get("Interface"), second(m)) for m in named(client, "AgentCalled")]
    assert [iface for iface, _ in called] == ["PJSIP/1001", "PJSIP/1002"]
    assert called[1][1] - called[0][1] == 17  # 15 s timeout + 2 s retry
    connect = named(client, "AgentConnect")[0]
    assert (connect.get("Interface"), connect.get("HoldTime")) == ("PJSIP/1002", "20")
    await client.close()


async def calls_in_turn(
    sim: Simulator, client: RawAmiClient, queue: str, count: int, first: int = 13900000200
) -> list[list[str]]:
    """`count` calls into `queue`, one after the other; for each, the members AgentCalled
    rang, in order."""
    rung = []
    for i in range(count):
        call = sim.place_call(str(first + i), queue, "in", Caller(talk_time=1))
        await gone(call)
        await cdr_of(client, call.name)
        rung.append(
            [
                m.get("Interface") or ""
                for m in named(client, "AgentCalled")
                if m.get("Channel") == call.name
            ]
        )
    return rung


def agents(sim: Simulator, queue: str, *specs: tuple[str, Agent, int]) -> None:
    for interface, behaviour, penalty in specs:
        sim.add_agent(interface, behaviour, queues=[queue], login=True, penalty=penalty)


def quick() -> Agent:
    return Agent(answer_after=1)


async def test_ringall_rings_the_best_penalty_tier_together(sim: Simulator) -> None:
    """ring_one(): ringall rings every member sharing the best metric (penalty * 1000000);
    the next tier only when the best one has nobody free (here: paused)."""
    client = await login(sim)
    agents(
        sim,
        "ringall",
        ("PJSIP/1001", quick(), 0),
        ("PJSIP/1002", Agent(answer_after=2), 0),
        ("PJSIP/1003", quick(), 1),
    )
    assert await calls_in_turn(sim, client, "ringall", 1) == [["PJSIP/1001", "PJSIP/1002"]]
    cancel = [m for m in named(client, "DialEnd") if m.get("DialStatus") == "CANCEL"]
    assert [role(m.get("DestChannel") or "") for m in cancel] == ["PJSIP/1002"]
    for member in ("PJSIP/1001", "PJSIP/1002"):
        sim.pbx.queues.set_paused("ringall", member, "", True)
    assert await calls_in_turn(sim, client, "ringall", 1, 13900000300) == [["PJSIP/1003"]]
    await client.close()


async def test_leastrecent_rings_whoever_finished_a_call_longest_ago(sim: Simulator) -> None:
    """calc_metric(): never called first (metric 0), then 1000000 - (now - lastcall); 1002
    finished before 1001 though it answered later, so it comes before 1001."""
    client = await login(sim)
    agents(sim, "leastrecent", *((f"PJSIP/100{i}", quick(), 0) for i in (1, 2, 3)))
    sim.pbx.queues.set_paused("leastrecent", "PJSIP/1003", "", True)
    long_call = sim.place_call("13900000400", "leastrecent", "in", Caller(talk_time=6))
    await client.wait_for(lambda m: m.get("Event") == "AgentConnect")
    short_call = sim.place_call("13900000401", "leastrecent", "in", Caller(talk_time=1))
    await gone(short_call)
    await gone(long_call)
    await cdr_of(client, long_call.name)
    first = [m.get("Interface") for m in named(client, "AgentConnect")]
    assert first == ["PJSIP/1001", "PJSIP/1002"]
    sim.pbx.queues.set_paused("leastrecent", "PJSIP/1003", "", False)
    rung = await calls_in_turn(sim, client, "leastrecent", 3)
    assert rung == [["PJSIP/1003"], ["PJSIP/1002"], ["PJSIP/1001"]]
    await client.close()


async def test_fewestcalls_rings_the_member_with_fewest_calls(sim: Simulator) -> None:
    """calc_metric(): metric = calls taken; a tie goes to the member listed first."""
    client = await login(sim)
    agents(sim, "fewestcalls", *((f"PJSIP/100{i}", quick(), 0) for i in (1, 2, 3)))
    queues = sim.pbx.queues
    assert await calls_in_turn(sim, client, "fewestcalls", 1) == [["PJSIP/1001"]]
    for member in ("PJSIP/1002", "PJSIP/1003"):
        queues.set_paused("fewestcalls", member, "", True)
    assert await calls_in_turn(sim, client, "fewestcalls", 1, 13900000210) == [["PJSIP/1001"]]
    for member in ("PJSIP/1002", "PJSIP/1003"):
        queues.set_paused("fewestcalls", member, "", False)
    # 1001 has 2 calls: 1002 and 1003 (0 each), then 1002 again (1, listed before 1003)
    rung = await calls_in_turn(sim, client, "fewestcalls", 3, 13900000220)
    assert rung == [["PJSIP/1002"], ["PJSIP/1003"], ["PJSIP/1002"]]
    await client.close()


async def test_rrmemory_goes_round_across_callers(sim: Simulator) -> None:
    """calc_metric()/store_next_rr(): the queue remembers where it stopped; a member that
    does not answer is followed by the next one, and the next caller starts after that."""
    client = await login(sim)
    agents(
        sim,
        "rrmemory",
        ("PJSIP/1001", Agent(mode="never"), 0),
        ("PJSIP/1002", quick(), 0),
        ("PJSIP/1003", quick(), 0),
    )
    rung = await calls_in_turn(sim, client, "rrmemory", 3)
    assert rung == [["PJSIP/1001", "PJSIP/1002"], ["PJSIP/1003"], ["PJSIP/1001", "PJSIP/1002"]]
    await client.close()


async def test_linear_starts_every_caller_at_the_first_member(sim: Simulator) -> None:
    """calc_metric()/store_next_lin(): the position is the caller's own (qe->linpos): each
    new caller starts at the top, a caller whose member did not answer moves on."""
    client = await login(sim)
    agents(
        sim,
        "linear",
        ("PJSIP/1001", Agent(mode="never"), 0),
        ("PJSIP/1002", quick(), 0),
        ("PJSIP/1003", quick(), 0),
    )
    rung = await calls_in_turn(sim, client, "linear", 2)
    assert rung == [["PJSIP/1001", "PJSIP/1002"], ["PJSIP/1001", "PJSIP/1002"]]
    await client.close()


def expected_draw(state: object, sizes: list[int]) -> int:
    """Which member a seeded draw picks: the lowest of one randrange(size) per member, the
    first one on a tie (find_best())."""
    rng = random.Random()
    rng.setstate(state)  # type: ignore[arg-type]
    draws = [rng.randrange(size) for size in sizes]
    return draws.index(min(draws))


async def draws_until_all_rung(
    sim: Simulator, client: RawAmiClient, queue: str, members: list[str], sizes: list[int]
) -> list[tuple[list[str], str]]:
    """Calls one by one until every member was picked (at most 30): for each, (the members
    rung, the member the generator's state said would be)."""
    seen: list[tuple[list[str], str]] = []
    while {want for _, want in seen} != set(members) and len(seen) < 30:
        want = members[expected_draw(sim.pbx.rng.getstate(), sizes)]
        [rung] = await calls_in_turn(sim, client, queue, 1, 13900000500 + len(seen))
        seen.append((rung, want))
    return seen


async def test_random_draws_from_the_seeded_generator(sim: Simulator) -> None:
    """calc_metric(): metric = ast_random() % 1000 (+ penalty tier); lowest wins."""
    client = await login(sim)
    members = [f"PJSIP/100{i}" for i in (1, 2, 3)]
    agents(sim, "random", *((m, quick(), 0) for m in members))
    agents(sim, "random", ("PJSIP/1004", quick(), 1))  # a worse tier: never drawn
    seen = await draws_until_all_rung(sim, client, "random", members, [1000] * 3)
    assert [rung for rung, _ in seen] == [[want] for _, want in seen]
    assert {want for _, want in seen} == set(members)
    await client.close()


async def test_wrandom_weighs_the_draw_by_penalty(sim: Simulator) -> None:
    """calc_metric(): metric = ast_random() % ((1 + penalty) * 1000), no penalty tiers, so a
    member with penalty 1 is rung too, only less often."""
    client = await login(sim)
    agents(sim, "wrandom", ("PJSIP/1001", quick(), 0), ("PJSIP/1002", quick(), 1))
    members = ["PJSIP/1001", "PJSIP/1002"]
    seen = await draws_until_all_rung(sim, client, "wrandom", members, [1000, 2000])
    assert [rung for rung, _ in seen] == [[want] for _, want in seen]
    assert {want for _, want in seen} == set(members)
    await client.close()
