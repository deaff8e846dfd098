"""One behaviour, two buses: every story here runs on the in-process bus and on Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from callcenter.bus import Bus, Job
from callcenter.bus.memory import MemoryBus
from callcenter.bus.redis import RedisBus

REDELIVERY = 0.3  # seconds a fetched job may stay unacknowledged before it goes back

BusFactory = Callable[..., Awaitable[Bus]]


@pytest.fixture(params=["memory", "redis"])
async def make_bus(request: pytest.FixtureRequest, redis_url: str,
                   redis_prefix: str) -> AsyncIterator[BusFactory]:
    made: list[Bus] = []

    async def factory(queue_size: int = 1000, redelivery: float = REDELIVERY,
                      peer_of: Bus | None = None) -> Bus:
        """A new bus; with ``peer_of``, another process's view of that bus (in-process:
        the same object, since nothing is shared between processes)."""
        if request.param == "memory":
            if peer_of is not None:
                return peer_of
            bus: Bus = MemoryBus(subscriber_queue_size=queue_size, redelivery_timeout=redelivery)
        else:
            bus = RedisBus(redis_url, redis_prefix, subscriber_queue_size=queue_size,
                           redelivery_timeout=redelivery,
                           client_name=f"cctest-bus-{uuid.uuid4().hex[:8]}")
        await bus.start()
        made.append(bus)
        return bus

    yield factory
    for bus in made:
        await bus.close()


@pytest.fixture
async def bus(make_bus: BusFactory) -> Bus:
    return await make_bus()


async def drain_jobs(bus: Bus, queue: str, group: str, consumer: str) -> list[Job]:
    """Fetch and ack until the queue has nothing more for ``group``."""
    jobs = []
    while (job := await bus.fetch(queue, group, consumer, timeout=0.2)) is not None:
        await bus.ack(job, group)
        jobs.append(job)
    return jobs


async def test_every_subscriber_gets_every_event_in_order(bus: Bus) -> None:
    subs = [await bus.subscribe("call.*").open() for _ in range(3)]
    for n in range(50):
        await bus.publish("call.started", {"n": n, "at": "2026-01-01T08:00:00+08:00"})
    for sub in subs:
        got = [await sub.get(timeout=5) for _ in range(50)]
        assert got == [("call.started", {"n": n, "at": "2026-01-01T08:00:00+08:00"})
                       for n in range(50)]


async def test_events_published_together_arrive_in_order_with_single_ones(bus: Bus) -> None:
    sub = await bus.subscribe("queue.*").open()
    await bus.publish("queue.a", {"n": 0})
    await bus.publish_many([("queue.b", {"n": 1}), ("queue.a", {"n": 2}), ("queue.b", {"n": 3})])
    await bus.publish_many([])
    await bus.publish("queue.a", {"n": 4})
    got = [await sub.get(timeout=5) for _ in range(5)]
    assert got == [("queue.a", {"n": 0}), ("queue.b", {"n": 1}), ("queue.a", {"n": 2}),
                   ("queue.b", {"n": 3}), ("queue.a", {"n": 4})]


async def test_patterns_select_topics_and_overlaps_deliver_once(bus: Bus) -> None:
    calls = await bus.subscribe("call.*").open()
    queues = await bus.subscribe("queue.*").open()
    both = await bus.subscribe("call.*", "*.ended", "*").open()
    await bus.publish("call.started", {"n": 1})
    await bus.publish("queue.caller_joined", {"n": 2})
    await bus.publish("call.ended", {"n": 3})
    await bus.publish("end", {})
    assert [await calls.get(5) for _ in range(2)] == [("call.started", {"n": 1}),
                                                     ("call.ended", {"n": 3})]
    assert await queues.get(5) == ("queue.caller_joined", {"n": 2})
    got = [await both.get(5) for _ in range(4)]
    assert [topic for topic, _ in got] == ["call.started", "queue.caller_joined",
                                          "call.ended", "end"]


async def test_a_closed_subscription_stops_iterating(bus: Bus) -> None:
    async with bus.subscribe("call.*") as sub:
        await bus.publish("call.started", {"n": 1})
        async for topic, event in sub:
            assert (topic, event) == ("call.started", {"n": 1})
            break
    await bus.publish("call.started", {"n": 2})
    assert [item async for item in sub] == []


async def test_a_slow_subscriber_loses_its_oldest_events_not_the_newest(
        make_bus: BusFactory) -> None:
    bus = await make_bus(queue_size=3)
    slow = await bus.subscribe("tick").open()
    fast = await bus.subscribe("tick").open()
    for n in range(10):
        await bus.publish("tick", {"n": n})
        assert await fast.get(5) == ("tick", {"n": n})  # the fast one keeps up
    assert [(await slow.get(5))[1]["n"] for _ in range(3)] == [7, 8, 9]
    assert slow.dropped == 7


async def test_jobs_go_to_one_consumer_per_group_and_to_every_group(bus: Bus) -> None:
    ids = [await bus.enqueue("recordings", {"n": n}) for n in range(20)]
    assert len(set(ids)) == 20

    async def consume(name: str) -> list[int]:
        return [job.payload["n"] for job in await drain_jobs(bus, "recordings", "a", name)]

    first, second = await asyncio.gather(consume("a1"), consume("a2"))
    assert sorted(first + second) == list(range(20))  # each job exactly once in group a
    assert first == sorted(first) and second == sorted(second)  # each consumer in order
    others = await drain_jobs(bus, "recordings", "b", "b1")
    assert [job.payload["n"] for job in others] == list(range(20))


async def test_an_acked_job_is_never_delivered_again(bus: Bus) -> None:
    await bus.enqueue("q", {"x": 1})
    job = await bus.fetch("q", "g", "c1", timeout=2)
    assert job is not None and job.payload == {"x": 1} and job.attempts == 1
    await bus.ack(job, "g")
    assert await bus.fetch("q", "g", "c2", timeout=REDELIVERY * 3) is None


async def test_a_job_whose_consumer_died_is_delivered_again(bus: Bus) -> None:
    await bus.enqueue("q", {"ticket": 7})
    taken = asyncio.Event()

    async def dying_consumer() -> None:
        job = await bus.fetch("q", "g", "dies", timeout=2)
        assert job is not None
        taken.set()
        await asyncio.Event().wait()  # hangs until killed, never acks

    victim = asyncio.create_task(dying_consumer())
    await taken.wait()
    victim.cancel()
    job = await bus.fetch("q", "g", "survivor", timeout=REDELIVERY * 10)
    assert job is not None and job.payload == {"ticket": 7} and job.attempts == 2
    await bus.ack(job, "g")
    assert await bus.fetch("q", "g", "survivor", timeout=REDELIVERY * 2) is None


async def test_ping(bus: Bus) -> None:
    assert await bus.ping() is True


async def test_a_redelivered_job_gets_a_fresh_deadline_so_no_third_consumer_takes_it(
        make_bus: BusFactory) -> None:
    """The second consumer owns the job for a whole redelivery timeout, like the first."""
    timeout = 0.6
    bus = await make_bus(redelivery=timeout)
    elsewhere = await make_bus(redelivery=timeout, peer_of=bus)  # a third process's view
    loop = asyncio.get_running_loop()
    await bus.enqueue("q", {"ticket": 8})
    first = await bus.fetch("q", "g", "slow", timeout=2)  # holds it past the timeout
    assert first is not None
    second = await bus.fetch("q", "g", "second", timeout=timeout * 10)
    taken_at = loop.time()
    assert second is not None and (second.id, second.attempts) == (first.id, 2)
    assert await elsewhere.fetch("q", "g", "third", timeout=timeout * 0.6) is None
    third = await elsewhere.fetch("q", "g", "third", timeout=timeout * 10)
    assert third is not None and (third.id, third.attempts) == (first.id, 3)
    assert loop.time() - taken_at >= timeout - 0.05  # not before the second's deadline


async def test_the_first_consumers_late_ack_finishes_the_job_for_its_group(
        bus: Bus) -> None:
    """An ack names the job, not the consumer (Redis XACK): whoever finishes first wins,
    and the other consumer's ack is harmless."""
    await bus.enqueue("q", {"ticket": 9})
    first = await bus.fetch("q", "g", "slow", timeout=2)
    second = await bus.fetch("q", "g", "second", timeout=REDELIVERY * 10)
    assert first is not None and second is not None and second.attempts == 2
    await bus.ack(first, "g")  # the slow consumer finished after all
    assert await bus.fetch("q", "g", "third", timeout=REDELIVERY * 2.5) is None
    await bus.ack(second, "g")
    assert await bus.fetch("q", "g", "third", timeout=REDELIVERY * 1.5) is None


