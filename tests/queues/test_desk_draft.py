"""A call's transcript and draft on the agent desktop: the live feed routes a ``draft`` to the
agent it was made for (and replays it to that agent after a reconnect), and in headless
Chromium the draft of an agent's call appears on that agent's page only, a suggestion
accepted fills the ticket form (a number masked for the agent is confirmed, not copied), a
correction is stored, and a page opened after the draft was ready reads it."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import Page, expect
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.auth.config import AuthConfig, MaskingRule
from callcenter.auth.models import AuditLog, User
from callcenter.auth.principal import Role
from callcenter.auth.privacy import PiiPolicy
from callcenter.auth.testing import bare_app, bearer, test_auth_config, token_for
from callcenter.auth.users import principal_for
from callcenter.bus.memory import MemoryBus
from callcenter.clock import SystemClock
from callcenter.queues.feed import Viewer
from callcenter.queues.http import setup_web as setup_queues
from callcenter.recordings.config import RecordingsConfig
from callcenter.speech.config import SpeechConfig
from callcenter.speech.drafting import DeskDrafts
from callcenter.speech.http import setup_web as setup_speech
from callcenter.speech.models import DraftSuggestion
from callcenter.speech.service import SpeechService
from callcenter.tickets.http import setup_web as setup_tickets
from callcenter.web.pages import setup_pages
from tests.browser import chromium, new_session_page
from tests.queues.conftest import queues_config
from tests.queues.test_live_feed import make_feed, state
from tests.speech.desk_rig import desk_agent, drafted_call, talked

CALL, OTHER_CALL = "1700000100.5", "1700000200.9"


def draft(linkedid: str, n: int = 1) -> dict[str, Any]:
    """A ``speech.desk.<agent_id>`` payload (its transcript shortened to what is routed)."""
    return {"linkedid": linkedid, "ticket_id": None, "ticket_ids": [],
            "transcript": {"id": n, "segments": [], "suggestions": []}}


# -- the feed --------------------------------------------------------------------------------

def test_a_draft_goes_to_its_agent_only_and_is_replayed_to_it_after_a_reconnect() -> None:
    feed = make_feed()
    me, colleague, boss = Viewer(7), Viewer(8), Viewer(None)
    for viewer in (me, colleague, boss):
        feed.open(viewer, since=None, feed=None, board=None)
    feed.on_event("speech.desk.7", draft(CALL))
    feed.on_event("speech.desk.8", draft(OTHER_CALL, 2))
    got = {v.agent_id: [v.outbox.get_nowait() for _ in range(v.outbox.qsize())]
           for v in (me, colleague, boss)}
    assert got[7] == [{"type": "draft", "seq": 1, "feed": feed.id, "agent_id": 7,
                       **draft(CALL)}]
    assert [(m["type"], m["linkedid"]) for m in got[8]] == [("draft", OTHER_CALL)]
    assert got[None] == []

    resumed = feed.open(Viewer(7), since=0, feed=feed.id, board=None)
    assert [(m["type"], m.get("linkedid")) for m in resumed] == [("resumed", None),
                                                                 ("draft", CALL)]
    (snapshot,) = feed.open(Viewer(7), since=None, feed=None, board=None,
                            own=state(7, "on_call", 1))
    assert snapshot["type"] == "snapshot" and "draft" not in json.dumps(snapshot)


async def test_the_feed_follows_the_speech_desk_topics_on_the_bus() -> None:
    feed = make_feed()
    running = asyncio.create_task(feed.run())
    try:
        await asyncio.wait_for(feed.ready.wait(), 10)
        me = Viewer(7)
        feed.open(me, since=None, feed=None, board=None)
        await feed.bus.publish("speech.desk.7", draft(CALL))
        message = await asyncio.wait_for(me.outbox.get(), 10)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    assert (message["type"], message["agent_id"], message["linkedid"]) == ("draft", 7, CALL)


# -- the desktop -------------------------------------------------------------------------------

@dataclass
class Desk:
    client: TestClient
    auth: AuthConfig
    sessionmaker: async_sessionmaker[AsyncSession]
    drafts: DeskDrafts

    def base(self) -> str:
        return str(self.client.make_url("")).rstrip("/")

    async def page(self, browser: Any, user: User) -> tuple[Page, list[dict[str, Any]]]:
        """The agent's desktop, live, showing its current call; and the ``draft``
        messages its live socket receives."""
        token = bearer(token_for(principal_for(user), self.auth, SystemClock()))
        page = await new_session_page(browser, self.base(), token["Authorization"][7:], {
            "id": user.id, "username": user.username, "role": user.role, "unit_id": None})
        received = drafts_received(page)
        await page.goto("/ui/desktop")
        await expect(page.locator("#status")).to_have_text("live", timeout=10_000)
        await expect(page.locator("#call [data-linkedid]")).to_have_count(1)
        return page, received

    async def drafted_page(self, browser: Any) -> tuple[User, Page, int]:
        """An agent's desktop on its call, and that call's draft handed over to it."""
        me, my_id = await desk_agent(self.sessionmaker, "1001")
        await talked(self.sessionmaker, my_id, CALL)
        page, _ = await self.page(browser, me)
        transcript_id, _ = await drafted_call(self.sessionmaker, CALL)
        await self.drafts.hand_over(transcript_id)
        return me, page, transcript_id


@pytest.fixture
async def desk(pg_sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[Desk]:
    async with open_desk(pg_sessionmaker, test_auth_config()) as opened:
        yield opened


@pytest.fixture
async def masked_desk(pg_sessionmaker: async_sessionmaker[AsyncSession]
                      ) -> AsyncIterator[Desk]:
    """An office whose agents may not read the caller's number."""
    rules = [MaskingRule(role=Role.AGENT, fields=["name", "address"])]
    async with open_desk(pg_sessionmaker, test_auth_config(masking=rules)) as opened:
        yield opened


