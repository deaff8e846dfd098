"""From a stored transcript to draft suggestions: run the draft extractor, keep what it
suggests (each with its confidence and span, ``suggested`` until the agent decides), and
for an after-hours message fill the IVR's draft order so it reaches the office complete.

The extractor (``draft.py``) is loaded once per process from the rules file and the
tickets' taxonomy. A draft that cannot be made never undoes the transcript: it is logged,
and the transcript stays readable on the order.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import delete, select

from callcenter.auth.models import User
from callcenter.auth.users import principal_for
from callcenter.ivr.service import IVR_USER
from callcenter.speech.models import DraftSuggestion, SpeechTranscript
from callcenter.speech.service import DRAFT_READY, SpeechService
from callcenter.speech.transcript import Transcript
from callcenter.tickets.models import Ticket, TicketStatus, TicketType
from callcenter.tickets.schemas import CallerIn, DraftPatch

log = logging.getLogger(__name__)

AFTER_HOURS = "after_hours_message"


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

