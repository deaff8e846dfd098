"""The monthly report end to end: the month's figures (frozen if the month is, else live),
rendered to HTML and PDF files. Used by ``callcenter report monthly`` and the API."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.reports.context import ReportContext
from callcenter.reports.freeze import frozen_month
from callcenter.reports.render import render_html, render_pdf

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MonthFigures:
    month: str
    figures: dict[str, Any]
    frozen_version: int | None
    """None: computed now from live data (the month is not frozen)."""
    corrections: list[dict[str, Any]]


async def month_figures(session: AsyncSession, context: ReportContext, month: str, *,
                        live: bool = False) -> MonthFigures:
    """A frozen month's stored figures (with its corrections), or live ones."""
    if not live:
        frozen = await frozen_month(session, month)
        if frozen is not None:
            return MonthFigures(month, frozen.figures, frozen.version, frozen.corrections)
    figures = await context.figures(session, context.month(month))
    return MonthFigures(month, figures, None, [])


def write_report(result: MonthFigures, context: ReportContext, out_dir: Path
                 ) -> tuple[Path, Path]:
    """``report-YYYY-MM.html`` and ``.pdf`` in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    html = render_html(result.figures, context.config, corrections=result.corrections)
    html_path = out_dir / f"report-{result.month}.html"
    pdf_path = out_dir / f"report-{result.month}.pdf"
    html_path.write_text(html, encoding="utf-8")
    pdf_path.write_bytes(render_pdf(html))
    log.info("reports.monthly month=%s html=%s pdf=%s", result.month, html_path, pdf_path)
    return html_path, pdf_path
