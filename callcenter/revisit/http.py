"""Revisit campaigns over HTTP: the office's supervisors create, change, pause and resume
campaigns and watch their progress; agents schedule a revisit on demand and record a
citizen's opt-out; the do-not-call list. Numbers on the list are shown to the office only.

The text-message survey: staff (or an inbound-SMS integration with its own account) record
the citizen's reply, and see which texts are pending, failed or answered. The webhook
sender lives here too, as this is the feature's one module that speaks HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, Literal

import aiohttp
from aiohttp import web
from prometheus_client import Gauge
from pydantic import BaseModel, ConfigDict, Field

from callcenter.auth.principal import Principal, Role
from callcenter.revisit.config import CampaignSettings, MessageConfig, RevisitConfig
from callcenter.revisit.messages import OutboundText, SendFailed
from callcenter.revisit.models import DoNotCall, Revisit, RevisitCampaign, RevisitMessage
from callcenter.revisit.service import RevisitService
from callcenter.tickets.http import TICKETS
from callcenter.web.health import METRICS
from callcenter.web.keys import CLOCK, SESSIONMAKER, SETTINGS
from callcenter.web.request import API_PREFIX, path_int
from callcenter.web.routing import Api

log = logging.getLogger(__name__)
API = Api()
REVISITS: web.AppKey[RevisitService] = web.AppKey("revisits", RevisitService)
OFFICE = (Role.SUPERVISOR, Role.ADMIN)
STAFF = (Role.AGENT, Role.SUPERVISOR, Role.ADMIN)
BASE = f"{API_PREFIX}/revisit"


class CampaignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    settings: CampaignSettings = Field(default_factory=CampaignSettings)


class ProgressOut(BaseModel):
    pending: int
    dialing: int
    reached: int
    satisfied: int
    unsatisfied: int
    unreachable: int
    declined: int


class CampaignOut(BaseModel):
    id: int
    name: str
    paused: bool
    settings: dict[str, Any]
    updated_at: datetime
    progress: ProgressOut | None = None

    @classmethod
    def of(cls, row: RevisitCampaign, progress: Any = None) -> CampaignOut:
        return cls(id=row.id, name=row.name, paused=bool(row.paused), settings=row.settings,
                   updated_at=row.updated_at,
                   progress=ProgressOut(**vars(progress)) if progress is not None else None)


class CampaignList(BaseModel):
    campaigns: list[CampaignOut]


class ScheduleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    campaign_id: int | None = None


class RevisitOut(BaseModel):
    id: int
    ticket_id: int
    campaign_id: int
    state: str
    due_at: datetime
    attempts: int

    @classmethod
    def of(cls, row: Revisit) -> RevisitOut:
        return cls(id=row.id, ticket_id=row.ticket_id, campaign_id=row.campaign_id,
                   state=row.state, due_at=row.due_at, attempts=row.attempts)


class DoNotCallIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone: str = Field(min_length=3, max_length=32)
    note: str | None = Field(default=None, max_length=500)


class DoNotCallOut(BaseModel):
    id: int
    phone: str
    note: str | None
    at: datetime

    @classmethod
    def of(cls, row: DoNotCall) -> DoNotCallOut:
        return cls(id=row.id, phone=row.phone, note=row.note, at=row.at)


class DoNotCallList(BaseModel):
    entries: list[DoNotCallOut]


class Done(BaseModel):
    ok: bool = True


class ReplyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reply: str = Field(min_length=1, max_length=16, description="the citizen's text, e.g. "
                       "\"1\"; full-width digits and spaces are accepted")


class MessageOut(BaseModel):
    """A text survey without the number it went to."""

    id: int
    revisit_id: int
    ticket_id: int
    scale: str
    body: str
    state: str
    tries: int
    last_error: str | None
    sent_at: datetime | None
    reply: str | None
    replied_at: datetime | None
    recorded_at: datetime | None

    @classmethod
    def of(cls, row: RevisitMessage) -> MessageOut:
        return cls(id=row.id, revisit_id=row.revisit_id, ticket_id=row.ticket_id,
                   scale=row.scale, body=row.body, state=row.state, tries=row.tries,
                   last_error=row.last_error, sent_at=row.sent_at, reply=row.reply,
                   replied_at=row.replied_at, recorded_at=row.recorded_at)


class MessageList(BaseModel):
    messages: list[MessageOut]


class MessagesQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ticket_id: int | None = Field(default=None, ge=1)
    state: Literal["queued", "sending", "sent", "failed"] | None = None
    limit: int = Field(default=100, ge=1, le=500)


@API.route("GET", f"{BASE}/campaigns", summary="Campaigns with their live progress",
           roles=OFFICE, response=CampaignList)
async def list_campaigns(request: web.Request, principal: Principal, _: None) -> CampaignList:
    service = request.app[REVISITS]
    await service.default_campaign()
    rows = await service.campaigns()
    return CampaignList(campaigns=[CampaignOut.of(r, await service.progress(r.id))
                                   for r in rows])


@API.route("POST", f"{BASE}/campaigns", summary="Create a campaign", roles=OFFICE,
           body=CampaignIn, response=CampaignOut, status=201)
async def create_campaign(request: web.Request, principal: Principal, body: CampaignIn
                          ) -> CampaignOut:
    return CampaignOut.of(await request.app[REVISITS].save_campaign(body.name, body.settings))


@API.route("PUT", f"{BASE}/campaigns/{{campaign_id}}", summary="Change a campaign's settings",
           roles=OFFICE, body=CampaignIn, response=CampaignOut)
async def update_campaign(request: web.Request, principal: Principal, body: CampaignIn
                          ) -> CampaignOut:
    row = await request.app[REVISITS].save_campaign(body.name, body.settings,
                                                    path_int(request, "campaign_id"))
    return CampaignOut.of(row)


@API.route("POST", f"{BASE}/campaigns/{{campaign_id}}/pause", summary="Pause a campaign "
           "(calls under way finish; no new call starts)", roles=OFFICE, response=CampaignOut)
async def pause_campaign(request: web.Request, principal: Principal, _: Any) -> CampaignOut:
    return CampaignOut.of(await request.app[REVISITS].set_paused(
        path_int(request, "campaign_id"), True))


@API.route("POST", f"{BASE}/campaigns/{{campaign_id}}/resume", summary="Resume a campaign",
           roles=OFFICE, response=CampaignOut)
async def resume_campaign(request: web.Request, principal: Principal, _: Any) -> CampaignOut:
    return CampaignOut.of(await request.app[REVISITS].set_paused(
        path_int(request, "campaign_id"), False))


@API.route("GET", f"{BASE}/campaigns/{{campaign_id}}/progress", summary="A campaign's progress",
           roles=OFFICE, response=ProgressOut)
async def campaign_progress(request: web.Request, principal: Principal, _: None
                            ) -> ProgressOut:
    progress = await request.app[REVISITS].progress(path_int(request, "campaign_id"))
    return ProgressOut(**vars(progress))


@API.route("POST", f"{BASE}/tickets/{{ticket_id}}", summary="Schedule a revisit of the order now",
           roles=STAFF, body=ScheduleIn, response=RevisitOut, status=201)
async def schedule(request: web.Request, principal: Principal, body: ScheduleIn) -> RevisitOut:
    row = await request.app[REVISITS].schedule(path_int(request, "ticket_id"), body.campaign_id)
    return RevisitOut.of(row)


@API.route("POST", f"{BASE}/tickets/{{ticket_id}}/opt-out",
           summary="The citizen does not want to be revisited about this order", roles=STAFF,
           response=Done)
async def opt_out(request: web.Request, principal: Principal, _: Any) -> Done:
    await request.app[REVISITS].opt_out(path_int(request, "ticket_id"), principal.user_id)
    return Done()


@API.route("GET", f"{BASE}/do-not-call", summary="The do-not-call list", roles=OFFICE,
           response=DoNotCallList)
async def list_do_not_call(request: web.Request, principal: Principal, _: None
                           ) -> DoNotCallList:
    rows = await request.app[REVISITS].do_not_call()
    return DoNotCallList(entries=[DoNotCallOut.of(r) for r in rows])


@API.route("POST", f"{BASE}/do-not-call", summary="Never call this number for a revisit",
           roles=STAFF, body=DoNotCallIn, response=DoNotCallOut, status=201)
async def add_do_not_call(request: web.Request, principal: Principal, body: DoNotCallIn
                          ) -> DoNotCallOut:
    row = await request.app[REVISITS].add_do_not_call(body.phone, body.note, principal.user_id)
    return DoNotCallOut.of(row)


@API.route("DELETE", f"{BASE}/do-not-call/{{entry_id}}", summary="Remove a do-not-call entry",
           roles=OFFICE, response=Done)
async def remove_do_not_call(request: web.Request, principal: Principal, _: None) -> Done:
    await request.app[REVISITS].remove_do_not_call(path_int(request, "entry_id"))
    return Done()


@API.route("GET", f"{BASE}/messages", summary="Text-message surveys, newest first "
           "(pending, failed with their error, answered)", roles=STAFF, query=MessagesQuery,
           response=MessageList)
async def list_messages(request: web.Request, principal: Principal, query: MessagesQuery
                        ) -> MessageList:
    rows = await request.app[REVISITS].messages(query.ticket_id, query.state, query.limit)
    return MessageList(messages=[MessageOut.of(r) for r in rows])


@API.route("POST", f"{BASE}/messages/{{message_id}}/reply", summary="Record the citizen's "
           "reply to a text survey: it becomes the order's revisit result", roles=STAFF,
           body=ReplyIn, response=MessageOut)
async def record_reply(request: web.Request, principal: Principal, body: ReplyIn
                       ) -> MessageOut:
    row = await request.app[REVISITS].record_text_reply(path_int(request, "message_id"),
                                                        body.reply)
    return MessageOut.of(row)


class WebhookSender:
    """POSTs each message as JSON to ``webhook_url``; anything but a 2xx answer within the
    timeout is a failure, tried again by the postman. ``Idempotency-Key`` lets the
    gateway drop a message sent again after a crash."""

    def __init__(self, config: MessageConfig) -> None:
        assert config.webhook_url
        self.url = config.webhook_url
        self.timeout = aiohttp.ClientTimeout(total=config.webhook_timeout_seconds)
        self._session: aiohttp.ClientSession | None = None

    async def send(self, message: OutboundText) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        headers = {"Idempotency-Key": f"revisit-message-{message.message_id}"}
        try:
            async with self._session.post(self.url, json=message.payload(),
                                          headers=headers) as response:
                if response.status // 100 != 2:  # its body may echo the number: not kept
                    raise SendFailed(f"webhook answered {response.status} {response.reason}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SendFailed(f"webhook: {type(exc).__name__}: {exc}") from exc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def setup_web(app: web.Application) -> None:
    """After tickets' ``setup_web``: scheduling checks orders through its service."""
    settings = app.get(SETTINGS)
    config: RevisitConfig = getattr(settings, "revisit", None) or RevisitConfig()
    app[REVISITS] = RevisitService(app[SESSIONMAKER], app[CLOCK], config, app[TICKETS])
    API.install(app)
    metrics = app.get(METRICS)
    if metrics is not None:
        gauge = Gauge("callcenter_revisit_campaign",
                      "Revisits of each campaign by progress state (pending, dialing, "
                      "reached, satisfied, unsatisfied, unreachable, declined)",
                      ["campaign", "state"], registry=metrics.registry)
        app.cleanup_ctx.append(_progress_gauges(gauge, config.poll_seconds * 5))


def _progress_gauges(gauge: Gauge, every: float) -> Any:
    async def context(app: web.Application) -> AsyncIterator[None]:
        """Refresh the campaign gauges while the app runs (no personal data in them)."""
        async def refresh() -> None:
            service = app[REVISITS]
            while True:
                try:
                    for campaign in await service.campaigns():
                        progress = await service.progress(campaign.id)
                        for state, value in vars(progress).items():
                            gauge.labels(campaign=campaign.name, state=state).set(value)
                except Exception:  # noqa: BLE001 - metrics never stop the app
                    log.exception("revisit.metrics_failed")
                await asyncio.sleep(every)

        task = asyncio.create_task(refresh())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return context
