"""Reports benchmark: the monthly report over 1,000,000 tickets and 3,000,000 calls.

Usage: ``python bench/reports_bench.py [--tickets 1000000] [--calls 3000000]
[--pg postgresql://postgres@127.0.0.1:5432/postgres] [--no-record] [--keep]``

1. Creates a dedicated database (``cc_bench_reports``) with the schema from the models and
   the 57 units of seed 001 (17 towns, 40 departments).
2. Generates a year of data (November 2025 to October 2026) inside PostgreSQL with
   ``generate_series`` (no rows pass through Python): tickets, one lead hold per
   dispatched order (3 % re-dispatched to a second unit), revisits, reworks, extensions,
   and the call log; then ANALYZE.
3. Times the figures of October 2026 (``ReportContext.figures``: every KPI, ranking,
   breakdown with month-on-month and year-on-year, call statistics; all in SQL), then the
   whole report (figures + HTML + charts + PDF), best and median of 3 runs, and the
   process's peak memory (max RSS).
4. Prints the results, appends them to bench/RESULTS.md (unless ``--no-record``), drops
   the database.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import resource
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

import callcenter.store.models  # noqa: F401  every table
from callcenter.reports.context import ReportContext
from callcenter.reports.monthly import MonthFigures, write_report
from callcenter.settings import load_settings
from callcenter.store.base import Base
from callcenter.store.engine import create_engine, create_sessionmaker

DB = "cc_bench_reports"
RESULTS = Path(__file__).with_name("RESULTS.md")
MONTH = "2026-10"
START = "2025-11-01 00:00:00+08"  # a year of data ending with October 2026

UNITS_SQL = """
INSERT INTO units (id, code, name, active, kind)
SELECT i, 'u' || i, CASE WHEN i <= 17 THEN '镇' || i ELSE '局' || i END, true,
       CASE WHEN i <= 17 THEN 'town' ELSE 'department' END
FROM generate_series(1, 57) AS i
"""
TICKETS_SQL = """
INSERT INTO tickets (id, number, status, channel, ticket_type, topic, content, location,
                     created_at, updated_at, registered_at, lead_unit_id, anonymous,
                     requester_kind, public, extension_days, dispatch_count, return_count,
                     rework_count, duplicate_count, order_level, urgency, deadline_provisional,
                     overdue_since, version)
SELECT i, 'B' || i,
       (ARRAY['archived','archived','archived','replied','accepted','closed'])[1 + i % 6],
       (ARRAY['phone','phone','phone','wechat','mayor_mailbox','app','web'])[1 + i % 7],
       (ARRAY['complaint','help','consultation','report','suggestion'])[1 + i % 5],
       (ARRAY['city_appearance','noise_nuisance','transport','public_transport','housing',
              'environment','health','education'])[1 + i % 8],
       '', 'place-' || (i % 500), t, t, t,
       CASE WHEN i % 6 = 5 THEN NULL ELSE 1 + i % 57 END, i % 50 = 0,
       'individual', false, 0, 1, 0, 0, 0, 'own', 'normal', false,
       CASE WHEN i % 40 = 0 THEN t + interval '6 days' END, 1
FROM (SELECT i, timestamptz '{start}' + (i * interval '365 days') / {n} AS t
      FROM generate_series(1, {n}) AS i) AS s
"""
HOLDS_SQL = """
INSERT INTO ticket_assignments (id, ticket_id, unit_id, ticket_created_at, role, state, active,
    dispatched_at, accepted_at, acceptance_due_at, accepted_on_time, first_contact_due_at,
    first_contact_at, first_contact_on_time, reply_due_at, replied_at, replied_on_time,
    extension_days, rework_count, end_reason, ended_at)
SELECT t.id + {offset}, t.id, CASE WHEN {second} THEN 1 + (t.id + 7) % 57 ELSE t.lead_unit_id END,
       t.created_at, 'lead', 'replied', NOT {redispatched},
       t.created_at + interval '1 hour' * {second_int},
       t.created_at + interval '2 hours', t.created_at + interval '3 hours', t.id % 11 <> 0,
       t.created_at + interval '1 day', t.created_at + interval '5 hours', t.id % 9 <> 0,
       t.created_at + interval '5 days',
       CASE WHEN t.status = 'accepted' THEN NULL ELSE t.created_at + interval '3 days' END,
       CASE WHEN t.status = 'accepted' THEN NULL ELSE t.id % 13 <> 0 END,
       0, 0, CASE WHEN {redispatched} THEN 'redispatched' END,
       CASE WHEN {redispatched} THEN t.created_at + interval '1 hour' END
FROM tickets t WHERE t.lead_unit_id IS NOT NULL AND {which}
"""
REVISITS_SQL = """
INSERT INTO ticket_revisits (ticket_id, unit_id, result, attempts, at)
SELECT id, lead_unit_id,
       (ARRAY['satisfied','satisfied','satisfied','basically_satisfied','unsatisfied',
              'unreachable'])[1 + id % 6], 1, created_at + interval '4 days'
FROM tickets WHERE status = 'archived' AND lead_unit_id IS NOT NULL
"""
REWORKS_SQL = """
INSERT INTO ticket_reworks (ticket_id, assignment_id, unit_id, basis, reason, reply_due_at, at)
SELECT id, id, lead_unit_id, 'reply_rejected', 'r', created_at + interval '8 days',
       created_at + interval '3 days'
FROM tickets WHERE lead_unit_id IS NOT NULL AND id % 20 = 0
"""
EXTENSIONS_SQL = """
INSERT INTO ticket_extensions (ticket_id, unit_id, days, reason, requested_at, decision)
SELECT id, lead_unit_id, 3, 'r', created_at + interval '2 days',
       CASE WHEN id % 2 = 0 THEN 'approved' ELSE 'refused' END
