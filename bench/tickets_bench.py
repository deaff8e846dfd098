"""Work-order benchmark: search over 1,000,000 tickets in PostgreSQL, and intake rate.

Usage: ``python bench/tickets_bench.py [--tickets 1000000] [--pg postgresql://...]
[--creation-only] [--no-record]``

1. Creates a dedicated database (``cc_bench_tickets``), the schema from the models, 57 units.
2. Bulk-loads the tickets (the unit assignments of dispatched ones, the search words of
   registered ones) with COPY, secondary indexes built after the load, then ANALYZE.
3. Times filtered, paginated searches through ``TicketService.search`` (the API's code path):
   office filters (status, type+status, topic, overdue, unit, text words) and a unit
   handler's own list, first pages and next pages by cursor. Target p95 < 50 ms.
   ``--creation-only`` skips this step (and the record): use it with a smaller
   ``--tickets`` to time intake changes without reloading a million rows.
4. Times ticket creation through the service layer with concurrent callers (target >= 500/s),
   and full intake (create + register with the duplicate check).
5. Prints the results, appends them to bench/RESULTS.md (unless ``--no-record``), drops
   the database.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import platform
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import text

import callcenter.store.models  # noqa: F401  every table
from callcenter.auth.principal import Principal, Role
from callcenter.clock import SystemClock
from callcenter.store.base import Base
from callcenter.store.engine import create_engine, create_sessionmaker
from callcenter.tickets.calendar import WorkingCalendar
from callcenter.tickets.config import TicketsConfig, load_taxonomy
from callcenter.tickets.schemas import DraftIn, SearchQuery
from callcenter.tickets.service import TicketService
from callcenter.tickets.similarity import search_words

DB = "cc_bench_tickets"
UNITS = 57  # the county of seed 001
RESULTS = Path(__file__).with_name("RESULTS.md")
STATUSES = [
    ("archived", 55),
    ("closed", 14),
    ("replied", 7),
    ("in_progress", 8),
    ("accepted", 3),
    ("dispatched", 4),
    ("promised", 1),
    ("revisited", 3),
    ("registered", 1),
    ("returned", 1),
    ("not_accepted", 1),
    ("escalated", 1),
    ("draft", 1),
]
AT_UNIT = {"archived", "replied", "in_progress", "accepted", "dispatched", "promised", "revisited"}
TYPES = [
    ("consultation", 55),
    ("help", 15),
    ("complaint", 15),
    ("report", 5),
    ("suggestion", 5),
    ("praise", 3),
    ("other", 2),
]
PHRASES = [
    "小区噪音扰民",
    "路灯不亮",
    "拖欠工资",
    "占道经营",
    "供暖不热",
    "垃圾清运不及时",
    "违章建筑",
    "物业收费",
    "公交线路",
    "医保报销",
    "学校招生",
    "餐馆油烟",
]


ID_MARK = 987654  # stands for the ticket id while the words of a phrase's text are computed


def ticket_text(ticket_id: int, phrase: str) -> tuple[str, str]:
    """(title, content) of a loaded ticket."""
    return phrase, f"市民反映{phrase}，请尽快处理。编号{ticket_id}"


def phrase_words() -> dict[str, list[str]]:
    """Search words of each phrase's text with ``ID_MARK`` for the id, computed once by the
    real segmentation (registration writes exactly these); checked on sample ids below."""
    words = {}
    for phrase in PHRASES:
        title, content = ticket_text(ID_MARK, phrase)
        words[phrase] = sorted(search_words(f"{title} {content}"))
    return words


def words_of(ticket_id: int, phrase: str, table: dict[str, list[str]]) -> list[str]:
    number = str(ticket_id)
    return [
        (number if w == str(ID_MARK) else w)
        for w in table[phrase]
        if w != str(ID_MARK) or len(number) <= 6
    ]


def weighted(pairs: list[tuple[str, int]], n: int, rng: random.Random) -> list[str]:
    names, weights = zip(*pairs, strict=True)
    return rng.choices(names, weights=weights, k=n)


async def create_database(admin_dsn: str) -> str:
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{DB}"')
    finally:
        await admin.close()
    return admin_dsn.rsplit("/", 1)[0] + f"/{DB}"


async def drop_database(admin_dsn: str) -> None:
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
    finally:
        await admin.close()


async def create_schema(url: str) -> None:
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    await engine.dispose()


def ticket_rows(
    first: int,
    n: int,
    total: int,
    per_day: dict[str, int],
    topics: list[str],
    now: datetime,
    rng: random.Random,
    table: dict[str, list[str]],
) -> tuple[list[tuple], list[tuple], list[tuple]]:
    """Tickets ``first``..``first+n-1`` of ``total`` spread over the last year, oldest first,
    with the assignments of their units and the search words of registered ones;
    ``per_day`` carries the daily number counters."""
    statuses = weighted(STATUSES, n, rng)
    types = weighted(TYPES, n, rng)
    start = now - timedelta(days=365)
    step = timedelta(days=365) / total
    tickets, assignments, words = [], [], []
    for k in range(n):
        ticket_id = first + k
        created = start + step * ticket_id
        day = (created + timedelta(hours=8)).strftime("%Y%m%d")
        per_day[day] = per_day.get(day, 0) + 1
        status = statuses[k]
        unit = rng.randint(1, UNITS) if status in AT_UNIT else None
        dispatched = created + timedelta(minutes=30) if unit else None
        due = created + timedelta(days=rng.randint(3, 14)) if unit else None
        phrase = PHRASES[ticket_id % len(PHRASES)]
        title, content = ticket_text(ticket_id, phrase)
        tickets.append(
            (
                ticket_id,
                f"{day}-{per_day[day]:06d}",
                status,
                "phone",
                "张三",
                f"13{rng.randint(100000000, 999999999)}",
                "某市某区某路1号",
                False,
                "individual",
                False,
                types[k],
                topics[ticket_id % len(topics)],
                title,
                content,
                unit,
                created,
                created,
                created,
                dispatched,
                due,
                0,
                1 if unit else 0,
                0,
                0,
                0,
                1,
            )
        )
        if unit:
            assignments.append((ticket_id, unit, created, "lead", "replied", True, dispatched))
        if status != "draft":  # registration indexed the words
            words += [(w, created, ticket_id) for w in words_of(ticket_id, phrase, table)]
    return tickets, assignments, words


TICKET_COLUMNS = [
    "id",
    "number",
    "status",
    "channel",
    "caller_name",
    "caller_phone",
    "caller_address",
    "anonymous",
    "requester_kind",
    "public",
    "ticket_type",
    "topic",
    "title",
    "content",
    "lead_unit_id",
    "created_at",
    "updated_at",
    "registered_at",
    "dispatched_at",
    "reply_due_at",
    "extension_days",
    "dispatch_count",
    "return_count",
    "rework_count",
    "duplicate_count",
    "version",
]
ASSIGNMENT_COLUMNS = [
    "ticket_id",
    "unit_id",
    "ticket_created_at",
    "role",
    "state",
    "active",
    "dispatched_at",
]


async def bulk_load(dsn: str, n: int, topics: list[str], now: datetime) -> float:
    """COPY the rows with secondary indexes dropped, then rebuild them; returns seconds."""
    began = time.perf_counter()
    rng = random.Random(12345)
    table = phrase_words()
    for sample in (1, 77, 4321, 999_999, 1_000_001):  # the shortcut equals the real thing
        phrase = PHRASES[sample % len(PHRASES)]
        assert sorted(words_of(sample, phrase, table)) == sorted(
            search_words(" ".join(ticket_text(sample, phrase)))
        ), sample
    conn = await asyncpg.connect(dsn)
    try:
        await conn.copy_records_to_table(
            "units",
            columns=["id", "code", "name", "active"],
            records=[(u, f"U{u:03d}", f"承办单位{u}", True) for u in range(1, UNITS + 1)],
        )
        await conn.execute("SELECT setval('units_id_seq', $1)", UNITS)
        indexes = await conn.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN "
            "('tickets', 'ticket_assignments') AND indexname LIKE 'ix_%'"
            " UNION ALL SELECT indexname, indexdef FROM pg_indexes"
            " WHERE indexname = 'pk_ticket_words'"
        )
        for row in indexes:
            if row["indexname"] == "pk_ticket_words":
                await conn.execute("ALTER TABLE ticket_words DROP CONSTRAINT pk_ticket_words")
            else:
                await conn.execute(f'DROP INDEX "{row["indexname"]}"')
        await conn.execute("SET session_replication_role = replica")  # skip FK triggers
        batch, per_day = 100_000, {}
        for first in range(1, n + 1, batch):
            tickets, assignments, words = ticket_rows(
                first, min(batch, n + 1 - first), n, per_day, topics, now, rng, table
            )
            await conn.copy_records_to_table("tickets", columns=TICKET_COLUMNS, records=tickets)
            await conn.copy_records_to_table(
                "ticket_assignments", columns=ASSIGNMENT_COLUMNS, records=assignments
            )
            await conn.copy_records_to_table(
                "ticket_words", columns=["term", "ticket_created_at", "ticket_id"], records=words
            )
        await conn.copy_records_to_table(
            "ticket_daily_counters", columns=["day", "last"], records=list(per_day.items())
        )
        await conn.execute("SET session_replication_role = origin")
        await conn.execute("SELECT setval('tickets_id_seq', $1)", n)
        for row in indexes:
            if row["indexname"] == "pk_ticket_words":
                await conn.execute(
                    "ALTER TABLE ticket_words ADD CONSTRAINT pk_ticket_words "
                    "PRIMARY KEY (term, ticket_created_at, ticket_id)"
                )
            else:
                await conn.execute(row["indexdef"])
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return time.perf_counter() - began


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def time_searches(
    service: TicketService, topics: list[str], rounds: int
) -> dict[str, list[float]]:
    rng = random.Random(7)
    office = Principal(1, "bench-supervisor", Role.SUPERVISOR, None)
    kinds = {
        "status": lambda: SearchQuery(
            status=[rng.choice(["in_progress", "dispatched", "replied", "accepted"])]
        ),
        "type+status": lambda: SearchQuery(
            ticket_type=rng.choice(["complaint", "report", "help"]), status=["in_progress"]
        ),
        "topic": lambda: SearchQuery(topic=rng.choice(topics)),
        "overdue": lambda: SearchQuery(overdue=True),
        "office unit+status": lambda: SearchQuery(
            unit_id=rng.randint(1, UNITS), status=["in_progress", "accepted"]
        ),
        "text, common word": lambda: SearchQuery(
            text=rng.choice(["路灯", "拖欠工资", "物业费", "供暖", "油烟", "医保 报销"])
        ),
        "text, rare word": lambda: SearchQuery(text=str(rng.randint(1, 999_999))),
        "text+status": lambda: SearchQuery(
            text=rng.choice(["垃圾清运", "公交线路", "噪音"]), status=["in_progress"]
        ),
        "date range": lambda: SearchQuery(
            created_from=datetime.now(UTC) - timedelta(days=rng.randint(30, 300)),
            created_to=datetime.now(UTC) - timedelta(days=rng.randint(0, 29)),
            ticket_type="complaint",
        ),
    }
    timings: dict[str, list[float]] = {name: [] for name in kinds}
    timings["unit handler own list"] = []
    for _ in range(rounds):
        for name, make in kinds.items():
            await _timed_pages(service, office, make(), timings[name])
        unit = rng.randint(1, UNITS)
        handler = Principal(2, "bench-handler", Role.UNIT_HANDLER, unit)
        await _timed_pages(
            service,
            handler,
            SearchQuery(status=[rng.choice(["in_progress", "replied"])]),
            timings["unit handler own list"],
        )
    return timings


async def _timed_pages(
    service: TicketService, principal: Principal, query: SearchQuery, into: list[float]
) -> None:
    """The first page and the next one (keyset cursor), 50 rows each."""
    query.limit = 50
    for _ in range(2):
        began = time.perf_counter()
        result = await service.search(principal, query)
        into.append((time.perf_counter() - began) * 1000)
        if result.next_cursor is None:
            return
        query = query.model_copy(update={"cursor": result.next_cursor})


async def time_creation(
    service: TicketService, total: int, concurrency: int, register: bool
) -> float:
    agent = Principal(1, "bench-agent", Role.AGENT, None)
    queue = list(range(total))
    rng = random.Random(99)

    async def worker() -> None:
        while queue:
            i = queue.pop()
            draft = DraftIn(
                ticket_type="complaint",
                topic="city_management",
                content=f"市民反映{PHRASES[i % len(PHRASES)]}，第{i}次来电",
                caller={"phone": f"139{rng.randint(10000000, 99999999)}"},
            )
            ticket = await service.create_draft(agent, draft)
            if register:
                await service.register(agent, ticket.id)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return total / (time.perf_counter() - began)


def _creator_process(url: str, total: int, concurrency: int, barrier: Any, results: Any) -> None:
    """One service process: build its own engine and service, wait for the others, create."""

    async def run() -> tuple[float, float]:
        engine = create_engine(url, pool_size=concurrency, max_overflow=4)
        config = TicketsConfig()
        service = TicketService(
            create_sessionmaker(engine),
            SystemClock(),
            config,
            load_taxonomy(config.taxonomy_path),
            WorkingCalendar(config.timezone, config.calendar_dir),
        )
        await time_creation(service, 20, 2, False)  # warm the pool and statement caches
        barrier.wait()
        began = time.time()
        await time_creation(service, total, concurrency, False)
        ended = time.time()
        await engine.dispose()
        return began, ended

    results.put(asyncio.run(run()))


def creation_rate_in_processes(url: str, processes: int, total: int, concurrency: int) -> float:
    """Tickets per second created by ``processes`` service processes side by side."""
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(processes), context.Queue()
    each = total // processes
    workers = [
        context.Process(target=_creator_process, args=(url, each, concurrency, barrier, results))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    spans = [results.get() for _ in workers]
    for worker in workers:
        worker.join()
    return each * processes / (max(e for _, e in spans) - min(b for b, _ in spans))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--creates", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument(
        "--creation-only",
        action="store_true",
        help="time ticket creation only (use a small --tickets); no record",
    )
    args = parser.parse_args()
    if args.creation_only:
        args.no_record = True

    dsn = await create_database(args.pg)
    url = dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
    config = TicketsConfig()
    taxonomy = load_taxonomy(config.taxonomy_path)
    topics = sorted(taxonomy.topics)
    try:
        await create_schema(url)
        now = datetime.now(UTC)
        load_seconds = await bulk_load(dsn, args.tickets, topics, now)
        print(
            f"loaded {args.tickets:,} tickets in {load_seconds:.1f} s "
            f"({args.tickets / load_seconds:,.0f} rows/s incl. index build)"
        )
        engine = create_engine(url, pool_size=args.concurrency, max_overflow=4)
        async with engine.begin() as conn:  # users referenced by created_by / actor_id
            await conn.execute(
                text(
                    "INSERT INTO users (id, username, display_name, password_hash, role, active,"
                    " created_at, password_changed_at) VALUES (1, 'bench-agent', 'bench', '!',"
                    " 'agent', true, now(), now()), (2, 'bench-handler', 'bench', '!',"
                    " 'unit_handler', true, now(), now())"
                )
            )
        service = TicketService(
            create_sessionmaker(engine),
            SystemClock(),
            config,
            taxonomy,
            WorkingCalendar(config.timezone, config.calendar_dir),
        )
        await service.search(Principal(1, "warm", Role.SUPERVISOR, None), SearchQuery())
        timings = {} if args.creation_only else await time_searches(service, topics, args.rounds)
        every = [t for values in timings.values() for t in values]
        lines = [
            f"| {name} | {len(v)} | {statistics.median(v):.1f} | {percentile(v, 95):.1f} |"
            for name, v in timings.items()
        ]
        if every:
            lines.append(
                f"| **all searches** | {len(every)} | {statistics.median(every):.1f}"
                f" | **{percentile(every, 95):.1f}** |"
            )
        await time_creation(service, 50, args.concurrency, False)  # warm pool and caches
        create_rate = await time_creation(service, args.creates, args.concurrency, False)
        intake_rate = await time_creation(service, args.creates // 3, args.concurrency, True)
        await engine.dispose()
        multi_rate = creation_rate_in_processes(
            url, args.processes, args.creates, args.concurrency // args.processes or 1
        )
    finally:
        await drop_database(args.pg)

    report = "\n".join(
        [
            "",
            f"## Tickets (work orders) — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
            "",
            f"Machine: {platform.machine()}, {platform.processor() or 'cpu'}, "
            f"Python {platform.python_version()}, PostgreSQL via asyncpg "
            f"(shared 2-core box, other helpers running). `python bench/tickets_bench.py`",
            "",
            f"- Bulk load: {args.tickets:,} tickets (+ unit assignments) by COPY, indexes built "
            f"after: {load_seconds:.1f} s.",
            f"- Ticket creation through `TicketService.create_draft` ({args.concurrency} "
            f"concurrent callers, {args.creates} tickets): **{create_rate:,.0f} tickets/s** "
            f"(target >= 500/s); one process.",
            f"- The same with {args.processes} service processes side by side (the production "
            f"shape; numbers reserved in blocks per process): **{multi_rate:,.0f} tickets/s**.",
            f"- Full intake (create + register with the jieba duplicate check): "
            f"{intake_rate:,.0f} tickets/s.",
            "- Filtered, paginated search (`TicketService.search`, 50 rows, first page + next "
            "page by keyset cursor), latency in ms (target p95 < 50 ms):",
            "",
            "| query | n | p50 ms | p95 ms |",
            "|---|---|---|---|",
            *lines,
            "",
        ]
    )
    print(report)
    if not args.no_record:
        with RESULTS.open("a", encoding="utf-8") as out:
            out.write(report)


if __name__ == "__main__":
    asyncio.run(main())
