"""The request toolkit every feature's ``http.py`` uses: the principal, role checks, and
parsing of bodies, path segments and query strings into checked values.

A bad value answers 422 naming the field (or 404 for a path segment that is not a number),
in the JSON error shape of ``errors.py``; values are checked by ``inputs.py`` for what the
databases refuse before any handler sees them.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from callcenter.web.errors import bad_request, error_response, forbidden, invalid, unauthenticated
from callcenter.web.inputs import (
    INT_MAX,
    INT_MIN,
    InputError,
    check_scalar,
    check_values,
    parse_json,
)

if TYPE_CHECKING:  # auth's package wires this toolkit's users: import it for types only
    from callcenter.auth.principal import Principal, Role

API_PREFIX = "/api/v1"
PUBLIC_PATHS = frozenset({f"{API_PREFIX}/auth/login", f"{API_PREFIX}/openapi.json"})
"""The only ``/api/v1`` routes answered without a token."""

PRINCIPAL: web.RequestKey[Principal] = web.RequestKey("principal", object)
"""Set by auth's middleware on every authenticated ``/api/v1`` request."""

M = TypeVar("M", bound=BaseModel)


def principal_of(request: web.Request) -> Principal | None:
    """The authenticated principal, or None on a public route."""
    return request.get(PRINCIPAL)


def require_role(request: web.Request, *roles: Role) -> Principal:
    """The principal if its role is one of ``roles`` (any role when none given)."""
    principal = principal_of(request)
    if principal is None:
        raise unauthenticated()
    if roles and principal.role not in roles:
        raise forbidden(f"needs role {' or '.join(str(r) for r in roles)}")
    return principal


def client_ip(request: web.Request) -> str:
    return request.remote or "unknown"


async def json_body(request: web.Request) -> Any:
    """The request's JSON body, ``{}`` when there is none; 422 when it is not JSON."""
    raw = await request.read() if request.can_read_body else b""
    if not raw.strip():
        return {}
    try:
        return parse_json(raw)
    except InputError as exc:
        raise bad_request(exc.message, exc.field) from None


def checked(model: type[M], raw: Any) -> M:
    """``raw`` validated into ``model`` and checked for what the databases refuse."""
    try:
        value = model.model_validate(raw)
    except ValidationError as exc:
        raise invalid(exc) from None
    try:
        check_values(value)
    except InputError as exc:
        raise bad_request(exc.message, exc.field) from None
    return value


def path_int(request: web.Request, name: str) -> int:
    """A numeric path segment; anything else is simply not found."""
    try:
        value = int(request.match_info[name])
    except ValueError:
        raise error_response(404, "not_found", f"no such {name}") from None
    if not INT_MIN <= value <= INT_MAX:
        raise error_response(404, "not_found", f"no such {name}")
    return value


def parse_time(raw: str, name: str, *, end: bool) -> datetime:
    """A date (whole day, UTC; with ``end`` the day is included) or an ISO datetime with a
    zone; a bad one answers 422 naming ``name``."""
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw) + (timedelta(days=1) if end else timedelta())
            value = datetime.combine(day, time(), UTC)
        else:
            value = datetime.fromisoformat(raw)
    except (ValueError, OverflowError):
        raise bad_request(f"{name} must be a date or an ISO datetime", name) from None
    if value.tzinfo is None:
        raise bad_request(f"{name} needs a timezone", name)
    try:
        check_scalar(value, name)
    except InputError as exc:
        raise bad_request(exc.message, exc.field) from None
    return value


def parse_query(request: web.Request, model: type[M]) -> M:
    """Query string into ``model``: list fields accept repeats and comma-separated values."""
    raw: dict[str, Any] = {}
    for name in set(request.query.keys()):
        values = request.query.getall(name)
        annotation = str(model.model_fields[name].annotation) if name in model.model_fields else ""
        if annotation.startswith("list") or "list[" in annotation:
            raw[name] = [v for value in values for v in value.split(",") if v]
        else:
            raw[name] = values[-1]
    return checked(model, raw)
