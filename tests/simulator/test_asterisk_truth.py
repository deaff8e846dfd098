"""The simulator against the behaviour of a real Asterisk 22.10.1 seen on a live server
(shared/asterisk/PROTOCOL.md, "More behaviour of real Asterisk 22.10.1") and in the
captures. Where no capture covers a case, the docstring names the Asterisk source file and
function the expectation comes from.

The rig is the project's config/asterisk with a few test contexts appended (far ends that
are busy, congested, silent or talking, built from dialplan applications as a real
Asterisk would run them), a sounds folder and a cdr-csv folder of the test's own.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import shutil
import time
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from callcenter.simulator import Agent, Caller, Destination, Simulator, SimulatorConfig
from callcenter.simulator.captures import AmiMessage
from callcenter.simulator.cdr import CSV_COLUMNS
from callcenter.simulator.config import REPO_ROOT, AmiUserConfig

from .support import SHARED, FastAgiServer, RawAmiClient, role

TEST_CONTEXTS = """
[truth-far]
exten => busy,1,Busy(1)
exten => congested,1,Congestion(1)
exten => silent,1,Wait(60)
exten => talker,1,Answer()
 same => n,Wait(0.5)
 same => n,Hangup()
exten => listener,1,Answer()
 same => n,UserEvent(TruthVars,Greeting: ${GREETING})
 same => n,Wait(2)
 same => n,Hangup()
exten => idle,1,Answer()
 same => n,Wait(60)
 same => n,Hangup()

[truth-home]
exten => s,1,Wait(1)
 same => n,Hangup()
