"""Attended transfer over AMI, as Asterisk 22.10.1 did it (captures/attended_transfer and
attended_transfer_dtmf_only; README "Attended transfer"): Setvar TRANSFER_EXTEN, Atxfer,
the consultation with Local/<exten>@agents, and the transferer's Hangup completing it.

The golden tests replay the captures on the capture rig's turn-2 dialplan (dialplan2:
cap-pstn-xfer with Queue option t, features.conf atxfer => *2) and compare, per channel,
every event from the Atxfer on. The other tests run the project's own dialplan."""

from __future__ import annotations

import asyncio
import shutil
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from callcenter.simulator import Agent, Caller, Simulator
from callcenter.simulator.captures import AmiMessage, compare_shapes, event_shape, parse_raw
from callcenter.simulator.config import SimulatorConfig

from .support import CAPTURES, SHARED, FastAgiServer, RawAmiClient, ami_login, by_channel, role
from .test_golden import FLOATING, _values

PROJECT_CONFIG = Path(__file__).resolve().parents[2] / "config" / "asterisk"
RIG = CAPTURES / "dialplan2"
# What the simulator does not model, outside the transfer itself: RTCP and chan_pjsip's
# variables; caller IDs (its PJSIP channels carry the caller's number, not pjsip.conf's
# callerid, so the connected-line updates differ); app_dial's own variables and its second
# Newexten on the answered callee.
NOT_MODELLED_EVENTS = {"RTCPSent", "RTCPReceived", "NewCallerid", "NewConnectedLine"}
PJSIP_VARS = ("RTPAUDIOQOS", "BRIDGEPVTCALLID")
DIAL_VARS = {
    "DIALSTATUS",
    "DIALEDPEERNUMBER",
    "DIALEDPEERNAME",
    "ANSWEREDTIME",
    "ANSWEREDTIME_MS",
    "DIALEDTIME",
    "DIALEDTIME_MS",
    "RINGTIME",
    "RINGTIME_MS",
    "PROGRESSTIME",
    "PROGRESSTIME_MS",
}
DIALLING = ("Local/1002@agents;2", "PJSIP/1002")


def _modelled(m: AmiMessage) -> bool:
    who = role(m.get("Channel") or "")
    variable = m.get("Variable") or ""
    if m.name in NOT_MODELLED_EVENTS or variable.startswith(PJSIP_VARS):
        return False
    if who in DIALLING and (variable in DIAL_VARS or m.get("Application") == "AppDial"):
        return False
    # a Local caller hung up from its ;2 ends with cause 0 in the simulator, 16 in Asterisk,
    # in a plain queue call too (attended_transfer_dtmf_only): not the transfer's doing
    return not (m.name == "Hangup" and who == "Local/long@caller-sim;1")


def from_atxfer(raw: bytes | Path) -> list[AmiMessage]:
    """The events after the Atxfer reply that the simulator models."""
    msgs = parse_raw(raw)
    start = next(i for i, m in enumerate(msgs) if m.get("Message") == "Atxfer successfully queued")
    return [m for m in msgs[start + 1 :] if m.is_event and _modelled(m)]


def assert_same_transfer(capture: Path, raw: bytes) -> None:
    """Per channel: the same events in the same order, the same key values, the same field
    names in the same order; the floating events (AgentComplete, Cdr, ...) by count."""
    want_all, got_all = from_atxfer(capture), from_atxfer(raw)
    want, got = by_channel(want_all, FLOATING), by_channel(got_all, FLOATING)
    assert sorted(got) == sorted(want)
    problems = []
    for chan, msgs in want.items():
        problems += [f"{chan}: {p}" for p in compare_shapes(msgs, got[chan])]
        if _values(msgs) != _values(got[chan]):
            problems.append(f"{chan}: values\n want {_values(msgs)}\n got  {_values(got[chan])}")
    for name in FLOATING - {"DeviceStateChange", "Cdr"}:  # Cdr: see test_cdrs_...
        w = Counter(event_shape(m) for m in want_all if m.name == name)
        g = Counter(event_shape(m) for m in got_all if m.name == name)
        if w != g:
            problems.append(f"{name}: want {w} got {g}")
    assert not problems, "\n".join(problems)


async def _rig_ivr(reader, writer, env) -> None:
    """The capture rig's FastAGI stub: one VERBOSE, then back to the dialplan."""
    writer.write(b'VERBOSE "capture rig ivr stub: straight to the queue" 1\n')
    await writer.drain()
    await reader.readline()


