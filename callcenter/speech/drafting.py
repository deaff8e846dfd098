"""From a stored transcript to draft suggestions: run the draft extractor, keep what it
suggests (each with its confidence and span, ``suggested`` until the agent decides), and
for an after-hours message fill the IVR's draft order so it reaches the office complete.

The extractor (``draft.py``) is loaded once per process from the rules file and the
tickets' taxonomy. A draft that cannot be made never undoes the transcript: it is logged,
and the transcript stays readable on the order.

A call's transcript and draft are then handed to the desk of each agent who talked on the
call (``DeskDrafts``): rendered for that agent as ``GET /api/v1/calls/{linkedid}/transcripts``
shows it (numbers masked unless the role may read the caller's phone; segments without
their words), audited like that read, and published on ``speech.desk.<agent_id>`` for the
live feed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import delete, select

from callcenter.auth.models import User
from callcenter.auth.principal import Principal
from callcenter.auth.privacy import PiiPolicy, record_access
from callcenter.auth.users import principal_for
from callcenter.ivr.service import IVR_USER
from callcenter.pii import mask_numbers
from callcenter.queues.models import Agent, AgentStatePeriod
from callcenter.speech.models import DraftSuggestion, SpeechTranscript
from callcenter.speech.service import DRAFT_READY, SpeechService
from callcenter.speech.transcript import Transcript
from callcenter.tickets.models import Ticket, TicketStatus, TicketType
from callcenter.tickets.schemas import CallerIn, DraftPatch

log = logging.getLogger(__name__)

AFTER_HOURS = "after_hours_message"
DESK_TOPIC = "speech.desk.{agent_id}"
"""A call's transcript and draft, rendered for one agent who talked on the call."""
TALKING = "on_call"
"""The agent state of a talked queue call (``queues/agent_state.py``): its periods say who
answered which call, long after the screen-pop moved on to the next one."""


@dataclass
class Drafting:
    """Suggestions for stored transcripts; ``tickets`` (a ``TicketService``) fills drafts."""

    service: SpeechService
    tickets: Any
    _extractor: Any = None

    def extractor(self) -> Any:
        if self._extractor is None:
            from callcenter.speech.draft import DraftExtractor

            self._extractor = DraftExtractor.load(self.service.config.draft_rules_path,
                                                  self.tickets.taxonomy)
        return self._extractor

    async def suggest(self, transcript_id: int) -> list[DraftSuggestion]:
        """Extract, store and announce the draft of a done transcript; [] when it cannot
        be made (the reason is logged)."""
        row = await self.service.get(transcript_id)
        if row is None or row.status != "done" or row.content is None:
            return []
        try:
            transcript = Transcript.from_json(row.content)
            draft = self.extractor().extract(transcript)
        except Exception:  # noqa: BLE001 - the transcript stands without a draft
            log.exception("speech.draft_failed transcript=%s", transcript_id)
            return []
        stored = await self._store(row, draft)
        if row.purpose == AFTER_HOURS and row.ticket_id is not None:
            await self._fill_message(row, draft, transcript)
        await self.service.announce(DRAFT_READY, await self.service.event(
            row.id, suggestions=[{"id": s.id, "field": s.field, "confidence": s.confidence,
                                  "needs_confirmation": s.needs_confirmation}
                                 for s in stored]))
        return stored

    async def _store(self, row: SpeechTranscript, draft: Any) -> list[DraftSuggestion]:
        """Replace the undecided suggestions of the transcript (a re-run adds no copies;
        what an agent confirmed or corrected stays)."""
        now = self.service.clock.now()
        async with self.service.sessionmaker(expire_on_commit=False) as session, \
                session.begin():
            await session.execute(delete(DraftSuggestion).where(
                DraftSuggestion.transcript_id == row.id, DraftSuggestion.state == "suggested"))
            tickets = await self.service.ticket_ids(session, row)
            decided = set((await session.scalars(select(DraftSuggestion.field).where(
                DraftSuggestion.transcript_id == row.id))).all())
            rows = [DraftSuggestion(
                transcript_id=row.id, ticket_id=tickets[0] if tickets else None,
                field=s.field[:32], value=s.value, confidence=float(s.confidence),
                span_start=float(s.start), span_end=float(s.end), evidence=s.evidence,
                needs_confirmation=bool(s.needs_confirmation), state="suggested",
                created_at=now) for s in draft.suggestions if s.field not in decided]
            session.add_all(rows)
        log.info("speech.draft transcript=%s suggestions=%d", row.id, len(rows))
        return rows

    async def _fill_message(self, row: SpeechTranscript, draft: Any,
                            transcript: Transcript) -> None:
        """Write the draft's best values into the IVR's draft order, as the IVR, while it
        is still a draft (an agent who already took it over is never overwritten)."""
        async with self.service.sessionmaker() as session:
            ticket = await session.get(Ticket, row.ticket_id)
            user = await session.scalar(select(User).where(User.username == IVR_USER))
        if ticket is None or ticket.status != TicketStatus.DRAFT or user is None:
            return
        patch = message_patch(ticket, draft, transcript, self.tickets.taxonomy)
        if patch is None:
            return
        try:
            await self.tickets.update_draft(principal_for(user), ticket.id, patch)
        except Exception:  # noqa: BLE001 - the suggestions stay for the office to apply
            log.exception("speech.message_fill_failed ticket=%s", ticket.id)
            return
        log.info("speech.message_filled ticket=%s fields=%s", ticket.id,
                 sorted(patch.model_dump(exclude_unset=True)))


