"""Per-queue Prometheus gauges on ``/metrics``: waiting callers and available agents from
the live records, today's service level from the same figures as the wallboard."""

from __future__ import annotations

from datetime import timedelta

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.auth.principal import Role
from callcenter.auth.testing import bare_app, make_user, test_auth_config, token_for
from callcenter.bus.memory import MemoryBus
from callcenter.clock import FrozenClock
from callcenter.queues.config import QueuesConfig
from callcenter.queues.http import setup_web as setup_queues
from callcenter.queues.wallboard import WAITING_TOPIC
from callcenter.web.health import setup_health
from tests.queues.test_live import receive
from tests.queues.test_wallboard import NOW, seed_day


def gauges(text: str) -> dict[str, float]:
    return {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines()
            if line.startswith("callcenter_queue_")}


async def test_queue_gauges_follow_the_live_records_and_todays_service_level(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await seed_day(sessionmaker)
    clock, bus, auth = FrozenClock(NOW), MemoryBus(), test_auth_config()
    app = bare_app(sessionmaker, clock, config=auth, bus=bus)
    setup_health(app)
    setup_queues(app, QueuesConfig())
    boss = await make_user(sessionmaker, clock, role=Role.SUPERVISOR)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        ws = await client.ws_connect("/api/v1/queues/live",
                                     params={"access_token": token_for(boss, auth, clock)})
        snapshot = await receive(ws, type="snapshot")
        assert [q["service_level"] for q in snapshot["wallboard"]["queues"]] == [50.0, 100.0]
        await bus.publish(WAITING_TOPIC, {
            "queue": "hotline", "waiting": 2, "available_agents": 3, "at": NOW.isoformat(),
            "oldest_joined_at": (NOW - timedelta(seconds=30)).isoformat()})
        await receive(ws, type="queue", queue="hotline", waiting=2)
        text = await (await client.get("/metrics")).text()
        assert gauges(text) == {
            'callcenter_queue_waiting_callers{queue="hotline"}': 2.0,
            'callcenter_queue_available_agents{queue="hotline"}': 3.0,
            'callcenter_queue_service_level_percent{queue="hotline"}': 50.0,
            'callcenter_queue_service_level_percent{queue="hotline-en"}': 100.0}
        await ws.close()
    finally:
        await client.close()
