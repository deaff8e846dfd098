"""The notification outbox: durable reminders, pushed live once stored.

A reminder is first inserted in ``notifications`` (a second insert of the same
``dedupe_key`` is silently skipped), then, after the commit, published on the bus topic of
its recipient (``notification.unit.<id>`` or ``notification.role.<role>``; one event
``{"notifications": [...]}`` per recipient and push) and marked delivered. Rows left
undelivered by a crash or a bus failure are pushed by the next ``push_pending`` (a live push
may then repeat; the stored row never does). Handlers follow their topic through
``GET /api/v1/notifications/ws`` and list or mark their notifications read through
``GET /api/v1/notifications`` and ``POST /api/v1/notifications/read``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import ARRAY, Integer, and_, any_, cast, false, func, select, text, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from callcenter.auth.principal import Principal, Role
from callcenter.bus import Bus
from callcenter.clock import Clock
from callcenter.supervision.models import Notification

log = logging.getLogger(__name__)

PUSH_BATCH = 2000
PUSH_CONCURRENCY = 32
LOOKUP_BATCH = 5000


def dedupe_key(kind: str, subject: str | int, *, unit_id: int | None = None,
               role: str | None = None, day: date) -> str:
    """One reminder of ``kind`` about ``subject`` per recipient per day."""
    recipient = f"u{unit_id}" if unit_id is not None else f"r:{role}"
    return f"{kind}:{subject}:{recipient}:{day.isoformat()}"


def topic_for(unit_id: int | None, role: str | None) -> str:
    return f"notification.unit.{unit_id}" if unit_id is not None else f"notification.role.{role}"


def topics_of(principal: Principal) -> list[str]:
    """The live topics a principal follows: their unit's, or their role's."""
    if principal.role is Role.UNIT_HANDLER:
        return [topic_for(principal.unit_id, None)] if principal.unit_id is not None else []
    return [topic_for(None, str(principal.role))]


def addressed_to(principal: Principal) -> ColumnElement[bool]:
    """A handler reads its unit's notifications only (none without a unit: ``= NULL``
    would otherwise match every role-addressed row); others read their role's."""
    if principal.role is Role.UNIT_HANDLER:
        if principal.unit_id is None:
            return false()
        return Notification.recipient_unit_id == principal.unit_id
    return and_(Notification.recipient_unit_id.is_(None),
                Notification.recipient_role == str(principal.role))


_PLAIN = ("id", "kind", "ticket_id", "flag_id", "recipient_unit_id", "recipient_role", "text")
_TIMES = ("day", "created_at", "delivered_at", "read_at")


def notification_json(n: Notification | Mapping[str, Any]) -> dict[str, Any]:
    """JSON of a notification, from an ORM object or a row mapping."""
    row = n if isinstance(n, Mapping) else {k: getattr(n, k) for k in _PLAIN + _TIMES}
    out = {key: row[key] for key in _PLAIN}
    for key in _TIMES:
        value = row[key]
        out[key] = value.isoformat() if value is not None else None
    return out