@contextlib.asynccontextmanager
async def open_desk(pg_sessionmaker: async_sessionmaker[AsyncSession], auth: AuthConfig
                    ) -> AsyncIterator[Desk]:
    clock = SystemClock()
    bus = MemoryBus()
    await bus.start()
    speech = SpeechService(pg_sessionmaker, clock, SpeechConfig(), RecordingsConfig(), bus)
    app = bare_app(pg_sessionmaker, clock, config=auth, bus=bus)
    setup_tickets(app)
    setup_queues(app, queues_config())
    setup_speech(app, speech)
    setup_pages(app)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield Desk(client, auth, pg_sessionmaker, DeskDrafts(speech, PiiPolicy(auth)))
    finally:
        await client.close()
        await bus.close()


def drafts_received(page: Page) -> list[dict[str, Any]]:
    """The ``draft`` messages the page's live socket receives from now on."""
    seen: list[dict[str, Any]] = []

    def on_socket(ws: Any) -> None:
        def on_frame(payload: str | bytes) -> None:
            message = json.loads(payload)
            if message.get("type") == "draft":
                seen.append(message)
        ws.on("framereceived", on_frame)

    page.on("websocket", on_socket)
    return seen


async def test_a_draft_for_the_agents_call_appears_on_that_agents_page_and_not_anothers(
        desk: Desk) -> None:
    me, my_id = await desk_agent(desk.sessionmaker, "1001")
    colleague, colleague_id = await desk_agent(desk.sessionmaker, "1002")
    await talked(desk.sessionmaker, my_id, CALL)
    await talked(desk.sessionmaker, colleague_id, OTHER_CALL)
    async with chromium() as browser:
        mine, _ = await desk.page(browser, me)
        theirs, theirs_received = await desk.page(browser, colleague)

        transcript_id, _ = await drafted_call(desk.sessionmaker, CALL)
        assert await desk.drafts.hand_over(transcript_id) == [my_id]
        lines = mine.locator("#draft .transcript li")
        await expect(lines).to_have_count(2, timeout=10_000)
        await expect(lines.nth(0)).to_have_text("坐席 agent · 0:00–0:02 · 您好 一二三四五 热线")
        await expect(lines.nth(1)).to_have_attribute("data-speaker", "citizen")
        await expect(lines.nth(1)).to_contain_text("市民 citizen · 0:03–0:07 · 我要 投诉")
        rows = mine.locator("#suggestions tr[data-suggestion]")
        assert await rows.evaluate_all("rs => rs.map(r => r.dataset.field)") == [
            "type", "address", "phone"]
        cells = mine.locator('#suggestions tr[data-field="address"] td')
        assert await cells.all_inner_texts() == [
            "address", "解放路二十号", "62.0%", "0:04–0:05 · 解放路 二十号",
            "采纳 Accept 更正 Correct"]

        other_id, _ = await drafted_call(desk.sessionmaker, OTHER_CALL)
        assert await desk.drafts.hand_over(other_id) == [colleague_id]
        await expect(theirs.locator("#draft")).to_have_attribute("data-transcript",
                                                                 str(other_id))
        assert [m["linkedid"] for m in theirs_received] == [OTHER_CALL]
        await expect(mine.locator("#draft")).to_have_attribute("data-transcript",
                                                               str(transcript_id))


