"""Security review: each test proves one guarantee over real HTTP (SQLite and PostgreSQL).

Findings fixed with this file: tokens in a websocket URL reached the access log; a live
notification socket outlived its token and its user's unit; a tampered search cursor
answered 500. The other tests guard guarantees that had no test yet.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import aiohttp
import jwt
import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.auth.config import AuthConfig
from callcenter.auth.models import User
from callcenter.auth.principal import Principal, Role
from callcenter.auth.testing import (
    TEST_PASSWORD,
    bare_app,
    bearer,
    make_unit,
    make_user,
    test_auth_config,
    token_for,
)
from callcenter.bus.memory import MemoryBus
from callcenter.clock import FrozenClock, SystemClock
from callcenter.knowledge import http as knowledge_http
from callcenter.settings import load_settings
from callcenter.supervision import http as supervision_http
from callcenter.supervision.notifications import topic_for
from callcenter.web.app import create_app
from tests.tickets.conftest import Hotline, quick_user

ONE_ENGINE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # no data read
PHONE = "13812345678"


# --- tokens ------------------------------------------------------------------------------


@ONE_ENGINE
async def test_a_token_in_the_url_never_reaches_the_access_log(
        sessionmaker: async_sessionmaker[AsyncSession], clock: FrozenClock,
        caplog: pytest.LogCaptureFixture) -> None:
    """Browsers pass the websocket token as ``?access_token=``: the access log (the request
    line and its structured ``first_request_line``) must not keep it."""
    config = test_auth_config()
    app = bare_app(sessionmaker, clock, config=config)
    user = await quick_user(sessionmaker, clock, Role.SUPERVISOR, None)
    token = token_for(user, config, clock)
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    # One connection: the server logs a request before it reads the next one.
    connector = aiohttp.TCPConnector(limit=1)
    async with TestClient(TestServer(app), connector=connector) as client:
        response = await client.get(f"/api/v1/auth/me?access_token={token}",
                                    headers={"Upgrade": "websocket"})
        assert response.status == 200
        await response.read()
        response = await client.get("/api/v1/auth/me", headers=bearer(token))
        assert response.status == 200
        await response.read()
    lines = [r for r in caplog.records if r.name == "aiohttp.access"]
    assert any("/api/v1/auth/me?access_token=" in r.getMessage() for r in lines)
    for record in lines:
        assert token not in record.getMessage()
        assert token not in str(getattr(record, "first_request_line", ""))


@ONE_ENGINE
async def test_a_url_token_opens_only_a_websocket_upgrade(hotline: Hotline) -> None:
    token = token_for(hotline.supervisor.principal, test_auth_config(), hotline.clock)
    response = await hotline.client.get(f"/api/v1/tickets?access_token={token}")
    assert response.status == 401


@ONE_ENGINE
async def test_tokens_without_expiry_or_with_a_confused_algorithm_are_refused(
        hotline: Hotline) -> None:
    config = test_auth_config()
    good = token_for(hotline.supervisor.principal, config, hotline.clock)
    claims = jwt.decode(good, options={"verify_signature": False})
    secret = config.token_secret.get_secret_value()
    no_expiry = jwt.encode({k: v for k, v in claims.items() if k != "exp"}, secret,
                           algorithm="HS256")
    other_hmac = jwt.encode(claims, secret, algorithm="HS384")
    for token in (no_expiry, other_hmac):
        response = await hotline.client.get("/api/v1/tickets", headers=bearer(token))
        assert response.status == 401
    assert (await hotline.client.get("/api/v1/tickets", headers=bearer(good))).status == 200


async def test_a_token_carries_no_authority_the_user_row_has_lost(hotline: Hotline) -> None:
    """A unit handler moved to unit B keeps their token but no longer sees unit A's orders;
    a demoted supervisor keeps their token but no longer dispatches."""
    h = hotline
    tid = (await h.dispatched(unit=h.unit_a))["id"]
    headers = h.handler_a.headers
    supervisor_headers = h.supervisor.headers
    async with h.sessionmaker() as session, session.begin():
        await session.execute(update(User).where(User.id == h.handler_a.principal.user_id)
                              .values(unit_id=h.unit_b))
        await session.execute(update(User).where(User.id == h.supervisor.principal.user_id)
                              .values(role=str(Role.AGENT)))
    response = await h.client.get(f"/api/v1/tickets/{tid}", headers=headers)
    assert response.status == 404
    page = await (await h.client.get("/api/v1/tickets", headers=headers)).json()
    assert page["items"] == []
    response = await h.client.post(f"/api/v1/tickets/{tid}/dispatch", headers=supervisor_headers,
                                   json={"lead_unit_id": h.unit_b})
    assert response.status == 403


# --- live notifications ------------------------------------------------------------------


@dataclass
class Live:
    client: TestClient
    bus: MemoryBus
    clock: FrozenClock
    config: AuthConfig
    sessionmaker: async_sessionmaker[AsyncSession]


@pytest.fixture
async def live(sessionmaker: async_sessionmaker[AsyncSession], clock: FrozenClock
               ) -> AsyncIterator[Live]:
    bus = MemoryBus()
    await bus.start()
    config = test_auth_config(token_ttl_minutes=60)
    app = bare_app(sessionmaker, clock, config=config, bus=bus)
    supervision_http.setup_web(app)  # notifications, flags
    knowledge_http.setup_web(app)
    try:
        async with TestClient(TestServer(app)) as client:
            yield Live(client, bus, clock, config, sessionmaker)
    finally:
        await bus.close()


def _notice(unit_id: int) -> dict[str, object]:
    return {"notifications": [{"id": 1, "kind": "overdue", "ticket_id": 7,
                               "recipient_unit_id": unit_id, "text": "工单已超期"}]}


async def _connect(live: Live, handler: Principal) -> aiohttp.ClientWebSocketResponse:
    token = token_for(handler, live.config, live.clock)
    ws = await live.client.ws_connect(f"/api/v1/notifications/ws?access_token={token}")
    assert (await ws.receive_json(timeout=5))["type"] == "ready"
    return ws


async def test_a_live_socket_ends_when_its_token_expires(live: Live) -> None:
    unit = await make_unit(live.sessionmaker)
    handler = await quick_user(live.sessionmaker, live.clock, Role.UNIT_HANDLER, unit.id)
    ws = await _connect(live, handler)
    await live.bus.publish(topic_for(unit.id, None), _notice(unit.id))
    assert (await ws.receive_json(timeout=5))["type"] == "notifications"
    live.clock.advance(timedelta(minutes=61))
    await live.bus.publish(topic_for(unit.id, None), _notice(unit.id))
    message = await ws.receive(timeout=5)
    assert message.type in (WSMsgType.CLOSE, WSMsgType.CLOSED), message
    await ws.close()


async def test_a_live_socket_ends_when_its_user_leaves_the_unit(live: Live) -> None:
    unit, other = await make_unit(live.sessionmaker), await make_unit(live.sessionmaker)
    handler = await quick_user(live.sessionmaker, live.clock, Role.UNIT_HANDLER, unit.id)
    ws = await _connect(live, handler)
    async with live.sessionmaker() as session, session.begin():
        await session.execute(update(User).where(User.id == handler.user_id)
                              .values(unit_id=other.id))
    await live.bus.publish(topic_for(unit.id, None), _notice(unit.id))
    message = await ws.receive(timeout=5)
    assert message.type in (WSMsgType.CLOSE, WSMsgType.CLOSED), message
    await ws.close()


# --- search ------------------------------------------------------------------------------


@pytest.mark.parametrize("cursor", ["99999999999999999999-1", "999999999999999999-1",
                                    "1784000000000000-9999999999999999999"])
async def test_a_tampered_cursor_is_refused_not_a_server_error(hotline: Hotline,
                                                               cursor: str) -> None:
    body = await hotline.call(hotline.agent, "GET", "/tickets", expect=422, cursor=cursor)
    assert body["error"]["field"] == "cursor"


async def test_search_parameters_are_data_not_sql(hotline: Hotline) -> None:
    h = hotline
    tid = (await h.new_ticket())["id"]
    for text in ("' OR '1'='1", "噪音'; DROP TABLE tickets; --"):
        page = await h.call(h.agent, "GET", "/tickets", expect=200, text=text)
        assert page["items"] == []
    await h.call(h.agent, "GET", "/tickets", expect=422, topic="x' OR 1=1 --", limit="1;")
    body = await h.call(h.supervisor, "GET", "/audit", expect=200, object_id="1' OR '1'='1")
    assert body["entries"] == []
    page = await h.call(h.agent, "GET", "/tickets", expect=200)
    assert [t["id"] for t in page["items"]] == [tid]


# --- unit isolation ----------------------------------------------------------------------


async def test_another_units_order_is_404_on_every_unit_route_and_absent_from_search(
        hotline: Hotline) -> None:
    h = hotline
    theirs = await h.dispatched(unit=h.unit_b)
    tid = theirs["id"]
    await h.call(h.handler_b, "POST", f"/tickets/{tid}/accept", expect=200)
    await h.call(h.handler_b, "POST", f"/tickets/{tid}/return", {"reason": "非本单位"},
                 expect=200)
    await h.call(h.supervisor, "POST", f"/tickets/{tid}/dispatch", {"lead_unit_id": h.unit_c},
                 expect=200)
    proof = {"attachments": [{"kind": "photo", "name": "现场", "ref": "blob/1"}]}
    for who in (h.handler_a, h.handler_b):  # never held it / held it before the return
        for method, path, body in (
                ("GET", "", None), ("GET", "/timeline", None), ("POST", "/accept", None),
                ("POST", "/start", None), ("POST", "/contact", {"note": "已联系"}),
                ("POST", "/return", {"reason": "非本单位"}),
                ("POST", "/reply", {"content": "已办", **proof}),
                ("POST", "/extensions", {"days": 5, "reason": "需要协调"})):
            response = await h.client.request(method, f"/api/v1/tickets/{tid}{path}",
                                              json=body, headers=who.headers)
            assert response.status == 404, (method, path, await response.text())
        for params in ({"text": theirs["number"]}, {"unit_id": str(h.unit_c)},
                       {"text": "噪音"}, {}):
            page = await h.call(who, "GET", "/tickets", expect=200, **params)
            assert page["items"] == [], params
    counts = await h.call(h.handler_a, "GET", "/ticket-counts/units", expect=200)
    assert counts["units"] == []
    await h.call(h.handler_a, "POST", f"/tickets/{tid}/link-duplicate",
                 {"duplicate_of": tid}, expect=403)


async def test_a_unit_handler_cannot_reach_admin_routes_or_change_their_own_role(
        hotline: Hotline) -> None:
    h = hotline
    me = h.handler_a.principal.user_id
    for method, path in (("GET", "/users"), ("PATCH", f"/users/{me}"), ("GET", f"/users/{me}"),
                         ("POST", "/units"), ("PATCH", f"/units/{h.unit_b}"), ("GET", "/audit")):
        response = await h.client.request(method, "/api/v1" + path, headers=h.handler_a.headers,
                                          json={"role": "admin", "unit_id": h.unit_b})
        assert response.status == 403, (method, path)
    me_now = await h.call(h.handler_a, "GET", "/auth/me", expect=200)
    assert (me_now["role"], me_now["unit_id"]) == ("unit_handler", h.unit_a)


@ONE_ENGINE
async def test_units_cannot_write_the_knowledge_base_or_touch_flags(live: Live) -> None:
    unit = await make_unit(live.sessionmaker)
    handler = await quick_user(live.sessionmaker, live.clock, Role.UNIT_HANDLER, unit.id)
    headers = bearer(token_for(handler, live.config, live.clock))
    article = {"title": "办理居住证", "answer": "携带身份证到派出所办理。"}
    for method, path, body in (("POST", "/knowledge", article),
                               ("PATCH", "/knowledge/1", {"title": "改"}),
                               ("DELETE", "/knowledge/1", None),
                               ("GET", "/supervision/flags", None),
                               ("PATCH", "/supervision/flags/1", {"status": "closed"})):
        response = await live.client.request(method, "/api/v1" + path, headers=headers,
                                             json=body)
        assert response.status == 403, (method, path)


# --- personal data -----------------------------------------------------------------------


async def test_unit_responses_and_timelines_never_show_the_full_phone(hotline: Hotline) -> None:
    h = hotline
    ticket = await h.dispatched(unit=h.unit_a, anonymous=True)
    tid = ticket["id"]
    await h.call(h.agent, "POST", "/tickets", {"content": "草稿", "caller": {"phone": PHONE}},
                 expect=201)
    for method, path in (("POST", "/accept"), ("POST", "/start"), ("GET", "/timeline"),
                         ("GET", "")):
        response = await h.client.request(method, f"/api/v1/tickets/{tid}{path}",
                                          headers=h.handler_a.headers)
        text = await response.text()
        assert response.status == 200 and PHONE not in text and "张三丰" not in text, path
    contact = await h.call(h.handler_a, "GET", f"/tickets/{tid}", expect=200, need="contact")
    assert PHONE not in str(contact) and contact["caller"]["masked"] is True
    page = await h.call(h.handler_a, "GET", "/tickets", expect=200)
    assert page["items"][0]["caller_phone"] is None
    registered = await h.call(h.agent, "POST", "/tickets", {"content": "同一位市民再次来电",
                                                            "caller": {"phone": PHONE}},
                              expect=201)
    result = await h.call(h.agent, "POST", f"/tickets/{registered['id']}/register", expect=200)
    assert PHONE not in str(result)


# --- login -------------------------------------------------------------------------------


@ONE_ENGINE
async def test_forwarded_for_headers_do_not_reset_the_per_ip_login_limit(
        sessionmaker: async_sessionmaker[AsyncSession], clock: FrozenClock) -> None:
    config = test_auth_config(login_max_attempts=100, login_max_attempts_per_ip=3)
    app = bare_app(sessionmaker, clock, config=config)
    async with TestClient(TestServer(app)) as client:
        statuses = []
        for n in range(5):
            response = await client.post(
                "/api/v1/auth/login", json={"username": f"nobody{n}", "password": "x"},
                headers={"X-Forwarded-For": f"10.0.0.{n}", "X-Real-IP": f"10.0.0.{n}"})
            statuses.append(response.status)
    assert statuses == [401, 401, 401, 429, 429]


@ONE_ENGINE
async def test_case_and_whitespace_variants_of_a_username_do_not_log_in(
        sessionmaker: async_sessionmaker[AsyncSession], clock: FrozenClock) -> None:
    """The per-username limit counts the name as typed: that holds only while a variant of
    the name can never open the account."""
    app = bare_app(sessionmaker, clock, config=test_auth_config(login_max_attempts=2))
    await make_user(sessionmaker, clock, role=Role.AGENT, username="wang")
    async with TestClient(TestServer(app)) as client:
        for _ in range(2):
            await client.post("/api/v1/auth/login", json={"username": "wang", "password": "x"})
        for name in ("WANG", "Wang", " wang", "wang ", "wang\t"):
            response = await client.post("/api/v1/auth/login",
                                         json={"username": name, "password": TEST_PASSWORD})
            assert response.status == 401, name
        response = await client.post("/api/v1/auth/login",
                                     json={"username": "wang", "password": TEST_PASSWORD})
        assert response.status == 429


# --- the whole app -----------------------------------------------------------------------


@ONE_ENGINE
async def test_the_full_app_guards_every_api_route_and_its_probes_leak_nothing(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    secret = "s3cret-" + "k" * 40
    settings = load_settings(None, env={"CALLCENTER_AUTH__TOKEN_SECRET": secret})
    app = create_app(settings, sessionmaker, MemoryBus(), SystemClock())
    async with TestClient(TestServer(app)) as client:
        api = sorted({(r.method, r.resource.canonical) for r in app.router.routes()
                      if r.resource is not None and r.resource.canonical.startswith("/api/v1/")
                      and r.method != "HEAD"})
        assert len(api) > 30
        for method, path in api:
            url = path.replace("{", "").replace("}", "")  # any value: refused before parsing
            response = await client.request(method, url)
            public = path in ("/api/v1/auth/login", "/api/v1/openapi.json")
            assert (response.status != 401) if public else (response.status == 401), path
        await client.get(f"/api/v1/tickets/{PHONE}?text={PHONE}")
        await client.get(f"/{PHONE}")
        for probe in ("/metrics", "/healthz"):
            text = await (await client.get(probe)).text()
            assert PHONE not in text and secret not in text and "sqlite" not in text, probe
