"""Fixtures for supervision tests: schema, frozen clock, calendar, bus, orders, a live app."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import callcenter.knowledge.models  # noqa: F401
import callcenter.supervision.models  # noqa: F401
import callcenter.tickets.models  # noqa: F401  (tables for create_all)
from callcenter.auth.testing import bare_app, test_auth_config
from callcenter.bus.memory import MemoryBus
from callcenter.clock import FrozenClock
from callcenter.supervision.http import setup_web
from callcenter.tickets.calendar import WorkingCalendar
from callcenter.tickets.models import Ticket

_numbers = itertools.count(1)
MakeTicket = Callable[..., Awaitable[Ticket]]


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 9, 30, 0, 30, tzinfo=UTC))  # Wed 08:30 in Beijing


@pytest.fixture(scope="session")
def calendar() -> WorkingCalendar:
    return WorkingCalendar("Asia/Shanghai")


@pytest.fixture
async def bus() -> AsyncIterator[MemoryBus]:
    bus = MemoryBus()
    await bus.start()
    yield bus
    await bus.close()


@pytest.fixture
def make_ticket(sessionmaker: async_sessionmaker[AsyncSession],
                clock: FrozenClock) -> MakeTicket:
    """Insert an order as the tickets service would have left it."""

    async def make(**values: Any) -> Ticket:
        n = next(_numbers)
        at = values.pop("created_at", clock.now())
        row = dict(number=f"T{n:08d}", status="dispatched", channel="phone",
                   ticket_type="complaint", content="", created_at=at, updated_at=at,
                   caller_phone=f"139{n:08d}")
        row.update(values)
        async with sessionmaker() as session, session.begin():
            ticket = Ticket(**row)
            session.add(ticket)
        return ticket

    return make


@pytest.fixture
async def client(sessionmaker, clock, bus) -> AsyncIterator[TestClient]:
    app = bare_app(sessionmaker, clock, config=test_auth_config(), bus=bus)
    setup_web(app)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client
