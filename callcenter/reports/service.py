"""The monthly figures, computed in the database (docs/REPORTS.md has every formula).

An order is counted once per unit and period: a unit's orders of a period are the (order,
unit) pairs whose *first* lead hold was dispatched in the period, and what happened later is
read from the pair's *last* hold (a re-dispatch back to the same unit, or a rework, is the
same order). Events (returns, extension requests, reworks, revisits, appeals) count in the
period they happened; a revisit counts once per order and period, with its last result.
Only small grouped rows leave the database; Python turns counts into rates and grades.
"""

from __future__ import annotations

import calendar
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, and_, case, func, literal, not_, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from callcenter.auth.models import Unit
from callcenter.calls.models import CallAgentAttempt, CallLog
from callcenter.reports.agent_time import agent_time
from callcenter.reports.config import DEFAULT_WEIGHTS, ReportsConfig
from callcenter.reports.models import RevisitAppeal, TypicalCase
from callcenter.supervision.models import SupervisionFlag
from callcenter.tickets.calendar import WorkingCalendar
from callcenter.tickets.config import Taxonomy
from callcenter.tickets.models import (
    Ticket,
    TicketAssignment,
    TicketExtension,
    TicketRevisit,
    TicketRework,
)

log = logging.getLogger(__name__)

A = TicketAssignment
REACHED = ("satisfied", "basically_satisfied", "unsatisfied")
SATISFIED = ("satisfied", "basically_satisfied")
LEFT_UNIT = ("returned", "redispatched")
NOT_ORDERS = ("draft", "not_accepted", "merged")


# --- periods ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """Local calendar days ``[start, end)`` in the office's time zone."""

    start: date
    end: date
    tz: str = "Asia/Shanghai"

    @classmethod
    def month(cls, month: str, tz: str = "Asia/Shanghai") -> Period:
        """``2026-10`` → 1 October to 1 November."""
        year, mon = (int(part) for part in month.split("-"))
        first = date(year, mon, 1)
        return cls(first, _add_months(first, 1), tz)

    @property
    def is_month(self) -> bool:
        return self.start.day == 1 and self.end == _add_months(self.start, 1)

    @property
    def label(self) -> str:
        if self.is_month:
            return f"{self.start:%Y-%m}"
        return f"{self.start.isoformat()}..{(self.end - timedelta(days=1)).isoformat()}"

    def bounds(self) -> tuple[datetime, datetime]:
        """The period as UTC-comparable instants (local midnights)."""
        zone = ZoneInfo(self.tz)
        return (datetime.combine(self.start, time(), zone),
                datetime.combine(self.end, time(), zone))

    def previous(self) -> Period:
        """The period just before: the previous month for a month (环比)."""
        if self.is_month:
            return Period(_add_months(self.start, -1), self.start, self.tz)
        return Period(self.start - (self.end - self.start), self.start, self.tz)

    def year_before(self) -> Period:
        """The same days one year earlier (同比)."""
        return Period(_add_months(self.start, -12), _add_months(self.end, -12), self.tz)


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    year, month = index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def rate(numerator: int, denominator: int) -> float | None:
    """A share in [0, 1]; None when there is nothing to divide by (never 0 % or 100 %)."""
    return None if denominator == 0 else numerator / denominator


def change(now: int, before: int) -> float | None:
    """Relative change (环比 / 同比); None when the earlier figure is 0."""
    return None if before == 0 else (now - before) / before


@dataclass(frozen=True)
class Filters:
    unit_id: int | None = None
    topics: tuple[str, ...] | None = None
    """Topic codes (a level-1 topic and its level-2 codes); None: every topic."""


# --- unit KPIs -------------------------------------------------------------------------


