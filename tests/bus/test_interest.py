"""``Bus.wants`` across processes on Redis: a publisher skips only topics nobody wants.

Each "process" here is its own RedisBus on the same prefix. The interval of the heartbeat
is long (30 s) where a test proves that the change announcement alone carries the news.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from callcenter.bus.redis import RedisBus
from tests.bus.private_redis import free_port, start_redis, stop_redis

Factory = Callable[..., Awaitable[RedisBus]]


@pytest.fixture
async def make_bus(redis_url: str, redis_prefix: str) -> AsyncIterator[Factory]:
    made: list[RedisBus] = []

    async def factory(url: str = redis_url, interest_interval: float = 30.0) -> RedisBus:
        bus = RedisBus(url, redis_prefix, interest_interval=interest_interval,
                       client_name=f"cctest-interest-{uuid.uuid4().hex[:8]}", reconnect_max=0.2)
        await bus.start()
        made.append(bus)
        return bus

    yield factory
    for bus in made:
        await bus.close()


async def until_wanted(bus: RedisBus, topic: str, expected: bool, within: float = 5.0) -> None:
    """Wait (on the bus's refresh event) until ``bus.wants(topic)`` is ``expected``."""
    async with asyncio.timeout(within):
        while bus.wants(topic) is not expected:
            bus.interest_refreshed.clear()
            await bus.interest_refreshed.wait()


async def test_another_process_subscribing_is_known_at_once_and_closing_too(
        make_bus: Factory) -> None:
    publisher, listener = await make_bus(), await make_bus()
    assert not publisher.wants("queue.caller_joined")
    async with listener.subscribe("queue.*"):
        # Far sooner than the 30 s heartbeat: the change was announced.
        await until_wanted(publisher, "queue.caller_joined", True, within=5)
        assert not publisher.wants("call.started")
    await until_wanted(publisher, "queue.caller_joined", False, within=5)


async def test_a_process_that_stops_renewing_its_patterns_is_forgotten(
        make_bus: Factory, redis_url: str, redis_prefix: str) -> None:
    publisher, listener = await make_bus(), await make_bus(interest_interval=2.0)
    admin = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        async with listener.subscribe("call.*"):
            keys = await admin.smembers(redis_prefix + "interest")
            assert len(keys) == 1
            (key,) = keys
            assert json.loads(await admin.get(key)) == ["call.*"]
            assert 0 < await admin.pttl(key) <= 6000  # three heartbeats, then Redis drops it
            await publisher.refresh_interest()
            assert publisher.wants("call.started")
            await admin.delete(key)  # what Redis does when the heartbeat stops
            await publisher.refresh_interest()
            assert not publisher.wants("call.started")
            assert await admin.smembers(redis_prefix + "interest") == set()
    finally:
        await admin.aclose()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[tuple[int, Path, dict]]:
    port = free_port()
    holder = {"process": start_redis(port, tmp_path)}
    yield port, tmp_path, holder
    if holder["process"].poll() is None:
        stop_redis(holder["process"])


async def test_while_redis_cannot_be_asked_every_topic_is_wanted(
        make_bus: Factory, private_redis: tuple[int, Path, dict]) -> None:
    port, data_dir, holder = private_redis
    publisher = await make_bus(f"redis://127.0.0.1:{port}/0", interest_interval=1.0)
    assert not publisher.wants("channel.hungup")
    stop_redis(holder["process"])
    await publisher.refresh_interest()
    assert publisher.wants("channel.hungup")  # unsure: publish rather than lose
    holder["process"] = start_redis(port, data_dir)
    await publisher.refresh_interest()
    assert not publisher.wants("channel.hungup")
