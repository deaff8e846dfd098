"""Range requests play in headless Chromium (Debian's ``chromium``, driven by Playwright;
no browser is downloaded): the audio element loads the recording, seeks with a range request
answered 206, and the access is audited.

The page's bearer token is sent as a header on every request of the browser context (how the
ticket page authenticates its media requests is the web layer's business)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.async_api import async_playwright
from sqlalchemy import select

from callcenter.auth.models import AuditLog
from tests.recordings.conftest import Office, in_progress, write_wav

CHROMIUM = Path("/usr/lib/chromium/chromium")
ENDED = datetime(2026, 11, 23, 2, 5, tzinfo=UTC)


def chromium_binary() -> str:
    """Debian's Chromium binary (``/usr/bin/chromium`` is a wrapper script)."""
    if CHROMIUM.is_file():
        return str(CHROMIUM)
    found = shutil.which("chromium")
    assert found, "Debian's chromium is not installed (scripts/test.sh installs it)"
    return found


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    """One engine is enough here: the browser is what is under test."""
    return sqlite_url


async def test_the_audio_element_plays_and_seeks_with_range_requests(office: Office) -> None:
    ticket = await in_progress(office, calls=[{"linkedid": "1700000009.1"}])
    source = write_wav(office.config.monitor_dir / "1700000009.1.wav", 6.0, channels=2)
    row = await office.recordings.call_ended(pbx="sim", linkedid="1700000009.1",
                                             uniqueid="1700000009.1", source=source.name,
                                             ended_at=ENDED)
    assert row.status == "stored" and ticket["id"]
    url = str(office.client.make_url(f"/api/v1/recordings/{row.id}/audio"))
    seen: list[tuple[str | None, int]] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=chromium_binary(), headless=True,
            args=["--autoplay-policy=no-user-gesture-required", "--mute-audio"])
        try:
            context = await browser.new_context(extra_http_headers=office.supervisor.headers)
            page = await context.new_page()
            page.on("response", lambda r: seen.append(
                (r.request.headers.get("range"), r.status)) if r.url == url else None)
            await page.set_content(f'<audio id="player" preload="auto" src="{url}"></audio>')
            duration = await page.evaluate("""() => new Promise((resolve, reject) => {
                const a = document.getElementById('player');
                a.onerror = () => reject(new Error('media error ' + (a.error && a.error.code)));
                const ready = () => a.play().then(() => resolve(a.duration), reject);
                if (a.readyState >= 1) ready(); else a.onloadedmetadata = ready;
            })""")
            assert duration == pytest.approx(6.0, abs=0.01)
            position = await page.evaluate("""() => new Promise((resolve, reject) => {
                const a = document.getElementById('player');
                a.onseeked = () => resolve(a.currentTime);
                a.onerror = () => reject(new Error('media error'));
                a.currentTime = 5.0;
            })""")
            assert position == pytest.approx(5.0, abs=0.1)
        finally:
            await browser.close()
    ranged = [status for header, status in seen if header]
    assert ranged and set(ranged) == {206}
    async with office.sessionmaker() as session:
        actions = (await session.scalars(select(AuditLog.action).where(
            AuditLog.object_type == "recording", AuditLog.object_id == str(row.id)))).all()
    assert actions and set(actions) == {"recording.play"}


async def test_the_browser_gets_403_for_a_role_that_may_not_listen(office: Office) -> None:
    await in_progress(office, calls=[{"linkedid": "1700000009.2"}])
    source = write_wav(office.config.monitor_dir / "1700000009.2.wav", 1.0)
    row = await office.recordings.call_ended(pbx="sim", linkedid="1700000009.2",
                                             uniqueid="1700000009.2", source=source.name,
                                             ended_at=ENDED)
    url = str(office.client.make_url(f"/api/v1/recordings/{row.id}/audio"))
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium_binary(), headless=True)
        try:
            context = await browser.new_context(extra_http_headers=office.agent.headers)
            response = await context.request.get(url, headers={"Range": "bytes=0-99"})
            assert response.status == 403
        finally:
            await browser.close()