def message_patch(ticket: Ticket, draft: Any, transcript: Transcript, taxonomy: Any
                  ) -> DraftPatch | None:
    """The draft fields of an after-hours order from its message: title and content from
    the words, type and topic, the caller's phone and address where the IVR had none."""
    said = "".join(s.text.replace(" ", "") for s in transcript.segments
                   if s.speaker != "agent")
    values: dict[str, Any] = {}
    summary = _best(draft, "summary")
    if summary or said:
        values["title"] = (summary or said)[:60]
        values["content"] = "\n".join(p for p in (summary, f"留言转写：{said}" if said else "")
                                      if p)
    kind = _best(draft, "type")
    if kind in {t.value for t in TicketType}:
        values["ticket_type"] = kind
    topic = _best(draft, "topic")
    if topic and taxonomy.topic_code(topic) is not None:
        values["topic"] = topic
    address = _best(draft, "address")
    if address:
        values["location"] = address[:300]
    caller = _caller(ticket, _best(draft, "phone"), address)
    if caller is not None:
        values["caller"] = caller
    return _valid_patch(values)


def _best(draft: Any, field: str) -> str | None:
    found = draft.best(field)
    return found.value if found is not None and found.value else None


def _caller(ticket: Ticket, phone: str | None, address: str | None) -> CallerIn | None:
    if (phone is None or ticket.caller_phone) and (address is None or ticket.caller_address):
        return None
    try:
        return CallerIn(name=ticket.caller_name, phone=ticket.caller_phone or phone,
                        address=ticket.caller_address or address)
    except ValidationError:
        return CallerIn(name=ticket.caller_name, phone=ticket.caller_phone,
                        address=ticket.caller_address or address)


def _valid_patch(values: dict[str, Any]) -> DraftPatch | None:
    """The patch without the values the ticket schema refuses (each dropped, logged)."""
    while values:
        try:
            return DraftPatch(**values)
        except ValidationError as exc:
            bad = {str(e["loc"][0]) for e in exc.errors() if e["loc"]}
            if not bad & set(values):
                return None
            log.warning("speech.message_field_refused fields=%s", sorted(bad))
            for name in bad:
                values.pop(name, None)
    return None



# -- the agent's desk ----------------------------------------------------------------------

