"""The Redis bus rides out Redis going away: cut connections, and a full Redis restart.

Connections are cut with CLIENT KILL on the bus's own client ids (found by its client
name), never touching other users of the shared server. The restart story runs a private
redis-server (append-only file on) on a free port, so stopping it harms no one.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from callcenter.bus.redis import RedisBus
from tests.bus.private_redis import free_port, start_redis, stop_redis

REDELIVERY = 0.3


async def kill_connections(redis_url: str, client_name: str) -> int:
    """CLIENT KILL every connection named ``client_name``; returns how many."""
    admin = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        clients = await admin.client_list()
        ids = [c["id"] for c in clients if c.get("name") == client_name]
        for client_id in ids:
            await admin.client_kill_filter(_id=client_id)
        return len(ids)
    finally:
        await admin.aclose()


async def until_blocked(redis_url: str, client_name: str) -> None:
    """Wait until one of ``client_name``'s connections sits in a blocking XREADGROUP."""
    admin = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        for _ in range(200):
            clients = await admin.client_list()
            if any(c.get("name") == client_name and c.get("cmd") == "xreadgroup"
                   and "b" in c.get("flags", "") for c in clients):
                return
            await asyncio.sleep(0.01)
    finally:
        await admin.aclose()
    raise AssertionError("the consumer never blocked in XREADGROUP")


async def until_delivered(bus: RedisBus, sub, topic: str) -> None:
    """Publish ``topic`` until the subscription sees it (the reader has resubscribed)."""
    for _ in range(100):
        await bus.publish(topic, {"probe": True})
        try:
            while (await sub.get(timeout=0.1))[0] != topic:
                pass
            return
        except TimeoutError:
            continue
    raise AssertionError(f"{topic} never arrived after reconnect")


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    port = free_port()
    process = start_redis(port, tmp_path)
    holder = {"process": process}
    yield port, tmp_path, holder  # type: ignore[misc]
    if holder["process"].poll() is None:
        stop_redis(holder["process"])


async def test_killed_connections_lose_no_job_and_events_resume(redis_url: str,
                                                                redis_prefix: str) -> None:
    name = f"cctest-kill-{uuid.uuid4().hex[:8]}"
    bus = RedisBus(redis_url, redis_prefix, redelivery_timeout=REDELIVERY, client_name=name)
    await bus.start()
    try:
        sub = await bus.subscribe("call.*").open()
        await until_delivered(bus, sub, "call.before")
        for n in range(10):
            await bus.enqueue("q", {"n": n})
        held = await bus.fetch("q", "g", "c1", timeout=2)  # in hand, never acked
        assert held is not None

        blocked = asyncio.create_task(bus.fetch("q2", "g", "c2", timeout=5))
        await until_blocked(redis_url, name)
        assert await kill_connections(redis_url, name) >= 2  # pool + pub/sub reader
        await bus.enqueue("q2", {"after": "kill"})
        late = await blocked
        assert late is not None and late.payload == {"after": "kill"}

        await until_delivered(bus, sub, "call.after")
        seen = []
        while (job := await bus.fetch("q", "g", "c3", timeout=REDELIVERY * 5)) is not None:
            await bus.ack(job, "g")
            seen.append(job.payload["n"])
        assert sorted(seen) == list(range(10))  # the held job came back too
    finally:
        await bus.close()


async def test_a_redis_restart_loses_no_job(private_redis, redis_prefix: str) -> None:
    port, data_dir, holder = private_redis
    url = f"redis://127.0.0.1:{port}/0"
    bus = RedisBus(url, redis_prefix, redelivery_timeout=REDELIVERY,
                   client_name="cctest-restart", reconnect_max=0.2)
    await bus.start()
    try:
        sub = await bus.subscribe("call.*").open()
        for n in range(5):
            await bus.enqueue("q", {"n": n})
        done = []
        for _ in range(2):
            job = await bus.fetch("q", "g", "c1", timeout=2)
            await bus.ack(job, "g")
            done.append(job.payload["n"])
        held = await bus.fetch("q", "g", "c1", timeout=2)  # dies with Redis, never acked
        assert held is not None

        stop_redis(holder["process"])
        assert await bus.ping() is False
        assert await bus.fetch("q", "g", "c2", timeout=0.3) is None  # absorbed, not raised
        holder["process"] = start_redis(port, data_dir)
        assert await bus.ping() is True

        while (job := await bus.fetch("q", "g", "c2", timeout=REDELIVERY * 5)) is not None:
            await bus.ack(job, "g")
            done.append(job.payload["n"])
        assert sorted(done) == list(range(5))
        await until_delivered(bus, sub, "call.after_restart")
    finally:
        await bus.close()
