"""The integrity sweep detects tampered and deleted files; reconciliation finds files without
rows and rows without files (also through ``callcenter recordings reconcile``); retention
deletes old recordings of settled orders only, and logs it on their timeline."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import update

import callcenter
from callcenter.recordings.integrity import Integrity
from callcenter.recordings.models import Recording
from callcenter.tickets.models import Ticket
from tests.recordings.conftest import Office, write_wav

ENDED = datetime(2026, 11, 23, 2, 5, tzinfo=UTC)
REPO = Path(callcenter.__file__).resolve().parents[1]


async def stored(office: Office, name: str, seconds: float = 1.0, linked: bool = True
                 ) -> tuple[Recording, int | None]:
    tid = None
    if linked:
        tid = (await office.new_ticket(calls=[{"linkedid": name}]))["id"]
    write_wav(office.config.monitor_dir / f"{name}.wav", seconds)
    row = await office.recordings.call_ended(pbx="sim", linkedid=name, uniqueid=name,
                                             source=f"{name}.wav", ended_at=ENDED)
    assert row.status == "stored"
    return row, tid


async def status_of(office: Office, recording_id: int) -> str:
    async with office.sessionmaker() as session:
        row = await session.get(Recording, recording_id)
        assert row is not None
        return row.status


async def test_a_tampered_and_a_deleted_file_are_detected(office: Office) -> None:
    intact, _ = await stored(office, "r-intact")
    tampered, tid = await stored(office, "r-tampered")
    deleted, _ = await stored(office, "r-deleted")
    path = office.config.store_dir / tampered.store_key
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF  # one flipped byte, same size
    path.write_bytes(bytes(data))
    (office.config.store_dir / deleted.store_key).unlink()
    report = await Integrity(office.recordings).sweep()
    assert (report.checked, report.changed, report.gone) == (3, [tampered.id], [deleted.id])
    assert await status_of(office, intact.id) == "stored"
    assert await status_of(office, tampered.id) == "changed"
    assert await status_of(office, deleted.id) == "gone"
    events = (await office.call(office.supervisor, "GET", f"/tickets/{tid}/timeline",
                                expect=200))["events"]
    flags = [e["data"] for e in events if e["action"] == "recording_problem"]
    assert [(f["recording_id"], f["status"]) for f in flags] == [(tampered.id, "changed")]
    refused = await office.client.get(f"/api/v1/recordings/{tampered.id}/audio",
                                      headers=office.supervisor.headers)
    assert refused.status == 409  # a changed file is not served as evidence


async def test_an_intact_store_sweeps_clean(office: Office) -> None:
    await stored(office, "r-one", 2.0)
    report = await Integrity(office.recordings).sweep()
    assert report.changed == [] and report.gone == [] and report.checked == 1
    assert report.bytes > 2 * 8000 * 2 * 2


async def test_reconcile_finds_files_without_rows_and_rows_without_files(
        office: Office, db_url: str) -> None:
    kept, _ = await stored(office, "r-kept", linked=False)
    lost, _ = await stored(office, "r-lost", linked=False)
    (office.config.store_dir / lost.store_key).unlink()
    stray = write_wav(office.config.store_dir / "recordings/2026/11/20/999.wav", 1.0)
    write_wav(office.config.monitor_dir / "never-seen.wav", 1.0)
    found = await Integrity(office.recordings).reconcile()
    assert found.files_without_rows == ["recordings/2026/11/20/999.wav"]
    assert found.rows_without_files == [lost.id]
    assert found.monitor_files_without_rows == ["never-seen.wav"]
    assert stray.exists() and kept.id
    env = {**os.environ, "CALLCENTER_DATABASE__URL": db_url,
           "CALLCENTER_RECORDINGS__STORE_DIR": str(office.config.store_dir),
           "CALLCENTER_RECORDINGS__MONITOR_DIR": str(office.config.monitor_dir),
           "CALLCENTER_AUTH__TOKEN_SECRET": "cli-" + "s" * 40,
           "PYTHONPATH": str(REPO)}  # this checkout, whatever the cwd
    result = subprocess.run([sys.executable, "-m", "callcenter", "recordings", "reconcile"],
                            env=env, capture_output=True, text=True, timeout=60,
                            cwd=office.config.store_dir.parent)
    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines() == [
        "file without row: recordings/2026/11/20/999.wav",
        f"row without file: recording {lost.id}",
        "monitor file without row: never-seen.wav",
        "3 problem(s)"]


async def test_retention_keeps_open_and_disputed_orders_and_logs_deletions(
        office: Office) -> None:
    config = office.config.model_copy(update={"retention_days": 30})
    office.recordings.config = config
    settled, settled_tid = await stored(office, "r-settled")
    open_, _ = await stored(office, "r-open")
    disputed, disputed_tid = await stored(office, "r-disputed")
    young, young_tid = await stored(office, "r-young")
    async with office.sessionmaker() as session, session.begin():
        await session.execute(update(Ticket).where(
            Ticket.id.in_([settled_tid, disputed_tid, young_tid])).values(status="archived"))
        await session.execute(update(Ticket).where(Ticket.id == disputed_tid)
                              .values(revisit_result="unsatisfied"))
        await session.execute(update(Recording).where(Recording.id == young.id)
                              .values(ended_at=ENDED + timedelta(days=10)))
    now = ENDED + timedelta(days=31)
    deleted = await Integrity(office.recordings).apply_retention(now)
    assert deleted == [settled.id]
    assert not (office.config.store_dir / settled.store_key).exists()
    for row in (open_, disputed, young):
        assert (office.config.store_dir / row.store_key).exists()
        assert await status_of(office, row.id) == "stored"
    assert await status_of(office, settled.id) == "deleted"
    events = (await office.call(office.supervisor, "GET", f"/tickets/{settled_tid}/timeline",
                                expect=200))["events"]
    assert [e["data"] for e in events if e["action"] == "recording_deleted"] == [
        {"recording_id": settled.id, "retention_days": 30}]
    assert await Integrity(office.recordings).apply_retention(now) == []


async def test_without_a_retention_period_nothing_is_deleted(office: Office) -> None:
    row, _ = await stored(office, "r-kept-forever")
    assert await Integrity(office.recordings).apply_retention(ENDED + timedelta(days=9999)) == []
    assert await status_of(office, row.id) == "stored"
