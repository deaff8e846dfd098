"""Golden transcripts for scenarios no capture covers: ring-no-answer then the next agent, and
Originate to a busy and to a silent destination. The event sequence per channel was checked
against Asterisk 22's source (apps/app_queue.c wait_for_answer()/rna()/hangupcalls(),
main/dial.c monitor_dial()/handle_timeout_trip(), main/pbx.c pbx_dial_reason(),
main/manager_channels.c channel_dial_cb()). Every event's fields, in order, must equal those
of the same event in the real captures (or, for events no capture has, the field list the
source documents)."""

from __future__ import annotations

from functools import cache

import pytest

from callcenter.simulator import Agent, Caller, Destination, Simulator
from callcenter.simulator.captures import AmiMessage, parse_raw

from .support import CAPTURES, SNAPSHOT, FastAgiServer, RawAmiClient, ami_login, by_channel

DEST = [f"Dest{k}" for k in SNAPSHOT]
# events that no capture has: fields as the source builds them
FROM_SOURCE = {
    # rna(): blob Queue, Interface, MemberName, RingTime on caller + member snapshots
    ("AgentRingNoAnswer", True): ["Event", "Privilege", *SNAPSHOT, *DEST]
    + ["Queue", "Interface", "MemberName", "RingTime"],
    # channel_dial_cb(): a non-final dial status; Originate's dialer has no caller channel
    ("DialState", True): ["Event", "Privilege", *SNAPSHOT, *DEST, "DialStatus"],
    ("DialState", False): ["Event", "Privilege", *DEST, "DialStatus"],
}
IGNORED = ("Timestamp",)
# ast_queue_hangup() adds Cause only when the channel has one (a BYE without a Reason has not)
OPTIONAL = {"HangupRequest": "Cause"}
QUIET = {"FullyBooted", "SuccessfulAuth", "QueueMemberAdded", "DeviceStateChange"}


@cache
def reference_fields() -> dict[tuple[str, bool], list[str]]:
    """(event, has a Channel field) → its field names in the real captures."""
    ref: dict[tuple[str, bool], list[str]] = dict(FROM_SOURCE)
    for raw in sorted(CAPTURES.glob("*.raw")):
        for m in parse_raw(raw):
            if not m.is_event:
                continue
            key = (m.name, m.get("Channel") is not None)
            ref.setdefault(key, [k for k in m.keys() if k not in IGNORED])
    return ref


def assert_fields_match_reference(msgs: list[AmiMessage]) -> None:
    ref = reference_fields()
    for m in msgs:
        key = (m.name, m.get("Channel") is not None)
        assert key in ref, f"no reference for {key}"
        want = ref[key]
        if OPTIONAL.get(m.name) and m.get(OPTIONAL[m.name]) is None:
            want = [k for k in want if k != OPTIONAL[m.name]]
        assert [k for k in m.keys() if k not in IGNORED] == want, m.name


def transcript(msgs: list[AmiMessage]) -> dict[str, list[str]]:
    """Per channel role: event names, with the value that tells the story."""
    out = {}
    for chan, events in by_channel(msgs).items():
        out[chan] = [
            " ".join(
                [m.name]
                + [
                    v
                    for v in (
                        m.get("Variable"),
                        m.get("Application"),
                        m.get("DialStatus"),
                        m.get("Reason"),
                        m.get("Cause"),
                    )
                    if v
                ]
            )
            for m in events
        ]
    return out


def events(client: RawAmiClient) -> list[AmiMessage]:
    return [
        m
        for m in parse_raw(client.raw)  # strict CRLF framing of every byte received
        if m.is_event and m.name not in QUIET and m.name != "QueueMemberStatus"
    ]


