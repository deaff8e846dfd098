"""The call tracker fed with the real capture event streams, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from callcenter.calls.config import CallsConfig
from callcenter.calls.models import CallLog
from callcenter.calls.tracker import CallTracker
from callcenter.clock import FrozenClock
from callcenter.store.base import Base
from callcenter.telephony import events as ev
from callcenter.telephony.protocol import parse_stream
from tests.telephony.capture_tools import replay_events

START = datetime(2026, 11, 21, 5, 44, 34, tzinfo=UTC)
RIG = CallsConfig(inbound_contexts=("from-pstn*", "queue-test", "agi-test", "ivr-test"))
"""The turn-1 capture rig Originates its simulated citizens into these contexts."""


def _utc(value: datetime | None) -> datetime | None:
    """SQLite hands timezone-aware columns back naive (stored as UTC)."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _at(seconds: float) -> datetime:
    return START + timedelta(seconds=seconds)


async def _rows(sessionmaker: async_sessionmaker[AsyncSession]) -> list[CallLog]:
    async with sessionmaker() as session:
        return list((await session.execute(select(CallLog).order_by(CallLog.id))).scalars())


async def _run(sessionmaker, events) -> CallTracker:
    tracker = CallTracker(sessionmaker, FrozenClock(START), config=RIG)
    await tracker.start()
    for event in events:
        tracker(event)
    await tracker.flush()
    return tracker


EXPECTED = {
    # capture: (linkedid, disposition, queue, agent, caller, wait, talk, answered, ended, ivr)
    "queue_call": ("1795239874.0", "answered", "support", "Agent 100", "5551000", 0.001, 12.952,
                   0.057, 13.011, None),
    "mixmonitor": ("1795239906.8", "answered", "support", "Agent 100", "5551000", 0.001, 12.95,
                   0.059, 13.010, None),
    "abandon": ("1795239921.12", "abandoned", "support-slow", None, "5551000", 4.022, 0.0,
                None, 4.077, None),
    # self-service: the IVR's Answer is not a person answering
    "fastagi": ("1795239927.16", "ivr_hangup", None, None, "5551000", 0.0, 0.0, None, 2.261,
                "agi:test>keys:1"),
    "sip_call": ("1795239933.20", "answered", "support", "Agent 101", "6001", 0.002, 7.998,
                 0.097, 8.096, None),
}


@pytest.mark.parametrize("capture", sorted(EXPECTED))
async def test_capture_gives_one_correct_row(sessionmaker, captures_dir: Path,
                                             capture: str) -> None:
    linkedid, disposition, queue, agent, caller, wait, talk, answered, ended, ivr = \
        EXPECTED[capture]
    tracker = await _run(sessionmaker, replay_events(captures_dir / f"{capture}.txt", START))
    (row,) = await _rows(sessionmaker)
    assert row.linkedid == linkedid
    assert row.disposition == disposition
    assert row.queue == queue and row.agent_name == agent and row.caller_number == caller
    assert row.wait_seconds == pytest.approx(wait, abs=0.0015)
    assert row.talk_seconds == pytest.approx(talk, abs=0.0015)
    assert _utc(row.answered_at) == (None if answered is None else _at(answered))
    assert _utc(row.ended_at) == _at(ended)
    assert row.ivr_path == ivr
    assert row.end_estimated is False
    assert row.hangup_cause == 16
    assert tracker.live_calls == 0
    await tracker.stop()


async def test_directions_and_recordings(sessionmaker, captures_dir: Path) -> None:
    events = []
    for capture in ("queue_call", "mixmonitor", "sip_call"):
        events += replay_events(captures_dir / f"{capture}.txt", START)
    tracker = await _run(sessionmaker, events)
    rows = {row.linkedid: row for row in await _rows(sessionmaker)}
    assert rows["1795239874.0"].direction == "inbound"
    assert rows["1795239933.20"].direction == "internal"  # softphone 6001 -> 701
    assert rows["1795239933.20"].called_number == "701"
    assert rows["1795239906.8"].recording_file == \
        "/var/spool/asterisk/monitor/1795239906.8.wav"
    assert rows["1795239874.0"].agent_interface == "Local/100@agents"
    await tracker.stop()


