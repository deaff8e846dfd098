"""Group commit for intake: new drafts of many agents written in one transaction.

A new order is a ticket row, its first timeline row and the calls it came with. Written one
by one, every order pays a whole transaction (BEGIN, the INSERTs, COMMIT: round trips, a WAL
flush, the statement overhead). Here a draft that arrives while a write is in flight waits
for it and goes into the next one: at low load each draft is written at once (a batch of
one); in a burst the batches grow, so throughput grows with the load instead of queuing
behind it. Each batch is one transaction of three multi-row INSERTs (nothing is ever
half-written); a batch that fails is retried draft by draft, so a bad draft fails alone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.tickets.models import Ticket, TicketCall, TicketEvent

log = logging.getLogger(__name__)

_TICKETS = Ticket.__table__
_EVENTS = TicketEvent.__table__
_CALLS = TicketCall.__table__
# Multi-row INSERT ... RETURNING, ids in the order of the rows given.
_INSERT_TICKETS = insert(_TICKETS).returning(_TICKETS.c.id, sort_by_parameter_order=True)


@dataclass
class Draft:
    """Column values of one new ticket, its ``create`` event and its intake calls."""

    ticket: dict[str, Any]
    event: dict[str, Any]
    calls: Sequence[dict[str, Any]]
    written: asyncio.Future[int]


class DraftWriter:
    """Writes drafts in batches; ``write`` returns the new ticket's id once committed."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession],
                 max_batch: int = 100) -> None:
        self._sessionmaker = sessionmaker
        self._max_batch = max_batch
        self._queue: list[Draft] = []
        self._writer: asyncio.Task[None] | None = None

    async def write(self, ticket: dict[str, Any], event: dict[str, Any],
                    calls: Sequence[dict[str, Any]] = ()) -> int:
        draft = Draft(ticket, event, calls, asyncio.get_running_loop().create_future())
        self._queue.append(draft)
        if self._writer is None or self._writer.done():
            # A task of its own: a caller that goes away must not stop the others' batch.
            self._writer = asyncio.create_task(self._drain())
        return await draft.written

    async def _drain(self) -> None:
        while self._queue:
            batch = self._queue[:self._max_batch]
            del self._queue[:self._max_batch]
            try:
                _settle(batch, await self._insert(batch))
            except Exception as exc:
                if len(batch) == 1:
                    log.warning("intake_write_failed error=%r", exc)
                    _settle(batch, exc)
                    continue
                # One bad draft must not fail the others: retry them one by one.
                log.warning("intake_batch_failed drafts=%d error=%r", len(batch), exc)
                for draft in batch:
                    try:
                        _settle([draft], await self._insert([draft]))
                    except Exception as single:
                        _settle([draft], single)

    async def _insert(self, batch: list[Draft]) -> list[int]:
        async with self._sessionmaker() as session, session.begin():
            rows = await session.execute(_INSERT_TICKETS, [d.ticket for d in batch])
            written = list(zip(batch, [row.id for row in rows], strict=True))
            await session.execute(insert(_EVENTS), [
                dict(d.event, ticket_id=ticket_id) for d, ticket_id in written])
            calls = [dict(call, ticket_id=ticket_id)
                     for d, ticket_id in written for call in d.calls]
            if calls:
                await session.execute(insert(_CALLS), calls)
        return [ticket_id for _, ticket_id in written]


def _settle(batch: list[Draft], outcome: list[int] | Exception) -> None:
    """Hand each waiting caller its ticket id, or the error (a caller gone is skipped)."""
    for index, draft in enumerate(batch):
        if draft.written.done():
            continue
        if isinstance(outcome, Exception):
            draft.written.set_exception(outcome)
        else:
            draft.written.set_result(outcome[index])