RNA_CALLER = [
    "Newchannel",
    "VarSet SIPDOMAIN",
    "Newexten NoOp",
    "Newexten Answer",
    "Newstate",
    "Newexten Set",
    "VarSet RECORDING_NAME",
    "Newexten MixMonitor",
    "VarSet MIXMONITOR_FILENAME",
    "MixMonitorStart",
    "Newexten AGI",
    "AGIExecStart",
    "AGIExecEnd",
    "VarSet AGISTATUS",
    "Newexten Queue",
    "VarSet ANSWEREDTIME",
    "VarSet ANSWEREDTIME_MS",
    "VarSet DIALEDTIME",
    "VarSet DIALEDTIME_MS",
    "VarSet QUEUEWAIT",
    "VarSet QUEUEWAIT_MS",
    "QueueCallerJoin",
    "MusicOnHoldStart",
    # first member: rung for the queue's timeout (15 s), never answers
    "AgentCalled",
    "DialBegin",
    "DialState RINGING",
    "AgentRingNoAnswer",
    "DialEnd NOANSWER",  # wait_for_answer(): publish_dial_end_event(..., "NOANSWER")
    "DialEnd CANCEL",  # hangupcalls() publishes CANCEL for every line still open
    # after `retry` seconds the next member (rrmemory)
    "AgentCalled",
    "DialBegin",
    "DialState RINGING",
    "NewConnectedLine",
    "DialEnd ANSWER",
    "MusicOnHoldStop",
    "QueueCallerLeave",
    "VarSet QUEUEPOSITION",
    "VarSet QUEUEWAIT",
    "VarSet QUEUEWAIT_MS",
    "AgentConnect",
    "BridgeEnter",
    "VarSet BRIDGEPEER",
    "HangupRequest",
    "VarSet BRIDGEPEER",
    "BridgeLeave",
    "VarSet ANSWEREDTIME",
    "VarSet ANSWEREDTIME_MS",
    "VarSet DIALEDTIME",
    "VarSet DIALEDTIME_MS",
    "AgentComplete caller",
    "SoftHangupRequest 16",
    "Hangup 16",
    "Cdr",  # the unanswered attempt on 1001 (cdr.c: one record per dial attempt)
    "Cdr",  # the answered attempt on 1002
]
RNA_MEMBER_1 = [
    "Newchannel",
    "Newexten AppQueue",
    "NewCallerid",
    "VarSet DIALEDPEERNUMBER",
    "Newstate",  # Ringing
    "Hangup 0",  # hung up by hangupcalls() without a cause
]
RNA_MEMBER_2 = [
    "Newchannel",
    "Newexten AppQueue",
    "NewCallerid",
    "VarSet DIALEDPEERNUMBER",
    "Newstate",  # Ringing
    "Newstate",  # Up
    "Newexten AppQueue",
    "NewConnectedLine",
    "BridgeEnter",
    "VarSet BRIDGEPEER",
    "VarSet BRIDGEPEER",
    "BridgeLeave",
    "Hangup 16",
]


async def test_ring_no_answer_then_next_agent_golden(
    hotline_sim: Simulator, ivr: FastAgiServer
) -> None:
    sim = hotline_sim
    client = await ami_login(sim)
    sim.add_agent("PJSIP/1001", Agent(mode="never"), queues=["hotline"], login=True)
    sim.add_agent("PJSIP/1002", Agent(answer_after=2), queues=["hotline"], login=True)
    call = sim.place_call("13900000002", behaviour=Caller(talk_time=5))
    await call.ended
    await client.wait_for(lambda m: m.get("Event") == "Cdr" and m.get("Channel") == call.name)
    msgs = events(client)
    got = transcript(msgs)
    assert got["PJSIP/trunk"] == RNA_CALLER
    assert got["PJSIP/1001"] == RNA_MEMBER_1
    assert got["PJSIP/1002"] == RNA_MEMBER_2
    assert got[""] == ["BridgeCreate", "BridgeDestroy"]
    assert_fields_match_reference(msgs)
    cdrs = [m for m in msgs if m.name == "Cdr"]
    assert [(c.get("DestinationChannel", "")[:11], c.get("Disposition")) for c in cdrs] == [
        ("PJSIP/1001-", "NO ANSWER"),
        ("PJSIP/1002-", "ANSWERED"),
    ]
    assert cdrs[0].get("EndTime") == cdrs[1].get("StartTime")  # split when 1002 is dialed
    rna = next(m for m in msgs if m.name == "AgentRingNoAnswer")
    assert rna.get("RingTime") == "15000"  # milliseconds (rna() passes the ms count)
    assert rna.get("DestChannel", "").startswith("PJSIP/1001-")
    await client.close()


ORIGINATE_BUSY = [
    "Newchannel",
    "Newexten AppDial2",
    "NewCallerid",
    "NewConnectedLine",
    "DialBegin",
    "Newstate",  # 180 Ringing
    "DialState RINGING",
    "DialEnd BUSY",  # handle_frame() AST_CONTROL_BUSY
    "Hangup 17",
    "Cdr",
]
ORIGINATE_NO_ANSWER = [
    "Newchannel",
    "Newexten AppDial2",
    "NewCallerid",
    "NewConnectedLine",
    "DialBegin",
    "Newstate",
    "DialState RINGING",
    # handle_timeout_trip(): hang-up cause NO_ANSWER and no DialEnd at all
    "Hangup 19",
    "Cdr",
]


