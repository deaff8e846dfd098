"""Supervisors over HTTP: the agents table with time in state, pausing, moving between
queues and logging out an agent live in the simulator, each audited; role checks; a process
without telephony refuses actions that need Asterisk and changes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.auth.models import AuditLog, User
from callcenter.auth.principal import Role
from callcenter.auth.testing import bare_app, bearer, make_user, test_auth_config, token_for
from callcenter.auth.users import principal_for
from callcenter.clock import FrozenClock
from callcenter.queues.config import QueuesConfig
from callcenter.queues.http import AGENTS
from callcenter.queues.http import setup_web as setup_queues
from callcenter.queues.models import Agent
from callcenter.queues.service import Skill
from callcenter.telephony import events as ev
from tests.queues.conftest import Rig, make_agent

PHONE = "PJSIP/1001"


async def audit_rows(rig: Rig) -> list[tuple[str, str | None, list[str]]]:
    async with rig.service.sessionmaker() as session:
        rows = await session.scalars(select(AuditLog).where(AuditLog.object_type == "agent")
                                     .order_by(AuditLog.id))
        return [(r.action, r.object_id, r.fields) for r in rows]


async def test_a_supervisor_sees_pauses_moves_and_logs_out_an_agent_each_audited(
        rig: Rig) -> None:
    supervisor = await make_user(rig.service.sessionmaker, rig.service.clock,
                                 role=Role.SUPERVISOR)
    agent_user = await make_user(rig.service.sessionmaker, rig.service.clock, role=Role.AGENT)
    created = await rig.call(supervisor, "POST", "/agents", {
        "user_id": agent_user.id, "extension": "1001",
        "skills": [{"queue": "hotline", "level": 5}]})
    agent_id = created["id"]
    assert (created["state"], created["logged_in"], created["skills"]) == (
        "logged_out", False, [{"queue": "hotline", "level": 5}])
    await rig.call(agent_user, "POST", "/agents/me/login", {})
    await rig.next_state(agent_id, "available")

    listed = (await rig.call(supervisor, "GET", "/agents"))["agents"]
    assert [(a["id"], a["state"], a["interface"]) for a in listed] == [
        (agent_id, "available", PHONE)]
    assert listed[0]["since"] is not None  # time in state: exact in the frozen-clock test

    await rig.call(supervisor, "POST", f"/agents/{agent_id}/pause", {"reason": "coaching"})
    await rig.next_state(agent_id, "paused", reason="coaching")

    # move: hotline level 5 -> 2 (penalty 0 -> 3), join hotline-en at level 4 (penalty 1)
    moved = await rig.call(supervisor, "PUT", f"/agents/{agent_id}/skills", {
        "skills": [{"queue": "hotline", "level": 2}, {"queue": "hotline-en", "level": 4}]})
    assert moved["skills"] == [{"queue": "hotline", "level": 2},
                               {"queue": "hotline-en", "level": 4}]
    queues = rig.sim.pbx.queues.queues
    assert queues["hotline"].members[PHONE].penalty == 3
    en = queues["hotline-en"].members[PHONE]
    assert (en.penalty, en.paused, en.reason_paused) == (1, True, "coaching")
    # and out of hotline
    await rig.call(supervisor, "PUT", f"/agents/{agent_id}/skills",
                   {"skills": [{"queue": "hotline-en", "level": 4}]})
    assert PHONE not in queues["hotline"].members
    assert rig.events(ev.QueueMemberRemoved, interface=PHONE, queue="hotline")

    await rig.call(supervisor, "POST", f"/agents/{agent_id}/logout", {})
    await rig.next_state(agent_id, "logged_out")
    assert PHONE not in queues["hotline-en"].members
    assert await audit_rows(rig) == [
        ("agent.save", str(agent_id), ["extension", "skills"]),
        ("agent.pause", str(agent_id), ["reason:coaching"]),
        ("agent.skills", str(agent_id), ["hotline:2", "hotline-en:4"]),
        ("agent.skills", str(agent_id), ["hotline-en:4"]),
        ("agent.logout", str(agent_id), [])]


async def test_roles_agents_use_their_own_routes_and_supervisors_the_others(rig: Rig) -> None:
    user, agent_id = await make_agent(rig.service, extension="1001",
                                      skills=[Skill("hotline", 3)])
    supervisor = await make_user(rig.service.sessionmaker, rig.service.clock,
                                 role=Role.SUPERVISOR)
    assert (await rig.call(user, "GET", "/agents", expect=403))["error"]["code"] == "forbidden"
    await rig.call(user, "POST", f"/agents/{agent_id}/logout", {}, expect=403)
    await rig.call(user, "GET", "/queues/wallboard", expect=403)
    await rig.call(supervisor, "GET", "/agents/me", expect=403)
    response = await rig.client.get("/api/v1/agents/me")
    assert response.status == 401
    no_profile = await make_user(rig.service.sessionmaker, rig.service.clock, role=Role.AGENT)
    await rig.call(no_profile, "GET", "/agents/me", expect=404)


async def test_a_login_on_a_phone_another_logged_in_agent_uses_is_refused(rig: Rig) -> None:
    first, first_id = await make_agent(rig.service, extension="1001",
                                       skills=[Skill("hotline", 3)])
    second, _ = await make_agent(rig.service, extension="1002", skills=[Skill("hotline", 3)])
    await rig.call(first, "POST", "/agents/me/login", {})
    await rig.next_state(first_id, "available")
    taken = await rig.call(second, "POST", "/agents/me/login", {"extension": "1001"},
                           expect=409)
    assert taken["error"]["field"] == "extension"
    again = await rig.call(first, "POST", "/agents/me/login", {}, expect=409)
    assert "already logged in" in again["error"]["message"]


async def test_asterisk_refusing_the_queue_add_leaves_the_agent_logged_out(
        rig: Rig, config: QueuesConfig) -> None:
    config.queue.append(config.queue[0].model_copy(update={"name": "nowhere"}))
    user, agent_id = await make_agent(rig.service, extension="1001",
                                      skills=[Skill("hotline", 3), Skill("nowhere", 3)])
    refused = await rig.call(user, "POST", "/agents/me/login", {}, expect=409)
    assert refused["error"]["code"] == "asterisk_refused"
    assert "No such queue" in refused["error"]["message"]
    me = await rig.call(user, "GET", "/agents/me")
    assert me["logged_in"] is False
    assert PHONE not in rig.sim.pbx.queues.queues["hotline"].members


# -- a process without the telephony role ----------------------------------------------------


@pytest.fixture
async def web_only(sessionmaker: async_sessionmaker[AsyncSession]
                   ) -> AsyncIterator[tuple[TestClient, User, FrozenClock]]:
    clock = FrozenClock(__import__("datetime").datetime(2026, 12, 2, 8, tzinfo=__import__(
        "datetime").UTC))
    auth = test_auth_config()
    app = bare_app(sessionmaker, clock, config=auth)
    setup_queues(app, QueuesConfig())
    user = await make_user(sessionmaker, clock, role=Role.AGENT)
    async with sessionmaker() as session, session.begin():
        await app[AGENTS].save_agent(session, user_id=user.id, extension="1001",
                                     skills=[Skill("hotline", 5)])
    client = TestClient(TestServer(app))
    await client.start_server()
    client.headers_for = bearer(token_for(principal_for(user), auth, clock))  # type: ignore
    try:
        yield client, user, clock
    finally:
        await client.close()


async def test_without_telephony_actions_answer_409_and_change_nothing(
        web_only: tuple[TestClient, User, FrozenClock],
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    client, user, clock = web_only
    headers = client.headers_for  # type: ignore[attr-defined]
    for path, body in (("login", {}), ("pause", {"reason": "break"}), ("logout", {})):
        response = await client.post(f"/api/v1/agents/me/{path}", json=body, headers=headers)
        data = await response.json()
        assert response.status == 409 and data["error"]["code"] == "telephony_unavailable", data
    async with sessionmaker() as session:
        agent = await session.scalar(select(Agent).where(Agent.user_id == user.id))
        assert (agent.logged_in, agent.interface, agent.paused_reason) == (False, None, None)


async def test_extending_after_call_work_stops_at_the_maximum(
        web_only: tuple[TestClient, User, FrozenClock],
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    client, user, clock = web_only
    headers = client.headers_for  # type: ignore[attr-defined]
    start = clock.now()
    async with sessionmaker() as session, session.begin():
        agent = await session.scalar(select(Agent).where(Agent.user_id == user.id))
        agent.state, agent.state_since = "after_call_work", start
        agent.after_call_work_until = start + timedelta(seconds=30)
    clock.advance(timedelta(seconds=12))
    me = await (await client.get("/api/v1/agents/me", headers=headers)).json()
    assert (me["state"], me["seconds_in_state"]) == ("after_call_work", 12.0)
    url = "/api/v1/agents/me/after-call-work/extend"
    response = await client.post(url, json={"seconds": 500}, headers=headers)
    data = await response.json()
    assert response.status == 200, data
    assert data["after_call_work_until"].startswith("2026-12-02T08:08:50")  # 30 + 500 s
    response = await client.post(url, json={"seconds": 500}, headers=headers)
    data = await response.json()
    assert data["after_call_work_until"].startswith("2026-12-02T08:10:00")  # capped at 600 s
    response = await client.post(url, json={"seconds": 1}, headers=headers)
    assert response.status == 409
    assert "maximum" in (await response.json())["error"]["message"]
