"""Two web instances on one Redis show the same live state: the telephony side (simulator
over real AMI, the agent-state listener) writes the live store in Redis and publishes on a
Redis bus; web app A runs from the start, web app B starts after the events, and both
answer the same snapshot, the same wallboard and the same live messages."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.auth.principal import Role
from callcenter.auth.testing import bare_app, bearer, make_user, test_auth_config, token_for
from callcenter.bus.redis import RedisBus
from callcenter.clock import SystemClock
from callcenter.queues.http import setup_web as setup_queues
from callcenter.queues.listeners import AgentStateListener
from callcenter.queues.live import live_store
from callcenter.queues.service import AgentService, Skill
from callcenter.settings import BusConfig, Settings
from callcenter.simulator.actors import Agent as SimAgent
from callcenter.simulator.actors import Caller
from callcenter.simulator.scenario import Simulator
from callcenter.telephony import events as ev
from callcenter.telephony.config import AgiConfig, AmiConfig
from callcenter.telephony.service import Telephony
from callcenter.web.keys import SETTINGS
from tests.queues.conftest import TIME_SCALE, make_agent, queues_config
from tests.queues.test_live import receive


@pytest.fixture
async def stack(pg_sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path,
                redis_url: str, redis_prefix: str) -> AsyncIterator[Any]:
    """The telephony side on Redis, and ``web()`` to start a web instance on the same."""
    settings = Settings(bus=BusConfig(backend="redis", redis_url=redis_url,
                                      redis_prefix=redis_prefix), queues=queues_config())
    clock = SystemClock()
    auth = test_auth_config()
    async with contextlib.AsyncExitStack() as stack:
        sim = Simulator(port=0, time_scale=TIME_SCALE, seed=7, recordings_dir=tmp_path / "m",
                        cdr_dir=tmp_path / "cdr")
        await sim.start()
        stack.push_async_callback(sim.stop)
        bus = RedisBus(redis_url, redis_prefix)
        await bus.start()
        stack.push_async_callback(bus.close)
        telephony = Telephony(AmiConfig(port=sim.ami_port, username="callcenter",
                                        secret=SecretStr("CHANGE_ME"), reconnect_min=0.05,
                                        reconnect_max=0.2, action_timeout=5, pbx="sim-live"),
                              AgiConfig(host="127.0.0.1", port=0), None, clock)
        service = AgentService(pg_sessionmaker, clock, settings.queues, bus)
        listener = AgentStateListener(service, telephony.commands, live_store(bus, settings))
        await listener.start()
        stack.push_async_callback(listener.stop)
        telephony.add_listener(listener)
        synced = asyncio.Event()
        telephony.add_listener(lambda e: isinstance(e, ev.QueuesSnapshot) and synced.set())
        await telephony.start()
        stack.push_async_callback(telephony.stop)
        await asyncio.wait_for(synced.wait(), 10)
        await listener.flush()
        web_buses: list[RedisBus] = []
        stack.push_async_callback(close_buses, web_buses)  # after every web app closed

        async def web() -> TestClient:
            web_bus = RedisBus(redis_url, redis_prefix)
            await web_bus.start()
            web_buses.append(web_bus)
            app = bare_app(pg_sessionmaker, clock, config=auth, bus=web_bus)
            app[SETTINGS] = settings
            setup_queues(app)
            client = TestClient(TestServer(app))
            await client.start_server()
            stack.push_async_callback(client.close)
            return client

        boss = await make_user(pg_sessionmaker, clock, role=Role.SUPERVISOR)
        token = token_for(boss, auth, clock)
        yield sim, telephony, service, listener, web, token


async def close_buses(buses: list[RedisBus]) -> None:
    """The web apps' buses, once every web app has closed (bounded: a close must not hang)."""
    for bus in buses:
        await asyncio.wait_for(bus.close(), 10)


def without_numbering(message: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in message.items() if k not in ("seq", "feed", "at")}


def figures(snapshot: dict[str, Any]) -> list[dict[str, Any]]:
    return [{k: v for k, v in q.items() if k != "longest_wait_seconds"}
            for q in snapshot["wallboard"]["queues"]]


async def test_two_web_instances_on_one_redis_show_the_same_live_state(stack: Any) -> None:
    sim, telephony, service, listener, web, token = stack
    first = await web()
    a = await first.ws_connect("/api/v1/queues/live", params={"access_token": token})
    assert (await receive(a))["type"] == "snapshot"

    sim.add_agent("PJSIP/1001", SimAgent(name="softphone", answer_after=1.0))
    _, agent_id = await make_agent(service, extension="1001",
                                   skills=[Skill("hotline-en", 5)])
    await service.login(telephony.commands, agent_id)
    await service.pause(telephony.commands, agent_id, "break")
    await receive(a, type="agent_state", agent_id=agent_id, state="paused")
    sim.place_call("13800138001", exten="12345001", behaviour=Caller(talk_time=4.0))
    await receive(a, type="queue", queue="hotline-en", waiting=1)
    await listener.flush()

    second = await web()  # started after all of that: it reads Redis
    b = await second.ws_connect("/api/v1/queues/live", params={"access_token": token})
    a2 = await first.ws_connect("/api/v1/queues/live", params={"access_token": token})
    seen_by_b, seen_by_a = await receive(b), await receive(a2)
    assert seen_by_b["feed"] != seen_by_a["feed"]
    assert seen_by_b["queues"] == seen_by_a["queues"]
    assert [(q["queue"], q["waiting"], q["available_agents"]) for q in seen_by_b["queues"]] == [
        ("hotline", 0, 0), ("hotline-en", 1, 0)]
    assert seen_by_b["agents"] == seen_by_a["agents"]
    assert [(x["agent_id"], x["state"], x["reason"]) for x in seen_by_b["agents"]] == [
        (agent_id, "paused", "break")]
    assert figures(seen_by_b) == figures(seen_by_a)
    headers = bearer(token)
    boards = [await (await c.get("/api/v1/queues/wallboard", headers=headers)).json()
              for c in (first, second)]
    assert [[(q["queue"], q["waiting"]) for q in board["queues"]] for board in boards] == [
        [("hotline", 0), ("hotline-en", 1)]] * 2

    await service.unpause(telephony.commands, agent_id)  # the waiting caller is put through
    on_a = await receive(a2, type="agent_state", agent_id=agent_id, state="on_call")
    on_b = await receive(b, type="agent_state", agent_id=agent_id, state="on_call")
    assert without_numbering(on_a) == without_numbering(on_b)
    left_a = await receive(a2, type="queue", queue="hotline-en", waiting=0)
    left_b = await receive(b, type="queue", queue="hotline-en", waiting=0)
    assert without_numbering(left_a) == without_numbering(left_b)
    for ws in (a, a2, b):
        await ws.close()
