"""JSON errors of the API: ``{"error": {"code", "message", "field"?}}`` with an HTTP status.

Handlers raise the helpers below; ``errors_middleware`` turns everything else (pydantic
validation, domain errors carrying ``status`` and ``code``, unexpected failures) into the same
shape, so clients parse one error format.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from callcenter.errors import DomainError

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def http_error(cls: type[web.HTTPException], code: str, message: str,
               field: str | None = None, headers: dict[str, str] | None = None,
               ) -> web.HTTPException:
    """An aiohttp HTTP exception carrying the project's JSON error body; raise it."""
    return cls(text=json.dumps(error_body(code, message, field), ensure_ascii=False),
               content_type="application/json", headers=headers)


def unauthenticated(message: str = "authentication required") -> web.HTTPException:
    return http_error(web.HTTPUnauthorized, "unauthenticated", message,
                      headers={"WWW-Authenticate": 'Bearer realm="callcenter"'})


def forbidden(message: str = "your role may not do this") -> web.HTTPException:
    return http_error(web.HTTPForbidden, "forbidden", message)


def bad_request(message: str, field: str | None = None) -> web.HTTPException:
    """A payload or query value that is wrong: 422 naming the field (as every route does)."""
    return http_error(web.HTTPUnprocessableEntity, "invalid", message, field)


def not_found(message: str = "not found") -> web.HTTPException:
    return http_error(web.HTTPNotFound, "not_found", message)


def conflict(message: str, field: str | None = None) -> web.HTTPException:
    return http_error(web.HTTPConflict, "conflict", message, field)


_BY_STATUS = {cls.status_code: cls for cls in (
    web.HTTPBadRequest, web.HTTPForbidden, web.HTTPNotFound, web.HTTPConflict,
    web.HTTPUnprocessableEntity, web.HTTPServiceUnavailable)}


def error_response(status: int, code: str, message: str, field: str | None = None
                   ) -> web.HTTPException:
    """The JSON error for a domain error's ``status`` (404, 409, 422...)."""
    return http_error(_BY_STATUS.get(status, web.HTTPException), code, message, field)


def invalid(exc: ValidationError, prefix: str = "") -> web.HTTPException:
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or None
    message = first["msg"].removeprefix("Value error, ")
    return error_response(422, "invalid", message, f"{prefix}{field}" if field else None)


_STATUS_CODES = {400: "invalid_request", 401: "unauthenticated", 403: "forbidden",
                 404: "not_found", 405: "method_not_allowed", 409: "conflict",
                 413: "too_large", 415: "unsupported_media_type", 422: "invalid",
                 429: "too_many_requests"}


def error_body(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        error["field"] = field
    return {"error": error}


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
    except DomainError as exc:
        return web.json_response(error_body(exc.code, exc.message, exc.field), status=exc.status)
    except Exception:
        log.exception("http unhandled error method=%s path=%s", request.method, request.path)
        return web.json_response(error_body("internal", "internal error"), status=500)


def _from_http_exception(exc: web.HTTPException) -> web.Response:
    code = _STATUS_CODES.get(exc.status, "error")
    message = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else exc.reason
    headers = {k: v for k, v in exc.headers.items()
               if k.lower() not in ("content-type", "content-length")}
    return web.Response(text=json.dumps(error_body(code, message), ensure_ascii=False),
                        status=exc.status, headers=headers, content_type="application/json")
