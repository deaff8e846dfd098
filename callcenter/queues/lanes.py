"""A lane: an asyncio queue whose backlog is handled in one go. When Asterisk's events come
faster than one write per event, a lane's cost stays a few round trips per batch instead of
a growing backlog (the agent-state listener's lanes, the queue visits)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

BATCH = 200
"""Items taken from a lane at once at most (one transaction for a batch of writes)."""


async def drain(lane: asyncio.Queue[Any], handle: Callable[[list[Any]], Awaitable[None]]
                ) -> None:
    """Hand everything waiting in ``lane`` (up to ``BATCH``) to ``handle`` at once, for
    ever; a failed batch is logged and the next one still goes."""
    while True:
        batch = [await lane.get()]
        while len(batch) < BATCH and not lane.empty():
            batch.append(lane.get_nowait())
        try:
            await handle(batch)
        except Exception:  # noqa: BLE001 - the next batch must still go
            log.exception("queues.lane_write_failed items=%d", len(batch))
        finally:
            for _ in batch:
                lane.task_done()
