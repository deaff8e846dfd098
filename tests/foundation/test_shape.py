"""One shape for every feature, checked so that it stays (docs/ARCHITECTURE.md, "Layout").

The registry is walked as the service walks it: each feature declares exactly the shape's
modules it has, every route of the assembled app needs a token except the documented public
ones, every route is in the OpenAPI document, and the import rules hold: only
``telephony/`` imports panoramisk, no ``service.py`` imports aiohttp, and inside a feature
only ``http.py`` speaks HTTP.
"""

from __future__ import annotations

import ast
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

import callcenter
from callcenter.bus.memory import MemoryBus
from callcenter.clock import SystemClock
from callcenter.registry import FEATURES
from callcenter.settings import load_settings
from callcenter.store import migrations
from callcenter.store.engine import create_engine, create_sessionmaker
from callcenter.web.app import create_app
from callcenter.web.pages import PAGES_PREFIX
from callcenter.web.request import API_PREFIX, PUBLIC_PATHS

PACKAGE = Path(callcenter.__file__).parent
PARTS = {"http": "setup_web", "listeners": "listeners", "agi": "scripts", "workers": "workers"}
"""The shape's wired modules and what each must define."""
SHARED_LAYERS = {"web", "store", "bus", "telephony", "simulator"}
"""Packages that are not features: the layers features are built on."""
OPERATIONAL = {"/healthz", "/metrics"}
"""Routes outside the API: no personal data, no token (load balancers, Prometheus)."""
PAGES = {"/", f"{PAGES_PREFIX}/", f"{PAGES_PREFIX}/{{name}}"}
"""The pages' static files: they hold no data and read everything through the API."""


def packages() -> list[str]:
    return sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py"))


def runtime_imports(path: Path) -> set[str]:
    """Modules ``path`` imports when it runs (imports for type checking only excluded)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = {id(node) for block in ast.walk(tree) if isinstance(block, ast.If)
               and "TYPE_CHECKING" in ast.unparse(block.test)
               for node in ast.walk(block)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def importers_of(root: str, files: list[Path]) -> list[str]:
    return sorted(str(f.relative_to(PACKAGE)) for f in files
                  if any(m == root or m.startswith(root + ".") for m in runtime_imports(f)))


def test_features_are_packages_with_unique_names_and_auth_first() -> None:
    names = [feature.name for feature in FEATURES]
    assert len(names) == len(set(names))
    assert names[0] == "auth"  # its middleware must guard the routes added after it
    assert set(names) <= set(packages())


def test_every_package_is_a_registered_feature_or_a_shared_layer() -> None:
    """A new feature package that is not in the registry would never be wired."""
    registered = {feature.name for feature in FEATURES}
    assert set(packages()) - registered - SHARED_LAYERS == set()


@pytest.mark.parametrize("feature", FEATURES, ids=lambda f: f.name)
def test_a_feature_declares_exactly_the_parts_it_has(feature) -> None:
    for part, name in PARTS.items():
        exists = (PACKAGE / feature.name / f"{part}.py").exists()
        assert getattr(feature, part) == exists, f"{feature.name}: {part}.py"
        if exists:
            assert hasattr(feature.module(part), name), f"{feature.name}.{part}.{name}"


def test_only_telephony_imports_panoramisk() -> None:
    outside = [f for f in PACKAGE.rglob("*.py") if "telephony" not in f.parts]
    assert importers_of("panoramisk", outside) == []
    assert importers_of("panoramisk", list((PACKAGE / "telephony").glob("*.py")))


def test_no_service_module_imports_aiohttp() -> None:
    services = list(PACKAGE.rglob("service.py"))
    assert len(services) >= 3
    assert importers_of("aiohttp", services) == []


def test_inside_a_feature_only_http_speaks_http() -> None:
    """Domain modules stay free of request objects (``testing.py`` builds test apps)."""
    files = [f for feature in FEATURES for f in (PACKAGE / feature.name).glob("*.py")
             if f.name not in ("http.py", "testing.py")]
    assert importers_of("aiohttp", files) == []


def test_the_import_rules_catch_a_breach(tmp_path: Path) -> None:
    """The checks above read real imports, not file names: a planted breach is found."""
    breach = tmp_path / "service.py"
    breach.write_text("from aiohttp import web\nimport panoramisk.fast_agi\n", encoding="utf-8")
    typed = tmp_path / "typed.py"
    typed.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                     "    from aiohttp import web\n", encoding="utf-8")
    assert runtime_imports(breach) == {"aiohttp", "panoramisk.fast_agi"}
    assert runtime_imports(typed) == {"typing"}


@pytest.fixture
async def client(sqlite_url: str) -> AsyncIterator[TestClient]:
    await migrations.upgrade(sqlite_url)
    engine = create_engine(sqlite_url)
    app = create_app(load_settings(None, env={}), create_sessionmaker(engine), MemoryBus(),
                     SystemClock())
    async with TestClient(TestServer(app)) as test_client:
        yield test_client
    await engine.dispose()


def routes(client: TestClient) -> list[tuple[str, str]]:
    found = set()
    for route in client.app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        if route.method not in ("HEAD", "*") and path:
            found.add((route.method, path))
    return sorted(found)


async def test_every_api_route_needs_a_token_except_the_public_ones(client) -> None:
    checked = 0
    for method, path in routes(client):
        if not path.startswith(API_PREFIX):
            assert path in OPERATIONAL | PAGES, f"{method} {path} is outside the API"
            continue
        url = re.sub(r"{\w+}", "1", path)
        response = await client.request(method, url, json={})
        if path in PUBLIC_PATHS:
            assert response.status != 401, f"{method} {path}"
        else:
            assert response.status == 401, f"{method} {path} answered {response.status}"
            checked += 1
    assert checked >= 40  # tickets, auth, supervision and knowledge routes


async def test_every_route_is_in_the_openapi_document(client) -> None:
    document = await (await client.get(f"{API_PREFIX}/openapi.json")).json()
    listed = {(method.upper(), path) for path, operations in document["paths"].items()
              for method in operations}
    api_routes = {(m, p) for m, p in routes(client) if p.startswith(API_PREFIX)}
    assert api_routes - listed == set()
    public = {(m, p) for m, p in api_routes
              if "security" not in document["paths"][p][m.lower()]}
    assert {p for _, p in public} == set(PUBLIC_PATHS)
