"""What really happened, checked against real Asterisk 22.10.1: the turn-2 captures (hold,
transfers, click-to-call, revisit survey) replayed from their raw bytes, and the behaviour
PROTOCOL.md describes (queue timeout, Local-channel Originates, AgentComplete without the
caller) driven through the real AMI parser and translator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from callcenter.calls.agents import AgentCounts, agent_counts
from callcenter.calls.models import CallAgentAttempt, CallLog
from callcenter.calls.tracker import CallTracker
from callcenter.clock import FrozenClock
from callcenter.telephony import events as ev
from callcenter.telephony.events import WANTED_EVENTS, EventTranslator
from callcenter.telephony.protocol import parse_message
from tests.calls.raw_replay import raw_events, ts

START = datetime(2026, 12, 2, 8, 0, 0, tzinfo=UTC)


def _utc(value: datetime | None) -> datetime | None:
    return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)


async def _replay(sessionmaker, events, pbx: str = "default") -> CallTracker:
    tracker = CallTracker(sessionmaker, FrozenClock(START), pbx=pbx)
    await tracker.start()
    for event in events:
        tracker(event)
    await tracker.stop()
    return tracker


async def _rows(sessionmaker) -> dict[str, CallLog]:
    async with sessionmaker() as session:
        return {r.linkedid: r for r in (await session.execute(select(CallLog))).scalars()}


async def _attempts(sessionmaker) -> list[CallAgentAttempt]:
    async with sessionmaker() as session:
        query = select(CallAgentAttempt).order_by(CallAgentAttempt.called_at)
        return list((await session.execute(query)).scalars())


# -- captures ---------------------------------------------------------------------------------

async def test_hold_is_not_talk(sessionmaker, captures_dir: Path) -> None:
    await _replay(sessionmaker, raw_events(captures_dir / "hold.raw"))
    (row,) = (await _rows(sessionmaker)).values()
    hold = (ts("1796194611.410366") - ts("1796194606.402339")).total_seconds()
    bridged = (ts("1796194613.414053") - ts("1796194602.398465")).total_seconds()
    assert row.hold_seconds == pytest.approx(hold, abs=0.0005)  # Hold -> Unhold
    assert row.talk_seconds == pytest.approx(bridged - hold, abs=0.0005)
    assert (row.direction, row.called_number, row.queue_outcome) == \
        ("inbound", "12345", "answered")
    (attempt,) = await _attempts(sessionmaker)
    assert (attempt.outcome, attempt.complete_reason, attempt.talk_seconds) == \
        ("answered", "caller", 11.0)


async def test_blind_transfers_name_both_agents(sessionmaker, captures_dir: Path) -> None:
    await _replay(sessionmaker, raw_events(captures_dir / "blind_transfer.raw"))
    rows = await _rows(sessionmaker)
    talk = {  # agent 1001's bridge, then 1002's: the ringing of 1002 in between is not talk
        "1796194553.0": (ts("1796194557.518163") - ts("1796194554.516558"))
        + (ts("1796194562.530210") - ts("1796194558.526992")),
        "1796194570.4": (ts("1796194575.853799") - ts("1796194571.851850"))
        + (ts("1796194580.869921") - ts("1796194576.863152")),
    }
    assert set(rows) == set(talk)
    for linkedid, seconds in talk.items():
        row = rows[linkedid]
        assert (row.agent_name, row.transfer_type, row.transferred_to) == \
            ("Agent 1001", "blind", "PJSIP/1002")
        assert row.talk_seconds == pytest.approx(seconds.total_seconds(), abs=0.0005)
        assert row.disposition == "answered" and row.hold_seconds == 0
    reasons = [a.complete_reason for a in await _attempts(sessionmaker)]
    assert reasons == ["transfer", "transfer"]


async def test_attended_transfer_counts_the_consultation_as_hold(
        sessionmaker, captures_dir: Path) -> None:
    await _replay(sessionmaker, raw_events(captures_dir / "attended_transfer.raw"))
    (row,) = (await _rows(sessionmaker)).values()
    assert (row.agent_name, row.transfer_type, row.transferred_to) == \
        ("Agent 1001", "attended", "PJSIP/1002")
    # Hold from the atxfer feature until the transferring agent hangs up
    hold = (ts("1796194593.276010") - ts("1796194589.259656")).total_seconds()
    bridged = (ts("1796194597.277608") - ts("1796194585.994893")).total_seconds()
    assert row.hold_seconds == pytest.approx(hold, abs=0.0005)
    assert row.talk_seconds == pytest.approx(bridged - hold, abs=0.0005)


async def test_click_to_call_is_outbound_with_the_citizen_outcome(
        sessionmaker, captures_dir: Path) -> None:
    await _replay(sessionmaker, raw_events(captures_dir / "click_to_call.raw"))
    rows = await _rows(sessionmaker)
    expected = {"1796194642.26": ("13800138000", "answered"),
                "1796194655.29": ("13800138001", "busy"),
                "1796194658.32": ("13800138002", "no_answer")}
    assert {k: (r.called_number, r.disposition) for k, r in rows.items()} == expected
    assert all(r.direction == "outbound" and r.caller_number == "12345" for r in rows.values())
    answered = rows["1796194642.26"]
    assert _utc(answered.answered_at) == ts("1796194645.961529")  # the citizen, not 1003
    assert answered.wait_seconds == pytest.approx(
        (ts("1796194645.961529") - ts("1796194642.951047")).total_seconds(), abs=0.0005)
    assert rows["1796194655.29"].answered_at is None  # the handler's answer is not enough


async def test_revisit_survey_talks_from_answer_to_hang_up(sessionmaker,
                                                           captures_dir: Path) -> None:
    events = raw_events(captures_dir / "revisit_survey.raw")
    await _replay(sessionmaker, events)
    (row,) = (await _rows(sessionmaker)).values()
    up = next(e.at for e in events if isinstance(e, ev.ChannelStateChanged)
              and e.uniqueid == row.linkedid and e.state == 6)
    end = max(e.at for e in events if isinstance(e, ev.ChannelHungUp))
    assert (row.direction, row.disposition, row.called_number) == \
        ("outbound", "answered", "13800138003")
    assert _utc(row.answered_at) == up
    assert row.talk_seconds == pytest.approx((end - up).total_seconds(), abs=0.0005)


async def test_a_caller_hanging_up_in_the_queue_is_abandoned(sessionmaker,
                                                              captures_dir: Path) -> None:
    from tests.telephony.capture_tools import replay_events

    await _replay(sessionmaker, replay_events(captures_dir / "abandon.txt", START))
    (row,) = (await _rows(sessionmaker)).values()
    assert (row.disposition, row.queue_outcome) == ("abandoned", "abandoned")


# -- AMI text ---------------------------------------------------------------------------------

def chan(event: str, name: str, uid: str, linked: str = "1.1", state: int = 6,
         num: str = "13800138000", context: str = "from-pstn", exten: str = "12345",
         **extra: str) -> str:
    lines = [f"Event: {event}", "Privilege: call,all", f"Channel: {name}",
             f"ChannelState: {state}", f"CallerIDNum: {num}", f"Context: {context}",
             f"Exten: {exten}", f"Uniqueid: {uid}", f"Linkedid: {linked}"]
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in extra.items()]
    return "\r\n".join(lines)


def plain(event: str, **fields: str) -> str:
    return "\r\n".join([f"Event: {event}", "Privilege: agent,all"]
                       + [f"{k}: {v}" for k, v in fields.items()])


TRUNK = "PJSIP/trunk-00000001"


def agent_fields(agent: str, uid: str, **extra: str) -> dict[str, str]:
    return {"DestChannel": f"PJSIP/{agent}-0000000{uid[-1]}", "DestUniqueid": uid,
            "DestLinkedid": "1.1", "Queue": "hotline", "MemberName": f"Agent {agent}",
            "Interface": f"PJSIP/{agent}", **extra}


async def _feed(sessionmaker, timed: list[tuple[float, str]], **tracker_args
                ) -> CallTracker:
    clock = FrozenClock(START)
    translator = EventTranslator(clock)
    tracker = CallTracker(sessionmaker, clock, **tracker_args)
    await tracker.start()
    for seconds, text in timed:
        clock.set(START + timedelta(seconds=seconds))
        event = translator.translate(parse_message(text))
        assert event is not None, text
        tracker(event)
    await tracker.stop()
    return tracker


def queued_call_until(seconds: float) -> list[tuple[float, str]]:
    """A PSTN call answered by the dialplan, joining ``hotline`` at t=1."""
    return [(0, chan("Newchannel", TRUNK, "1.1", state=4)),
            (0.5, chan("Newstate", TRUNK, "1.1")),
            (1, chan("QueueCallerJoin", TRUNK, "1.1", Queue="hotline", Position="1",
                     Count="1"))]


@pytest.mark.parametrize(("status", "disposition", "outcome"), [
    (None, "abandoned", "abandoned"),  # the caller hung up: no QUEUESTATUS
    ("TIMEOUT", "no_answer", "timeout")])
async def test_a_queue_timeout_is_not_an_abandon(sessionmaker, status: str | None,
                                                 disposition: str, outcome: str) -> None:
    timed = queued_call_until(1) + [
        (11, chan("QueueCallerAbandon", TRUNK, "1.1", Queue="hotline", Position="1",
                  OriginalPosition="1", HoldTime="10")),
        (11, chan("QueueCallerLeave", TRUNK, "1.1", Queue="hotline", Position="1",
                  Count="0"))]
    if status is not None:  # the dialplan goes on after Queue() (here: a goodbye)
        timed.append((11, chan("VarSet", TRUNK, "1.1", Variable="QUEUESTATUS", Value=status)))
    timed.append((15, chan("Hangup", TRUNK, "1.1", Cause="16")))
    await _feed(sessionmaker, timed)
    (row,) = (await _rows(sessionmaker)).values()
    assert (row.disposition, row.queue_outcome) == (disposition, outcome)
    assert row.wait_seconds == pytest.approx(10.0)


async def test_a_queue_exit_without_abandon_waits_until_the_exit(sessionmaker) -> None:
    timed = queued_call_until(1) + [
        (4, chan("QueueCallerLeave", TRUNK, "1.1", Queue="hotline", Position="1",
                 Count="0")),
        (4, chan("VarSet", TRUNK, "1.1", Variable="QUEUESTATUS", Value="LEAVEEMPTY")),
        (9, chan("Hangup", TRUNK, "1.1", Cause="16"))]
    await _feed(sessionmaker, timed)
    (row,) = (await _rows(sessionmaker)).values()
    assert (row.disposition, row.queue_outcome) == ("no_answer", "leaveempty")
    assert row.wait_seconds == pytest.approx(3.0)  # to the exit, not to the hang-up


def local_originate(channel_id: str, cause_2: int) -> list[tuple[float, str]]:
    """An Async Originate of ``Local/...@citizen`` that fails: the ;2 half has the cause."""
    one, two = "Local/13800138001@citizen-00000001;1", "Local/13800138001@citizen-00000001;2"
    return [
        (0, chan("Newchannel", one, channel_id, channel_id, 0, "<unknown>", "citizen",
                 "13800138001")),
        (0, chan("Newchannel", two, f"{channel_id};2", channel_id, 4, "<unknown>", "citizen",
                 "13800138001")),
        (0, "\r\n".join(["Event: DialBegin", "Privilege: call,all", f"DestChannel: {one}",
                         f"DestUniqueid: {channel_id}", f"DestLinkedid: {channel_id}",
                         "DialString: 13800138001@citizen"])),
        (1, chan("Hangup", two, f"{channel_id};2", channel_id, 7, "12345", "citizen",
                 "13800138001", Cause=str(cause_2))),
        (1, chan("Hangup", one, channel_id, channel_id, 0, "12345", "citizen", "13800138001",
                 Cause="0")),
    ]


@pytest.mark.parametrize(("cause", "disposition"), [(17, "busy"), (34, "failed")])
async def test_a_failed_local_originate_takes_the_cause_of_its_far_half(
        sessionmaker, cause: int, disposition: str) -> None:
    await _feed(sessionmaker, local_originate("revisit-1", cause))
    (row,) = (await _rows(sessionmaker)).values()
    assert (row.disposition, row.hangup_cause, row.direction) == \
        (disposition, cause, "outbound")
    assert row.called_number == "13800138001" and row.answered_at is None


def bridge(count: str) -> dict[str, str]:
    return {"BridgeUniqueid": "b", "BridgeNumChannels": count}


def direct_dial(status: str, answered: bool) -> list[tuple[float, str]]:
    """The dialplan answers (t=1), then Dial()s an agent's phone (t=2)."""
    callee = "PJSIP/1001-00000002"
    dial = {"DestChannel": callee, "DestUniqueid": "1.2", "DestLinkedid": "1.1"}
    timed = [(0, chan("Newchannel", TRUNK, "1.1", state=4)),
             (1, chan("Newstate", TRUNK, "1.1")),
             (2, chan("Newchannel", callee, "1.2", state=0)),
             (2, chan("DialBegin", TRUNK, "1.1", DialString="PJSIP/1001", **dial)),
             (6, chan("DialEnd", TRUNK, "1.1", DialStatus=status, **dial))]
    if answered:
        timed += [(6, chan("BridgeEnter", callee, "1.2", **bridge("1"))),
                  (6, chan("BridgeEnter", TRUNK, "1.1", **bridge("2"))),
                  (16, chan("BridgeLeave", TRUNK, "1.1", **bridge("1")))]
    return timed + [(16, chan("Hangup", callee, "1.2", Cause="19" if not answered else "16")),
                    (17, chan("Hangup", TRUNK, "1.1", Cause="16"))]


