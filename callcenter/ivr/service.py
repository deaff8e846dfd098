"""The IVR's domain logic: the announcement switches, opening hours, ticket progress by
phone (who may hear it, how often one may fail) and after-hours messages as ticket drafts.

Tickets are read and created through the ticket domain (``TicketService`` for drafts); the
IVR keeps only what is its own: switches, PINs and the trail of lookups.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time as monotonic
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.auth.models import User
from callcenter.auth.passwords import DEFAULT_POLICY
from callcenter.auth.principal import Principal, Role
from callcenter.auth.users import create_user, generate_password, principal_for
from callcenter.clock import Clock
from callcenter.ivr.config import IvrConfig
from callcenter.ivr.errors import UnknownAnnouncement
from callcenter.ivr.models import ANNOUNCEMENTS, IvrAnnouncement, IvrTicketPin, IvrVerification
from callcenter.tickets.calendar import WorkingCalendar
from callcenter.tickets.models import Channel, Ticket
from callcenter.tickets.schemas import CallerIn, CallLinkIn, DraftIn
from callcenter.tickets.service import TicketService

log = logging.getLogger(__name__)

IVR_USER = "ivr"
"""The system account after-hours drafts are written by (never logs in)."""
MESSAGE_TITLE = "非工作时间留言 (after-hours message)"
TRANSCRIBE_QUEUE = "speech.transcribe"
"""Bus job queue of recordings waiting for speech-to-text (consumed once that exists)."""
FAILED = ("not_found", "mismatch", "bad_pin")
_hasher = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)


@dataclass(frozen=True)
class TicketProgress:
    """What a verified caller may hear: never names, addresses or content."""

    number: str
    status: str
    due: date | None


@dataclass(frozen=True)
class Verification:
    outcome: str
    """``caller``/``pin`` (verified), ``needs_pin`` (the number is not the ticket's caller),
    ``not_found``, ``mismatch``, ``bad_pin``, ``refused`` (over the day's limit)."""
    progress: TicketProgress | None = None

    @property
    def verified(self) -> bool:
        return self.progress is not None


def same_phone(a: str | None, b: str | None) -> bool:
    """Two numbers are one line when their last 11 digits agree (+86, a trunk prefix 0)."""
    da, db = "".join(c for c in a or "" if c.isdigit()), "".join(c for c in b or ""
                                                                  if c.isdigit())
    return len(da) >= 5 and da[-11:] == db[-11:]


def ticket_number(keyed: str) -> str:
    """Digits keyed on the phone -> the ticket's number (``YYYYMMDD-NNNNNN``)."""
    digits = "".join(c for c in keyed if c.isdigit())
    return f"{digits[:8]}-{digits[8:]}" if len(digits) > 8 else digits


class IvrService:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], clock: Clock,
                 config: IvrConfig, calendar: WorkingCalendar,
                 tickets: TicketService | None = None, bus: object | None = None) -> None:
        self.sessionmaker = sessionmaker
        self.clock = clock
        self.config = config
        self.calendar = calendar
        self.tickets = tickets
        self.bus = bus
        self._switches: dict[str, bool] = {}
        self._switches_read = -1e9
        self._principal: Principal | None = None

    # -- announcements ----------------------------------------------------------------------
    async def announcements(self) -> dict[str, bool]:
        """The switches, read at most every ``announcement_cache_seconds`` per process."""
        now = monotonic.monotonic()
        if now - self._switches_read >= self.config.announcement_cache_seconds:
            async with self.sessionmaker() as session:
                rows = (await session.scalars(select(IvrAnnouncement))).all()
            self._switches = {kind: False for kind in ANNOUNCEMENTS}
            self._switches.update({row.kind: row.active for row in rows})
            self._switches_read = now
        return dict(self._switches)

    async def list_announcements(self, session: AsyncSession) -> list[IvrAnnouncement]:
        rows = {r.kind: r for r in (await session.scalars(select(IvrAnnouncement))).all()}
        return [rows.get(kind) or IvrAnnouncement(kind=kind, active=False, note=None,
                                                  updated_at=None, updated_by=None)
                for kind in ANNOUNCEMENTS]

    async def set_announcement(self, session: AsyncSession, principal: Principal, kind: str,
                               active: bool, note: str | None) -> IvrAnnouncement:
        if kind not in ANNOUNCEMENTS:
            raise UnknownAnnouncement(kind)
        row = await session.get(IvrAnnouncement, kind, with_for_update=True)
        if row is None:
            row = IvrAnnouncement(kind=kind)
            session.add(row)
        row.active, row.note = active, note
        row.updated_at, row.updated_by = self.clock.now(), principal.user_id
        await session.flush()
        self._switches_read = -1e9  # this process sees the change at once
        log.info("ivr.announcement kind=%s active=%s user=%s", kind, active,
                 principal.user_id)
        return row

    # -- opening hours and holidays ---------------------------------------------------------
    def is_public_holiday(self, at: datetime) -> bool:
        """A weekday the working-day calendar gives off (国庆, 春节...): the holiday
        announcement plays then without anyone switching it on (``holidays_from_calendar``)."""
        day = self.calendar.local_date(at)
        return self.config.holidays_from_calendar and day.weekday() < 5 and \
            not self.calendar.is_workday(day)

    def is_open(self, at: datetime) -> bool:
        """Inside the staffed hours: a working day (if required) and the hours of the day."""
        local = at.astimezone(self.calendar.zone)
        if self.config.working_days_only and not self.calendar.is_workday(local.date()):
            return False
        start, end = self.config.open_from, self.config.open_until
        if start is None or end is None:
            return True
        now = local.time()
        return start <= now < end if start <= end else (now >= start or now < end)

    # -- ticket progress by phone -----------------------------------------------------------
    async def check_caller(self, keyed: str, caller: str, linkedid: str | None
                           ) -> Verification:
        """A lookup from ``caller``: verified when the calling number is the ticket's."""
        number = ticket_number(keyed)
        async with self.sessionmaker() as session, session.begin():
            if await self._over_limit(session, caller):
                return await self._log(session, caller, number, linkedid, "refused")
            ticket = await session.scalar(select(Ticket).where(Ticket.number == number))
            if ticket is None:
                return await self._log(session, caller, number, linkedid, "not_found")
            if same_phone(caller, ticket.caller_phone):
                await self._log(session, caller, number, linkedid, "caller")
                return Verification("caller", self._progress(ticket))
            pin = await session.get(IvrTicketPin, ticket.id)
            if pin is None:
                return await self._log(session, caller, number, linkedid, "mismatch")
            return Verification("needs_pin")

    async def check_pin(self, keyed: str, pin: str, caller: str, linkedid: str | None
                        ) -> Verification:
        number = ticket_number(keyed)
        async with self.sessionmaker() as session, session.begin():
            if await self._over_limit(session, caller):
                return await self._log(session, caller, number, linkedid, "refused")
            ticket = await session.scalar(select(Ticket).where(Ticket.number == number))
            stored = await session.get(IvrTicketPin, ticket.id) if ticket else None
            if ticket is None or stored is None or not await _pin_matches(stored.pin_hash, pin):
                return await self._log(session, caller, number, linkedid, "bad_pin")
            await self._log(session, caller, number, linkedid, "pin")
            return Verification("pin", self._progress(ticket))

    async def issue_pin(self, session: AsyncSession, ticket_id: int) -> str:
        """A new 6-digit PIN for the ticket (the old one stops working); told to the caller
        once, stored hashed."""
        pin = f"{secrets.randbelow(10**6):06d}"
        digest = await asyncio.to_thread(_hasher.hash, pin)
        row = await session.get(IvrTicketPin, ticket_id)
        if row is None:
            session.add(IvrTicketPin(ticket_id=ticket_id, pin_hash=digest,
                                     created_at=self.clock.now()))
        else:
            row.pin_hash, row.created_at = digest, self.clock.now()
        await session.flush()
        return pin

    async def _over_limit(self, session: AsyncSession, caller: str) -> bool:
        since = self.clock.now() - timedelta(days=1)
        failures = await session.scalar(
            select(func.count()).select_from(IvrVerification).where(
                IvrVerification.caller_number == caller[:32], IvrVerification.at >= since,
                IvrVerification.outcome.in_(FAILED)))
        return (failures or 0) >= self.config.verification_limit

    async def _log(self, session: AsyncSession, caller: str, number: str,
                   linkedid: str | None, outcome: str) -> Verification:
        session.add(IvrVerification(at=self.clock.now(), caller_number=caller[:32],
                                    ticket_number=number[:32], linkedid=linkedid,
                                    outcome=outcome))
        level = logging.WARNING if outcome in (*FAILED, "refused") else logging.INFO
        log.log(level, "ivr.ticket_lookup outcome=%s ticket=%s linkedid=%s", outcome, number,
                linkedid)
        return Verification(outcome)

    def _progress(self, ticket: Ticket) -> TicketProgress:
        due = self.calendar.local_date(ticket.reply_due_at) if ticket.reply_due_at else None
        return TicketProgress(ticket.number, ticket.status, due)

    # -- after-hours messages ---------------------------------------------------------------
    async def leave_message(self, caller: str, linkedid: str, recording_ref: str) -> Ticket:
        """The message becomes a phone draft with the recording linked to its call, and a
        speech-to-text job is queued for it."""
        if self.tickets is None:
            raise RuntimeError("after-hours messages need the ticket service")
        principal = await self._ivr_principal()
        phone = caller if caller.isdigit() and 3 <= len(caller) <= 32 else None
        draft = DraftIn(channel=Channel.PHONE, caller=CallerIn(phone=phone),
                        title=MESSAGE_TITLE, content="",
                        calls=[CallLinkIn(linkedid=linkedid, recording_ref=recording_ref)])
        ticket = await self.tickets.create_draft(principal, draft)
        enqueue = getattr(self.bus, "enqueue", None)
        if enqueue is not None:
            await enqueue(TRANSCRIBE_QUEUE, {"ticket_id": ticket.id, "linkedid": linkedid,
                                             "recording_ref": recording_ref,
                                             "purpose": "after_hours_message"})
        log.info("ivr.message_draft ticket=%s linkedid=%s recording=%s", ticket.number,
                 linkedid, recording_ref)
        return ticket

    async def _ivr_principal(self) -> Principal:
        if self._principal is None:
            async with self.sessionmaker() as session, session.begin():
                user = await session.scalar(select(User).where(User.username == IVR_USER))
                if user is None:
                    user = await create_user(session, username=IVR_USER,
                                             password=generate_password(IVR_USER,
                                                                        DEFAULT_POLICY),
                                             role=Role.AGENT, clock=self.clock,
                                             display_name="IVR (system)", active=False)
                self._principal = principal_for(user)
        return self._principal


async def _pin_matches(digest: str, pin: str) -> bool:
    try:
        return await asyncio.to_thread(_hasher.verify, digest, pin)
    except (VerificationError, InvalidHashError):
        return False
