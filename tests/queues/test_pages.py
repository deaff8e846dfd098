"""The agent desktop and the supervisors' wallboard in headless Chromium, on the queues rig
(the simulator over AMI, the real listener and API): the wallboard's waiting count follows a
simulated caller; a pause clicked on the desktop pauses the member in the simulator; the
agent gets a screen-pop with the caller's earlier tickets."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestServer
from playwright.async_api import Page, expect

from callcenter.auth.models import User
from callcenter.auth.principal import Role
from callcenter.auth.testing import bare_app, make_user
from callcenter.queues.config import QueuesConfig
from callcenter.queues.http import setup_web as setup_queues
from callcenter.queues.service import Skill
from callcenter.simulator.actors import Agent, Caller
from callcenter.telephony import events as ev
from callcenter.web.keys import TELEPHONY
from callcenter.web.pages import setup_pages
from tests.browser import chromium, new_session_page
from tests.queues.conftest import Rig, make_agent, start_pops
from tests.queues.test_screen_pop import CALLER, ticket

PHONE = "PJSIP/1001"


async def page_for(browser, rig: Rig, user: User) -> Page:
    base = str(rig.client.make_url("")).rstrip("/")
    token = rig.headers(user)["Authorization"].removeprefix("Bearer ")
    return await new_session_page(browser, base, token, {
        "id": user.id, "username": user.username, "role": user.role, "unit_id": user.unit_id})


async def logged_in_desktop(browser, rig: Rig, user: User) -> Page:
    """The agent's desktop, live, after a click on "log in" made the agent available."""
    page = await page_for(browser, rig, user)
    await page.goto("/ui/desktop")
    await expect(page.locator("#status")).to_have_text("live")
    await page.click("#login")
    await expect(page.locator("#state")).to_have_text("available", timeout=20_000)
    return page


async def test_the_wallboard_counts_a_caller_joining_and_leaving(rig: Rig) -> None:
    supervisor = await make_user(rig.service.sessionmaker, rig.service.clock,
                                 role=Role.SUPERVISOR)
    async with chromium() as browser:
        page = await page_for(browser, rig, supervisor)
        await page.goto("/ui/wallboard")
        await expect(page.locator("#status")).to_have_text("live")
        waiting = page.locator('[data-queue="hotline-en"] [data-field="waiting"]')
        call = rig.sim.place_call(CALLER, exten="12345001", behaviour=Caller(talk_time=60))
        await expect(waiting).to_have_text("1", timeout=10_000)
        await rig.telephony.commands.hangup(call.name)
        await expect(waiting).to_have_text("0", timeout=10_000)


async def test_the_wallboard_shows_each_agents_new_state_in_its_row(rig: Rig) -> None:
    supervisor = await make_user(rig.service.sessionmaker, rig.service.clock,
                                 role=Role.SUPERVISOR)
    rig.sim.add_agent(PHONE, Agent(name="softphone", answer_after=1.0))
    user, agent_id = await make_agent(rig.service, extension="1001",
                                      skills=[Skill("hotline-en", 5)])
    async with chromium() as browser:
        page = await page_for(browser, rig, supervisor)
        await page.goto("/ui/wallboard")
        await expect(page.locator("#status")).to_have_text("live")
        row = page.locator(f'#agents tr[data-agent="{agent_id}"]')
        await rig.call(user, "POST", "/agents/me/login", {})
        await expect(row).to_have_attribute("data-state", "available", timeout=10_000)
        await rig.call(user, "POST", "/agents/me/pause", {"reason": "meal"})
        await expect(row).to_have_attribute("data-state", "paused", timeout=10_000)
        await expect(row.locator("td").nth(1)).to_contain_text("meal")
        await expect(page.locator("#agents tr[data-agent]")).to_have_count(1)