async def test_replaying_a_call_after_a_restart_updates_the_same_row(
        sessionmaker, captures_dir: Path) -> None:
    events = replay_events(captures_dir / "queue_call.txt", START)
    first = await _run(sessionmaker, events)
    await first.stop()
    second = await _run(sessionmaker, events)  # a new process sees the same call again
    await second.stop()
    rows = await _rows(sessionmaker)
    assert len(rows) == 1 and rows[0].disposition == "answered"


def _snapshot(at: datetime, items: list[dict]) -> ev.ChannelsSnapshot:
    return ev.ChannelsSnapshot(at, 2, tuple(ev.snapshot_from_fields(i) for i in items))


def _captured_channels(captures_dir: Path, ages: dict[str, str] | None = None) -> list[dict]:
    """The CoreShowChannel items captured in queue_call (3 live channels), as they were while
    the call was talking: the capture was taken just after the caller left the bridge, so
    the caller's BridgeId is put back (the agent leg still shows it). ``ages`` replaces the
    captured ``Duration`` of the named channels."""
    messages = parse_stream((captures_dir / "queue_call.raw").read_bytes())
    items = [dict(m) for m in messages if m.get("Event") == "CoreShowChannel"]
    bridge = next(i["BridgeId"] for i in items if i["BridgeId"])
    for item in items:
        if item["Channel"] == "Local/s@caller-sim-00000000;1":
            item["BridgeId"] = bridge
        item["Duration"] = (ages or {}).get(item["Channel"], item["Duration"])
    return items


AGES_AT_6 = {"Local/s@caller-sim-00000000;1": "00:00:05",
             "Local/100@agents-00000001;1": "00:00:04", "Local/100@agents-00000001;2": "00:00:03"}
"""Channels of different ages, as a snapshot at t=6 could list them: the call is as old as
its oldest channel, and has talked at most as long as its youngest bridged channel lived."""


def _split(events, seconds: float):
    before = [e for e in events if e.at < _at(seconds)]
    return before, events[len(before):]


async def test_call_that_ended_while_disconnected_is_closed_by_resync(
        sessionmaker, captures_dir: Path) -> None:
    before, _ = _split(replay_events(captures_dir / "queue_call.txt", START), 5.0)
    tracker = await _run(sessionmaker, before)
    assert tracker.live_calls == 1
    tracker(ev.ResyncStarted(_at(20), 2))
    tracker(_snapshot(_at(20), []))
    await tracker.flush()
    (row,) = await _rows(sessionmaker)
    assert row.disposition == "answered" and row.end_estimated is True
    assert _utc(row.ended_at) == _at(20)
    assert row.talk_seconds == pytest.approx(20 - 0.057, abs=0.002)
    assert tracker.live_calls == 0
    await tracker.stop()


async def test_call_alive_across_a_reconnect_is_not_duplicated(
        sessionmaker, captures_dir: Path) -> None:
    before, after = _split(replay_events(captures_dir / "queue_call.txt", START), 5.0)
    tracker = await _run(sessionmaker, before)
    tracker(ev.ResyncStarted(_at(6), 2))
    tracker(_snapshot(_at(6), _captured_channels(captures_dir)))
    assert tracker.live_calls == 1
    for event in after:
        tracker(event)
    await tracker.flush()
    (row,) = await _rows(sessionmaker)
    assert row.disposition == "answered" and row.end_estimated is False
    assert row.talk_seconds == pytest.approx(12.952, abs=0.002)
    await tracker.stop()


async def test_a_call_whose_channels_all_changed_while_disconnected_goes_on(
        sessionmaker, captures_dir: Path) -> None:
    before, _ = _split(replay_events(captures_dir / "queue_call.txt", START), 5.0)
    tracker = await _run(sessionmaker, before)
    # every channel we knew is gone, but the call lives on in a new one (a transfer)
    tracker(ev.ResyncStarted(_at(20), 2))
    tracker(_snapshot(_at(20), [{
        "Channel": "PJSIP/7000-00000009", "Uniqueid": "1795239874.99",
        "Linkedid": "1795239874.0", "ChannelState": "6", "CallerIDNum": "7000",
        "Duration": "00:00:03", "BridgeId": ""}]))
    assert tracker.live_calls == 1
    await tracker.flush()
    (live,) = await _rows(sessionmaker)
    assert live.ended_at is None and live.disposition is None  # still open
    tracker(_snapshot(_at(30), []))  # a later resync finds it gone
    await tracker.flush()
    (row,) = await _rows(sessionmaker)
    assert row.end_estimated is True and _utc(row.ended_at) == _at(30)
    await tracker.stop()


