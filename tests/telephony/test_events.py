"""AMI events of the real captures -> domain events."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from callcenter.clock import FrozenClock
from callcenter.telephony import events as ev
from callcenter.telephony.protocol import parse_message
from tests.telephony.capture_tools import replay_events

START = datetime(2026, 11, 21, 5, 44, 34, tzinfo=UTC)


def _of(events: list[ev.DomainEvent], kind: type) -> list:
    return [e for e in events if type(e) is kind]


def test_queue_call_translation(captures_dir: Path) -> None:
    events = replay_events(captures_dir / "queue_call.txt", START)
    assert len(_of(events, ev.ChannelCreated)) == 4
    hangups = _of(events, ev.ChannelHungUp)
    assert [(h.cause, h.cause_text) for h in hangups] == [(16, "Normal Clearing")] * 4
    assert {h.linkedid for h in hangups} == {"1795239874.0"}
    (join,) = _of(events, ev.QueueCallerJoined)
    assert (join.queue, join.position, join.count, join.caller_num) == ("support", 1, 1,
                                                                         "5551000")
    (called,) = _of(events, ev.AgentCalled)
    assert (called.member_name, called.interface) == ("Agent 100", "Local/100@agents")
    (connect,) = _of(events, ev.AgentConnected)
    assert connect.dest_channel == "Local/100@agents-00000001;1" and connect.hold_time == 0
    (complete,) = _of(events, ev.AgentCompleted)
    assert (complete.talk_time, complete.reason) == (13, "caller")
    enters = _of(events, ev.BridgeEntered)
    assert [e.num_channels for e in enters] == [1, 2]
    assert len(_of(events, ev.BridgeLeft)) == 2
    assert [d.digit for d in _of(events, ev.DtmfReceived)] == ["1", "1", "1"]
    (originate,) = _of(events, ev.OriginateResult)
    assert originate.outcome == "answered" and originate.uniqueid == "1795239874.0"
    statuses = _of(events, ev.QueueMemberStatus)
    assert len(statuses) == 2 and statuses[0].queue == "support"
    # the receipt time comes from the injected clock (no Timestamp header in these captures)
    assert (hangups[-1].at - START).total_seconds() == pytest.approx(13.011)
    begins = _of(events, ev.DialBegan)
    assert begins[0].channel == "" and begins[0].dest_channel.endswith(";1")  # the Originate
    assert begins[1].channel == "Local/s@caller-sim-00000000;1"


def test_recording_file_comes_from_varset(captures_dir: Path) -> None:
    events = replay_events(captures_dir / "mixmonitor.txt", START)
    (started,) = _of(events, ev.RecordingStarted)
    assert started.file == "/var/spool/asterisk/monitor/1795239906.8.wav"
    assert started.linkedid == "1795239906.8"


def test_abandon_translation(captures_dir: Path) -> None:
    events = replay_events(captures_dir / "abandon.txt", START)
    (abandon,) = _of(events, ev.QueueCallerAbandoned)
    assert (abandon.queue, abandon.hold_time, abandon.original_position) == (
        "support-slow", 4, 1)
    assert [d.dial_status for d in _of(events, ev.DialEnded)] == ["ANSWER", "CANCEL", "CANCEL"]


def test_queue_members_translation(captures_dir: Path) -> None:
    events = replay_events(captures_dir / "queue_members.txt", START)
    (added,) = _of(events, ev.QueueMemberAdded)
    assert (added.member_name, added.membership, added.paused) == ("Agent 102", "dynamic",
                                                                  False)
    pauses = _of(events, ev.QueueMemberPaused)
    assert [(p.paused, p.paused_reason) for p in pauses] == [(True, "lunch"), (False, "")]
    assert len(_of(events, ev.QueueMemberRemoved)) == 1


def test_fastagi_translation(captures_dir: Path) -> None:
    events = replay_events(captures_dir / "fastagi.txt", START)
    apps = _of(events, ev.DialplanApp)
    assert [(a.application, a.app_data) for a in apps] == [("AGI", "agi://127.0.0.1:4573/test")]
    variables = {(v.name, v.value) for v in _of(events, ev.VariableSet)}
    assert ("IVR_CHOICE", "1") in variables and ("AGISTATUS", "SUCCESS") in variables
    (dtmf,) = _of(events, ev.DtmfReceived)
    assert (dtmf.digit, dtmf.direction) == ("1", "Received")


@pytest.mark.parametrize("name", ["abandon", "fastagi", "ivr", "mixmonitor", "queue_call",
                                  "queue_members", "queue_status", "sip_call"])
def test_every_event_serialises_to_json(captures_dir: Path, name: str) -> None:
    for event in replay_events(captures_dir / f"{name}.txt", START):
        data = event.to_dict()
        assert data["topic"] == event.topic
        json.dumps(data)


def test_timestamp_header_wins_over_the_clock() -> None:
    translator = ev.EventTranslator(FrozenClock(START))
    fields = parse_message("Event: Hangup\r\nPrivilege: call,all\r\nTimestamp: 1795239874.5\r\n"
                           "Channel: PJSIP/1-1\r\nUniqueid: 1.1\r\nLinkedid: 1.1\r\nCause: 17")
    event = translator.translate(fields)
    assert isinstance(event, ev.ChannelHungUp)
    assert event.at == datetime.fromtimestamp(1795239874.5, UTC)
    assert event.cause == 17


def test_missing_fields_are_logged_and_skipped(caplog: pytest.LogCaptureFixture) -> None:
    translator = ev.EventTranslator(FrozenClock(START))
    with caplog.at_level(logging.WARNING):
        assert translator.translate({"Event": "Hangup", "Channel": "x"}) is None
        assert translator.translate({"Event": "QueueCallerJoin", "Uniqueid": "1",
                                     "Linkedid": "1"}) is None
    assert caplog.text.count("ami.event_missing_field") == 2
    assert translator.translate({"Event": "SomethingNew", "X": "1"}) is None


def test_user_event() -> None:
    translator = ev.EventTranslator(FrozenClock(START))
    event = translator.translate({"Event": "UserEvent", "Privilege": "user,all",
                                  "UserEvent": "SurveyDone", "Score": "5"})
    assert isinstance(event, ev.UserEvent)
    assert event.name == "SurveyDone" and dict(event.headers) == {"Score": "5"}


def test_ring_no_answer_and_recording_stop() -> None:
    translator = ev.EventTranslator(FrozenClock(START))
    snapshot = ("Channel: PJSIP/6001-1\r\nChannelState: 6\r\nCallerIDNum: 6001\r\n"
                "Uniqueid: 5.1\r\nLinkedid: 5.1\r\n")
    ring = translator.translate(parse_message(
        "Event: AgentRingNoAnswer\r\nPrivilege: agent,all\r\n" + snapshot
        + "DestChannel: Local/100@agents-1;1\r\nQueue: support\r\nMemberName: Agent 100\r\n"
        "Interface: Local/100@agents\r\nRingTime: 15000"))
    assert isinstance(ring, ev.AgentRingNoAnswer)
    assert (ring.ring_time_ms, ring.member_name, ring.caller_num) == (15000, "Agent 100", "6001")
    translator.translate(parse_message(
        "Event: VarSet\r\nPrivilege: dialplan,all\r\n" + snapshot
        + "Variable: MIXMONITOR_FILENAME\r\nValue: /rec/5.1.wav"))
    stop = translator.translate(parse_message(
        "Event: MixMonitorStop\r\nPrivilege: call,all\r\n" + snapshot.rstrip("\r\n")))
    assert isinstance(stop, ev.RecordingStopped) and stop.file == "/rec/5.1.wav"


def test_a_resync_forgets_recordings_of_channels_whose_hangup_was_lost() -> None:
    translator = ev.EventTranslator(FrozenClock(START))
    for uniqueid in ("6.1", "6.2"):
        translator.translate(parse_message(
            "Event: VarSet\r\nPrivilege: dialplan,all\r\nChannel: PJSIP/6001-1\r\n"
            f"Uniqueid: {uniqueid}\r\nLinkedid: {uniqueid}\r\n"
            f"Variable: MIXMONITOR_FILENAME\r\nValue: /rec/{uniqueid}.wav"))
    translator.keep_only({"6.2"})  # 6.1 hung up while the connection was down
    start = "Event: MixMonitorStart\r\nPrivilege: call,all\r\nChannel: PJSIP/6001-1\r\n"
    gone = translator.translate(parse_message(start + "Uniqueid: 6.1\r\nLinkedid: 6.1"))
    live = translator.translate(parse_message(start + "Uniqueid: 6.2\r\nLinkedid: 6.2"))
    assert (gone.file, live.file) == ("", "/rec/6.2.wav")


SNAPSHOT = ("Channel: PJSIP/trunk-00000001\r\nChannelState: 6\r\nChannelStateDesc: Up\r\n"
            "CallerIDNum: 13800138000\r\nCallerIDName: Zhang San\r\nContext: hotline-in\r\n"
            "Exten: 12345\r\nUniqueid: 1795239874.7\r\nLinkedid: 1795239874.0")


def _translate(text: str) -> ev.DomainEvent | None:
    fields = parse_message(text)
    assert fields is not None
    return ev.EventTranslator(FrozenClock(START)).translate(fields)


def test_every_header_of_the_channel_block_lands_in_its_own_field() -> None:
    event = _translate(f"Event: Newstate\r\nPrivilege: call,all\r\n{SNAPSHOT}")
    assert event == ev.ChannelStateChanged(
        at=START, channel="PJSIP/trunk-00000001", uniqueid="1795239874.7",
        linkedid="1795239874.0", state=6, caller_num="13800138000", caller_name="Zhang San",
        context="hotline-in", exten="12345", state_desc="Up")


def test_a_channel_block_missing_or_repeating_headers_is_read_the_careful_way() -> None:
    partial = _translate("Event: Newchannel\r\nPrivilege: call,all\r\n"
                         "Uniqueid: 1795239874.7\r\nLinkedid: 1795239874.0\r\nChannelState: x")
    assert partial == ev.ChannelCreated(START, "", "1795239874.7", "1795239874.0", 0, "", "",
                                        "", "")
    repeated = _translate(f"Event: Newchannel\r\nPrivilege: call,all\r\n{SNAPSHOT}\r\n"
                          "Uniqueid: 1795239874.9")
    assert repeated is not None and repeated.uniqueid == "1795239874.7"  # the first one
    assert _translate("Event: Newchannel\r\nPrivilege: call,all\r\nChannel: PJSIP/x-1\r\n"
                      "Uniqueid: 1795239874.7") is None  # no Linkedid: not an event we can use
