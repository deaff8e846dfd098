"""Supervision over HTTP: reminders (list, mark read, live on a websocket) and hotspot flags.

Units read their own unit's reminders, supervisors their role's; flags are the office's.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime

from aiohttp import WSCloseCode, WSMsgType, web
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from callcenter.auth.http import current_principal
from callcenter.auth.principal import Principal, Role
from callcenter.supervision.models import FlagKind, FlagStatus, SupervisionFlag
from callcenter.supervision.notifications import (
    list_notifications,
    mark_read,
    notification_json,
    topics_of,
)
from callcenter.tickets.similarity import key_terms
from callcenter.web.errors import forbidden, not_found
from callcenter.web.keys import BUS, CLOCK, SESSIONMAKER
from callcenter.web.request import API_PREFIX, path_int, require_role
from callcenter.web.routing import Api

API = Api()

# --- reminders ---------------------------------------------------------------------------

READERS = (Role.UNIT_HANDLER, Role.SUPERVISOR, Role.ADMIN, Role.AGENT)


class NotificationsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    unread: bool = False
    limit: int = Field(default=50, description="1 to 500")


class NotificationOut(BaseModel):
    id: int
    kind: str
    ticket_id: int | None
    flag_id: int | None
    recipient_unit_id: int | None
    recipient_role: str | None
    text: str
    day: date
    created_at: datetime
    delivered_at: datetime | None
    read_at: datetime | None


class NotificationList(BaseModel):
    notifications: list[NotificationOut]
    unread: int


class ReadIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: list[int] | None = Field(default=None, max_length=1000)  # None: all of mine


class ReadOut(BaseModel):
    marked: int


@API.route("GET", f"{API_PREFIX}/notifications", summary="My reminders, newest first",
           roles=READERS, query=NotificationsQuery, response=NotificationList)
async def get_notifications(request: web.Request, principal: Principal,
                            query: NotificationsQuery) -> NotificationList:
    limit = max(1, min(query.limit, 500))
    async with request.app[SESSIONMAKER]() as session:
        rows, unread = await list_notifications(session, principal, unread_only=query.unread,
                                                limit=limit)
    return NotificationList(notifications=[NotificationOut.model_validate(notification_json(n))
                                           for n in rows], unread=unread)


@API.route("POST", f"{API_PREFIX}/notifications/read",
           summary="Mark reminders read (all of mine without ids)", roles=READERS,
           body=ReadIn, response=ReadOut)
async def post_read(request: web.Request, principal: Principal, body: ReadIn) -> ReadOut:
    async with request.app[SESSIONMAKER]() as session, session.begin():
        count = await mark_read(session, principal, ids=body.ids, now=request.app[CLOCK].now())
    return ReadOut(marked=count)


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

class FlagPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: FlagStatus


class FlagsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: FlagStatus | None = None
    kind: FlagKind | None = None


class FlagOut(BaseModel):
    id: int
    kind: str
    status: str
    summary: str
    key_terms: list[str]
    places: list[str]
    ticket_ids: list[int]
    unit_id: int | None
    count: int
    window_days: int
    raised_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, flag: SupervisionFlag) -> FlagOut:
        return cls(id=flag.id, kind=flag.kind, status=flag.status, summary=flag.summary,
                   key_terms=key_terms(flag.terms or {}, 6), places=list(flag.places or []),
                   ticket_ids=list(flag.ticket_ids or []), unit_id=flag.unit_id,
                   count=flag.count, window_days=flag.window_days, raised_at=flag.raised_at,
                   updated_at=flag.updated_at)


class FlagList(BaseModel):
    flags: list[FlagOut]


@API.route("GET", f"{API_PREFIX}/supervision/flags", summary="Hotspot flags, newest first",
           roles=(Role.SUPERVISOR, Role.ADMIN), query=FlagsQuery, response=FlagList)
async def list_flags(request: web.Request, _: Principal, query: FlagsQuery) -> FlagList:
    statement = select(SupervisionFlag).order_by(SupervisionFlag.id.desc())
    if query.status is not None:
        statement = statement.where(SupervisionFlag.status == str(query.status))
    if query.kind is not None:
        statement = statement.where(SupervisionFlag.kind == str(query.kind))
    async with request.app[SESSIONMAKER]() as session:
        flags = (await session.scalars(statement.limit(500))).all()
    return FlagList(flags=[FlagOut.of(f) for f in flags])


@API.route("PATCH", f"{API_PREFIX}/supervision/flags/{{flag_id}}",
           summary="Acknowledge or close a flag", roles=(Role.SUPERVISOR,), body=FlagPatch,
           response=FlagOut)
async def patch_flag(request: web.Request, principal: Principal, body: FlagPatch) -> FlagOut:
    async with request.app[SESSIONMAKER]() as session, session.begin():
        flag = await session.get(SupervisionFlag, path_int(request, "flag_id"))
        if flag is None:
            raise not_found("flag not found")
        flag.status, flag.status_by = str(body.status), principal.user_id
        flag.updated_at = request.app[CLOCK].now()
        return FlagOut.of(flag)


def setup_web(app: web.Application) -> None:
    API.install(app)
    app.router.add_get(f"{API_PREFIX}/notifications/ws", notifications_ws)
