"""Recordings over HTTP: click-to-call from an order, its contact records, the order's
recordings, and playback with range requests (audited, by role and unit)."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from callcenter.auth.principal import Principal, Role
from callcenter.recordings.access import check_listener
from callcenter.recordings.config import RecordingsConfig
from callcenter.recordings.contact import ContactCalls
from callcenter.recordings.errors import NoOneToCall, TelephonyUnavailable
from callcenter.recordings.models import ContactAttempt, Recording, RecordingAttachment
from callcenter.recordings.store import LocalStore, StoreError
from callcenter.tickets.http import TICKETS
from callcenter.tickets.lifecycle import OPEN_AT_UNIT
from callcenter.tickets.models import TicketStatus
from callcenter.web.errors import error_response
from callcenter.web.keys import BUS, CLOCK, SESSIONMAKER, SETTINGS, TELEPHONY
from callcenter.web.request import API_PREFIX, client_ip, path_int, require_role
from callcenter.web.routing import Api

log = logging.getLogger(__name__)

API = Api()
ALL = tuple(Role)
CONFIG: web.AppKey[RecordingsConfig] = web.AppKey("recordings_config", RecordingsConfig)
CONTACTS: web.AppKey[ContactCalls] = web.AppKey("recordings_contacts", ContactCalls)
TASKS: web.AppKey[set] = web.AppKey("recordings_tasks", set)
TICKET = f"{API_PREFIX}/tickets/{{ticket_id}}"


class ContactCallIn(BaseModel):
    """The handler's own phone extension; the citizen's number never leaves the server."""

    model_config = ConfigDict(extra="forbid")
    extension: str = Field(pattern=r"^[0-9]{2,8}$")


class ContactCallOut(BaseModel):
    id: int
    ticket_id: int
    unit_id: int | None
    outcome: str
    handler_outcome: str | None
    talk_seconds: float
    requested_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None

    @classmethod
    def of(cls, a: ContactAttempt) -> ContactCallOut:
        return cls(id=a.id, ticket_id=a.ticket_id, unit_id=a.unit_id, outcome=a.outcome,
                   handler_outcome=a.handler_outcome, talk_seconds=a.talk_seconds,
                   requested_at=a.requested_at, answered_at=a.answered_at,
                   ended_at=a.ended_at)


class ContactCallList(BaseModel):
    contact_calls: list[ContactCallOut]


class RecordingOut(BaseModel):
    id: int
    status: str
    purpose: str | None = None
    sha256: str | None
    size_bytes: int | None
    duration_seconds: float | None
    channels: int | None
    ended_at: datetime
    stored_at: datetime | None
    checked_at: datetime | None
    audio_url: str

    @classmethod
    def of(cls, r: Recording, purpose: str | None = None) -> RecordingOut:
        return cls(id=r.id, status=r.status, purpose=purpose, sha256=r.sha256,
                   size_bytes=r.size_bytes, duration_seconds=r.duration_seconds,
                   channels=r.channels, ended_at=r.ended_at, stored_at=r.stored_at,
                   checked_at=r.checked_at, audio_url=f"{API_PREFIX}/recordings/{r.id}/audio")


class RecordingList(BaseModel):
    recordings: list[RecordingOut]


@API.route("POST", TICKET + "/contact-calls", summary="Call the citizen of an order "
           "(the handler's phone rings first; the number is never shown)",
           roles=(Role.UNIT_HANDLER,), body=ContactCallIn, response=ContactCallOut,
           status=202)
async def post_contact_call(request: web.Request, principal: Principal, body: ContactCallIn
                            ) -> ContactCallOut:
    contacts = request.app[CONTACTS]
    telephony = request.app.get(TELEPHONY)
    async with request.app[SESSIONMAKER](expire_on_commit=False) as session, session.begin():
        loaded = await request.app[TICKETS].get(session, principal,
                                                path_int(request, "ticket_id"))
        if loaded.assignment is None or TicketStatus(loaded.ticket.status) not in OPEN_AT_UNIT:
            raise NoOneToCall(f"the order is {loaded.ticket.status}, not open at your unit")
        if telephony is None or not telephony.connected:
            raise TelephonyUnavailable("the phone system is not reachable from this process")
        attempt, number = await contacts.open(session, principal, loaded.ticket,
                                              loaded.assignment)
    args = contacts.originate_args(body.extension, number, attempt.linkedid)
    _spawn(request.app, _originate(telephony, contacts, attempt.linkedid, args))
    return ContactCallOut.of(attempt)


async def _originate(telephony: Any, contacts: ContactCalls, linkedid: str,
                     args: dict[str, Any]) -> None:
    try:
        result = await telephony.commands.originate(**args)
        await contacts.handler_leg(linkedid, result.outcome)
    except Exception as exc:  # noqa: BLE001 - any failure ends the attempt as failed
        log.warning("recordings.originate_failed linkedid=%s error=%s", linkedid,
                    type(exc).__name__)
        await contacts.handler_leg(linkedid, "failed", error=type(exc).__name__)


def _spawn(app: web.Application, coro: Any) -> None:
    task = asyncio.get_running_loop().create_task(coro)
    app[TASKS].add(task)
    task.add_done_callback(app[TASKS].discard)


@API.route("GET", TICKET + "/contact-calls", summary="The contact records of an order",
           roles=ALL, response=ContactCallList)
async def get_contact_calls(request: web.Request, principal: Principal, _: None
                            ) -> ContactCallList:
    async with request.app[SESSIONMAKER]() as session:
        loaded = await request.app[TICKETS].get(session, principal,
                                                path_int(request, "ticket_id"))
        rows = (await session.scalars(select(ContactAttempt).where(
            ContactAttempt.ticket_id == loaded.ticket.id).order_by(ContactAttempt.id))).all()
    return ContactCallList(contact_calls=[ContactCallOut.of(a) for a in rows])


@API.route("GET", TICKET + "/recordings", summary="The recordings attached to an order",
           roles=ALL, response=RecordingList)
async def get_ticket_recordings(request: web.Request, principal: Principal, _: None
                                ) -> RecordingList:
    async with request.app[SESSIONMAKER]() as session:
        loaded = await request.app[TICKETS].get(session, principal,
                                                path_int(request, "ticket_id"))
        rows = (await session.execute(
            select(Recording, RecordingAttachment.purpose)
            .join(RecordingAttachment, RecordingAttachment.recording_id == Recording.id)
            .where(RecordingAttachment.ticket_id == loaded.ticket.id)
            .order_by(Recording.id))).all()
    return RecordingList(recordings=[RecordingOut.of(r, p) for r, p in rows])


@API.route("GET", f"{API_PREFIX}/recordings/{{recording_id}}",
           summary="One recording's facts (SHA-256, duration, status)", roles=ALL,
           response=RecordingOut)
async def get_recording(request: web.Request, principal: Principal, _: None) -> RecordingOut:
    recording = await _allowed(request, principal, "recording.view")
    return RecordingOut.of(recording)


async def get_audio(request: web.Request) -> web.StreamResponse:
    """Play (HTTP range requests) or, with ``?download=1``, download a recording's WAV.

    Roles in ``recordings.listen_roles``; a unit handler only for its own orders (another
    unit's recording answers 404). Every access, granted or refused, is audited.
    """
    principal = require_role(request)
    download = request.query.get("download") in ("1", "true")
    recording = await _allowed(request, principal,
                               "recording.download" if download else "recording.play")
    if recording.status != "stored" or recording.store_key is None:
        raise error_response(409, "not_available",
                             f"the recording is {recording.status}, not available")
    store = LocalStore(request.app[CONFIG].store_dir)
    try:
        path = store.path(recording.store_key)
    except StoreError:
        raise error_response(409, "not_available", "the recording is not available") from None
    if not path.is_file():
        raise error_response(409, "not_available", "the recording file is missing")
    response = web.FileResponse(path, headers={"Content-Type": "audio/wav",
                                               "Cache-Control": "private, no-store"})
    if download:
        response.headers["Content-Disposition"] = \
            f'attachment; filename="recording-{recording.id}.wav"'
    return response


async def _allowed(request: web.Request, principal: Principal, action: str) -> Recording:
    """The recording if the principal may listen; the audit row is committed either way."""
    recording_id = path_int(request, "recording_id")
    async with request.app[SESSIONMAKER](expire_on_commit=False) as session:
        try:
            return await check_listener(session, principal, recording_id,
                                        request.app[CONFIG].listen_roles, action=action,
                                        ip=client_ip(request), clock=request.app[CLOCK])
        finally:
            await session.commit()


async def _cancel_tasks(app: web.Application) -> None:
    tasks = set(app[TASKS])
    if tasks:
        await asyncio.wait(tasks, timeout=10)


def setup_web(app: web.Application, config: RecordingsConfig | None = None,
              pbx: str | None = None) -> None:
    """Register the routes (after tickets' ``setup_web``: click-to-call uses its service)."""
    settings = app.get(SETTINGS)
    if config is None:
        config = getattr(settings, "recordings", None) or RecordingsConfig()
    if pbx is None:
        ami = getattr(settings, "ami", None)
        pbx = getattr(ami, "pbx", "default")
    app[CONFIG] = config
    app[CONTACTS] = ContactCalls(app[SESSIONMAKER], app[CLOCK], config.click_to_call, pbx,
                                 app.get(BUS))
    app[TASKS] = set()
    app.on_cleanup.append(_cancel_tasks)
    API.install(app)
    app.router.add_get(f"{API_PREFIX}/recordings/{{recording_id}}/audio", get_audio)