async def test_call_started_while_disconnected_is_picked_up(
        sessionmaker, captures_dir: Path) -> None:
    _, after = _split(replay_events(captures_dir / "queue_call.txt", START), 5.0)
    tracker = await _run(sessionmaker, [])
    tracker(ev.ResyncStarted(_at(6), 2))
    tracker(_snapshot(_at(6), _captured_channels(captures_dir, AGES_AT_6)))
    assert tracker.live_calls == 1
    await tracker.flush()
    (live,) = await _rows(sessionmaker)
    assert live.disposition is None and live.ended_at is None  # ongoing call is visible
    assert live.start_estimated is True and live.answer_estimated is True
    for event in after:
        tracker(event)
    await tracker.flush()
    (row,) = await _rows(sessionmaker)
    assert row.linkedid == "1795239874.0"
    assert row.disposition == "answered" and row.caller_number == "5551000"
    assert _utc(row.started_at) == _at(6 - 5)  # the oldest channel: 00:00:05
    assert _utc(row.answered_at) == _at(6 - 4)  # the youngest bridged channel: 00:00:04
    assert row.talk_seconds == pytest.approx(13.009 - 2, abs=0.002)
    assert row.start_estimated is True and row.answer_estimated is True
    await tracker.stop()


async def test_snapshot_taken_before_a_hangup_does_not_resurrect_the_call(
        sessionmaker, captures_dir: Path) -> None:
    events = replay_events(captures_dir / "queue_call.txt", START)
    tracker = await _run(sessionmaker, [])
    tracker(ev.ResyncStarted(_at(0), 2))
    for event in events:
        tracker(event)
    tracker(_snapshot(_at(14), _captured_channels(captures_dir)))  # arrives after the hangups
    await tracker.flush()
    assert tracker.live_calls == 0
    (row,) = await _rows(sessionmaker)
    assert row.end_estimated is False
    await tracker.stop()


async def test_a_call_touched_during_the_resync_is_not_closed(
        sessionmaker, captures_dir: Path) -> None:
    before, after = _split(replay_events(captures_dir / "queue_call.txt", START), 5.0)
    tracker = await _run(sessionmaker, before)
    tracker(ev.ResyncStarted(_at(6), 2))
    tracker(after[0])  # a live event of the call arrives before the (stale) snapshot
    tracker(_snapshot(_at(6), []))
    assert tracker.live_calls == 1
    await tracker.stop()


async def test_rows_survive_a_database_outage(db_url: str, captures_dir: Path) -> None:
    engine = create_async_engine(db_url)
    sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
    tracker = CallTracker(sessionmaker, FrozenClock(START))
    tracker.writer._retry_min = tracker.writer._retry_max = 0.01
    await tracker.start()
    for event in replay_events(captures_dir / "abandon.txt", START):
        tracker(event)
    # the table does not exist yet: every write fails until the database is "back"
    assert not await tracker.writer._write_batch()
    assert tracker.writer.pending == 1
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    await tracker.flush()
    (row,) = await _rows(sessionmaker)
    assert row.disposition == "abandoned" and tracker.writer.failures >= 1
    await tracker.stop()
    await engine.dispose()


async def test_restart_mid_call_keeps_what_the_first_process_knew(
        sessionmaker, captures_dir: Path) -> None:
    before, after = _split(replay_events(captures_dir / "queue_call.txt", START), 5.0)
    first = await _run(sessionmaker, before)
    await first.stop()  # the process stops mid-call: the ongoing call is saved as it is
    (saved,) = await _rows(sessionmaker)
    assert saved.queue == "support" and saved.ended_at is None
    second = await _run(sessionmaker, [])  # a new process: the call is only in the snapshot
    second(ev.ResyncStarted(_at(6), 1))
    second(_snapshot(_at(6), _captured_channels(captures_dir)))
    for event in after:
        second(event)
    await second.flush()
    (row,) = await _rows(sessionmaker)
    assert (row.queue, row.agent_name) == ("support", "Agent 100")
    assert _utc(row.started_at) == _at(0.054) and _utc(row.answered_at) == _at(0.057)
    assert row.disposition == "answered" and _utc(row.ended_at) == _at(13.011)
    await second.stop()


