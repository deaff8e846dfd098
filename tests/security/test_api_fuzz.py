"""Property-based API testing over the OpenAPI document (schemathesis).

``callcenter serve --role web`` runs as its own process on SQLite and on PostgreSQL; every
operation of ``/api/v1/openapi.json`` gets generated requests as an admin, as a unit handler
and anonymously. Any 5xx, an undocumented status code, or a body that does not match the
documented schema fails the test. Routes added later are covered without a change here.
``CALLCENTER_FUZZ_EXAMPLES`` (default 5) bounds the examples per operation, role and engine.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from callcenter.web.request import API_PREFIX, PUBLIC_PATHS
from tests.bus.private_redis import free_port
from tests.conftest import _create_pg_database, _drop_pg_database

EXAMPLES = int(os.environ.get("CALLCENTER_FUZZ_EXAMPLES", "5"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
ADMIN_PASSWORD = "fuzz-Chief-pass-7421"
HANDLER_PASSWORD = "fuzz-Clerk-pass-9317"
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                suppress_health_check=list(HealthCheck),
                phases=[Phase.explicit, Phase.generate])


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def service(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[dict]:
    """A running web process on a fresh database, with an admin and a unit handler."""
    folder: Path = tmp_path_factory.mktemp("fuzz")
    pg_name = None
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{folder / 'callcenter.db'}"
    else:
        pg_name, url = asyncio.run(_create_pg_database())
    port = free_port()
    env = {**os.environ, "CALLCENTER_DATABASE__URL": url, "CALLCENTER_WEB__PORT": str(port),
           "CALLCENTER_SERVICE__ROLES": '["web"]',
           "CALLCENTER_AUTH__INITIAL_ADMIN_PASSWORD": ADMIN_PASSWORD,
           "CALLCENTER_AUTH__TOKEN_SECRET": "fuzz-" + "s" * 40,
           "CALLCENTER_LOGGING__LEVEL": "WARNING"}
    process = subprocess.Popen([sys.executable, "-m", "callcenter", "serve", "--upgrade"],
                               env=env, cwd=folder, stdout=subprocess.DEVNULL,
                               stderr=open(folder / "service.log", "wb"))
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base, process, folder)
        tokens = _people(base)
        yield {"base": base, "tokens": tokens, "log": folder / "service.log"}
    finally:
        process.terminate()
        process.wait(timeout=30)
        if pg_name:
            asyncio.run(_drop_pg_database(pg_name))


def _wait_healthy(base: str, process: subprocess.Popen, folder: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError((folder / "service.log").read_text())
        try:
            if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)  # a separate process: no event to wait on but its port
    raise RuntimeError("the service did not become healthy in 60 s")


def _people(base: str) -> dict[str, str | None]:
    def login(username: str, password: str) -> str:
        response = requests.post(f"{base}/api/v1/auth/login",
                                 json={"username": username, "password": password})
        response.raise_for_status()
        return response.json()["token"]

    admin = login("admin", ADMIN_PASSWORD)
    headers = {"Authorization": f"Bearer {admin}"}
    unit = requests.post(f"{base}/api/v1/units", json={"code": "FZ", "name": "模糊测试单位"},
                         headers=headers)
    unit.raise_for_status()
    requests.post(f"{base}/api/v1/users", headers=headers,
                  json={"username": "handler", "password": HANDLER_PASSWORD,
                        "role": "unit_handler", "unit_id": unit.json()["id"]}
                  ).raise_for_status()
    return {"admin": admin, "unit_handler": login("handler", HANDLER_PASSWORD),
            "anonymous": None}


@pytest.fixture(scope="module")
def api_schema(service: dict):
    return schemathesis.openapi.from_url(f"{service['base']}/api/v1/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


def _call(case, service: dict, role: str) -> None:
    token = service["tokens"][role]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = case.call_and_validate(base_url=service["base"], headers=headers, checks=CHECKS)
    if role == "anonymous" and case.path.startswith(API_PREFIX) \
            and case.path not in PUBLIC_PATHS:
        # Nothing but a token refusal, or HTTP refusing the request before anyone reads it.
        assert response.status_code in (400, 401)


@schema.parametrize()
@FUZZ
def test_as_admin(case, service) -> None:
    _call(case, service, "admin")


@schema.parametrize()
@FUZZ
def test_as_unit_handler(case, service) -> None:
    _call(case, service, "unit_handler")


@schema.parametrize()
@FUZZ
def test_anonymously(case, service) -> None:
    _call(case, service, "anonymous")


def test_the_service_logged_no_unhandled_error(service: dict) -> None:
    """Runs after the fuzzing of its engine (module order): no traceback was logged."""
    assert "unhandled error" not in service["log"].read_text(encoding="utf-8")
