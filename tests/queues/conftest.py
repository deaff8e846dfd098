"""A queues rig: the simulator over real TCP (AMI), the telephony door, the agent-state
listener on a real PostgreSQL database, the in-process bus, and the queues HTTP API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import callcenter.queues.models  # noqa: F401  the queues tables in Base.metadata
from callcenter.auth.config import AuthConfig
from callcenter.auth.models import User
from callcenter.auth.principal import Role
from callcenter.auth.privacy import PiiPolicy
from callcenter.auth.testing import bare_app, bearer, make_user, test_auth_config, token_for
from callcenter.bus.memory import MemoryBus
from callcenter.clock import SystemClock
from callcenter.queues.config import QueuesConfig
from callcenter.queues.http import setup_web as setup_queues
from callcenter.queues.listeners import AgentStateListener
from callcenter.queues.models import AgentStatePeriod
from callcenter.queues.screenpop import ScreenPopListener, ScreenPops
from callcenter.queues.service import AgentService, Skill
from callcenter.queues.visits import VisitRecorder
from callcenter.simulator.actors import Agent as SimAgent
from callcenter.simulator.scenario import Simulator
from callcenter.store.engine import create_engine, create_sessionmaker
from callcenter.telephony import events as ev
from callcenter.telephony.config import AgiConfig, AmiConfig
from callcenter.telephony.service import Telephony
from callcenter.tickets.http import setup_web as setup_tickets
from callcenter.web.keys import TELEPHONY
from callcenter.web.openapi import setup_openapi
from callcenter.web.pages import setup_pages

TIME_SCALE = 0.05
"""Simulated seconds run 20 times faster than wall seconds."""


@pytest.fixture
async def pg_sessionmaker(pg_schema_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(pg_schema_url)
    yield create_sessionmaker(engine)
    await engine.dispose()


@dataclass
class Rig:
    sim: Simulator
    telephony: Telephony
    service: AgentService
    listener: AgentStateListener
    bus: MemoryBus
    states: Any
    """Subscription to ``queues.agent_state``."""
    seen: list[ev.DomainEvent]
    client: TestClient
    auth: AuthConfig
    visits: VisitRecorder
    arrived: asyncio.Event
    """Set at each event the service sees (``seen`` has it)."""
    users: dict[str, User] = field(default_factory=dict)

    async def next_state(self, agent_id: int, state: str, timeout: float = 15.0, *,
                         reason: str | None = None) -> dict[str, Any]:
        """The next published state change of ``agent_id`` to ``state`` (and ``reason``)."""
        async with asyncio.timeout(timeout):
            while True:
                _, event = await self.states.get()
                if event["agent_id"] == agent_id and event["state"] == state and (
                        reason is None or event["reason"] == reason):
                    return event

    async def seen_event(self, kind: type[ev.DomainEvent], timeout: float = 15.0,
                         **match: Any) -> Any:
        """The first event of ``kind`` matching ``match`` the service saw (or sees next)."""
        async with asyncio.timeout(timeout):
            while not (found := self.events(kind, **match)):
                self.arrived.clear()
                await self.arrived.wait()
        return found[0]

    def events(self, kind: type[ev.DomainEvent], **match: Any) -> list[Any]:
        return [e for e in self.seen if isinstance(e, kind)
                and all(getattr(e, k) == v for k, v in match.items())]

    async def periods(self, agent_id: int) -> list[AgentStatePeriod]:
        async with self.service.sessionmaker() as session:
            return list((await session.scalars(select(AgentStatePeriod).where(
                AgentStatePeriod.agent_id == agent_id).order_by(AgentStatePeriod.id))).all())

    def headers(self, user: User) -> dict[str, str]:
        from callcenter.auth.users import principal_for

        return bearer(token_for(principal_for(user), self.auth, SystemClock()))

    async def call(self, user: User, method: str, path: str, body: Any = None, *,
                   expect: int = 200) -> Any:
        response = await self.client.request(method, f"/api/v1{path}", json=body,
                                             headers=self.headers(user))
        data = await response.json()
        assert response.status == expect, data
        return data


async def make_agent(service: AgentService, *, extension: str, skills: list[Skill]) -> tuple[
        User, int]:
    user = await make_user(service.sessionmaker, service.clock, role=Role.AGENT)
    async with service.sessionmaker() as session, session.begin():
        agent = await service.save_agent(session, user_id=user.id, extension=extension,
                                         skills=skills)
        return user, agent.id


async def logged_in_agent(rig: Rig, phone: str, queue: str, behaviour: SimAgent, *,
                          log_in: bool = True) -> tuple[User, int]:
    """A desk agent on softphone ``phone`` (which the simulator answers as ``behaviour``),
    skilled for ``queue`` and, unless ``log_in`` is False, logged in and available."""
    rig.sim.add_agent(phone, behaviour)
    user, agent_id = await make_agent(rig.service, extension=phone.removeprefix("PJSIP/"),
                                      skills=[Skill(queue, 5)])
    if log_in:
        await rig.call(user, "POST", "/agents/me/login", {})
        await rig.next_state(agent_id, "available")
    return user, agent_id


async def start_pops(rig: Rig, auth: AuthConfig) -> ScreenPopListener:
    """The screen-pop listener on the rig's telephony door."""
    listener = ScreenPopListener(
        ScreenPops(rig.service.sessionmaker, rig.service.clock, PiiPolicy(auth)),
        rig.bus, rig.telephony.commands)
    await listener.start()
    rig.telephony.add_listener(listener)
    return listener


