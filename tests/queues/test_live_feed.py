"""The live feed's numbering and catch-up, fed bus events by hand: what a reconnecting viewer
gets for each ``since``, whose messages a viewer sees, a viewer falling behind, and the
store never rolling a record back."""

from __future__ import annotations

import asyncio
from typing import Any

from callcenter.bus.memory import MemoryBus
from callcenter.clock import SystemClock
from callcenter.queues.config import QueuesConfig
from callcenter.queues.feed import OVERFLOW, LiveFeed, Viewer
from callcenter.queues.live import MemoryLiveStore
from callcenter.queues.service import STATE_TOPIC
from callcenter.queues.wallboard import WAITING_TOPIC, Wallboard


def make_feed(buffer_size: int = 1000) -> LiveFeed:
    wallboard = Wallboard(None, SystemClock(), QueuesConfig())  # type: ignore[arg-type]
    return LiveFeed(MemoryBus(), MemoryLiveStore(), wallboard, SystemClock(),
                    buffer_size=buffer_size)


def waiting(n: int, second: int = 0, queue: str = "hotline") -> dict[str, Any]:
    return {"queue": queue, "waiting": n, "oldest_joined_at": None, "available_agents": 0,
            "at": f"2026-12-02T02:00:{second:02d}+00:00"}


def state(agent_id: int, name: str, second: int) -> dict[str, Any]:
    return {"agent_id": agent_id, "member_name": f"A{agent_id}", "interface": "PJSIP/1001",
            "state": name, "reason": None, "queue": None,
            "since": f"2026-12-02T02:00:{second:02d}+00:00", "previous": None}


def test_since_inside_the_buffer_resumes_with_the_missed_messages_only() -> None:
    feed = make_feed()
    for n in range(1, 6):
        feed.on_event(WAITING_TOPIC, waiting(n, n))
    first = feed.open(Viewer(None), since=3, feed=feed.id, board=None)
    assert first[0] == {"type": "resumed", "seq": 5, "feed": feed.id, "missed": 2}
    assert [(m["seq"], m["waiting"]) for m in first[1:]] == [(4, 4), (5, 5)]
    assert feed.open(Viewer(None), since=5, feed=None, board=None)[0]["missed"] == 0


def test_since_too_old_from_another_feed_or_ahead_of_the_feed_gets_a_snapshot() -> None:
    feed = make_feed(buffer_size=3)
    for n in range(1, 7):
        feed.on_event(WAITING_TOPIC, waiting(n, n))
    assert [m["seq"] for m in feed.buffer] == [4, 5, 6]
    assert feed.open(Viewer(None), since=3, feed=feed.id, board=None)[0]["missed"] == 3
    board = {"day": "2026-12-02", "service_level_seconds": 20, "queues": []}
    for since, feed_id in ((2, feed.id), (4, "0123456789ab"), (7, feed.id), (None, None)):
        (snapshot,) = feed.open(Viewer(None), since=since, feed=feed_id, board=board)
        assert snapshot["type"] == "snapshot", (since, feed_id)
        assert (snapshot["seq"], snapshot["wallboard"]) == (6, board)
        assert [(q["queue"], q["waiting"]) for q in snapshot["queues"]] == [("hotline", 6)]


def test_an_agent_viewer_sees_its_own_states_and_screen_pops_and_nothing_else() -> None:
    feed = make_feed()
    me, boss = Viewer(7), Viewer(None)
    (snapshot,) = feed.open(me, since=None, feed=None, board={"x": 1},
                            own=state(7, "logged_out", 0))
    assert {k: v for k, v in snapshot.items() if k != "at"} == {
        "type": "snapshot", "seq": 0, "feed": feed.id, "wallboard": None, "queues": [],
        "agents": [state(7, "logged_out", 0)]}
    feed.open(boss, since=None, feed=None, board=None)
    feed.on_event(STATE_TOPIC, state(8, "available", 1))
    feed.on_event(WAITING_TOPIC, waiting(1, 1))
    feed.on_event("queues.screen_pop.8", {"n": 1})
    feed.on_event(STATE_TOPIC, state(7, "available", 2))
    feed.on_event("queues.screen_pop.7", {"n": 2})
    mine = [me.outbox.get_nowait() for _ in range(me.outbox.qsize())]
    boss_saw = [boss.outbox.get_nowait() for _ in range(boss.outbox.qsize())]
    assert [(m["type"], m["agent_id"]) for m in mine] == [("agent_state", 7),
                                                        ("screen_pop", 7)]
    assert [m["type"] for m in boss_saw] == ["agent_state", "queue", "agent_state"]


def test_a_viewer_that_falls_behind_is_told_to_reconnect_and_gets_nothing_more() -> None:
    feed = make_feed()
    slow = Viewer(None, limit=3)
    feed.open(slow, since=None, feed=None, board=None)
    for n in range(1, 7):
        feed.on_event(WAITING_TOPIC, waiting(n, n))
    queued = [slow.outbox.get_nowait() for _ in range(slow.outbox.qsize())]
    assert [m if m is OVERFLOW else m["seq"] for m in queued] == [1, 2, 3, OVERFLOW]


async def test_a_resync_from_the_store_never_rolls_a_record_back() -> None:
    feed = make_feed()
    feed.on_event(STATE_TOPIC, state(7, "on_call", 5))
    feed.on_event(WAITING_TOPIC, waiting(3, 5))
    await feed.store.put(agents=[state(7, "available", 4)])  # older than what the feed saw
    await feed.store.put(queues=[waiting(1, 4)])
    await feed.store.put(agents=[state(8, "paused", 4)])  # never seen on the bus
    await feed.resync()
    assert (feed.agents[7]["state"], feed.queues["hotline"]["waiting"]) == ("on_call", 3)
    assert feed.agents[8]["state"] == "paused"
    assert [(m["type"], m.get("agent_id")) for m in feed.buffer] == [
        ("agent_state", 7), ("queue", None), ("agent_state", 8)]


async def test_the_feed_follows_the_bus_after_starting_from_the_store() -> None:
    feed = make_feed()
    await feed.store.put(queues=[waiting(2, 1)])
    task = asyncio.create_task(feed.run())
    try:
        await asyncio.wait_for(feed.ready.wait(), 5)
        assert feed.queues["hotline"]["waiting"] == 2
        viewer = Viewer(None)
        feed.open(viewer, since=None, feed=None, board=None)
        await feed.bus.publish(WAITING_TOPIC, waiting(4, 2))
        message = await asyncio.wait_for(viewer.outbox.get(), 5)
        assert (message["type"], message["seq"], message["waiting"]) == ("queue", 2, 4)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
