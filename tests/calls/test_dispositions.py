"""Dispositions and directions the captures do not cover (busy, no answer, failed, outbound),
driven through the real AMI parser and translator from AMI text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from callcenter.calls.models import CallLog
from callcenter.calls.tracker import CallTracker
from callcenter.clock import FrozenClock
from callcenter.telephony.events import EventTranslator
from callcenter.telephony.protocol import parse_message

START = datetime(2026, 11, 21, 8, 0, 0, tzinfo=UTC)


def chan(event: str, name: str, uid: str, linked: str, state: int = 4, num: str = "6001",
         exten: str = "6002", **extra: str) -> str:
    lines = [f"Event: {event}", "Privilege: call,all", f"Channel: {name}",
             f"ChannelState: {state}", f"CallerIDNum: {num}", "Context: from-softphone",
             f"Exten: {exten}", f"Uniqueid: {uid}", f"Linkedid: {linked}"]
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in extra.items()]
    return "\r\n".join(lines)


def dial(event: str, caller: str, dest: str, **extra: str) -> str:
    body = chan(event, caller, "1.1", "1.1", 4).split("\r\n")
    body += [f"DestChannel: {dest}", "DestUniqueid: 1.2", "DestLinkedid: 1.1"]
    body += [f"{k}: {v}" for k, v in extra.items()]
    return "\r\n".join(body)


def failed_dial(status: str, cause: int) -> list[str]:
    caller, callee = "PJSIP/6001-00000001", "PJSIP/6002-00000002"
    return [
        chan("Newchannel", caller, "1.1", "1.1", 4),
        chan("Newchannel", callee, "1.2", "1.1", 0, exten="s"),
        dial("DialBegin", caller, callee, DialString="6002"),
        dial("DialEnd", caller, callee, DialStatus=status),
        chan("Hangup", callee, "1.2", "1.1", 0, Cause=str(cause)),
        chan("Hangup", caller, "1.1", "1.1", 4, Cause=str(cause)),
    ]


async def _feed(sessionmaker, messages: list[str]) -> CallLog:
    clock = FrozenClock(START)
    translator = EventTranslator(clock)
    tracker = CallTracker(sessionmaker, clock)
    await tracker.start()
    for n, text in enumerate(messages):
        clock.set(START + timedelta(seconds=n))
        event = translator.translate(parse_message(text))
        assert event is not None, text
        tracker(event)
    await tracker.flush()
    await tracker.stop()
    async with sessionmaker() as session:
        (row,) = (await session.execute(select(CallLog))).scalars()
    return row


@pytest.mark.parametrize(("status", "cause", "disposition"), [
    ("BUSY", 17, "busy"), ("NOANSWER", 19, "no_answer"), ("CANCEL", 16, "no_answer"),
    ("CHANUNAVAIL", 20, "failed"), ("CONGESTION", 34, "failed")])
async def test_unanswered_dial(sessionmaker, status: str, cause: int, disposition: str) -> None:
    row = await _feed(sessionmaker, failed_dial(status, cause))
    assert row.disposition == disposition
    assert row.direction == "internal" and row.called_number == "6002"
    assert row.answered_at is None and row.talk_seconds == 0
    assert row.wait_seconds == pytest.approx(5.0)  # ringing until the caller's hang-up


async def test_outbound_originate_answered_then_bridged(sessionmaker) -> None:
    trunk, agent = "PJSIP/trunk-00000003", "PJSIP/1001-00000004"
    messages = [
        chan("Newchannel", trunk, "2.1", "2.1", 0, num="12345", exten="s"),
        chan("VarSet", trunk, "2.1", "2.1", 0, Variable="CC_DIRECTION", Value="outbound"),
        "\r\n".join(["Event: DialBegin", "Privilege: call,all", f"DestChannel: {trunk}",
                     "DestUniqueid: 2.1", "DestLinkedid: 2.1", "DialString: 13800138000@trunk"]),
        chan("Newstate", trunk, "2.1", "2.1", 6, num="12345", exten="s"),
        chan("Newchannel", agent, "2.2", "2.1", 0, num="12345"),
        chan("BridgeEnter", trunk, "2.1", "2.1", 6, BridgeUniqueid="b1", BridgeNumChannels="1"),
        chan("BridgeEnter", agent, "2.2", "2.1", 6, BridgeUniqueid="b1", BridgeNumChannels="2"),
        chan("BridgeLeave", agent, "2.2", "2.1", 6, BridgeUniqueid="b1", BridgeNumChannels="1"),
        chan("Hangup", agent, "2.2", "2.1", 6, Cause="16"),
        chan("BridgeLeave", trunk, "2.1", "2.1", 6, BridgeUniqueid="b1", BridgeNumChannels="0"),
        chan("Hangup", trunk, "2.1", "2.1", 6, Cause="16"),
    ]
    row = await _feed(sessionmaker, messages)
    assert row.direction == "outbound" and row.called_number == "13800138000"
    assert row.caller_number == "12345"
    assert row.disposition == "answered"
    assert row.talk_seconds == pytest.approx(1.0)  # bridged from t=6 to t=7


async def test_channel_adopting_an_older_linkedid_moves_between_calls(sessionmaker) -> None:
    """Attended transfer: the consultation call's channel joins the customer's call."""
    customer, agent, supervisor = ("PJSIP/trunk-1", "PJSIP/1001-2", "PJSIP/1002-3")
    messages = [
        chan("Newchannel", customer, "3.1", "3.1", 6, num="13800000001", exten="12345"),
        chan("Newchannel", agent, "3.2", "3.1", 6, num="13800000001"),
        chan("BridgeEnter", customer, "3.1", "3.1", 6, BridgeUniqueid="b1",
             BridgeNumChannels="1"),
        chan("BridgeEnter", agent, "3.2", "3.1", 6, BridgeUniqueid="b1", BridgeNumChannels="2"),
        # the agent consults a supervisor: a call of its own
        chan("Newchannel", supervisor, "4.1", "4.1", 6, num="1001", exten="1002"),
        # transfer: the supervisor's channel adopts the customer's (older) Linkedid
        chan("BridgeLeave", agent, "3.2", "3.1", 6, BridgeUniqueid="b1", BridgeNumChannels="1"),
        chan("Hangup", agent, "3.2", "3.1", 6, Cause="16"),
        chan("BridgeEnter", supervisor, "4.1", "3.1", 6, BridgeUniqueid="b1",
             BridgeNumChannels="2"),
        chan("Hangup", supervisor, "4.1", "3.1", 6, Cause="16"),
        chan("Hangup", customer, "3.1", "3.1", 6, Cause="16"),
    ]
    clock = FrozenClock(START)
    translator = EventTranslator(clock)
    tracker = CallTracker(sessionmaker, clock)
    await tracker.start()
    for n, text in enumerate(messages):
        clock.set(START + timedelta(seconds=n))
        tracker(translator.translate(parse_message(text)))
    assert tracker.live_calls == 0
    await tracker.stop()
    async with sessionmaker() as session:
        rows = {r.linkedid: r for r in (await session.execute(select(CallLog))).scalars()}
    assert set(rows) == {"3.1", "4.1"}
    assert rows["3.1"].disposition == "answered"
    assert rows["3.1"].talk_seconds == pytest.approx(2.0 + 1.0)  # t=3..5 and t=7..8
    assert _utc(rows["4.1"].ended_at) == START + timedelta(seconds=7)


def _utc(value: datetime | None) -> datetime | None:
    return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)
