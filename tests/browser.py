"""Headless Chromium for page tests: Debian's ``chromium`` driven by Playwright (no browser
is downloaded; ``scripts/test.sh`` installs the package)."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import quote

from playwright.async_api import Browser, Page, async_playwright

CHROMIUM = Path("/usr/lib/chromium/chromium")


def chromium_binary() -> str:
    """Debian's Chromium binary (``/usr/bin/chromium`` is a wrapper script)."""
    if CHROMIUM.is_file():
        return str(CHROMIUM)
    found = shutil.which("chromium")
    assert found, "Debian's chromium is not installed (scripts/test.sh installs it)"
    return found


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=chromium_binary(), headless=True,
            args=["--autoplay-policy=no-user-gesture-required", "--mute-audio"])
        try:
            yield browser
        finally:
            await browser.close()


async def log_in(page: Page, base_url: str, username: str, password: str,
                 next_page: str | None = None) -> None:
    """Log in through the login form, as a person does; ``next_page`` like ``/ui/report``."""
    query = f"?next={quote(next_page, safe='')}" if next_page else ""
    await page.goto(f"{base_url}/ui/{query}")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", password)
    await page.click("button[type=submit]")
    if next_page:
        await page.wait_for_url(f"{base_url}{next_page}")
    else:
        await page.wait_for_selector("#home:not([hidden])")


async def new_session_page(browser: Browser, base_url: str, token: str, user: dict) -> Page:
    """A page whose tab already holds a session for ``user`` (as the login page leaves it),
    for tests about a page rather than about logging in."""
    context = await browser.new_context(base_url=base_url)
    session = {"token": token, "token_type": "Bearer", "expires_at": "2199-01-01T00:00:00Z",
               "user": user}
    await context.add_init_script(
        f"sessionStorage.setItem('callcenter.session', {json.dumps(json.dumps(session))});")
    return await context.new_page()
