"""Supervision over HTTP: reminders (list, mark read, live on a websocket) and hotspot flags.

Units read their own unit's reminders, supervisors their role's; flags are the office's.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from callcenter.auth.http import current_principal
from callcenter.auth.principal import Role
from callcenter.supervision.models import FlagStatus, SupervisionFlag
from callcenter.supervision.notifications import (
    list_notifications,
    mark_read,
    notification_json,
    topics_of,
)
from callcenter.tickets.similarity import key_terms
from callcenter.web.errors import forbidden, not_found
from callcenter.web.keys import BUS, CLOCK, SESSIONMAKER
from callcenter.web.request import API_PREFIX, path_int, read_json, require_role

# --- reminders ---------------------------------------------------------------------------

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
    is active: nothing published after it is missed. The socket is closed (1008) at the
    first push after its token expired or its user lost the unit or role it follows.
    """
    principal = require_role(request, *READERS)
    topics = topics_of(principal)
    if not topics:
        raise forbidden("a unit handler without a unit has no notifications")
    ws = web.WebSocketResponse(heartbeat=30)
    await ws.prepare(request)
    async with request.app[BUS].subscribe(*topics) as subscription:
        async with request.app[SESSIONMAKER]() as session:
            _, unread = await list_notifications(session, principal, unread_only=True, limit=1)
        await ws.send_json({"type": "ready", "unread": unread})

        async def forward() -> None:
            async for _topic, event in subscription:
                # The socket outlives its token: re-check it, and the user's unit, each time.
                now = await current_principal(request)
                if now is None or topics_of(now) != topics:
                    await ws.close(code=WSCloseCode.POLICY_VIOLATION,
                                   message=b"token expired or access changed")
                    return
                await ws.send_json({"type": "notifications",
                                    "notifications": event["notifications"]})

        pump = asyncio.create_task(forward())
        try:
            async for message in ws:  # until the client closes; client messages are ignored
                if message.type == WSMsgType.ERROR:
                    break
        finally:
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)
    return ws


# --- hotspot flags -----------------------------------------------------------------------

def flag_json(flag: SupervisionFlag) -> dict[str, Any]:
    return {"id": flag.id, "kind": flag.kind, "status": flag.status, "summary": flag.summary,
            "key_terms": key_terms(flag.terms or {}, 6), "places": flag.places,
            "ticket_ids": flag.ticket_ids,
            "unit_id": flag.unit_id, "count": flag.count, "window_days": flag.window_days,
            "raised_at": flag.raised_at.isoformat(), "updated_at": flag.updated_at.isoformat()}


class FlagPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: FlagStatus


async def list_flags(request: web.Request) -> web.Response:
    require_role(request, Role.SUPERVISOR, Role.ADMIN)
    query = select(SupervisionFlag).order_by(SupervisionFlag.id.desc())
    for name in ("status", "kind"):
        if name in request.query:
            query = query.where(getattr(SupervisionFlag, name) == request.query[name])
    async with request.app[SESSIONMAKER]() as session:
        flags = (await session.scalars(query.limit(500))).all()
    return web.json_response({"flags": [flag_json(f) for f in flags]})


async def patch_flag(request: web.Request) -> web.Response:
    principal = require_role(request, Role.SUPERVISOR)
    body = await read_json(request, FlagPatch)
    async with request.app[SESSIONMAKER]() as session, session.begin():
        flag = await session.get(SupervisionFlag, path_int(request, "flag_id"))
        if flag is None:
            raise not_found("flag not found")
        flag.status, flag.status_by = str(body.status), principal.user_id
        flag.updated_at = request.app[CLOCK].now()
        result = flag_json(flag)
    return web.json_response(result)


def setup_web(app: web.Application) -> None:
    app.router.add_get(f"{API_PREFIX}/notifications", get_notifications)
    app.router.add_post(f"{API_PREFIX}/notifications/read", post_read)
    app.router.add_get(f"{API_PREFIX}/notifications/ws", notifications_ws)
    app.router.add_get(f"{API_PREFIX}/supervision/flags", list_flags)
    app.router.add_patch(f"{API_PREFIX}/supervision/flags/{{flag_id}}", patch_flag)
