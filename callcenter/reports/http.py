"""Reports over HTTP, for supervisors: the figures of any date range (filtered by unit and
topic) and their CSV / Excel export, a month's report figures (frozen or live), freezing a
month, typical cases; units appeal low revisit ratings with evidence, supervisors list and
decide them."""

from __future__ import annotations

import asyncio
import csv
import io
import re
from datetime import date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.auth.principal import Principal, Role
from callcenter.auth.privacy import record_access
from callcenter.reports.context import ReportContext
from callcenter.reports.curation import (
    AppealFiling,
    AppealFilter,
    decide_appeal,
    file_appeal,
    list_appeals,
    pick_typical_case,
)
from callcenter.reports.errors import ReportConflict
from callcenter.reports.freeze import freeze_month
from callcenter.reports.models import RevisitAppeal
from callcenter.reports.monthly import month_figures
from callcenter.reports.render import render_html, render_pdf
from callcenter.reports.service import Period
from callcenter.tickets.schemas import AttachmentIn
from callcenter.web.errors import bad_request
from callcenter.web.keys import CLOCK, SESSIONMAKER, SETTINGS
from callcenter.web.request import API_PREFIX, client_ip, parse_query, path_int, require_role
from callcenter.web.routing import Api, ApiSpec

API = Api()
OFFICE = (Role.SUPERVISOR, Role.ADMIN)
BASE = f"{API_PREFIX}/reports"
MONTH = re.compile(r"(19|20|21)\d\d-(0[1-9]|1[0-2])")
FIRST, LAST = date(1900, 1, 1), date(2199, 12, 31)
CONTEXT: web.AppKey[ReportContext] = web.AppKey("reports_context", ReportContext)


class RangeQuery(BaseModel):
    """Local calendar days, ``end`` included; at most 366 days."""

    model_config = ConfigDict(extra="forbid")

    start: date = Field(ge=FIRST, le=LAST)
    end: date = Field(ge=FIRST, le=LAST)
    unit_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    topic: str | None = Field(default=None, min_length=1, max_length=64)

    @model_validator(mode="after")
    def _ordered(self) -> RangeQuery:
        if self.end < self.start:
            raise ValueError("end must not be before start")
        if (self.end - self.start).days > 365:
            raise ValueError("a range spans at most 366 days")
        return self


class ExportQuery(RangeQuery):
    format: Literal["csv", "xlsx"] = "csv"


class FiguresOut(BaseModel):
    figures: dict[str, Any]
    frozen_version: int | None = None
    corrections: list[dict[str, Any]] = []


class FreezeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=500)


class FrozenOut(BaseModel):
    month: str
    version: int
    changes: int


