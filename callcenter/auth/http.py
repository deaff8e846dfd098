"""Auth over HTTP: the authenticating middleware, login, users, units and the audit log.

Every ``/api/v1`` route needs a Bearer token except ``PUBLIC_PATHS`` (the login and the
OpenAPI document). The middleware puts the principal on the request; handlers of every
feature then call ``web.request.require_role(request, Role.X, ...)``, which answers 401 when
nobody is logged in and 403 when the role does not fit.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.auth.config import AuthConfig
from callcenter.auth.models import AuditLog, Unit, User
from callcenter.auth.principal import Principal, Role
from callcenter.auth.privacy import PiiPolicy, record_access
from callcenter.auth.ratelimit import LoginRateLimiter
from callcenter.auth.tokens import InvalidToken, decode_token, issue_token
from callcenter.auth.users import (
    UserError,
    apply_user_changes,
    check_credentials,
    create_unit,
    create_user,
    principal_for,
)
from callcenter.clock import Clock
from callcenter.web.errors import bad_request, conflict, http_error, not_found, unauthenticated
from callcenter.web.keys import CLOCK, PII_POLICY, SESSIONMAKER, SETTINGS
from callcenter.web.request import (
    API_PREFIX,
    PRINCIPAL,
    PUBLIC_PATHS,
    client_ip,
    path_int,
    query_int,
    query_time,
    read_json,
    require_role,
)

log = logging.getLogger(__name__)

AUTH_CONFIG: web.AppKey[AuthConfig] = web.AppKey("auth_config", AuthConfig)
LOGIN_LIMITER: web.AppKey[LoginRateLimiter] = web.AppKey("login_limiter", LoginRateLimiter)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# --- the principal of a request ---------------------------------------------------------

def _bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    # Browsers cannot set headers on a websocket upgrade: accept the token as a query there.
    if request.headers.get("Upgrade", "").lower() == "websocket":
        return request.query.get("access_token") or None
    return None


async def current_principal(request: web.Request) -> Principal | None:
    """The request's principal as of now, for long-lived requests (websockets): None once
    its token has expired or its user was deactivated or changed."""
    token = _bearer_token(request)
    if token is None:
        return None
    app = request.app
    try:
        return await load_principal(app[SESSIONMAKER], app[AUTH_CONFIG], app[CLOCK], token)
    except web.HTTPException:
        return None


_URL_TOKEN = re.compile(r"(access_token=)[^&\s\"]+")


class RedactUrlTokens(logging.Filter):
    """Access-log records keep the request line, not a token passed in the URL."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "access_token=" in message:
            record.msg, record.args = _URL_TOKEN.sub(r"\1***", message), ()
        line = getattr(record, "first_request_line", None)
        if isinstance(line, str):
            record.first_request_line = _URL_TOKEN.sub(r"\1***", line)
        return True