@dataclass
class UnitKpis:
    """One unit's (or the whole office's) figures for one period. Counts and rates."""

    unit_id: int | None
    unit_name: str
    unit_kind: str
    received: int = 0
    acceptance_base: int = 0
    accepted_on_time: int = 0
    first_contact_base: int = 0
    first_contact_on_time: int = 0
    handled: int = 0
    fed_back: int = 0
    completed: int = 0
    completed_on_time: int = 0
    extension_requests: int = 0
    extensions_approved: int = 0
    returns: int = 0
    reworks: int = 0
    reworked_orders: int = 0
    revisited: int = 0
    reached: int = 0
    voided: int = 0
    satisfied: int = 0
    unsatisfied: int = 0
    appeals_upheld: int = 0
    overdue: int = 0
    rates: dict[str, float | None] = field(default_factory=dict)
    score: float | None = None
    grade: str | None = None
    rank: int | None = None

    def finish(self, config: ReportsConfig) -> UnitKpis:
        """Rates, composite score (综合指标值) and grade from the counts."""
        rework_rate = rate(self.reworked_orders, self.received)
        self.rates = {
            "timely_acceptance_rate": rate(self.accepted_on_time, self.acceptance_base),
            "timely_first_contact_rate": rate(self.first_contact_on_time,
                                              self.first_contact_base),
            "feedback_rate": rate(self.fed_back, self.handled),
            "completion_rate": rate(self.completed, self.handled),
            "on_time_completion_rate": rate(self.completed_on_time, self.completed),
            "rework_rate": rework_rate,
            "rework_free_rate": None if rework_rate is None else 1 - rework_rate,
            "revisit_reach_rate": rate(self.reached, self.revisited),
            "unsatisfied_rate": rate(self.unsatisfied, self.reached - self.voided),
            "satisfaction_rate": rate(self.satisfied, self.reached - self.voided),
        }
        self.score = composite_score(self.rates, config.weights)
        self.grade = config.grade(self.score)
        return self


def composite_score(rates: dict[str, float | None], weights: dict[str, float]
                    ) -> float | None:
    """100 × the weighted mean of the defined rates, one decimal; None without any."""
    used = [(weights.get(name, 0.0), rates[name]) for name in DEFAULT_WEIGHTS
            if rates.get(name) is not None and weights.get(name, 0.0) > 0]
    total = sum(w for w, _ in used)
    if not total:
        return None
    return round(100 * sum(w * r for w, r in used) / total, 1)


def _pairs(by_unit: bool, start: datetime, end: datetime, filters: Filters) -> Any:
    """Per (order, unit) — or per order for the office — the first and last lead hold, of
    the orders with a lead hold dispatched in the period (a pair whose first hold is in
    the period is one of them; the others are dropped before grouping)."""
    keys = [A.ticket_id, A.unit_id] if by_unit else [A.ticket_id]
    dispatched = aliased(A, name="in_period")
    candidates = select(dispatched.ticket_id).where(
        dispatched.role == "lead", dispatched.dispatched_at >= start,
        dispatched.dispatched_at < end)
    stmt = (select(*keys, func.min(A.id).label("first_id"), func.max(A.id).label("last_id"))
            .where(A.role == "lead", A.ticket_id.in_(candidates)).group_by(*keys))
    if filters.unit_id is not None:
        stmt = stmt.where(A.unit_id == filters.unit_id)
    return stmt.subquery("pairs")