@pytest.fixture
async def rig_sim(tmp_path: Path) -> AsyncIterator[Simulator]:
    """The project's config with the capture rig's turn-2 dialplan, features and phones."""
    conf = tmp_path / "conf"
    shutil.copytree(PROJECT_CONFIG, conf)
    for name in ("extensions.conf", "features.conf", "manager.conf", "pjsip.conf"):
        shutil.copy(RIG / name, conf / name)
    sim = Simulator(
        SimulatorConfig(
            port=0,
            time_scale=0.1,
            seed=7,
            asterisk_config_dir=conf,
            recordings_dir=tmp_path / "rec",
            speech_samples_dir=SHARED / "speech-samples",
            bad_login_delay=0.05,
        )
    )
    server = FastAgiServer(_rig_ivr)
    sim.config.agi_port = await server.start()
    await sim.start()
    yield sim
    await sim.stop()
    await server.stop()


async def _rig_call(sim: Simulator, context: str = "cap-pstn-xfer") -> tuple[RawAmiClient, str]:
    """The captures' start: 1001 joins the queue over AMI, the citizen calls into
    cap-pstn-xfer, 1001 answers after a second; the member's channel is returned."""
    sim.add_agent("PJSIP/1001", Agent(answer_after=1.0))
    sim.add_agent("PJSIP/1002", Agent(answer_after=1.0))
    client = RawAmiClient()
    await client.connect(sim.ami_port)
    await client.login("cap", "CHANGE_ME")
    await client.action(
        "QueueAdd",
        Queue="hotline",
        Interface="PJSIP/1001",
        MemberName="Agent 1001",
        StateInterface="PJSIP/1001",
        Penalty="1",
        Paused="false",
    )
    await client.action(
        "Originate",
        Channel="Local/long@caller-sim",
        Context=context,
        Exten="12345",
        Priority="1",
        CallerID='"Citizen" <13800138000>',
        Timeout="30000",
        Async="true",
    )
    connect = await client.wait_for(lambda m: m.get("Event") == "AgentConnect")
    await asyncio.sleep(sim.clock.wall(3.0))  # they talk 3 s before the transfer
    return client, connect.get("DestChannel") or ""


async def _rig_end(sim: Simulator, client: RawAmiClient) -> None:
    """The citizen hangs up (AMI Hangup of the caller's ;2), 1001 leaves the queue."""
    caller2 = next(
        m.get("Channel") or ""
        for m in client.messages
        if (m.get("Channel") or "").startswith("Local/long@caller-sim")
        and (m.get("Channel") or "").endswith(";2")
    )
    await client.action("Hangup", Channel=caller2)
    await sim.wait_idle(30)
    await client.action("QueueRemove", Queue="hotline", Interface="PJSIP/1001")
    await client.action("Logoff")
    await client.closed()


async def test_attended_transfer_matches_the_capture(rig_sim: Simulator) -> None:
    sim = rig_sim
    client, agent = await _rig_call(sim)
    resp = await client.action("Setvar", Channel=agent, Variable="TRANSFER_EXTEN", Value="1002")
    assert resp.get("Message") == "Variable Set"
    resp = await client.action("Atxfer", Channel=agent, Context="agents", Exten="1002")
    assert (resp.get("Response"), resp.get("Message")) == ("Success", "Atxfer successfully queued")
    await client.wait_for(
        lambda m: (
            m.get("Event") == "DialEnd"
            and m.get("DialStatus") == "ANSWER"
            and (m.get("DestChannel") or "").startswith("PJSIP/1002")
        )
    )
    await asyncio.sleep(sim.clock.wall(3.0))  # the consultation: 3 s
    resp = await client.action("Hangup", Channel=agent)  # completes the transfer
    assert resp.get("Message") == "Channel Hungup"
    await client.wait_for(lambda m: m.get("Event") == "LocalOptimizationEnd")
    await asyncio.sleep(sim.clock.wall(3.5))  # the citizen talks with 1002
    await _rig_end(sim, client)
    assert_same_transfer(CAPTURES / "attended_transfer.raw", client.raw)
    got, want = caller_cdrs(client.raw), caller_cdrs(CAPTURES / "attended_transfer.raw")
    assert (
        [r[:3] for r in got]
        == [r[:3] for r in want]
        == [
            ("PJSIP/1001", "Queue", "ANSWERED"),
            ("Local/1002@agents;1", "Queue", "ANSWERED"),
            ("PJSIP/1002", "Queue", "ANSWERED"),
        ]
    )
    # each record starts when the one before ended: the caller's call is told without gaps
    assert [r[3] for r in got[1:]] == [r[4] for r in got[:-1]]