async def test_crash_mid_call_leaves_an_open_row_the_next_process_closes(
        sessionmaker, captures_dir: Path) -> None:
    before, _ = _split(replay_events(captures_dir / "queue_call.txt", START), 5.0)
    first = await _run(sessionmaker, before)
    await first.writer.stop()  # a crash: only what was already handed to the writer is saved
    (saved,) = await _rows(sessionmaker)
    assert saved.ended_at is None and _utc(saved.answered_at) == _at(0.057)
    second = CallTracker(sessionmaker, FrozenClock(START))
    await second.start()
    assert second.open_rows_pending == 1
    second(ev.ResyncStarted(_at(20), 1))
    second(_snapshot(_at(20), []))  # Asterisk no longer has the call
    await second.flush()
    (row,) = await _rows(sessionmaker)
    assert row.disposition == "answered" and row.end_estimated is True
    assert _utc(row.ended_at) == _at(20) and row.queue == "support"
    assert second.live_calls == 0 and second.open_rows_pending == 0
    await second.stop()


async def test_open_rows_of_another_pbx_are_left_alone(sessionmaker,
                                                       captures_dir: Path) -> None:
    before, _ = _split(replay_events(captures_dir / "queue_call.txt", START), 5.0)
    first = CallTracker(sessionmaker, FrozenClock(START), pbx="pbx-a")
    await first.start()
    for event in before:
        first(event)
    await first.stop()
    other = CallTracker(sessionmaker, FrozenClock(START), pbx="pbx-b")
    await other.start()
    assert other.open_rows_pending == 0
    other(ev.ResyncStarted(_at(20), 1, "pbx-b"))
    other(ev.ChannelsSnapshot(_at(20), 1, (), "pbx-b"))
    # a snapshot of another server (a wiring mistake) closes nothing either
    other(ev.ResyncStarted(_at(21), 1, "pbx-a"))
    other(ev.ChannelsSnapshot(_at(21), 1, (), "pbx-a"))
    await other.stop()
    (row,) = await _rows(sessionmaker)
    assert row.pbx == "pbx-a" and row.ended_at is None


async def test_live_event_of_a_stored_call_before_the_snapshot_continues_its_row(
        sessionmaker, captures_dir: Path) -> None:
    before, after = _split(replay_events(captures_dir / "queue_call.txt", START), 5.0)
    first = await _run(sessionmaker, before)
    await first.stop()
    (saved,) = await _rows(sessionmaker)
    # talk counted up to the last event the first process saw
    assert saved.talk_seconds == pytest.approx((before[-1].at - _at(0.057)).total_seconds())
    second = CallTracker(sessionmaker, FrozenClock(START))
    await second.start()
    for event in after:  # its hang-up arrives before any resync
        second(event)
    await second.flush()
    (row,) = await _rows(sessionmaker)
    assert row.disposition == "answered" and row.end_estimated is False
    assert (row.queue, row.agent_name) == ("support", "Agent 100")
    assert _utc(row.ended_at) == _at(13.011)  # the first channel's hang-up did not end it
    # without a snapshot the new process never saw the bridge: only the saved talk counts
    assert row.talk_seconds == pytest.approx(saved.talk_seconds)
    await second.stop()


async def test_a_call_adopted_after_a_crash_keeps_its_real_answer_and_talk(
        sessionmaker, captures_dir: Path) -> None:
    before, after = _split(replay_events(captures_dir / "queue_call.txt", START), 5.0)
    first = await _run(sessionmaker, before)
    await first.writer.stop()  # a crash: the row written at the answer is all that is left
    await first._attempt_writer.stop()
    second = await _run(sessionmaker, [])
    second(ev.ResyncStarted(_at(9), 1))
    second(_snapshot(_at(9), _captured_channels(captures_dir, AGES_AT_6)))
    for event in after:
        second(event)
    await second.stop()
    (row,) = await _rows(sessionmaker)
    assert _utc(row.started_at) == _at(0.054) and _utc(row.answered_at) == _at(0.057)
    assert row.answer_estimated is False and row.start_estimated is False
    # it talked from the answer, not from the restart at t=9
    assert row.talk_seconds == pytest.approx(12.952, abs=0.002)
