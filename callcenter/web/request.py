"""The request toolkit every feature's ``http.py`` uses: the principal, role checks, and
parsing of bodies, path segments and query strings into checked values.

A bad value answers 422 naming the field (or 404 for a path segment that is not a number),
in the JSON error shape of ``errors.py``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from callcenter.web.errors import bad_request, error_response, forbidden, invalid, unauthenticated

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


async def read_json(request: web.Request, model: type[M]) -> M:
    """Parse the body into ``model``; a 422 names the first bad field."""
    try:
        data = await request.json()
    except ValueError:
        raise bad_request("body must be JSON", "body") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or None
        raise bad_request(first["msg"], field) from None


def path_int(request: web.Request, name: str) -> int:
    """A numeric path segment; anything else is simply not found."""
    try:
        return int(request.match_info[name])
    except ValueError:
        raise error_response(404, "not_found", f"no such {name}") from None


def query_int(request: web.Request, name: str) -> int:
    """A non-negative integer query parameter."""
    try:
        value = int(request.query[name])
    except ValueError:
        raise bad_request(f"{name} must be an integer", name) from None
    if value < 0:
        raise bad_request(f"{name} must not be negative", name)
    return value


def query_time(request: web.Request, name: str, *, end: bool) -> datetime:
    """A date (whole day, UTC; with ``end`` the day is included) or an ISO datetime with a
    zone."""
    raw = request.query[name]
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw) + (timedelta(days=1) if end else timedelta())
            return datetime.combine(day, time(), UTC)
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise bad_request(f"{name} must be a date or an ISO datetime", name) from None
    if value.tzinfo is None:
        raise bad_request(f"{name} needs a timezone", name)
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
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise invalid(exc) from None
