"""What people add to the figures: a unit's appeal of an unsatisfied revisit (decided by the
office), and the typical cases a supervisor picks for a month's report."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.auth.principal import Principal, Role
from callcenter.reports.errors import ReportConflict, ReportNotFound
from callcenter.reports.models import RevisitAppeal, TypicalCase
from callcenter.tickets.models import Ticket, TicketRevisit

log = logging.getLogger(__name__)


async def file_appeal(session: AsyncSession, principal: Principal, revisit_id: int,
                      reason: str, now: datetime) -> RevisitAppeal:
    """申诉: a unit contests an unsatisfied revisit of its own order, once."""
    revisit = await session.get(TicketRevisit, revisit_id)
    if revisit is None or revisit.unit_id is None or (
            principal.role is Role.UNIT_HANDLER and principal.unit_id != revisit.unit_id):
        raise ReportNotFound("revisit not found")
    if revisit.result != "unsatisfied":
        raise ReportConflict(f"only an unsatisfied revisit can be appealed, not "
                             f"{revisit.result}", field="revisit_id")
    if await session.scalar(select(RevisitAppeal.id).where(
            RevisitAppeal.revisit_id == revisit_id)) is not None:
        raise ReportConflict("this revisit is appealed already", field="revisit_id")
    appeal = RevisitAppeal(revisit_id=revisit_id, ticket_id=revisit.ticket_id,
                           unit_id=revisit.unit_id, reason=reason, filed_at=now)
    session.add(appeal)
    await _flush_once(session, "this revisit is appealed already", "revisit_id")
    log.info("reports.appeal_filed appeal=%s revisit=%s", appeal.id, revisit_id)
    return appeal


async def decide_appeal(session: AsyncSession, principal: Principal, appeal_id: int,
                        upheld: bool, now: datetime) -> RevisitAppeal:
    appeal = await session.get(RevisitAppeal, appeal_id)
    if appeal is None:
        raise ReportNotFound("appeal not found")
    if appeal.decided_at is not None:
        raise ReportConflict("this appeal is decided already")
    appeal.upheld, appeal.decided_at, appeal.decided_by = upheld, now, principal.user_id
    log.info("reports.appeal_decided appeal=%s upheld=%s", appeal_id, upheld)
    return appeal


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
