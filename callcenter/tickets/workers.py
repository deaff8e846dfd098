"""Tickets' background work: at start, deadlines counted over a provisional calendar year
are counted again once ``config/calendar/<year>.toml`` exists (the workers role runs it once
per deployment, not once per web process)."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.exc import SQLAlchemyError

from callcenter.feature import Runtime, Worker
from callcenter.tickets.recompute import recompute_provisional_deadlines

log = logging.getLogger(__name__)


def workers(runtime: Runtime) -> list[Worker]:
    async def recompute_at_start(stop: asyncio.Event) -> None:
        try:
            await recompute_provisional_deadlines(runtime.sessionmaker, runtime.clock,
                                                  runtime.settings.tickets)
        except SQLAlchemyError:  # the next start tries again; nothing is lost meanwhile
            log.exception("tickets.recompute_failed")
        await stop.wait()

    return [Worker("tickets.recompute", recompute_at_start)]