async def test_wants_a_topic_exactly_while_a_subscription_matches_it(bus: Bus) -> None:
    assert not bus.wants("queue.caller_joined")
    async with bus.subscribe("queue.*", "call.ended"):
        assert bus.wants("queue.caller_joined") and bus.wants("call.ended")
        assert not bus.wants("call.started")
        async with bus.subscribe("*"):
            assert bus.wants("call.started")
        assert not bus.wants("call.started")
    assert not bus.wants("queue.caller_joined") and not bus.wants("call.ended")


async def test_a_subscriber_changing_its_event_changes_nobody_elses(bus: Bus) -> None:
    first = await bus.subscribe("call.*").open()
    second = await bus.subscribe("call.*").open()
    event = {"n": 1, "agents": ["1001", {"name": "Li"}], "meta": {"queue": "hotline"}}
    await bus.publish("call.started", event)
    event["agents"][1]["name"] = "changed by the publisher"
    _, mine = await first.get(5)
    mine["agents"][1]["name"] = "changed by the first"
    mine["meta"]["queue"] = "changed"
    mine["n"] = 2
    assert await second.get(5) == ("call.started", {
        "n": 1, "agents": ["1001", {"name": "Li"}], "meta": {"queue": "hotline"}})


async def test_a_subscription_opened_or_closed_between_publishes_is_routed_at_once(
        bus: Bus) -> None:
    early = await bus.subscribe("queue.*").open()
    await bus.publish("queue.caller_joined", {"n": 1})
    assert await early.get(5) == ("queue.caller_joined", {"n": 1})
    late = await bus.subscribe("queue.caller_*").open()  # the topic was routed before
    await bus.publish("queue.caller_joined", {"n": 2})
    assert await early.get(5) == ("queue.caller_joined", {"n": 2})
    assert await late.get(5) == ("queue.caller_joined", {"n": 2})
    await early.close()
    await bus.publish("queue.caller_joined", {"n": 3})
    assert await late.get(5) == ("queue.caller_joined", {"n": 3})
    assert [item async for item in early] == []
