"""Logging in, token expiry and the role checks, over real HTTP."""

from __future__ import annotations

from datetime import timedelta

import jwt
from aiohttp.test_utils import TestClient

from callcenter.auth.config import AuthConfig
from callcenter.auth.principal import Role
from callcenter.auth.testing import (
    TEST_PASSWORD,
    bearer,
    login_over_http,
    make_unit,
    make_user,
    token_for,
)
from callcenter.clock import FrozenClock


async def test_login_returns_a_token_that_opens_the_api(client, sessionmaker, clock):
    unit = await make_unit(sessionmaker, code="ZJJ", name="住建局")
    await make_user(sessionmaker, clock, role=Role.UNIT_HANDLER, unit_id=unit.id,
                    username="wang")
    response = await client.post("/api/v1/auth/login",
                                 json={"username": "wang", "password": TEST_PASSWORD})
    assert response.status == 200
    body = await response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_at"].startswith("2026-11-23T03:00:00")
    assert body["user"] == {"id": body["user"]["id"], "username": "wang",
                            "role": "unit_handler", "unit_id": unit.id}

    me = await client.get("/api/v1/auth/me", headers=bearer(body["token"]))
    assert me.status == 200
    profile = await me.json()
    assert profile["username"] == "wang"
    assert profile["unit"]["name"] == "住建局"
    assert "password_hash" not in profile


async def test_bad_credentials_do_not_say_which_part_was_wrong(client, sessionmaker, clock):
    await make_user(sessionmaker, clock, role=Role.AGENT, username="li")
    wrong_password = await client.post("/api/v1/auth/login",
                                       json={"username": "li", "password": "nope-nope-nope"})
    unknown_user = await client.post("/api/v1/auth/login",
                                     json={"username": "nobody", "password": TEST_PASSWORD})
    assert wrong_password.status == unknown_user.status == 401
    assert await wrong_password.json() == await unknown_user.json() == {
        "error": {"code": "invalid_credentials", "message": "invalid username or password"}}


async def test_inactive_user_cannot_log_in(client, sessionmaker, clock):
    user = await make_user(sessionmaker, clock, role=Role.AGENT)
    async with sessionmaker() as session, session.begin():
        (await session.get(type(user), user.id)).active = False
    response = await client.post("/api/v1/auth/login",
                                 json={"username": user.username, "password": TEST_PASSWORD})
    assert response.status == 401


async def test_malformed_login_names_the_field(client):
    response = await client.post("/api/v1/auth/login", json={"username": "x"})
    assert response.status == 422
    assert (await response.json())["error"]["field"] == "password"


async def test_every_api_route_needs_a_token_except_login(client):
    for path in ("/api/v1/auth/me", "/api/v1/units", "/api/v1/users", "/api/v1/audit",
                 "/api/v1/no-such-route"):
        response = await client.get(path)
        assert response.status == 401, path
        assert (await response.json())["error"]["code"] == "unauthenticated"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    # The OpenAPI document is public: not being served here gives 404, not 401.
    assert (await client.get("/api/v1/openapi.json")).status == 404


async def test_token_expires_by_the_clock(client, sessionmaker, clock: FrozenClock):
    user = await make_user(sessionmaker, clock, role=Role.AGENT)
    token = await login_over_http(client, user.username)
    clock.advance(timedelta(minutes=59))
    assert (await client.get("/api/v1/auth/me", headers=bearer(token))).status == 200
    clock.advance(timedelta(minutes=1))
    response = await client.get("/api/v1/auth/me", headers=bearer(token))
    assert response.status == 401
    assert "expired" in (await response.json())["error"]["message"]


async def test_forged_and_foreign_tokens_are_refused(client, sessionmaker, clock,
                                                     auth_config: AuthConfig):
    user = await make_user(sessionmaker, clock, role=Role.ADMIN)
    good = token_for(user, auth_config, clock)
    claims = jwt.decode(good, options={"verify_signature": False})
    forged = jwt.encode({**claims, "role": "admin"}, "guessed-" * 5, algorithm="HS256")
    foreign = jwt.encode({**claims, "iss": "elsewhere"},
                         auth_config.token_secret.get_secret_value(), algorithm="HS256")
    unsigned = jwt.encode(claims, None, algorithm="none")
    for token in (forged, foreign, unsigned, "not-a-jwt"):
        assert (await client.get("/api/v1/auth/me", headers=bearer(token))).status == 401
    assert (await client.get("/api/v1/auth/me", headers=bearer(good))).status == 200