def _flag(condition: Any) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _hold_counts(by_unit: bool, start: datetime, end: datetime, as_of: datetime,
                 filters: Filters) -> Select[Any]:
    pairs = _pairs(by_unit, start, end, filters)
    first, last = aliased(A, name="first_hold"), aliased(A, name="last_hold")
    handled = func.coalesce(last.end_reason, "").not_in(LEFT_UNIT)
    completed = and_(handled, last.replied_at.is_not(None))
    plan_given = and_(Ticket.plan_replied_at.is_not(None), Ticket.lead_unit_id == last.unit_id)
    acceptance_due = or_(last.accepted_on_time.is_not(None), last.acceptance_due_at < as_of)
    contact_due = or_(last.first_contact_on_time.is_not(None),
                      last.first_contact_due_at < as_of)
    group = [last.unit_id] if by_unit else []
    stmt = (
        select(
            *(group or [literal(None).label("unit_id")]),
            func.count().label("received"),
            _flag(and_(last.end_reason.is_distinct_from("returned"), acceptance_due)
                  ).label("acceptance_base"),
            _flag(and_(last.end_reason.is_distinct_from("returned"),
                       last.accepted_on_time == true())).label("accepted_on_time"),
            _flag(and_(handled, not_(Ticket.anonymous), last.accepted_at.is_not(None),
                       contact_due)).label("first_contact_base"),
            _flag(and_(handled, not_(Ticket.anonymous),
                       last.first_contact_on_time == true())).label("first_contact_on_time"),
            _flag(handled).label("handled"),
            _flag(and_(handled, or_(last.replied_at.is_not(None), plan_given))
                  ).label("fed_back"),
            _flag(completed).label("completed"),
            _flag(and_(completed, last.replied_on_time == true())).label("completed_on_time"),
        )
        .select_from(pairs)
        .join(first, first.id == pairs.c.first_id)
        .join(last, last.id == pairs.c.last_id)
        .join(Ticket, Ticket.id == pairs.c.ticket_id)
        .where(first.dispatched_at >= start, first.dispatched_at < end)
    )
    stmt = _topic_filter(stmt, filters)
    return stmt.group_by(*group) if group else stmt


def _topic_filter(stmt: Select[Any], filters: Filters) -> Select[Any]:
    return stmt if filters.topics is None else stmt.where(Ticket.topic.in_(filters.topics))


def _event_counts(by_unit: bool, start: datetime, end: datetime, filters: Filters
                  ) -> list[tuple[str, Select[Any]]]:
    """Counts of things that happened in the period, per unit (or office-wide)."""

    def grouped(unit_col: Any, *columns: Any, joined: Any, at: Any) -> Select[Any]:
        stmt = select(unit_col.label("unit_id") if by_unit else literal(None).label("unit_id"),
                      *columns)
        if joined is not None:
            stmt = stmt.select_from(joined.table).join(Ticket, Ticket.id == joined)
        else:
            stmt = stmt.select_from(Ticket)
        stmt = stmt.where(at >= start, at < end)
        if filters.unit_id is not None:
            stmt = stmt.where(unit_col == filters.unit_id)
        stmt = _topic_filter(stmt, filters)
        return stmt.group_by(unit_col) if by_unit else stmt

    ext = TicketExtension
    return [
        ("returns", grouped(A.unit_id, func.count().label("returns"),
                            joined=A.ticket_id, at=A.ended_at)
         .where(A.end_reason == "returned")),
        ("extensions", grouped(ext.unit_id, func.count().label("extension_requests"),
                               _flag(ext.decision == "approved").label("extensions_approved"),
                               joined=ext.ticket_id, at=ext.requested_at)),
        ("reworks", grouped(TicketRework.unit_id, func.count().label("reworks"),
                            func.count(TicketRework.ticket_id.distinct())
                            .label("reworked_orders"),
                            joined=TicketRework.ticket_id, at=TicketRework.at)),
        ("appeals", grouped(RevisitAppeal.unit_id, func.count().label("appeals_upheld"),
                            joined=RevisitAppeal.ticket_id, at=RevisitAppeal.decided_at)
         .where(RevisitAppeal.upheld == true())),
        ("overdue", grouped(Ticket.lead_unit_id, func.count().label("overdue"),
                            joined=None, at=Ticket.overdue_since)),
    ]


def _revisit_counts(by_unit: bool, start: datetime, end: datetime, filters: Filters
                    ) -> Select[Any]:
    """The last revisit of each order (per unit) in the period; an upheld appeal voids its
    rating (out of the satisfaction figures), though the revisit was made and reached."""
    R = TicketRevisit
    keys = [R.ticket_id, R.unit_id] if by_unit else [R.ticket_id]
    last = (select(func.max(R.id).label("id")).where(R.at >= start, R.at < end)
            .group_by(*keys))
    if filters.unit_id is not None:
        last = last.where(R.unit_id == filters.unit_id)
    last_ids = last.subquery("last_revisits")
    upheld = select(RevisitAppeal.revisit_id).where(RevisitAppeal.upheld == true())
    valid = R.id.not_in(upheld)
    stmt = (
        select(R.unit_id.label("unit_id") if by_unit else literal(None).label("unit_id"),
               func.count().label("revisited"),
               _flag(R.result.in_(REACHED)).label("reached"),
               _flag(and_(R.result.in_(REACHED), not_(valid))).label("voided"),
               _flag(and_(R.result.in_(SATISFIED), valid)).label("satisfied"),
               _flag(and_(R.result == "unsatisfied", valid)).label("unsatisfied"))
        .select_from(last_ids).join(R, R.id == last_ids.c.id)
        .join(Ticket, Ticket.id == R.ticket_id)
    )
    stmt = _topic_filter(stmt, filters)
    return stmt.group_by(R.unit_id) if by_unit else stmt