FROM tickets WHERE lead_unit_id IS NOT NULL AND id % 50 = 1
"""
CALLS_SQL = """
INSERT INTO call_log (linkedid, pbx, direction, queue, queue_outcome, started_at, ended_at,
    wait_seconds, talk_seconds, hold_seconds, disposition, ivr_node, end_estimated,
    start_estimated, answer_estimated, backfilled)
SELECT 'L' || i, 'default', CASE WHEN i % 10 = 0 THEN 'outbound' ELSE 'inbound' END,
       CASE WHEN i % 17 = 3 THEN NULL ELSE 'hotline' END,
       (ARRAY['answered','answered','answered','answered','answered','abandoned','timeout'])
           [1 + i % 7],
       t, t + interval '3 minutes', i % 40, 60 + i % 300, i % 4 * 5,
       CASE WHEN i % 17 = 3 THEN 'ivr_hangup'
            ELSE (ARRAY['answered','answered','answered','answered','answered','abandoned',
                        'no_answer'])[1 + i % 7] END,
       CASE WHEN i % 17 = 3 THEN 'menu' END, false, false, false, false
FROM (SELECT i, timestamptz '{start}' + (i * interval '365 days') / {n} AS t
      FROM generate_series(1, {n}) AS i) AS s
"""


async def admin_execute(dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def generate(dsn: str, tickets: int, calls: int) -> dict[str, float]:
    timings: dict[str, float] = {}
    conn = await asyncpg.connect(dsn)
    try:
        steps = [
            ("units", UNITS_SQL),
            ("tickets", TICKETS_SQL.format(start=START, n=tickets)),
            ("holds", HOLDS_SQL.format(offset=0, second="false", second_int=0,
                                       redispatched="t.id % 33 = 0", which="true")),
            ("second holds", HOLDS_SQL.format(offset=tickets, second="true", second_int=2,
                                              redispatched="false", which="t.id % 33 = 0")),
            ("revisits", REVISITS_SQL), ("reworks", REWORKS_SQL),
            ("extensions", EXTENSIONS_SQL),
            ("calls", CALLS_SQL.format(start=START, n=calls)),
            ("analyze", "ANALYZE"),
        ]
        for name, sql in steps:
            began = time.perf_counter()
            await conn.execute(sql)
            timings[name] = time.perf_counter() - began
            print(f"  generated {name} in {timings[name]:.1f} s", flush=True)
    finally:
        await conn.close()
    return timings


async def measure(url: str, runs: int) -> tuple[list[float], list[float], dict]:
    settings = load_settings(None, env={})
    context = ReportContext.from_settings(settings)
    engine = create_engine(url)
    sessionmaker = create_sessionmaker(engine)
    figure_times, report_times, figures = [], [], {}
    try:
        for _ in range(runs):
            began = time.perf_counter()
            async with sessionmaker() as session:
                figures = await context.figures(session, context.month(MONTH))
            figure_times.append(time.perf_counter() - began)
            with tempfile.TemporaryDirectory() as out:
                await asyncio.to_thread(write_report, MonthFigures(MONTH, figures, None, []),
                                        context, Path(out))
            report_times.append(time.perf_counter() - began)
    finally:
        await engine.dispose()
    return figure_times, report_times, figures


async def main(args: argparse.Namespace) -> None:
    base = args.pg.rsplit("/", 1)[0]
    dsn = f"{base}/{DB}"
    url = dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
    await admin_execute(args.pg, f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
    await admin_execute(args.pg, f'CREATE DATABASE "{DB}"')
    try:
        engine = create_engine(url)
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        await engine.dispose()
        began = time.perf_counter()
        await generate(dsn, args.tickets, args.calls)
        generated = time.perf_counter() - began
        figure_times, report_times, figures = await measure(url, args.runs)
    finally:
        if not args.keep:
            await admin_execute(args.pg, f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    office = figures["office"]
    lines = [
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {platform.processor() or platform.machine()},"
        f" {os.cpu_count()} cores, shared (load average {os.getloadavg()[0]:.1f} at the end);"
        " Python "
        f"{platform.python_version()}; PostgreSQL on 127.0.0.1. The first of the runs "
        "imports matplotlib and WeasyPrint (cold start).",
        f"{args.tickets:,} tickets and {args.calls:,} calls over 12 months (generated in SQL "
        f"in {generated:.0f} s); October 2026: {office['received']:,} orders to units, "
        f"{figures['calls']['inbound']:,} inbound calls.",
        "",
        "| measure | best | median |",
        "|---|---|---|",
        f"| figures of the month (every KPI, ranking, breakdown, call statistics; SQL) | "
        f"{min(figure_times):.2f} s | {statistics.median(figure_times):.2f} s |",
        f"| **the monthly report (figures + HTML + charts + PDF)** | "
        f"**{min(report_times):.2f} s** | {statistics.median(report_times):.2f} s |",
        f"| peak memory of the process (max RSS) | {peak_mb:.0f} MB | |",
    ]
    print("\n".join(lines))
    if not args.no_record:
        record(lines)


def record(lines: list[str]) -> None:
    """Replace (or add) this benchmark's section of RESULTS.md, leaving the others."""
    text = RESULTS.read_text(encoding="utf-8")
    head = "## Reports (`python bench/reports_bench.py`)"
    section = head + "\n\n" + "\n".join(lines) + "\n"
    if head in text:
        before, rest = text.split(head, 1)
        after = rest.split("\n## ", 1)
        text = before + section + ("\n## " + after[1] if len(after) > 1 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    RESULTS.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=3_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the database (to explain)")
    asyncio.run(main(parser.parse_args()))
