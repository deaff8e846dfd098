"""The ticket page in headless Chromium (Debian's ``chromium``, driven by Playwright; no
browser is downloaded): its audio player loads a recording through the media cookie, seeks
with range requests answered 206, and each access is audited; a unit handler of another
unit sees no ticket and no recording; click-to-call without a phone system says so."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from playwright.async_api import expect
from sqlalchemy import select

from callcenter.auth.models import AuditLog
from tests.browser import chromium, new_session_page
from tests.recordings.conftest import Office, in_progress, write_wav
from tests.tickets.conftest import Actor

ENDED = datetime(2026, 11, 23, 2, 5, tzinfo=UTC)
PLAY = """(id) => new Promise((resolve, reject) => {
    const a = document.querySelector(`audio[data-recording="${id}"]`);
    a.onerror = () => reject(new Error('media error ' + (a.error && a.error.code)));
    const ready = () => a.play().then(() => resolve(a.duration), reject);
    a.load();
    if (a.readyState >= 1) ready(); else a.onloadedmetadata = ready;
})"""
SEEK = """([id, to]) => new Promise((resolve, reject) => {
    const a = document.querySelector(`audio[data-recording="${id}"]`);
    a.onseeked = () => resolve(a.currentTime);
    a.onerror = () => reject(new Error('media error'));
    a.currentTime = to;
})"""


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    """One engine is enough here: the browser is what is under test."""
    return sqlite_url


def user_of(actor: Actor) -> dict:
    p = actor.principal
    return {"id": p.user_id, "username": p.username, "role": str(p.role), "unit_id": p.unit_id}


async def recorded_ticket(office: Office, linkedid: str, seconds: float):
    ticket = await in_progress(office, calls=[{"linkedid": linkedid}])
    source = write_wav(office.config.monitor_dir / f"{linkedid}.wav", seconds, channels=2)
    row = await office.recordings.call_ended(pbx="sim", linkedid=linkedid, uniqueid=linkedid,
                                             source=source.name, ended_at=ENDED)
    assert row.status == "stored"
    return ticket, row


async def page_as(browser, office: Office, actor: Actor):
    base = str(office.client.make_url("")).rstrip("/")
    token = actor.headers["Authorization"].removeprefix("Bearer ")
    return await new_session_page(browser, base, token, user_of(actor))


async def audit_actions(office: Office, recording_id: int) -> list[str]:
    async with office.sessionmaker() as session:
        return list((await session.scalars(select(AuditLog.action).where(
            AuditLog.object_type == "recording", AuditLog.object_id == str(recording_id))
            .order_by(AuditLog.id))).all())


async def test_the_ticket_page_plays_and_seeks_a_recording_with_range_requests(
        office: Office) -> None:
    ticket, row = await recorded_ticket(office, "1700000009.1", 6.0)
    audio = f"/api/v1/recordings/{row.id}/audio"
    async with chromium() as browser:
        page = await page_as(browser, office, office.supervisor)
        seen: list[tuple[str | None, int]] = []
        page.on("response", lambda r: seen.append((r.request.headers.get("range"), r.status))
                if r.url.endswith(audio) else None)
        await page.goto(f"/ui/ticket?id={ticket['id']}")
        player = page.locator(f'audio[data-recording="{row.id}"]')
        await expect(player).to_have_attribute("src", audio)
        duration = await page.evaluate(PLAY, row.id)
        assert duration == pytest.approx(6.0, abs=0.01)
        assert await page.evaluate(SEEK, [row.id, 5.0]) == pytest.approx(5.0, abs=0.1)
        await expect(page.locator("#recordings td", has_text="6.0")).to_have_count(1)
        entry = page.locator('#timeline li[data-action="recording"]')
        await expect(entry).to_contain_text(f"recording #{row.id}")
        await expect(entry).to_contain_text("时长 6.0 s")
    ranged = [status for header, status in seen if header]
    assert ranged and set(ranged) == {206}
    actions = await audit_actions(office, row.id)
    assert actions and set(actions) == {"recording.play"}


async def test_another_units_handler_sees_neither_the_ticket_nor_its_recording(
        office: Office) -> None:
    ticket, row = await recorded_ticket(office, "1700000009.2", 1.0)
    async with chromium() as browser:
        page = await page_as(browser, office, office.handler_b)
        await page.goto(f"/ui/ticket?id={ticket['id']}")
        await expect(page.locator("#message")).to_contain_text(f"no ticket {ticket['id']}")
        await expect(page.locator("audio")).to_have_count(0)
        response = await page.request.get(f"/api/v1/recordings/{row.id}/audio")
        assert response.status == 401  # no media cookie was ever set for this tab
    assert await audit_actions(office, row.id) == []


async def test_a_role_that_may_not_listen_sees_the_player_refused(office: Office) -> None:
    """Agents take calls but do not replay them: the page shows why nothing plays, and the
    refusal is audited like any access."""
    ticket, row = await recorded_ticket(office, "1700000009.3", 1.0)
    async with chromium() as browser:
        page = await page_as(browser, office, office.agent)
        await page.goto(f"/ui/ticket?id={ticket['id']}")
        await page.locator(f'audio[data-recording="{row.id}"]').evaluate("a => a.load()")
        note = page.locator("#recordings .note")
        await expect(note).to_be_visible()  # shown on the audio's error: the refusal came
        await expect(note).to_contain_text("not available to you")
    assert set(await audit_actions(office, row.id)) == {"recording.play.refused"}


async def test_the_unit_handler_is_told_when_no_phone_system_can_call(office: Office) -> None:
    ticket, _ = await recorded_ticket(office, "1700000009.4", 1.0)
    async with chromium() as browser:
        page = await page_as(browser, office, office.handler_a)
        await page.goto(f"/ui/ticket?id={ticket['id']}")
        await expect(page.locator("#call")).to_be_visible()
        await page.fill("input[name=extension]", "8001")
        await page.click("#call button")
        await expect(page.locator("#message")).to_contain_text("phone system is not reachable")
        page_text = await page.locator("main").inner_text()
    assert "13812345678" not in page_text and "138****5678" in page_text  # masked only
