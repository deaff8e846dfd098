"""A stopping worker stops even when the cancel reaches it inside a database transaction,
which SQLAlchemy reports as its own error (``PendingRollbackError``) instead of a cancel."""

from __future__ import annotations

import asyncio

from sqlalchemy.exc import PendingRollbackError

from callcenter.bus.base import Job
from callcenter.speech.service import QUEUE
from tests.speech.pipeline_rig import Pipeline, decoder_pool, pipeline  # noqa: F401


async def test_a_cancel_turned_into_a_database_error_still_ends_the_consumer(
        pipeline: Pipeline) -> None:  # noqa: F811
    started = asyncio.Event()
    handled: list[int] = []

    async def handle(job: Job, consumer: str) -> bool:
        handled.append(job.payload["transcript_id"])
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise PendingRollbackError("Can't reconnect until invalid transaction is "
                                       "rolled back", None, None) from None
        return True

    pipeline.worker.handle = handle  # type: ignore[method-assign]
    await pipeline.bus.enqueue(QUEUE, {"transcript_id": 1})
    consumer = asyncio.create_task(pipeline.worker._consume("test-0"))
    await asyncio.wait_for(started.wait(), 10)
    consumer.cancel()
    await asyncio.wait_for(asyncio.gather(consumer, return_exceptions=True), 10)
    assert consumer.done() and handled == [1]