def caller_cdrs(raw: bytes | Path) -> list[tuple[str, ...]]:
    """The caller's Cdr events: party B, last application, disposition, start, end."""
    return [
        (
            role(m.get("DestinationChannel") or ""),
            m.get("LastApplication") or "",
            m.get("Disposition") or "",
            m.get("StartTime") or "",
            m.get("EndTime") or "",
        )
        for m in parse_raw(raw)
        if m.name == "Cdr" and role(m.get("Channel") or "") == "Local/long@caller-sim;1"
    ]


async def test_atxfer_without_transfer_exten_matches_the_capture(rig_sim: Simulator) -> None:
    sim = rig_sim
    client, agent = await _rig_call(sim)
    resp = await client.action("Atxfer", Channel=agent, Context="agents", Exten="1002")
    assert resp.get("Message") == "Atxfer successfully queued"
    unhold = await client.wait_for(lambda m: m.get("Event") == "Unhold", timeout=60)
    hold = next(m for m in client.messages if m.get("Event") == "Hold")
    assert unhold.get("Channel") == hold.get("Channel") == agent
    await asyncio.sleep(sim.clock.wall(13.0))  # the call goes on
    await _rig_end(sim, client)
    assert_same_transfer(CAPTURES / "attended_transfer_dtmf_only.raw", client.raw)


async def test_without_queue_option_t_the_digits_just_reach_the_caller(
    rig_sim: Simulator,
) -> None:
    """The rig's from-pstn runs Queue(hotline,,,,300): no t, so the member's bridge has no
    transfer feature (app_queue.c sets AST_FEATURE_REDIRECT only for t). manager.c still
    queues the frames and says so; they are plain DTMF to the caller, nothing is held."""
    sim = rig_sim
    client, agent = await _rig_call(sim, context="from-pstn")
    resp = await client.action("Atxfer", Channel=agent, Context="agents", Exten="1002")
    assert resp.get("Message") == "Atxfer successfully queued"
    caller = next(m.get("Channel") for m in client.messages if m.get("Event") == "AgentConnect")
    await client.wait_for(
        lambda m: (
            m.get("Event") == "DTMFEnd"
            and m.get("Channel") == caller
            and m.get("Digit") == "2"
            and m.get("DurationMs") == "100"
            and len(
                [
                    x
                    for x in client.messages
                    if x.get("Event") == "DTMFEnd" and x.get("Channel") == caller
                ]
            )
            == 6
        )
    )
    mine = [
        (m.get("Digit"), m.get("DurationMs"), m.get("Direction"))
        for m in client.messages
        if m.get("Event") == "DTMFEnd" and m.get("Channel") == agent
    ]
    theirs = [
        m.get("Digit")
        for m in client.messages
        if m.get("Event") == "DTMFEnd" and m.get("Channel") == caller
    ]
    assert mine == [(d, "0", "Received") for d in "*21002"]
    assert theirs == list("*21002")
    names = [m.get("Event") for m in client.messages]
    assert "Hold" not in names and "AttendedTransfer" not in names
    assert names.count("MusicOnHoldStart") == 1  # the queue's, before 1001 answered
    assert not any((m.get("Channel") or "").startswith("Local/1002") for m in client.messages)
    await _rig_end(sim, client)


# the events that make up the transfer, in the order the transcript shows them
TRANSFER_EVENTS = (
    "Hold",
    "Unhold",
    "MusicOnHoldStart",
    "MusicOnHoldStop",
    "BridgeMerge",
    "AttendedTransfer",
    "AgentComplete",
    "LocalOptimizationBegin",
    "LocalOptimizationEnd",
)


def events(client: RawAmiClient) -> list[AmiMessage]:
    return [m for m in parse_raw(client.raw) if m.is_event]


