"""The revisit API over real HTTP: every route needs a token and the right role; campaigns
are created, changed, paused and resumed by the office; bad settings are refused with the
field named; schedules on demand, opt-outs and the do-not-call list."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.auth.principal import Role
from callcenter.auth.testing import bare_app, make_unit, test_auth_config
from callcenter.clock import FrozenClock
from callcenter.revisit.http import setup_web as setup_revisit
from callcenter.tickets.config import ClosingRule, TicketsConfig
from callcenter.tickets.http import TICKETS
from callcenter.tickets.http import setup_web as setup_tickets
from callcenter.web.pages import setup_pages
from tests.tickets.conftest import Actor, Hotline, clock, quick_user  # noqa: F401


@dataclass
class Office(Hotline):
    pass


@pytest.fixture
async def office(sessionmaker: async_sessionmaker[AsyncSession], clock: FrozenClock  # noqa: F811
                 ) -> AsyncIterator[Office]:
    config = test_auth_config()
    app = bare_app(sessionmaker, clock, config=config)
    setup_tickets(app, TicketsConfig(closing=ClosingRule(contact_required_types=[])))
    setup_revisit(app)
    setup_pages(app)
    units = [(await make_unit(sessionmaker)).id for _ in range(3)]

    async def actor(role: Role, unit_id: int | None = None) -> Actor:
        return Actor(await quick_user(sessionmaker, clock, role, unit_id), config, clock)

    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield Office(client=client, clock=clock, service=app[TICKETS],
                     sessionmaker=sessionmaker, agent=await actor(Role.AGENT),
                     supervisor=await actor(Role.SUPERVISOR), unit_a=units[0],
                     unit_b=units[1], unit_c=units[2],
                     handler_a=await actor(Role.UNIT_HANDLER, units[0]),
                     handler_b=await actor(Role.UNIT_HANDLER, units[1]),
                     handler_c=await actor(Role.UNIT_HANDLER, units[2]),
                     admin=await actor(Role.ADMIN))
    finally:
        await client.close()


async def test_every_route_needs_a_token_and_the_role(office: Office) -> None:
    for method, path in (("GET", "/campaigns"), ("POST", "/campaigns/1/pause"),
                         ("GET", "/do-not-call"), ("POST", "/tickets/1")):
        response = await office.client.request(method, f"/api/v1/revisit{path}")
        assert response.status == 401, path
    await office.call(office.agent, "POST", "/revisit/campaigns/1/pause", expect=403)
    await office.call(office.agent, "GET", "/revisit/do-not-call", expect=403)
    await office.call(office.handler_a, "POST", "/revisit/do-not-call",
                      {"phone": "13800000000"}, expect=403)
    await office.call(office.handler_a, "POST", "/revisit/tickets/1", {}, expect=403)


async def test_supervisors_manage_campaigns(office: Office) -> None:
    listed = await office.call(office.supervisor, "GET", "/revisit/campaigns", expect=200)
    [default] = listed["campaigns"]
    assert (default["name"], default["paused"], default["progress"]["pending"]) == \
        ("default", False, 0)
    created = await office.call(office.supervisor, "POST", "/revisit/campaigns", {
        "name": "春节后回访", "settings": {"max_lines": 30, "calls_per_second": 5,
                                      "windows": {"mon": [9, 12], "tue": [14, 18]}}},
        expect=201)
    assert created["settings"]["max_lines"] == 30
    assert created["settings"]["windows"] == {"mon": [9, 12], "tue": [14, 18]}
    cid = created["id"]
    paused = await office.call(office.supervisor, "POST", f"/revisit/campaigns/{cid}/pause",
                               expect=200)
    assert paused["paused"] is True
    resumed = await office.call(office.admin, "POST", f"/revisit/campaigns/{cid}/resume",
                                expect=200)
    assert resumed["paused"] is False
    await office.call(office.supervisor, "POST", "/revisit/campaigns/999/pause", expect=404)


async def test_bad_campaign_settings_are_refused_naming_the_field(office: Office) -> None:
    body = await office.call(office.supervisor, "POST", "/revisit/campaigns", {
        "name": "x", "settings": {"windows": {"mon": [20, 9]}}}, expect=422)
    assert "windows" in str(body["error"])
    body = await office.call(office.supervisor, "POST", "/revisit/campaigns", {
        "name": "x", "settings": {"max_lines": 0}}, expect=422)
    assert "max_lines" in str(body["error"])
    listed = await office.call(office.supervisor, "GET", "/revisit/campaigns", expect=200)
    assert [c["name"] for c in listed["campaigns"]] == ["default"]  # nothing half-made


async def test_a_campaign_name_is_taken_once(office: Office) -> None:
    async def save(method: str, path: str, name: str, expect: int, **settings: int) -> dict:
        return await office.call(office.supervisor, method, f"/revisit/campaigns{path}",
                                 {"name": name, "settings": settings}, expect=expect)

    await save("POST", "", "spring", 201)
    again = await save("POST", "", "spring", 409)
    assert (again["error"]["code"], again["error"]["field"]) == ("duplicate_campaign", "name")
    autumn = await save("POST", "", "autumn", 201)
    renamed = await save("PUT", f"/{autumn['id']}", "spring", 409)
    assert renamed["error"]["code"] == "duplicate_campaign"
    kept = await save("PUT", f"/{autumn['id']}", "autumn", 200, max_lines=3)
    assert (kept["name"], kept["settings"]["max_lines"]) == ("autumn", 3)
    listed = await office.call(office.supervisor, "GET", "/revisit/campaigns", expect=200)
    assert sorted(c["name"] for c in listed["campaigns"]) == ["autumn", "default", "spring"]


async def test_schedule_on_demand_once_and_opt_out(office: Office) -> None:
    ticket = await office.dispatched()
    tid = ticket["id"]
    made = await office.call(office.agent, "POST", f"/revisit/tickets/{tid}", {}, expect=201)
    assert (made["ticket_id"], made["state"], made["attempts"]) == (tid, "pending", 0)
    again = await office.call(office.agent, "POST", f"/revisit/tickets/{tid}", {}, expect=409)
    assert again["error"]["code"] == "not_revisitable"
    await office.call(office.agent, "POST", f"/revisit/tickets/{tid}/opt-out", expect=200)
    progress = await office.call(office.supervisor, "GET",
                                 f"/revisit/campaigns/{made['campaign_id']}/progress",
                                 expect=200)
    assert progress["pending"] == 0
    refused = await office.call(office.agent, "POST", f"/revisit/tickets/{tid}", {},
                                expect=409)
    assert "opted out" in refused["error"]["message"]
    await office.call(office.agent, "POST", "/revisit/tickets/99999", {}, expect=404)


async def test_the_do_not_call_list(office: Office) -> None:
    added = await office.call(office.agent, "POST", "/revisit/do-not-call",
                              {"phone": "138 0000 1111", "note": "投诉骚扰"}, expect=201)
    assert added["phone"] == "13800001111"
    bad = await office.call(office.agent, "POST", "/revisit/do-not-call", {"phone": "abc"},
                            expect=422)
    assert (bad["error"]["code"], bad["error"]["field"]) == ("invalid_input", "phone")
    listed = await office.call(office.supervisor, "GET", "/revisit/do-not-call", expect=200)
    assert [e["phone"] for e in listed["entries"]] == ["13800001111"]
    await office.call(office.supervisor, "DELETE", f"/revisit/do-not-call/{added['id']}",
                      expect=200)
    listed = await office.call(office.supervisor, "GET", "/revisit/do-not-call", expect=200)
    assert listed["entries"] == []
