"""Revocation is permanent: a token dies with the authority it was issued for.

Found: a user deactivated and reactivated got their old tokens back. Tokens now carry the
user's token generation, which deactivation and changes of password, role or unit bump.
"""

from __future__ import annotations

from typing import Any

import jwt
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.auth.config import AuthConfig
from callcenter.auth.models import User
from callcenter.auth.principal import Role
from callcenter.auth.testing import bearer, make_unit, make_user, token_for
from callcenter.auth.tokens import InvalidToken, check_token_current, decode_token
from callcenter.auth.users import apply_user_changes
from callcenter.clock import FrozenClock


async def patch(sessionmaker: async_sessionmaker[AsyncSession], user: User,
                clock: FrozenClock, **changes: Any) -> User:
    """Apply an admin's patch in its own transaction; the row as stored afterwards."""
    async with sessionmaker() as session, session.begin():
        row = await session.get(User, user.id)
        await apply_user_changes(session, row, changes, clock)
    async with sessionmaker() as session:
        return await session.get(User, user.id)


def still_valid(user: User, token: str, config: AuthConfig, clock: FrozenClock) -> bool:
    try:
        check_token_current(user, decode_token(token, config, clock))
    except InvalidToken:
        return False
    return True


async def test_a_reactivated_user_does_not_get_old_tokens_back(sessionmaker, clock, auth_config):
    agent = await make_user(sessionmaker, clock, role=Role.AGENT)
    old = token_for(agent, auth_config, clock)
    assert still_valid(agent, old, auth_config, clock)
    agent = await patch(sessionmaker, agent, clock, active=False)
    assert not still_valid(agent, old, auth_config, clock)
    agent = await patch(sessionmaker, agent, clock, active=True)
    assert not still_valid(agent, old, auth_config, clock)
    assert still_valid(agent, token_for(agent, auth_config, clock), auth_config, clock)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_change_of_role_unit_or_password_revokes_but_a_new_name_does_not(
        sessionmaker, clock, auth_config):
    unit_a, unit_b = await make_unit(sessionmaker), await make_unit(sessionmaker)
    user = await make_user(sessionmaker, clock, role=Role.UNIT_HANDLER, unit_id=unit_a.id)
    for changes in ({"display_name": "王小明"}, {"active": True}, {"unit_id": unit_a.id}):
        token = token_for(user, auth_config, clock)
        user = await patch(sessionmaker, user, clock, **changes)
        assert still_valid(user, token, auth_config, clock), changes
    for changes in ({"unit_id": unit_b.id}, {"role": "agent"},
                    {"password": "a brand new passphrase"}, {"active": False}):
        token = token_for(user, auth_config, clock)
        user = await patch(sessionmaker, user, clock, **changes)
        assert not still_valid(user, token, auth_config, clock), changes


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_token_from_before_generations_lives_until_the_first_revocation(
        sessionmaker, clock, auth_config):
    agent = await make_user(sessionmaker, clock, role=Role.AGENT)
    claims = jwt.decode(token_for(agent, auth_config, clock), options={"verify_signature": False})
    del claims["gen"]
    secret = auth_config.token_secret.get_secret_value()
    legacy = jwt.encode(claims, secret, algorithm="HS256")
    assert still_valid(agent, legacy, auth_config, clock)
    agent = await patch(sessionmaker, agent, clock, role="supervisor")
    assert not still_valid(agent, legacy, auth_config, clock)


async def test_over_http_a_reactivated_user_is_refused_with_an_old_token(
        client, sessionmaker, clock, auth_config):
    admin = await make_user(sessionmaker, clock, role=Role.ADMIN)
    agent = await make_user(sessionmaker, clock, role=Role.AGENT)
    as_admin = bearer(token_for(admin, auth_config, clock))
    old = bearer(token_for(agent, auth_config, clock))
    for active in (False, True):
        response = await client.patch(f"/api/v1/users/{agent.id}", headers=as_admin,
                                      json={"active": active})
        assert response.status == 200
    assert (await client.get("/api/v1/auth/me", headers=old)).status == 401
    fresh = bearer(token_for(await patch(sessionmaker, agent, clock), auth_config, clock))
    assert (await client.get("/api/v1/auth/me", headers=fresh)).status == 200


async def test_users_from_before_the_upgrade_start_at_generation_zero(db_url: str) -> None:
    """Migration 0006 fills existing rows, so their live tokens (no claim: 0) keep working."""
    from sqlalchemy import text

    from callcenter.store import migrations
    from callcenter.store.engine import create_engine

    await migrations.upgrade(db_url, "0005_call_truth")
    engine = create_engine(db_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(
                "INSERT INTO users (username, display_name, password_hash, role, active,"
                " created_at, password_changed_at) VALUES ('old', 'old', '!', 'agent', :t,"
                " '2026-01-01 00:00:00', '2026-01-01 00:00:00')"), {"t": True})
        await migrations.upgrade(db_url)
        async with engine.connect() as conn:
            generation = await conn.scalar(text("SELECT token_generation FROM users"))
        assert generation == 0
    finally:
        await engine.dispose()
