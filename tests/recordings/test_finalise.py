"""Finalising a recording: SHA-256, duration, size, filed under recordings/YYYY/MM/DD/<id>.wav,
row before announcement, never overwritten; missing, empty or unstorable files are flagged
on the order and retried."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from callcenter.bus.memory import MemoryBus
from callcenter.recordings.models import Recording
from callcenter.recordings.service import RecordingService
from callcenter.recordings.store import AlreadyStored, LocalStore
from callcenter.tickets.models import TicketEvent
from tests.recordings.conftest import Office, write_wav

ENDED = datetime(2026, 11, 23, 2, 5, tzinfo=UTC)


async def intake_ticket(office: Office, linkedid: str) -> int:
    ticket = await office.new_ticket(calls=[{"linkedid": linkedid}])
    return ticket["id"]


def when_due(office: Office, row: Recording) -> None:
    """Move the frozen clock to the row's next attempt (attempts are made only when due)."""
    assert row.next_attempt_at is not None
    office.clock.set(row.next_attempt_at)


async def timeline(office: Office, tid: int) -> list[dict]:
    body = await office.call(office.supervisor, "GET", f"/tickets/{tid}/timeline", expect=200)
    return body["events"]


async def test_a_recording_is_hashed_timed_filed_and_attached(office: Office) -> None:
    tid = await intake_ticket(office, "1700000000.1")
    source = write_wav(office.config.monitor_dir / "1700000000.1.wav", 180.0)
    bus = MemoryBus()
    seen = await bus.subscribe("recording.*").open()
    service = RecordingService(office.sessionmaker, office.clock, office.config,
                               LocalStore(office.config.store_dir), bus)
    row = await service.call_ended(pbx="sim", linkedid="1700000000.1", uniqueid="1700000000.1",
                                   source="/var/spool/asterisk/monitor/1700000000.1.wav",
                                   ended_at=ENDED)
    assert row.status == "stored"
    assert row.sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
    assert row.size_bytes == source.stat().st_size
    assert row.duration_seconds == 180.0 and row.channels == 2
    assert row.store_key == f"recordings/2026/11/23/{row.id}.wav"
    stored = office.config.store_dir / row.store_key
    assert stored.read_bytes() == source.read_bytes()
    _, event = await seen.get(timeout=1)
    assert event["recording_id"] == row.id and event["sha256"] == row.sha256
    entries = [e for e in await timeline(office, tid) if e["action"] == "recording"]
    assert len(entries) == 1
    assert entries[0]["data"]["recording_id"] == row.id
    assert entries[0]["data"]["duration_seconds"] == 180.0
    assert entries[0]["data"]["purpose"] == "intake"
    listed = await office.call(office.supervisor, "GET", f"/tickets/{tid}/recordings",
                               expect=200)
    assert [r["id"] for r in listed["recordings"]] == [row.id]


async def test_the_row_is_durable_before_the_announcement(office: Office) -> None:
    write_wav(office.config.monitor_dir / "a.wav", 1.0)
    bus = MemoryBus()
    seen = await bus.subscribe("recording.stored").open()
    service = RecordingService(office.sessionmaker, office.clock, office.config,
                               LocalStore(office.config.store_dir), bus)
    await service.call_ended(pbx="sim", linkedid="a", uniqueid="a", source="a.wav",
                             ended_at=ENDED)
    _, event = await seen.get(timeout=1)
    async with office.sessionmaker() as session:
        row = await session.get(Recording, event["recording_id"])
    assert row is not None and row.status == "stored"


async def test_a_stored_file_is_never_overwritten(office: Office, tmp_path) -> None:
    store = LocalStore(office.config.store_dir)
    first = write_wav(tmp_path / "first.wav", 1.0)
    second = write_wav(tmp_path / "second.wav", 2.0)
    store.put("recordings/2026/11/23/1.wav", first)
    with pytest.raises(AlreadyStored):
        store.put("recordings/2026/11/23/1.wav", second)
    assert store.path("recordings/2026/11/23/1.wav").read_bytes() == first.read_bytes()


