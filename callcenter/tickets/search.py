"""Queries over many tickets: the filtered, paginated search and the per-unit counts.

The search pages by keyset on (created_at, id), newest first: every filter has an index in
that order (``ix_tickets_status_created_at_id``, ``..._type_status_...``, ``..._topic_...``,
``ix_tickets_created_at_id`` for date ranges; a unit's orders through
``ix_ticket_assignments_unit_list``), so page 1,000 costs what page 1 costs and a narrow
date range stops where the range ends. A unit handler's search is always restricted to the
orders its unit actively holds.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Select, and_, func, or_, select, true, tuple_

from callcenter.auth.principal import Principal, Role
from callcenter.tickets.lifecycle import OPEN_AT_UNIT, Action
from callcenter.tickets.models import Ticket, TicketAssignment, TicketEvent
from callcenter.tickets.schemas import SearchQuery

OPEN_STATES = sorted(str(s) for s in OPEN_AT_UNIT)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def own_unit(principal: Principal) -> int | None:
    return principal.unit_id if principal.role == Role.UNIT_HANDLER else None


def encode_cursor(ticket: Ticket) -> str:
    """``<created_at in µs since the epoch>-<id>``: opaque to clients, safe in a URL."""
    micros = (ticket.created_at - EPOCH) // timedelta(microseconds=1)
    return f"{micros}-{ticket.id}"


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    micros, _, ticket_id = cursor.partition("-")
    return EPOCH + timedelta(microseconds=int(micros)), int(ticket_id)


def search_statement(principal: Principal, q: SearchQuery, *, now: datetime,
                     due_soon_until: datetime) -> Select[tuple[Ticket]]:
    """Tickets matching ``q`` that ``principal`` may see, newest first (no limit yet)."""
    stmt = select(Ticket)
    if principal.role == Role.UNIT_HANDLER and principal.unit_id is None:
        return stmt.where(False)
    # The list walks one index in (created_at, id) order: the unit's holds when a unit is
    # asked for (or asking), the tickets' own otherwise.
    at, ident = Ticket.created_at, Ticket.id
    for unit_id in sorted({u for u in (q.unit_id, own_unit(principal)) if u is not None}):
        holder = TicketAssignment.__table__.alias(f"holder_{unit_id}")
        stmt = stmt.join(holder, and_(holder.c.ticket_id == Ticket.id,
                                      holder.c.unit_id == unit_id,
                                      holder.c.active == true()))
        at, ident = holder.c.ticket_created_at, holder.c.ticket_id
    stmt = stmt.order_by(at.desc(), ident.desc())
    if q.status:
        stmt = stmt.where(Ticket.status.in_([str(s) for s in q.status]))
    if q.ticket_type:
        stmt = stmt.where(Ticket.ticket_type == q.ticket_type)
    if q.topic:
        stmt = stmt.where(Ticket.topic == q.topic)
    if q.overdue is not None:
        late = and_(Ticket.status.in_(OPEN_STATES), Ticket.reply_due_at < now)
        stmt = stmt.where(late if q.overdue else ~late)
    if q.due_soon:
        stmt = stmt.where(Ticket.status.in_(OPEN_STATES), Ticket.reply_due_at >= now,
                          Ticket.reply_due_at <= due_soon_until)
    if q.created_from:
        stmt = stmt.where(at >= q.created_from)
    if q.created_to:
        stmt = stmt.where(at < q.created_to)
    if q.text:
        stmt = stmt.where(or_(Ticket.number == q.text,
                              Ticket.title.contains(q.text, autoescape=True),
                              Ticket.content.contains(q.text, autoescape=True)))
    if q.cursor:
        cursor_at, cursor_id = decode_cursor(q.cursor)
        stmt = stmt.where(tuple_(at, ident) < tuple_(cursor_at, cursor_id))
    return stmt


def unit_counts_statement(principal: Principal, *, since: datetime | None,
                          until: datetime | None) -> Select[tuple[int, str, int]]:
    """(unit, action, count) of returns and reworks, from the timeline (source of truth)."""
    stmt = (select(TicketEvent.unit_id, TicketEvent.action, func.count())
            .where(TicketEvent.action.in_([Action.RETURN.value, Action.REWORK.value]),
                   TicketEvent.unit_id.is_not(None))
            .group_by(TicketEvent.unit_id, TicketEvent.action))
    if since:
        stmt = stmt.where(TicketEvent.at >= since)
    if until:
        stmt = stmt.where(TicketEvent.at < until)
    if principal.role == Role.UNIT_HANDLER:
        stmt = stmt.where(TicketEvent.unit_id == own_unit(principal))
    return stmt
