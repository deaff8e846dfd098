"""A real ticket API over real HTTP, on SQLite and PostgreSQL, with a frozen clock.

The app is a plain ``web.Application`` with auth's and tickets' ``setup_web`` (what the app
factory does too); the schema comes from ``Base.metadata.create_all``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import callcenter.knowledge.models  # noqa: F401  knowledge articles (0004)
import callcenter.store.models  # noqa: F401  every table in Base.metadata
from callcenter.auth.config import AuthConfig
from callcenter.auth.models import User
from callcenter.auth.principal import Principal, Role
from callcenter.auth.testing import bare_app, bearer, make_unit, test_auth_config, token_for
from callcenter.auth.users import principal_for
from callcenter.clock import FrozenClock
from callcenter.tickets.config import ClosingRule, TicketsConfig
from callcenter.tickets.http import TICKETS
from callcenter.tickets.http import setup_web as setup_tickets
from callcenter.tickets.service import TicketService
from callcenter.web.keys import CLOCK
from callcenter.web.openapi import setup_openapi

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(*args: int) -> datetime:
    """A moment in the office's zone (Asia/Shanghai)."""
    return datetime(*args, tzinfo=SHANGHAI)


@pytest.fixture
def clock() -> FrozenClock:
    """Monday 23 November 2026, 10:00 in Shanghai: an ordinary working day."""
    return FrozenClock(local(2026, 11, 23, 10, 0))


@dataclass
class Actor:
    """A logged-in user; a fresh token is issued at the clock's time for every request."""

    principal: Principal
    config: AuthConfig
    clock: FrozenClock

    @property
    def headers(self) -> dict[str, str]:
        return bearer(token_for(self.principal, self.config, self.clock))


@dataclass
class Hotline:
    """The test app and its people: an agent, a supervisor, handlers of units A, B and C."""

    client: TestClient
    clock: FrozenClock
    service: TicketService
    sessionmaker: async_sessionmaker[AsyncSession]
    agent: Actor
    supervisor: Actor
    unit_a: int
    unit_b: int
    unit_c: int
    handler_a: Actor
    handler_b: Actor
    handler_c: Actor
    admin: Actor
    last: Any = field(default=None)

    async def call(self, who: Actor, method: str, path: str, json: Any = None,
                   expect: int | None = None, **params: Any) -> Any:
        url = "/api/v1" + path
        response = await self.client.request(method, url, json=json, headers=who.headers,
                                             params=params or None)
        body = await response.json()
        if expect is not None:
            assert response.status == expect, (response.status, body)
        self.last = response
        return body

    async def new_ticket(self, **overrides: Any) -> dict[str, Any]:
        """A registered complaint (unless overridden) from a named caller."""
        draft = {"channel": "phone", "ticket_type": "complaint",
                 "topic": "city_management", "title": "噪音扰民",
                 "content": "小区旁边工地夜间施工噪音很大，影响休息。",
                 "location": "天山区幸福路8号",
                 "caller": {"name": "张三丰", "phone": "13812345678",
                            "address": "乌鲁木齐市天山区幸福路8号"}}
        draft.update(overrides)
        created = await self.call(self.agent, "POST", "/tickets", draft, expect=201)
        registered = await self.call(self.agent, "POST", f"/tickets/{created['id']}/register",
                                     expect=200)
        return registered["ticket"]

    async def dispatched(self, unit: int | None = None, **overrides: Any) -> dict[str, Any]:
        ticket = await self.new_ticket(**overrides)
        return await self.call(self.supervisor, "POST", f"/tickets/{ticket['id']}/dispatch",
                               {"lead_unit_id": unit or self.unit_a}, expect=200)


async def quick_user(sessionmaker: async_sessionmaker[AsyncSession], clock: FrozenClock,
                     role: Role, unit_id: int | None) -> Principal:
    """A user row without a usable password (no slow hashing): tests act through tokens."""
    since = datetime(2000, 1, 1, tzinfo=SHANGHAI)  # tokens of any test time are valid
    async with sessionmaker() as session, session.begin():
        user = User(username=f"{role}-{uuid.uuid4().hex[:8]}", display_name=str(role),
                    password_hash="!", role=str(role), unit_id=unit_id, active=True,
                    created_at=since, password_changed_at=since)
        session.add(user)
    return principal_for(user)


@pytest.fixture
def tickets_config() -> TicketsConfig:
    """The tickets settings of the test app; a module may override this fixture.

    These tests reply without a click-to-call (they are about the lifecycle, deadlines and
    access): the closing rule is off here and tested in tests/recordings/test_closing_rule.py.
    """
    return TicketsConfig(closing=ClosingRule(contact_required_types=[]))


@pytest.fixture
async def hotline(sessionmaker: async_sessionmaker[AsyncSession], clock: FrozenClock,
                  tickets_config: TicketsConfig) -> AsyncIterator[Hotline]:
    config = test_auth_config()
    app = bare_app(sessionmaker, clock, config=config)
    assert app[CLOCK] is clock
    setup_tickets(app, tickets_config)
    setup_openapi(app)
    units = [(await make_unit(sessionmaker)).id for _ in range(3)]

    async def actor(role: Role, unit_id: int | None = None) -> Actor:
        return Actor(await quick_user(sessionmaker, clock, role, unit_id), config, clock)

    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield Hotline(
            client=client, clock=clock, service=app[TICKETS], sessionmaker=sessionmaker,
            agent=await actor(Role.AGENT), supervisor=await actor(Role.SUPERVISOR),
            unit_a=units[0], unit_b=units[1], unit_c=units[2],
            handler_a=await actor(Role.UNIT_HANDLER, units[0]),
            handler_b=await actor(Role.UNIT_HANDLER, units[1]),
            handler_c=await actor(Role.UNIT_HANDLER, units[2]),
            admin=await actor(Role.ADMIN),
        )
    finally:
        await client.close()