async def unit_kpis(session: AsyncSession, period: Period, config: ReportsConfig,
                    filters: Filters = Filters(), *, as_of: datetime | None = None
                    ) -> list[UnitKpis]:
    """Every active unit's figures (units without orders included), ranked within group."""
    start, end = period.bounds()
    units = (await session.execute(
        select(Unit.id, Unit.name, Unit.kind).where(Unit.active == true()).order_by(Unit.id)
    )).all()
    if filters.unit_id is not None:
        units = [u for u in units if u.id == filters.unit_id]
    found = {u.id: UnitKpis(u.id, u.name, u.kind) for u in units}
    await _fill(session, found, True, start, end, as_of or end, filters)
    result = [kpis.finish(config) for kpis in found.values()]
    rank(result, config)
    return result


async def office_kpis(session: AsyncSession, period: Period, config: ReportsConfig,
                      filters: Filters = Filters(), *, as_of: datetime | None = None
                      ) -> UnitKpis:
    """The office's figures: each order once, whichever units held it."""
    start, end = period.bounds()
    total = UnitKpis(None, "office", "office")
    await _fill(session, {None: total}, False, start, end, as_of or end, filters)
    return total.finish(config)


async def _fill(session: AsyncSession, found: dict[Any, UnitKpis], by_unit: bool,
                start: datetime, end: datetime, as_of: datetime, filters: Filters) -> None:
    queries = [_hold_counts(by_unit, start, end, as_of, filters),
               _revisit_counts(by_unit, start, end, filters),
               *(q for _, q in _event_counts(by_unit, start, end, filters))]
    for query in queries:
        for row in (await session.execute(query)).mappings():
            target = found.get(row["unit_id"])
            if target is None:
                continue  # an inactive unit's figures are not reported
            for key, value in row.items():
                if key != "unit_id":
                    setattr(target, key, int(value or 0))


def rank(units: Sequence[UnitKpis], config: ReportsConfig) -> None:
    """Towns/streets and departments ranked separately, by score, among units with at
    least ``ranking_min_orders`` orders; ties share a rank (1, 2, 2, 4)."""
    for towns in (True, False):
        group = [u for u in units if (u.unit_kind in config.town_kinds) == towns
                 and u.received >= config.ranking_min_orders and u.score is not None]
        group.sort(key=lambda u: (-(u.score or 0), u.unit_name))
        for index, unit in enumerate(group):
            previous = group[index - 1] if index else None
            unit.rank = previous.rank if previous and previous.score == unit.score \
                else index + 1


def grade_counts(units: Sequence[UnitKpis]) -> dict[str, int]:
    """How many units got each grade (seed 001: A 51, B 4, C 1, D 1)."""
    counts = {"A": 0, "B": 0, "C": 0, "D": 0}
    for unit in units:
        if unit.grade:
            counts[unit.grade] += 1
    return counts


# --- breakdowns ------------------------------------------------------------------------


@dataclass
class Share:
    key: str
    count: int
    share: float | None
    previous: int
    year_before: int
    mom: float | None
    yoy: float | None


