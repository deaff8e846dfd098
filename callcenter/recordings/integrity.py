"""Keeping the evidence honest: the integrity sweep (re-hash every stored file), the
reconciliation of files and rows, and retention (never for open or disputed orders)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from callcenter.recordings.models import Recording
from callcenter.recordings.service import ALERT_TOPIC, RecordingService
from callcenter.recordings.store import StoreError
from callcenter.tickets.models import Ticket, TicketCall, TicketEvent, TicketStatus

log = logging.getLogger(__name__)

SETTLED = frozenset({TicketStatus.ARCHIVED, TicketStatus.MERGED, TicketStatus.NOT_ACCEPTED})
"""Orders whose recordings retention may delete; any other status is still open."""
DISPUTED = frozenset({"unsatisfied"})


@dataclass
class SweepReport:
    checked: int = 0
    bytes: int = 0
    changed: list[int] = field(default_factory=list)
    gone: list[int] = field(default_factory=list)


@dataclass
class Reconciliation:
    files_without_rows: list[str] = field(default_factory=list)
    rows_without_files: list[int] = field(default_factory=list)
    monitor_files_without_rows: list[str] = field(default_factory=list)


class Integrity:
    def __init__(self, recordings: RecordingService) -> None:
        self.r = recordings

    async def sweep(self) -> SweepReport:
        """Re-compute every stored file's SHA-256; a changed or vanished file is flagged on
        its row and its orders, and alerted."""
        report = SweepReport()
        async with self.r.sessionmaker() as session:
            rows = (await session.execute(select(Recording.id, Recording.store_key,
                                                 Recording.sha256).where(
                Recording.status == "stored").order_by(Recording.id))).all()
        intact: list[int] = []
        for recording_id, key, sha in rows:
            try:
                found = await asyncio.to_thread(self.r.store.digest, key)
            except StoreError:
                found = None
            report.checked += 1
            if found is not None and found.sha256 == sha:
                report.bytes += found.size
                intact.append(recording_id)
                continue
            status = "gone" if found is None else "changed"
            (report.gone if found is None else report.changed).append(recording_id)
            await self._mark(recording_id, status,
                             "file deleted from the store" if found is None
                             else f"SHA-256 is now {found.sha256}")
        await self._checked(intact)
        log.info("recordings.sweep checked=%d changed=%d gone=%d", report.checked,
                 len(report.changed), len(report.gone))
        return report

    async def _checked(self, intact: list[int]) -> None:
        """One update per 500 intact files: when each was last found intact."""
        now = self.r.clock.now()
        for at in range(0, len(intact), 500):
            async with self.r.sessionmaker() as session, session.begin():
                await session.execute(update(Recording).where(
                    Recording.id.in_(intact[at:at + 500])).values(checked_at=now))

    async def _mark(self, recording_id: int, status: str, error: str | None) -> None:
        now = self.r.clock.now()
        async with self.r.sessionmaker() as session, session.begin():
            row = await session.get(Recording, recording_id)
            if row is None:
                return
            row.checked_at = now
            row.status, row.last_error = status, error
            tickets = await self.r._flag_tickets(session, row, now)
            payload = self.r._alert(row, tickets)
        await self.r._announce(ALERT_TOPIC, payload)

    async def reconcile(self) -> Reconciliation:
        """Files in the store without a row, rows whose file is not in the store, and files
        in Asterisk's monitor folder that no row names (calls the service never saw end)."""
        result = Reconciliation()
        async with self.r.sessionmaker() as session:
            rows = (await session.execute(select(Recording.id, Recording.store_key,
                                                 Recording.status, Recording.source))).all()
        keys = {key for _, key, _, _ in rows if key}
        stored = set(await asyncio.to_thread(lambda: list(self.r.store.keys())))
        result.files_without_rows = sorted(stored - keys)
        result.rows_without_files = sorted(
            rid for rid, key, status, _ in rows
            if status in ("stored", "changed") and key not in stored)
        monitor = self.r.config.monitor_dir
        if monitor.is_dir():
            sources = {self.r.local_path(source).name for _, _, _, source in rows}
            result.monitor_files_without_rows = sorted(
                p.name for p in monitor.iterdir() if p.is_file() and p.name not in sources)
        return result

    async def apply_retention(self, now: datetime) -> list[int]:
        """Delete files older than ``retention_days`` whose orders are all settled and not
        disputed; the row stays (``deleted``), the deletion is logged and on the timeline."""
        days = self.r.config.retention_days
        if days is None:
            return []
        cutoff = now - timedelta(days=days)
        deleted: list[int] = []
        async with self.r.sessionmaker() as session:
            candidates = (await session.scalars(select(Recording).where(
                Recording.status.in_(("stored", "changed")), Recording.ended_at < cutoff)
                .order_by(Recording.id))).all()
        for row in candidates:
            if await self._protected(row.linkedid):
                continue
            await asyncio.to_thread(self.r.store.delete, row.store_key)
            async with self.r.sessionmaker() as session, session.begin():
                fresh = await session.get(Recording, row.id)
                assert fresh is not None
                fresh.status, fresh.deleted_at = "deleted", now
                for link in (await session.scalars(select(TicketCall).where(
                        TicketCall.linkedid == row.linkedid))).all():
                    session.add(TicketEvent(
                        ticket_id=link.ticket_id, at=now, actor_id=None, actor_role=None,
                        action="recording_deleted", unit_id=None, attachments=[],
                        data={"recording_id": row.id, "retention_days": days}))
            log.info("recordings.deleted recording=%s key=%s ended_at=%s retention_days=%d",
                     row.id, row.store_key, row.ended_at.isoformat(), days)
            deleted.append(row.id)
        return deleted

    async def _protected(self, linkedid: str) -> bool:
        """An order of this call is still open, or disputed (an unsatisfied revisit)."""
        async with self.r.sessionmaker() as session:
            tickets = (await session.execute(select(Ticket.status, Ticket.revisit_result)
                                             .join(TicketCall, TicketCall.ticket_id == Ticket.id)
                                             .where(TicketCall.linkedid == linkedid))).all()
        return any(status not in SETTLED or result in DISPUTED for status, result in tickets)



async def run_with_settings(settings: Any, task: str) -> Any:
    """``reconcile`` or ``sweep`` for the command line, on the configured database and store."""
    from callcenter.clock import SystemClock
    from callcenter.recordings.store import LocalStore
    from callcenter.store.engine import create_sessionmaker, engine_from_settings

    engine = engine_from_settings(settings.database)
    try:
        config = settings.recordings
        service = RecordingService(create_sessionmaker(engine), SystemClock(), config,
                                   LocalStore(config.store_dir))
        integrity = Integrity(service)
        return await (integrity.reconcile() if task == "reconcile" else integrity.sweep())
    finally:
        await engine.dispose()