@dataclass
class DeskDrafts:
    """Hands a call's transcript and draft to the agents who talked on the call."""

    service: SpeechService
    policy: PiiPolicy

    async def hand_over(self, transcript_id: int) -> list[int]:
        """Publish the transcript, rendered and audited, for each agent of its call; the
        agents it went to (none for a message, a revisit comment or a call no agent took)."""
        async with self.service.sessionmaker() as session, session.begin():
            row = await session.get(SpeechTranscript, transcript_id)
            if row is None or row.purpose != "call" or not row.linkedid:
                return []
            agents = await self._agents(session, row.linkedid)
            if not agents:
                return []
            suggestions = list((await session.scalars(select(DraftSuggestion).where(
                DraftSuggestion.transcript_id == row.id).order_by(DraftSuggestion.id))).all())
            tickets = await self.service.ticket_ids(session, row)
            payloads = {}
            for agent_id, principal in agents:
                await record_access(session, principal, action="speech.transcript.view",
                                    object_type="call", object_id=row.linkedid,
                                    fields=["transcript"], ip=None, clock=self.service.clock)
                payloads[agent_id] = {
                    "linkedid": row.linkedid, "ticket_id": tickets[0] if tickets else None,
                    "ticket_ids": tickets,
                    "transcript": _without_words(transcript_json(
                        row, suggestions, not self.reads_numbers(principal)))}
        for agent_id, payload in payloads.items():
            await self.service.announce(DESK_TOPIC.format(agent_id=agent_id), payload)
        log.info("speech.desk transcript=%s agents=%s", transcript_id, sorted(payloads))
        return sorted(payloads)

    def reads_numbers(self, principal: Principal) -> bool:
        """As the API decides for a call: the right to see the caller's phone."""
        return "phone" in self.policy.allowed_fields(principal, need="view")

    @staticmethod
    async def _agents(session: Any, linkedid: str) -> list[tuple[int, Principal]]:
        """Each agent who talked on the call (a transfer: both), first answerer first."""
        rows = (await session.execute(
            select(AgentStatePeriod.agent_id, User)
            .join(Agent, Agent.id == AgentStatePeriod.agent_id)
            .join(User, User.id == Agent.user_id)
            .where(AgentStatePeriod.linkedid == linkedid, AgentStatePeriod.state == TALKING)
            .order_by(AgentStatePeriod.started_at, AgentStatePeriod.id))).all()
        found: dict[int, Principal] = {}
        for agent_id, user in rows:
            found.setdefault(agent_id, principal_for(user))
        return list(found.items())


def transcript_json(row: SpeechTranscript, suggestions: list[DraftSuggestion], masked: bool
                    ) -> dict[str, Any]:
    """A transcript with its suggestions, shaped as the API's ``TranscriptOut``."""
    segments = list((row.content or {}).get("segments", ()))
    if masked:
        segments = [masked_segment(s) for s in segments]
    return {"id": row.id, "recording_id": row.recording_id, "ticket_id": row.ticket_id,
            "linkedid": row.linkedid, "purpose": row.purpose, "status": row.status,
            "error": row.error, "attempts": row.attempts, "language": row.language,
            "model": row.model, "audio_seconds": row.audio_seconds,
            "decode_seconds": row.decode_seconds, "queued_at": _iso(row.queued_at),
            "finished_at": _iso(row.finished_at), "segments": segments,
            "suggestions": [suggestion_json(s, masked) for s in suggestions]}


def _without_words(transcript: dict[str, Any]) -> dict[str, Any]:
    """The live message keeps each segment's speaker, times and text: the words' times are
    for the API (a call's words would make every buffered message large)."""
    return {**transcript, "segments": [{k: v for k, v in s.items() if k != "words"}
                                       for s in transcript["segments"]]}


def suggestion_json(s: DraftSuggestion, masked: bool) -> dict[str, Any]:
    """A suggestion shaped as the API's ``SuggestionOut`` (numbers masked if ``masked``)."""
    hide = mask_numbers if masked else (lambda text: text)
    return {"id": s.id, "transcript_id": s.transcript_id, "ticket_id": s.ticket_id,
            "field": s.field, "value": hide(s.value), "confidence": s.confidence,
            "start": s.span_start, "end": s.span_end, "evidence": hide(s.evidence),
            "needs_confirmation": s.needs_confirmation, "state": s.state,
            "corrected_value": hide(s.corrected_value) if s.corrected_value else None,
            "decided_by": s.decided_by, "decided_at": _iso(s.decided_at),
            "value_masked": hide(s.value) != s.value}


def masked_segment(segment: dict[str, Any]) -> dict[str, Any]:
    """A segment with numbers masked in its text and its words (digits are single words
    in the small model's output, so the joined text decides what a word hides)."""
    text = mask_numbers(segment.get("text", ""))
    words = [dict(w, text=mask_numbers(w["text"])) for w in segment.get("words", ())]
    if text != segment.get("text", ""):
        words = [dict(w, text="*") if w["text"].isdigit() or _numeral(w["text"]) else w
                 for w in words]
    alternatives = [mask_numbers(a) for a in segment.get("alternatives", ())]
    return dict(segment, text=text, words=words, alternatives=alternatives)


def _numeral(text: str) -> bool:
    return bool(text) and all(c in "零〇一二三四五六七八九幺两玲" for c in text)


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()