async def breakdown(session: AsyncSession, column: Any, period: Period,
                    filters: Filters = Filters(), *, group: dict[str, str] | None = None
                    ) -> list[Share]:
    """Orders registered in the period by ``column`` (channel, type, topic): count, share,
    month-on-month and year-on-year change, in one pass over the three periods.
    ``group`` maps a code to its category (level-2 topics to their level-1 topic)."""
    periods = [p.bounds() for p in (period, period.previous(), period.year_before())]
    sums = [_flag(and_(Ticket.registered_at >= a, Ticket.registered_at < b))
            for a, b in periods]
    stmt = (select(column, *sums)
            .where(or_(*(and_(Ticket.registered_at >= a, Ticket.registered_at < b)
                         for a, b in periods)))
            .where(Ticket.status.not_in(NOT_ORDERS)).group_by(column))
    if filters.unit_id is not None:
        stmt = stmt.where(Ticket.lead_unit_id == filters.unit_id)
    stmt = _topic_filter(stmt, filters)
    now: dict[str, int] = {}
    before: dict[str, int] = {}
    last_year: dict[str, int] = {}
    for key, *counts in (await session.execute(stmt)).all():
        name = "" if key is None else str(key)
        name = group.get(name, name) if group is not None else name
        for target, n in zip((now, before, last_year), counts, strict=True):
            target[name] = target.get(name, 0) + int(n)
    total = sum(now.values())
    rows = [Share(key, n, rate(n, total), before.get(key, 0), last_year.get(key, 0),
                  change(n, before.get(key, 0)), change(n, last_year.get(key, 0)))
            for key, n in now.items() if n]
    return sorted(rows, key=lambda s: (-s.count, s.key))


async def top_places(session: AsyncSession, period: Period, limit: int,
                     filters: Filters = Filters()) -> list[tuple[str, int]]:
    """The places named most often (an order's location), busiest first."""
    start, end = period.bounds()
    stmt = (select(Ticket.location, func.count().label("n"))
            .where(Ticket.registered_at >= start, Ticket.registered_at < end,
                   Ticket.location.is_not(None), Ticket.status.not_in(NOT_ORDERS))
            .group_by(Ticket.location).order_by(func.count().desc(), Ticket.location)
            .limit(limit))
    if filters.unit_id is not None:
        stmt = stmt.where(Ticket.lead_unit_id == filters.unit_id)
    stmt = _topic_filter(stmt, filters)
    return [(str(place), int(n)) for place, n in (await session.execute(stmt)).all()]


async def hotspot_flags(session: AsyncSession, period: Period) -> list[dict[str, Any]]:
    """Supervision's hotspot flags raised in the period (10+ callers, 10+ complaints)."""
    start, end = period.bounds()
    rows = (await session.execute(
        select(SupervisionFlag.kind, SupervisionFlag.summary, SupervisionFlag.count,
               SupervisionFlag.unit_id)
        .where(SupervisionFlag.raised_at >= start, SupervisionFlag.raised_at < end)
        .order_by(SupervisionFlag.count.desc(), SupervisionFlag.id))).all()
    return [{"kind": r.kind, "summary": r.summary, "count": int(r.count),
             "unit_id": r.unit_id} for r in rows]


async def typical_cases(session: AsyncSession, month: str) -> list[dict[str, Any]]:
    rows = (await session.execute(
        select(TypicalCase.kind, TypicalCase.note, Ticket.number, Ticket.title,
               Unit.name.label("unit"))
        .join(Ticket, Ticket.id == TypicalCase.ticket_id)
        .outerjoin(Unit, Unit.id == Ticket.lead_unit_id)
        .where(TypicalCase.month == month).order_by(TypicalCase.id))).all()
    return [{"kind": r.kind, "note": r.note, "number": r.number, "title": r.title,
             "unit": r.unit} for r in rows]


# --- call-center statistics ------------------------------------------------------------


