"""The app factory over real TCP: health, metrics and the one JSON error shape."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from callcenter.bus.memory import MemoryBus
from callcenter.bus.redis import RedisBus
from callcenter.clock import SystemClock
from callcenter.settings import load_settings
from callcenter.store.engine import create_engine, create_sessionmaker
from callcenter.telephony.config import AgiConfig, AmiConfig
from callcenter.telephony.service import Telephony
from callcenter.tickets.errors import TicketNotFound
from callcenter.web.app import create_app
from tests.bus.private_redis import free_port, start_redis, stop_redis


def settings_for(**env: str):
    return load_settings(None, env={f"CALLCENTER_{k}": v for k, v in env.items()})


async def serve(app: web.Application) -> TestClient:
    client = TestClient(TestServer(app, host="127.0.0.1", port=0))
    await client.start_server()
    return client


@pytest.fixture
async def engine(sqlite_url: str) -> AsyncIterator:
    engine = create_engine(sqlite_url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def client(engine) -> AsyncIterator[TestClient]:
    bus = MemoryBus()
    app = create_app(settings_for(), create_sessionmaker(engine), bus, SystemClock(),
                     live_calls=lambda: 3)

    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("secret details must not leak")

    async def missing_ticket(request: web.Request) -> web.Response:
        raise TicketNotFound("ticket 42 not found", field="ticket_id")

    app.router.add_get("/test/boom", boom)
    app.router.add_get("/test/ticket", missing_ticket)
    client = await serve(app)
    yield client
    await client.close()


async def test_healthz_is_ok_on_the_embedded_defaults(client: TestClient) -> None:
    response = await client.get("/healthz")
    assert response.status == 200
    body = await response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"] == {"ok": True, "required": True}
    assert body["checks"]["bus"] == {"ok": True, "required": False, "backend": "memory"}
    assert body["checks"]["ami"]["in_process"] is False


async def test_metrics_count_requests_by_route_in_prometheus_text(client: TestClient) -> None:
    await client.get("/healthz")
    await client.get("/no/such/page")
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    text = await response.text()
    assert 'callcenter_http_requests_total{method="GET",route="/healthz",status="200"} 1.0' in text
    assert 'route="unmatched",status="404"' in text
    assert "callcenter_http_request_duration_seconds_bucket" in text
    assert "callcenter_calls_active 3.0" in text
    assert "callcenter_ami_connected 0.0" in text


async def test_errors_share_one_json_shape(client: TestClient) -> None:
    response = await client.get("/no/such/page")
    assert response.status == 404
    assert (await response.json())["error"]["code"] == "not_found"

    response = await client.get("/test/ticket")
    assert response.status == 404
    assert await response.json() == {"error": {"code": "not_found",
                                               "message": "ticket 42 not found",
                                               "field": "ticket_id"}}

    response = await client.get("/test/boom")
    assert response.status == 500
    body = await response.json()
    assert body == {"error": {"code": "internal", "message": "internal error"}}

    response = await client.post("/healthz")
    assert response.status == 405
    assert (await response.json())["error"]["code"] == "method_not_allowed"
    assert "GET" in response.headers["Allow"]


async def test_a_database_that_is_down_gives_503() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    engine = create_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{port}/nothing")
    app = create_app(settings_for(), create_sessionmaker(engine), MemoryBus(), SystemClock())
    client = await serve(app)
    try:
        response = await client.get("/healthz")
        assert response.status == 503
        body = await response.json()
        assert body["status"] == "down" and body["checks"]["database"]["ok"] is False
    finally:
        await client.close()
        await engine.dispose()


async def test_redis_is_required_when_the_bus_is_redis(engine, tmp_path: Path,
                                                      redis_prefix: str) -> None:
    port = free_port()
    process = start_redis(port, tmp_path)
    url = f"redis://127.0.0.1:{port}/0"
    bus = RedisBus(url, redis_prefix, client_name=f"cctest-web-{uuid.uuid4().hex[:6]}")
    await bus.start()
    settings = settings_for(BUS__BACKEND="redis", BUS__REDIS_URL=url)
    client = await serve(create_app(settings, create_sessionmaker(engine), bus, SystemClock()))
    try:
        response = await client.get("/healthz")
        assert response.status == 200
        assert (await response.json())["checks"]["bus"] == {
            "ok": True, "required": True, "backend": "redis"}
        stop_redis(process)
        response = await client.get("/healthz")
        assert response.status == 503
        assert (await response.json())["checks"]["bus"]["ok"] is False
    finally:
        await client.close()
        await bus.close()
        if process.poll() is None:
            stop_redis(process)


async def test_ami_down_makes_a_telephony_process_unhealthy(engine) -> None:
    clock = SystemClock()
    bus = MemoryBus()
    telephony = Telephony(AmiConfig(port=free_port()), AgiConfig(port=0), bus, clock)
    app = create_app(settings_for(), create_sessionmaker(engine), bus, clock, telephony)
    client = await serve(app)
    try:
        response = await client.get("/healthz")
        assert response.status == 503
        assert (await response.json())["checks"]["ami"] == {
            "ok": False, "required": True, "in_process": True}
        assert "callcenter_ami_connected 0.0" in await (await client.get("/metrics")).text()
    finally:
        await client.close()
