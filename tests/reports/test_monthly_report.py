"""The monthly report of the synthetic October, printed by ``callcenter report monthly``:
the PDF's text (pdftotext) has the seed-001 headings in Chinese and the hand-counted figures,
and its first page (pdftoppm) is not blank."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

from click.testing import CliRunner
from PIL import Image

from callcenter.cli import main
from callcenter.reports.context import ReportContext
from callcenter.reports.monthly import month_figures
from callcenter.reports.render import render_html
from callcenter.settings import load_settings
from tests.reports.month import write_month

HEADINGS = ["2026年10月12345热线运行办理情况", "一、运行情况", "二、工单办理考核",
            "综合指标考核排名", "三、热点、难点聚焦", "四、存在问题", "五、典型案例", "话务统计"]


def pdf_text(pdf: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True,
                          capture_output=True, text=True).stdout


def ink_of_first_page(pdf: Path, tmp_path: Path) -> float:
    """The share of page 1's pixels that are not white."""
    subprocess.run(["pdftoppm", "-png", "-r", "40", "-f", "1", "-l", "1", str(pdf),
                    str(tmp_path / "page")], check=True)
    [png] = tmp_path.glob("page*.png")
    gray = Image.open(png).convert("L")
    dark = sum(gray.histogram()[:200])
    return dark / (gray.width * gray.height)


async def test_the_cli_prints_the_month_as_html_and_a_searchable_pdf(
        sessionmaker, db_url: str, tmp_path: Path) -> None:
    async with sessionmaker() as session, session.begin():
        await write_month(session)
    out = tmp_path / "out"
    env = {"CALLCENTER_DATABASE__URL": db_url,
           "CALLCENTER_REPORTS__RANKING_MIN_ORDERS": "3"}
    result = await asyncio.to_thread(  # the command runs its own event loop
        CliRunner().invoke, main, ["report", "monthly", "2026-10", "--out", str(out)], env=env)
    assert result.exit_code == 0, result.output
    html = (out / "report-2026-10.html").read_text(encoding="utf-8")
    text = pdf_text(out / "report-2026-10.pdf")
    for heading in HEADINGS:
        assert heading in html
        assert heading in text, heading
    # Hand-counted figures (tests/reports/test_kpis.py): phone 8 of 11 orders, U1's score
    # 75.8 and U3's 95.0, the office's satisfaction 4 of 5, 2 of 6 calls within 15 s.
    for figure in ["72.73%", "湘滨镇", "75.8", "交通运输局", "95.0", "80.00%", "33.33%",
                   "12345热线来电", "交通运输", "城市管理"]:
        assert figure in text, figure
    assert ink_of_first_page(out / "report-2026-10.pdf", tmp_path) > 0.01


def test_a_month_that_is_not_a_month_is_refused() -> None:
    result = CliRunner().invoke(main, ["report", "monthly", "2026-13"])
    assert result.exit_code == 1
    assert "YYYY-MM" in result.output


async def test_english_labels_by_config(sessionmaker) -> None:
    async with sessionmaker() as session, session.begin():
        await write_month(session)
    settings = load_settings(None, env={"CALLCENTER_REPORTS__LANGUAGE": "en",
                                        "CALLCENTER_AUTH__TOKEN_SECRET": "t" * 48})
    context = ReportContext.from_settings(settings)
    async with sessionmaker() as session:
        result = await month_figures(session, context, "2026-10")
    html = render_html(result.figures, context.config)
    for label in ["12345 hotline monthly report, 2026-10", "1. Operation",
                  "2. Assessment of order handling", "Call-center statistics"]:
        assert label in html
    assert "运行情况" not in html