@dataclass
class CallStats:
    """Inbound calls started in the period. ``None``: the data does not exist yet."""

    inbound: int = 0
    offered: int = 0
    answered: int = 0
    answered_in_target: int = 0
    abandoned: int = 0
    timeouts: int = 0
    other_queue_exits: int = 0
    ivr_hangups: int = 0
    ivr_self_served: int = 0
    wait_answered_seconds: float = 0.0
    handle_seconds: float = 0.0
    agent_rings: int = 0
    agent_missed: int = 0
    agent_time: dict[str, Any] = field(default_factory=dict)
    """Logged-in time, seconds per state, pause time by reason (``agent_time.py``)."""
    rates: dict[str, float | None] = field(default_factory=dict)
    pending: list[str] = field(default_factory=list)
    """Figures the data cannot give yet (kept for months frozen before they existed)."""

    def finish(self) -> CallStats:
        self.rates = {
            "answer_rate": rate(self.answered, self.offered),
            "abandon_rate": rate(self.abandoned, self.offered),
            "abandon_rate_with_timeouts": rate(self.abandoned + self.timeouts, self.offered),
            "service_level": rate(self.answered_in_target, self.offered),
            "average_speed_of_answer": (self.wait_answered_seconds / self.answered
                                        if self.answered else None),
            "average_handle_time": (self.handle_seconds / self.answered
                                    if self.answered else None),
            "ivr_self_service_rate": rate(self.ivr_self_served, self.inbound),
            "agent_miss_rate": rate(self.agent_missed, self.agent_rings),
            "agent_occupancy": self.agent_time.get("occupancy"),
        }
        return self


async def call_stats(session: AsyncSession, period: Period, config: ReportsConfig,
                     as_of: datetime | None = None) -> CallStats:
    start, end = period.bounds()
    C = CallLog
    queued = C.queue.is_not(None)
    answered = and_(queued, C.disposition == "answered")
    in_target = and_(answered, C.wait_seconds <= config.service_level_seconds)
    self_served = and_(C.disposition == "ivr_hangup",
                       C.ivr_node.in_(config.self_service_nodes or ["-"]))
    row = (await session.execute(
        select(func.count().label("inbound"),
               _flag(queued).label("offered"),
               _flag(answered).label("answered"),
               _flag(in_target).label("answered_in_target"),
               _flag(and_(queued, C.disposition == "abandoned")).label("abandoned"),
               _flag(and_(queued, C.disposition == "no_answer", C.queue_outcome == "timeout")
                     ).label("timeouts"),
               _flag(and_(queued, C.disposition == "no_answer",
                          func.coalesce(C.queue_outcome, "") != "timeout")
                     ).label("other_queue_exits"),
               _flag(C.disposition == "ivr_hangup").label("ivr_hangups"),
               _flag(self_served).label("ivr_self_served"),
               func.coalesce(func.sum(case((answered, C.wait_seconds), else_=0.0)), 0.0)
               .label("wait_answered_seconds"),
               func.coalesce(func.sum(case((answered, C.talk_seconds + C.hold_seconds),
                                           else_=0.0)), 0.0).label("handle_seconds"))
        .where(C.direction == "inbound", C.started_at >= start, C.started_at < end)
    )).mappings().one()
    stats = CallStats(**{k: (float(v) if k.endswith("seconds") else int(v))
                         for k, v in row.items()})
    rings = (await session.execute(
        select(func.count(), _flag(CallAgentAttempt.outcome == "missed"))
        .where(CallAgentAttempt.called_at >= start, CallAgentAttempt.called_at < end)
    )).one()
    stats.agent_rings, stats.agent_missed = int(rings[0]), int(rings[1])
    office, _ = await agent_time(session, start, end, as_of)
    stats.agent_time = office.as_json()
    return stats.finish()


async def agent_table(session: AsyncSession, period: Period, as_of: datetime | None = None
                      ) -> list[dict[str, Any]]:
    """Per agent: rings offered, answered, missed, talk time, and logged-in, pause time and
    occupancy from the state periods; busiest first."""
    start, end = period.bounds()
    X = CallAgentAttempt
    rows = (await session.execute(
        select(X.agent_name, func.count().label("rings"),
               _flag(X.outcome == "answered").label("answered"),
               _flag(X.outcome == "missed").label("missed"),
               func.coalesce(func.sum(X.talk_seconds), 0.0).label("talk_seconds"))
        .where(X.called_at >= start, X.called_at < end)
        .group_by(X.agent_name).order_by(func.count().desc(), X.agent_name))).all()
    _, times = await agent_time(session, start, end, as_of)
    table = [{"agent": r.agent_name, "rings": int(r.rings), "answered": int(r.answered),
              "missed": int(r.missed), "talk_seconds": float(r.talk_seconds)} for r in rows]
    table += [{"agent": name, "rings": 0, "answered": 0, "missed": 0, "talk_seconds": 0.0}
              for name in sorted(set(times) - {r.agent_name for r in rows})]
    for row in table:
        spent = times.get(row["agent"])
        row.update(logged_in_seconds=round(spent.logged_in, 3) if spent else 0.0,
                   paused_seconds=round(spent.seconds["paused"], 3) if spent else 0.0,
                   occupancy=spent.occupancy if spent else None)
    return table


