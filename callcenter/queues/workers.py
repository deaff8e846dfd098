"""The queues' background loop: statistics per 15-minute interval into the database."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from callcenter.feature import Runtime, Worker
from callcenter.queues.config import QueuesConfig
from callcenter.queues.history import Range, aggregate

log = logging.getLogger(__name__)

PASS_SECONDS = 60.0
"""How often the open intervals are recomputed."""
LOOKBACK = timedelta(hours=3)
"""Intervals this far back are recomputed at each pass: a call counts in the interval it
started in, once it left the queue, so a long wait fills an interval late."""


class HistoryWorker:
    """Recomputes the recent intervals every ``PASS_SECONDS`` (idempotent: several workers
    processes may run it; a pass that loses a race to another is simply retried)."""

    def __init__(self, runtime: Runtime, config: QueuesConfig) -> None:
        self.sessionmaker = runtime.sessionmaker
        self.clock = runtime.clock
        self.config = config

    async def run_once(self) -> tuple[int, int]:
        now = self.clock.now()
        async with self.sessionmaker() as session, session.begin():
            return await aggregate(session, Range.around(now, LOOKBACK), now,
                                   self.config.service_level_seconds)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                queues, agents = await self.run_once()
                log.debug("queues.history_pass queue_rows=%d agent_rows=%d", queues, agents)
            except Exception:  # noqa: BLE001 - the next pass recomputes the same intervals
                log.exception("queues.history_pass_failed")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(PASS_SECONDS):
                    await stop.wait()


def workers(runtime: Runtime) -> list[Worker]:
    config = getattr(runtime.settings, "queues", None) or QueuesConfig()
    return [Worker("queues-history", HistoryWorker(runtime, config).run)]
