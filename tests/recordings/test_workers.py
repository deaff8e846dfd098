"""The recordings worker: a recording left missing (e.g. by a restart) is retried when due,
not before, and attached."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from callcenter.recordings.models import Recording
from callcenter.recordings.workers import RecordingsWorker
from tests.recordings.conftest import Office, write_wav

ENDED = datetime(2026, 11, 23, 2, 5, tzinfo=UTC)


async def test_a_due_retry_is_taken_over_and_attached(office: Office) -> None:
    tid = (await office.new_ticket(calls=[{"linkedid": "w-1"}]))["id"]
    row = await office.recordings.call_ended(pbx="sim", linkedid="w-1", uniqueid="w-1",
                                             source="w-1.wav", ended_at=ENDED)
    assert row.status == "missing" and row.next_attempt_at is not None
    write_wav(office.config.monitor_dir / "w-1.wav", 2.5)
    worker = RecordingsWorker(office.recordings, poll=0.01)
    await worker.tick()  # not due yet: the frozen clock has not reached next_attempt_at
    async with office.sessionmaker() as session:
        assert (await session.get(Recording, row.id)).status == "missing"
    office.clock.set(row.next_attempt_at + timedelta(seconds=1))
    await worker.tick()
    async with office.sessionmaker() as session:
        stored = await session.get(Recording, row.id)
        assert stored.status == "stored" and stored.duration_seconds == 2.5
        assert stored.checked_at == stored.stored_at  # hashed when taken over
    listed = await office.call(office.supervisor, "GET", f"/tickets/{tid}/recordings",
                               expect=200)
    assert [r["id"] for r in listed["recordings"]] == [row.id]