class AppealIn(BaseModel):
    """The reason (申诉理由) and the evidence (申诉材料): an account, and references to
    stored files (photos, call records, documents) as a unit's reply carries them."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    revisit_id: int = Field(ge=1, le=2**31 - 1)
    reason: str = Field(min_length=1, max_length=2000)
    evidence: str = Field(min_length=1, max_length=20000)
    attachments: list[AttachmentIn] = Field(default_factory=list, max_length=20)


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    upheld: bool
    note: str = Field(min_length=1, max_length=2000)


class AppealQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["pending", "upheld", "rejected"] | None = None
    unit_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    month: str | None = Field(default=None, pattern=f"^{MONTH.pattern}$")
    before: int | None = Field(default=None, ge=1, le=2**31 - 1)
    limit: int = Field(default=100, ge=1, le=500)


class AppealOut(BaseModel):
    id: int
    revisit_id: int
    ticket_id: int
    unit_id: int
    reason: str
    evidence: str | None
    attachments: list[dict[str, Any]]
    filed_by: int | None
    filed_at: datetime
    status: Literal["pending", "upheld", "rejected"]
    upheld: bool | None
    decision_note: str | None
    decided_at: datetime | None
    decided_by: int | None


class AppealPage(BaseModel):
    appeals: list[AppealOut]
    next_before: int | None
    """Pass as ``before`` for the next page; None on the last one."""


class CaseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    month: str = Field(pattern=f"^{MONTH.pattern}$")
    ticket_id: int = Field(ge=1, le=2**31 - 1)
    kind: Literal["good", "problem"] = "good"
    note: str = Field(min_length=1, max_length=2000)


class CaseOut(BaseModel):
    id: int
    month: str
    ticket_id: int
    kind: str
    note: str


def _context(request: web.Request) -> ReportContext:
    return request.app[CONTEXT]


def _period(request: web.Request, query: RangeQuery) -> Period:
    return Period(query.start, query.end + timedelta(days=1), _context(request).tz)


def _month(request: web.Request) -> str:
    month = request.match_info["month"]
    if not MONTH.fullmatch(month):
        raise bad_request("month must be YYYY-MM", "month")
    return month


@API.route("GET", f"{BASE}/figures", summary="Figures of any date range (dashboard)",
           roles=OFFICE, query=RangeQuery, response=FiguresOut, errors=(401, 403, 422))
async def get_figures(request: web.Request, principal: Principal, query: RangeQuery
                      ) -> FiguresOut:
    """Unit KPIs, grades, rankings, breakdowns and call statistics, computed now."""
    context = _context(request)
    async with request.app[SESSIONMAKER]() as session:
        figures = await context.figures(session, _period(request, query),
                                        context.filters(query.unit_id, query.topic))
    return FiguresOut(figures=figures)


@API.route("GET", f"{BASE}/monthly/{{month}}", summary="A month's report figures",
           roles=OFFICE, response=FiguresOut, errors=(401, 403, 422))
async def get_month(request: web.Request, principal: Principal, _: None) -> FiguresOut:
    """The frozen figures (with their corrections) if the month is frozen, else live."""
    month = _month(request)
    async with request.app[SESSIONMAKER]() as session:
        result = await month_figures(session, _context(request), month)
    return FiguresOut(figures=result.figures, frozen_version=result.frozen_version,
                      corrections=result.corrections)


@API.route("POST", f"{BASE}/monthly/{{month}}/freeze", summary="Freeze (or correct) a month",
           roles=OFFICE, body=FreezeIn, response=FrozenOut, errors=(401, 403, 409, 422))
async def post_freeze(request: web.Request, principal: Principal, body: FreezeIn
                      ) -> FrozenOut:
    """Store the month's figures; again later stores a correction if anything changed."""
    month, context, now = _month(request), _context(request), request.app[CLOCK].now()
    today = now.astimezone(ZoneInfo(context.tz)).date()
    if context.month(month).end > today:
        raise ReportConflict(f"{month} is not over yet", field="month")
    async with request.app[SESSIONMAKER]() as session, session.begin():
        snapshot = await freeze_month(session, context, month, now, by=principal.user_id,
                                      reason=body.reason)
        return FrozenOut(month=month, version=snapshot.version,
                         changes=len(snapshot.changes or []))


@API.route("POST", f"{BASE}/appeals", summary="Appeal a low revisit rating",
           roles=(Role.UNIT_HANDLER,), body=AppealIn, response=AppealOut, status=201,
           errors=(401, 403, 404, 409, 422))
async def post_appeal(request: web.Request, principal: Principal, body: AppealIn
                      ) -> AppealOut:
    """By the end of the revisit's month; once per revisit."""
    filing = AppealFiling(body.reason, body.evidence,
                          [a.model_dump() for a in body.attachments])
    async with request.app[SESSIONMAKER]() as session, session.begin():
        appeal = await file_appeal(session, principal, body.revisit_id, filing,
                                   request.app[CLOCK].now(), _context(request).tz)
        await _audit(request, session, principal, "reports.appeal_filed", appeal)
        return _appeal_out(appeal)


@API.route("GET", f"{BASE}/appeals", summary="Appeals, newest first (a unit: its own)",
           roles=(Role.UNIT_HANDLER, *OFFICE), query=AppealQuery, response=AppealPage,
           errors=(401, 403, 422))
async def get_appeals(request: web.Request, principal: Principal, query: AppealQuery
                      ) -> AppealPage:
    async with request.app[SESSIONMAKER]() as session:
        appeals = await list_appeals(session, principal, AppealFilter(**query.model_dump()),
                                     _context(request).tz)
    full = len(appeals) == query.limit
    return AppealPage(appeals=[_appeal_out(a) for a in appeals],
                      next_before=appeals[-1].id if full else None)


@API.route("POST", f"{BASE}/appeals/{{appeal_id}}/decision", summary="Decide an appeal",
           roles=OFFICE, body=DecisionIn, response=AppealOut,
           errors=(401, 403, 404, 409, 422))
async def post_decision(request: web.Request, principal: Principal, body: DecisionIn
                        ) -> AppealOut:
    """Upheld or rejected with a note, once; an upheld appeal voids the rating."""
    appeal_id = path_int(request, "appeal_id")
    async with request.app[SESSIONMAKER]() as session, session.begin():
        appeal = await decide_appeal(session, principal, appeal_id, body.upheld, body.note,
                                     request.app[CLOCK].now())
        await _audit(request, session, principal, "reports.appeal_decided", appeal)
        return _appeal_out(appeal)


def _appeal_out(appeal: RevisitAppeal) -> AppealOut:
    return AppealOut.model_validate(appeal, from_attributes=True)


