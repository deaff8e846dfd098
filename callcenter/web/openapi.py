"""OpenAPI 3.1 document generated from the app's route table and the pydantic schemas.

Every route of the app is listed; routes declared with ``routing.Api`` carry their summary,
roles, payload and response schemas; others (e.g. another feature's plain handlers) are
listed with their docstring. Nothing is hand-copied, so the document follows the code.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from callcenter.web.request import API_PREFIX, PUBLIC_PATHS
from callcenter.web.routing import ApiSpec

_PLACEHOLDER = re.compile(r"{(\w+)}")
_WORD = re.compile(r"\W+")


def build_openapi(app: web.Application, *, title: str = "callcenter API",
                  version: str = "1") -> dict[str, Any]:
    routes = [(route, _path_of(route)) for route in app.router.routes()]
    specs = [getattr(r.handler, "api_spec", None) for r, _ in routes]
    refs, schemas = models_json_schema(_models([s for s in specs if s is not None]),
                                       ref_template="#/components/schemas/{model}")
    paths: dict[str, dict[str, Any]] = {}
    for (route, path), spec in zip(routes, specs, strict=True):
        method = route.method.lower()
        if path is None or method in ("head", "*"):
            continue
        defs = schemas.get("$defs", {})
        paths.setdefault(path, {})[method] = _operation(route, path, spec, refs, defs)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": schemas.get("$defs", {}),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "bearerFormat": "JWT"}},
        },
    }


def _path_of(route: web.AbstractRoute) -> str | None:
    info = route.resource.get_info() if route.resource else {}
    return info.get("path") or info.get("formatter")


def _models(specs: list[ApiSpec]) -> list[tuple[type[BaseModel], JsonSchemaMode]]:
    """Payloads as they are validated, responses as they are serialised."""
    found: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {}
    for spec in specs:
        for model in (spec.body, spec.query):
            if model is not None:
                found[(model, "validation")] = None
        if spec.response is not None:
            found[(spec.response, "serialization")] = None
    return list(found)


def _operation(route: web.AbstractRoute, path: str, spec: ApiSpec | None,
               refs: dict[Any, Any], defs: dict[str, Any]) -> dict[str, Any]:
    handler = route.handler
    doc = (handler.__doc__ or "").strip()
    op: dict[str, Any] = {
        "operationId": route.method.lower() + "_" + _WORD.sub("_", path).strip("_"),
        "summary": spec.summary if spec else (doc.splitlines()[0] if doc else path),
        "parameters": [_path_param(name, spec) for name in _PLACEHOLDER.findall(path)],
        "responses": {},
    }
    if doc:
        op["description"] = doc
    if path not in PUBLIC_PATHS:
        op["security"] = [{"bearer": []}]
    if spec is None:
        op["responses"]["default"] = {"description": "see the handler"}
        return op
    op["x-roles"] = [str(r) for r in spec.roles]
    if spec.query is not None:
        op["parameters"] += _query_params(defs[spec.query.__name__])
    if spec.body is not None:
        required = any(f.is_required() for f in spec.body.model_fields.values())
        op["requestBody"] = {"required": required, "content": {
            "application/json": {"schema": refs[(spec.body, "validation")]}}}
    ok: dict[str, Any] = {"description": "OK"}
    if spec.response is not None:
        ok["content"] = {"application/json": {"schema": refs[(spec.response, "serialization")]}}
    op["responses"][str(spec.status)] = ok
    for status in spec.errors:
        op["responses"][str(status)] = {"description": _ERRORS[status],
                                        "content": {"application/json": {"schema": _ERROR}}}
    # A request HTTP itself refuses (a request line too long...) is answered by the server
    # before any handler, in plain text.
    op["responses"]["400"] = {"description": _ERRORS[400], "content": {
        "application/json": {"schema": _ERROR}, "text/plain": {"schema": {"type": "string"}}}}
    return op


def _path_param(name: str, spec: ApiSpec | None) -> dict[str, Any]:
    kind = "integer" if spec is not None and name.endswith("_id") else "string"
    return {"name": name, "in": "path", "required": True, "schema": {"type": kind}}


def _query_params(schema: dict[str, Any]) -> list[dict[str, Any]]:
    required = set(schema.get("required", []))
    return [{"name": name, "in": "query", "required": name in required,
             "schema": prop, "explode": False}
            for name, prop in schema.get("properties", {}).items()]


_ERRORS = {400: "malformed request", 401: "not authenticated", 403: "role not allowed",
           404: "not found or not visible",
           409: "not allowed in the current state", 422: "invalid payload",
           429: "too many attempts; see Retry-After"}
_ERROR = {
    "type": "object",
    "properties": {"error": {"type": "object", "properties": {
        "code": {"type": "string"},
        "field": {"type": "string"}, "message": {"type": "string"}},
        "required": ["code", "message"]}},
    "required": ["error"],
}


async def serve_openapi(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 document of this service (public)."""
    return web.json_response(build_openapi(request.app))


def setup_openapi(app: web.Application) -> None:
    """Serve the document at ``/api/v1/openapi.json`` (after every feature added its routes:
    the document is built per request from the route table)."""
    app.router.add_get(f"{API_PREFIX}/openapi.json", serve_openapi)
