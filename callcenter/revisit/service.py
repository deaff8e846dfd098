"""Revisit campaigns as data: scheduling, exactly-once claims, attempts and their outcomes,
keys stored as pressed, and the result written on the ticket.

Every step is one short transaction and is fenced: a dialer acts on a revisit only while the
revisit carries the token of its claim (``lease_token``). The attempt with its ``ChannelId`` is
stored before the Originate, so after a crash the stored channel ids and Asterisk's live
channels (``CoreShowChannels``) say which call is still up (``reconcile``): nothing is dialed
while its call lives, and keys pressed before the crash are finished into a result.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import unicodedata
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Select, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.auth.models import User
from callcenter.auth.principal import Principal, Role
from callcenter.clock import Clock
from callcenter.recordings.contact import dialable
from callcenter.revisit.config import WEEKDAYS, CampaignSettings, RevisitConfig
from callcenter.revisit.errors import (
    CampaignNotFound,
    DuplicateCampaign,
    InvalidInput,
    MessageAlreadyReplied,
    MessageNotFound,
    NotRevisitable,
    RevisitNotFound,
)
from callcenter.revisit.messages import REPLIES, compose
from callcenter.revisit.models import (
    LIVE_STATES,
    DoNotCall,
    MessageState,
    Revisit,
    RevisitAttempt,
    RevisitCampaign,
    RevisitMessage,
    RevisitOptOut,
)
from callcenter.revisit.models import RevisitState as RS
from callcenter.tickets.calendar import WorkingCalendar
from callcenter.tickets.errors import IllegalTransition, RuleViolation
from callcenter.tickets.models import RevisitResult, Ticket, TicketStatus
from callcenter.tickets.schemas import CallLinkIn, RevisitIn
from callcenter.tickets.service import TicketService

log = logging.getLogger(__name__)

DEFAULT_CAMPAIGN = "default"
SYSTEM_USER = "revisit-dialer"
CHANNEL_PREFIX = "rv-"
SCORES = {"1": RevisitResult.SATISFIED, "2": RevisitResult.BASICALLY_SATISFIED,
          "3": RevisitResult.UNSATISFIED, "0": RevisitResult.DECLINED}
SCORE_OF = {str(result): score for score, result in SCORES.items()}
REVISITABLE = (TicketStatus.REPLIED, TicketStatus.CLOSED)
TEXT_QUEUED = "no call answered: a text-message survey is queued"
TEXT_REPLY = "text-message reply"
UNANSWERED = ("busy", "no_answer", "congestion", "failed", "lost", "dropped")


def in_window(settings: CampaignSettings, calendar: WorkingCalendar, now: datetime) -> bool:
    """Inside the campaign's hours for the local weekday, and on a working day if asked."""
    local = now.astimezone(calendar.zone)
    hours = settings.windows.get(WEEKDAYS[local.weekday()])
    if hours is None or not hours[0] <= local.hour < hours[1]:
        return False
    day = local.date()
    return not settings.working_days_only or calendar.workday_on_or_after(day) == day


T = TypeVar("T")
LOCK_RETRIES = 8


async def retrying(transaction: Callable[[], Awaitable[T]]) -> T:
    """Run ``transaction`` again when SQLite's single writer refused it ("database is
    locked": two deferred transactions upgrading at once); it was rolled back whole."""
    for attempt in range(LOCK_RETRIES):
        try:
            return await transaction()
        except OperationalError as exc:
            if "locked" not in str(exc) or attempt == LOCK_RETRIES - 1:
                raise
            await asyncio.sleep(0.02 * (attempt + 1) * (1 + random.random()))
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Dial:
    """What the dialer sends for one claimed revisit (the number never leaves the service)."""

    revisit_id: int
    token: int
    attempt: int
    channel_id: str
    number: str
    settings: CampaignSettings


@dataclass(frozen=True)
class Subject:
    """What the survey reads out and asks: the order's topic label and the scale."""

    revisit_id: int
    topic: str
    scale: str


@dataclass(frozen=True)
class TextClaim:
    """A message a sender holds (fenced by ``token``) and what it sends."""

    message_id: int
    token: int
    tries: int
    phone: str
    text: str


def _not_callable(ticket: Ticket, number: str | None, opted_out: bool, barred: bool
                  ) -> str | None:
    """Why the citizen of ``ticket`` may not be called (None: they may)."""
    if ticket.anonymous or ticket.no_contact or number is None:
        return "no_number"
    if ticket.status not in REVISITABLE:
        return "ticket_moved_on"
    if opted_out:
        return "opted_out"
    if barred:
        return "do_not_call"
    return None


def busy_lines(campaign_id: int) -> Select[tuple[int]]:
    """Claims about to dial, and calls whose channel has not hung up yet (a finished
    survey holds its line until the hang-up). The calls are found from the live attempts
    (a partial index), each revisit's campaign read by its key: a join could hash every
    revisit of the campaign, which grows with every order, whenever the statistics lag."""
    claimed = select(func.count()).select_from(Revisit).where(
        Revisit.campaign_id == campaign_id, Revisit.state == RS.CLAIMED).scalar_subquery()
    campaign_of = select(Revisit.campaign_id).where(
        Revisit.id == RevisitAttempt.revisit_id).scalar_subquery()
    calls = select(func.count()).select_from(RevisitAttempt).where(
        RevisitAttempt.ended_at.is_(None), campaign_of == campaign_id).scalar_subquery()
    return select(claimed + calls)