async def load_principal(sessionmaker: async_sessionmaker[AsyncSession], config: AuthConfig,
                         clock: Clock, token: str) -> Principal:
    """Verify ``token`` and return the principal of its user as the database has it now."""
    try:
        claims = decode_token(token, config, clock)
    except InvalidToken as exc:
        raise unauthenticated(f"invalid token: {exc}") from None
    async with sessionmaker() as session:
        user = await session.get(User, claims.user_id)
    if user is None or not user.active or user.username != claims.username:
        raise unauthenticated("user not active")
    if claims.issued_at < user.password_changed_at:
        raise unauthenticated("token issued before the last password change")
    return principal_for(user)


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Set ``request[PRINCIPAL]`` on every ``/api/v1`` route except the public ones."""
    path = request.path
    if (path == API_PREFIX or path.startswith(API_PREFIX + "/")) and path not in PUBLIC_PATHS:
        token = _bearer_token(request)
        if token is None:
            raise unauthenticated()
        app = request.app
        request[PRINCIPAL] = await load_principal(app[SESSIONMAKER], app[AUTH_CONFIG],
                                                  app[CLOCK], token)
    return await handler(request)


# --- payloads ----------------------------------------------------------------------------

class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginIn(_Payload):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class UnitIn(_Payload):
    code: str = Field(min_length=1, max_length=32)
    name: str = Field(min_length=1, max_length=200)
    active: bool = True


class UnitPatch(_Payload):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    active: bool | None = None


class UserIn(_Payload):
    username: str = Field(min_length=1, max_length=64)
    password: str
    role: Role
    display_name: str | None = Field(default=None, max_length=200)
    unit_id: int | None = None
    active: bool = True


class UserPatch(_Payload):
    display_name: str | None = Field(default=None, max_length=200)
    role: Role | None = None
    unit_id: int | None = None
    active: bool | None = None
    password: str | None = None


def unit_json(unit: Unit) -> dict[str, Any]:
    return {"id": unit.id, "code": unit.code, "name": unit.name, "active": unit.active}


def user_json(user: User) -> dict[str, Any]:
    return {"id": user.id, "username": user.username, "display_name": user.display_name,
            "role": user.role, "unit_id": user.unit_id, "active": user.active,
            "created_at": user.created_at.isoformat(),
            "password_changed_at": user.password_changed_at.isoformat()}


def audit_json(row: AuditLog) -> dict[str, Any]:
    return {"id": row.id, "at": row.at.isoformat(), "user_id": row.user_id,
            "username": row.username, "role": row.role, "action": row.action,
            "object_type": row.object_type, "object_id": row.object_id,
            "fields": row.fields, "ip": row.ip}


# --- login -------------------------------------------------------------------------------

async def login(request: web.Request) -> web.Response:
    body = await read_json(request, LoginIn)
    app = request.app
    config, clock, limiter = app[AUTH_CONFIG], app[CLOCK], app[LOGIN_LIMITER]
    ip, now = client_ip(request), clock.now()
    async with app[SESSIONMAKER]() as session, session.begin():
        wait = await limiter.retry_after(session, username=body.username, ip=ip, now=now)
        if wait:
            log.warning("login_rate_limited username=%s ip=%s", body.username, ip)
            raise http_error(web.HTTPTooManyRequests, "rate_limited",
                             "too many failed logins; try again later",
                             headers={"Retry-After": str(wait)})
        user = await check_credentials(session, body.username, body.password)
        await limiter.record(session, username=body.username, ip=ip, now=now,
                             succeeded=user is not None)
        if user is None:
            log.info("login_failed username=%s ip=%s", body.username, ip)
            failed = True
        else:
            failed = False
            principal = principal_for(user)
            await record_access(session, principal, action="login", object_type="user",
                                object_id=user.id, fields=[], ip=ip, clock=clock)
    if failed:  # after commit, so the failure counts
        raise http_error(web.HTTPUnauthorized, "invalid_credentials",
                         "invalid username or password")
    token, expires_at = issue_token(principal, config, clock)
    return web.json_response({"token": token, "token_type": "Bearer",
                              "expires_at": expires_at.isoformat(),
                              "user": {"id": principal.user_id, "username": principal.username,
                                       "role": str(principal.role),
                                       "unit_id": principal.unit_id}})


async def me(request: web.Request) -> web.Response:
    principal = require_role(request)
    async with request.app[SESSIONMAKER]() as session:
        user = await session.get(User, principal.user_id)
        unit = await session.get(Unit, user.unit_id) if user and user.unit_id else None
    if user is None:
        raise unauthenticated()
    return web.json_response({**user_json(user), "unit": unit_json(unit) if unit else None})


# --- units -------------------------------------------------------------------------------

async def list_units(request: web.Request) -> web.Response:
    require_role(request)  # agents dispatch to units, handlers see theirs: every role reads
    async with request.app[SESSIONMAKER]() as session:
        units = (await session.scalars(select(Unit).order_by(Unit.code))).all()
    return web.json_response({"units": [unit_json(u) for u in units]})


async def post_unit(request: web.Request) -> web.Response:
    admin = require_role(request, Role.ADMIN)
    body = await read_json(request, UnitIn)
    async with request.app[SESSIONMAKER]() as session, session.begin():
        try:
            unit = await create_unit(session, code=body.code, name=body.name, active=body.active)
        except UserError as exc:
            raise conflict(str(exc), exc.field) from None
        await _audit_admin(request, session, admin, "unit.create", "unit", unit.id,
                           ["code", "name", "active"])
        result = unit_json(unit)
    return web.json_response(result, status=201)


async def patch_unit(request: web.Request) -> web.Response:
    admin = require_role(request, Role.ADMIN)
    body = await read_json(request, UnitPatch)
    changes = body.model_dump(exclude_unset=True)
    async with request.app[SESSIONMAKER]() as session, session.begin():
        unit = await session.get(Unit, path_int(request, "unit_id"))
        if unit is None:
            raise not_found("unit not found")
        for key, value in changes.items():
            setattr(unit, key, value)
        await _audit_admin(request, session, admin, "unit.update", "unit", unit.id,
                           sorted(changes))
        result = unit_json(unit)
    return web.json_response(result)


# --- users -------------------------------------------------------------------------------

async def list_users(request: web.Request) -> web.Response:
    require_role(request, Role.ADMIN)
    query = select(User).order_by(User.username)
    if "unit_id" in request.query:
        query = query.where(User.unit_id == query_int(request, "unit_id"))
    if "role" in request.query:
        query = query.where(User.role == request.query["role"])
    async with request.app[SESSIONMAKER]() as session:
        users = (await session.scalars(query)).all()
    return web.json_response({"users": [user_json(u) for u in users]})


async def get_user(request: web.Request) -> web.Response:
    require_role(request, Role.ADMIN)
    async with request.app[SESSIONMAKER]() as session:
        user = await session.get(User, path_int(request, "user_id"))
    if user is None:
        raise not_found("user not found")
    return web.json_response(user_json(user))


async def post_user(request: web.Request) -> web.Response:
    admin = require_role(request, Role.ADMIN)
    body = await read_json(request, UserIn)
    async with request.app[SESSIONMAKER]() as session, session.begin():
        try:
            user = await create_user(session, username=body.username, password=body.password,
                                     role=body.role, clock=request.app[CLOCK],
                                     display_name=body.display_name, unit_id=body.unit_id,
                                     active=body.active)
        except UserError as exc:
            raise _user_error(exc) from None
        await _audit_admin(request, session, admin, "user.create", "user", user.id,
                           ["username", "role", "unit_id", "active"])
        result = user_json(user)
    return web.json_response(result, status=201)


async def patch_user(request: web.Request) -> web.Response:
    admin = require_role(request, Role.ADMIN)
    body = await read_json(request, UserPatch)
    changes = body.model_dump(exclude_unset=True)
    async with request.app[SESSIONMAKER]() as session, session.begin():
        user = await session.get(User, path_int(request, "user_id"))
        if user is None:
            raise not_found("user not found")
        try:
            await apply_user_changes(session, user, changes, request.app[CLOCK])
        except UserError as exc:
            raise _user_error(exc) from None
        await _audit_admin(request, session, admin, "user.update", "user", user.id,
                           sorted(changes))
        result = user_json(user)
    return web.json_response(result)


def _user_error(exc: UserError) -> web.HTTPException:
    if "already exists" in str(exc):
        return conflict(str(exc), exc.field)
    return bad_request(str(exc), exc.field)


async def _audit_admin(request: web.Request, session: AsyncSession, admin: Principal,
                       action: str, object_type: str, object_id: int, fields: list[str]) -> None:
    await record_access(session, admin, action=action, object_type=object_type,
                        object_id=object_id, fields=fields, ip=client_ip(request),
                        clock=request.app[CLOCK])


# --- audit log ---------------------------------------------------------------------------

async def list_audit(request: web.Request) -> web.Response:
    """Newest first; filters: user_id, username, action, object_type, object_id, from, to."""
    require_role(request, Role.SUPERVISOR, Role.ADMIN)
    q = request.query
    query = select(AuditLog).order_by(AuditLog.at.desc(), AuditLog.id.desc())
    if "user_id" in q:
        query = query.where(AuditLog.user_id == query_int(request, "user_id"))
    for name in ("username", "action", "object_type", "object_id"):
        if name in q:
            query = query.where(getattr(AuditLog, name) == q[name])
    if "from" in q:
        query = query.where(AuditLog.at >= query_time(request, "from", end=False))
    if "to" in q:
        query = query.where(AuditLog.at < query_time(request, "to", end=True))
    limit = min(query_int(request, "limit") if "limit" in q else 100, 1000)
    offset = query_int(request, "offset") if "offset" in q else 0
    async with request.app[SESSIONMAKER]() as session:
        rows = (await session.scalars(query.limit(limit).offset(offset))).all()
    return web.json_response({"entries": [audit_json(r) for r in rows],
                              "limit": limit, "offset": offset})


# --- wiring ------------------------------------------------------------------------------

def setup_web(app: web.Application, config: AuthConfig | None = None) -> None:
    """Register the middleware and routes; ``config`` defaults to ``app[SETTINGS].auth``."""
    if config is None:
        config = app[SETTINGS].auth
    app[AUTH_CONFIG] = config
    app[PII_POLICY] = PiiPolicy(config)
    app[LOGIN_LIMITER] = LoginRateLimiter(config)
    app.middlewares.append(authenticate)
    access_log = logging.getLogger("aiohttp.access")
    if not any(isinstance(f, RedactUrlTokens) for f in access_log.filters):
        access_log.addFilter(RedactUrlTokens())
    app.router.add_post(f"{API_PREFIX}/auth/login", login)
    app.router.add_get(f"{API_PREFIX}/auth/me", me)
    app.router.add_get(f"{API_PREFIX}/units", list_units)
    app.router.add_post(f"{API_PREFIX}/units", post_unit)
    app.router.add_patch(f"{API_PREFIX}/units/{{unit_id}}", patch_unit)
    app.router.add_get(f"{API_PREFIX}/users", list_users)
    app.router.add_post(f"{API_PREFIX}/users", post_user)
    app.router.add_get(f"{API_PREFIX}/users/{{user_id}}", get_user)
    app.router.add_patch(f"{API_PREFIX}/users/{{user_id}}", patch_user)
    app.router.add_get(f"{API_PREFIX}/audit", list_audit)
