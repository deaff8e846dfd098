"""Recordings benchmark: finalising 1,000 recordings of 3 minutes, and the integrity sweep.

Usage: ``python bench/recordings_bench.py [--count 1000] [--seconds 180] [--db sqlite|pg]
[--folder DIR]``

1. Writes one 8 kHz mono 16-bit WAV of ``--seconds`` (what ``MixMonitor`` writes by default)
   and hard-links it ``--count`` times into a monitor folder (no extra disk for sources).
2. Creates the schema (SQLite file, or a scratch PostgreSQL database) and ``--count`` orders,
   each linked to its call, so every finalisation also attaches and writes a timeline entry.
3. Finalises each recording through ``RecordingService.call_ended`` (the listener's path:
   row, copy into the store with SHA-256, WAV duration, row update, attachment), one after
   the other: throughput and p50/p99 per recording.
4. Runs the integrity sweep (``Integrity.sweep``: re-hash every stored file, one row update
   per 500 files) and ``sha256sum`` over the same files: seconds per GB and their ratio.
5. Prints a Markdown table to paste into ``bench/RESULTS.md`` and removes its files.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
import wave
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

import callcenter.store.models  # noqa: F401  every table
from callcenter.clock import SystemClock
from callcenter.recordings.config import RecordingsConfig
from callcenter.recordings.integrity import Integrity
from callcenter.recordings.service import RecordingService
from callcenter.recordings.store import LocalStore
from callcenter.store.base import Base
from callcenter.store.engine import create_engine, create_sessionmaker
from callcenter.tickets.models import Ticket, TicketCall

PG = "postgresql://postgres@127.0.0.1:5432/postgres"


def write_source(path: Path, seconds: float) -> None:
    frames = int(seconds * 8000)
    block = bytes((i * 37) % 251 for i in range(16000))
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        left = frames * 2
        while left > 0:
            chunk = block[:left]
            out.writeframesraw(chunk)
            left -= len(chunk)


async def scratch_pg() -> tuple[str, str]:
    name = "cc_bench_rec_" + uuid.uuid4().hex[:8]
    conn = await asyncpg.connect(PG)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name, f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"


async def drop_pg(name: str) -> None:
    conn = await asyncpg.connect(PG)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def orders(sessionmaker, count: int, now: datetime) -> None:
    async with sessionmaker() as session, session.begin():
        for n in range(count):
            ticket = Ticket(number=f"B{n:09d}", status="registered", channel="phone",
                            ticket_type="complaint", content="", created_at=now,
                            updated_at=now)
            session.add(ticket)
            await session.flush()
            session.add(TicketCall(ticket_id=ticket.id, linkedid=f"1800000000.{n}",
                                   purpose="intake", linked_at=now))


def sha256sum_seconds(files: list[Path]) -> float:
    start = time.perf_counter()
    for at in range(0, len(files), 200):
        subprocess.run(["sha256sum", *map(str, files[at:at + 200])], check=True,
                       stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


async def run(count: int, seconds: float, db: str, folder: Path) -> dict[str, object]:
    monitor, store_dir = folder / "monitor", folder / "store"
    monitor.mkdir(parents=True)
    write_source(folder / "source.wav", seconds)
    for n in range(count):
        os.link(folder / "source.wav", monitor / f"1800000000.{n}.wav")
    pg_name = None
    if db == "pg":
        pg_name, url = await scratch_pg()
    else:
        url = f"sqlite+aiosqlite:///{folder / 'bench.db'}"
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        sessionmaker = create_sessionmaker(engine)
        clock = SystemClock()
        now = datetime.now(UTC)
        await orders(sessionmaker, count, now)
        config = RecordingsConfig(store_dir=store_dir, monitor_dir=monitor)
        service = RecordingService(sessionmaker, clock, config, LocalStore(store_dir))
        latencies: list[float] = []
        start = time.perf_counter()
        for n in range(count):
            began = time.perf_counter()
            row = await service.call_ended(
                pbx="bench", linkedid=f"1800000000.{n}", uniqueid=f"1800000000.{n}",
                source=f"/var/spool/asterisk/monitor/1800000000.{n}.wav",
                ended_at=now - timedelta(seconds=1))
            latencies.append(time.perf_counter() - began)
            assert row.status == "stored", row.last_error
        total = time.perf_counter() - start
        files = sorted(store_dir.rglob("*.wav"))
        size = sum(f.stat().st_size for f in files)
        gb = size / 1e9
        baseline_before = sha256sum_seconds(files)
        sweep_start = time.perf_counter()
        report = await Integrity(service).sweep()
        sweep = time.perf_counter() - sweep_start
        baseline_after = sha256sum_seconds(files)
        assert report.checked == count and not report.changed and not report.gone
        baseline = min(baseline_before, baseline_after)
        cuts = statistics.quantiles(latencies, n=100, method="inclusive")
        return {
            "db": "PostgreSQL 127.0.0.1" if db == "pg" else "SQLite (WAL)",
            "count": count, "seconds": seconds, "gb": gb,
            "rate": count / total, "mb_s": size / 1e6 / total,
            "p50": cuts[49] * 1000, "p99": cuts[98] * 1000, "max": max(latencies) * 1000,
            "sweep_s_per_gb": sweep / gb, "sha_s_per_gb": baseline / gb,
            "ratio": sweep / baseline,
        }
    finally:
        await engine.dispose()
        if pg_name:
            await drop_pg(pg_name)


def table(results: list[dict[str, object]]) -> str:
    lines = ["| database | recordings | finalised/s | MB/s | p50 / p99 / max ms per "
             "recording | sweep s/GB | sha256sum s/GB | sweep / sha256sum |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(
            f"| {r['db']} | {r['count']:,} × {r['seconds']:g} s ({r['gb']:.2f} GB) | "
            f"{r['rate']:.1f} | {r['mb_s']:.0f} | {r['p50']:.1f} / {r['p99']:.1f} / "
            f"{r['max']:.1f} | {r['sweep_s_per_gb']:.2f} | {r['sha_s_per_gb']:.2f} | "
            f"**{r['ratio']:.2f}** |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--db", choices=["sqlite", "pg", "both"], default="both")
    parser.add_argument("--folder", type=Path, default=None)
    args = parser.parse_args()
    results = []
    for db in (["sqlite", "pg"] if args.db == "both" else [args.db]):
        folder = Path(tempfile.mkdtemp(prefix="cc_rec_bench_", dir=args.folder))
        try:
            results.append(asyncio.run(run(args.count, args.seconds, db, folder)))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {platform.processor() or platform.machine()},"
          f" {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}; Python "
          f"{platform.python_version()}")
    print(table(results))


if __name__ == "__main__":
    main()
