"""The IVR over HTTP: supervisors switch the holiday and emergency announcements on and off
while the service runs (the next call takes the new path), agents issue the PIN a caller
uses to hear a ticket's progress by phone."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from callcenter.auth.principal import Principal, Role
from callcenter.ivr.config import IvrConfig
from callcenter.ivr.models import IvrAnnouncement
from callcenter.ivr.service import IvrService
from callcenter.tickets.calendar import WorkingCalendar
from callcenter.tickets.models import Ticket
from callcenter.web.errors import not_found
from callcenter.web.keys import CLOCK, SESSIONMAKER, SETTINGS
from callcenter.web.request import API_PREFIX, path_int
from callcenter.web.routing import Api

API = Api()
IVR: web.AppKey[IvrService] = web.AppKey("ivr", IvrService)
OFFICE = (Role.SUPERVISOR, Role.ADMIN)
STAFF = (Role.AGENT, Role.SUPERVISOR, Role.ADMIN)


class AnnouncementIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    active: bool
    note: str | None = Field(default=None, max_length=500)


class AnnouncementOut(BaseModel):
    kind: Literal["holiday", "emergency"]
    active: bool
    note: str | None
    updated_at: datetime | None
    updated_by: int | None

    @classmethod
    def of(cls, row: IvrAnnouncement) -> AnnouncementOut:
        return cls(kind=row.kind, active=bool(row.active), note=row.note,
                   updated_at=row.updated_at, updated_by=row.updated_by)


class AnnouncementList(BaseModel):
    announcements: list[AnnouncementOut]


class PinOut(BaseModel):
    ticket_id: int
    pin: str = Field(description="tell it to the caller once; it is stored hashed")


@API.route("GET", f"{API_PREFIX}/ivr/announcements", summary="The IVR's announcement switches",
           roles=STAFF, response=AnnouncementList)
async def get_announcements(request: web.Request, principal: Principal, _: None
                            ) -> AnnouncementList:
    async with request.app[SESSIONMAKER]() as session:
        rows = await request.app[IVR].list_announcements(session)
    return AnnouncementList(announcements=[AnnouncementOut.of(r) for r in rows])


@API.route("PUT", f"{API_PREFIX}/ivr/announcements/{{kind}}",
           summary="Switch the holiday or emergency announcement on or off", roles=OFFICE,
           body=AnnouncementIn, response=AnnouncementOut)
async def put_announcement(request: web.Request, principal: Principal, body: AnnouncementIn
                           ) -> AnnouncementOut:
    """Takes effect for the next call, in every process, without a restart."""
    async with request.app[SESSIONMAKER]() as session, session.begin():
        row = await request.app[IVR].set_announcement(
            session, principal, request.match_info["kind"], body.active, body.note)
        return AnnouncementOut.of(row)


@API.route("POST", f"{API_PREFIX}/ivr/tickets/{{ticket_id}}/pin",
           summary="Issue the PIN a caller uses to hear the ticket's progress by phone",
           roles=STAFF, response=PinOut, status=201)
async def post_pin(request: web.Request, principal: Principal, _: None) -> PinOut:
    ticket_id = path_int(request, "ticket_id")
    async with request.app[SESSIONMAKER]() as session, session.begin():
        if await session.scalar(select(Ticket.id).where(Ticket.id == ticket_id)) is None:
            raise not_found("ticket not found")
        pin = await request.app[IVR].issue_pin(session, ticket_id)
    return PinOut(ticket_id=ticket_id, pin=pin)


def setup_web(app: web.Application) -> None:
    settings = app.get(SETTINGS)
    config: IvrConfig = getattr(settings, "ivr", None) or IvrConfig()
    tickets = getattr(settings, "tickets", None)
    calendar = WorkingCalendar(tickets.timezone, tickets.calendar_dir) if tickets else \
        WorkingCalendar()
    app[IVR] = IvrService(app[SESSIONMAKER], app[CLOCK], config, calendar)
    API.install(app)
