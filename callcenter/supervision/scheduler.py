"""督办: the daily supervision scan and its scheduler.

Every working day at ``run_at`` (office time) the scan looks at open orders only and writes
reminders to the outbox:
- ``due_soon`` to the unit: the reply is due within ``due_soon_working_days`` working days;
- ``overdue`` to the unit and ``overdue_escalation`` to supervisors: the reply is late;
- ``acceptance_missed`` / ``first_contact_missed`` to the unit and to supervisors.
Each reminder is unique per (kind, order, recipient, day), so running the scan twice, or in
two processes, produces nothing new. The scan then pushes the stored reminders live and
looks for hotspots (``hotspots.py``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import false, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.auth.models import Unit
from callcenter.auth.principal import Role
from callcenter.bus import Bus
from callcenter.clock import Clock
from callcenter.supervision.config import SupervisionConfig
from callcenter.supervision.models import NotificationKind, SupervisionRun
from callcenter.supervision.notifications import dedupe_key, push_pending, store_notifications
from callcenter.tickets.calendar import WorkingCalendar
from callcenter.tickets.lifecycle import OPEN_AT_UNIT
from callcenter.tickets.models import Ticket, TicketStatus
from callcenter.tickets.similarity import warm_up

log = logging.getLogger(__name__)

# Orders a unit holds, whose reply deadline runs: the same set as the API's "overdue" and
# "due soon" filters. A promised order (承诺件) is included: its deadline is then the promised
# completion date, and a missed promise is as late as a missed deadline.
UNIT_HOLDS = tuple(sorted(OPEN_AT_UNIT))
SUPERVISORS = str(Role.SUPERVISOR)

__all__ = ["SupervisionConfig", "SupervisionScheduler", "ScanResult", "scan_deadlines"]


@dataclass
class ScanResult:
    day: date
    found: dict[str, int] = field(default_factory=dict)  # reminders due, by kind
    created: int = 0  # new outbox rows (0 on a repeated scan)
    pushed: int = 0
    flags: dict[str, int] = field(default_factory=dict)
    durations_ms: dict[str, int] = field(default_factory=dict)  # by step, and "total"

    def as_json(self) -> dict[str, Any]:
        return {"day": self.day.isoformat(), "found": self.found, "created": self.created,
                "pushed": self.pushed, "flags": self.flags, "durations_ms": self.durations_ms}


class ReminderBuilder:
    """Turns scanned orders into outbox rows for one scan day."""

    def __init__(self, calendar: WorkingCalendar, now: datetime, day: date,
                 unit_names: dict[int, str]) -> None:
        self.calendar, self.now, self.day, self.unit_names = calendar, now, day, unit_names
        self.rows: list[dict[str, Any]] = []
        self.found: dict[str, int] = {}

    def add(self, kind: NotificationKind, ticket_id: int, text: str, *,
            unit_id: int | None = None, role: str | None = None) -> None:
        self.rows.append({
            "dedupe_key": dedupe_key(kind, ticket_id, unit_id=unit_id, role=role, day=self.day),
            "recipient_unit_id": unit_id, "recipient_role": role, "kind": str(kind),
            "ticket_id": ticket_id, "flag_id": None, "day": self.day, "text": text,
            "created_at": self.now, "delivered_at": None, "read_at": None, "read_by": None,
        })
        self.found[kind] = self.found.get(kind, 0) + 1

    def local(self, instant: datetime) -> str:
        return instant.astimezone(self.calendar.zone).strftime("%m月%d日%H:%M")

    def unit(self, unit_id: int) -> str:
        return self.unit_names.get(unit_id, f"单位{unit_id}")


async def scan_deadlines(session: AsyncSession, calendar: WorkingCalendar, now: datetime,
                         config: SupervisionConfig) -> ReminderBuilder:
    """Find every reminder due at ``now``; only open orders are read (see the indexes)."""
    day = calendar.local_date(now)
    units = dict((await session.execute(select(Unit.id, Unit.name))).all())
    out = ReminderBuilder(calendar, now, day, units)
    horizon = calendar.end_of_day(
        calendar.add_workdays(calendar.working_day_of(now), config.due_soon_working_days))
    holds = [str(s) for s in UNIT_HOLDS]
    columns = (Ticket.id, Ticket.number, Ticket.lead_unit_id)

    due = await session.execute(select(*columns, Ticket.reply_due_at).where(
        Ticket.status.in_(holds), Ticket.reply_due_at >= now, Ticket.reply_due_at <= horizon,
        Ticket.lead_unit_id.is_not(None)))
    for ticket_id, number, unit_id, due_at in due:
        out.add(NotificationKind.DUE_SOON, ticket_id,
                f"工单{number}将于{out.local(due_at)}到期，请按时办结并反馈。", unit_id=unit_id)

    late = await session.execute(select(*columns, Ticket.reply_due_at).where(
        Ticket.status.in_(holds), Ticket.reply_due_at < now, Ticket.lead_unit_id.is_not(None)))
    for ticket_id, number, unit_id, due_at in late:
        out.add(NotificationKind.OVERDUE, ticket_id,
                f"工单{number}已超过办理时限（{out.local(due_at)}），请立即办理并反馈。",
                unit_id=unit_id)
        out.add(NotificationKind.OVERDUE_ESCALATION, ticket_id,
                f"超期督办：{out.unit(unit_id)}承办的工单{number}已于{out.local(due_at)}超期。",
                role=SUPERVISORS)

    unaccepted = await session.execute(select(*columns, Ticket.acceptance_due_at).where(
        Ticket.status == str(TicketStatus.DISPATCHED), Ticket.acceptance_due_at < now,
        Ticket.lead_unit_id.is_not(None)))
    for ticket_id, number, unit_id, due_at in unaccepted:
        text = f"工单{number}应于{out.local(due_at)}前接收，{out.unit(unit_id)}尚未接收。"
        out.add(NotificationKind.ACCEPTANCE_MISSED, ticket_id, text, unit_id=unit_id)
        out.add(NotificationKind.ACCEPTANCE_MISSED, ticket_id, text, role=SUPERVISORS)

    # Anonymous callers cannot be contacted: no first-contact deadline, no alert.
    uncontacted = await session.execute(select(*columns, Ticket.first_contact_due_at).where(
        Ticket.status.in_(holds), Ticket.first_contact_at.is_(None),
        Ticket.first_contact_due_at < now, Ticket.lead_unit_id.is_not(None),
        Ticket.anonymous == false()))
    for ticket_id, number, unit_id, due_at in uncontacted:
        text = f"工单{number}应于{out.local(due_at)}前联系市民，{out.unit(unit_id)}尚无联系记录。"
        out.add(NotificationKind.FIRST_CONTACT_MISSED, ticket_id, text, unit_id=unit_id)
        out.add(NotificationKind.FIRST_CONTACT_MISSED, ticket_id, text, role=SUPERVISORS)
    return out


class SupervisionScheduler:
    """Runs the scan once per working day at ``config.run_at``, catching up after downtime.

    Catching up means: when the service starts after the day's run time and no run of that
    day is recorded, it runs at once. Missed earlier days are not replayed: today's scan
    already sees every order that is still open, late or near its deadline.
    """

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], bus: Bus, clock: Clock,
                 calendar: WorkingCalendar, config: SupervisionConfig) -> None:
        self.sessionmaker, self.bus, self.clock = sessionmaker, bus, clock
        self.calendar, self.config = calendar, config

    async def run_once(self) -> ScanResult:
        """Scan now (whatever the day), store reminders, push them, update hotspots.

        The two halves are independent, so they run side by side: the reminders (scan,
        store, push) and the hotspots (mostly clustering in a worker thread, on its own
        session); the supervisors' notices of new hotspots are pushed last.
        """
        began = time.perf_counter()
        now = self.clock.now()
        day = self.calendar.local_date(now)
        timed: dict[str, int] = {}
        result, flags = await asyncio.gather(self._reminders(now, timed),
                                             self._hotspots(now, day, timed))
        result.flags = flags
        result.pushed += await push_pending(self.sessionmaker, self.bus, self.clock)
        result.durations_ms = {**timed, "total": _ms(time.perf_counter() - began)}
        log.info("supervision_scan day=%s found=%s created=%d pushed=%d flags=%s ms=%s",
                 result.day, result.found, result.created, result.pushed, result.flags,
                 result.durations_ms)
        return result

    async def _reminders(self, now: datetime, timed: dict[str, int]) -> ScanResult:
        began = time.perf_counter()
        async with self.sessionmaker() as session, session.begin():
            reminders = await scan_deadlines(session, self.calendar, now, self.config)
            created = await store_notifications(session, reminders.rows)
        result = ScanResult(day=reminders.day, found=reminders.found, created=created)
        result.pushed = await push_pending(self.sessionmaker, self.bus, self.clock)
        timed["reminders"] = _ms(time.perf_counter() - began)
        return result

    async def _hotspots(self, now: datetime, day: date, timed: dict[str, int]
                        ) -> dict[str, int]:
        from callcenter.supervision.hotspots import detect_hotspots

        began = time.perf_counter()
        async with self.sessionmaker() as session, session.begin():
            flags = await detect_hotspots(session, now=now, config=self.config, day=day)
        timed["hotspots"] = _ms(time.perf_counter() - began)
        return flags

    def scheduled_at(self, day: date) -> datetime:
        return datetime.combine(day, self.config.run_at, self.calendar.zone)

    def next_run_at(self, after: datetime) -> datetime:
        """The first scheduled run strictly after ``after``."""
        day = self.calendar.local_date(after)
        while not self.calendar.is_workday(day) or self.scheduled_at(day) <= after:
            day += timedelta(days=1)
        return self.scheduled_at(day)

    async def run_if_due(self) -> ScanResult | None:
        """Run today's scan if it is a working day, past ``run_at`` and not yet done."""
        now = self.clock.now()
        day = self.calendar.local_date(now)
        if not self.calendar.is_workday(day) or now < self.scheduled_at(day):
            return None
        if not await self._claim(day, now):
            return None
        result = await self.run_once()
        async with self.sessionmaker() as session, session.begin():
            await session.execute(update(SupervisionRun).where(SupervisionRun.day == day)
                                  .values(finished_at=self.clock.now(), counts=result.as_json()))
        return result

    async def _claim(self, day: date, now: datetime) -> bool:
        """Take the day's run; False when another process has it or it is done."""
        async with self.sessionmaker() as session, session.begin():
            dialect = session.bind.dialect.name if session.bind else "sqlite"
            insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
            claimed = await session.scalar(
                insert(SupervisionRun).values(day=day, started_at=now, counts={})
                .on_conflict_do_nothing(index_elements=["day"]).returning(SupervisionRun.day))
            if claimed is not None:
                return True
            stale = now - timedelta(minutes=self.config.stale_run_minutes)
            retaken = await session.execute(
                update(SupervisionRun).where(SupervisionRun.day == day,
                                             SupervisionRun.finished_at.is_(None),
                                             SupervisionRun.started_at < stale)
                .values(started_at=now))
            return bool(retaken.rowcount)

    async def run_forever(self, stop: asyncio.Event | None = None) -> None:
        """Check at start (catch-up), then sleep until each next scheduled run."""
        if not self.config.enabled:
            log.warning("supervision_disabled hint=set tickets.supervision.enabled = true")
            return
        stop = stop or asyncio.Event()
        await asyncio.to_thread(warm_up)
        while not stop.is_set():
            try:
                await self.run_if_due()
            except Exception:  # a failed scan must not stop tomorrow's
                log.exception("supervision_scan_failed")
            now = self.clock.now()
            wait = (self.next_run_at(now) - now).total_seconds()
            try:
                await asyncio.wait_for(stop.wait(), timeout=max(1.0, min(wait, 3600.0)))
            except TimeoutError:
                pass


def _ms(seconds: float) -> int:
    return round(seconds * 1000)
