"""Fixtures for knowledge-base tests: schema, a frozen clock and an app with its routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from aiohttp.test_utils import TestClient, TestServer

import callcenter.knowledge.models  # noqa: F401  (tables for create_all)
from callcenter.auth.testing import bare_app, test_auth_config
from callcenter.clock import FrozenClock
from callcenter.knowledge.http import setup_web


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 9, 30, 0, 30, tzinfo=UTC))


@pytest.fixture
async def client(sessionmaker, clock) -> AsyncIterator[TestClient]:
    app = bare_app(sessionmaker, clock, config=test_auth_config())
    setup_web(app)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client
