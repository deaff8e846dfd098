"""The supervisors' pages in headless Chromium: the dashboard shows the synthetic month's
figures, filters by unit and exports; the monthly report page shows the report, downloads
its PDF and freezes the month; a unit handler is turned away."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import Page, expect

from callcenter.auth.principal import Role
from callcenter.auth.testing import TEST_PASSWORD, bare_app, make_user, test_auth_config
from callcenter.clock import FrozenClock
from callcenter.reports.http import setup_web
from callcenter.settings import load_settings
from callcenter.web.keys import SETTINGS
from callcenter.web.pages import setup_pages
from tests.browser import chromium, log_in
from tests.reports.month import U1, write_month

OCTOBER = "start=2026-10-01&end=2026-10-31"


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    """One engine is enough: the figures are checked on both in test_http and test_kpis."""
    return sqlite_url


@pytest.fixture
async def site(sessionmaker) -> AsyncIterator[SimpleNamespace]:
    clock = FrozenClock(datetime(2026, 11, 10, 2, tzinfo=UTC))
    async with sessionmaker() as session, session.begin():
        await write_month(session)
    app = bare_app(sessionmaker, clock, config=test_auth_config())
    app[SETTINGS] = load_settings(None, env={"CALLCENTER_REPORTS__RANKING_MIN_ORDERS": "3",
                                             "CALLCENTER_AUTH__TOKEN_SECRET": "t" * 48})
    setup_web(app)
    setup_pages(app)
    await make_user(sessionmaker, clock, role=Role.SUPERVISOR, username="chief")
    await make_user(sessionmaker, clock, role=Role.UNIT_HANDLER, unit_id=U1, username="town")
    async with TestClient(TestServer(app)) as client, chromium() as browser:
        page = await browser.new_page(accept_downloads=True)
        yield SimpleNamespace(url=str(client.make_url("")).rstrip("/"), page=page,
                              client=client)


def card(page: Page, kpi: str):
    return page.locator(f'[data-kpi="{kpi}"] .value')


async def test_the_dashboard_shows_the_month_and_filters_by_unit(site) -> None:
    page = site.page
    await log_in(page, site.url, "chief", TEST_PASSWORD, f"/ui/dashboard?{OCTOBER}")
    await expect(card(page, "received")).to_have_text("10")
    row = page.locator("tr", has_text="交通运输局")
    await expect(row.locator("td").last).to_have_text("A")  # grade
    await expect(row.locator("td").nth(9)).to_have_text("95.0")  # score
    await expect(row.locator("td").first).to_have_text("1")  # rank
    agent = page.locator("tr", has_text="1001")
    await expect(agent.locator("td").last).to_have_text("10.0%")  # occupancy 180 / 1,800 s
    await expect(page.locator("tr", has_text="Paused: meal").locator("td").last
                 ).to_have_text("0.5 h")
    await page.select_option("select[name=unit_id]", str(U1))
    await page.click("button[type=submit]")
    await expect(card(page, "received")).to_have_text("5")
    await expect(page.locator("#figures table").first.locator("tbody tr")).to_have_count(1)


async def test_the_dashboard_exports_csv_and_excel(site, tmp_path: Path) -> None:
    page = site.page
    await log_in(page, site.url, "chief", TEST_PASSWORD, f"/ui/dashboard?{OCTOBER}")
    await expect(card(page, "received")).to_have_text("10")
    async with page.expect_download() as csv_download:
        await page.click("#csv")
    download = await csv_download.value
    assert download.suggested_filename == "report-2026-10-01-2026-10-31.csv"
    saved = tmp_path / "r.csv"
    await download.save_as(saved)
    text = saved.read_text(encoding="utf-8-sig")
    assert text.startswith("unit_id,unit_name") and "湘滨镇" in text
    async with page.expect_download() as xlsx_download:
        await page.click("#xlsx")
    assert (await xlsx_download.value).suggested_filename.endswith(".xlsx")


async def test_the_monthly_report_page_shows_downloads_and_freezes(site, tmp_path) -> None:
    page = site.page
    await log_in(page, site.url, "chief", TEST_PASSWORD, "/ui/report?month=2026-10")
    report = page.frame_locator("#document")
    await expect(report.locator("h1")).to_contain_text("10")
    await expect(report.locator("table").first).to_be_visible()
    await expect(page.locator("#status")).to_contain_text("Live figures")
    async with page.expect_download() as pdf_download:
        await page.click("#pdf")
    saved = tmp_path / "r.pdf"
    await (await pdf_download.value).save_as(saved)
    assert saved.read_bytes().startswith(b"%PDF")
    await page.fill("input[name=reason]", "month closed")
    await page.click("#freeze")
    await expect(page.locator("#status")).to_contain_text("Frozen, version 1")
    await page.click("#freeze")  # nothing changed since: still one version, no correction
    await expect(page.locator("#status")).to_contain_text("0 changed figures")


async def test_a_unit_handler_is_told_the_dashboard_is_not_for_them(site) -> None:
    page = site.page
    await log_in(page, site.url, "town", TEST_PASSWORD)
    await expect(page.locator("header nav a", has_text="Dashboard")).to_have_count(0)
    await page.goto(f"{site.url}/ui/dashboard")
    await expect(page.locator("#message")).to_contain_text("for supervisor / admin")
    await expect(page.locator("#figures")).to_be_empty()


async def test_a_page_without_a_session_sends_to_login_and_back(site) -> None:
    page = site.page
    await page.goto(f"{site.url}/ui/report?month=2026-10")
    await page.wait_for_url(f"{site.url}/ui/?next=%2Fui%2Freport%3Fmonth%3D2026-10")
    await page.fill("input[name=username]", "chief")
    await page.fill("input[name=password]", TEST_PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{site.url}/ui/report?month=2026-10")
    await expect(page.frame_locator("#document").locator("h1")).to_contain_text("10")
