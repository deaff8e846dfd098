"""Declared API routes: one place that knows each route's roles, payload and response.

A handler is registered with ``@api.route(...)``; the declaration both wires aiohttp and
feeds the OpenAPI document (``openapi.py``), so the document cannot drift from the code.
Payloads are parsed here: a bad one answers 422 naming the field; domain errors raised by
the endpoint (``DomainError``) become their HTTP status in ``errors.errors_middleware``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from callcenter.auth.principal import Role
from callcenter.web.request import checked, json_body, parse_query, require_role

log = logging.getLogger(__name__)

Endpoint = Callable[[web.Request, Any, Any], Awaitable[BaseModel]]
"""``(request, principal, payload)``; the principal is None on a public route."""


class NoBody(BaseModel):
    """The body of a write route that needs none: absent, or an empty object."""

    model_config = ConfigDict(extra="forbid")


WRITES = ("POST", "PUT", "PATCH")


@dataclass(frozen=True)
class ApiSpec:
    method: str
    path: str
    summary: str
    roles: tuple[Role, ...]
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    errors: tuple[int, ...] = (401, 403, 404, 409, 422)
    public: bool = False
    """Answered without a token (``web.request.PUBLIC_PATHS``): no principal."""


@dataclass
class Api:
    """The routes of one feature, registered on an app by ``install``."""

    routes: list[tuple[ApiSpec, Callable[[web.Request], Awaitable[web.StreamResponse]]]] = (
        field(default_factory=list))

    def route(self, method: str, path: str, *, summary: str, roles: tuple[Role, ...],
              body: type[BaseModel] | None = None, query: type[BaseModel] | None = None,
              response: type[BaseModel] | None = None, status: int = 200,
              errors: tuple[int, ...] = (401, 403, 404, 409, 422), public: bool = False,
              ) -> Callable[[Endpoint], Endpoint]:
        if body is None and query is None and method in WRITES:
            body = NoBody  # every write route declares its body (schema-driven clients)
        spec = ApiSpec(method, path, summary, roles, body, query, response, status, errors,
                       public)

        def register(endpoint: Endpoint) -> Endpoint:
            async def handler(request: web.Request) -> web.StreamResponse:
                principal = None if spec.public else require_role(request, *spec.roles)
                payload = await _payload(request, spec)
                result = await endpoint(request, principal, payload)
                return web.json_response(text=result.model_dump_json(), status=spec.status)

            handler.api_spec = spec  # type: ignore[attr-defined]
            handler.__doc__ = endpoint.__doc__
            self.routes.append((spec, handler))
            return endpoint

        return register

    def install(self, app: web.Application) -> None:
        for spec, handler in self.routes:
            app.router.add_route(spec.method, spec.path, handler)


async def _payload(request: web.Request, spec: ApiSpec) -> Any:
    if spec.body is not None:
        return checked(spec.body, await json_body(request))
    if spec.query is not None:
        return parse_query(request, spec.query)
    return None
