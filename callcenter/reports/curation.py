"""What people add to the figures: a unit's appeal of a low revisit rating (decided by the
office), and the typical cases a supervisor picks for a month's report."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import false, select, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.auth.principal import Principal, Role
from callcenter.reports.errors import ReportConflict, ReportNotFound
from callcenter.reports.models import RevisitAppeal, TypicalCase
from callcenter.reports.service import Period
from callcenter.tickets.models import RevisitResult, Ticket, TicketEvent, TicketRevisit

log = logging.getLogger(__name__)

LOW_STARS = 2
APPEAL_FILED, APPEAL_DECIDED = "appeal_filed", "appeal_decided"  # timeline actions


@dataclass(frozen=True)
class AppealFiling:
    reason: str
    evidence: str
    attachments: Sequence[dict[str, Any]] = ()


@dataclass(frozen=True)
class AppealFilter:
    """``status``: pending, upheld or rejected; ``month`` (YYYY-MM): filed in that month."""

    status: str | None = None
    unit_id: int | None = None
    month: str | None = None
    before: int | None = None
    limit: int = 100


async def file_appeal(session: AsyncSession, principal: Principal, revisit_id: int,
                      filing: AppealFiling, now: datetime, tz: str) -> RevisitAppeal:
    """申诉: a unit contests a low rating of its own order, once, by the end of the
    revisit's month; the filing goes on the order's timeline."""
    revisit = await session.get(TicketRevisit, revisit_id)
    if revisit is None or not principal.is_unit_member(revisit.unit_id):
        raise ReportNotFound("revisit not found")
    if not is_low_rating(revisit):
        raise ReportConflict(f"only an unsatisfied revisit or one of {LOW_STARS} stars or "
                             "fewer can be appealed", field="revisit_id")
    deadline = appeal_deadline(revisit.at, tz)
    if now >= deadline:
        raise ReportConflict(f"appeals of this revisit closed at {deadline.isoformat()}",
                             field="revisit_id")
    if await session.scalar(select(RevisitAppeal.id).where(
            RevisitAppeal.revisit_id == revisit_id)) is not None:
        raise ReportConflict("this revisit is appealed already", field="revisit_id")
    appeal = RevisitAppeal(revisit_id=revisit_id, ticket_id=revisit.ticket_id,
                           unit_id=revisit.unit_id, reason=filing.reason,
                           evidence=filing.evidence, attachments=list(filing.attachments),
                           filed_by=principal.user_id, filed_at=now)
    session.add(appeal)
    await _flush_once(session, "this revisit is appealed already", "revisit_id")
    session.add(_timeline_event(appeal, principal, APPEAL_FILED, now, reason=filing.reason,
                                data={"evidence": filing.evidence},
                                attachments=appeal.attachments))
    log.info("reports.appeal_filed appeal=%s revisit=%s", appeal.id, revisit_id)
    return appeal


def is_low_rating(revisit: TicketRevisit) -> bool:
    """Seed 000: a unit may appeal ratings of two stars or fewer (an unsatisfied result)."""
    return revisit.result == RevisitResult.UNSATISFIED or (
        revisit.stars is not None and revisit.stars <= LOW_STARS)


def appeal_deadline(revisit_at: datetime, tz: str) -> datetime:
    """当月月底前: the end of the revisit's month, local time, as the monthly figures
    count months (an appeal filed in time is decided before or after the month is frozen)."""
    local = revisit_at.astimezone(ZoneInfo(tz))
    return Period.month(f"{local:%Y-%m}", tz).bounds()[1]


async def decide_appeal(session: AsyncSession, principal: Principal, appeal_id: int,
                        upheld: bool, note: str, now: datetime) -> RevisitAppeal:
    """The office's decision, once: a conditional update, so two concurrent decisions
    cannot both win."""
    appeal = await session.get(RevisitAppeal, appeal_id)
    if appeal is None:
        raise ReportNotFound("appeal not found")
    decided = await session.execute(
        update(RevisitAppeal)
        .where(RevisitAppeal.id == appeal_id, RevisitAppeal.decided_at.is_(None))
        .values(upheld=upheld, decision_note=note, decided_at=now,
                decided_by=principal.user_id)
        .execution_options(synchronize_session=False))
    if decided.rowcount != 1:  # type: ignore[attr-defined]
        raise ReportConflict("this appeal is decided already")
    await session.refresh(appeal)
    session.add(_timeline_event(appeal, principal, APPEAL_DECIDED, now, reason=note,
                                data={"upheld": upheld}))
    log.info("reports.appeal_decided appeal=%s upheld=%s", appeal_id, upheld)
    return appeal


async def list_appeals(session: AsyncSession, principal: Principal, query: AppealFilter,
                       tz: str) -> list[RevisitAppeal]:
    """Newest first, ``limit`` after the cursor ``before`` (an id); a unit sees only its own."""
    A = RevisitAppeal
    stmt = select(A).order_by(A.id.desc()).limit(query.limit)
    if principal.role is Role.UNIT_HANDLER:
        stmt = stmt.where(A.unit_id == principal.unit_id)
    if query.unit_id is not None:
        stmt = stmt.where(A.unit_id == query.unit_id)
    if query.status is not None:
        stmt = stmt.where(STATUS_FILTERS[query.status])
    if query.month is not None:
        start, end = Period.month(query.month, tz).bounds()
        stmt = stmt.where(A.filed_at >= start, A.filed_at < end)
    if query.before is not None:
        stmt = stmt.where(A.id < query.before)
    return list((await session.scalars(stmt)).all())


STATUS_FILTERS = {
    "pending": RevisitAppeal.decided_at.is_(None),
    "upheld": RevisitAppeal.upheld == true(),
    "rejected": RevisitAppeal.upheld == false(),
}


def _timeline_event(appeal: RevisitAppeal, principal: Principal, action: str, now: datetime,
                    *, reason: str, data: dict[str, Any], attachments: list[Any] | None = None
                    ) -> TicketEvent:
    """The order's timeline shows the appeal; its state does not change."""
    return TicketEvent(ticket_id=appeal.ticket_id, at=now, actor_id=principal.user_id,
                       actor_role=str(principal.role), action=action, unit_id=appeal.unit_id,
                       reason=reason, attachments=attachments or [],
                       data={"appeal_id": appeal.id, "revisit_id": appeal.revisit_id, **data})


async def pick_typical_case(session: AsyncSession, principal: Principal, month: str,
                            ticket_id: int, kind: str, note: str, now: datetime
                            ) -> TypicalCase:
    if await session.get(Ticket, ticket_id) is None:
        raise ReportNotFound("ticket not found")
    if await session.scalar(select(TypicalCase.id).where(
            TypicalCase.month == month, TypicalCase.ticket_id == ticket_id)) is not None:
        raise ReportConflict("this order is a typical case of that month already",
                             field="ticket_id")
    case = TypicalCase(month=month, ticket_id=ticket_id, kind=kind, note=note,
                       chosen_by=principal.user_id, chosen_at=now)
    session.add(case)
    await _flush_once(session, "this order is a typical case of that month already",
                      "ticket_id")
    return case


async def _flush_once(session: AsyncSession, message: str, field: str) -> None:
    """A concurrent duplicate loses on the unique key: a conflict, not a server error."""
    try:
        await session.flush()
    except IntegrityError:
        raise ReportConflict(message, field=field) from None