def topic_names(taxonomy: Taxonomy) -> dict[str, str]:
    """Every topic code → its own label (a level-2 topic's own name)."""
    names = {code: topic.label for code, topic in taxonomy.topics.items()}
    for topic in taxonomy.topics.values():
        names.update(topic.children)
    names.update({old: names[new] for old, new in taxonomy.aliases.items() if new in names})
    return names


def topic_groups(taxonomy: Taxonomy) -> dict[str, str]:
    """Every topic code (level 1, level 2, retired) → its level-1 label, as reports count."""
    groups: dict[str, str] = {}
    for code, topic in taxonomy.topics.items():
        groups[code] = topic.label
        groups.update({child: topic.label for child in topic.children})
    groups.update({old: groups[new] for old, new in taxonomy.aliases.items() if new in groups})
    return groups


# --- the whole report's figures --------------------------------------------------------


def working_days(period: Period, calendar: WorkingCalendar) -> int:
    """Working days in the period on the office's calendar (holidays and make-up days)."""
    days, day = 0, period.start
    while day < period.end:
        days += calendar.workday_on_or_after(day) == day
        day += timedelta(days=1)
    return days


async def report_figures(session: AsyncSession, period: Period, config: ReportsConfig, *,
                         topic_groups: dict[str, str], calendar: WorkingCalendar,
                         topic_labels: dict[str, str] | None = None,
                         filters: Filters = Filters(), as_of: datetime | None = None
                         ) -> dict[str, Any]:
    """Every figure of one period's report, JSON-ready (what a frozen month stores)."""
    units = await unit_kpis(session, period, config, filters, as_of=as_of)
    office = await office_kpis(session, period, config, filters, as_of=as_of)
    calls = await call_stats(session, period, config, as_of)
    figures = {
        "period": {"label": period.label, "start": period.start.isoformat(),
                   "end": period.end.isoformat(), "tz": period.tz,
                   "working_days": working_days(period, calendar)},
        "filters": {"unit_id": filters.unit_id,
                    "topics": list(filters.topics) if filters.topics else None},
        "office": asdict(office),
        "units": [asdict(u) for u in units],
        "grades": grade_counts([u for u in units if u.received]),
        "by_channel": [asdict(s) for s in await breakdown(session, Ticket.channel, period,
                                                           filters)],
        "by_type": [asdict(s) for s in await breakdown(session, Ticket.ticket_type, period,
                                                        filters)],
        "by_topic": [asdict(s) for s in await breakdown(session, Ticket.topic, period, filters,
                                                         group=topic_groups)],
        "top_topics": [{**asdict(s), "label": (topic_labels or {}).get(s.key, s.key)}
                       for s in (await breakdown(session, Ticket.topic, period,
                                                 filters))[:config.top_n]],
        "top_places": [{"place": p, "count": n}
                       for p, n in await top_places(session, period, config.top_n, filters)],
        "hotspots": await hotspot_flags(session, period),
        "overdue_by_unit": [{"unit_id": u.unit_id, "unit": u.unit_name, "overdue": u.overdue}
                            for u in sorted(units, key=lambda u: (-u.overdue, u.unit_name))
                            if u.overdue],
        "typical_cases": await typical_cases(session, period.label) if period.is_month
        else [],
        "calls": asdict(calls),
        "agents": await agent_table(session, period, as_of),
    }
    log.info("reports.figures period=%s units=%s", period.label, len(units))
    return figures
