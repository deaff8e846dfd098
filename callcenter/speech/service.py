"""Transcription jobs and their rows: queue a recording once, claim it for one worker at a
time, store the outcome, count attempts, and say when something is ready or has failed.

The row is the truth, the bus job only a wake-up: a recording gets one row (unique by its
audio), a worker claims it with one conditional update (``queued``, or ``running`` with an
expired lease), and the outcome is written only by the claim that still holds it. A job
delivered twice, a worker that died, or a lost enqueue all end in exactly one stored
transcript; the sweep re-queues what a crash left behind.

A revisit's spoken comment (the citizen's words after the tone, in the monitor folder) is
queued by the sweep once its revisit is done, and its words are written on the order's
timeline next to the revisit's result.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.clock import Clock
from callcenter.ivr.service import TRANSCRIBE_QUEUE
from callcenter.recordings.config import RecordingsConfig
from callcenter.recordings.models import Recording
from callcenter.recordings.store import KEY, LocalStore
from callcenter.revisit.models import Revisit, RevisitAttempt, RevisitState
from callcenter.speech.config import SpeechConfig
from callcenter.speech.errors import NothingToTranscribe, TranscriptionError
from callcenter.speech.models import OPEN, SpeechTranscript
from callcenter.speech.recognizer import Decoded
from callcenter.tickets.models import TicketCall, TicketEvent

log = logging.getLogger(__name__)

QUEUE = TRANSCRIBE_QUEUE
"""The job queue (the IVR enqueues after-hours messages here too)."""
GROUP = "speech"
TRANSCRIPT_READY = "speech.transcript.ready"
TRANSCRIPT_FAILED = "speech.transcript.failed"
DRAFT_READY = "speech.draft.ready"
FAILED_PREFIX = "transcription failed: "
REVISIT_COMMENT = "revisit_comment"
"""The purpose of a revisit's spoken comment (its words go on the order's timeline)."""


@dataclass(frozen=True)
class Claim:
    """What a worker got for a job: the row to work on, or why there is nothing to do."""

    outcome: Literal["claimed", "settled", "busy"]
    row: SpeechTranscript | None = None


class SpeechService:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], clock: Clock,
                 config: SpeechConfig, recordings: RecordingsConfig, bus: Any = None) -> None:
        self.sessionmaker = sessionmaker
        self.clock = clock
        self.config = config
        self.recordings = recordings
        self.bus = bus

    # --- queueing ---------------------------------------------------------------------------

    async def request(self, audio_ref: str, *, recording_id: int | None = None,
                      ticket_id: int | None = None, linkedid: str | None = None,
                      purpose: str = "call", language: str | None = None,
                      again: bool = False, enqueue: bool = True) -> SpeechTranscript:
        """The audio's row, created ``queued`` with a job on the bus if it had none; with
        ``again`` a failed (or done) row is queued afresh with its attempts reset.
        ``enqueue=False``: the caller is already holding a job for it."""
        now = self.clock.now()
        try:
            async with self.sessionmaker(expire_on_commit=False) as session, session.begin():
                row = await self._row_for(session, audio_ref)
                if row is None:
                    row = SpeechTranscript(
                        audio_ref=audio_ref, recording_id=recording_id, ticket_id=ticket_id,
                        linkedid=linkedid, purpose=purpose,
                        language=language or self.config.language, status="queued",
                        attempts=0, queued_at=now)
                    session.add(row)
                elif again and row.status not in OPEN:
                    row.status, row.attempts, row.error, row.queued_at = "queued", 0, None, now
                    row.lease_until = None
                    if ticket_id is not None and row.ticket_id is None:
                        row.ticket_id = ticket_id
                else:
                    return row
        except IntegrityError:  # another process queued the same audio first
            return await self._existing(audio_ref)
        if enqueue:
            await self._enqueue(row.id)
        return row

    async def request_recording(self, recording: Recording, *, again: bool = False
                                ) -> SpeechTranscript:
        if recording.status != "stored" or recording.store_key is None:
            raise NothingToTranscribe(f"recording {recording.id} is {recording.status}, "
                                      "not stored")
        return await self.request(recording.store_key, recording_id=recording.id,
                                  linkedid=recording.linkedid, again=again)

    async def from_job(self, payload: dict[str, Any]) -> int | None:
        """The row a job names: ``transcript_id``, or the IVR's ``recording_ref`` (its row
        is created here). None for a payload naming nothing usable (logged)."""
        if isinstance(payload.get("transcript_id"), int):
            return payload["transcript_id"]
        ref = payload.get("recording_ref")
        if isinstance(ref, str) and ref:
            ticket_id = payload.get("ticket_id")
            row = await self.request(
                ref, ticket_id=ticket_id if isinstance(ticket_id, int) else None,
                linkedid=payload.get("linkedid"), purpose=str(payload.get("purpose") or "call"),
                language=payload.get("language"), enqueue=False)
            return row.id
        log.error("speech.bad_job payload_keys=%s", sorted(payload))
        return None

    async def _enqueue(self, transcript_id: int) -> None:
        if self.bus is None:
            return
        try:
            await self.bus.enqueue(QUEUE, {"transcript_id": transcript_id})
        except Exception as exc:  # noqa: BLE001 - the row is queued: the sweep sends it again
            log.warning("speech.enqueue_failed transcript=%s error=%r", transcript_id, exc)

    # --- claiming and settling -------------------------------------------------------------

    async def claim(self, transcript_id: int, worker: str) -> Claim:
        """Take the row for one attempt (counted) if it is queued or its holder's lease ran
        out; ``settled`` when there is nothing left to do, ``busy`` while another holds it."""
        now = self.clock.now()
        async with self.sessionmaker(expire_on_commit=False) as session, session.begin():
            claimed = await session.scalar(
                update(SpeechTranscript)
                .where(SpeechTranscript.id == transcript_id,
                       or_(SpeechTranscript.status == "queued",
                           (SpeechTranscript.status == "running")
                           & (SpeechTranscript.lease_until < now)))
                .values(status="running", attempts=SpeechTranscript.attempts + 1,
                        lease_until=now + self._lease, worker=worker[:200], started_at=now)
                .returning(SpeechTranscript.id))
            row = await session.get(SpeechTranscript, transcript_id, populate_existing=True)
        if row is None:
            return Claim("settled")
        if claimed is not None:
            return Claim("claimed", row)
        return Claim("busy" if row.status == "running" else "settled", row)

    @property
    def _lease(self) -> timedelta:
        return timedelta(seconds=self.config.lease_seconds)

    async def heartbeat(self, row: SpeechTranscript) -> bool:
        """Extend the claim's lease; False when the claim was lost (taken over)."""
        async with self.sessionmaker() as session, session.begin():
            held = await session.scalar(
                update(SpeechTranscript)
                .where(SpeechTranscript.id == row.id, SpeechTranscript.status == "running",
                       SpeechTranscript.attempts == row.attempts)
                .values(lease_until=self.clock.now() + self._lease)
                .returning(SpeechTranscript.id))
        return held is not None

    async def store(self, row: SpeechTranscript, decoded: Decoded) -> bool:
        """Write the transcript if this claim still holds the row (False: someone else
        finished or took it over; nothing is written twice)."""
        now = self.clock.now()
        async with self.sessionmaker() as session, session.begin():
            stored = await session.scalar(
                update(SpeechTranscript)
                .where(SpeechTranscript.id == row.id, SpeechTranscript.status == "running",
                       SpeechTranscript.attempts == row.attempts)
                .values(status="done", content=decoded.transcript, error=None,
                        model=str(decoded.transcript.get("model", ""))[:200],
                        audio_seconds=decoded.audio_seconds,
                        decode_seconds=round(decoded.decode_seconds, 3), finished_at=now,
                        lease_until=None)
                .returning(SpeechTranscript.id))
            if stored is not None:
                await self._timeline(session, row, {"status": "done", "transcript_id": row.id,
                                                    **_comment(row, decoded)})
        if stored is None:
            return False
        log.info("speech.transcribed transcript=%s audio_s=%.1f decode_s=%.1f attempts=%d",
                 row.id, decoded.audio_seconds, decoded.decode_seconds, row.attempts)
        await self.announce(TRANSCRIPT_READY, await self.event(row.id))
        return True

    async def fail(self, row: SpeechTranscript, reason: str, *, final: bool = False) -> bool:
        """Count a failed attempt: the row is queued again (True: send a job) until the last
        attempt, or at once when ``final`` (no model), then ``failed`` with the reason."""
        now = self.clock.now()
        last = final or row.attempts >= self.config.max_attempts
        async with self.sessionmaker() as session, session.begin():
            held = await session.get(SpeechTranscript, row.id, with_for_update=True)
            if held is None or held.status != "running" or held.attempts != row.attempts:
                return False
            held.lease_until = None
            if last:
                held.status, held.error, held.finished_at = "failed", FAILED_PREFIX + reason, now
                await self._timeline(session, held, {"status": "failed", "error": held.error,
                                                     "transcript_id": held.id})
            else:
                held.status, held.error = "queued", reason
        level = logging.ERROR if last else logging.WARNING
        log.log(level, "speech.attempt_failed transcript=%s attempts=%d final=%s reason=%s",
                row.id, row.attempts, last, reason)
        if last:
            await self.announce(TRANSCRIPT_FAILED, await self.event(row.id))
            return False
        await self._enqueue(row.id)
        return True

    # --- audio --------------------------------------------------------------------------------

    def audio_path(self, row: SpeechTranscript) -> Path:
        """The file of a store key (``recordings/...``) or of a monitor-folder name."""
        if KEY.match(row.audio_ref):
            return LocalStore(self.recordings.store_dir).path(row.audio_ref)
        name = Path(row.audio_ref).name
        if not name or name != row.audio_ref.rsplit("/", 1)[-1]:
            raise TranscriptionError(f"{row.audio_ref!r} names no audio file")
        return self.recordings.monitor_dir / name

    def model_dir(self, language: str) -> Path | None:
        return self.config.models.get(language)

    # --- links, events, sweep ---------------------------------------------------------------

    async def ticket_ids(self, session: AsyncSession, row: SpeechTranscript) -> list[int]:
        """The orders a transcript belongs to: its own and those linked to its call."""
        ids = {row.ticket_id} if row.ticket_id is not None else set()
        if row.linkedid:
            ids.update((await session.scalars(select(TicketCall.ticket_id).where(
                TicketCall.linkedid == row.linkedid))).all())
        return sorted(ids)

    async def _timeline(self, session: AsyncSession, row: SpeechTranscript,
                        data: dict[str, Any]) -> None:
        """The order's timeline says what became of its recording's transcription."""
        for ticket_id in await self.ticket_ids(session, row):
            session.add(TicketEvent(ticket_id=ticket_id, at=self.clock.now(), actor_id=None,
                                    actor_role=None, action="transcription", unit_id=None,
                                    data=data, attachments=[]))

    async def event(self, transcript_id: int, **extra: Any) -> dict[str, Any]:
        """A bus payload naming the transcript, its orders and call (no personal data)."""
        async with self.sessionmaker() as session:
            row = await session.get(SpeechTranscript, transcript_id)
            assert row is not None
            tickets = await self.ticket_ids(session, row)
        return {"transcript_id": row.id, "recording_id": row.recording_id,
                "ticket_id": tickets[0] if tickets else None, "ticket_ids": tickets,
                "linkedid": row.linkedid, "purpose": row.purpose, "status": row.status,
                "error": row.error, "language": row.language,
                "audio_seconds": row.audio_seconds, **extra}

    async def announce(self, topic: str, payload: dict[str, Any]) -> None:
        if self.bus is None:
            return
        try:
            await self.bus.publish(topic, payload)
        except Exception as exc:  # noqa: BLE001 - the row is durable; events are live only
            log.warning("speech.announce_failed topic=%s error=%r", topic, exc)

    async def sweep(self) -> int:
        """Queue stored recordings that have no transcript yet, and send again the jobs of
        rows a crash left queued or running past their lease. Returns how many."""
        now = self.clock.now()
        stale = now - self._lease * 3
        async with self.sessionmaker(expire_on_commit=False) as session:
            recordings = []
            if self.config.transcribe_calls:
                recordings = list((await session.scalars(
                    select(Recording)
                    .outerjoin(SpeechTranscript, SpeechTranscript.recording_id == Recording.id)
                    .where(Recording.status == "stored", SpeechTranscript.id.is_(None))
                    .order_by(Recording.id).limit(500))).all())
            lost = list((await session.scalars(select(SpeechTranscript.id).where(
                or_((SpeechTranscript.status == "queued") & (SpeechTranscript.queued_at < stale),
                    (SpeechTranscript.status == "running")
                    & (SpeechTranscript.lease_until < now)))
                .order_by(SpeechTranscript.id).limit(500))).all())
        for recording in recordings:
            await self.request_recording(recording)
        if lost:
            async with self.sessionmaker() as session, session.begin():
                await session.execute(update(SpeechTranscript).where(
                    SpeechTranscript.id.in_(lost), SpeechTranscript.status == "queued")
                    .values(queued_at=now))
            for transcript_id in lost:
                await self._enqueue(transcript_id)
        comments = await self._revisit_comments()
        if recordings or lost or comments:
            log.info("speech.sweep queued=%d resent=%d comments=%d", len(recordings),
                     len(lost), comments)
        return len(recordings) + len(lost) + comments

    async def _revisit_comments(self) -> int:
        """Queue the spoken comments of done revisits that have no transcript yet."""
        last_call = (select(RevisitAttempt.channel_id)
                     .where(RevisitAttempt.revisit_id == Revisit.id)
                     .order_by(RevisitAttempt.id.desc()).limit(1).scalar_subquery())
        async with self.sessionmaker() as session:
            rows = (await session.execute(
                select(Revisit.comment_file, Revisit.ticket_id, last_call)
                .outerjoin(SpeechTranscript, SpeechTranscript.audio_ref == Revisit.comment_file)
                .where(Revisit.state == RevisitState.DONE, Revisit.comment_file.is_not(None),
                       SpeechTranscript.id.is_(None))
                .order_by(Revisit.id).limit(500))).all()
        for comment_file, ticket_id, channel_id in rows:
            await self.request(comment_file, ticket_id=ticket_id, linkedid=channel_id,
                               purpose=REVISIT_COMMENT)
        return len(rows)

    async def _row_for(self, session: AsyncSession, audio_ref: str) -> SpeechTranscript | None:
        return await session.scalar(select(SpeechTranscript).where(
            SpeechTranscript.audio_ref == audio_ref).with_for_update())

    async def _existing(self, audio_ref: str) -> SpeechTranscript:
        async with self.sessionmaker(expire_on_commit=False) as session:
            row = await session.scalar(select(SpeechTranscript).where(
                SpeechTranscript.audio_ref == audio_ref))
        assert row is not None
        return row

    async def get(self, transcript_id: int) -> SpeechTranscript | None:
        async with self.sessionmaker(expire_on_commit=False) as session:
            return await session.get(SpeechTranscript, transcript_id)


def _comment(row: SpeechTranscript, decoded: Decoded) -> dict[str, Any]:
    """A revisit comment's words for the timeline (the order's free text, masked as such
    for whoever may not read numbers); nothing for other audio."""
    if row.purpose != REVISIT_COMMENT:
        return {}
    said = "".join(s["text"].replace(" ", "")
                   for s in decoded.transcript.get("segments", ()))
    return {"purpose": row.purpose, "text": said}


def build(runtime: Any) -> SpeechService:
    """The service of one process, from its ``Runtime``."""
    settings = runtime.settings
    return SpeechService(runtime.sessionmaker, runtime.clock, settings.speech,
                         settings.recordings, runtime.bus)
