"""The aiohttp app factory: shared services under typed keys, one error mapping, features.

Features never see globals: each reads what it needs from the keys in ``web/keys.py`` inside
its ``setup_web(app)``. Errors become JSON in ONE place (``errors_middleware``):
``{"error": {"code": ..., "message": ..., "field": ...}}``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.auth import http as auth_http
from callcenter.bus import Bus
from callcenter.clock import Clock
from callcenter.tickets import http as tickets_http
from callcenter.tickets import supervision
from callcenter.web.health import setup_health
from callcenter.web.keys import BUS, CLOCK, SESSIONMAKER, SETTINGS, TELEPHONY

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Features wired into the app, in order (auth first: its middleware guards the others).
FEATURES = (auth_http.setup_web, tickets_http.setup_web, supervision.setup_web)
"""Each feature adds its routes and middleware; order matters (auth first)."""

_STATUS_CODES = {400: "invalid_request", 401: "unauthenticated", 403: "forbidden",
                 404: "not_found", 405: "method_not_allowed", 409: "conflict",
                 413: "too_large", 415: "unsupported_media_type", 422: "invalid",
                 429: "too_many_requests"}


def create_app(settings: Any, sessionmaker: async_sessionmaker[AsyncSession], bus: Bus,
               clock: Clock, telephony: Any = None, *,
               live_calls: Callable[[], int] | None = None) -> web.Application:
    """Build the app; the caller owns (starts and stops) the services passed in."""
    app = web.Application(middlewares=[errors_middleware])
    app[SETTINGS] = settings
    app[SESSIONMAKER] = sessionmaker
    app[BUS] = bus
    app[CLOCK] = clock
    if telephony is not None:
        app[TELEPHONY] = telephony
    setup_health(app, live_calls=live_calls)
    for setup_web in FEATURES:
        setup_web(app)
    return app


def error_body(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        error["field"] = field
    return {"error": error}


def _is_domain_error(exc: Exception) -> bool:
    """Domain errors carry ``status`` (HTTP) and ``code`` (stable id), e.g. TicketError."""
    return isinstance(getattr(exc, "status", None), int) and isinstance(
        getattr(exc, "code", None), str)


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure leaves as the same JSON shape; unexpected ones are logged, not shown."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        return _from_http_exception(exc)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or None
        return web.json_response(error_body("invalid", first["msg"], field), status=422)
    except Exception as exc:
        if _is_domain_error(exc):
            message = getattr(exc, "message", None) or str(exc)
            body = error_body(exc.code, message, getattr(exc, "field", None))  # type: ignore[attr-defined]
            return web.json_response(body, status=exc.status)  # type: ignore[attr-defined]
        log.exception("http unhandled error method=%s path=%s", request.method, request.path)
        return web.json_response(error_body("internal", "internal error"), status=500)


def _from_http_exception(exc: web.HTTPException) -> web.Response:
    code = _STATUS_CODES.get(exc.status, "error")
    message = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else exc.reason
    headers = {k: v for k, v in exc.headers.items()
               if k.lower() not in ("content-type", "content-length")}
    return web.Response(text=json.dumps(error_body(code, message), ensure_ascii=False),
                        status=exc.status, headers=headers, content_type="application/json")
