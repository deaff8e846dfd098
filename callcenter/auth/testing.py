"""Helpers for tests of any feature: units, users, tokens and a bare test app.

Tokens are signed with the same code as the login route; use ``login_over_http`` when the
test is about logging in, ``token_for`` when it only needs an authenticated caller.
"""

from __future__ import annotations

import itertools
from typing import Any

from aiohttp import web
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.auth.config import AuthConfig
from callcenter.auth.models import Unit, User
from callcenter.auth.principal import Principal, Role
from callcenter.auth.tokens import issue_token
from callcenter.auth.users import create_unit, create_user, principal_for
from callcenter.clock import Clock
from callcenter.web.errors import errors_middleware
from callcenter.web.keys import BUS, CLOCK, SESSIONMAKER

TEST_PASSWORD = "correct horse battery staple"
_counter = itertools.count(1)


def test_auth_config(**overrides: Any) -> AuthConfig:
    """An AuthConfig with a fixed test secret (never used outside tests)."""
    values: dict[str, Any] = {"token_secret": SecretStr("test-secret-" + "x" * 40)}
    values.update(overrides)
    return AuthConfig(**values)


test_auth_config.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


async def make_unit(sessionmaker: async_sessionmaker[AsyncSession], *, code: str | None = None,
                    name: str | None = None) -> Unit:
    n = next(_counter)
    async with sessionmaker() as session, session.begin():
        return await create_unit(session, code=code or f"U{n:04d}", name=name or f"测试单位{n}")


async def make_user(sessionmaker: async_sessionmaker[AsyncSession], clock: Clock, *,
                    role: Role, unit_id: int | None = None, username: str | None = None,
                    password: str = TEST_PASSWORD) -> User:
    """Create a user; a unit handler without ``unit_id`` gets a fresh unit."""
    if role is Role.UNIT_HANDLER and unit_id is None:
        unit_id = (await make_unit(sessionmaker)).id
    async with sessionmaker() as session, session.begin():
        return await create_user(session, username=username or f"{role}{next(_counter)}",
                                 password=password, role=role, clock=clock, unit_id=unit_id)


def token_for(user: User | Principal, config: AuthConfig, clock: Clock) -> str:
    principal = user if isinstance(user, Principal) else principal_for(user)
    return issue_token(principal, config, clock)[0]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def make_principal(sessionmaker: async_sessionmaker[AsyncSession], clock: Clock,
                         config: AuthConfig, *, role: Role, unit_id: int | None = None,
                         ) -> tuple[Principal, dict[str, str]]:
    """A user of ``role`` and the Authorization headers to act as them."""
    user = await make_user(sessionmaker, clock, role=role, unit_id=unit_id)
    return principal_for(user), bearer(token_for(user, config, clock))


async def login_over_http(client: Any, username: str, password: str = TEST_PASSWORD) -> str:
    """Log in through ``POST /api/v1/auth/login`` with an aiohttp TestClient."""
    response = await client.post("/api/v1/auth/login",
                                 json={"username": username, "password": password})
    assert response.status == 200, await response.text()
    return (await response.json())["token"]


def bare_app(sessionmaker: async_sessionmaker[AsyncSession], clock: Clock, *,
             config: AuthConfig | None = None, bus: Any = None) -> web.Application:
    """A plain Application with the shared keys and auth wired (no app factory needed)."""
    from callcenter.auth.http import setup_web

    app = web.Application(middlewares=[errors_middleware])
    app[SESSIONMAKER] = sessionmaker
    app[CLOCK] = clock
    if bus is not None:
        app[BUS] = bus
    setup_web(app, config or test_auth_config())
    return app
