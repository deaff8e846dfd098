"""Provisional deadlines counted again once the State Council's schedule is on file.

A deadline counted over a year the calendar did not know yet is marked provisional
(``calendar.py``); when ``<year>.toml`` is added, ``callcenter tickets recompute-deadlines``
(and the workers role at start) counts those deadlines again from their stored basis and
writes a ``deadline_recomputed`` entry on each order's timeline.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.clock import Clock
from callcenter.tickets.config import TicketsConfig
from callcenter.tickets.service import TicketService


async def recompute_provisional_deadlines(sessionmaker: async_sessionmaker[AsyncSession],
                                          clock: Clock, config: TicketsConfig) -> list[int]:
    """Ids of the orders whose deadline (or provisional marker) changed."""
    return await TicketService.from_config(sessionmaker, clock, config).recompute_provisional()
