"""Units and users: creation, lookup, credentials, and the first administrator.

There is no built-in password. The first admin is created from the environment
(``CALLCENTER_AUTH__INITIAL_ADMIN_PASSWORD``, optionally ``..._USERNAME``); in demo mode,
when none is given, a random one is generated and logged once. Every new password meets
the password policy (``passwords.py``; ``auth.password_min_length`` / ``_min_score``).

Deactivating a user, or changing their password, role or unit, bumps their token
generation: every token issued before dies for good (``tokens.check_token_current``).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.auth.config import PUBLISHED_TOKEN_SECRETS, AuthConfig
from callcenter.auth.models import Unit, User
from callcenter.auth.passwords import (
    DEFAULT_POLICY,
    PasswordPolicy,
    WeakPasswordError,
    hash_password,
    needs_rehash,
    rehash,
    verify_password,
)
from callcenter.auth.principal import Principal, Role
from callcenter.clock import Clock, SystemClock

log = logging.getLogger(__name__)

INSECURE_SECRET_PREFIX = "dev-only"
MIN_TOKEN_SECRET_LENGTH = 32


class UserError(ValueError):
    """A request to create or change a user that breaks a rule; ``field`` names the culprit."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class InsecureConfigError(RuntimeError):
    pass


def principal_for(user: User) -> Principal:
    return Principal(user_id=user.id, username=user.username, role=Role(user.role),
                     unit_id=user.unit_id, token_generation=user.token_generation or 0)


async def create_unit(session: AsyncSession, *, code: str, name: str, active: bool = True) -> Unit:
    if await session.scalar(select(Unit.id).where(Unit.code == code)) is not None:
        raise UserError("code", f"unit code {code!r} already exists")
    unit = Unit(code=code, name=name, active=active)
    session.add(unit)
    await session.flush()
    return unit


async def create_user(session: AsyncSession, *, username: str, password: str, role: Role | str,
                      clock: Clock, display_name: str | None = None,
                      unit_id: int | None = None, active: bool = True,
                      policy: PasswordPolicy = DEFAULT_POLICY) -> User:
    """Create a user; a unit handler needs exactly one (existing) unit, others none."""
    role = Role(role)
    await _check_user_fields(session, username=username, role=role, unit_id=unit_id)
    password_hash = _hash_new_password(password, username, policy)
    now = clock.now()
    user = User(username=username, display_name=display_name or username,
                password_hash=password_hash, role=str(role), unit_id=unit_id, active=active,
                created_at=now, password_changed_at=now, token_generation=0)
    session.add(user)
    await session.flush()
    log.info("user_created username=%s role=%s unit_id=%s", username, role, unit_id)
    return user


async def _check_user_fields(session: AsyncSession, *, username: str, role: Role,
                             unit_id: int | None) -> None:
    if not username or len(username) > 64 or not username.isprintable() or " " in username:
        raise UserError("username", "username must be 1-64 printable characters without spaces")
    if await session.scalar(select(User.id).where(User.username == username)) is not None:
        raise UserError("username", f"username {username!r} already exists")
    await check_unit_for_role(session, role, unit_id)


async def check_unit_for_role(session: AsyncSession, role: Role, unit_id: int | None) -> None:
    if role is Role.UNIT_HANDLER:
        if unit_id is None:
            raise UserError("unit_id", "a unit handler belongs to exactly one unit")
        if await session.get(Unit, unit_id) is None:
            raise UserError("unit_id", f"unit {unit_id} does not exist")
    elif unit_id is not None:
        raise UserError("unit_id", "only unit handlers belong to a unit")


def _hash_new_password(password: str, username: str, policy: PasswordPolicy) -> str:
    try:
        return hash_password(password, username=username, policy=policy)
    except WeakPasswordError as exc:
        raise UserError("password", str(exc)) from exc


async def set_password(user: User, password: str, clock: Clock,
                       policy: PasswordPolicy = DEFAULT_POLICY) -> None:
    """Change the password; every token issued before stops working."""
    user.password_hash = _hash_new_password(password, user.username, policy)
    user.password_changed_at = clock.now()
    revoke_tokens(user)