@pytest.fixture
async def pops(rig: Rig) -> AsyncIterator[ScreenPopListener]:
    listener = await start_pops(rig, rig.auth)
    yield listener
    await listener.stop()


def queues_config(**overrides: Any) -> QueuesConfig:
    return QueuesConfig(**{"after_call_work_seconds": 1, **overrides})


@pytest.fixture
def config() -> QueuesConfig:
    return queues_config()


@pytest.fixture
async def rig(pg_sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path,
              config: QueuesConfig) -> AsyncIterator[Rig]:
    clock = SystemClock()
    sim = Simulator(port=0, time_scale=TIME_SCALE, seed=7, bad_login_delay=0.05,
                    recordings_dir=tmp_path / "monitor", cdr_dir=tmp_path / "cdr")
    await sim.start()
    bus = MemoryBus()
    states = await bus.subscribe("queues.agent_state").open()
    telephony = Telephony(AmiConfig(port=sim.ami_port, username="callcenter",
                                    secret=SecretStr("CHANGE_ME"), reconnect_min=0.05,
                                    reconnect_max=0.2, action_timeout=5, pbx="sim-queues"),
                          AgiConfig(host="127.0.0.1", port=0), None, clock)
    service = AgentService(pg_sessionmaker, clock, config, bus)
    listener = AgentStateListener(service, telephony.commands)
    await listener.start()
    visits = VisitRecorder(pg_sessionmaker)
    await visits.start()
    seen: list[ev.DomainEvent] = []
    arrived = asyncio.Event()

    def record(event: ev.DomainEvent) -> None:
        seen.append(event)
        arrived.set()

    telephony.add_listener(record)
    telephony.add_listener(listener)
    telephony.add_listener(visits)
    synced = asyncio.Event()
    telephony.add_listener(lambda e: isinstance(e, ev.QueuesSnapshot) and synced.set())
    await telephony.start()
    await asyncio.wait_for(synced.wait(), 10)
    auth = test_auth_config()
    app = bare_app(pg_sessionmaker, clock, config=auth, bus=bus)
    app[TELEPHONY] = telephony
    setup_tickets(app)
    setup_queues(app, config)
    setup_openapi(app)
    setup_pages(app)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield Rig(sim, telephony, service, listener, bus, states, seen, client, auth, visits,
                  arrived)
    finally:
        await client.close()
        await telephony.stop()
        await listener.stop()
        await visits.stop()
        await sim.stop()
