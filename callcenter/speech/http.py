"""Transcripts and drafts over HTTP: an order's or a call's transcripts with their
suggestions, the agent's verdict on a suggestion, transcription on demand, and the
accuracy of each field measured from those verdicts.

Roles come from ``speech.view_roles``; an order's transcripts are visible to whoever may
see the order. Phone and ID numbers in the words are masked as in the order's free text
for whoever may not read the caller's phone, and every read is written to the audit log
(a transcript is the caller's own voice, like the recording).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.auth.principal import Principal, Role
from callcenter.auth.privacy import record_access
from callcenter.pii import mask_numbers
from callcenter.recordings.models import Recording, RecordingAttachment
from callcenter.speech.config import SpeechConfig
from callcenter.speech.drafting import masked_segment
from callcenter.speech.errors import NothingToTranscribe, SuggestionNotFound
from callcenter.speech.models import DraftSuggestion, SpeechTranscript
from callcenter.speech.service import SpeechService
from callcenter.tickets.http import TICKETS, reads_numbers
from callcenter.tickets.models import Ticket, TicketCall
from callcenter.web.errors import bad_request, error_response, forbidden
from callcenter.web.keys import BUS, CLOCK, SESSIONMAKER, SETTINGS
from callcenter.web.request import API_PREFIX, client_ip, path_int
from callcenter.web.routing import Api

API = Api()
ALL = tuple(Role)
SERVICE: web.AppKey[SpeechService] = web.AppKey("speech_service", SpeechService)
TICKET = f"{API_PREFIX}/tickets/{{ticket_id}}"
SUGGESTION = f"{API_PREFIX}/speech/suggestions/{{suggestion_id}}"


class SuggestionOut(BaseModel):
    id: int
    transcript_id: int
    ticket_id: int | None
    field: str
    value: str
    confidence: float
    start: float
    end: float
    evidence: str
    needs_confirmation: bool
    state: str
    corrected_value: str | None
    decided_by: int | None
    decided_at: datetime | None
    value_masked: bool
    """``value`` hides digits from this reader: accepting it must not copy it anywhere."""

    @classmethod
    def of(cls, s: DraftSuggestion, masked: bool) -> SuggestionOut:
        hide = mask_numbers if masked else (lambda text: text)
        return cls(id=s.id, transcript_id=s.transcript_id, ticket_id=s.ticket_id,
                   field=s.field, value=hide(s.value), value_masked=hide(s.value) != s.value,
                   confidence=s.confidence,
                   start=s.span_start, end=s.span_end, evidence=hide(s.evidence),
                   needs_confirmation=s.needs_confirmation, state=s.state,
                   corrected_value=hide(s.corrected_value) if s.corrected_value else None,
                   decided_by=s.decided_by, decided_at=s.decided_at)


class TranscriptOut(BaseModel):
    id: int
    recording_id: int | None
    ticket_id: int | None
    linkedid: str | None
    purpose: str
    status: str
    error: str | None
    attempts: int
    language: str
    model: str | None
    audio_seconds: float | None
    decode_seconds: float | None
    queued_at: datetime
    finished_at: datetime | None
    segments: list[dict[str, Any]]
    suggestions: list[SuggestionOut]

    @classmethod
    def of(cls, t: SpeechTranscript, suggestions: list[DraftSuggestion], masked: bool
           ) -> TranscriptOut:
        segments = list((t.content or {}).get("segments", ()))
        if masked:
            segments = [masked_segment(s) for s in segments]
        return cls(id=t.id, recording_id=t.recording_id, ticket_id=t.ticket_id,
                   linkedid=t.linkedid, purpose=t.purpose, status=t.status, error=t.error,
                   attempts=t.attempts, language=t.language, model=t.model,
                   audio_seconds=t.audio_seconds, decode_seconds=t.decode_seconds,
                   queued_at=t.queued_at, finished_at=t.finished_at, segments=segments,
                   suggestions=[SuggestionOut.of(s, masked) for s in suggestions])


class TranscriptList(BaseModel):
    transcripts: list[TranscriptOut]


class CorrectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: str = Field(min_length=1, max_length=2000)


class FieldAccuracy(BaseModel):
    field: str
    suggested: int
    confirmed: int
    corrected: int
    accuracy: float | None
    """confirmed / (confirmed + corrected): None until an agent decided one."""


class AccuracyOut(BaseModel):
    fields: list[FieldAccuracy]


def _config(request: web.Request) -> SpeechConfig:
    return request.app[SERVICE].config


def _check_role(request: web.Request, principal: Principal) -> None:
    if principal.role not in _config(request).view_roles:
        raise forbidden(f"role {principal.role} may not read transcripts")


async def _suggestions(session: AsyncSession, ids: list[int]) -> dict[int, list[DraftSuggestion]]:
    found: dict[int, list[DraftSuggestion]] = {i: [] for i in ids}
    if ids:
        for s in (await session.scalars(select(DraftSuggestion).where(
                DraftSuggestion.transcript_id.in_(ids)).order_by(DraftSuggestion.id))).all():
            found[s.transcript_id].append(s)
    return found


async def _listed(session: AsyncSession, rows: list[SpeechTranscript], masked: bool
                  ) -> TranscriptList:
    by_transcript = await _suggestions(session, [t.id for t in rows])
    return TranscriptList(transcripts=[TranscriptOut.of(t, by_transcript[t.id], masked)
                                       for t in rows])


async def _ticket_transcripts(session: AsyncSession, ticket_id: int) -> list[SpeechTranscript]:
    linked = select(TicketCall.linkedid).where(TicketCall.ticket_id == ticket_id)
    return list((await session.scalars(select(SpeechTranscript).where(
        or_(SpeechTranscript.ticket_id == ticket_id, SpeechTranscript.linkedid.in_(linked)))
        .order_by(SpeechTranscript.id))).all())


async def _visible_ticket(request: web.Request, session: AsyncSession, principal: Principal,
                          ticket_id: int) -> tuple[Ticket, bool]:
    """The order if ``principal`` may see it, and whether numbers must be masked."""
    loaded = await request.app[TICKETS].get(session, principal, ticket_id)
    ticket = loaded.ticket
    unit_id = loaded.assignment.unit_id if loaded.assignment else ticket.lead_unit_id
    return ticket, not reads_numbers(request, principal, ticket, unit_id)


async def _audit(request: web.Request, session: AsyncSession, principal: Principal,
                 action: str, object_type: str, object_id: int | str) -> None:
    await record_access(session, principal, action=action, object_type=object_type,
                        object_id=object_id, fields=["transcript"], ip=client_ip(request),
                        clock=request.app[CLOCK])


@API.route("GET", TICKET + "/transcripts", summary="An order's transcripts and draft "
           "suggestions (numbers masked as in its free text; audited)", roles=ALL,
           response=TranscriptList)
async def get_ticket_transcripts(request: web.Request, principal: Principal, _: None
                                 ) -> TranscriptList:
    _check_role(request, principal)
    async with request.app[SESSIONMAKER]() as session, session.begin():
        ticket, masked = await _visible_ticket(request, session, principal,
                                               path_int(request, "ticket_id"))
        await _audit(request, session, principal, "speech.transcript.view", "ticket",
                     ticket.id)
        return await _listed(session, await _ticket_transcripts(session, ticket.id), masked)


@API.route("GET", f"{API_PREFIX}/calls/{{linkedid}}/transcripts", summary="A call's "
           "transcripts and draft suggestions (by its Linkedid; audited)", roles=ALL,
           response=TranscriptList)
async def get_call_transcripts(request: web.Request, principal: Principal, _: None
                               ) -> TranscriptList:
    _check_role(request, principal)
    linkedid = request.match_info["linkedid"]
    if not 0 < len(linkedid) <= 150 or not linkedid.isprintable():
        raise error_response(404, "not_found", "no such call")
    async with request.app[SESSIONMAKER]() as session, session.begin():
        await _audit(request, session, principal, "speech.transcript.view", "call", linkedid)
        rows = list((await session.scalars(select(SpeechTranscript).where(
            SpeechTranscript.linkedid == linkedid).order_by(SpeechTranscript.id))).all())
        masked = not reads_numbers(request, principal, None, None)
        return await _listed(session, rows, masked)


async def _decide(request: web.Request, principal: Principal, corrected: str | None
                  ) -> SuggestionOut:
    """Confirm (``corrected`` None) or correct a suggestion of an order one may see."""
    _check_role(request, principal)
    suggestion_id = path_int(request, "suggestion_id")
    async with request.app[SESSIONMAKER](expire_on_commit=False) as session, session.begin():
        row = await session.get(DraftSuggestion, suggestion_id, with_for_update=True)
        if row is None:
            raise SuggestionNotFound(f"no suggestion {suggestion_id}")
        masked = False
        if row.ticket_id is not None:
            _, masked = await _visible_ticket(request, session, principal, row.ticket_id)
        row.state = "confirmed" if corrected is None else "corrected"
        row.corrected_value = corrected
        row.decided_by, row.decided_at = principal.user_id, request.app[CLOCK].now()
    return SuggestionOut.of(row, masked)


@API.route("POST", SUGGESTION + "/confirm", summary="The agent confirms a suggested field",
           roles=ALL, response=SuggestionOut)
async def post_confirm(request: web.Request, principal: Principal, _: None
                       ) -> SuggestionOut:
    return await _decide(request, principal, None)


@API.route("POST", SUGGESTION + "/correct", summary="The agent corrects a suggested field "
           "(the right value is kept: accuracy is measured from these)", roles=ALL,
           body=CorrectionIn, response=SuggestionOut)
async def post_correct(request: web.Request, principal: Principal, body: CorrectionIn
                       ) -> SuggestionOut:
    value = body.value.strip()
    if not value:
        raise bad_request("must not be blank", "value")
    return await _decide(request, principal, value)


@API.route("POST", TICKET + "/transcribe", summary="Transcribe an order's recordings now "
           "(again, after a failure or a new model)", roles=ALL,
           response=TranscriptList, status=202)
async def post_transcribe(request: web.Request, principal: Principal, _: None
                          ) -> TranscriptList:
    _check_role(request, principal)
    service = request.app[SERVICE]
    async with request.app[SESSIONMAKER](expire_on_commit=False) as session:
        ticket, masked = await _visible_ticket(request, session, principal,
                                               path_int(request, "ticket_id"))
        recordings = list((await session.scalars(
            select(Recording).join(RecordingAttachment,
                                   RecordingAttachment.recording_id == Recording.id)
            .where(RecordingAttachment.ticket_id == ticket.id,
                   Recording.status == "stored").order_by(Recording.id))).all())
        own = list((await session.scalars(select(SpeechTranscript).where(
            SpeechTranscript.ticket_id == ticket.id, SpeechTranscript.recording_id.is_(None))
        )).all())
    if not recordings and not own:
        raise NothingToTranscribe(f"ticket {ticket.id} has no stored recording")
    for recording in recordings:
        await service.request_recording(recording, again=True)
    for row in own:
        await service.request(row.audio_ref, again=True)
    async with request.app[SESSIONMAKER]() as session, session.begin():
        await _audit(request, session, principal, "speech.transcribe", "ticket", ticket.id)
        return await _listed(session, await _ticket_transcripts(session, ticket.id), masked)


@API.route("GET", f"{API_PREFIX}/speech/accuracy", summary="Each suggested field's accuracy "
           "from the agents' confirmations and corrections",
           roles=(Role.SUPERVISOR, Role.ADMIN), response=AccuracyOut)
async def get_accuracy(request: web.Request, principal: Principal, _: None) -> AccuracyOut:
    async with request.app[SESSIONMAKER]() as session:
        counts = (await session.execute(
            select(DraftSuggestion.field, DraftSuggestion.state, func.count())
            .group_by(DraftSuggestion.field, DraftSuggestion.state))).all()
    table: dict[str, dict[str, int]] = {}
    for field, state, count in counts:
        table.setdefault(field, {})[state] = count
    return AccuracyOut(fields=[_accuracy(field, table[field]) for field in sorted(table)])


def _accuracy(field: str, states: dict[str, int]) -> FieldAccuracy:
    confirmed, corrected = states.get("confirmed", 0), states.get("corrected", 0)
    decided = confirmed + corrected
    return FieldAccuracy(field=field, suggested=states.get("suggested", 0),
                         confirmed=confirmed, corrected=corrected,
                         accuracy=round(confirmed / decided, 4) if decided else None)


def setup_web(app: web.Application, service: SpeechService | None = None) -> None:
    """Register the routes (after tickets' ``setup_web``: visibility is the order's)."""
    if service is None:
        settings = app[SETTINGS]
        service = SpeechService(app[SESSIONMAKER], app[CLOCK], settings.speech,
                                settings.recordings, app.get(BUS))
    app[SERVICE] = service
    API.install(app)
