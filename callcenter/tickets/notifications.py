"""The notification outbox: durable reminders, pushed live once stored.

A reminder is first inserted in ``notifications`` (a second insert of the same
``dedupe_key`` is silently skipped), then, after the commit, published on the bus topic of
its recipient (``notification.unit.<id>`` or ``notification.role.<role>``) and marked
delivered. Rows left undelivered by a crash are pushed by the next ``push_pending``.
Handlers follow the topic through ``GET /api/v1/notifications/ws`` and list or mark their
notifications read through ``GET /api/v1/notifications`` and ``POST .../read``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
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


def notification_json(n: Notification) -> dict[str, Any]:
    return {"id": n.id, "kind": n.kind, "ticket_id": n.ticket_id, "flag_id": n.flag_id,
            "recipient_unit_id": n.recipient_unit_id, "recipient_role": n.recipient_role,
            "day": n.day.isoformat(), "text": n.text, "created_at": n.created_at.isoformat(),
            "delivered_at": n.delivered_at.isoformat() if n.delivered_at else None,
            "read_at": n.read_at.isoformat() if n.read_at else None}


async def store_notifications(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> int:
    """Insert ``rows`` (Notification column values), skipping known dedupe keys.

    Returns how many were new. One multi-row statement per batch: the daily scan may
    write tens of thousands of reminders.
    """
    if not rows:
        return 0
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = (insert(Notification).on_conflict_do_nothing(index_elements=["dedupe_key"])
            .returning(Notification.id))
    inserted = 0
    for start in range(0, len(rows), PUSH_BATCH):
        result = await session.scalars(stmt, list(rows[start:start + PUSH_BATCH]))
        inserted += len(result.all())
    return inserted


async def push_pending(sessionmaker: async_sessionmaker[AsyncSession], bus: Bus,
                       clock: Clock) -> int:
    """Publish every stored, undelivered notification once; returns how many."""
    pushed = 0
    while True:
        async with sessionmaker() as session, session.begin():
            batch = (await session.scalars(
                select(Notification).where(Notification.delivered_at.is_(None))
                .order_by(Notification.id).limit(PUSH_BATCH))).all()
            if not batch:
                return pushed
            for n in batch:
                await bus.publish(topic_for(n.recipient_unit_id, n.recipient_role),
                                  notification_json(n))
            await session.execute(update(Notification)
                                  .where(Notification.id.in_([n.id for n in batch]))
                                  .values(delivered_at=clock.now()))
            pushed += len(batch)
        log.info("notifications_pushed count=%d", len(batch))


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