async def test_an_answer_before_dial_is_not_an_answered_call(sessionmaker) -> None:
    await _feed(sessionmaker, direct_dial("NOANSWER", answered=False))
    (row,) = (await _rows(sessionmaker)).values()
    assert (row.disposition, row.answered_at, row.talk_seconds) == ("no_answer", None, 0)
    assert row.hangup_cause == 16  # the first channel's cause, not the callee's 19


async def test_a_directly_dialled_call_waits_until_the_answer(sessionmaker) -> None:
    await _feed(sessionmaker, direct_dial("ANSWER", answered=True))
    (row,) = (await _rows(sessionmaker)).values()
    assert row.disposition == "answered" and _utc(row.answered_at) == START + timedelta(seconds=6)
    assert (row.wait_seconds, row.talk_seconds) == (6.0, 10.0)  # not 17 (to the hang-up)


async def test_a_caller_hanging_up_in_the_ivr_is_not_answered(sessionmaker) -> None:
    timed = [(0, chan("Newchannel", TRUNK, "1.1", state=4)),
             (1, chan("Newstate", TRUNK, "1.1")),
             (1, chan("Newexten", TRUNK, "1.1", Application="AGI",
                      AppData="agi://127.0.0.1:4573/ivr")),
             (2, chan("VarSet", TRUNK, "1.1", Variable="IVR_NODE", Value="menu:complaints")),
             (8, chan("Hangup", TRUNK, "1.1", Cause="16"))]
    await _feed(sessionmaker, timed)
    (row,) = (await _rows(sessionmaker)).values()
    assert (row.disposition, row.ivr_node, row.ivr_path) == \
        ("ivr_hangup", "menu:complaints", "agi:ivr")
    assert row.answered_at is None and row.talk_seconds == 0