def transfer_sequence(msgs: list[AmiMessage], transferer: str) -> list[tuple[str, str]]:
    """The transfer's own events, each with who it is about (the caller, the transferer)."""
    out = []
    for m in msgs:
        if m.name in TRANSFER_EVENTS:
            who = (
                "transferer"
                if m.get("Channel") == transferer
                else ("caller" if m.get("Channel") else "")
            )
            out.append((m.name, who))
        elif m.name == "DTMFEnd" and m.get("Channel") == transferer:
            out.append((f"DTMFEnd {m.get('Digit')} {m.get('DurationMs')}", "transferer"))
    return out


def _captured(name: str) -> list[AmiMessage]:
    return [m for m in parse_raw(CAPTURES / f"{name}.raw") if m.is_event]


async def _connected_call(sim: Simulator, client: RawAmiClient, target: Agent):
    sim.add_agent("PJSIP/1001", Agent(answer_after=1), queues=["hotline"], login=True)
    sim.add_agent("PJSIP/1002", target, queues=[], login=True)
    call = sim.place_call("13800138000", behaviour=Caller(talk_time=None, max_duration=120))
    connect = await client.wait_for(lambda m: m.get("Event") == "AgentConnect")
    return call, connect.get("DestChannel") or ""


async def _atxfer(client: RawAmiClient, agent: str, *, exten_var: bool = True) -> AmiMessage:
    if exten_var:
        resp = await client.action("Setvar", Channel=agent, Variable="TRANSFER_EXTEN", Value="1002")
        assert resp.get("Message") == "Variable Set"
    return await client.action("Atxfer", Channel=agent, Context="agents", Exten="1002")


async def test_transfer_in_the_hotline_dialplan(hotline_sim: Simulator, ivr: FastAgiServer) -> None:
    """The project's dialplan (Queue option t) and features.conf allow the transfer; the
    service completes it by hanging up the agent as soon as the target answers."""
    sim = hotline_sim
    client = await ami_login(sim)
    call, agent = await _connected_call(sim, client, Agent(answer_after=1))
    resp = await _atxfer(client, agent)
    assert (resp.get("Response"), resp.get("Message")) == ("Success", "Atxfer successfully queued")
    await client.wait_for(
        lambda m: (
            m.get("Event") == "DialEnd"
            and (m.get("DestChannel") or "").startswith("PJSIP/1002")
            and m.get("DialStatus") == "ANSWER"
        )
    )
    hung = await client.action("Hangup", Channel=agent)
    assert hung.get("Message") == "Channel Hungup"
    await client.wait_for(lambda m: m.get("Event") == "LocalOptimizationEnd")
    call.hangup()
    await call.ended
    await sim.wait_idle(30)
    got = events(client)
    want = _captured("attended_transfer")
    want_agent = next(m.get("DestChannel") for m in want if m.name == "AgentConnect")

    def no_digits(seq: list[tuple[str, str]]) -> list[tuple[str, str]]:
        return [x for x in seq if not x[0].startswith("DTMFEnd")]

    assert no_digits(transfer_sequence(got, agent)) == no_digits(
        transfer_sequence(want, want_agent)
    )
    # field names and order of the transfer's events, as Asterisk sends them
    for name in (
        "Hold",
        "BridgeMerge",
        "AttendedTransfer",
        "AgentComplete",
        "LocalOptimizationBegin",
        "LocalOptimizationEnd",
    ):
        w = [m for m in want if m.name == name]
        g = [m for m in got if m.name == name]
        assert compare_shapes(w, g) == [], name
    xfer = next(m for m in got if m.name == "AttendedTransfer")
    target = xfer.get("TransferTargetChannel") or ""
    assert target.startswith("Local/1002@agents-") and target.endswith(";1")
    assert (xfer.get("Result"), xfer.get("DestType"), xfer.get("IsExternal")) == (
        "Success",
        "Bridge",
        "No",
    )
    assert xfer.get("TransfereeChannel") == call.name
    assert xfer.get("OrigTransfererChannel") == xfer.get("SecondTransfererChannel") == agent
    assert xfer.get("DestBridgeUniqueid") == xfer.get("OrigBridgeUniqueid")
    complete = next(m for m in got if m.name == "AgentComplete")
    assert (complete.get("Reason"), complete.get("DestChannel")) == ("transfer", agent)
    # the caller ends up talking with 1002's own channel, in the queue's bridge
    enters = [
        m
        for m in got
        if m.name == "BridgeEnter" and m.get("BridgeUniqueid") == xfer.get("OrigBridgeUniqueid")
    ]
    assert [e.get("Channel", "")[:10] for e in enters][-1] == "PJSIP/1002"
    hangups = {m.get("Channel"): m.get("Cause") for m in got if m.name == "Hangup"}
    assert hangups[agent] == "16"
    assert sum(1 for m in got if m.name == "AgentComplete") == 1
    await client.close()


