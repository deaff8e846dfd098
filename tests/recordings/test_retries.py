"""Retries of a file not yet taken over have one owner, the workers' loop, driven by the row:
one attempt at the hang-up, one more per configured delay at its time, never two for the same
turn; an exhausted retry flags the call and its orders and is alerted on the bus and in the
log, naming both."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from callcenter.bus.memory import MemoryBus
from callcenter.clock import SystemClock
from callcenter.recordings.contact import ContactCalls
from callcenter.recordings.listeners import RecordingListener
from callcenter.recordings.models import Recording
from callcenter.recordings.service import ATTEMPT_LEASE, RecordingService
from callcenter.recordings.store import LocalStore
from callcenter.recordings.workers import RecordingsWorker
from callcenter.supervision.models import Notification
from callcenter.telephony import events as ev
from tests.recordings.conftest import Office, write_wav

ENDED = datetime(2026, 11, 23, 2, 5, tzinfo=UTC)
DELAYS = [0.5, 2.0, 10.0]


def service_with(office: Office, bus: MemoryBus | None = None, clock=None,
                 delays: list[float] = DELAYS) -> RecordingService:
    assert office.config is not None
    config = office.config.model_copy(update={"retry_delays": delays})
    return RecordingService(office.sessionmaker, clock or office.clock, config,
                            LocalStore(config.store_dir), bus)


async def load(office: Office, recording_id: int) -> Recording:
    async with office.sessionmaker() as session:
        row = await session.get(Recording, recording_id)
    assert row is not None
    return row


async def problems(office: Office, tid: int) -> list[str]:
    body = await office.call(office.supervisor, "GET", f"/tickets/{tid}/timeline", expect=200)
    return [e["data"]["status"] for e in body["events"] if e["action"] == "recording_problem"]


def channel_event(cls: type, uniqueid: str, **extra: object) -> ev.ChannelEvent:
    return cls(at=ENDED, channel="PJSIP/trunk-00000001", uniqueid=uniqueid, linkedid=uniqueid,
               state=6, caller_num="13812345678", caller_name="", context="hotline",
               exten="12345", **extra)


async def test_one_attempt_at_the_hangup_then_one_per_delay_each_when_due(
        office: Office) -> None:
    service = service_with(office)
    worker = RecordingsWorker(service)
    start = office.clock.now()
    row = await service.call_ended(pbx="sim", linkedid="r-1", uniqueid="r-1", source="r-1.wav",
                                   ended_at=ENDED)
    assert (row.attempts, row.status) == (1, "missing")
    assert row.next_attempt_at == start + timedelta(seconds=0.5)
    expected_at = start
    for attempts, delay in enumerate(DELAYS, start=2):
        expected_at += timedelta(seconds=delay)
        office.clock.set(expected_at - timedelta(microseconds=1))
        await worker.tick()  # a moment before it is due: nothing happens
        assert (await load(office, row.id)).attempts == attempts - 1
        office.clock.set(expected_at)
        await worker.tick()
        await worker.tick()  # a second round at the same moment adds no attempt
        row = await load(office, row.id)
        assert row.attempts == attempts
        if attempts <= len(DELAYS):
            assert row.status == "missing"
            assert row.next_attempt_at == expected_at + timedelta(seconds=DELAYS[attempts - 1])
    assert (row.attempts, row.status, row.next_attempt_at) == (len(DELAYS) + 1, "lost", None)
    office.clock.advance(timedelta(days=1))
    await worker.tick()
    assert (await load(office, row.id)).attempts == len(DELAYS) + 1


async def test_the_hangup_listener_makes_the_first_attempt_and_no_retry(office: Office) -> None:
    """In real time, with retries due after 10 ms: the listener's work ends after one."""
    service = service_with(office, clock=SystemClock(), delays=[0.01, 0.01])
    listener = RecordingListener(service, ContactCalls(
        office.sessionmaker, service.clock, service.config.click_to_call, "sim"), "sim")
    await listener.start()
    listener(channel_event(ev.VariableSet, "r-2", name="MIXMONITOR_FILENAME",
                           value="/var/spool/asterisk/monitor/r-2.wav"))
    listener(channel_event(ev.ChannelHungUp, "r-2", cause=16, cause_text="Normal Clearing"))
    await listener.stop()  # waits for every task the hang-up started
    assert not listener._tasks
    (recording_id,) = await service.due_retries(service.clock.now() + timedelta(seconds=1))
    row = await load(office, recording_id)
    assert (row.attempts, row.status, row.source) == (
        1, "missing", "/var/spool/asterisk/monitor/r-2.wav")


