"""Batched, idempotent writes of call-log rows, off the event path.

The tracker hands over rows, or what builds them (``submit_later``: a call that changes
several times between two writes is turned into a row once, when its batch is written); the
writer coalesces them per key (the Linkedid) and upserts them in batches from its own task,
so the AMI reader never waits on the database. A failed batch stays pending and is retried
with backoff (the database may be down for a while); a newer version of a row replaces an
older pending one, so nothing is lost and nothing is doubled.

One bad row must not hold the others back forever: text longer than its column is cut to
fit (PostgreSQL would refuse it; an AMI caller ID can be any length), and a batch refused
for its data (SQLSTATE class 22/23) is retried row by row so that only the offending row is
rejected, logged with its Linkedid.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from functools import lru_cache
from itertools import islice
from typing import Any

from sqlalchemy import String, Table, func
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql import Executable

from callcenter.calls.models import CallLog

log = logging.getLogger(__name__)

KEEP_FIRST = ("started_at", "answered_at")
"""Columns whose stored value wins: a resync after a restart only estimates them."""
KEEP_KNOWN = ("caller_number", "called_number", "queue", "agent_name", "agent_interface",
              "ivr_path", "recording_file", "hangup_cause", "queue_outcome", "transfer_type",
              "transferred_to", "ivr_node", "completed_at", "complete_reason")
"""Columns a later, less informed version (a call picked up after a restart) must not erase:
a NULL in the new version keeps the stored value."""
CALL_LOG_KEY = ("pbx", "linkedid")

Row = dict[str, Any]
RowBuilder = Callable[[], Row]
Pending = Row | RowBuilder
"""A pending version of a row: the row itself, or what builds it when its batch is written."""


def _text_limits(table: Table) -> tuple[tuple[str, int], ...]:
    return tuple((column.name, column.type.length) for column in table.columns
                 if isinstance(column.type, String) and column.type.length)


class CallLogWriter:
    """Upserts rows of ``table`` (the call log by default) identified by ``key``."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], *,
                 flush_interval: float = 0.5, batch_size: int = 500,
                 retry_min: float = 0.2, retry_max: float = 10.0,
                 table: Table | None = None, key: tuple[str, ...] = CALL_LOG_KEY) -> None:
        self._sessionmaker = sessionmaker
        self._table = table if table is not None else CallLog.__table__
        self._key = key
        self._limits = _text_limits(self._table)
        self._flush_interval = flush_interval
        self._batch_size = batch_size
        self._retry_min = retry_min
        self._retry_max = retry_max
        self._pending: dict[tuple[Any, ...], Pending] = {}
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._write_lock = asyncio.Lock()
        self.rows_written = 0
        self.rows_rejected = 0
        self.failures = 0

    def submit(self, row: Row, *, urgent: bool = False) -> None:
        """Queue a row (latest version wins); ``urgent`` flushes without waiting the interval."""
        row = _fit(row, self._limits)
        self._queue(self._key_of(row), row, urgent)

    def submit_later(self, key: tuple[Any, ...], build: RowBuilder, *,
                     urgent: bool = False) -> None:
        """Queue the row ``build()`` returns when its batch is written (latest version wins).
        ``key`` is the row's values of the writer's key columns, in order."""
        self._queue(key, build, urgent)

    def _queue(self, key: tuple[Any, ...], entry: Pending, urgent: bool) -> None:
        self._pending[key] = entry
        self._idle.clear()
        if urgent:
            self._wake.set()

    def _key_of(self, row: Row) -> tuple[Any, ...]:
        return tuple(row.get(column) for column in self._key)

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name="call-log-writer")

    async def stop(self, timeout: float = 10.0) -> None:
        """Flush what is pending (retrying for up to ``timeout``), then stop.

        The writer task is asked to finish rather than cancelled: cancelling it in the middle
        of a write can leave a connection inside its transaction, and on SQLite that
        connection's lock then refuses every later write ("database is locked").
        """
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                if self._task is not None:
                    self._stopping = True
                    self._wake.set()
                    await asyncio.shield(self._task)
                await self._flush_until_done()
        if self._task is not None:
            self._task.cancel()  # only still running when the database stayed down
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._pending:
            log.error("calls.rows_not_written count=%d", len(self._pending))

    async def flush(self) -> None:
        """Write everything pending now (retries until it succeeds)."""
        await self._flush_until_done()

    async def _run(self) -> None:
        while not self._stopping:
            # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow the cancel of
            # stop() when the wake-up lands at the same moment, and this loop never ends
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._flush_interval):
                    await self._wake.wait()
            self._wake.clear()
            if not self._pending:
                continue
            try:
                await self._flush_until_done()
            except Exception:  # a bug here must not stop the call log for good
                log.exception("calls.writer_crashed pending=%d", len(self._pending))
                await asyncio.sleep(self._retry_max)

    async def _flush_until_done(self) -> None:
        delay = self._retry_min
        while self._pending:
            if await self._write_batch():
                delay = self._retry_min
                continue
            await asyncio.sleep(delay)
            delay = min(self._retry_max, delay * 2)
        self._idle.set()

    async def _write_batch(self) -> bool:
        async with self._write_lock:
            entries = [(key, self._pending[key])
                       for key in islice(self._pending, self._batch_size)]
            if not entries:
                return True
            batch = self._rows(entries)
            if not batch:
                return True
            try:
                await self._write([row for _, _, row in batch])
            except (SQLAlchemyError, OSError, ConnectionError) as exc:
                self.failures += 1
                if not _refused_for_its_data(exc):
                    log.warning("calls.write_failed rows=%d error=%r", len(batch), exc)
                    return False
                await self._write_one_by_one(batch)
                return True
            self._written(batch)
            return True

    def _rows(self, entries: list[tuple[tuple[Any, ...], Pending]]
              ) -> list[tuple[tuple[Any, ...], Pending, Row]]:
        """(key, pending entry, row) for each entry, building the rows still to be built. A
        row that cannot be built (a bug) is dropped and logged: it must not stop the others."""
        batch = []
        for key, entry in entries:
            if type(entry) is dict:
                batch.append((key, entry, entry))
                continue
            try:
                row = _fit(entry(), self._limits)
            except Exception:
                log.exception("calls.row_not_built key=%s", key)
                self._forget(key, entry)
                self.rows_rejected += 1
                continue
            batch.append((key, entry, row))
        return batch

    async def _write(self, rows: list[Row]) -> None:
        async with self._sessionmaker() as session, session.begin():
            await _upsert(session, self._table, self._key, rows)

    def _forget(self, key: tuple[Any, ...], entry: Pending) -> None:
        if self._pending.get(key) is entry:  # not replaced by a newer version meanwhile
            del self._pending[key]

    def _written(self, batch: list[tuple[tuple[Any, ...], Pending, Row]]) -> None:
        for key, entry, _ in batch:
            self._forget(key, entry)
        self.rows_written += len(batch)

    async def _write_one_by_one(self, batch: list[tuple[tuple[Any, ...], Pending, Row]]
                                ) -> None:
        """Isolate the rows the database refuses; the others are written (or stay pending
        if the database goes away meanwhile)."""
        for key, entry, row in batch:
            try:
                await self._write([row])
            except (SQLAlchemyError, OSError, ConnectionError) as exc:
                if not _refused_for_its_data(exc):
                    log.warning("calls.write_failed rows=1 error=%r", exc)
                    return
                log.error("calls.row_rejected key=%s error=%r", key, exc)
                self._forget(key, entry)
                self.rows_rejected += 1
                continue
            self._written([(key, entry, row)])