async def test_without_transfer_exten_the_caller_comes_back(
    hotline_sim: Simulator, ivr: FastAgiServer
) -> None:
    sim = hotline_sim
    client = await ami_login(sim)
    call, agent = await _connected_call(sim, client, Agent(answer_after=1))
    await _atxfer(client, agent, exten_var=False)
    await client.wait_for(lambda m: m.get("Event") == "Unhold", timeout=30)
    got = events(client)
    want = _captured("attended_transfer_dtmf_only")
    want_agent = next(m.get("DestChannel") for m in want if m.name == "AgentConnect")
    got_seq, want_seq = transfer_sequence(got, agent), transfer_sequence(want, want_agent)
    assert ("Unhold", "transferer") in want_seq
    upto = want_seq.index(("Unhold", "transferer")) + 2  # and the caller's music stops
    assert got_seq[:upto] == want_seq[:upto]
    assert got_seq[upto - 2 : upto] == [("Unhold", "transferer"), ("MusicOnHoldStop", "caller")]
    assert not any(m.name in ("AttendedTransfer", "BridgeMerge") for m in got)
    assert not any((m.get("Channel") or "").startswith("Local/1002") for m in got)
    call.hangup()
    await call.ended
    complete = await client.wait_for(lambda m: m.get("Event") == "AgentComplete")
    assert complete.get("Reason") == "caller"
    await client.close()


async def test_atxfer_errors_as_manager_c_words_them(
    hotline_sim: Simulator, ivr: FastAgiServer
) -> None:
    sim = hotline_sim
    client = await ami_login(sim)
    call, agent = await _connected_call(sim, client, Agent(answer_after=1))
    cases = [
        ({"Exten": "1002"}, "No channel specified"),
        ({"Channel": agent}, "No extension specified"),
        ({"Channel": "PJSIP/9999-00000000", "Exten": "1002"}, "Channel specified does not exist"),
    ]
    for fields, message in cases:
        resp = await client.action("Atxfer", **fields)
        assert (resp.get("Response"), resp.get("Message")) == ("Error", message)
    sim.pbx.atxfer_code = ""  # features.conf without atxfer (Asterisk's default)
    resp = await client.action("Atxfer", Channel=agent, Exten="1002")
    assert resp.get("Message") == "No attended transfer feature code found"
    assert not any(m.name == "Hold" for m in events(client))
    call.hangup()
    await call.ended
    await client.close()


async def _consult_fails(sim: Simulator, target: Agent) -> tuple[list[AmiMessage], str, str]:
    client = await ami_login(sim)
    call, agent = await _connected_call(sim, client, target)
    await _atxfer(client, agent)
    await client.wait_for(lambda m: m.get("Event") == "Unhold", timeout=30)
    call.hangup()
    await call.ended
    await client.wait_for(lambda m: m.get("Event") == "AgentComplete")
    await sim.wait_idle(30)
    msgs = events(client)
    await client.close()
    return msgs, agent, call.name


async def test_busy_target_brings_the_caller_back(
    hotline_sim: Simulator, ivr: FastAgiServer
) -> None:
    msgs, agent, caller = await _consult_fails(hotline_sim, Agent(mode="busy"))
    seq = [s for s in transfer_sequence(msgs, agent) if not s[0].startswith("DTMF")]
    seq = seq[seq.index(("Hold", "transferer")) :]  # after the queue's own music on hold
    assert seq == [
        ("Hold", "transferer"),
        ("MusicOnHoldStart", "caller"),
        ("Unhold", "transferer"),
        ("MusicOnHoldStop", "caller"),
        ("AgentComplete", "caller"),
    ]
    complete = next(m for m in msgs if m.name == "AgentComplete")
    assert complete.get("Reason") == "caller"  # the talk went on until the caller hung up
    assert not any(m.name == "AttendedTransfer" for m in msgs)
    back = [m for m in msgs if m.name == "BridgeEnter" and m.get("Channel") == agent]
    assert len(back) == 3  # queue bridge, consultation, queue bridge again


