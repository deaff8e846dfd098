"""Reports' background loop: freeze the previous month once it is closed."""

from __future__ import annotations

import asyncio
import logging
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.clock import Clock
from callcenter.feature import Runtime, Worker
from callcenter.reports.context import ReportContext
from callcenter.reports.freeze import freeze_month, latest_snapshot, month_closed, previous_month

log = logging.getLogger(__name__)


class MonthFreezer:
    """Freezes the month before the current one, ``freeze_after_days`` after it ended,
    unless it is frozen already (a correction is a supervisor's explicit act)."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], clock: Clock,
                 context: ReportContext) -> None:
        self.sessionmaker, self.clock, self.context = sessionmaker, clock, context

    async def freeze_if_due(self) -> str | None:
        today = self.clock.now().astimezone(ZoneInfo(self.context.tz)).date()
        month = previous_month(today)
        if not month_closed(month, today, self.context.config.freeze_after_days):
            return None
        async with self.sessionmaker() as session, session.begin():
            if await latest_snapshot(session, month) is not None:
                return None
            await freeze_month(session, self.context, month, self.clock.now())
        return month

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.freeze_if_due()
            except Exception:  # a failed attempt is retried at the next check
                log.exception("reports.freeze_failed")
            try:
                await asyncio.wait_for(stop.wait(),
                                       timeout=self.context.config.freeze_check_seconds)
            except TimeoutError:
                pass


def workers(runtime: Runtime) -> list[Worker]:
    freezer = MonthFreezer(runtime.sessionmaker, runtime.clock,
                           ReportContext.from_settings(runtime.settings))
    return [Worker("reports", freezer.run)]