def star_score(settings: CampaignSettings, stars: int) -> str:
    """The 1/2/3 result code of a star rating, by the campaign's ``star_results``."""
    return SCORE_OF[settings.star_results[stars]]


@dataclass(frozen=True)
class Progress:
    pending: int
    dialing: int
    reached: int
    satisfied: int
    unsatisfied: int
    unreachable: int
    declined: int


class RevisitService:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], clock: Clock,
                 config: RevisitConfig, tickets: TicketService) -> None:
        self.sessionmaker = sessionmaker
        self.clock = clock
        self.config = config
        self.tickets = tickets
        self.calendar = tickets.calendar
        self._system: Principal | None = None
        self._finishing: dict[int, asyncio.Lock] = {}
        """One writer of a result per revisit in this process (survey end and hang-up)."""

    def now(self) -> datetime:
        return self.clock.now().astimezone(UTC)

    # --- campaigns ------------------------------------------------------------------------

    async def default_campaign(self) -> RevisitCampaign:
        async with self.sessionmaker() as session, session.begin():
            row = await session.scalar(select(RevisitCampaign).where(
                RevisitCampaign.name == DEFAULT_CAMPAIGN))
            if row is None:
                now = self.now()
                row = RevisitCampaign(name=DEFAULT_CAMPAIGN, paused=False, claim_seq=0,
                                      settings=self.config.campaign.model_dump(mode="json"),
                                      created_at=now, updated_at=now)
                session.add(row)
            return row

    async def campaigns(self) -> list[RevisitCampaign]:
        async with self.sessionmaker() as session:
            return list((await session.scalars(select(RevisitCampaign).order_by(
                RevisitCampaign.id))).all())

    async def save_campaign(self, name: str, settings: CampaignSettings,
                            campaign_id: int | None = None) -> RevisitCampaign:
        """Create or change a campaign; names are unique (``DuplicateCampaign``)."""
        try:
            return await self._save_campaign(name, settings, campaign_id)
        except IntegrityError:  # the same name saved at the same moment elsewhere
            raise DuplicateCampaign(f"a campaign named {name!r} exists",
                                    field="name") from None

    async def _save_campaign(self, name: str, settings: CampaignSettings,
                             campaign_id: int | None) -> RevisitCampaign:
        async with self.sessionmaker(expire_on_commit=False) as session, session.begin():
            taken = await session.scalar(select(RevisitCampaign.id).where(
                RevisitCampaign.name == name, RevisitCampaign.id != (campaign_id or 0)))
            if taken is not None:
                raise DuplicateCampaign(f"a campaign named {name!r} exists", field="name")
            now = self.now()
            if campaign_id is None:
                row = RevisitCampaign(name=name, paused=False, claim_seq=0, created_at=now)
                session.add(row)
            else:
                row = await self._campaign(session, campaign_id)
                row.name = name
            row.settings, row.updated_at = settings.model_dump(mode="json"), now
        return row

    async def set_paused(self, campaign_id: int, paused: bool) -> RevisitCampaign:
        async with self.sessionmaker(expire_on_commit=False) as session, session.begin():
            row = await self._campaign(session, campaign_id)
            row.paused, row.updated_at = paused, self.now()
        log.info("revisit.campaign_paused campaign=%s paused=%s", campaign_id, paused)
        return row

    @staticmethod
    async def _campaign(session: AsyncSession, campaign_id: int) -> RevisitCampaign:
        row = await session.get(RevisitCampaign, campaign_id, with_for_update=True)
        if row is None:
            raise CampaignNotFound(f"no campaign {campaign_id}")
        return row

    # --- scheduling -----------------------------------------------------------------------

    async def schedule_replied(self) -> int:
        """Replied orders whose reply the office kept for the campaign's delay get their
        revisit (once per reply: a rework and a new reply make a new round)."""
        campaign = await self.default_campaign()
        delay = CampaignSettings(**campaign.settings).delay_after_reply_hours
        now = self.now()
        async with self.sessionmaker() as session, session.begin():
            earlier = exists().where(Revisit.ticket_id == Ticket.id,
                                     Revisit.created_at >= Ticket.replied_at)
            ids = (await session.scalars(select(Ticket.id).where(
                Ticket.status == TicketStatus.REPLIED, Ticket.anonymous.is_(False),
                Ticket.replied_at <= now - timedelta(hours=delay), ~earlier)
                .order_by(Ticket.id).limit(1000))).all()
            for ticket_id in ids:
                session.add(self._new(campaign.id, ticket_id, "reply", now))
        if ids:
            log.info("revisit.scheduled count=%d source=reply", len(ids))
        return len(ids)

    async def schedule(self, ticket_id: int, campaign_id: int | None = None,
                       due_at: datetime | None = None) -> Revisit:
        """A revisit on demand, for any ticket with a number to call and none under way."""
        if campaign_id is None:
            campaign_id = (await self.default_campaign()).id
        now = self.now()
        async with self.sessionmaker(expire_on_commit=False) as session, session.begin():
            await self._campaign(session, campaign_id)
            ticket = await session.get(Ticket, ticket_id)
            if ticket is None:
                raise RevisitNotFound(f"no ticket {ticket_id}", field="ticket_id")
            if ticket.anonymous or dialable(ticket.caller_phone) is None:
                raise NotRevisitable("the order has no number to call back")
            if await session.get(RevisitOptOut, ticket_id) is not None:
                raise NotRevisitable("the citizen opted out of the revisit of this order")
            open_one = await session.scalar(select(Revisit.id).where(
                Revisit.ticket_id == ticket_id, Revisit.state.notin_([RS.DONE, RS.CANCELED])))
            if open_one is not None:
                raise NotRevisitable(f"revisit {open_one} of this order is under way")
            revisit = self._new(campaign_id, ticket_id, "on_demand", due_at or now)
            session.add(revisit)
        return revisit

    @staticmethod
    def _new(campaign_id: int, ticket_id: int, source: str, due: datetime) -> Revisit:
        return Revisit(campaign_id=campaign_id, ticket_id=ticket_id, source=source,
                       state=RS.PENDING, due_at=due, attempts=0, created_at=due)

    async def opt_out(self, ticket_id: int, user_id: int | None) -> None:
        """No call about this order any more; a pending revisit is canceled."""
        async with self.sessionmaker() as session, session.begin():
            if await session.get(Ticket, ticket_id) is None:
                raise RevisitNotFound(f"no ticket {ticket_id}")
            if await session.get(RevisitOptOut, ticket_id) is None:
                session.add(RevisitOptOut(ticket_id=ticket_id, by=user_id, at=self.now()))
            await session.execute(update(Revisit).where(
                Revisit.ticket_id == ticket_id, Revisit.state == RS.PENDING)
                .values(state=RS.CANCELED, result="opted_out", finished_at=self.now()))

    async def add_do_not_call(self, phone: str, note: str | None, user_id: int | None
                              ) -> DoNotCall:
        number = dialable(phone)
        if number is None:
            raise InvalidInput("not a phone number", field="phone")
        async with self.sessionmaker(expire_on_commit=False) as session, session.begin():
            row = await session.scalar(select(DoNotCall).where(DoNotCall.phone == number))
            if row is None:
                row = DoNotCall(phone=number, note=note, added_by=user_id, at=self.now())
                session.add(row)
        return row

    async def remove_do_not_call(self, entry_id: int) -> None:
        async with self.sessionmaker() as session, session.begin():
            row = await session.get(DoNotCall, entry_id)
            if row is None:
                raise RevisitNotFound(f"no do-not-call entry {entry_id}")
            await session.delete(row)

    async def do_not_call(self) -> list[DoNotCall]:
        async with self.sessionmaker() as session:
            return list((await session.scalars(select(DoNotCall).order_by(DoNotCall.id))).all())

    # --- claiming and dialing -------------------------------------------------------------

    async def claim(self, campaign_id: int, want: int, ended: Iterable[str] = ()
                    ) -> list[Dial]:
        """Up to ``want`` due revisits, never more than the campaign's free lines, each with
        its attempt stored (``dialing``, its ChannelId) before anything is sent.

        The claim starts by bumping the campaign's ``claim_seq``: on PostgreSQL that row lock
        serialises claimers (and rows are taken ``FOR UPDATE SKIP LOCKED``); on SQLite the
        write takes the single writer's lock first. The new value fences the claim.
        ``ended``: channel ids the dialer heard end; their lines are freed first, in the
        same transaction, so a line is refilled without waiting for its call's result.
        Claim and attempt are one transaction, so a freed line costs one round of writes
        before its next Originate. A dialer that dies before sending it leaves a
        ``dialing`` attempt that the reconciliation counts as ``lost``: nobody can tell
        whether the phone rang, so the attempt is not given back."""
        now = self.now()
        async with self.sessionmaker() as session, session.begin():
            await self._end_lines(session, ended, now)
            row = (await session.execute(update(RevisitCampaign).where(
                RevisitCampaign.id == campaign_id, RevisitCampaign.paused.is_(False))
                .values(claim_seq=RevisitCampaign.claim_seq + 1)
                .returning(RevisitCampaign.claim_seq, RevisitCampaign.settings))).first()
            if row is None:
                return []
            token, settings = row[0], CampaignSettings(**row[1])
            free = min(want, settings.max_lines - await self._busy_lines(session, campaign_id))
            if free <= 0:
                return []
            revisits = list((await session.scalars(select(Revisit).where(
                Revisit.campaign_id == campaign_id, Revisit.state == RS.PENDING,
                Revisit.due_at <= now).order_by(Revisit.due_at, Revisit.id).limit(free)
                .with_for_update(skip_locked=True))).all())
            return await self._start_attempts(session, revisits, token, settings, now)

    async def _start_attempts(self, session: AsyncSession, revisits: list[Revisit],
                              token: int, settings: CampaignSettings, now: datetime
                              ) -> list[Dial]:
        """Each revisit's next attempt, or its end when the citizen may not be called."""
        if not revisits:
            return []
        tickets = {t.id: t for t in (await session.scalars(select(Ticket).where(
            Ticket.id.in_([r.ticket_id for r in revisits])))).all()}
        opted_out = set((await session.scalars(select(RevisitOptOut.ticket_id).where(
            RevisitOptOut.ticket_id.in_(tickets)))).all())
        numbers = {tid: dialable(t.caller_phone) for tid, t in tickets.items()}
        barred = set((await session.scalars(select(DoNotCall.phone).where(
            DoNotCall.phone.in_([n for n in numbers.values() if n])))).all())
        dials = []
        for revisit in revisits:
            ticket, number = tickets[revisit.ticket_id], numbers[revisit.ticket_id]
            why = _not_callable(ticket, number, ticket.id in opted_out, number in barred)
            if why is not None:
                revisit.state, revisit.result, revisit.finished_at = RS.CANCELED, why, now
                log.info("revisit.not_called revisit=%s reason=%s", revisit.id, why)
                continue
            assert number is not None
            revisit.attempts += 1
            revisit.state, revisit.lease_token = RS.DIALING, token
            revisit.lease_until = self._lease(now)
            channel_id = f"{CHANNEL_PREFIX}{revisit.id}-{revisit.attempts}-{uuid.uuid4().hex[:8]}"
            session.add(RevisitAttempt(revisit_id=revisit.id, number=revisit.attempts,
                                       channel_id=channel_id, outcome="dialing",
                                       started_at=now))
            dials.append(Dial(revisit.id, token, revisit.attempts, channel_id, number,
                              settings))
        return dials

    @staticmethod
    async def _busy_lines(session: AsyncSession, campaign_id: int) -> int:
        return await session.scalar(busy_lines(campaign_id)) or 0

    @staticmethod
    async def _end_lines(session: AsyncSession, channel_ids: Iterable[str], now: datetime
                         ) -> None:
        """These calls are over (heard by the dialer): their lines no longer count."""
        ids = list(channel_ids)
        if ids:
            await session.execute(update(RevisitAttempt).where(
                RevisitAttempt.channel_id.in_(ids), RevisitAttempt.ended_at.is_(None))
                .values(ended_at=now))

    def _lease(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.config.lease_seconds)

    async def renew(self, held: Iterable[tuple[int, int]]) -> None:
        """The dialer is alive: its claims stay its own."""
        until = self._lease(self.now())
        by_token: dict[int, list[int]] = {}
        for revisit_id, token in held:
            by_token.setdefault(token, []).append(revisit_id)
        async with self.sessionmaker() as session, session.begin():
            for token, ids in by_token.items():
                await session.execute(update(Revisit).where(
                    Revisit.id.in_(ids), Revisit.lease_token == token,
                    Revisit.state.in_(LIVE_STATES)).values(lease_until=until))

    async def dial_outcome(self, channel_id: str, token: int, outcome: str,
                           reason: int | None = None) -> str | None:
        """The Originate's result. Answered: the survey runs. Otherwise the attempt ends and
        the revisit waits for its retry, or ends unreachable after the last attempt.
        Returns the revisit's state afterwards (None if the claim was lost)."""
        now = self.now()

        async def tx() -> tuple[str | None, int | None]:
            async with self.sessionmaker() as session, session.begin():
                attempt, revisit = await self._by_channel(session, channel_id)
                if attempt is None or revisit is None or revisit.lease_token != token:
                    return None, None
                if attempt.outcome == "dialing":
                    attempt.outcome, attempt.reason = outcome, reason
                if outcome == "answered":
                    if revisit.state == RS.DIALING:
                        revisit.state = RS.ANSWERED
                    revisit.last_outcome = outcome
                    return revisit.state, None
                attempt.ended_at = now
                finish = await self._after_unanswered(session, revisit, outcome, now)
                return revisit.state, finish

        state, finish = await retrying(tx)
        if finish is not None:
            await self.finalize(finish)
        return state

    async def _after_unanswered(self, session: AsyncSession, revisit: Revisit, outcome: str,
                                now: datetime) -> int | None:
        revisit.last_outcome = outcome
        if revisit.state in (RS.DONE, RS.CANCELED, RS.FINISHING):
            return None
        if revisit.score is not None:  # keys were pressed: that is the result
            return revisit.id
        settings = await self._settings(session, revisit)
        if revisit.attempts >= settings.max_attempts:
            revisit.result = RevisitResult.UNREACHABLE
            await self._queue_text(session, revisit, settings, now)
            return revisit.id
        delay = {"busy": settings.retry_busy_seconds,
                 "no_answer": settings.retry_no_answer_seconds}.get(
            outcome, settings.retry_failed_seconds)
        revisit.state, revisit.due_at = RS.PENDING, now + timedelta(seconds=delay)
        revisit.lease_token, revisit.lease_until = None, None
        log.info("revisit.retry revisit=%s outcome=%s due=%s", revisit.id, outcome,
                 revisit.due_at.isoformat())
        return None

    @staticmethod
    async def _settings(session: AsyncSession, revisit: Revisit) -> CampaignSettings:
        raw = await session.scalar(select(RevisitCampaign.settings).where(
            RevisitCampaign.id == revisit.campaign_id))
        return CampaignSettings(**raw)

    @staticmethod
    async def _by_channel(session: AsyncSession, channel_id: str
                          ) -> tuple[RevisitAttempt | None, Revisit | None]:
        attempt = await session.scalar(select(RevisitAttempt).where(
            RevisitAttempt.channel_id == channel_id).with_for_update())
        if attempt is None:
            return None, None
        return attempt, await session.get(Revisit, attempt.revisit_id, with_for_update=True)

    # --- the survey -----------------------------------------------------------------------

    async def survey_subject(self, channel_id: str) -> Subject | None:
        """The order's topic label and the campaign's scale for the call on
        ``channel_id``: no names, no addresses, no numbers are read out."""
        async with self.sessionmaker() as session:
            attempt, revisit = await self._by_channel(session, channel_id)
            if revisit is None:
                return None
            ticket = await session.get(Ticket, revisit.ticket_id)
            settings = await self._settings(session, revisit)
        return Subject(revisit.id, self._topic_label(ticket), settings.scale)

    def _topic_label(self, ticket: Ticket | None) -> str:
        topic = self.tickets.taxonomy.topics.get(ticket.topic or "") if ticket else None
        return topic.label if topic is not None else ""

    async def store_answer(self, channel_id: str, *, score: str | None = None,
                           stars: int | None = None, solved: bool | None = None,
                           comment_file: str | None = None) -> None:
        """A key as soon as it is pressed: a crash right after it loses nothing. Stars
        are kept with the result code they map to (``score``)."""
        async def tx() -> None:
            async with self.sessionmaker() as session, session.begin():
                _, revisit = await self._by_channel(session, channel_id)
                if revisit is None or revisit.state in (RS.DONE, RS.CANCELED, RS.FINISHING):
                    return
                if score is not None:
                    revisit.score = score
                if stars is not None:
                    revisit.stars = stars
                    revisit.score = star_score(await self._settings(session, revisit), stars)
                if solved is not None:
                    revisit.solved = solved
                if comment_file is not None:
                    revisit.comment_file = comment_file

        await retrying(tx)

    async def call_ended(self, channel_id: str, *, hung_up: bool = False) -> None:
        """The answered call is over: the survey ended, or (``hung_up``) the channel is
        gone, which also frees its line."""
        async def tx() -> int | None:
            async with self.sessionmaker() as session, session.begin():
                attempt, revisit = await self._by_channel(session, channel_id)
                if attempt is None or revisit is None:
                    return None
                if hung_up:
                    attempt.ended_at = attempt.ended_at or self.now()
                if attempt.outcome != "answered":
                    return None  # an unanswered call ends with its Originate result
                if revisit.state in (RS.DONE, RS.CANCELED, RS.FINISHING):
                    return None
                if revisit.score is not None:
                    return revisit.id
                # answered, but nothing pressed: try again like an unanswered call
                return await self._after_unanswered(session, revisit, "dropped", self.now())

        revisit_id = await retrying(tx)
        if revisit_id is not None:
            await self.finalize(revisit_id)

    # --- results on the ticket ------------------------------------------------------------

    async def finalize(self, revisit_id: int) -> None:
        """Write the result on the ticket (once: a repeat after a crash finds it written),
        then mark the revisit done. Satisfied and solved: archived; unsatisfied or not
        solved: left revisited for the office's review with the comment recording."""
        lock = self._finishing.setdefault(revisit_id, asyncio.Lock())
        try:
            async with lock:
                await self._finalize(revisit_id)
        finally:
            if not lock.locked():
                self._finishing.pop(revisit_id, None)

    async def _finalize(self, revisit_id: int) -> None:
        now = self.now()

        async def take() -> int:
            async with self.sessionmaker() as session, session.begin():
                # one finisher across processes: a compare-and-set on the row (a finisher
                # that died is taken over once its lease is over)
                return (await session.execute(update(Revisit).where(
                    Revisit.id == revisit_id,
                    Revisit.state.notin_([RS.DONE, RS.CANCELED, RS.FINISHING])
                    | ((Revisit.state == RS.FINISHING) & (Revisit.lease_until < now)))
                    .values(state=RS.FINISHING, lease_until=self._lease(now)))).rowcount

        if not await retrying(take):
            return
        async with self.sessionmaker() as session:
            revisit = await session.get(Revisit, revisit_id)
            assert revisit is not None
            channel_id = await session.scalar(select(RevisitAttempt.channel_id).where(
                RevisitAttempt.revisit_id == revisit_id).order_by(RevisitAttempt.id.desc()))
            texted = await session.scalar(select(RevisitMessage.id).where(
                RevisitMessage.revisit_id == revisit_id))
        result = SCORES.get(revisit.score or "") or revisit.result or RevisitResult.UNREACHABLE
        result = RevisitResult(result)
        comment = None if revisit.solved is not False else "citizen: problem not solved"
        if result == RevisitResult.UNREACHABLE and texted is not None:
            comment = TEXT_QUEUED  # the order shows it; a reply records a new result
        call = None
        if channel_id and result != RevisitResult.UNREACHABLE:
            ref = revisit.comment_file
            call = CallLinkIn(linkedid=channel_id, recording_ref=ref)
        data = RevisitIn(result=result, comment=comment, call=call,
                         attempts=max(1, revisit.attempts), stars=revisit.stars)
        await self._write_result(revisit_id, revisit.ticket_id, data, revisit.solved)

        async def done() -> None:
            async with self.sessionmaker() as session, session.begin():
                await session.execute(update(Revisit).where(
                    Revisit.id == revisit_id, Revisit.state.notin_([RS.DONE, RS.CANCELED]))
                    .values(state=RS.DONE, result=str(result), finished_at=self.now(),
                            lease_token=None, lease_until=None))

        await retrying(done)
        log.info("revisit.done revisit=%s result=%s", revisit_id, result)

    async def _write_result(self, revisit_id: int, ticket_id: int, data: RevisitIn,
                            solved: bool | None) -> bool:
        """The result on the ticket, then the archive when satisfied and solved. A repeat
        after a crash, or an order that moved on, is refused by the ticket and logged.
        Returns whether the ticket took the result."""
        principal = await self.system_principal()
        written = True
        try:
            await retrying(lambda: self.tickets.record_revisit(principal, ticket_id, data))
        except (IllegalTransition, RuleViolation) as exc:
            written = False
            log.info("revisit.ticket_not_updated revisit=%s reason=%s", revisit_id, exc)
        if data.result in (RevisitResult.SATISFIED, RevisitResult.BASICALLY_SATISFIED) \
                and solved is not False:
            try:
                await retrying(lambda: self.tickets.archive(principal, ticket_id))
            except (IllegalTransition, RuleViolation) as exc:  # archived before a crash
                log.info("revisit.not_archived revisit=%s reason=%s", revisit_id, exc)
        return written

    async def system_principal(self) -> Principal:
        """The dialer acts as an office user that cannot log in (inactive, no password)."""
        if self._system is not None:
            return self._system
        for _ in range(2):  # another process may create it at the same moment
            try:
                async with self.sessionmaker() as session, session.begin():
                    user = await session.scalar(select(User).where(
                        User.username == SYSTEM_USER))
                    if user is None:
                        now = self.now()
                        user = User(username=SYSTEM_USER, display_name="回访外呼",
                                    password_hash="!", role=str(Role.SUPERVISOR), active=False,
                                    created_at=now, password_changed_at=now)
                        session.add(user)
                        await session.flush()
                    self._system = Principal(user.id, SYSTEM_USER, Role.SUPERVISOR, None)
                    return self._system
            except IntegrityError:
                continue
        raise RuntimeError("could not create the revisit dialer's user")

    # --- the text-message survey ----------------------------------------------------------

    async def _queue_text(self, session: AsyncSession, revisit: Revisit,
                          settings: CampaignSettings, now: datetime) -> None:
        """The text survey, in the transaction that makes the revisit unreachable: a crash
        loses neither. Once per revisit, and only to a number that can take a text."""
        config = self.config.messages
        if not config.enabled or await session.scalar(select(RevisitMessage.id).where(
                RevisitMessage.revisit_id == revisit.id)) is not None:
            return
        ticket = await session.get(Ticket, revisit.ticket_id)
        number = dialable(ticket.caller_phone) if ticket is not None else None
        if number is None or not re.fullmatch(config.mobile_pattern, number):
            log.info("revisit.no_text revisit=%s reason=not_mobile", revisit.id)
            return
        session.add(RevisitMessage(
            revisit_id=revisit.id, ticket_id=revisit.ticket_id, phone=number,
            scale=settings.scale, body=compose(config.hotline, self._topic_label(ticket),
                                               settings),
            state=MessageState.QUEUED, tries=0, next_at=now, created_at=now))
        log.info("revisit.text_queued revisit=%s", revisit.id)

    async def claim_messages(self, limit: int) -> list[TextClaim]:
        """Due messages for this sender, each taken by a compare-and-set that gives it a
        new token (rows ``SKIP LOCKED`` on PostgreSQL): two senders never hold one. A
        message is due once its revisit's unreachable result is on the ticket, and again
        when a sender that held it stopped renewing (its lease is over)."""
        now = self.now()
        due = or_((RevisitMessage.state == MessageState.QUEUED) & (RevisitMessage.next_at <= now),
                  (RevisitMessage.state == MessageState.SENDING)
                  & (RevisitMessage.lease_until < now))
        until = now + timedelta(seconds=self.config.messages.lease_seconds)

        async def tx() -> list[TextClaim]:
            async with self.sessionmaker() as session, session.begin():
                ids = (await session.scalars(select(RevisitMessage.id).join(
                    Revisit, Revisit.id == RevisitMessage.revisit_id).where(
                    due, Revisit.state == RS.DONE).order_by(
                    RevisitMessage.next_at, RevisitMessage.id).limit(limit)
                    .with_for_update(skip_locked=True, of=RevisitMessage))).all()
                claims = []
                for message_id in ids:
                    row = (await session.execute(update(RevisitMessage).where(
                        RevisitMessage.id == message_id, due).values(
                        state=MessageState.SENDING, tries=RevisitMessage.tries + 1,
                        lease_token=func.coalesce(RevisitMessage.lease_token, 0) + 1,
                        lease_until=until).returning(
                        RevisitMessage.lease_token, RevisitMessage.tries, RevisitMessage.phone,
                        RevisitMessage.body))).first()
                    if row is not None:
                        claims.append(TextClaim(message_id, *row))
                return claims

        return await retrying(tx)

    async def message_sent(self, claim: TextClaim) -> bool:
        """Handed over: never sent again. False when the claim was lost meanwhile."""
        async def tx() -> int:
            async with self.sessionmaker() as session, session.begin():
                return (await session.execute(update(RevisitMessage).where(
                    *self._held(claim)).values(
                    state=MessageState.SENT, sent_at=self.now(), lease_until=None,
                    last_error=None))).rowcount

        sent = await retrying(tx) == 1
        log.info("revisit.text_sent message=%s try=%d held=%s", claim.message_id, claim.tries,
                 sent)
        return sent

    async def message_failed(self, claim: TextClaim, error: str) -> None:
        """Tried again after a doubling wait; after ``max_tries`` it stays failed, with its
        error, for the office."""
        config = self.config.messages
        final = claim.tries >= config.max_tries
        wait = min(config.retry_max_seconds, config.retry_seconds * 2 ** (claim.tries - 1))

        async def tx() -> None:
            async with self.sessionmaker() as session, session.begin():
                await session.execute(update(RevisitMessage).where(*self._held(claim)).values(
                    state=MessageState.FAILED if final else MessageState.QUEUED,
                    next_at=self.now() + timedelta(seconds=wait), lease_until=None,
                    last_error=error[:2000]))

        await retrying(tx)
        log.warning("revisit.text_failed message=%s try=%d final=%s error=%s",
                    claim.message_id, claim.tries, final, error)

    @staticmethod
    def _held(claim: TextClaim) -> tuple[Any, ...]:
        return (RevisitMessage.id == claim.message_id,
                RevisitMessage.lease_token == claim.token,
                RevisitMessage.state == MessageState.SENDING)

    async def messages(self, ticket_id: int | None = None, state: str | None = None,
                       limit: int = 100) -> list[RevisitMessage]:
        """The newest messages first, to see what is pending, failed or answered."""
        query = select(RevisitMessage).order_by(RevisitMessage.id.desc()).limit(limit)
        if ticket_id is not None:
            query = query.where(RevisitMessage.ticket_id == ticket_id)
        if state is not None:
            query = query.where(RevisitMessage.state == state)
        async with self.sessionmaker() as session:
            return list((await session.scalars(query)).all())

    async def record_text_reply(self, message_id: int, reply: str) -> RevisitMessage:
        """The citizen's reply to the text survey: stored with the revisit's new result,
        then written on the ticket like a keypad answer. The same reply again (a gateway
        retrying) changes nothing; a different one is refused."""
        key = unicodedata.normalize("NFKC", reply).strip()
        now = self.now()

        async def tx() -> tuple[RevisitMessage, bool]:
            async with self.sessionmaker(expire_on_commit=False) as session, session.begin():
                message = await session.get(RevisitMessage, message_id, with_for_update=True)
                if message is None:
                    raise MessageNotFound(f"no revisit message {message_id}")
                allowed = REPLIES[message.scale]
                if len(key) != 1 or key not in allowed:
                    raise InvalidInput(f"reply with one of {', '.join(allowed)}; got "
                                       f"{reply[:20]!r}", field="reply")
                if message.reply is not None:
                    if message.reply != key:
                        raise MessageAlreadyReplied(f"message {message_id} was answered "
                                                    f"{message.reply!r}")
                    return message, False
                revisit = await session.get(Revisit, message.revisit_id, with_for_update=True)
                assert revisit is not None
                if message.scale == "stars" and key != "0":
                    revisit.stars = int(key)
                    revisit.score = star_score(await self._settings(session, revisit), int(key))
                else:
                    revisit.score = key
                revisit.result = str(SCORES[revisit.score])
                message.reply, message.replied_at = key, now
                return message, True

        message, new = await retrying(tx)
        if new:
            log.info("revisit.text_reply message=%s", message_id)
            await self._record_reply(message)
        return message

    async def record_pending_replies(self) -> int:
        """Replies stored before a crash kept them off the ticket."""
        async with self.sessionmaker(expire_on_commit=False) as session:
            pending = list((await session.scalars(select(RevisitMessage).where(
                RevisitMessage.replied_at.is_not(None),
                RevisitMessage.recorded_at.is_(None)))).all())
        for message in pending:
            await self._record_reply(message)
        return len(pending)

    async def _record_reply(self, message: RevisitMessage) -> None:
        async with self.sessionmaker() as session:
            revisit = await session.get(Revisit, message.revisit_id)
        assert revisit is not None and revisit.result is not None
        data = RevisitIn(result=RevisitResult(revisit.result), comment=TEXT_REPLY,
                         attempts=max(1, revisit.attempts), stars=revisit.stars)
        await self._write_result(revisit.id, message.ticket_id, data, revisit.solved)

        async def tx() -> None:
            async with self.sessionmaker() as session, session.begin():
                await session.execute(update(RevisitMessage).where(
                    RevisitMessage.id == message.id, RevisitMessage.recorded_at.is_(None))
                    .values(recorded_at=self.now()))

        await retrying(tx)
        message.recorded_at = message.recorded_at or self.now()

    # --- recovery -------------------------------------------------------------------------

    async def expired(self) -> list[tuple[int, str | None, str]]:
        """Revisits whose dialer stopped renewing: (id, last channel id, state)."""
        now = self.now()
        async with self.sessionmaker() as session:
            rows = (await session.execute(select(Revisit.id, Revisit.state).where(
                Revisit.state.in_([*LIVE_STATES, RS.FINISHING]), Revisit.lease_until < now)
            )).all()
            out = []
            for revisit_id, state in rows:
                channel = await session.scalar(select(RevisitAttempt.channel_id).where(
                    RevisitAttempt.revisit_id == revisit_id).order_by(RevisitAttempt.id.desc()))
                out.append((revisit_id, channel, state))
        return out

    async def reconcile(self, expired: list[tuple[int, str | None, str]],
                        live_channels: set[str]) -> int:
        """Take over revisits of a dialer that is gone. A call Asterisk still has is left
        alone (its survey still writes); a claim never dialed goes back to pending; a
        call that is over becomes its result (keys pressed) or an attempt to retry."""
        handled = 0
        for revisit_id, channel, state in expired:
            if state == RS.FINISHING:  # its finisher died between the ticket and the row
                await self.finalize(revisit_id)
                handled += 1
                continue
            if channel is not None and channel in live_channels:
                continue
            async with self.sessionmaker() as session, session.begin():
                revisit = await session.get(Revisit, revisit_id, with_for_update=True)
                if revisit is None or revisit.state not in LIVE_STATES or \
                        revisit.lease_until is None or revisit.lease_until >= self.now():
                    continue
                if revisit.state == RS.CLAIMED:
                    revisit.state, revisit.lease_token, revisit.lease_until = \
                        RS.PENDING, None, None
                    handled += 1
                    continue
                token = await session.scalar(update(RevisitCampaign).where(
                    RevisitCampaign.id == revisit.campaign_id).values(
                    claim_seq=RevisitCampaign.claim_seq + 1).returning(RevisitCampaign.claim_seq))
                revisit.lease_token = token
                revisit.lease_until = self._lease(self.now())
            assert channel is not None
            async with self.sessionmaker() as session, session.begin():
                attempt, _ = await self._by_channel(session, channel)
                if attempt is not None and attempt.outcome == "dialing":
                    attempt.outcome = "lost"
            if state == RS.DIALING:
                assert token is not None
                await self.dial_outcome(channel, token, "lost")
            else:
                await self.call_ended(channel, hung_up=True)
            handled += 1
            log.info("revisit.reconciled revisit=%s channel=%s state=%s", revisit_id, channel,
                     state)
        return handled

    async def orphan_lines(self) -> list[str]:
        """Channel ids of calls still holding a line although no dialer holds their
        revisit (its dialer stopped before hearing the hang-up)."""
        async with self.sessionmaker() as session:
            return list((await session.scalars(select(RevisitAttempt.channel_id).join(
                Revisit, Revisit.id == RevisitAttempt.revisit_id).where(
                RevisitAttempt.ended_at.is_(None),
                Revisit.state.notin_(LIVE_STATES)))).all())

    async def free_lines(self, channel_ids: Iterable[str]) -> None:
        """These channels are gone: their lines are free."""
        ids = list(channel_ids)
        if not ids:
            return
        async with self.sessionmaker() as session, session.begin():
            await self._end_lines(session, ids, self.now())

    # --- progress -------------------------------------------------------------------------

    async def progress(self, campaign_id: int) -> Progress:
        async with self.sessionmaker() as session:
            rows = (await session.execute(select(Revisit.state, Revisit.result, func.count())
                                          .where(Revisit.campaign_id == campaign_id)
                                          .group_by(Revisit.state, Revisit.result))).all()
        counts: dict[str, int] = {}
        for state, result, n in rows:
            counts[state] = counts.get(state, 0) + n
            if result:
                counts[f"result:{result}"] = counts.get(f"result:{result}", 0) + n
        reached = sum(counts.get(f"result:{r}", 0) for r in
                      ("satisfied", "basically_satisfied", "unsatisfied", "declined"))
        return Progress(
            pending=counts.get(RS.PENDING, 0),
            dialing=sum(counts.get(s, 0) for s in LIVE_STATES),
            reached=reached,
            satisfied=counts.get("result:satisfied", 0)
            + counts.get("result:basically_satisfied", 0),
            unsatisfied=counts.get("result:unsatisfied", 0),
            unreachable=counts.get("result:unreachable", 0),
            declined=counts.get("result:declined", 0))
