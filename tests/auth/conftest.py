"""Fixtures for auth tests: a schema on SQLite or PostgreSQL, a frozen clock, a live app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.auth.config import AuthConfig
from callcenter.auth.testing import bare_app, test_auth_config
from callcenter.clock import FrozenClock


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 11, 23, 2, 0, tzinfo=UTC))  # Monday 10:00 in Beijing


@pytest.fixture
def auth_config() -> AuthConfig:
    return test_auth_config(login_max_attempts=3, login_max_attempts_per_ip=8,
                            login_window_seconds=600, token_ttl_minutes=60)


@pytest.fixture
async def client(sessionmaker: async_sessionmaker[AsyncSession], clock: FrozenClock,
                 auth_config: AuthConfig) -> AsyncIterator[TestClient]:
    app = bare_app(sessionmaker, clock, config=auth_config)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client
