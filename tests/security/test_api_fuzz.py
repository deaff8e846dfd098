"""Property-based API testing over the OpenAPI document (schemathesis).

``callcenter serve --role web`` runs as its own process on SQLite and as another on
PostgreSQL. Every operation of ``/api/v1/openapi.json`` gets generated requests (the schema's
examples and coverage cases, then ``CALLCENTER_FUZZ_EXAMPLES`` random ones, default 5), and
each request goes to both processes as an admin, as a unit handler and anonymously; the cases
are generated once and shared, which is where the time goes. Any 5xx, an undocumented status
code, or a body that does not match the documented schema fails the test, named with its
engine and role. The PostgreSQL process gets what can meet the database differently: every
admin request, the unit handler's writes, and anonymous requests to the public routes (any
other anonymous request is refused before the database is read; the unit handler's reads are
the admin's queries narrowed to one unit). Routes added later are covered without a change
here.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
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
ENGINES = ("sqlite", "postgres")
ROLES = ("admin", "unit_handler", "anonymous")
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                suppress_health_check=list(HealthCheck),
                phases=[Phase.explicit, Phase.generate])


@dataclass
class Service:
    """One served web process, its people's tokens and a kept-alive connection per role."""

    base: str
    log: Path
    process: subprocess.Popen
    tokens: dict[str, str | None] = field(default_factory=dict)
    sessions: dict[str, requests.Session] = field(default_factory=dict)


@pytest.fixture(scope="module")
def services(tmp_path_factory) -> Iterator[dict[str, Service]]:
    """Both web processes, each on a fresh database with an admin and a unit handler; they
    start side by side."""
    pg_name, pg_url = asyncio.run(_create_pg_database())
    folder: Path = tmp_path_factory.mktemp("fuzz")
    urls = {"sqlite": f"sqlite+aiosqlite:///{folder / 'callcenter.db'}", "postgres": pg_url}
    started: dict[str, Service] = {}
    try:
        with ExitStack() as stack:
            for engine in ENGINES:
                started[engine] = _start(urls[engine], folder / engine)
                stack.callback(_stop, started[engine])
            for service in started.values():
                _wait_healthy(service)
                service.tokens = _people(service.base)
                service.sessions = {role: _session(stack) for role in ROLES}
            yield started
    finally:
        asyncio.run(_drop_pg_database(pg_name))


def _start(url: str, folder: Path) -> Service:
    folder.mkdir()
    port = free_port()
    env = {**os.environ, "CALLCENTER_DATABASE__URL": url, "CALLCENTER_WEB__PORT": str(port),
           "CALLCENTER_SERVICE__ROLES": '["web"]',
           "CALLCENTER_AUTH__INITIAL_ADMIN_PASSWORD": ADMIN_PASSWORD,
           "CALLCENTER_AUTH__TOKEN_SECRET": "fuzz-" + "s" * 40,
           "CALLCENTER_LOGGING__LEVEL": "WARNING"}
    log = folder / "service.log"
    with open(log, "wb") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "callcenter", "serve", "--upgrade"],
                                   env=env, cwd=folder, stdout=subprocess.DEVNULL, stderr=stderr)
    return Service(base=f"http://127.0.0.1:{port}", log=log, process=process)


def _stop(service: Service) -> None:
    service.process.terminate()
    service.process.wait(timeout=30)


def _session(stack: ExitStack) -> requests.Session:
    """A kept-alive connection that skips the per-request scan of proxy variables."""
    session = stack.enter_context(requests.Session())
    session.trust_env = False
    return session


def _wait_healthy(service: Service) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise RuntimeError(service.log.read_text())
        try:
            if requests.get(f"{service.base}/healthz", timeout=2).status_code == 200:
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
def api_schema(services: dict[str, Service]):
    return schemathesis.openapi.from_url(f"{services['sqlite'].base}/api/v1/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


def _needs_token(path: str) -> bool:
    return path.startswith(API_PREFIX) and path not in PUBLIC_PATHS


def _sent_to(engine: str, role: str, case) -> bool:
    """SQLite gets every request; PostgreSQL what the module's docstring says."""
    if engine == "sqlite" or role == "admin":
        return True
    if role == "unit_handler":
        return case.method.upper() not in ("GET", "HEAD", "OPTIONS")
    return not _needs_token(case.path)


def _call(case, service: Service, role: str) -> None:
    token = service.tokens[role]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    session = service.sessions[role]
    try:
        response = case.call_and_validate(base_url=service.base, session=session,
                                          headers=headers, checks=CHECKS)
    finally:
        session.cookies.clear()  # a role keeps only its token: no cookie from an earlier case
    if role == "anonymous" and _needs_token(case.path):
        # Nothing but a token refusal, or HTTP refusing the request before anyone reads it.
        assert response.status_code in (400, 401)


@schema.parametrize()
@FUZZ
def test_every_operation_on_both_engines_in_every_role(case, services) -> None:
    for engine, service in services.items():
        for role in ROLES:
            if not _sent_to(engine, role, case):
                continue
            try:
                _call(case, service, role)
            except BaseException as failure:
                failure.add_note(f"engine: {engine}, role: {role}")
                raise


@pytest.mark.parametrize("engine", ENGINES)
def test_the_service_logged_no_unhandled_error(services: dict[str, Service],
                                               engine: str) -> None:
    """Runs after the fuzzing (module order): the process logged no traceback."""
    assert "unhandled error" not in services[engine].log.read_text(encoding="utf-8")