async def test_two_workers_due_at_once_make_one_attempt(office: Office) -> None:
    service = service_with(office)
    row = await service.call_ended(pbx="sim", linkedid="r-3", uniqueid="r-3", source="r-3.wav",
                                   ended_at=ENDED)
    office.clock.set(row.next_attempt_at)
    first, second = RecordingsWorker(service), RecordingsWorker(service_with(office))
    await asyncio.gather(first.tick(), second.tick())
    assert (await load(office, row.id)).attempts == 2


async def test_concurrent_attempts_on_one_row_count_once(office: Office) -> None:
    service = service_with(office)
    row = await service.call_ended(pbx="sim", linkedid="r-4", uniqueid="r-4", source="r-4.wav",
                                   ended_at=ENDED)
    write_wav(office.config.monitor_dir / "r-4.wav", 1.5)
    office.clock.set(row.next_attempt_at)
    results = await asyncio.gather(*(service.attempt(row.id) for _ in range(4)))
    row = await load(office, row.id)
    assert (row.attempts, row.status, row.duration_seconds) == (2, "stored", 1.5)
    assert sorted(r.attempts for r in results) == [2, 2, 2, 2]


async def test_an_attempt_cut_off_by_a_crash_is_taken_again_when_its_lease_ends(
        office: Office) -> None:
    """A process that died during an attempt left the row claimed: the loop takes it
    again once the lease is over, not before, and the lost attempt still counts."""
    async with office.sessionmaker() as session, session.begin():
        row = Recording(pbx="sim", linkedid="r-5", uniqueid="r-5", source="r-5.wav",
                        status="pending", attempts=1, ended_at=ENDED,
                        next_attempt_at=office.clock.now() + ATTEMPT_LEASE)
        session.add(row)
    write_wav(office.config.monitor_dir / "r-5.wav", 2.0)
    worker = RecordingsWorker(service_with(office))
    office.clock.advance(ATTEMPT_LEASE - timedelta(seconds=1))
    await worker.tick()
    assert (await load(office, row.id)).status == "pending"
    office.clock.advance(timedelta(seconds=1))
    await worker.tick()
    stored = await load(office, row.id)
    assert (stored.status, stored.attempts, stored.duration_seconds) == ("stored", 2, 2.0)


async def test_an_exhausted_retry_flags_the_call_and_order_and_alerts_naming_both(
        office: Office, caplog: pytest.LogCaptureFixture) -> None:
    tid = (await office.new_ticket(calls=[{"linkedid": "r-6"}]))["id"]
    bus = MemoryBus()
    alerts = await bus.subscribe("recording.alert").open()
    service = service_with(office, bus, delays=[0.5])
    worker = RecordingsWorker(service)
    caplog.set_level(logging.INFO, logger="callcenter.recordings")
    row = await service.call_ended(pbx="sim", linkedid="r-6", uniqueid="r-6", source="r-6.wav",
                                   ended_at=ENDED)
    _, first = await alerts.get(timeout=1)
    assert (first["status"], first["attempts"], first["ticket_ids"]) == ("missing", 1, [tid])
    assert first["next_attempt_at"] == row.next_attempt_at.isoformat()
    office.clock.set(row.next_attempt_at)
    await worker.tick()
    _, last = await alerts.get(timeout=1)
    assert {k: last[k] for k in ("recording_id", "pbx", "linkedid", "uniqueid", "status",
                                 "attempts", "ticket_ids", "next_attempt_at")} == {
        "recording_id": row.id, "pbx": "sim", "linkedid": "r-6", "uniqueid": "r-6",
        "status": "lost", "attempts": 2, "ticket_ids": [tid], "next_attempt_at": None}
    assert last["error"] == "r-6.wav is missing from the monitor folder"
    (lost,) = [r for r in caplog.records if r.getMessage().startswith("recordings.lost ")]
    assert lost.levelno == logging.ERROR
    assert f"linkedid=r-6 tickets=[{tid}] attempts=2" in lost.getMessage()
    row = await load(office, row.id)
    assert (row.status, row.last_error) == ("lost", last["error"])
    assert await problems(office, tid) == ["lost"]  # one attempt left: flagged once, as lost
    assert await lost_notices(office) == [(tid, "supervisor")]