async def test_a_pause_with_a_configured_reason_clicked_on_the_desktop_pauses_the_member(
        rig: Rig) -> None:
    rig.sim.add_agent(PHONE, Agent(name="softphone", answer_after=1.0))
    user, agent_id = await make_agent(rig.service, extension="1001",
                                      skills=[Skill("hotline-en", 5)])
    async with chromium() as browser:
        page = await logged_in_desktop(browser, rig, user)
        values = "options => options.map(o => o.value)"
        assert await page.locator("#reasons option").evaluate_all(values) == (
            rig.service.config.pause_reasons)
        assert await page.locator("#queues option").evaluate_all(values) == (
            rig.service.config.queue_names)
        await page.fill("input[name=reason]", "meal")
        await page.click("#pause")
        await expect(page.locator("#state")).to_have_text("paused", timeout=10_000)
        await expect(page.locator("#reason")).to_have_text("meal")
    paused = rig.events(ev.QueueMemberPaused, interface=PHONE, paused=True)
    assert [(e.queue, e.paused_reason) for e in paused] == [("hotline-en", "meal")]
    status = await rig.telephony.commands.queue_status("hotline-en")
    members = [m for m in status if m.get("Event") == "QueueMember"]
    assert [(m["Paused"], m["PausedReason"]) for m in members] == [("1", "meal")]


async def test_the_agent_gets_a_screen_pop_with_the_callers_earlier_tickets(rig: Rig) -> None:
    pops = await start_pops(rig, rig.auth)
    try:
        rig.sim.add_agent(PHONE, Agent(name="softphone", answer_after=1.0))
        user, _ = await make_agent(rig.service, extension="1001",
                                   skills=[Skill("hotline-en", 5)])
        earlier = await ticket(rig, status="archived", title="噪音扰民", days_ago=30)
        still_open = await ticket(rig, status="dispatched", title="路灯不亮", days_ago=3)
        async with chromium() as browser:
            page = await logged_in_desktop(browser, rig, user)
            rig.sim.place_call(CALLER, exten="12345001", behaviour=Caller(talk_time=30))
            await expect(page.locator("#caller")).to_have_text(CALLER, timeout=15_000)
            await expect(page.locator("#call a", has_text=earlier.number)).to_have_count(1)
            await expect(page.locator("#call a", has_text=still_open.number)).to_have_count(1)
            await expect(page.locator("input[name=phone]")).to_have_value(CALLER)
            await expect(page.locator("#state")).to_have_text("on_call", timeout=10_000)
    finally:
        await pops.stop()


def web_app(rig: Rig, config: QueuesConfig) -> web.Application:
    """A web process like the rig's, on the same telephony, bus and database."""
    app = bare_app(rig.service.sessionmaker, rig.service.clock, config=rig.auth, bus=rig.bus)
    app[TELEPHONY] = rig.telephony
    setup_queues(app, config)
    setup_pages(app)
    return app


async def test_the_desktop_reconnects_after_a_restart_and_shows_what_changed_meanwhile(
        rig: Rig, config: QueuesConfig) -> None:
    rig.sim.add_agent(PHONE, Agent(name="softphone", answer_after=1.0))
    user, agent_id = await make_agent(rig.service, extension="1001",
                                      skills=[Skill("hotline-en", 5)])
    port = rig.client.server.port
    async with chromium() as browser:
        page = await logged_in_desktop(browser, rig, user)
        await rig.client.server.close()  # the web process stops
        await expect(page.locator("#status")).to_have_text("reconnecting")
        await rig.telephony.commands.queue_pause(None, PHONE, True, reason="training")
        await rig.next_state(agent_id, "paused", reason="training")
        restarted = TestServer(web_app(rig, config), port=port)
        await restarted.start_server()
        try:
            await expect(page.locator("#status")).to_have_text("live", timeout=15_000)
            await expect(page.locator("#state")).to_have_text("paused")
            await expect(page.locator("#reason")).to_have_text("training")
        finally:
            await restarted.close()
