"""Bus throughput: publish→subscribe and enqueue→fetch→ack rates, in-process and Redis.

    python bench/bus_throughput.py [--events 20000] [--jobs 5000] [--redis redis://...]

Not a test: it prints rates to compare implementations and machines; record the output in
bench/RESULTS.md with the machine and date.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid

import redis.asyncio as aioredis

from callcenter.bus import Bus
from callcenter.bus.memory import MemoryBus
from callcenter.bus.redis import RedisBus

EVENT = {"linkedid": "1700000000.42", "queue": "hotline", "at": "2026-01-01T08:00:00+08:00"}


async def publish_subscribe(bus: Bus, count: int) -> float:
    """Events per second from the first publish to the subscriber's last read."""
    sub = await bus.subscribe("call.*").open()

    async def consume() -> None:
        seen = 0
        async for _topic, _event in sub:
            seen += 1
            if seen == count:
                return

    reader = asyncio.create_task(asyncio.wait_for(consume(), 60))
    started = time.perf_counter()
    for n in range(count):
        await bus.publish("call.started", {**EVENT, "n": n})
        if n % 500 == 0:
            await asyncio.sleep(0)  # let the reader run, as a live service would
    await reader
    elapsed = time.perf_counter() - started
    await sub.close()
    assert sub.dropped == 0, "the subscriber's queue overflowed: raise subscriber_queue_size"
    return count / elapsed


async def enqueue_ack(bus: Bus, count: int) -> tuple[float, float]:
    """(enqueues per second, fetch+ack per second) with one producer and one consumer."""
    queue = f"bench-{uuid.uuid4().hex[:6]}"
    started = time.perf_counter()
    for n in range(count):
        await bus.enqueue(queue, {"recording": f"/var/spool/{n}.wav"})
    enqueue_rate = count / (time.perf_counter() - started)
    started = time.perf_counter()
    for _ in range(count):
        job = await bus.fetch(queue, "bench", "c1", timeout=5)
        assert job is not None
        await bus.ack(job, "bench")
    return enqueue_rate, count / (time.perf_counter() - started)


async def run(events: int, jobs: int, redis_url: str) -> None:
    prefix = f"bench:{uuid.uuid4().hex[:8]}:"
    buses: list[tuple[str, Bus]] = [
        ("memory", MemoryBus(subscriber_queue_size=events + 1)),
        ("redis", RedisBus(redis_url, prefix, subscriber_queue_size=events + 1,
                           client_name="callcenter-bench")),
    ]
    print(f"{'bus':8} {'publish→subscribe':>20} {'enqueue':>14} {'fetch+ack':>14}")
    try:
        for name, bus in buses:
            await bus.start()
            try:
                fanout = await publish_subscribe(bus, events)
                produced, consumed = await enqueue_ack(bus, jobs)
            finally:
                await bus.close()
            print(f"{name:8} {fanout:>14,.0f} ev/s {produced:>9,.0f} /s {consumed:>9,.0f} /s")
    finally:
        await _delete_prefix(redis_url, prefix)


async def _delete_prefix(redis_url: str, prefix: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--jobs", type=int, default=5_000)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    asyncio.run(run(args.events, args.jobs, args.redis))


if __name__ == "__main__":
    main()
