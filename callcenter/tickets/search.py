"""Queries over many tickets: the filtered, paginated search and the per-unit counts.

The search pages by keyset on (created_at, id), newest first: every filter has an index in
that order (``ix_tickets_status_created_at_id``, ``..._type_status_...``, ``..._topic_...``,
``ix_tickets_created_at_id`` for date ranges; a unit's orders through
``ix_ticket_assignments_unit_list``; a word's orders through ``pk_ticket_words``), so
page 1,000 costs what page 1 costs and a narrow date range stops where the range ends.
A unit handler's search is always restricted to the orders its unit actively holds.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, func, or_, select, true, tuple_

from callcenter.auth.principal import Principal, Role
from callcenter.tickets.errors import InvalidInput
from callcenter.tickets.lifecycle import OPEN_AT_UNIT, Action
from callcenter.tickets.models import Ticket, TicketAssignment, TicketEvent, TicketWord
from callcenter.tickets.schemas import SearchQuery
from callcenter.tickets.similarity import query_words

OPEN_STATES = sorted(str(s) for s in OPEN_AT_UNIT)
TICKET_NUMBER = re.compile(r"\d{8}-\d{6}")
MAX_QUERY_WORDS = 8
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def own_unit(principal: Principal) -> int | None:
    return principal.unit_id if principal.role == Role.UNIT_HANDLER else None


def encode_cursor(ticket: Ticket) -> str:
    """``<created_at in µs since the epoch>-<id>``: opaque to clients, safe in a URL."""
    micros = (ticket.created_at - EPOCH) // timedelta(microseconds=1)
    return f"{micros}-{ticket.id}"


MAX_ID = 2**31 - 1  # ids are 32-bit INTEGER columns


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """The key of ``encode_cursor``; a tampered one (out of range) is invalid input."""
    micros, _, ticket_id = cursor.partition("-")
    try:
        at = EPOCH + timedelta(microseconds=int(micros))
    except OverflowError:
        at = None
    if at is None or int(ticket_id) > MAX_ID:
        raise InvalidInput("not a cursor of this list", field="cursor")
    return at, int(ticket_id)


def search_statement(principal: Principal, q: SearchQuery, *, now: datetime,
                     due_soon_until: datetime, topics: list[str] | None = None
                     ) -> Select[tuple[Ticket]]:
    """Tickets matching ``q`` that ``principal`` may see, newest first (no limit yet)."""
    stmt = select(Ticket)
    if principal.role == Role.UNIT_HANDLER and principal.unit_id is None:
        return stmt.where(False)
    # Joined tables repeat the ticket's (created_at, id); the list walks the index of the
    # most selective one newest first (a word's orders, else the unit's holds, else the
    # tickets'). Each gets the date range and the cursor as a range on its own columns.
    keys = [(Ticket.created_at, Ticket.id)]
    for unit_id in sorted({u for u in (q.unit_id, own_unit(principal)) if u is not None}):
        holder = TicketAssignment.__table__.alias(f"holder_{unit_id}")
        stmt = stmt.join(holder, and_(holder.c.ticket_id == Ticket.id,
                                      holder.c.unit_id == unit_id,
                                      holder.c.active == true()))
        keys.append((holder.c.ticket_created_at, holder.c.ticket_id))
    if q.text:
        stmt, word_keys = _text_filter(stmt, q.text)
        keys += word_keys
    at, ident = keys[-1]
    stmt = stmt.order_by(at.desc(), ident.desc())
    if q.status:
        stmt = stmt.where(Ticket.status.in_([str(s) for s in q.status]))
    if q.ticket_type:
        stmt = stmt.where(Ticket.ticket_type == q.ticket_type)
    if q.topic:
        stmt = stmt.where(Ticket.topic.in_(topics or [q.topic]))
    if q.provisional is not None:
        stmt = stmt.where(Ticket.deadline_provisional == q.provisional)
    if q.channel:
        stmt = stmt.where(Ticket.channel == q.channel)
    if q.order_level:
        stmt = stmt.where(Ticket.order_level == q.order_level)
    if q.overdue is not None:
        late = or_(Ticket.overdue_since.is_not(None),
                   and_(Ticket.status.in_(OPEN_STATES), Ticket.reply_due_at < now))
        stmt = stmt.where(late if q.overdue else ~late)
    if q.due_soon:
        stmt = stmt.where(Ticket.status.in_(OPEN_STATES), Ticket.reply_due_at >= now,
                          Ticket.reply_due_at <= due_soon_until)
    cursor = decode_cursor(q.cursor) if q.cursor else None
    for at, ident in keys:
        if q.created_from:
            stmt = stmt.where(at >= q.created_from)
        if q.created_to:
            stmt = stmt.where(at < q.created_to)
        if cursor:
            stmt = stmt.where(tuple_(at, ident) < tuple_(*cursor))
    return stmt


def _text_filter(stmt: Select[tuple[Ticket]], text: str
                 ) -> tuple[Select[tuple[Ticket]], list[tuple[Any, Any]]]:
    """A ticket number, or every word of ``text`` among the order's search words.

    Words are jieba's (``similarity.query_words`` / ``search_words``), indexed at
    registration in ``ticket_words`` under the key (word, created_at, id): the search walks
    one word's orders newest first and checks the other words by key lookups, so it stops
    after one page whatever the size of the archive. Drafts are found by number only
    (their text may still change).
    """
    text = text.strip()
    if TICKET_NUMBER.fullmatch(text):
        return stmt.where(Ticket.number == text), []
    words = sorted(query_words(text))
    if not words:
        raise InvalidInput("no searchable word in the text (common words such as 小区 or 反映 "
                           "are not indexed)", field="text")
    # The longest word is usually the rarest: its orders, newest first, drive the search
    # (joined on the ticket id alone, so the planner sees how many rows it really gives).
    lead, *others = sorted(words, key=lambda w: (-len(w), w))[:MAX_QUERY_WORDS]
    driver = TicketWord.__table__.alias("word_lead")
    stmt = stmt.join(driver, and_(driver.c.term == lead, driver.c.ticket_id == Ticket.id))
    for word in others:
        # A key lookup per candidate, on purpose: as a (semi-)join the planner misjudges
        # the two-column match, hashes every order of both words and sorts them all.
        lookup = select(TicketWord.ticket_id).where(
            TicketWord.term == word, TicketWord.ticket_created_at == driver.c.ticket_created_at,
            TicketWord.ticket_id == driver.c.ticket_id).limit(1).scalar_subquery()
        stmt = stmt.where(lookup.is_not(None))
    return stmt, [(driver.c.ticket_created_at, driver.c.ticket_id)]


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