async def _audit(request: web.Request, session: AsyncSession, principal: Principal,
                 action: str, appeal: RevisitAppeal) -> None:
    """Appeals change a unit's figures: who filed and who decided is in the audit log."""
    await record_access(session, principal, action=action, object_type="revisit_appeal",
                        object_id=appeal.id, fields=[], ip=client_ip(request),
                        clock=request.app[CLOCK])


@API.route("POST", f"{BASE}/typical-cases", summary="Pick a typical case for a month",
           roles=OFFICE, body=CaseIn, response=CaseOut, status=201,
           errors=(401, 403, 404, 409, 422))
async def post_case(request: web.Request, principal: Principal, body: CaseIn) -> CaseOut:
    async with request.app[SESSIONMAKER]() as session, session.begin():
        case = await pick_typical_case(session, principal, body.month, body.ticket_id,
                                       body.kind, body.note, request.app[CLOCK].now())
        return CaseOut.model_validate(case, from_attributes=True)


# --- export: a file, not JSON, so declared here rather than with API.route --------------

EXPORT = ApiSpec("GET", f"{BASE}/export", "Unit figures of a date range as CSV or Excel",
                 OFFICE, query=ExportQuery, errors=(401, 403, 422))
COLUMNS = ("unit_id", "unit_name", "unit_kind", "received", "accepted_on_time",
           "acceptance_base", "completed", "completed_on_time", "returns", "reworks",
           "revisited", "reached", "satisfied", "unsatisfied", "appeals_upheld", "overdue",
           "score", "grade", "rank")
RATES = ("timely_acceptance_rate", "timely_first_contact_rate", "feedback_rate",
         "completion_rate", "on_time_completion_rate", "rework_rate", "revisit_reach_rate",
         "unsatisfied_rate", "satisfaction_rate")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def export_rows(figures: dict[str, Any]) -> list[list[Any]]:
    """One header row, then one row per unit and the office's total."""
    rows: list[list[Any]] = [[*COLUMNS, *RATES]]
    for unit in [*figures["units"], figures["office"]]:
        rows.append([unit[c] for c in COLUMNS] + [unit["rates"][r] for r in RATES])
    return rows


def to_csv(rows: list[list[Any]]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows([["" if v is None else v for v in row] for row in rows])
    return ("\ufeff" + out.getvalue()).encode("utf-8")  # the BOM lets Excel read UTF-8


def to_xlsx(rows: list[list[Any]]) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "units"
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def get_export(request: web.Request) -> web.Response:
    require_role(request, *EXPORT.roles)
    query = parse_query(request, ExportQuery)
    context = _context(request)
    async with request.app[SESSIONMAKER]() as session:
        figures = await context.figures(session, _period(request, query),
                                        context.filters(query.unit_id, query.topic))
    rows = export_rows(figures)
    name = f"report-{query.start.isoformat()}-{query.end.isoformat()}.{query.format}"
    body, kind = (to_csv(rows), "text/csv") if query.format == "csv" else (to_xlsx(rows), XLSX)
    return web.Response(body=body, content_type=kind,
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})


get_export.api_spec = EXPORT  # type: ignore[attr-defined]


# --- the monthly report as a document: HTML for the page, PDF to print and publish -------

class DocumentQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: Literal["html", "pdf"] = "html"


DOCUMENT = ApiSpec("GET", f"{BASE}/monthly/{{month}}/document",
                   "A month's report as HTML or PDF (frozen figures if the month is frozen)",
                   OFFICE, query=DocumentQuery, errors=(401, 403, 422))


async def get_document(request: web.Request) -> web.Response:
    """Rendered off the event loop: a PDF takes WeasyPrint a second or more."""
    require_role(request, *DOCUMENT.roles)
    query = parse_query(request, DocumentQuery)
    month, context = _month(request), _context(request)
    async with request.app[SESSIONMAKER]() as session:
        result = await month_figures(session, context, month)
    html = render_html(result.figures, context.config, corrections=result.corrections)
    if query.format == "html":
        return web.Response(text=html, content_type="text/html",
                            headers={"Content-Security-Policy": "default-src 'none'; "
                                     "img-src data:; style-src 'unsafe-inline'"})
    pdf = await asyncio.to_thread(render_pdf, html)
    return web.Response(body=pdf, content_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="report-{month}.pdf"'})


get_document.api_spec = DOCUMENT  # type: ignore[attr-defined]


def setup_web(app: web.Application) -> None:
    app[CONTEXT] = ReportContext.from_settings(app[SETTINGS])
    API.install(app)
    app.router.add_route("GET", EXPORT.path, get_export)
    app.router.add_route("GET", DOCUMENT.path, get_document)
