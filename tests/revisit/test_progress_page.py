"""The campaigns page in headless Chromium: a supervisor sees each campaign's progress follow
the revisits (re-read while the page is open) and pauses and resumes the campaign; other
roles are told the page is not theirs."""

from __future__ import annotations

from playwright.async_api import Page, expect
from sqlalchemy import update

from callcenter.revisit.models import Revisit, RevisitState
from tests.browser import chromium, new_session_page
from tests.revisit.test_http import Office, office  # noqa: F401
from tests.tickets.conftest import Actor, clock  # noqa: F401


async def page_for(browser, office: Office, who: Actor) -> Page:  # noqa: F811
    base = str(office.client.make_url("")).rstrip("/")
    p = who.principal
    token = who.headers["Authorization"].removeprefix("Bearer ")
    return await new_session_page(browser, base, token, {
        "id": p.user_id, "username": p.username, "role": str(p.role), "unit_id": p.unit_id})


async def test_the_page_follows_a_campaigns_progress_and_pauses_it(office: Office) -> None:  # noqa: F811
    tickets = [(await office.dispatched())["id"] for _ in range(3)]
    for tid in tickets:
        await office.call(office.supervisor, "POST", f"/revisit/tickets/{tid}", {}, expect=201)
    async with chromium() as browser:
        page = await page_for(browser, office, office.supervisor)
        await page.goto("/ui/campaigns")
        card = page.locator('[data-campaign="default"]')
        field = lambda name: card.locator(f'[data-field="{name}"]')  # noqa: E731
        await expect(field("pending")).to_have_text("3")
        await expect(field("state")).to_have_text("running")

        async with office.sessionmaker() as session, session.begin():
            await session.execute(update(Revisit).where(Revisit.ticket_id == tickets[0])
                                  .values(state=RevisitState.DONE, result="satisfied"))
            await session.execute(update(Revisit).where(Revisit.ticket_id == tickets[1])
                                  .values(state=RevisitState.DONE, result="unreachable"))
        await expect(field("satisfied")).to_have_text("1", timeout=10_000)
        for name, shown in (("pending", "1"), ("reached", "1"), ("unreachable", "1"),
                            ("unsatisfied", "0")):
            await expect(field(name)).to_have_text(shown)
        await expect(field("done")).to_have_attribute("value", "67")

        await card.locator('[data-action="toggle"]').click()
        await expect(field("state")).to_have_text("paused")
        listed = await office.call(office.supervisor, "GET", "/revisit/campaigns", expect=200)
        assert [c["paused"] for c in listed["campaigns"]] == [True]
        await card.locator('[data-action="toggle"]').click()
        await expect(field("state")).to_have_text("running")
        listed = await office.call(office.supervisor, "GET", "/revisit/campaigns", expect=200)
        assert [c["paused"] for c in listed["campaigns"]] == [False]


async def test_an_agent_is_told_the_page_is_for_supervisors(office: Office) -> None:  # noqa: F811
    async with chromium() as browser:
        page = await page_for(browser, office, office.agent)
        await page.goto("/ui/campaigns")
        await expect(page.locator("#message")).to_contain_text("This page is for supervisor")
        await expect(page.locator("[data-campaign]")).to_have_count(0)
