"""JSON errors of the API: ``{"error": {"code", "message", "field"?}}`` with an HTTP status.

The same shape as the app factory's error middleware, so clients parse one error format.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web


def http_error(cls: type[web.HTTPException], code: str, message: str,
               field: str | None = None, headers: dict[str, str] | None = None,
               ) -> web.HTTPException:
    """An aiohttp HTTP exception carrying the project's JSON error body; raise it."""
    body: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        body["field"] = field
    return cls(text=json.dumps({"error": body}, ensure_ascii=False),
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
