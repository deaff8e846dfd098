"""The notification outbox: durable reminders, pushed live once stored.

A reminder is first inserted in ``notifications`` (a second insert of the same
``dedupe_key`` is silently skipped), then, after the commit, published on the bus topic of
its recipient (``notification.unit.<id>`` or ``notification.role.<role>``) and marked
delivered. Rows left undelivered by a crash or a bus failure are pushed by the next
``push_pending`` (a live push may then repeat; the stored row never does).
Handlers follow the topic through ``GET /api/v1/notifications/ws`` and list or mark their
notifications read through ``GET /api/v1/notifications`` and ``POST .../read``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from aiohttp import WSMsgType, web
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import and_, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from callcenter.auth.http import API_PREFIX, read_json, require_role
from callcenter.auth.principal import Principal, Role
from callcenter.bus import Bus
from callcenter.clock import Clock
from callcenter.tickets.supervision_models import Notification
from callcenter.web.keys import BUS, CLOCK, SESSIONMAKER

log = logging.getLogger(__name__)

PUSH_BATCH = 2000
PUSH_CONCURRENCY = 32


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
        return [topic_for(principal.unit_id, None)]
    return [topic_for(None, str(principal.role))]


def addressed_to(principal: Principal) -> ColumnElement[bool]:
    if principal.role is Role.UNIT_HANDLER:
        return Notification.recipient_unit_id == principal.unit_id
    return and_(Notification.recipient_unit_id.is_(None),
                Notification.recipient_role == str(principal.role))


def notification_json(n: Notification | Mapping[str, Any]) -> dict[str, Any]:
    """JSON of a notification, from an ORM object or a row mapping."""
    get = n.get if isinstance(n, Mapping) else lambda key: getattr(n, key)
    out = {key: get(key) for key in ("id", "kind", "ticket_id", "flag_id",
                                     "recipient_unit_id", "recipient_role", "text")}
    for key in ("day", "created_at", "delivered_at", "read_at"):
        value = get(key)
        out[key] = value.isoformat() if value is not None else None
    return out


async def store_notifications(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> int:
    """Insert ``rows`` (Notification column values) whose dedupe key is new; returns how many.

    The keys already stored for the rows' days are read first, so a repeated scan costs one
    indexed query; the insert still skips conflicts, for a concurrent writer.
    """
    if not rows:
        return 0
    days = sorted({row["day"] for row in rows})
    existing = set((await session.scalars(
        select(Notification.dedupe_key).where(Notification.day.in_(days)))).all())
    new: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row["dedupe_key"] not in existing:
            new.setdefault(row["dedupe_key"], row)
    if not new:
        return 0
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(Notification.__table__).on_conflict_do_nothing(index_elements=["dedupe_key"])
    await session.execute(stmt, list(new.values()))
    return len(new)


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
            await session.execute(update(table)
                                  .where(table.c.id.in_([n["id"] for n in batch]))
                                  .values(delivered_at=clock.now()))
            pushed += len(batch)
        log.info("notifications_pushed count=%d", len(batch))


async def _publish(bus: Bus, batch: Sequence[Mapping[str, Any]]) -> None:
    """A few publishes in flight at once: with Redis each one is a network round trip."""
    for start in range(0, len(batch), PUSH_CONCURRENCY):
        await asyncio.gather(*(
            bus.publish(topic_for(n["recipient_unit_id"], n["recipient_role"]),
                        notification_json(n))
            for n in batch[start:start + PUSH_CONCURRENCY]))


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


# --- HTTP ------------------------------------------------------------------------------

READERS = (Role.UNIT_HANDLER, Role.SUPERVISOR, Role.ADMIN, Role.AGENT)


class ReadIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: list[int] | None = Field(default=None, max_length=1000)  # None: all of mine


async def get_notifications(request: web.Request) -> web.Response:
    principal = require_role(request, *READERS)
    unread_only = request.query.get("unread", "").lower() in ("1", "true", "yes")
    try:
        limit = max(1, min(int(request.query.get("limit", "50")), 500))
    except ValueError:
        limit = 50
    async with request.app[SESSIONMAKER]() as session:
        rows, unread = await list_notifications(session, principal, unread_only=unread_only,
                                                limit=limit)
    return web.json_response({"notifications": [notification_json(n) for n in rows],
                              "unread": unread})


async def post_read(request: web.Request) -> web.Response:
    principal = require_role(request, *READERS)
    body = await read_json(request, ReadIn)
    async with request.app[SESSIONMAKER]() as session, session.begin():
        count = await mark_read(session, principal, ids=body.ids, now=request.app[CLOCK].now())
    return web.json_response({"marked": count})


async def notifications_ws(request: web.Request) -> web.WebSocketResponse:
    """Live notifications of the caller's unit (handlers) or role (supervisors).

    The first message, ``{"type": "ready", "unread": n}``, is sent once the subscription
    is active: nothing published after it is missed.
    """
    principal = require_role(request, *READERS)
    ws = web.WebSocketResponse(heartbeat=30)
    await ws.prepare(request)
    async with request.app[BUS].subscribe(*topics_of(principal)) as subscription:
        async with request.app[SESSIONMAKER]() as session:
            _, unread = await list_notifications(session, principal, unread_only=True, limit=1)
        await ws.send_json({"type": "ready", "unread": unread})

        async def forward() -> None:
            async for _topic, event in subscription:
                await ws.send_json({"type": "notification", "notification": event})

        pump = asyncio.create_task(forward())
        try:
            async for message in ws:  # until the client closes; client messages are ignored
                if message.type == WSMsgType.ERROR:
                    break
        finally:
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)
    return ws


def setup_web(app: web.Application) -> None:
    app.router.add_get(f"{API_PREFIX}/notifications", get_notifications)
    app.router.add_post(f"{API_PREFIX}/notifications/read", post_read)
    app.router.add_get(f"{API_PREFIX}/notifications/ws", notifications_ws)


__all__ = ["dedupe_key", "store_notifications", "push_pending", "list_notifications",
           "mark_read", "setup_web", "topic_for"]