async def test_accept_fills_the_form_field_and_a_correction_is_stored(desk: Desk) -> None:
    async with chromium() as browser:
        me, page, transcript_id = await desk.drafted_page(browser)
        kind = page.locator('#suggestions tr[data-field="type"]')
        await expect(kind).to_have_attribute("data-state", "suggested", timeout=10_000)
        await expect(page.locator("select[name=ticket_type]")).to_have_value("consultation")
        await kind.locator("button.accept").click()
        await expect(kind).to_have_attribute("data-state", "confirmed")
        await expect(page.locator("select[name=ticket_type]")).to_have_value("complaint")

        place = page.locator('#suggestions tr[data-field="address"]')
        await place.locator("input[name=correction]").fill("解放路20号菜市场")
        await place.locator("button.correct").click()
        await expect(place).to_have_attribute("data-state", "corrected")
        await expect(place.locator(".value")).to_have_text("解放路20号菜市场")
        await expect(page.locator("input[name=location]")).to_have_value("解放路20号菜市场")
        await expect(page.locator("input[name=phone]")).to_have_value("13800138000")
    async with desk.sessionmaker() as session:
        stored = {s.field: (s.state, s.corrected_value, s.decided_by) for s in (
            await session.scalars(select(DraftSuggestion).where(
                DraftSuggestion.transcript_id == transcript_id))).all()}
    assert stored == {"type": ("confirmed", None, me.id),
                      "address": ("corrected", "解放路20号菜市场", me.id),
                      "phone": ("suggested", None, None)}


async def test_accepting_a_number_masked_for_the_agent_confirms_it_without_copying_it(
        masked_desk: Desk) -> None:
    async with chromium() as browser:
        _, page, transcript_id = await masked_desk.drafted_page(browser)
        phone = page.locator('#suggestions tr[data-field="phone"]')
        await expect(phone.locator(".value")).to_have_text("136****3344", timeout=10_000)
        await phone.locator("button.accept").click()
        await expect(phone).to_have_attribute("data-state", "confirmed")
        await expect(page.locator("input[name=phone]")).to_have_value("")
        place = page.locator('#suggestions tr[data-field="address"]')
        await place.locator("button.accept").click()
        await expect(page.locator("input[name=location]")).to_have_value("解放路二十号")
    async with masked_desk.sessionmaker() as session:
        phone_row = await session.scalar(select(DraftSuggestion).where(
            DraftSuggestion.transcript_id == transcript_id, DraftSuggestion.field == "phone"))
    assert phone_row is not None
    assert (phone_row.state, phone_row.corrected_value) == ("confirmed", None)


async def test_a_desktop_opened_after_the_draft_was_ready_shows_it(desk: Desk) -> None:
    me, my_id = await desk_agent(desk.sessionmaker, "1001")
    await talked(desk.sessionmaker, my_id, CALL)
    transcript_id, _ = await drafted_call(desk.sessionmaker, CALL)
    assert await desk.drafts.hand_over(transcript_id) == [my_id]  # nobody is watching
    async with chromium() as browser:
        page, _ = await desk.page(browser, me)
        await expect(page.locator("#draft")).to_have_attribute("data-transcript",
                                                               str(transcript_id))
        await expect(page.locator("#draft .transcript li")).to_have_count(2)
        await expect(page.locator("#suggestions tr[data-suggestion]")).to_have_count(3)
    async with desk.sessionmaker() as session:
        views = (await session.scalars(select(AuditLog.object_id).where(
            AuditLog.action == "speech.transcript.view", AuditLog.user_id == me.id))).all()
    assert views == [CALL, CALL]  # the hand-over and the page's read