def _fit(row: Row, limits: tuple[tuple[str, int], ...]) -> Row:
    """The row with every text cut to its column's length (a copy only if one is cut)."""
    fitted = row
    for column, limit in limits:
        value = row.get(column)
        if isinstance(value, str) and len(value) > limit:
            if fitted is row:
                fitted = dict(row)
            fitted[column] = value[:limit]
    return fitted


def _refused_for_its_data(exc: BaseException) -> bool:
    """True when the database refused the data itself (SQLSTATE class 22 data exception,
    23 integrity violation), as opposed to being unreachable or misconfigured."""
    if isinstance(exc, DataError | IntegrityError):
        return True
    if isinstance(exc, DBAPIError):
        state = str(getattr(exc.orig, "sqlstate", "") or getattr(exc.orig, "pgcode", "") or "")
        return state[:2] in ("22", "23")
    return False


@lru_cache(maxsize=64)
def _upsert_statement(dialect: str, table: Table, key: tuple[str, ...],
                      columns: tuple[str, ...]) -> Executable:
    """The upsert of rows with ``columns``, built once: building it (the ``excluded`` proxies,
    the coalesces, its cache key) costs more than executing it for a small batch."""
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}.get(dialect)
    if insert is None:
        raise RuntimeError(f"call log upsert is not implemented for {dialect}")
    stmt = insert(table)
    update = {}
    for column in columns:
        if column in key or column == "id":
            continue
        new, stored = stmt.excluded[column], table.c[column]
        if column in KEEP_FIRST:
            update[column] = func.coalesce(stored, new)
        elif column in KEEP_KNOWN:
            update[column] = func.coalesce(new, stored)
        else:
            update[column] = new
    return stmt.on_conflict_do_update(index_elements=list(key), set_=update)


async def _upsert(session: AsyncSession, table: Table, key: tuple[str, ...],
                  rows: list[dict[str, Any]]) -> None:
    stmt = _upsert_statement(session.bind.dialect.name, table, key, tuple(rows[0]))
    # one statement, executed for many rows (SQLAlchemy batches the VALUES itself)
    await session.execute(stmt, rows)