def agent_leg(agent: str, uid: str, event: str, **extra: str) -> str:
    return chan(event, TRUNK, "1.1", **agent_fields(agent, uid, **extra))


async def test_agent_attempts_missed_answered_and_completed_without_caller(
        sessionmaker) -> None:
    a2 = "PJSIP/1002-00000003"
    timed = queued_call_until(1) + [
        (1, agent_leg("1001", "1.2", "AgentCalled")),
        (5, agent_leg("1001", "1.2", "AgentRingNoAnswer", RingTime="4000")),
        (6, agent_leg("1002", "1.3", "AgentCalled")),
        (8, chan("QueueCallerLeave", TRUNK, "1.1", Queue="hotline", Position="1", Count="0")),
        (8, agent_leg("1002", "1.3", "AgentConnect", HoldTime="7", RingTime="2")),
        (8, chan("BridgeEnter", a2, "1.3", BridgeUniqueid="b", BridgeNumChannels="1")),
        (8, chan("BridgeEnter", TRUNK, "1.1", BridgeUniqueid="b", BridgeNumChannels="2")),
        # AMI Hangup of the agent: both legs go, then AgentComplete without the caller
        (20, chan("BridgeLeave", a2, "1.3", BridgeUniqueid="b", BridgeNumChannels="1")),
        (20, chan("Hangup", a2, "1.3", Cause="16")),
        (20, chan("BridgeLeave", TRUNK, "1.1", BridgeUniqueid="b", BridgeNumChannels="0")),
        (20, chan("Hangup", TRUNK, "1.1", Cause="16")),
        (20, plain("AgentComplete", Queue="hotline", MemberName="Agent 1002",
                   Interface="PJSIP/1002", HoldTime="7", TalkTime="12", Reason="caller"))]
    await _feed(sessionmaker, timed)
    (row,) = (await _rows(sessionmaker)).values()
    assert (row.agent_name, row.talk_seconds, row.wait_seconds) == ("Agent 1002", 12.0, 7.0)
    missed, answered = await _attempts(sessionmaker)
    assert (missed.agent_name, missed.outcome, missed.ring_seconds) == \
        ("Agent 1001", "missed", 4.0)
    assert (answered.agent_name, answered.outcome, answered.ring_seconds) == \
        ("Agent 1002", "answered", 2.0)
    assert (answered.complete_reason, answered.talk_seconds) == ("caller", 12.0)
    assert _utc(answered.completed_at) == START + timedelta(seconds=20)
    async with sessionmaker() as session:
        today = await agent_counts(session, START, START + timedelta(days=1))
        tomorrow = await agent_counts(session, START + timedelta(days=1),
                                      START + timedelta(days=2))
    assert today == [AgentCounts("Agent 1001", 1, 1, 0, 0.0),
                     AgentCounts("Agent 1002", 1, 0, 1, 12.0)]
    assert tomorrow == []


