"""Benchmark: the daily supervision scan over 1,000,000 orders in PostgreSQL.

Creates a dedicated database (dropped afterwards), loads N orders with COPY (two years of a
large city's traffic: most archived, a few percent open with deadlines around the scan
day), then times, at a frozen clock:
- the deadline scan (queries only),
- the steps of ``SupervisionScheduler.run_once`` (scan + outbox insert, live push, hotspots)
  on the first run of the day, a second run the same day (what a repeated or concurrent
  run costs), and the next day's run.

As in real use, every registered order's term vector is already stored (``ticket_terms``,
written at registration by ``TicketService.register``); ``--cold-terms`` leaves them out
to time the worst case (a database migrated from a system without them).

Usage: python bench/supervision_bench.py [--tickets 1000000] [--bus memory|redis]
       [--cold-terms] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import platform
import pstats
import random
import time
import uuid
from datetime import UTC, date, datetime, timedelta

import asyncpg
from sqlalchemy import text

import callcenter.store.models  # noqa: F401  (every table)
from callcenter.bus.memory import MemoryBus
from callcenter.clock import FrozenClock
from callcenter.store.base import Base
from callcenter.store.engine import create_engine, create_sessionmaker
from callcenter.supervision.scheduler import (
    SupervisionConfig,
    SupervisionScheduler,
    scan_deadlines,
)
from callcenter.tickets.calendar import WorkingCalendar
from callcenter.tickets.similarity import features, warm_up

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
SCAN_AT = datetime(2026, 11, 24, 0, 30, tzinfo=UTC)  # Tue 08:30 Beijing
UNITS = 500
ESTATES = ["阳光花园", "锦绣家园", "幸福里", "滨河新村", "和平街", "建设路", "万达广场", "翠湖苑"]
MATTERS = [
    "工地夜间施工噪音扰民",
    "停水一整天没有通知",
    "物业费上涨不合理",
    "楼顶私搭乱建彩钢房",
    "路灯不亮晚上出行不便",
    "垃圾清运不及时有臭味",
    "餐馆油烟扰民",
    "占道经营堵塞交通",
]
OPEN = ("dispatched", "accepted", "in_progress")

COLUMNS = [
    "id",
    "number",
    "status",
    "channel",
    "anonymous",
    "requester_kind",
    "public",
    "ticket_type",
    "content",
    "caller_phone",
    "lead_unit_id",
    "created_at",
    "updated_at",
    "reply_due_at",
    "acceptance_due_at",
    "first_contact_due_at",
    "first_contact_at",
    "extension_days",
    "dispatch_count",
    "return_count",
    "rework_count",
    "duplicate_count",
    "version",
]


def open_status(age: timedelta, rng: random.Random) -> str:
    """Orders of the last day may still wait for acceptance; older ones rarely do."""
    waiting = 0.5 if age < timedelta(days=1) else 0.02
    return "dispatched" if rng.random() < waiting else rng.choice(("accepted", "in_progress"))


def ticket_rows(n: int, calendar: WorkingCalendar, rng: random.Random):
    """Yield COPY records: ticket i created i-th in time order over two years."""
    start = SCAN_AT - timedelta(days=730)
    span = (SCAN_AT - start).total_seconds()
    today = calendar.local_date(SCAN_AT)
    due_days = [calendar.end_of_day(calendar.add_workdays(today, k)) for k in range(0, 16)]
    past_days = [calendar.end_of_day(today - timedelta(days=k)) for k in range(1, 15)]
    for i in range(1, n + 1):
        created = start + timedelta(seconds=span * i / n)
        age_days = (SCAN_AT - created).days
        recent = age_days < 20
        roll = rng.random()
        if recent and roll < 0.55:
            status = open_status(SCAN_AT - created, rng)
        elif not recent and roll < 0.002:
            status = open_status(SCAN_AT - created, rng)  # long-forgotten open orders too
        elif roll < 0.6:
            status = "replied"
        else:
            status = "archived"
        reply_due = acceptance_due = contact_due = contact_at = None
        if status in OPEN:
            # Seeds: on-time completion 96-98 %, timely acceptance 88-99 %.
            reply_due = rng.choice(due_days if rng.random() < 0.95 else past_days)
            acceptance_due = created + timedelta(hours=2)
            contact_due = created + timedelta(hours=1)
            contact_at = None if rng.random() < 0.03 else created + timedelta(minutes=30)
        else:
            reply_due = created + timedelta(days=7)
        content = ""
        if age_days < 8:
            content = f"{rng.choice(ESTATES)}{rng.choice(MATTERS)}，希望尽快处理。"
        yield (
            i,
            f"B{i:010d}",
            status,
            "phone",
            False,
            "individual",
            False,
            rng.choice(["complaint", "help", "consultation"]),
            content,
            f"13{rng.randrange(10**9):09d}",
            rng.randrange(1, UNITS + 1),
            created,
            created,
            reply_due,
            acceptance_due,
            contact_due,
            contact_at,
            0,
            1,
            0,
            0,
            0,
            1,
        )


def terms_row(ticket_id: int, content: str, cache: dict[str, tuple[str, str]]) -> tuple:
    """The ``ticket_terms`` row registration writes (each distinct text segmented once)."""
    if content not in cache:
        found = features(content)
        cache[content] = (
            json.dumps(found.vector, ensure_ascii=False),
            json.dumps(sorted(found.places), ensure_ascii=False),
        )
    return (ticket_id, *cache[content])


async def load(url_asyncpg: str, n: int, calendar: WorkingCalendar, terms: bool) -> float:
    began = time.perf_counter()
    conn = await asyncpg.connect(url_asyncpg)
    try:
        await conn.copy_records_to_table(
            "units",
            records=[(u, f"U{u:04d}", f"单位{u}", True) for u in range(1, UNITS + 1)],
            columns=["id", "code", "name", "active"],
        )
        rng = random.Random(12345)
        batch: list[tuple] = []
        stored: list[tuple] = []
        cache: dict[str, tuple[str, str]] = {}
        for row in ticket_rows(n, calendar, rng):
            batch.append(row)
            if terms and row[8]:  # registered with a text: its terms were stored then
                stored.append(terms_row(row[0], row[8], cache))
            if len(batch) == 50_000:
                await conn.copy_records_to_table("tickets", records=batch, columns=COLUMNS)
                batch.clear()
        if batch:
            await conn.copy_records_to_table("tickets", records=batch, columns=COLUMNS)
        await conn.executemany(
            "INSERT INTO ticket_terms (ticket_id, terms, places)"
            " VALUES ($1, $2::text::json, $3::text::json)",
            stored,
        )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return time.perf_counter() - began


async def bench(n: int, bus_kind: str, cold_terms: bool, profile: bool) -> None:
    name = f"cc_bench_supervision_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(PG_ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        calendar = WorkingCalendar("Asia/Shanghai")
        load_s = await load(
            f"postgresql://postgres@127.0.0.1:5432/{name}", n, calendar, terms=not cold_terms
        )
        sessionmaker = create_sessionmaker(engine)
        clock = FrozenClock(SCAN_AT)
        bus = await make_bus(bus_kind)
        config = SupervisionConfig()
        async with sessionmaker() as session:
            open_count = await session.scalar(
                text(
                    "SELECT count(*) FROM tickets WHERE status IN "
                    "('dispatched','accepted','in_progress')"
                )
            )
            began = time.perf_counter()
            found = await scan_deadlines(session, calendar, clock.now(), config)
            scan_s = time.perf_counter() - began
            plan = (
                (
                    await session.execute(
                        text(
                            "EXPLAIN SELECT id FROM tickets WHERE status IN "
                            "('dispatched','accepted','in_progress') AND reply_due_at < :now"
                        ),
                        {"now": SCAN_AT},
                    )
                )
                .scalars()
                .all()
            )
        warm_up()  # as run_forever does at start
        timings = {}
        for label, at in (
            ("first", SCAN_AT),
            ("repeat", SCAN_AT + timedelta(minutes=5)),
            ("next_day", SCAN_AT + timedelta(days=1)),
        ):
            clock.set(at)
            profiler = cProfile.Profile() if profile and label == "first" else None
            if profiler:
                profiler.enable()
            timings[label] = await timed_run(sessionmaker, bus, clock, calendar, config)
            if profiler:
                profiler.disable()
                pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
        await bus.close()
    finally:
        await engine.dispose()
        admin = await asyncpg.connect(PG_ADMIN)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    report(n, bus_kind, load_s, open_count, scan_s, len(found.rows), plan, timings, cold_terms)


async def timed_run(sessionmaker, bus, clock, calendar, config) -> dict:
    """One ``SupervisionScheduler.run_once`` (what the scheduler runs every working day):
    the reminders (scan, outbox insert, live push) and hotspot detection side by side."""
    scheduler = SupervisionScheduler(sessionmaker, bus, clock, calendar, config)
    began = time.perf_counter()
    result = await scheduler.run_once()
    total = time.perf_counter() - began
    return {
        "total": total,
        "steps": result.durations_ms,
        "found": sum(result.found.values()),
        "created": result.created,
        "pushed": result.pushed,
        "flags": result.flags,
    }


async def make_bus(kind: str):
    if kind == "redis":
        from callcenter.bus.redis import RedisBus

        bus = RedisBus("redis://127.0.0.1:6379/0", prefix=f"ccbench:{uuid.uuid4().hex[:6]}:")
    else:
        bus = MemoryBus()
    await bus.start()
    return bus


def report(n, bus_kind, load_s, open_count, scan_s, reminders, plan, timings, cold_terms) -> None:
    print(f"date {date.today()}  machine {platform.machine()} {platform.python_version()}")
    print(
        f"tickets {n:,}  open {open_count:,}  units {UNITS}  bus {bus_kind}  "
        f"load {load_s:.1f} s  terms {'not stored (cold)' if cold_terms else 'stored'}"
    )
    print(f"deadline scan (queries only): {scan_s * 1000:.0f} ms, {reminders:,} reminders due")
    print("plan of the overdue query:")
    for line in plan:
        print("   ", line)
    for label, t in timings.items():
        steps = t["steps"]
        print(
            f"{label:8s}: total {t['total'] * 1000:6.0f} ms (side by side: reminders "
            f"scan+store+push {steps['reminders']} ms, hotspots {steps['hotspots']} ms)"
            f"  found {t['found']:,}  created {t['created']:,}  pushed {t['pushed']:,}"
            f"  flags {t['flags']}"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--bus", choices=["memory", "redis"], default="memory")
    parser.add_argument(
        "--cold-terms",
        action="store_true",
        help="no stored term vectors (worst case: jieba on the whole window)",
    )
    parser.add_argument("--profile", action="store_true", help="cProfile the first run")
    args = parser.parse_args()
    asyncio.run(bench(args.tickets, args.bus, args.cold_terms, args.profile))


if __name__ == "__main__":
    main()