exten => agi,1,AGI(agi://127.0.0.1:4573/truth)
 same => n,Hangup()
exten => hold,1,Wait(60)
 same => n,Hangup()
exten => play,1,Playback(no-such-prompt)
 same => n,UserEvent(TruthPlayback,Status: ${PLAYBACKSTATUS})
 same => n,Playback(hello-world)
 same => n,UserEvent(TruthPlayback,Status: ${PLAYBACKSTATUS})
 same => n,Hangup()
exten => moved,1,Wait(1)
 same => n,Hangup()
"""
WATCHER = ("watcher", "w4tch")  # an AMI user with the security class (read = all)


def truth_config(tmp_path: Path, **overrides: object) -> SimulatorConfig:
    confdir = tmp_path / "asterisk"
    shutil.copytree(REPO_ROOT / "config" / "asterisk", confdir)
    extensions = confdir / "extensions.conf"
    extensions.write_text(extensions.read_text() + TEST_CONTEXTS)
    values: dict[str, object] = {
        "port": 0,
        "time_scale": 0.05,
        "seed": 5,
        "asterisk_config_dir": confdir,
        "recordings_dir": tmp_path / "rec",
        "sounds_dir": tmp_path / "sounds",
        "cdr_dir": tmp_path / "cdr-csv",
        "speech_samples_dir": SHARED / "speech-samples",
        "bad_login_delay": 0.05,
        "users": [
            AmiUserConfig(username="callcenter", secret="CHANGE_ME", read="all", write="all"),
            AmiUserConfig(username=WATCHER[0], secret=WATCHER[1], read="all", write="all"),
        ],
    }
    values.update(overrides)
    return SimulatorConfig(**values)  # type: ignore[arg-type]


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[Simulator]:
    simulator = Simulator(truth_config(tmp_path))
    await simulator.start()
    yield simulator
    await simulator.stop()


async def login(
    sim: Simulator, user: tuple[str, str] = ("callcenter", "CHANGE_ME")
) -> RawAmiClient:
    client = RawAmiClient()
    await client.connect(sim.ami_port)
    assert (await client.login(*user)).get("Response") == "Success"
    return client


def events(client: RawAmiClient, name: str, **match: str) -> list[AmiMessage]:
    return [
        m
        for m in client.messages
        if m.get("Event") == name and all(m.get(k) == v for k, v in match.items())
    ]


def position(client: RawAmiClient, pred) -> int:  # type: ignore[no-untyped-def]
    return next(i for i, m in enumerate(client.messages) if pred(m))


# -- 1. Originate (Async, Local channels) ---------------------------------------------------


@pytest.mark.parametrize(
    ("exten", "reason", "cause2", "cause1", "dial_end"),
    [
        ("busy", "5", "17", "0", ["BUSY"]),
        ("congested", "8", "34", "0", ["CONGESTION"]),
        ("silent", "3", "19", "19", []),  # a DialBegin without any DialEnd
    ],
)
async def test_failed_local_originate_reports_dial_string_channelid_reason_and_causes(
    sim: Simulator, exten: str, reason: str, cause2: str, cause1: str, dial_end: list[str]
) -> None:
    client = await login(sim)
    aid = client.send(
        "Originate",
        Channel=f"Local/{exten}@truth-far",
        Context="truth-home",
        Exten="s",
        Priority="1",
        Timeout="2000",
        ChannelId="truth-orig-1",
        Async="true",
    )
    resp = await client.wait_for(
        lambda m: m.get("Event") == "OriginateResponse" and m.get("ActionID") == aid
    )
    assert resp.get("Response") == "Failure"
    assert resp.get("Channel") == f"Local/{exten}@truth-far"  # the bare dial string
    assert resp.get("Uniqueid") == "truth-orig-1"
    assert resp.get("Reason") == reason
    await sim.wait_idle()
    await client.wait_for(
        lambda m: m.get("Event") == "Hangup" and m.get("Uniqueid") == "truth-orig-1"
    )
    hangups = {m.get("Uniqueid"): m.get("Cause") for m in events(client, "Hangup")}
    assert hangups == {"truth-orig-1": cause1, "truth-orig-1;2": cause2}
    assert [m.get("DialStatus") for m in events(client, "DialEnd")] == dial_end
    assert len(events(client, "DialBegin")) == 1
    await client.close()


async def test_answered_local_originate_copies_variables_to_the_second_half(
    sim: Simulator,
) -> None:
    """core_local.c local_call(): the ;1 variables are copied to ;2 as a list (no VarSet on
    ;2); both halves end with Normal Clearing."""
    client = await login(sim)
    aid = client.send(
        "Originate",
        Channel="Local/listener@truth-far",
        Context="truth-home",
        Exten="s",
        Priority="1",
        Variable="GREETING=nihao",
        ChannelId="truth-orig-2",
        Async="true",
    )
    resp = await client.wait_for(
        lambda m: m.get("Event") == "OriginateResponse" and m.get("ActionID") == aid
    )
    assert (resp.get("Response"), resp.get("Reason")) == ("Success", "4")
    assert resp.get("Channel", "").startswith("Local/listener@truth-far-")
    assert resp.get("Channel", "").endswith(";1")
    assert resp.get("Uniqueid") == "truth-orig-2"
    await sim.wait_idle()
    await client.wait_for(
        lambda m: m.get("Event") == "Hangup" and m.get("Uniqueid") == "truth-orig-2"
    )
    [seen] = events(client, "UserEvent", UserEvent="TruthVars")
    assert seen.get("Greeting") == "nihao" and seen.get("Uniqueid") == "truth-orig-2;2"
    varsets = [m.get("Uniqueid") for m in events(client, "VarSet", Variable="GREETING")]
    assert varsets == ["truth-orig-2"]
    hangups = {m.get("Uniqueid"): m.get("Cause") for m in events(client, "Hangup")}
    assert hangups == {"truth-orig-2": "16", "truth-orig-2;2": "16"}
    await client.close()


async def test_local_half_hung_up_over_ami_reports_cause_0(sim: Simulator) -> None:
    """manager.c action_hangup(): without a Cause header no hang-up cause is set, and a
    Local channel's driver (core_unreal.c) adds none: Hangup says 0."""
    client = await login(sim)
    client.send(
        "Originate",
        Channel="Local/idle@truth-far",
        Context="truth-home",
        Exten="hold",
        Priority="1",
        ChannelId="truth-caller",
        Async="true",
    )
    await client.wait_for(lambda m: m.get("Event") == "OriginateResponse")
    resp = await client.action("Hangup", Channel=sim.pbx.by_uniqueid["truth-caller"].name)
    assert resp.get("Message") == "Channel Hungup"
    hangup = await client.wait_for(
        lambda m: m.get("Event") == "Hangup" and m.get("Uniqueid") == "truth-caller"
    )
    assert (hangup.get("Cause"), hangup.get("Cause-txt")) == ("0", "Unknown")
    await client.close()


# -- 2. replies before the events they cause ------------------------------------------------


async def test_mixmonitor_reply_comes_before_its_events_and_a_second_stop_fails(
    sim: Simulator,
) -> None:
    client = await login(sim)
    client.send(
        "Originate",
        Channel="Local/idle@truth-far",
        Context="truth-home",
        Exten="hold",
        Priority="1",
        ChannelId="truth-rec",
        Async="true",
    )
    await client.wait_for(lambda m: m.get("Event") == "OriginateResponse")
    name = sim.pbx.by_uniqueid["truth-rec"].name
    aid = client.send("MixMonitor", Channel=name, File="truth.wav")
    reply = await client.response(aid)
    assert reply.fields == [("Response", "Success"), ("ActionID", aid)]  # no Message, no id
    start = await client.wait_for(lambda m: m.get("Event") == "MixMonitorStart")
    reply_at = position(client, lambda m: m.get("ActionID") == aid)
    varset_at = position(client, lambda m: m.get("Variable") == "MIXMONITOR_FILENAME")
    assert reply_at < varset_at < client.messages.index(start)
    assert client.messages[varset_at].get("Value") == "/var/spool/asterisk/monitor/truth.wav"
    first = await client.action("StopMixMonitor", Channel=name)
    assert first.get("Response") == "Success"
    second = await client.action("StopMixMonitor", Channel=name)
    assert (second.get("Response"), second.get("Message")) == (
        "Error",
        "Could not stop monitoring channel",
    )
    await client.close()


async def test_redirect_reply_comes_before_the_resulting_events(sim: Simulator) -> None:
    client = await login(sim)
    client.send(
        "Originate",
        Channel="Local/idle@truth-far",
        Context="truth-home",
        Exten="hold",
        Priority="1",
        ChannelId="truth-redir",
        Async="true",
    )
    await client.wait_for(lambda m: m.get("Event") == "OriginateResponse")
    name = sim.pbx.by_uniqueid["truth-redir"].name
    aid = client.send("Redirect", Channel=name, Context="truth-home", Exten="moved", Priority="1")
    reply = await client.response(aid)
    assert reply.get("Message") == "Redirect successful"
    moved = await client.wait_for(
        lambda m: m.get("Event") == "Newexten" and m.get("Extension") == "moved"
    )
    assert client.messages.index(reply) < client.messages.index(moved)
    await client.close()


async def test_playdtmf_replies_after_the_digit_and_the_second_half_receives_it(
    sim: Simulator,
) -> None:
    """manager.c manager_play_dtmf(): ast_senddigit() plays the digit for its duration (100
    ms by default) before the reply; on a Local channel the other half receives it."""
    client = await login(sim)
    client.send(
        "Originate",
        Channel="Local/idle@truth-far",
        Context="truth-home",
        Exten="hold",
        Priority="1",
        ChannelId="truth-dtmf",
        Async="true",
    )
    await client.wait_for(lambda m: m.get("Event") == "OriginateResponse")
    name = sim.pbx.by_uniqueid["truth-dtmf"].name
    sent_at = sim.clock.now()
    reply = await client.action("PlayDTMF", Channel=name, Digit="5")
    assert reply.get("Message") == "DTMF successfully queued"
    assert sim.clock.now() - sent_at >= 0.1  # simulated seconds: the digit's duration
    dtmf = [m for m in client.messages if m.get("Event", "").startswith("DTMF")]
    assert [(m.name, m.get("Uniqueid"), m.get("Direction")) for m in dtmf] == [
        ("DTMFBegin", "truth-dtmf;2", "Received"),
        ("DTMFEnd", "truth-dtmf;2", "Received"),
    ]
    assert client.messages.index(dtmf[-1]) < client.messages.index(reply)
    await client.close()


# -- 3. FastAGI after a hang-up ---------------------------------------------------------------


async def test_agi_after_hangup_reports_each_command_and_hangs_up_only_when_the_server_closes(
    sim: Simulator,
) -> None:
    replies: list[str] = []
    close_now = asyncio.Event()

    async def script(reader, writer, env):  # type: ignore[no-untyped-def]
        for command in (
            'STREAM FILE hotline-welcome ""',  # 1.4 s; the caller leaves after 0.5 s
            'STREAM FILE hello-world ""',
            "FROBNICATE now",
            "SET VARIABLE AFTER yes",
        ):
            replies.append(await agi.command(reader, writer, command))
        await close_now.wait()

    agi = FastAgiServer(script)
    sim.config.agi_port = await agi.start()
    client = await login(sim)
    client.send(
        "Originate",
        Channel="Local/talker@truth-far",
        Context="truth-home",
        Exten="agi",
        Priority="1",
        ChannelId="truth-agi",
        Async="true",
    )
    await client.wait_for(
        lambda m: m.get("Event") == "AGIExecEnd" and m.get("Command") == "SET VARIABLE AFTER yes"
    )
    assert replies[0].startswith("200 result=-1 endpos=")
    assert replies[1:] == [
        "511 Command Not Permitted on a dead channel or intercept routine",
        "510 Invalid or unknown command",
        "200 result=1",
    ]
    mine = [m for m in client.messages if m.get("Uniqueid") == "truth-agi"]
    story = [
        (m.name, m.get("Cause") or m.get("Variable") or m.get("ResultCode"), m.get("Result"))
        for m in mine
        if m.name in ("HangupRequest", "VarSet", "AGIExecEnd", "Hangup")
    ]
    assert story[-7:] == [
        ("HangupRequest", "16", None),  # the ;2 half hung up; nothing else until the close
        ("VarSet", "PLAYBACKSTATUS", None),
        ("AGIExecEnd", "-1", "Failure"),  # the interrupted STREAM FILE
        ("AGIExecEnd", "511", "Command Not Permitted on a dead channel or intercept routine"),
        ("AGIExecEnd", "510", "Invalid or unknown command"),
        ("VarSet", "AFTER", None),
        ("AGIExecEnd", "200", "Success"),
    ]
    assert not events(client, "Hangup", Uniqueid="truth-agi")
    assert not events(client, "VarSet", Uniqueid="truth-agi", Variable="AGISTATUS")
    close_now.set()
    hangup = await client.wait_for(
        lambda m: m.get("Event") == "Hangup" and m.get("Uniqueid") == "truth-agi"
    )
    [status] = events(client, "VarSet", Uniqueid="truth-agi", Variable="AGISTATUS")
    assert status.get("Value") == "HANGUP"
    assert client.messages.index(status) < client.messages.index(hangup)
    await agi.stop()
    await client.close()


# -- 4. status actions -----------------------------------------------------------------------


async def test_status_list_events_end_with_the_actionid_and_complete_has_items(
    sim: Simulator,
) -> None:
    client = await login(sim)
    client.send(
        "Originate",
        Channel="Local/idle@truth-far",
        Context="truth-home",
        Exten="hold",
        Priority="1",
        ChannelId="truth-status",
        Async="true",
    )
    await client.wait_for(lambda m: m.get("Event") == "OriginateResponse")
    items = await client.list_action("Status", ActionID="st-1")
    statuses = [m for m in items if m.get("Event") == "Status"]
    assert len(statuses) == 2  # both halves
    for m in statuses:
        assert m.fields[1] == ("Privilege", "Call")
        assert m.fields[-1] == ("ActionID", "st-1")
    complete = items[-1]
    assert complete.keys() == ["Event", "ActionID", "EventList", "ListItems", "Items"]
    assert (complete.get("ListItems"), complete.get("Items")) == ("2", "2")
    name = sim.pbx.by_uniqueid["truth-status"].name
    unset = await client.action("Getvar", Channel=name, Variable="NOT_SET_ANYWHERE")
    assert unset.fields[0] == ("Response", "Success")
    assert (unset.get("Variable"), unset.get("Value")) == ("NOT_SET_ANYWHERE", "")
    gone = await client.action("Getvar", Channel="PJSIP/nobody-00000000", Variable="X")
    assert (gone.get("Response"), gone.get("Message")) == ("Error", "No such channel")
    no_iface = await client.action("QueueAdd", Queue="hotline")
    assert no_iface.get("Message") == "'Interface' not specified."
    await client.close()


async def test_unknown_action_gets_an_error_and_a_request_bad_format_event(
    sim: Simulator,
) -> None:
    """manager.c process_message(): unknown action → error reply and
    report_req_bad_format(); field order from main/security_events.c (RequestType is
    required, AccountID optional for this event type)."""
    watcher = await login(sim, WATCHER)
    client = await login(sim)
    reply = await client.action("Frobnicate")
    assert reply.get("Message") == (
        "Invalid/unknown command: Frobnicate. Use Action: ListCommands to show available commands."
    )
    bad = await watcher.wait_for(lambda m: m.get("Event") == "RequestBadFormat")
    assert bad.keys() == [
        "Event",
        "Privilege",
        "Timestamp",
        "EventTV",
        "Severity",
        "Service",
        "EventVersion",
        "SessionID",
        "LocalAddress",
        "RemoteAddress",
        "RequestType",
        "AccountID",
        "SessionTV",
    ]
    assert (bad.get("RequestType"), bad.get("AccountID")) == ("Action: Frobnicate", "callcenter")
    assert bad.get("Privilege") == "security,all" and bad.get("Severity") == "Error"
    await client.close()
    await watcher.close()


async def test_corestatus_has_processed_calls_and_no_message(sim: Simulator) -> None:
    """manager.c action_corestatus(): startup/reload date and time, current and processed
    calls; no Message line."""
    client = await login(sim)
    reply = await client.action("CoreStatus", ActionID="cs-1")
    assert reply.keys() == [
        "Response",
        "ActionID",
        "CoreStartupDate",
        "CoreStartupTime",
        "CoreReloadDate",
        "CoreReloadTime",
        "CoreCurrentCalls",
        "CoreProcessedCalls",
    ]
    assert (reply.get("CoreCurrentCalls"), reply.get("CoreProcessedCalls")) == ("0", "0")
    sim.add_agent("PJSIP/1001", Agent(answer_after=1), queues=["hotline"], login=True)
    sim.config.agi_port = 9  # the IVR fails at once, the call goes on to the queue
    call = sim.place_call("13900000301", behaviour=Caller(talk_time=1))
    await asyncio.wait_for(call.ended, 20)
    after = await client.action("CoreStatus")
    assert after.get("CoreProcessedCalls") == "1"  # one PBX run: the caller's
    await client.close()


# -- 5. login failures -----------------------------------------------------------------------


async def test_failed_logins_answer_after_a_second_and_report_security_events(
    tmp_path: Path,
) -> None:
    """manager.c authenticate(): a wrong MD5 key reports ChallengeResponseFailed, a wrong
    secret InvalidPassword (EventVersion 2), a Key without a Challenge nothing; all three
    get "Authentication failed" after sleep(1) and the socket is closed."""
    simulator = Simulator(truth_config(tmp_path, bad_login_delay=1.0))
    await simulator.start()
    try:
        watcher = await login(simulator, WATCHER)

        async def attempt(kind: str) -> tuple[AmiMessage, float, int]:
            client = RawAmiClient()
            await client.connect(simulator.ami_port)
            assert client.writer is not None
            port = client.writer.get_extra_info("sockname")[1]
            if kind == "md5":
                challenge = await client.action("Challenge", AuthType="md5")
                assert challenge.get("Challenge")
                fields = {"AuthType": "md5", "Key": "0" * 32}
            elif kind == "plain":
                fields = {"Secret": "wrong"}
            else:
                fields = {"AuthType": "md5", "Key": "0" * 32}
            started = time.monotonic()
            reply = await client.action("Login", Username="callcenter", **fields)
            elapsed = time.monotonic() - started
            await client.closed(5)
            return reply, elapsed, port

        results = await asyncio.gather(attempt("md5"), attempt("plain"), attempt("nochallenge"))
        for reply, elapsed, _ in results:
            assert (reply.get("Response"), reply.get("Message")) == (
                "Error",
                "Authentication failed",
            )
            assert 0.95 <= elapsed < 3.0
        await watcher.action("Ping")  # events of the attempts came before their replies
        failures = [
            m
            for m in watcher.messages
            if m.get("Event") in ("ChallengeResponseFailed", "InvalidPassword", "InvalidAccountID")
        ]
        by_port = {int(m.get("RemoteAddress", "").rsplit("/", 1)[1]): m for m in failures}
        md5_port, plain_port, bare_port = (port for _, _, port in results)
        assert sorted(by_port) == sorted([md5_port, plain_port])  # nothing for the bare key
        md5 = by_port[md5_port]
        assert md5.get("Event") == "ChallengeResponseFailed"
        assert md5.get("Response") == "0" * 32
        challenge = md5.get("Challenge", "")
        assert (
            md5.get("ExpectedResponse")
            == hashlib.md5((challenge + "CHANGE_ME").encode()).hexdigest()
        )
        assert md5.keys()[-4:] == ["Challenge", "Response", "ExpectedResponse", "SessionTV"]
        plain = by_port[plain_port]
        assert (plain.get("Event"), plain.get("EventVersion")) == ("InvalidPassword", "2")
        assert plain.get("AccountID") == "callcenter"
        assert bare_port not in by_port
        await watcher.close()
    finally:
        await simulator.stop()


# -- 6. CDRs: Cdr events and Master.csv -------------------------------------------------------


def csv_rows(path: Path) -> list[dict[str, str]]:
    import csv

    with path.open(newline="", encoding="utf-8") as handle:
        return [dict(zip(CSV_COLUMNS, row, strict=True)) for row in csv.reader(handle)]


def cdr_shape(row: dict[str, str]) -> tuple[str, ...]:
    """What must agree with Asterisk: parties, dialplan position, outcome (not ids, times)."""
    return (
        row["src"],
        row["dst"],
        row["dcontext"],
        row["clid"],
        role(row["channel"]),
        role(row["dstchannel"]),
        row["lastapp"],
        row["lastdata"],
        "answered" if row["answer"] else "unanswered",
        row["disposition"],
        row["amaflags"],
    )


async def test_master_csv_matches_the_captured_cdrs(tmp_path: Path, captures: Path) -> None:
    """cdr_Master.csv of the capture rig: queue_call (rows 1-3) and abandon (rows 10-12)."""
    confdir = tmp_path / "rig"
    shutil.copytree(captures / "dialplan", confdir)
    (confdir / "cdr.conf").write_text("[general]\nenable = yes\n\n[csv]\nusegmtime = yes\n")
    simulator = Simulator(
        SimulatorConfig(
            port=0,
            time_scale=0.02,
            seed=3,
            asterisk_config_dir=confdir,
            recordings_dir=tmp_path / "rec",
            sounds_dir=tmp_path / "sounds",
            cdr_dir=tmp_path / "cdr-csv",
            speech_samples_dir=SHARED / "speech-samples",
        )
    )
    await simulator.start()
    try:
        assert simulator.cdr_csv_path == tmp_path / "cdr-csv" / "Master.csv"
        client = RawAmiClient()
        await client.connect(simulator.ami_port)
        await client.login()
        for exten in ("s", "slow"):
            aid = client.send(
                "Originate",
                Channel="Local/s@caller-sim" if exten == "s" else "Local/abandon@caller-sim",
                Context="queue-test",
                Exten=exten,
                Priority="1",
                CallerID="Sim Caller <5551000>",
                Async="true",
            )
            await client.wait_for(
                lambda m, aid=aid: (
                    m.get("Event") == "OriginateResponse" and m.get("ActionID") == aid
                )
            )
            await simulator.wait_idle(30)
        await client.close()
    finally:
        await simulator.stop()
    want = csv_rows(captures / "cdr_Master.csv")
    got = csv_rows(tmp_path / "cdr-csv" / "Master.csv")
    assert sorted(map(cdr_shape, got)) == sorted(map(cdr_shape, want[0:3] + want[9:12]))
    raw = (tmp_path / "cdr-csv" / "Master.csv").read_text().splitlines()
    unanswered = next(line for line in raw if "agents-noanswer" in line and "FAILED" in line)
    assert ',,"' in unanswered  # no answer time: an empty, unquoted cell, as cdr_csv writes
    assert raw[0].startswith('"","5551000",')  # accountcode, src: quoted strings


async def test_redirect_and_a_dialplan_going_on_after_queue_split_the_cdr(
    sim: Simulator,
) -> None:
    """cdr.c: a channel leaving a bridge and going on in the dialplan finalizes its record
    and starts a new one (finalized_state_process_party_a); so does a dialplan that goes on
    after Queue() returned with party B set (dialed_pending_state_process_party_a)."""
    client = await login(sim)
    sim.config.agi_port = 9  # the IVR fails at once, the call goes on to the queue
    sim.add_agent("PJSIP/1001", Agent(answer_after=1), queues=["hotline"], login=True)
    call = sim.place_call("13900000401", behaviour=Caller(talk_time=60))
    await call.wait_bridged()
    await sim.advance(3)
    reply = await client.action(
        "Redirect", Channel=call.name, Context="truth-home", Exten="moved", Priority="1"
    )
    assert reply.get("Message") == "Redirect successful"
    await asyncio.wait_for(call.ended, 20)
    await client.wait_for(
        lambda m: m.get("Event") == "Cdr" and m.get("LastApplication") == "Hangup"
    )
    cdrs = [m for m in events(client, "Cdr") if m.get("Channel") == call.name]
    assert [(c.get("LastApplication"), role(c.get("DestinationChannel") or "")) for c in cdrs] == [
        ("Queue", "PJSIP/1001"),
        ("Hangup", ""),
    ]
    assert cdrs[0].get("EndTime") == cdrs[1].get("StartTime")
    assert cdrs[1].get("AnswerTime") == cdrs[1].get("StartTime")  # already up: answered now
    assert cdrs[1].get("DestinationContext") == "truth-home"
    assert [c.get("Disposition") for c in cdrs] == ["ANSWERED", "ANSWERED"]
    rows = csv_rows(sim.cdr_csv_path)
    mine = [r for r in rows if r["channel"] == call.name]
    assert [(r["lastapp"], r["disposition"]) for r in mine] == [
        ("Queue", "ANSWERED"),
        ("Hangup", "ANSWERED"),
    ]
    await client.close()


async def test_every_unanswered_queue_attempt_gets_a_no_answer_cdr(sim: Simulator) -> None:
    client = await login(sim)
    sim.config.agi_port = 9
    sim.add_agent("PJSIP/1001", Agent(mode="never"), queues=["hotline"], login=True)
    call = sim.place_call("13900000402", behaviour=Caller(patience=40))
    await asyncio.wait_for(call.ended, 20)
    await client.wait_for(lambda m: m.get("Event") == "Cdr" and m.get("Channel") == call.name)
    await sim.wait_idle()
    cdrs = [m for m in events(client, "Cdr") if m.get("Channel") == call.name]
    # timeout 15 s + retry 2 s per attempt: attempts at 0, 17, 34 s before the caller gives up
    assert [(role(c.get("DestinationChannel") or ""), c.get("Disposition")) for c in cdrs] == [
        ("PJSIP/1001", "NO ANSWER")
    ] * 3
    assert not [m for m in events(client, "Cdr") if role(m.get("Channel") or "") == "PJSIP/1001"]
    await client.close()


# -- 7. restart ------------------------------------------------------------------------------


async def test_restart_says_shutdown_refuses_then_accepts_logins_before_fully_booted(
    sim: Simulator,
) -> None:
    """agent_session capture (second connection) and PROTOCOL.md: Shutdown to every client,
    the socket closed ~20 ms later, refused for a while, then logins while booting:
    SuccessfulAuth before FullyBooted (Status first, Uptime 0); queues from queues.conf,
    dynamic members and calls gone."""
    client = await login(sim)
    sim.config.agi_port = 9
    sim.add_agent("PJSIP/1001", Agent(answer_after=1), queues=["hotline"], login=True)
    call = sim.place_call("13900000501", behaviour=Caller(talk_time=600))
    await call.wait_bridged()
    restart = asyncio.ensure_future(sim.restart(down_for=4, boot_for=10))
    shutdown = await client.wait_for(lambda m: m.get("Event") == "Shutdown")
    assert shutdown.keys() == ["Event", "Privilege", "Timestamp", "Shutdown", "Restart"]
    assert (shutdown.get("Shutdown"), shutdown.get("Restart")) == ("Cleanly", "True")
    assert shutdown.get("Privilege") == "system,all"
    await client.closed(5)
    assert client.messages[-1] is shutdown  # nothing after it: the socket is closed
    assert call.ended.done()  # the call that was up is gone
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", sim.ami_port)
    await asyncio.wait_for(sim.ami_listening.wait(), 5)
    again = RawAmiClient()
    await again.connect(sim.ami_port)
    assert (await again.login("callcenter", "CHANGE_ME")).get("Message") == (
        "Authentication accepted"
    )
    booted = await again.wait_for(lambda m: m.get("Event") == "FullyBooted", 10)
    await asyncio.wait_for(restart, 20)
    names = [m.get("Event") or m.get("Response") for m in again.messages]
    assert names.index("SuccessfulAuth") < names.index("FullyBooted")
    assert names.count("FullyBooted") == 1  # none at login while booting
    assert booted.keys() == ["Event", "Privilege", "Timestamp", "Status", "Uptime", "LastReload"]
    assert (booted.get("Status"), booted.get("Uptime"), booted.get("LastReload")) == (
        "Fully Booted",
        "0",
        "0",
    )
    [agi_host] = events(again, "VarSet", Variable="AGI_HOST")  # [globals] loaded at boot
    assert (agi_host.get("Channel"), agi_host.get("Uniqueid")) == ("none", "none")
    status = await again.list_action("QueueStatus", Queue="hotline")
    assert [m.name for m in status] == ["Success", "QueueParams", "QueueStatusComplete"]
    channels = await again.list_action("CoreShowChannels")
    assert channels[-1].get("ListItems") == "0"
    later = RawAmiClient()
    await later.connect(sim.ami_port)
    await later.login("callcenter", "CHANGE_ME")
    at_login = await later.wait_for(lambda m: m.get("Event") == "FullyBooted")
    assert at_login.keys() == ["Event", "Privilege", "Uptime", "LastReload", "Status"]
    await later.close()
    await again.close()


# -- 8. prompts from the sounds folder -------------------------------------------------------


def write_prompt(path: Path, seconds: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(b"\x00\x00" * int(seconds * 8000))


async def test_prompts_come_from_the_sounds_folder_and_a_missing_one_fails_at_once(
    sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    """res_agi.c handle_streamfile(): ast_openstream() fails → "200 result=-1 endpos=0" at
    once; app_playback.c playback_exec(): PLAYBACKSTATUS=FAILED and a warning, the dialplan
    goes on. A prompt plays as long as its file."""
    sounds = sim.config.sounds_dir
    assert (sounds / "en" / "hotline-welcome.wav").is_file()  # generated at start
    write_prompt(sounds / "en" / "custom-prompt.wav", 0.5)
    replies: list[tuple[str, float]] = []

    async def script(reader, writer, env):  # type: ignore[no-untyped-def]
        for command in ('STREAM FILE no-such-prompt ""', 'STREAM FILE custom-prompt ""'):
            started = sim.clock.now()
            reply = await agi.command(reader, writer, command)
            replies.append((reply, sim.clock.now() - started))

    agi = FastAgiServer(script)
    sim.config.agi_port = await agi.start()
    client = await login(sim)
    caplog.set_level(logging.WARNING, logger="callcenter.simulator")
    client.send(
        "Originate",
        Channel="Local/idle@truth-far",
        Context="truth-home",
        Exten="agi",
        Priority="1",
        ChannelId="truth-prompt",
        Async="true",
    )
    await client.wait_for(
        lambda m: m.get("Event") == "Hangup" and m.get("Uniqueid") == "truth-prompt"
    )
    (missing, missing_s), (custom, custom_s) = replies
    assert missing == "200 result=-1 endpos=0" and missing_s < 0.1
    assert custom == "200 result=0 endpos=4000" and 0.45 <= custom_s < 0.7
    ends = [m.get("ResultCode") for m in events(client, "AGIExecEnd", Uniqueid="truth-prompt")]
    assert ends == ["-1", "200"]  # RESULT_FAILURE for the missing file
    played = events(client, "VarSet", Uniqueid="truth-prompt", Variable="PLAYBACKSTATUS")
    assert [m.get("Value") for m in played] == ["SUCCESS"]  # none for the missing file
    client.send(
        "Originate",
        Channel="Local/idle@truth-far",
        Context="truth-home",
        Exten="play",
        Priority="1",
        ChannelId="truth-playback",
        Async="true",
    )
    await client.wait_for(
        lambda m: m.get("Event") == "Hangup" and m.get("Uniqueid") == "truth-playback"
    )
    statuses = [m.get("Status") for m in events(client, "UserEvent", UserEvent="TruthPlayback")]
    assert statuses == ["FAILED", "SUCCESS"]
    assert "File no-such-prompt does not exist in any format" in caplog.text
    assert "Playback failed on" in caplog.text
    await agi.stop()
    await client.close()


def test_hotline_greeting_prompt_is_generated_once_and_kept(tmp_path: Path) -> None:
    """callcenter/ivr/greeting.py plays `hotline-welcome`: the simulator writes a small real
    8 kHz WAV into its sounds folder when missing, and never replaces a real recording."""
    from callcenter.simulator.sounds import Sounds

    sounds = Sounds(tmp_path / "sounds")
    assert sounds.find("hotline-welcome") is None
    sounds.ensure_stock()
    path = sounds.find("hotline-welcome")
    assert path == tmp_path / "sounds" / "en" / "hotline-welcome.wav"
    with wave.open(str(path), "rb") as wav:
        assert (wav.getframerate(), wav.getsampwidth(), wav.getnchannels()) == (8000, 2, 1)
    assert sounds.length("hotline-welcome") == 1.4
    assert sounds.length("hello-world") == 11234 / 8000
    write_prompt(tmp_path / "sounds" / "en" / "hotline-welcome.wav", 3.0)
    Sounds(tmp_path / "sounds").ensure_stock()
    assert Sounds(tmp_path / "sounds").length("hotline-welcome") == 3.0
    (tmp_path / "sounds" / "zh").mkdir()
    write_prompt(tmp_path / "sounds" / "zh" / "hotline-welcome.wav", 2.0)
    assert Sounds(tmp_path / "sounds").length("hotline-welcome", "zh") == 2.0
    (tmp_path / "sounds" / "en" / "raw-prompt.ulaw").write_bytes(b"\xff" * 8000)
    assert Sounds(tmp_path / "sounds").length("raw-prompt") == 1.0


async def test_click_to_call_cdrs_match_the_capture(sim: Simulator, captures: Path) -> None:
    """cdr_Master_turn2.csv, click_to_call: the handler's phone (PJSIP/1003) is Originated
    into [callback]; the citizen answers, is busy, or never answers (Dial timeout 45 s).
    A failed Dial leaves the dialplan going on to Hangup(): a second, answered record.
    (The capture rig dialled Local/<n>@citizen-sim where the hotline dials the trunk.)"""
    sim.add_agent("PJSIP/1003", Agent(answer_after=1))
    sim.add_destination("13800138000", Destination(mode="answer", answer_after=2, talk_time=7))
    sim.add_destination("13800138001", Destination(mode="busy"))
    sim.add_destination("13800138002", Destination(mode="noanswer"))
    client = await login(sim)
    for number in ("13800138000", "13800138001", "13800138002"):
        aid = client.send(
            "Originate",
            Channel="PJSIP/1003",
            Context="callback",
            Exten=number,
            Priority="1",
            CallerID='"12345" <12345>',
            Async="true",
        )
        await client.wait_for(
            lambda m, aid=aid: m.get("Event") == "OriginateResponse" and m.get("ActionID") == aid
        )
        await sim.wait_idle()
    await client.close()

    def story(row: dict[str, str]) -> tuple[str, ...]:
        return (
            row["src"],
            row["dst"],
            row["dcontext"],
            row["lastapp"],
            "party B" if row["dstchannel"] else "alone",
            "answered" if row["answer"] else "unanswered",
            row["disposition"],
        )

    want = [
        story(r)
        for r in csv_rows(captures / "cdr_Master_turn2.csv")
        if r["channel"].startswith("PJSIP/1003-")
    ]
    got = [story(r) for r in csv_rows(sim.cdr_csv_path)]
    assert got == want
    no_answer = [r for r in csv_rows(sim.cdr_csv_path) if r["disposition"] == "NO ANSWER"]
    assert [(r["duration"], r["billsec"]) for r in no_answer] == [("46", "45")]
