"""Acknowledged jobs do not pile up forever; jobs still needed are never dropped.

Both buses keep the newest ``retain_acked`` jobs (for groups created later) and forget older
ones once every group has acknowledged them.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from callcenter.bus import Bus
from callcenter.bus.memory import MemoryBus
from callcenter.bus.redis import RedisBus

REDELIVERY = 0.3
RETAIN = 10


@pytest.fixture(params=["memory", "redis"])
async def bus(request: pytest.FixtureRequest, redis_url: str,
              redis_prefix: str) -> AsyncIterator[Bus]:
    if request.param == "memory":
        made: Bus = MemoryBus(redelivery_timeout=REDELIVERY, retain_acked=RETAIN)
    else:
        made = RedisBus(redis_url, redis_prefix, redelivery_timeout=REDELIVERY,
                        retain_acked=RETAIN, trim_interval=0,
                        client_name=f"cctest-trim-{uuid.uuid4().hex[:8]}")
    await made.start()
    yield made
    await made.close()


async def stored_jobs(bus: Bus, redis_url: str, queue: str) -> int:
    if isinstance(bus, MemoryBus):
        return len(bus._queues[queue].order)
    client = aioredis.Redis.from_url(redis_url)
    try:
        return int(await client.xlen(bus._stream(queue)))  # type: ignore[attr-defined]
    finally:
        await client.aclose()


async def test_acknowledged_jobs_are_forgotten_and_pending_ones_kept(bus: Bus,
                                                                     redis_url: str) -> None:
    for n in range(40):
        await bus.enqueue("q", {"n": n})
    for _ in range(30):
        job = await bus.fetch("q", "g", "c1", timeout=2)
        assert job is not None
        await bus.ack(job, "g")
    # the in-process bus prunes in steps (up to a quarter more), Redis exactly
    assert RETAIN <= await stored_jobs(bus, redis_url, "q") <= RETAIN * 1.25
    held = await bus.fetch("q", "g", "c1", timeout=2)  # its consumer dies before the ack
    assert held is not None and held.payload == {"n": 30}
    done: dict[int, int] = {}
    while (job := await bus.fetch("q", "g", "c2", timeout=REDELIVERY * 5)) is not None:
        await bus.ack(job, "g")
        done[job.payload["n"]] = job.attempts
        if len(done) == 9:  # the newer ones are acknowledged: the held job is still kept
            assert await stored_jobs(bus, redis_url, "q") >= RETAIN
    assert done == {**{n: 1 for n in range(31, 40)}, 30: 2}
