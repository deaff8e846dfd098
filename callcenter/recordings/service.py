"""Finalising a recording: take the file over from Asterisk's monitor folder, hash it, read
its duration, file it in the store, write the row, and only then announce it.

A file missing or empty after the call, or a store that refuses it, never drops the
recording: the row (the call's flag) says so (``missing`` / ``failed``), the order's timeline
is flagged, an alert goes on the bus and in the log, and the attempt is retried until it
succeeds or is declared ``lost``.

Attempts are counted on the row, never in memory: the first is made at the hang-up, each
later one by the workers' loop once ``next_attempt_at`` is due (``retry_delays`` after the
one before). An attempt claims the row first (one conditional update), so two processes,
or the hang-up and the loop, never make or count the same attempt twice.
"""

from __future__ import annotations

import asyncio
import logging
import wave
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.auth.principal import Role
from callcenter.calls.models import CallLog
from callcenter.clock import Clock
from callcenter.recordings.config import RecordingsConfig
from callcenter.recordings.errors import RecordingNotFound
from callcenter.recordings.models import (
    RETRYING,
    ContactAttempt,
    Recording,
    RecordingAttachment,
)
from callcenter.recordings.store import AlreadyStored, RecordingStore, StoreError, key_for
from callcenter.supervision.models import NotificationKind
from callcenter.supervision.notifications import store_notifications
from callcenter.tickets.models import TicketCall, TicketEvent

log = logging.getLogger(__name__)

STORED_TOPIC = "recording.stored"
ALERT_TOPIC = "recording.alert"
ATTEMPT_LEASE = timedelta(minutes=2)
"""How long a claimed attempt may run (copy and hash one file) before the workers' loop
takes it for a process that died during it."""


@dataclass(frozen=True)
class WavFacts:
    duration: float | None
    channels: int | None


def wav_facts(path: Path) -> WavFacts:
    """Duration and channels from the WAV header (None for a file that is not PCM WAV)."""
    try:
        with wave.open(str(path), "rb") as audio:
            rate = audio.getframerate()
            return WavFacts(round(audio.getnframes() / rate, 3) if rate else None,
                            audio.getnchannels())
    except (wave.Error, EOFError, OSError):
        return WavFacts(None, None)


def lost_notice(row: Recording, ticket_id: int, now: datetime) -> dict[str, Any]:
    """Supervisors' notification that an order's proof of contact is gone (once per order
    and recording)."""
    kind = str(NotificationKind.RECORDING_LOST)
    return {"dedupe_key": f"{kind}:{row.id}:{ticket_id}", "recipient_unit_id": None,
            "recipient_role": str(Role.SUPERVISOR), "kind": kind, "ticket_id": ticket_id,
            "flag_id": None, "day": now.date(), "created_at": now, "delivered_at": None,
            "read_at": None, "read_by": None,
            "text": f"录音丢失：通话 {row.linkedid} 的录音无法保存（{row.last_error}）"}


