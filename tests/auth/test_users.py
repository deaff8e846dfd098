"""The first administrator comes from the environment; there is no default password."""

from __future__ import annotations

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from callcenter.auth.config import AuthConfig
from callcenter.auth.models import User
from callcenter.auth.passwords import verify_password
from callcenter.auth.testing import test_auth_config
from callcenter.auth.users import InsecureConfigError, check_production_config, ensure_initial_admin


async def test_production_refuses_to_invent_an_admin_password(sessionmaker, clock):
    with pytest.raises(InsecureConfigError, match="INITIAL_ADMIN_PASSWORD"):
        await ensure_initial_admin(sessionmaker, test_auth_config(), production=True,
                                   clock=clock)


async def test_initial_admin_from_config_is_created_once(sessionmaker, clock):
    config = test_auth_config(initial_admin_username="root",
                              initial_admin_password=SecretStr("from the environment"))
    assert await ensure_initial_admin(sessionmaker, config, clock=clock) is None
    assert await ensure_initial_admin(sessionmaker, config, clock=clock) is None
    async with sessionmaker() as session:
        admins = (await session.scalars(select(User).where(User.role == "admin"))).all()
    assert [a.username for a in admins] == ["root"]
    assert verify_password(admins[0].password_hash, "from the environment")


async def test_demo_mode_generates_a_random_password(sessionmaker, clock):
    generated = await ensure_initial_admin(sessionmaker, test_auth_config(), production=False,
                                           clock=clock)
    assert generated and len(generated) >= 12
    async with sessionmaker() as session:
        admin = await session.scalar(select(User).where(User.username == "admin"))
    assert verify_password(admin.password_hash, generated)


def test_production_refuses_the_demo_token_secret(monkeypatch):
    with pytest.raises(InsecureConfigError):
        check_production_config(AuthConfig())
    check_production_config(test_auth_config())