async def store_notifications(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> int:
    """Insert ``rows`` (Notification column values) whose dedupe key is new; returns how many.

    A repeated scan therefore writes nothing, and neither does a concurrent one: the unique
    ``dedupe_key`` decides.
    """
    unique = list({row["dedupe_key"]: row for row in reversed(rows)}.values())
    if not unique:
        return 0
    if _is_postgresql(session):
        return await _insert_unnest(session, unique)
    keys = [row["dedupe_key"] for row in unique]
    existing: set[str] = set()
    for start in range(0, len(keys), LOOKUP_BATCH):
        existing.update((await session.scalars(select(Notification.dedupe_key).where(
            Notification.dedupe_key.in_(keys[start:start + LOOKUP_BATCH])))).all())
    new = [row for row in unique if row["dedupe_key"] not in existing]
    if new:
        stmt = sqlite.insert(Notification.__table__).on_conflict_do_nothing(
            index_elements=["dedupe_key"])
        await session.execute(stmt, new)
    return len(new)


def _is_postgresql(session: AsyncSession) -> bool:
    return session.bind is not None and session.bind.dialect.name == "postgresql"


_UNNEST_COLUMNS = {"dedupe_key": "VARCHAR", "recipient_unit_id": "INTEGER",
                   "recipient_role": "VARCHAR", "kind": "VARCHAR", "ticket_id": "INTEGER",
                   "flag_id": "INTEGER", "day": "DATE", "text": "TEXT",
                   "created_at": "TIMESTAMPTZ"}
_INSERT_UNNEST = text(
    f"INSERT INTO notifications ({', '.join(_UNNEST_COLUMNS)}) SELECT * FROM unnest("
    + ", ".join(f"CAST(:{c} AS {t}[])" for c, t in _UNNEST_COLUMNS.items())
    + ") ON CONFLICT (dedupe_key) DO NOTHING RETURNING id")


async def _insert_unnest(session: AsyncSession, rows: list[dict[str, Any]]) -> int:
    """PostgreSQL: one statement with one array per column, whatever the number of rows
    (a daily scan of a large city writes tens of thousands of reminders)."""
    result = await session.execute(
        _INSERT_UNNEST, {c: [row[c] for row in rows] for c in _UNNEST_COLUMNS})
    return len(result.all())


async def push_pending(sessionmaker: async_sessionmaker[AsyncSession], bus: Bus,
                       clock: Clock) -> int:
    """Publish every stored, undelivered notification once; returns how many."""
    table = Notification.__table__
    pushed = 0
    while True:
        async with sessionmaker() as session, session.begin():
            batch = (await session.execute(
                select(table).where(table.c.delivered_at.is_(None))
                .order_by(table.c.id).limit(PUSH_BATCH))).mappings().all()
            if not batch:
                return pushed
            await _publish(bus, batch)
            ids = [n["id"] for n in batch]
            in_batch = (table.c.id == any_(cast(ids, ARRAY(Integer))) if _is_postgresql(session)
                        else table.c.id.in_(ids))
            await session.execute(update(table).where(in_batch).values(delivered_at=clock.now()))
            pushed += len(batch)
        log.info("notifications_pushed count=%d", len(batch))


async def _publish(bus: Bus, batch: Sequence[Mapping[str, Any]]) -> None:
    """One event per recipient topic carrying its new notifications, a few in flight at
    once: a scan may write tens of thousands of reminders to a few hundred units, and with
    Redis every publish is a network round trip."""
    by_topic: dict[str, list[dict[str, Any]]] = {}
    for n in batch:
        topic = topic_for(n["recipient_unit_id"], n["recipient_role"])
        by_topic.setdefault(topic, []).append(notification_json(n))
    events = list(by_topic.items())
    for start in range(0, len(events), PUSH_CONCURRENCY):
        await asyncio.gather(*(bus.publish(topic, {"notifications": items})
                               for topic, items in events[start:start + PUSH_CONCURRENCY]))


async def list_notifications(session: AsyncSession, principal: Principal, *,
                             unread_only: bool, limit: int) -> tuple[list[Notification], int]:
    """Newest first, and the number still unread."""
    query = select(Notification).where(addressed_to(principal))
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    rows = (await session.scalars(query.order_by(Notification.id.desc()).limit(limit))).all()
    unread = await session.scalar(select(func.count()).select_from(Notification).where(
        addressed_to(principal), Notification.read_at.is_(None)))
    return list(rows), int(unread or 0)


async def mark_read(session: AsyncSession, principal: Principal, *, ids: list[int] | None,
                    now: datetime) -> int:
    """Mark the principal's notifications read (all when ``ids`` is None)."""
    stmt = update(Notification).where(addressed_to(principal), Notification.read_at.is_(None))
    if ids is not None:
        stmt = stmt.where(Notification.id.in_(ids))
    result = await session.execute(stmt.values(read_at=now, read_by=principal.user_id))
    return int(result.rowcount or 0)
