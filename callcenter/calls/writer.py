"""Batched, idempotent writes of call-log rows, off the event path.

The tracker hands over row dicts; the writer coalesces them per Linkedid and upserts them in
batches from its own task, so the AMI reader never waits on the database. A failed batch
stays pending and is retried with backoff (the database may be down for a while); a newer
version of a row replaces an older pending one, so nothing is lost and nothing is doubled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from sqlalchemy import func
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.calls.models import CallLog

log = logging.getLogger(__name__)

KEEP_FIRST = ("started_at", "answered_at")
"""Columns whose stored value wins: a resync after a restart only estimates them."""
KEEP_KNOWN = ("caller_number", "called_number", "queue", "agent_name", "agent_interface",
              "ivr_path", "recording_file", "hangup_cause")
"""Columns a later, less informed version (a call picked up after a restart) must not erase:
a NULL in the new version keeps the stored value."""


class CallLogWriter:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], *,
                 flush_interval: float = 0.5, batch_size: int = 500,
                 retry_min: float = 0.2, retry_max: float = 10.0) -> None:
        self._sessionmaker = sessionmaker
        self._flush_interval = flush_interval
        self._batch_size = batch_size
        self._retry_min = retry_min
        self._retry_max = retry_max
        self._pending: dict[str, dict[str, Any]] = {}
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._write_lock = asyncio.Lock()
        self.rows_written = 0
        self.failures = 0

    def submit(self, row: dict[str, Any], *, urgent: bool = False) -> None:
        """Queue a row (latest version wins); ``urgent`` flushes without waiting the interval."""
        self._pending[row["linkedid"]] = row
        self._idle.clear()
        if urgent:
            self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="call-log-writer")

    async def stop(self, timeout: float = 10.0) -> None:
        """Flush what is pending (retrying for up to ``timeout``), then stop."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._flush_until_done()
        if self._pending:
            log.error("calls.rows_not_written count=%d", len(self._pending))

    async def flush(self) -> None:
        """Write everything pending now (retries until it succeeds)."""
        await self._flush_until_done()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._flush_interval)
            self._wake.clear()
            if self._pending:
                await self._flush_until_done()

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
            keys = list(self._pending)[: self._batch_size]
            if not keys:
                return True
            batch = [self._pending[key] for key in keys]
            try:
                async with self._sessionmaker() as session, session.begin():
                    await _upsert(session, batch)
            except (SQLAlchemyError, OSError, ConnectionError) as exc:
                self.failures += 1
                log.warning("calls.write_failed rows=%d error=%r", len(batch), exc)
                return False
            for key, row in zip(keys, batch, strict=True):
                if self._pending.get(key) is row:  # not replaced by a newer version meanwhile
                    del self._pending[key]
            self.rows_written += len(batch)
            return True


async def _upsert(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    dialect = session.bind.dialect.name
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}.get(dialect)
    if insert is None:
        raise RuntimeError(f"call log upsert is not implemented for {dialect}")
    stmt = insert(CallLog)
    update = {}
    for column in rows[0]:
        if column in ("linkedid", "id"):
            continue
        new, stored = stmt.excluded[column], CallLog.__table__.c[column]
        if column in KEEP_FIRST:
            update[column] = func.coalesce(stored, new)
        elif column in KEEP_KNOWN:
            update[column] = func.coalesce(new, stored)
        else:
            update[column] = new
    # one cached statement, executed for many rows (SQLAlchemy batches the VALUES itself)
    await session.execute(stmt.on_conflict_do_update(index_elements=["linkedid"], set_=update),
                          rows)
