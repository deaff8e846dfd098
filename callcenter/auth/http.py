"""Auth over HTTP: the authenticating middleware, login, users, units and the audit log.

Every ``/api/v1`` route needs a Bearer token except ``PUBLIC_PATHS`` (the login and the
OpenAPI document). The middleware puts the principal on the request; handlers of every
feature then call ``web.request.require_role(request, Role.X, ...)``, which answers 401 when
nobody is logged in and 403 when the role does not fit.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Awaitable, Callable

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.auth.config import AuthConfig
from callcenter.auth.models import AuditLog, Unit, User
from callcenter.auth.principal import Principal, Role
from callcenter.auth.privacy import PiiPolicy, record_access
from callcenter.auth.ratelimit import LoginRateLimiter
from callcenter.auth.schemas import (
    AuditEntry,
    AuditPage,
    AuditQuery,
    LoginIn,
    LoginOut,
    LoginUser,
    MediaSessionOut,
    MeOut,
    UnitIn,
    UnitList,
    UnitOut,
    UnitPatch,
    UserIn,
    UserList,
    UserOut,
    UserPatch,
    UsersQuery,
)
from callcenter.auth.tokens import InvalidToken, check_token_current, decode_token, issue_token
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
    checked,
    client_ip,
    json_body,
    parse_time,
    path_int,
    require_role,
)
from callcenter.web.routing import Api, ApiSpec, NoBody

log = logging.getLogger(__name__)

AUTH_CONFIG: web.AppKey[AuthConfig] = web.AppKey("auth_config", AuthConfig)
LOGIN_LIMITER: web.AppKey[LoginRateLimiter] = web.AppKey("login_limiter", LoginRateLimiter)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# --- the principal of a request ---------------------------------------------------------

MEDIA_COOKIE = "callcenter_media"
MEDIA_COOKIE_PATH = f"{API_PREFIX}/recordings/"
MEDIA_PATH = re.compile(rf"{re.escape(MEDIA_COOKIE_PATH)}[0-9]+/audio")
"""The one kind of request the media cookie answers: an ``<audio>`` element loading a
recording (it cannot send a header, and must make its own range requests)."""


def _bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    # Browsers cannot set headers on a websocket upgrade: accept the token as a query there.
    if request.headers.get("Upgrade", "").lower() == "websocket":
        return request.query.get("access_token") or None
    if request.method in ("GET", "HEAD") and MEDIA_PATH.fullmatch(request.path):
        return request.cookies.get(MEDIA_COOKIE) or None
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


_QUERY_VALUE = re.compile(r"([?&][^=&\s\"?#]+=)[^&\s\"#]*")


class RedactQueryStrings(logging.Filter):
    """Access-log records keep the request line's path and parameter names, not the values:
    a token in a websocket URL, a phone number searched for (``?text=138...``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "=" in message:
            record.msg, record.args = _QUERY_VALUE.sub(r"\1***", message), ()
        line = getattr(record, "first_request_line", None)
        if isinstance(line, str):
            record.first_request_line = _QUERY_VALUE.sub(r"\1***", line)
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
    try:
        check_token_current(user, claims)
    except InvalidToken as exc:
        raise unauthenticated(str(exc)) from None
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


API = Api()
"""Auth's declared routes (roles, payloads and responses feed the OpenAPI document)."""
ALL = tuple(Role)
ADMIN = (Role.ADMIN,)


# --- login -------------------------------------------------------------------------------

@API.route("POST", f"{API_PREFIX}/auth/login", summary="Log in: a bearer token for the API",
           roles=(), body=LoginIn, response=LoginOut, errors=(401, 422, 429), public=True)
async def login(request: web.Request, _: None, body: LoginIn) -> LoginOut:
    """Failed attempts are limited per user name and per address (429 with Retry-After)."""
    app = request.app
    config, clock, limiter = app[AUTH_CONFIG], app[CLOCK], app[LOGIN_LIMITER]
    ip, now = client_ip(request), clock.now()
    who = username_hash(body.username)
    async with app[SESSIONMAKER]() as session, session.begin():
        wait = await limiter.retry_after(session, username=body.username, ip=ip, now=now)
        if wait:
            log.warning("login_rate_limited user_hash=%s ip=%s", who, ip)
            raise http_error(web.HTTPTooManyRequests, "rate_limited",
                             "too many failed logins; try again later",
                             headers={"Retry-After": str(wait)})
        user = await check_credentials(session, body.username, body.password)
        await limiter.record(session, username=body.username, ip=ip, now=now,
                             succeeded=user is not None)
        if user is not None:
            principal = principal_for(user)
            await record_access(session, principal, action="login", object_type="user",
                                object_id=user.id, fields=[], ip=ip, clock=clock)
    if user is None:  # after commit, so the failure counts
        log.info("login_failed user_hash=%s ip=%s", who, ip)
        raise http_error(web.HTTPUnauthorized, "invalid_credentials",
                         "invalid username or password")
    token, expires_at = issue_token(principal, config, clock)
    return LoginOut(token=token, expires_at=expires_at,
                    user=LoginUser(id=principal.user_id, username=principal.username,
                                   role=principal.role, unit_id=principal.unit_id))


MEDIA_SESSION = ApiSpec(
    "POST", f"{API_PREFIX}/auth/media-session",
    "Let this browser's audio player load recordings: an HttpOnly cookie with the token, "
    "sent only with GET requests for a recording's audio", ALL, body=NoBody,
    response=MediaSessionOut, errors=(401, 422))
MEDIA_SESSION_END = ApiSpec("DELETE", MEDIA_SESSION.path, "Forget the media cookie (logout)",
                            ALL, status=204, errors=(401,))


async def post_media_session(request: web.Request) -> web.StreamResponse:
    """The cookie carries the header's token and expires with it; strict same-site, so no
    other site's page can use it."""
    require_role(request)
    checked(NoBody, await json_body(request))
    token = _bearer_token(request) or ""
    app = request.app
    claims = decode_token(token, app[AUTH_CONFIG], app[CLOCK])
    max_age = max(0, int((claims.expires_at - app[CLOCK].now()).total_seconds()))
    response = web.json_response(text=MediaSessionOut(expires_at=claims.expires_at)
                                 .model_dump_json())
    response.set_cookie(MEDIA_COOKIE, token, path=MEDIA_COOKIE_PATH, max_age=max_age,
                        httponly=True, samesite="Strict", secure=request.secure)
    return response


async def delete_media_session(request: web.Request) -> web.StreamResponse:
    require_role(request)
    response = web.Response(status=204)
    response.del_cookie(MEDIA_COOKIE, path=MEDIA_COOKIE_PATH)
    return response


post_media_session.api_spec = MEDIA_SESSION  # type: ignore[attr-defined]
delete_media_session.api_spec = MEDIA_SESSION_END  # type: ignore[attr-defined]


def username_hash(username: str) -> str:
    """What the log says of a typed user name: it may be anything, even a phone number."""
    return hashlib.sha256(username.encode()).hexdigest()[:12]


@API.route("GET", f"{API_PREFIX}/auth/me", summary="The logged-in user and their unit",
           roles=ALL, response=MeOut)
async def me(request: web.Request, principal: Principal, _: None) -> MeOut:
    async with request.app[SESSIONMAKER]() as session:
        user = await session.get(User, principal.user_id)
        unit = await session.get(Unit, user.unit_id) if user and user.unit_id else None
    if user is None:
        raise unauthenticated()
    return MeOut(**UserOut.of(user).model_dump(), unit=UnitOut.of(unit) if unit else None)


# --- units -------------------------------------------------------------------------------

@API.route("GET", f"{API_PREFIX}/units", summary="Every unit (agents dispatch to them)",
           roles=ALL, response=UnitList)
async def list_units(request: web.Request, principal: Principal, _: None) -> UnitList:
    async with request.app[SESSIONMAKER]() as session:
        units = (await session.scalars(select(Unit).order_by(Unit.code))).all()
    return UnitList(units=[UnitOut.of(u) for u in units])


@API.route("POST", f"{API_PREFIX}/units", summary="Create a unit", roles=ADMIN, body=UnitIn,
           response=UnitOut, status=201)
async def post_unit(request: web.Request, admin: Principal, body: UnitIn) -> UnitOut:
    async with request.app[SESSIONMAKER]() as session, session.begin():
        try:
            unit = await create_unit(session, code=body.code, name=body.name, active=body.active)
        except UserError as exc:
            raise conflict(str(exc), exc.field) from None
        await _check_parent(session, body.parent_id, unit.id)
        unit.kind, unit.parent_id = body.kind, body.parent_id
        await _audit_admin(request, session, admin, "unit.create", "unit", unit.id,
                           ["code", "name", "active", "kind", "parent_id"])
        return UnitOut.of(unit)


@API.route("PATCH", f"{API_PREFIX}/units/{{unit_id}}", summary="Rename or (de)activate a unit",
           roles=ADMIN, body=UnitPatch, response=UnitOut)
async def patch_unit(request: web.Request, admin: Principal, body: UnitPatch) -> UnitOut:
    changes = body.model_dump(exclude_unset=True)
    async with request.app[SESSIONMAKER]() as session, session.begin():
        unit = await session.get(Unit, path_int(request, "unit_id"))
        if unit is None:
            raise not_found("unit not found")
        if changes.get("parent_id") is not None:
            await _check_parent(session, changes["parent_id"], unit.id)
        for key, value in changes.items():
            setattr(unit, key, value)
        await _audit_admin(request, session, admin, "unit.update", "unit", unit.id,
                           sorted(changes))
        return UnitOut.of(unit)


async def _check_parent(session: AsyncSession, parent_id: int | None, unit_id: int) -> None:
    """The parent exists and is neither the unit itself nor one of its descendants."""
    seen = {unit_id}
    while parent_id is not None:
        if parent_id in seen:
            raise conflict("a unit cannot be its own ancestor", "parent_id")
        parent = await session.get(Unit, parent_id)
        if parent is None:
            raise conflict(f"no unit {parent_id}", "parent_id")
        seen.add(parent_id)
        parent_id = parent.parent_id


# --- users -------------------------------------------------------------------------------

@API.route("GET", f"{API_PREFIX}/users", summary="Users, by unit or role", roles=ADMIN,
           query=UsersQuery, response=UserList)
async def list_users(request: web.Request, _: Principal, query: UsersQuery) -> UserList:
    statement = select(User).order_by(User.username)
    if query.unit_id is not None:
        statement = statement.where(User.unit_id == query.unit_id)
    if query.role is not None:
        statement = statement.where(User.role == str(query.role))
    async with request.app[SESSIONMAKER]() as session:
        users = (await session.scalars(statement)).all()
    return UserList(users=[UserOut.of(u) for u in users])


@API.route("GET", f"{API_PREFIX}/users/{{user_id}}", summary="One user", roles=ADMIN,
           response=UserOut)
async def get_user(request: web.Request, _: Principal, __: None) -> UserOut:
    async with request.app[SESSIONMAKER]() as session:
        user = await session.get(User, path_int(request, "user_id"))
    if user is None:
        raise not_found("user not found")
    return UserOut.of(user)


@API.route("POST", f"{API_PREFIX}/users", summary="Create a user", roles=ADMIN, body=UserIn,
           response=UserOut, status=201)
async def post_user(request: web.Request, admin: Principal, body: UserIn) -> UserOut:
    async with request.app[SESSIONMAKER]() as session, session.begin():
        try:
            user = await create_user(session, username=body.username, password=body.password,
                                     role=body.role, clock=request.app[CLOCK],
                                     display_name=body.display_name, unit_id=body.unit_id,
                                     active=body.active,
                                     policy=request.app[AUTH_CONFIG].password_policy())
        except UserError as exc:
            raise _user_error(exc) from None
        await _audit_admin(request, session, admin, "user.create", "user", user.id,
                           ["username", "role", "unit_id", "active"])
        return UserOut.of(user)


@API.route("PATCH", f"{API_PREFIX}/users/{{user_id}}",
           summary="Change a user's role, unit, activation or password", roles=ADMIN,
           body=UserPatch, response=UserOut)
async def patch_user(request: web.Request, admin: Principal, body: UserPatch) -> UserOut:
    changes = body.model_dump(exclude_unset=True)
    async with request.app[SESSIONMAKER]() as session, session.begin():
        user = await session.get(User, path_int(request, "user_id"))
        if user is None:
            raise not_found("user not found")
        try:
            await apply_user_changes(session, user, changes, request.app[CLOCK],
                                     policy=request.app[AUTH_CONFIG].password_policy())
        except UserError as exc:
            raise _user_error(exc) from None
        await _audit_admin(request, session, admin, "user.update", "user", user.id,
                           sorted(changes))
        return UserOut.of(user)


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

@API.route("GET", f"{API_PREFIX}/audit", summary="The audit log, newest first",
           roles=(Role.SUPERVISOR, Role.ADMIN), query=AuditQuery, response=AuditPage)
async def list_audit(request: web.Request, _: Principal, query: AuditQuery) -> AuditPage:
    statement = select(AuditLog).order_by(AuditLog.at.desc(), AuditLog.id.desc())
    if query.user_id is not None:
        statement = statement.where(AuditLog.user_id == query.user_id)
    for name in ("username", "action", "object_type", "object_id"):
        if getattr(query, name) is not None:
            statement = statement.where(getattr(AuditLog, name) == getattr(query, name))
    if query.since is not None:
        statement = statement.where(AuditLog.at >= parse_time(query.since, "from", end=False))
    if query.until is not None:
        statement = statement.where(AuditLog.at < parse_time(query.until, "to", end=True))
    limit = min(query.limit, 1000)
    async with request.app[SESSIONMAKER]() as session:
        rows = (await session.scalars(statement.limit(limit).offset(query.offset))).all()
    return AuditPage(entries=[AuditEntry.of(r) for r in rows], limit=limit,
                     offset=query.offset)


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
    if not any(isinstance(f, RedactQueryStrings) for f in access_log.filters):
        access_log.addFilter(RedactQueryStrings())
    API.install(app)
    app.router.add_route("POST", MEDIA_SESSION.path, post_media_session)
    app.router.add_route("DELETE", MEDIA_SESSION.path, delete_media_session)