@pytest.mark.parametrize(
    ("number", "mode", "sequence", "reason", "disposition"),
    [
        ("1001002", "busy", ORIGINATE_BUSY, "5", "BUSY"),
        ("1001003", "noanswer", ORIGINATE_NO_ANSWER, "3", "NO ANSWER"),
    ],
)
async def test_originate_failure_golden(
    hotline_sim: Simulator,
    number: str,
    mode: str,
    sequence: list[str],
    reason: str,
    disposition: str,
) -> None:
    sim = hotline_sim
    sim.add_destination(number, Destination(mode=mode))  # type: ignore[arg-type]
    client = await ami_login(sim)
    aid = client.send(
        "Originate",
        Channel=f"PJSIP/trunk/{number}",
        Context="callback",
        Exten="13800000000",
        Priority="1",
        Timeout="20000",
        CallerID='"12345" <12345>',
        Async="true",
    )
    ack = await client.response(aid)
    assert (ack.get("Response"), ack.get("Message")) == ("Success", "Originate successfully queued")
    resp = await client.wait_for(
        lambda m: m.get("Event") == "OriginateResponse" and m.get("ActionID") == aid
    )
    await sim.wait_idle()
    await client.wait_for(lambda m: m.get("Event") == "Cdr")
    msgs = events(client)
    got = transcript([m for m in msgs if m.name != "OriginateResponse"])
    assert got == {"PJSIP/trunk": sequence}
    assert_fields_match_reference(msgs)
    assert (resp.get("Response"), resp.get("Reason")) == ("Failure", reason)
    # fast_originate(): no channel survives a failed attempt, so the dial string stands in
    assert resp.get("Channel") == f"PJSIP/trunk/{number}"
    assert (resp.get("Context"), resp.get("Exten")) == ("callback", "13800000000")
    assert (resp.get("CallerIDNum"), resp.get("CallerIDName")) == ("12345", "12345")
    cdr = next(m for m in msgs if m.name == "Cdr")
    assert cdr.get("Disposition") == disposition
    hangup = next(m for m in msgs if m.name == "Hangup")
    assert hangup.get("Cause-txt") == {"5": "User busy", "3": "User alerting, no answer"}[reason]
    await client.close()


async def test_softhangup_request_carries_the_softhangup_flag(hotline_sim: Simulator) -> None:
    """SoftHangupRequest's Cause is the AST_SOFTHANGUP_* bit: 32 (EXPLICIT) for AGI HANGUP,
    16 (APPUNLOAD) when the PBX ends; the AMI Hangup action and Hangup() publish none
    (ast_softhangup_nolock())."""
    sim = hotline_sim

    async def hang_up(reader, writer, env):
        writer.write(b"HANGUP\n")
        await writer.drain()
        await reader.readline()

    agi = FastAgiServer(hang_up)
    sim.config.agi_port = await agi.start()
    client = await ami_login(sim)
    call = sim.place_call("13900000020", behaviour=Caller(talk_time=5))
    await call.ended
    await client.wait_for(lambda m: m.get("Event") == "Cdr" and m.get("Channel") == call.name)
    soft = [
        m.get("Cause")
        for m in events(client)
        if m.name == "SoftHangupRequest" and m.get("Channel") == call.name
    ]
    assert soft == ["32", "16"]
    await agi.stop()
    # the AMI Hangup of an agent's leg in a queue bridge: no SoftHangupRequest for it
    sim.config.agi_port = 9
    sim.add_agent("PJSIP/1001", Agent(answer_after=1), queues=["hotline"], login=True)
    second = sim.place_call("13900000021", behaviour=Caller(talk_time=30))
    await second.wait_bridged()
    agent = next(c.name for c in sim.channels if c.name.startswith("PJSIP/1001-"))
    resp = await client.action("Hangup", Channel=agent)
    assert resp.get("Message") == "Channel Hungup"
    await second.ended
    await client.wait_for(lambda m: m.get("Event") == "Cdr" and m.get("Channel") == second.name)
    names = [m.name for m in events(client) if m.get("Channel") == agent]
    assert "SoftHangupRequest" not in names and "HangupRequest" not in names
    assert names[-1] == "Hangup"
    # PROTOCOL.md (Asterisk 22.10.1): AMI Hangup of the member says Reason caller, once both
    # channels are gone, without the caller's snapshot
    complete = await client.wait_for(lambda m: m.get("Event") == "AgentComplete")
    assert complete.get("Reason") == "caller" and complete.get("Channel") is None
    await client.close()