async def test_an_order_linked_after_the_loss_is_flagged_and_alerted_once(
        office: Office) -> None:
    bus = MemoryBus()
    service = service_with(office, bus, delays=[0.5])
    worker = RecordingsWorker(service)
    row = await service.call_ended(pbx="sim", linkedid="r-7", uniqueid="r-7", source="r-7.wav",
                                   ended_at=ENDED)
    office.clock.set(row.next_attempt_at)
    await worker.tick()
    assert (await load(office, row.id)).status == "lost"
    alerts = await bus.subscribe("recording.alert").open()
    tid = (await office.new_ticket(calls=[{"linkedid": "r-7"}]))["id"]  # written after
    await worker.tick()
    _, alert = await alerts.get(timeout=1)
    assert (alert["status"], alert["linkedid"], alert["ticket_ids"]) == ("lost", "r-7", [tid])
    await worker.tick()
    assert await service.flag_late_losses() == 0
    assert await problems(office, tid) == ["lost"]
    assert await lost_notices(office) == [(tid, "supervisor")]


async def lost_notices(office: Office) -> list[tuple[int, str]]:
    """The supervisors' notifications of lost recordings: (order, role)."""
    async with office.sessionmaker() as session:
        rows = await session.execute(select(Notification.ticket_id, Notification.recipient_role)
                                     .where(Notification.kind == "recording_lost"))
        return [tuple(r) for r in rows.all()]


async def test_the_loop_sleeps_until_the_next_retry_is_due(office: Office) -> None:
    service = service_with(office)
    worker = RecordingsWorker(service, poll=30.0)
    assert await worker.seconds_to_next() == 30.0
    row = await service.call_ended(pbx="sim", linkedid="r-8", uniqueid="r-8", source="r-8.wav",
                                   ended_at=ENDED)
    assert await worker.seconds_to_next() == 0.5
    office.clock.advance(timedelta(seconds=0.2))
    assert await worker.seconds_to_next() == pytest.approx(0.3)
    office.clock.set(row.next_attempt_at + timedelta(seconds=5))
    assert await worker.seconds_to_next() == 0.0


async def test_the_loop_wakes_on_an_alert_and_retries_after_each_delay_not_the_poll(
        office: Office) -> None:
    """In real time: the loop polls hourly, yet a file missing at the hang-up is retried
    after 0.05 s and 0.1 s, because the first attempt's alert wakes it."""
    bus = MemoryBus()
    service = service_with(office, bus, clock=SystemClock(), delays=[0.05, 0.1])
    stop = asyncio.Event()
    loop = asyncio.create_task(RecordingsWorker(service, poll=3600).run(stop))
    try:
        while not bus.wants("recording.alert"):  # the loop has subscribed (no I/O: yields)
            await asyncio.sleep(0)
        alerts = await bus.subscribe("recording.alert").open()
        now = asyncio.get_running_loop().time
        row = await service.call_ended(pbx="sim", linkedid="r-9", uniqueid="r-9",
                                       source="r-9.wav", ended_at=ENDED)
        started, seen = now(), []
        async with asyncio.timeout(10):
            while not seen or seen[-1]["status"] != "lost":
                seen.append((await alerts.get())[1])
        assert now() - started < 5  # woken by the alerts, not by the hourly poll
        assert [(a["attempts"], a["status"]) for a in seen] == [
            (1, "missing"), (2, "missing"), (3, "lost")]
        due = [datetime.fromisoformat(a["next_attempt_at"]) for a in seen[:2]]
        assert due[1] - timedelta(seconds=0.1) >= due[0]  # the 2nd attempt was not early
        assert (await load(office, row.id)).attempts == 3
    finally:
        stop.set()
        await loop