@pytest.mark.parametrize("content", [None, b""], ids=["missing", "empty"])
async def test_a_missing_or_empty_file_is_flagged_retried_then_stored(
        office: Office, content: bytes | None) -> None:
    tid = await intake_ticket(office, "1700000000.2")
    path = office.config.monitor_dir / "1700000000.2.wav"
    if content is not None:
        path.write_bytes(content)
    row = await office.recordings.call_ended(pbx="sim", linkedid="1700000000.2",
                                             uniqueid="1700000000.2", source=path.name,
                                             ended_at=ENDED)
    assert row.status == "missing" and row.attempts == 1
    assert not [e for e in await timeline(office, tid) if e["action"] == "recording_problem"]
    when_due(office, row)
    row = await office.recordings.attempt(row.id)  # still missing: now the order is flagged
    assert row.status == "missing" and row.attempts == 2
    flags = [e for e in await timeline(office, tid) if e["action"] == "recording_problem"]
    assert len(flags) == 1 and flags[0]["data"]["status"] == "missing"
    write_wav(path, 3.0)
    when_due(office, row)
    row = await office.recordings.attempt(row.id)
    assert row.status == "stored" and row.duration_seconds == 3.0 and row.attempts == 3


async def test_a_file_missing_after_every_retry_is_lost_not_dropped(office: Office) -> None:
    tid = await intake_ticket(office, "1700000000.3")
    row = await office.recordings.call_ended(pbx="sim", linkedid="1700000000.3",
                                             uniqueid="1700000000.3", source="gone.wav",
                                             ended_at=ENDED)
    for _ in office.config.retry_delays:
        when_due(office, row)
        row = await office.recordings.attempt(row.id)
    assert row.status == "lost" and row.attempts == len(office.config.retry_delays) + 1
    statuses = [e["data"]["status"] for e in await timeline(office, tid)
                if e["action"] == "recording_problem"]
    assert statuses == ["missing", "lost"]


async def test_a_storage_failure_is_flagged_and_retried(office: Office, tmp_path) -> None:
    tid = await intake_ticket(office, "1700000000.4")
    write_wav(office.config.monitor_dir / "1700000000.4.wav", 2.0)
    blocker = tmp_path / "disk"
    blocker.write_text("not a folder")  # the store's root cannot be created: puts fail
    broken = RecordingService(office.sessionmaker, office.clock, office.config,
                              LocalStore(blocker / "store"))
    row = await broken.call_ended(pbx="sim", linkedid="1700000000.4",
                                  uniqueid="1700000000.4", source="1700000000.4.wav",
                                  ended_at=ENDED)
    assert row.status == "failed" and "cannot store" in (row.last_error or "")
    when_due(office, row)
    row = await broken.attempt(row.id)
    assert row.status == "failed" and row.attempts == 2
    assert any(e["action"] == "recording_problem" for e in await timeline(office, tid))
    assert await office.recordings.due_retries(row.next_attempt_at) == [row.id]
    when_due(office, row)
    row = await office.recordings.attempt(row.id)  # the store is back
    assert row.status == "stored" and row.duration_seconds == 2.0


async def test_an_unreachable_monitor_folder_is_said_clearly(office: Office, tmp_path) -> None:
    config = office.config.model_copy(update={"monitor_dir": tmp_path / "not-mounted"})
    service = RecordingService(office.sessionmaker, office.clock, config,
                               LocalStore(config.store_dir))
    row = await service.call_ended(pbx="sim", linkedid="x", uniqueid="x", source="x.wav",
                                   ended_at=ENDED)
    assert row.status == "failed"
    assert row.last_error == f"cannot reach Asterisk's monitor folder {tmp_path / 'not-mounted'}"


async def test_a_recording_stored_before_its_order_is_attached_later(office: Office) -> None:
    write_wav(office.config.monitor_dir / "1700000000.5.wav", 4.0)
    row = await office.recordings.call_ended(pbx="sim", linkedid="1700000000.5",
                                             uniqueid="1700000000.5", source="1700000000.5.wav",
                                             ended_at=ENDED)
    tid = await intake_ticket(office, "1700000000.5")
    assert await office.recordings.attach_pending() == 1
    assert await office.recordings.attach_pending() == 0
    entries = [e for e in await timeline(office, tid) if e["action"] == "recording"]
    assert [e["data"]["recording_id"] for e in entries] == [row.id]
    async with office.sessionmaker() as session:
        count = len((await session.scalars(select(TicketEvent).where(
            TicketEvent.ticket_id == tid, TicketEvent.action == "recording"))).all())
    assert count == 1
