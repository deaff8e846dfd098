"""Human-readable ticket numbers: ``YYYYMMDD-NNNNNN``, a counter per local day.

Numbers are reserved from the day's counter row in blocks: one atomic upsert
(``INSERT ... ON CONFLICT DO UPDATE ... RETURNING``, on SQLite and PostgreSQL alike) per
block, in its own short transaction, so concurrent intake does not queue on that row and
several processes never hand out the same number. A process that stops leaves the rest of
its block unused: numbers are unique and increasing per process, not gapless.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.tickets.calendar import WorkingCalendar
from callcenter.tickets.models import TicketDailyCounter


class TicketNumbers:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession],
                 calendar: WorkingCalendar, block: int = 20) -> None:
        self._sessionmaker = sessionmaker
        self._calendar = calendar
        self._block = block
        self._lock = asyncio.Lock()
        self._day = ""
        self._next = self._end = 0

    async def next(self, now: datetime) -> str:
        """The next number of the office's local day of ``now``."""
        day = self._calendar.local_date(now).strftime("%Y%m%d")
        async with self._lock:
            if day != self._day or self._next >= self._end:
                last = await self._reserve(day, self._block)
                self._day, self._next, self._end = day, last - self._block + 1, last + 1
            number = self._next
            self._next += 1
        return f"{day}-{number:06d}"

    async def _reserve(self, day: str, size: int) -> int:
        """Advance the day's counter by ``size``; returns the last number reserved."""
        async with self._sessionmaker() as session, session.begin():
            dialect = session.get_bind().dialect.name
            insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
            stmt = insert(TicketDailyCounter).values(day=day, last=size)
            stmt = stmt.on_conflict_do_update(
                index_elements=[TicketDailyCounter.day],
                set_={"last": TicketDailyCounter.last + size},
            ).returning(TicketDailyCounter.last)
            return int((await session.execute(stmt)).scalar_one())