def revoke_tokens(user: User) -> None:
    """Every token issued to ``user`` so far stops working, for good."""
    user.token_generation = (user.token_generation or 0) + 1


async def check_credentials(session: AsyncSession, username: str, password: str) -> User | None:
    """The active user with these credentials, or None (same cost either way).

    Argon2 runs in a worker thread: a burst of logins must not stall the event loop.
    """
    user = await session.scalar(select(User).where(User.username == username))
    ok = await asyncio.to_thread(verify_password, user.password_hash if user else None,
                                 password)
    if not ok or user is None or not user.active:
        return None
    if needs_rehash(user.password_hash):
        user.password_hash = rehash(password)
    return user


def check_production_config(config: AuthConfig) -> None:
    """Refuse to run in production without a token secret, or with a public or short one."""
    secret = config.token_secret.get_secret_value() if config.token_secret else ""
    if (secret.startswith(INSECURE_SECRET_PREFIX) or secret in PUBLISHED_TOKEN_SECRETS
            or len(secret) < MIN_TOKEN_SECRET_LENGTH):
        raise InsecureConfigError(
            "auth.token_secret: set CALLCENTER_AUTH__TOKEN_SECRET to a random string of "
            f"{MIN_TOKEN_SECRET_LENGTH}+ characters in production")


async def ensure_initial_admin(sessionmaker: async_sessionmaker[AsyncSession], config: AuthConfig,
                               *, production: bool = True, clock: Clock | None = None
                               ) -> str | None:
    """Create the first admin when no admin exists yet.

    Returns the generated password in demo mode (None otherwise). In production the
    password must come from the config/environment: there is no default.
    """
    clock = clock or SystemClock()
    async with sessionmaker() as session, session.begin():
        admins = await session.scalar(
            select(func.count()).select_from(User).where(User.role == str(Role.ADMIN)))
        if admins:
            return None
        generated: str | None = None
        policy = config.password_policy()
        if config.initial_admin_password is not None:
            password = config.initial_admin_password.get_secret_value()
        elif production:
            raise InsecureConfigError(
                "auth.initial_admin_password: no admin exists; set "
                "CALLCENTER_AUTH__INITIAL_ADMIN_PASSWORD to create the first one")
        else:
            password = generated = generate_password(config.initial_admin_username, policy)
        try:
            await create_user(session, username=config.initial_admin_username,
                              password=password, role=Role.ADMIN, clock=clock,
                              display_name="Administrator", policy=policy)
        except UserError as exc:
            raise InsecureConfigError(f"auth.initial_admin_password: {exc}") from exc
    if generated:
        log.warning("initial_admin_created username=%s password=%s (demo mode: change it)",
                    config.initial_admin_username, generated)
    return generated


def generate_password(username: str, policy: PasswordPolicy) -> str:
    """A random password that the policy accepts (a random draw nearly always is)."""
    for _ in range(100):
        password = secrets.token_urlsafe(max(12, policy.min_length))
        try:
            policy.check(password, username)
        except WeakPasswordError:
            continue
        return password
    raise InsecureConfigError("cannot generate a password that meets the password policy")


async def apply_user_changes(session: AsyncSession, user: User, changes: dict[str, Any],
                             clock: Clock, policy: PasswordPolicy = DEFAULT_POLICY) -> None:
    """Apply an admin's patch: role and unit together, activation, password.

    A change of role or unit, a deactivation or a new password revokes the user's tokens:
    a token must never outlive the authority it was issued for.
    """
    role = Role(changes.get("role", user.role))
    unit_id = changes["unit_id"] if "unit_id" in changes else user.unit_id
    if role is not Role.UNIT_HANDLER and "unit_id" not in changes:
        unit_id = None  # leaving the unit-handler role leaves the unit
    await check_unit_for_role(session, role, unit_id)
    if changes.get("password") is not None:
        await set_password(user, changes["password"], clock, policy)  # revokes
    elif (str(role), unit_id) != (user.role, user.unit_id) or (
            user.active and changes.get("active") is False):
        revoke_tokens(user)
    user.role, user.unit_id = str(role), unit_id
    if changes.get("display_name"):
        user.display_name = changes["display_name"]
    if changes.get("active") is not None:
        user.active = changes["active"]