async def test_unanswered_target_times_out(hotline_sim: Simulator, ivr: FastAgiServer) -> None:
    msgs, agent, caller = await _consult_fails(hotline_sim, Agent(mode="never"))
    hold = next(m for m in msgs if m.name == "Hold")
    unhold = next(m for m in msgs if m.name == "Unhold")
    assert hold.get("Channel") == unhold.get("Channel") == agent
    dial_end = [
        m.get("DialStatus")
        for m in msgs
        if m.name == "DialEnd" and (m.get("DestChannel") or "").startswith("PJSIP/1002")
    ]
    assert dial_end == ["CANCEL"]
    assert not any(m.name == "AttendedTransfer" for m in msgs)


async def test_target_hanging_up_during_consultation_goes_back_to_the_caller(
    hotline_sim: Simulator, ivr: FastAgiServer
) -> None:
    msgs, agent, caller = await _consult_fails(
        hotline_sim, Agent(answer_after=1, hangup_after_answer=2)
    )
    names = [m.name for m in msgs if m.get("Channel") == agent]
    assert names.index("Unhold") > names.index("Hold")
    assert not any(m.name == "AttendedTransfer" for m in msgs)


async def test_caller_hanging_up_during_consultation_leaves_agent_and_target_talking(
    hotline_sim: Simulator, ivr: FastAgiServer
) -> None:
    sim = hotline_sim
    client = await ami_login(sim)
    call, agent = await _connected_call(sim, client, Agent(answer_after=1))
    await _atxfer(client, agent)
    await client.wait_for(
        lambda m: (
            m.get("Event") == "DialEnd"
            and (m.get("DestChannel") or "").startswith("PJSIP/1002")
            and m.get("DialStatus") == "ANSWER"
        )
    )
    call.hangup()
    complete = await client.wait_for(lambda m: m.get("Event") == "AgentComplete")
    assert complete.get("Reason") == "caller"
    assert agent in sim.pbx.channels  # still consulting with 1002
    await client.action("Hangup", Channel=agent)
    await sim.wait_idle(30)
    msgs = events(client)
    assert not any(m.name in ("AttendedTransfer", "BridgeMerge") for m in msgs)
    gone = [m.get("Channel", "")[:10] for m in msgs if m.name == "Hangup"]
    assert "PJSIP/1002" in gone
    await client.close()


async def test_hanging_up_the_consultation_over_ami_goes_back_to_the_caller(
    hotline_sim: Simulator, ivr: FastAgiServer
) -> None:
    """How the service cancels: AMI Hangup of the consultation's Local ;1 (the target's side
    hangs up: bridge_basic.c rebridges the transferer with the caller and ends the hold)."""
    sim = hotline_sim
    client = await ami_login(sim)
    call, agent = await _connected_call(sim, client, Agent(answer_after=1))
    await _atxfer(client, agent)
    answered = await client.wait_for(
        lambda m: (
            m.get("Event") == "DialEnd"
            and (m.get("DestChannel") or "").startswith("Local/1002@agents-")
            and m.get("DialStatus") == "ANSWER"
        )
    )
    resp = await client.action("Hangup", Channel=answered.get("DestChannel") or "")
    assert resp.get("Message") == "Channel Hungup"
    await client.wait_for(lambda m: m.get("Event") == "Unhold" and m.get("Channel") == agent)
    moh_stop = await client.wait_for(
        lambda m: (
            m.get("Event") == "MusicOnHoldStop"
            and m.get("Channel") == call.name
            and any(x.get("Event") == "Unhold" for x in client.messages)
        )
    )
    assert moh_stop.get("Channel") == call.name
    back = [
        m for m in client.messages if m.get("Event") == "BridgeEnter" and m.get("Channel") == agent
    ]
    first = back[0].get("BridgeUniqueid")
    assert [m.get("BridgeUniqueid") == first for m in back] == [True, False, True]
    await client.wait_for(
        lambda m: m.get("Event") == "Hangup" and (m.get("Channel") or "").startswith("PJSIP/1002")
    )
    assert agent in sim.pbx.channels and call.name in sim.pbx.channels  # talk goes on
    call.hangup()
    complete = await client.wait_for(lambda m: m.get("Event") == "AgentComplete")
    assert complete.get("Reason") == "caller"
    assert not any(m.get("Event") == "AttendedTransfer" for m in client.messages)
    await client.close()