async def test_password_change_and_deactivation_revoke_tokens(client, sessionmaker, clock,
                                                              auth_config):
    admin = await make_user(sessionmaker, clock, role=Role.ADMIN)
    agent = await make_user(sessionmaker, clock, role=Role.AGENT)
    admin_headers = bearer(token_for(admin, auth_config, clock))
    old_token = await login_over_http(client, agent.username)
    clock.advance(timedelta(seconds=5))
    response = await client.patch(f"/api/v1/users/{agent.id}", headers=admin_headers,
                                  json={"password": "a brand new passphrase"})
    assert response.status == 200
    assert (await client.get("/api/v1/auth/me", headers=bearer(old_token))).status == 401
    new_token = await login_over_http(client, agent.username, "a brand new passphrase")
    assert (await client.get("/api/v1/auth/me", headers=bearer(new_token))).status == 200

    await client.patch(f"/api/v1/users/{agent.id}", headers=admin_headers,
                       json={"active": False})
    assert (await client.get("/api/v1/auth/me", headers=bearer(new_token))).status == 401


async def test_password_change_in_the_same_second_revokes_older_tokens(client, sessionmaker,
                                                                      clock, auth_config):
    admin = await make_user(sessionmaker, clock, role=Role.ADMIN)
    agent = await make_user(sessionmaker, clock, role=Role.AGENT)
    admin_headers = bearer(token_for(admin, auth_config, clock))
    clock.advance(timedelta(milliseconds=100))
    old_token = await login_over_http(client, agent.username)
    clock.advance(timedelta(milliseconds=300))  # still the same second
    response = await client.patch(f"/api/v1/users/{agent.id}", headers=admin_headers,
                                  json={"password": "a brand new passphrase"})
    assert response.status == 200
    assert (await client.get("/api/v1/auth/me", headers=bearer(old_token))).status == 401
    new_token = await login_over_http(client, agent.username, "a brand new passphrase")
    assert (await client.get("/api/v1/auth/me", headers=bearer(new_token))).status == 200


async def test_roles_admin_manages_units_and_users(client: TestClient, sessionmaker, clock,
                                                   auth_config):
    admin = await make_user(sessionmaker, clock, role=Role.ADMIN)
    agent = await make_user(sessionmaker, clock, role=Role.AGENT)
    as_admin = bearer(token_for(admin, auth_config, clock))
    as_agent = bearer(token_for(agent, auth_config, clock))

    response = await client.post("/api/v1/units", headers=as_agent,
                                 json={"code": "SWJ", "name": "水务局"})
    assert response.status == 403
    assert (await response.json())["error"]["code"] == "forbidden"
    response = await client.post("/api/v1/units", headers=as_admin,
                                 json={"code": "SWJ", "name": "水务局"})
    assert response.status == 201
    unit = await response.json()
    assert (await client.post("/api/v1/units", headers=as_admin,
                              json={"code": "SWJ", "name": "又一个"})).status == 409
    # Every role may list units (agents dispatch to them).
    listed = await (await client.get("/api/v1/units", headers=as_agent)).json()
    assert [u["code"] for u in listed["units"]] == ["SWJ"]

    no_unit = await client.post("/api/v1/users", headers=as_admin, json={
        "username": "zhao", "password": TEST_PASSWORD, "role": "unit_handler"})
    assert no_unit.status == 422
    assert (await no_unit.json())["error"]["field"] == "unit_id"
    weak = await client.post("/api/v1/users", headers=as_admin, json={
        "username": "zhao", "password": "123", "role": "agent"})
    assert (await weak.json())["error"]["field"] == "password"
    created = await client.post("/api/v1/users", headers=as_admin, json={
        "username": "zhao", "password": TEST_PASSWORD, "role": "unit_handler",
        "unit_id": unit["id"], "display_name": "赵六"})
    assert created.status == 201
    assert (await created.json())["unit_id"] == unit["id"]
    assert (await client.get("/api/v1/users", headers=as_agent)).status == 403
    users = await (await client.get(f"/api/v1/users?unit_id={unit['id']}",
                                    headers=as_admin)).json()
    assert [u["username"] for u in users["users"]] == ["zhao"]

    audit = await (await client.get("/api/v1/audit?action=user.create",
                                    headers=as_admin)).json()
    assert [e["object_id"] for e in audit["entries"]] == [str((await created.json())["id"])]
    assert (await client.get("/api/v1/audit", headers=as_agent)).status == 403