def test_agent_complete_without_any_snapshot_is_translated() -> None:
    event = EventTranslator(FrozenClock(START)).translate(parse_message(plain(
        "AgentComplete", Queue="hotline", MemberName="Agent 1001", Interface="PJSIP/1001",
        HoldTime="1", TalkTime="5", Reason="caller")))
    assert isinstance(event, ev.AgentCompleted)
    assert (event.linkedid, event.interface, event.talk_time) == ("", "PJSIP/1001", 5)


def test_wanted_events_are_exactly_the_translated_ones() -> None:
    assert WANTED_EVENTS == frozenset(EventTranslator(FrozenClock(START))._handlers)


async def test_originate_variable_marks_the_direction(sessionmaker) -> None:
    timed = [(0, chan("Newchannel", TRUNK, "1.1", state=0, context="from-pstn")),
             (0, chan("VarSet", TRUNK, "1.1", Variable="CALL_DIRECTION", Value="outbound")),
             (5, chan("Hangup", TRUNK, "1.1", Cause="19"))]
    await _feed(sessionmaker, timed)
    (row,) = (await _rows(sessionmaker)).values()
    assert (row.direction, row.disposition) == ("outbound", "no_answer")


async def test_an_agent_dialling_the_trunk_is_outbound(sessionmaker) -> None:
    phone, trunk = "PJSIP/1001-00000001", "PJSIP/trunk-00000002"
    dial = {"DestChannel": trunk, "DestUniqueid": "1.2", "DestLinkedid": "1.1"}
    me = {"state": 4, "num": "1001", "context": "agents", "exten": "013800138000"}
    timed = [(0, chan("Newchannel", phone, "1.1", **me)),
             (0, chan("DialBegin", phone, "1.1", **me, DialString="trunk/13800138000",
                      **dial)),
             (3, chan("DialEnd", phone, "1.1", **me, DialStatus="BUSY", **dial)),
             (3, chan("Hangup", phone, "1.1", **me, Cause="17"))]
    await _feed(sessionmaker, timed)
    (row,) = (await _rows(sessionmaker)).values()
    assert (row.direction, row.called_number, row.disposition) == \
        ("outbound", "13800138000", "busy")


async def test_two_servers_reusing_a_linkedid_keep_two_rows(sessionmaker) -> None:
    timed = [(0, chan("Newchannel", TRUNK, "1.1", state=4)),
             (3, chan("Hangup", TRUNK, "1.1", Cause="16"))]
    await _feed(sessionmaker, timed, pbx="pbx-a")
    await _feed(sessionmaker, timed[:1], pbx="pbx-b")  # still ringing on pbx-b
    async with sessionmaker() as session:
        rows = {r.pbx: r for r in (await session.execute(select(CallLog))).scalars()}
    assert set(rows) == {"pbx-a", "pbx-b"}
    assert rows["pbx-a"].ended_at is not None and rows["pbx-b"].ended_at is None
    # pbx-a's next process closes only its own open rows
    closer = CallTracker(sessionmaker, FrozenClock(START), pbx="pbx-a")
    await closer.start()
    assert closer.open_rows_pending == 0
    await closer.stop()