class RecordingService:
    """Take-over, attachment and alerts; used by the listener, the workers and the CLI."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], clock: Clock,
                 config: RecordingsConfig, store: RecordingStore, bus: Any = None) -> None:
        self.sessionmaker = sessionmaker
        self.clock = clock
        self.config = config
        self.store = store
        self.bus = bus

    # --- the file Asterisk wrote ----------------------------------------------------------

    def local_path(self, source: str) -> Path:
        """Asterisk's file name as this host sees it (the shared monitor folder)."""
        prefix = self.config.asterisk_monitor_dir.rstrip("/") + "/"
        name = source[len(prefix):] if source.startswith(prefix) else Path(source).name
        return self.config.monitor_dir / name

    async def call_ended(self, *, pbx: str, linkedid: str, uniqueid: str, source: str,
                         ended_at: datetime) -> Recording:
        """The recorded channel hung up: write the row first (the call is never lost from
        view), due at once, then make the first attempt to take the file over."""
        async with self.sessionmaker() as session, session.begin():
            row = await session.scalar(select(Recording).where(
                Recording.pbx == pbx, Recording.uniqueid == uniqueid))
            if row is None:
                row = Recording(pbx=pbx, linkedid=linkedid, uniqueid=uniqueid, source=source,
                                status="pending", attempts=0, ended_at=ended_at,
                                next_attempt_at=self.clock.now())
                session.add(row)
                await session.flush()
            recording_id = row.id
        return await self.attempt(recording_id)

    async def get(self, recording_id: int) -> Recording:
        async with self.sessionmaker() as session:
            row = await session.get(Recording, recording_id)
        if row is None:
            raise RecordingNotFound(f"no recording {recording_id}")
        return row

    async def attempt(self, recording_id: int) -> Recording:
        """One attempt to take the file over, if it is due; a no-op for a recording settled,
        not due yet, or being attempted by someone else."""
        claimed = await self._claim(recording_id)
        if claimed is None:
            return await self.get(recording_id)
        try:
            problem, stored, facts = await self._take_over(claimed)
        except Exception as exc:  # noqa: BLE001 - counted and retried like any failure
            log.exception("recordings.attempt_crashed recording=%s", recording_id)
            problem, stored, facts = ("failed", f"unexpected error: {exc!r}"), None, None
        return await self._settle(claimed, problem, stored, facts)

    async def _claim(self, recording_id: int) -> Recording | None:
        """Count the attempt and lease the row (``next_attempt_at`` moves ``ATTEMPT_LEASE``
        ahead) in one conditional update: only one claimant of a due row gets it."""
        now = self.clock.now()
        async with self.sessionmaker(expire_on_commit=False) as session, session.begin():
            claimed = await session.scalar(
                update(Recording)
                .where(Recording.id == recording_id, Recording.status.in_(RETRYING),
                       Recording.next_attempt_at.is_(None) | (Recording.next_attempt_at <= now))
                .values(attempts=Recording.attempts + 1, next_attempt_at=now + ATTEMPT_LEASE)
                .returning(Recording.id))
            if claimed is None:
                return None
            return await session.get(Recording, recording_id, populate_existing=True)

    async def _settle(self, claimed: Recording, problem: tuple[str, str] | None, stored: Any,
                      facts: WavFacts | None) -> Recording:
        """Write the attempt's outcome, unless the lease was taken over meanwhile."""
        now = self.clock.now()
        async with self.sessionmaker(expire_on_commit=False) as session, session.begin():
            row = await session.get(Recording, claimed.id, with_for_update=True)
            assert row is not None
            if row.status not in RETRYING or row.attempts != claimed.attempts:
                return row
            tickets = await self._ticket_ids(session, row.linkedid)
            if problem is None:
                assert stored is not None and facts is not None
                row.status, row.store_key, row.sha256 = "stored", stored.key, stored.sha256
                row.size_bytes, row.stored_at, row.checked_at = stored.size, now, now
                row.duration_seconds, row.channels = facts.duration, facts.channels
                row.last_error, row.next_attempt_at = None, None
                await self._attach(session, row, now)
                topic, payload = STORED_TOPIC, self._payload(row)
            else:
                self._failed(row, *problem, now, tickets)
                # the first attempt may race Asterisk closing the file: flag from the second
                if row.attempts == 2 or row.status == "lost":
                    await self._flag_tickets(session, row, now)
                topic, payload = ALERT_TOPIC, self._alert(row, tickets)
        await self._announce(topic, payload)
        return row

    def _failed(self, row: Recording, status: str, reason: str, now: datetime,
                tickets: list[int]) -> None:
        """Schedule the next attempt, or declare the recording lost after the last one."""
        delays = self.config.retry_delays
        row.last_error = reason
        if row.attempts > len(delays):
            row.status, row.next_attempt_at = "lost", None
            log.error("recordings.lost recording=%s pbx=%s linkedid=%s tickets=%s attempts=%d "
                      "error=%s", row.id, row.pbx, row.linkedid, tickets, row.attempts, reason)
            return
        row.status = status
        row.next_attempt_at = now + timedelta(seconds=delays[row.attempts - 1])
        log.info("recordings.retry_scheduled recording=%s linkedid=%s attempts=%d at=%s "
                 "error=%s", row.id, row.linkedid, row.attempts,
                 row.next_attempt_at.isoformat(), reason)

    async def _take_over(self, row: Recording) -> tuple[tuple[str, str] | None, Any, WavFacts]:
        """Copy the file into the store: (problem, stored, facts); ``problem`` is
        ``(status, reason)`` when it cannot be done now."""
        none = WavFacts(None, None)
        monitor = self.config.monitor_dir
        if not monitor.is_dir():
            return ("failed", f"cannot reach Asterisk's monitor folder {monitor}"), None, none
        local = self.local_path(row.source)
        try:
            size = local.stat().st_size
        except FileNotFoundError:
            return ("missing", f"{local.name} is missing from the monitor folder"), None, none
        except OSError as exc:
            return ("failed", f"cannot read {local.name}: {exc.strerror}"), None, none
        if size == 0:
            return ("missing", f"{local.name} is empty"), None, none
        key = key_for(row.id, row.ended_at)
        try:
            stored = await asyncio.to_thread(self.store.put, key, local)
        except AlreadyStored:  # an earlier attempt stored it, then could not write the row
            stored = await asyncio.to_thread(self.store.digest, key)
        except StoreError as exc:
            return ("failed", str(exc)), None, none
        facts = await asyncio.to_thread(wav_facts, self.store.path(key))
        return None, stored, facts

    # --- attachment -----------------------------------------------------------------------

    async def attach_pending(self) -> int:
        """Attach stored recordings to orders linked to their call after they were stored
        (an order registered after the hang-up). Returns how many were attached."""
        async with self.sessionmaker() as session, session.begin():
            rows = (await session.scalars(
                select(Recording).join(TicketCall, TicketCall.linkedid == Recording.linkedid)
                .outerjoin(RecordingAttachment, (RecordingAttachment.recording_id == Recording.id)
                           & (RecordingAttachment.ticket_id == TicketCall.ticket_id))
                .where(Recording.status == "stored", RecordingAttachment.id.is_(None))
                .distinct())).all()
            count = 0
            for row in rows:
                count += await self._attach(session, row, self.clock.now())
        return count

    async def _attach(self, session: AsyncSession, row: Recording, now: datetime) -> int:
        """Link the recording to every order its call is linked to, with a timeline entry
        (who, when, duration, outcome), once per order."""
        links = (await session.scalars(select(TicketCall).where(
            TicketCall.linkedid == row.linkedid))).all()
        if not links:
            return 0
        done = set((await session.scalars(select(RecordingAttachment.ticket_id).where(
            RecordingAttachment.recording_id == row.id))).all())
        call = await session.scalar(select(CallLog).where(
            CallLog.pbx == row.pbx, CallLog.linkedid == row.linkedid))
        attempt = await session.scalar(select(ContactAttempt).where(
            ContactAttempt.pbx == row.pbx, ContactAttempt.linkedid == row.linkedid))
        count = 0
        for link in links:
            if link.ticket_id in done:
                continue
            if link.recording_ref is None:
                link.recording_ref = row.store_key
            session.add(RecordingAttachment(recording_id=row.id, ticket_id=link.ticket_id,
                                            purpose=link.purpose, attached_at=now))
            session.add(TicketEvent(
                ticket_id=link.ticket_id, at=now,
                actor_id=attempt.user_id if attempt else None, actor_role=None,
                action="recording", unit_id=attempt.unit_id if attempt else None,
                data=self._timeline_data(row, link.purpose, call, attempt), attachments=[]))
            count += 1
        if count:
            log.info("recordings.attached recording=%s tickets=%d", row.id, count)
        return count

    @staticmethod
    def _timeline_data(row: Recording, purpose: str, call: CallLog | None,
                       attempt: ContactAttempt | None) -> dict[str, Any]:
        data: dict[str, Any] = {"recording_id": row.id, "purpose": purpose,
                                "duration_seconds": row.duration_seconds,
                                "recorded_at": row.ended_at.isoformat()}
        if attempt is not None:
            data.update(outcome=attempt.outcome, talk_seconds=attempt.talk_seconds,
                        by_user_id=attempt.user_id)
        elif call is not None:
            data.update(outcome=call.disposition, talk_seconds=call.talk_seconds,
                        agent=call.agent_name)
        return data

    async def _flag_tickets(self, session: AsyncSession, row: Recording, now: datetime,
                            links: list[TicketCall] | None = None) -> list[int]:
        """The orders of this call (or ``links``) show that their recording is missing
        (once, and again when it is declared lost). Returns the orders flagged."""
        if links is None:
            links = list((await session.scalars(select(TicketCall).where(
                TicketCall.linkedid == row.linkedid))).all())
        for link in links:
            session.add(TicketEvent(
                ticket_id=link.ticket_id, at=now, actor_id=None, actor_role=None,
                action="recording_problem", unit_id=None, attachments=[],
                data={"recording_id": row.id, "status": row.status, "error": row.last_error,
                      "purpose": link.purpose}))
        tickets = sorted(link.ticket_id for link in links)
        if row.status == "lost":
            await store_notifications(session, [lost_notice(row, t, now) for t in tickets])
        log.warning("recordings.problem recording=%s pbx=%s linkedid=%s tickets=%s status=%s "
                    "error=%s", row.id, row.pbx, row.linkedid, tickets, row.status,
                    row.last_error)
        return tickets

    async def flag_late_losses(self) -> int:
        """Orders linked to a call after its recording was declared lost (the agent wrote
        the order after the hang-up) are flagged and alerted too. Returns how many."""
        flagged: list[tuple[Recording, list[int]]] = []
        now = self.clock.now()
        async with self.sessionmaker(expire_on_commit=False) as session, session.begin():
            flag = TicketEvent.data
            pairs = (await session.execute(
                select(Recording, TicketCall)
                .join(TicketCall, TicketCall.linkedid == Recording.linkedid)
                .outerjoin(TicketEvent, (TicketEvent.ticket_id == TicketCall.ticket_id)
                           & (TicketEvent.action == "recording_problem")
                           & (flag["recording_id"].as_integer() == Recording.id)
                           & (flag["status"].as_string() == "lost"))
                .where(Recording.status == "lost", TicketEvent.id.is_(None))
                .order_by(Recording.id, TicketCall.ticket_id))).all()
            by_recording: dict[int, tuple[Recording, list[TicketCall]]] = {}
            for row, link in pairs:
                by_recording.setdefault(row.id, (row, []))[1].append(link)
            for row, links in by_recording.values():
                flagged.append((row, await self._flag_tickets(session, row, now, links)))
        for row, tickets in flagged:
            await self._announce(ALERT_TOPIC, self._alert(row, tickets))
        return sum(len(tickets) for _, tickets in flagged)

    @staticmethod
    async def _ticket_ids(session: AsyncSession, linkedid: str) -> list[int]:
        return sorted((await session.scalars(select(TicketCall.ticket_id).where(
            TicketCall.linkedid == linkedid))).all())

    # --- announcing -----------------------------------------------------------------------

    @staticmethod
    def _payload(row: Recording) -> dict[str, Any]:
        return {"recording_id": row.id, "pbx": row.pbx, "linkedid": row.linkedid,
                "status": row.status, "sha256": row.sha256,
                "duration_seconds": row.duration_seconds, "size_bytes": row.size_bytes}

    def _alert(self, row: Recording, tickets: list[int]) -> dict[str, Any]:
        """A problem, naming the call, its orders and what happens next."""
        return {**self._payload(row), "uniqueid": row.uniqueid, "error": row.last_error,
                "attempts": row.attempts, "ticket_ids": tickets,
                "next_attempt_at": row.next_attempt_at.isoformat()
                if row.next_attempt_at else None}

    async def _announce(self, topic: str, payload: dict[str, Any]) -> None:
        if self.bus is None:
            return
        try:
            await self.bus.publish(topic, payload)
        except Exception as exc:  # noqa: BLE001 - the row is durable; the event is live only
            log.warning("recordings.announce_failed topic=%s error=%r", topic, exc)

    async def due_retries(self, now: datetime) -> list[int]:
        """Recordings whose next attempt is due (also those a restart left pending)."""
        async with self.sessionmaker() as session:
            return list((await session.scalars(select(Recording.id).where(
                Recording.status.in_(RETRYING),
                (Recording.next_attempt_at.is_(None)) | (Recording.next_attempt_at <= now))
                .order_by(Recording.id))).all())

    async def next_retry_at(self) -> datetime | None:
        """When the earliest attempt falls due (now for a row without a time; None: none)."""
        async with self.sessionmaker() as session:
            rows = (await session.execute(select(Recording.next_attempt_at).where(
                Recording.status.in_(RETRYING))
                .order_by(Recording.next_attempt_at.asc().nulls_first()).limit(1))).all()
        if not rows:
            return None
        return rows[0][0] or self.clock.now()

def build(runtime: Any) -> tuple[RecordingService, Any]:
    """The service and the contact calls of one process, from its ``Runtime``."""
    from callcenter.recordings.contact import ContactCalls
    from callcenter.recordings.store import LocalStore

    settings = runtime.settings
    config: RecordingsConfig = settings.recordings
    service = RecordingService(runtime.sessionmaker, runtime.clock, config,
                               LocalStore(config.store_dir), runtime.bus)
    contacts = ContactCalls(runtime.sessionmaker, runtime.clock, config.click_to_call,
                            settings.ami.pbx, runtime.bus)
    return service, contacts
