"""The work-order service: every change to a ticket goes through here.

Each public method is one transaction: load the ticket (locked, and visible to the principal),
check the action against the state machine (``lifecycle.py``), change the rows, append one
``TicketEvent``. The HTTP layer and the benchmarks call these methods; nothing else writes
tickets. Deadlines come from the one working-day calendar (``calendar.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, true
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from callcenter.auth.models import Unit, User
from callcenter.auth.principal import Principal, Role
from callcenter.clock import Clock
from callcenter.knowledge.models import KnowledgeArticle
from callcenter.recordings.models import ContactAttempt
from callcenter.tickets import lifecycle
from callcenter.tickets.calendar import WorkingCalendar
from callcenter.tickets.config import Taxonomy, TicketsConfig, load_taxonomy
from callcenter.tickets.duplicates import rank_duplicate_candidates
from callcenter.tickets.errors import (
    ConcurrentUpdate,
    IllegalTransition,
    InvalidInput,
    NotAllowed,
    RuleViolation,
    TicketNotFound,
)
from callcenter.tickets.intake import DraftWriter
from callcenter.tickets.lifecycle import OPEN_AT_UNIT, Action
from callcenter.tickets.models import (
    AssignmentEnd,
    AssignmentRole,
    AssignmentState,
    Channel,
    ExtensionDecision,
    HandlingMode,
    RequesterKind,
    ReviewConclusion,
    RevisitResult,
    ReworkBasis,
    Ticket,
    TicketAssignment,
    TicketCall,
    TicketEvent,
    TicketExtension,
    TicketRevisit,
    TicketRework,
    TicketStatePeriod,
    TicketStatus,
    TicketTerms,
    TicketType,
    TicketWord,
)
from callcenter.tickets.numbering import TicketNumbers
from callcenter.tickets.schemas import (
    CallLinkIn,
    ContactIn,
    ContactOverrideIn,
    DirectAnswerIn,
    DispatchIn,
    DraftIn,
    DraftPatch,
    ExtensionDecisionIn,
    ExtensionIn,
    NotAcceptIn,
    ReleaseAssistingIn,
    ReplyIn,
    ReviewIn,
    RevisitIn,
    ReworkIn,
    SearchQuery,
    SilentAssistingIn,
)
from callcenter.tickets.search import encode_cursor, search_statement, unit_counts_statement
from callcenter.tickets.similarity import TextFeatures, features_and_words
from callcenter.tickets.terms import ticket_text

log = logging.getLogger(__name__)

S = TicketStatus
CONTACT_OVERRIDE = "contact_override"
"""Timeline action of a supervisor's override of the closing rule (with its reason)."""
DRAFT_FIELDS = ("channel", "anonymous", "no_contact", "requester_kind", "company_name", "public",
                "ticket_type", "topic", "title", "content", "location", "external_number",
                "order_level", "complained_party", "urgency")
# Orders handed over by another platform carry that platform's order number.
EXTERNAL_CHANNELS = frozenset({Channel.PROVINCIAL_PLATFORM, Channel.NATIONAL_PLATFORM})
# Complaints and reports answered at once need a standard answer or a supervisor.
SENSITIVE_TYPES = frozenset({TicketType.COMPLAINT, TicketType.REPORT})
# Revisit results that end the office's follow-up without the citizen's rating.
NO_RATING = frozenset({RevisitResult.UNREACHABLE, RevisitResult.DECLINED})


@dataclass
class Loaded:
    """A ticket as one principal acts on it: with that principal's unit assignment, if any."""

    ticket: Ticket
    assignment: TicketAssignment | None
    period: TicketStatePeriod | None = None  # the open state period (actions only)


@dataclass
class SearchResult:
    tickets: list[Ticket]
    next_cursor: str | None


class TicketService:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], clock: Clock,
                 config: TicketsConfig, taxonomy: Taxonomy, calendar: WorkingCalendar) -> None:
        self.sessionmaker = sessionmaker
        self.clock = clock
        self.config = config
        self.taxonomy = taxonomy
        self.calendar = calendar
        self.numbers = TicketNumbers(sessionmaker, calendar, config.number_block)
        self.drafts = DraftWriter(sessionmaker)

    @classmethod
    def from_config(cls, sessionmaker: async_sessionmaker[AsyncSession], clock: Clock,
                    config: TicketsConfig) -> TicketService:
        """The service on the taxonomy and working-day calendar ``config`` names (a bad
        taxonomy file raises ``ConfigError`` naming the file and key)."""
        calendar = WorkingCalendar(config.timezone, config.calendar_dir)
        return cls(sessionmaker, clock, config, load_taxonomy(config.taxonomy_path), calendar)

    # --- intake --------------------------------------------------------------------------

    async def create_draft(self, principal: Principal, data: DraftIn) -> Ticket:
        """A new draft, its first timeline entry and its intake calls, atomically.

        Intake is the hot path of the service (a large city: tens of thousands of orders a
        day, in bursts): the rows go through ``DraftWriter``, which writes the drafts of
        concurrent callers in one transaction.
        """
        lifecycle.authorize(Action.CREATE, principal.role)
        fields = {name: getattr(data, name) for name in DRAFT_FIELDS}
        fields["topic"] = self._topic(data.topic)
        self._check_urgency(data.urgency)
        now = self._now()
        number = await self.numbers.next(now)
        values = dict(self._NEW_TICKET, number=number, status=S.DRAFT,
                      created_by=principal.user_id, created_at=now, updated_at=now,
                      caller_name=data.caller.name, caller_phone=data.caller.phone,
                      caller_address=data.caller.address, **fields)
        event = self._event_values(None, principal, Action.CREATE, None, S.DRAFT, now)
        calls = [dict(linkedid=c.linkedid, purpose="intake", recording_ref=c.recording_ref,
                      linked_at=now) for c in _first_of_each_call(data.calls)]
        ticket = Ticket(id=await self.drafts.write(values, event, calls), **values)
        log.info("ticket_created id=%s number=%s user=%s", ticket.id, number,
                 principal.user_id)
        return ticket

    # Column defaults of a new ticket, written explicitly so no reload is needed.
    _NEW_TICKET: dict[str, Any] = dict(extension_days=0, dispatch_count=0, return_count=0,
                                       rework_count=0, duplicate_count=0, version=1,
                                       deadline_provisional=False)

    async def update_draft(self, principal: Principal, ticket_id: int, data: DraftPatch
                           ) -> Ticket:
        changes = data.model_dump(exclude_unset=True)
        if "topic" in changes:
            changes["topic"] = self._topic(changes["topic"])
        if "urgency" in changes:
            self._check_urgency(changes["urgency"])
        async with self._tx() as session:
            loaded = await self._load(session, principal, ticket_id, Action.UPDATE)
            ticket, now = loaded.ticket, self._now()
            for name in DRAFT_FIELDS:
                if name in changes:
                    setattr(ticket, name, changes[name])
            if data.caller is not None:
                ticket.caller_name = data.caller.name
                ticket.caller_phone = data.caller.phone
                ticket.caller_address = data.caller.address
            if data.calls:
                await self._link_calls(session, ticket, data.calls, "intake", now)
            self._event(session, ticket, principal, Action.UPDATE, S.DRAFT, S.DRAFT, now,
                        data={"fields": sorted(changes)})
        return ticket

    async def register(self, principal: Principal, ticket_id: int
                       ) -> tuple[Ticket, list[Ticket]]:
        """登记: the draft becomes an order; returns it with possible duplicates to confirm."""
        async with self._tx() as session:
            loaded = await self._load(session, principal, ticket_id, Action.REGISTER)
            ticket, now = loaded.ticket, self._now()
            if not ticket.content.strip():
                raise InvalidInput("an order needs its content before registration",
                                   field="content")
            if ticket.requester_kind == RequesterKind.COMPANY and not ticket.company_name:
                raise InvalidInput("a company request needs the company name",
                                   field="company_name")
            if ticket.channel in EXTERNAL_CHANNELS and not ticket.external_number:
                raise InvalidInput(f"an order from the {ticket.channel} needs its order "
                                   "number there", field="external_number")
            self._move(session, loaded, principal, Action.REGISTER, now)
            ticket.registered_at = now
            found = await self._index_text(session, ticket)
            candidates = await self._duplicate_candidates(session, ticket, found, now)
        return ticket, candidates

    @staticmethod
    async def _index_text(session: AsyncSession, ticket: Ticket) -> TextFeatures:
        """Segment the order's text once, now that it is fixed: its search words (ticket
        search) and its term vector (duplicates and hotspots read it, never re-segment)."""
        found, words = features_and_words(ticket_text(ticket.title, ticket.content))
        session.add(TicketTerms(ticket_id=ticket.id, terms=found.vector,
                                places=sorted(found.places)))
        if words:
            await session.execute(insert(TicketWord), [
                {"term": w, "ticket_created_at": ticket.created_at, "ticket_id": ticket.id}
                for w in sorted(words)])
        return found

    async def _duplicate_candidates(self, session: AsyncSession, ticket: Ticket,
                                    found: TextFeatures, now: datetime) -> list[Ticket]:
        ranked = await rank_duplicate_candidates(
            session, caller_phone=ticket.caller_phone, content=ticket.content,
            topic=ticket.topic, at=now, window_days=self.config.duplicate_window_days,
            features_of_content=found)
        return [c.ticket for c in ranked if c.ticket.id != ticket.id]

    async def link_duplicate(self, principal: Principal, ticket_id: int, duplicate_of: int
                             ) -> Ticket:
        """Merge this order into an earlier one about the same matter (合并重复件)."""
        async with self._tx() as session:
            loaded = await self._load(session, principal, ticket_id, Action.LINK_DUPLICATE)
            ticket, now = loaded.ticket, self._now()
            original = await self._original_of(session, duplicate_of)
            if original is None or original.id == ticket.id:
                raise InvalidInput("no such earlier order", field="duplicate_of")
            ticket.duplicate_of_id = original.id
            original.duplicate_count += 1
            original.updated_at = now
            self._move(session, loaded, principal, Action.LINK_DUPLICATE, now,
                       data={"duplicate_of": original.id})
            self._event(session, original, principal, "duplicate_linked", original.status,
                        original.status, now, data={"ticket_id": ticket.id})
        return ticket

    async def _original_of(self, session: AsyncSession, ticket_id: int) -> Ticket | None:
        """Follow merges to the order that is really being handled."""
        seen: set[int] = set()
        ticket = await session.get(Ticket, ticket_id, with_for_update=True)
        while ticket is not None and ticket.duplicate_of_id and ticket.id not in seen:
            seen.add(ticket.id)
            ticket = await session.get(Ticket, ticket.duplicate_of_id, with_for_update=True)
        if ticket is None or ticket.status == S.DRAFT:
            return None
        return ticket

    async def direct_answer(self, principal: Principal, ticket_id: int, data: DirectAnswerIn
                            ) -> Ticket:
        """直办: answered during the call from the knowledge base; closed at once."""
        async with self._tx() as session:
            loaded = await self._load(session, principal, ticket_id, Action.DIRECT_ANSWER)
            ticket, now = loaded.ticket, self._now()
            await self._check_article(session, data.article_id)
            approved_by = await self._direct_answer_approval(session, ticket, principal, data)
            ticket.handling_mode = HandlingMode.DIRECT
            ticket.knowledge_article_id = data.article_id
            ticket.direct_answer_approved_by = approved_by
            ticket.closed_at = now
            self._move(session, loaded, principal, Action.DIRECT_ANSWER, now,
                       data={"answer": data.answer, "article_id": data.article_id})
        return ticket

    @staticmethod
    async def _direct_answer_approval(session: AsyncSession, ticket: Ticket,
                                      principal: Principal, data: DirectAnswerIn
                                      ) -> int | None:
        """A complaint or report is answered at once only from a standard answer, or with a
        supervisor's approval: the supervisor answering, or one the agent names."""
        if ticket.ticket_type not in SENSITIVE_TYPES or data.article_id is not None:
            return None
        if data.approved_by is not None:
            approver = await session.get(User, data.approved_by)
            if (approver is None or not approver.active
                    or approver.role not in (Role.SUPERVISOR, Role.ADMIN)):
                raise InvalidInput(f"user {data.approved_by} is not an active supervisor",
                                   field="approved_by")
            return approver.id
        if principal.role in lifecycle.OFFICE:
            return principal.user_id
        raise InvalidInput(f"a {ticket.ticket_type} answered directly needs a knowledge "
                           "article or a supervisor's approval", field="article_id")

    @staticmethod
    async def _check_article(session: AsyncSession, article_id: int | None) -> None:
        """A direct answer cites a live knowledge-base article (知识库标准答案)."""
        if article_id is None:
            return
        article = await session.get(KnowledgeArticle, article_id)
        if article is None or not article.active:
            raise InvalidInput(f"no active knowledge article {article_id}", field="article_id")

    async def not_accept(self, principal: Principal, ticket_id: int, data: NotAcceptIn
                         ) -> Ticket:
        async with self._tx() as session:
            loaded = await self._load(session, principal, ticket_id, Action.NOT_ACCEPT)
            ticket, now = loaded.ticket, self._now()
            ticket.not_accepted_reason = data.reason
            ticket.closed_at = now
            self._move(session, loaded, principal, Action.NOT_ACCEPT, now,
                       reason=data.note, data={"reason": str(data.reason)})
        return ticket

    async def escalate(self, principal: Principal, ticket_id: int, reason: str) -> Ticket:
        """批办: the office cannot tell the responsible unit; a leader will name it."""
        async with self._tx() as session:
            loaded = await self._load(session, principal, ticket_id, Action.ESCALATE)
            loaded.ticket.handling_mode = HandlingMode.ESCALATED
            self._move(session, loaded, principal, Action.ESCALATE, self._now(),
                       reason=reason)
        return loaded.ticket

    # --- dispatch ------------------------------------------------------------------------

    async def dispatch(self, principal: Principal, ticket_id: int, data: DispatchIn) -> Ticket:
        """交办 (or the leader's 批办 decision, or a re-dispatch after a return/revisit)."""
        async with self._tx() as session:
            loaded = await self._load(session, principal, ticket_id, Action.DISPATCH)
            ticket, now = loaded.ticket, self._now()
            revisited = ticket.status == S.REVISITED
            if revisited and ticket.revisit_result != RevisitResult.UNSATISFIED:
                raise RuleViolation("only an unsatisfied revisit sends an order back to a unit")
            await self._check_units(session, data)
            await self._check_same_unit(session, ticket, data)
            await self._end_assignments(session, ticket, now, reason=AssignmentEnd.REDISPATCHED)
            escalation = ticket.status == S.ESCALATED
            ticket.handling_mode = data.mode
            provisional = self._set_deadlines(ticket, now)
            await self._assign(session, ticket, data, now)
            ticket.lead_unit_id = data.lead_unit_id
            ticket.dispatched_at = now
            ticket.dispatch_count += 1
            for name in ("accepted_at", "first_contact_at", "replied_at", "revisit_result",
                         "promised_completion_date", "plan_replied_at", "plan_on_time",
                         "review_reason"):
                setattr(ticket, name, None)
            ticket.review_conclusion = "redispatch" if revisited else None
            # A new unit starts with its own extension allowance; the old unit's days stay
            # on its assignment row.
            ticket.extension_days = 0
            self._move(session, loaded, principal, Action.DISPATCH, now, reason=data.note,
                       unit_id=data.lead_unit_id,
                       data={"mode": data.mode, "assisting_unit_ids": data.assisting_unit_ids,
                             "escalation_decision": escalation,
                             "reply_due_at": ticket.reply_due_at.isoformat(),
                             **provisional})
        return ticket

    async def _check_units(self, session: AsyncSession, data: DispatchIn) -> None:
        ids = [data.lead_unit_id, *data.assisting_unit_ids]
        rows = (await session.scalars(select(Unit).where(Unit.id.in_(ids)))).all()
        active = {u.id for u in rows if u.active}
        for field, unit_ids in (("lead_unit_id", [data.lead_unit_id]),
                                ("assisting_unit_ids", data.assisting_unit_ids)):
            missing = [i for i in unit_ids if i not in active]
            if missing:
                raise InvalidInput(f"no active unit {missing[0]}", field=field)

    async def _check_same_unit(self, session: AsyncSession, ticket: Ticket,
                               data: DispatchIn) -> None:
        """Sending an order back to the unit that just returned it (or just handled it)
        needs the office's reason: bouncing orders must be visible (seed 002)."""
        if ticket.status not in (S.RETURNED, S.REVISITED):
            return
        last = await session.scalar(select(TicketAssignment).where(
            TicketAssignment.ticket_id == ticket.id,
            TicketAssignment.role == AssignmentRole.LEAD).order_by(
                TicketAssignment.id.desc()).limit(1))
        if last is not None and last.unit_id == data.lead_unit_id and not data.note:
            raise InvalidInput(f"re-dispatching to unit {last.unit_id}, which held this order "
                               "last, needs the office's reason", field="note")

    async def _assign(self, session: AsyncSession, ticket: Ticket, data: DispatchIn,
                      now: datetime) -> None:
        """One assignment per unit, carrying the deadlines it was given (its history)."""
        roles = [(data.lead_unit_id, AssignmentRole.LEAD)]
        roles += [(u, AssignmentRole.ASSISTING) for u in data.assisting_unit_ids]
        for unit_id, role in roles:
            session.add(TicketAssignment(
                ticket_id=ticket.id, unit_id=unit_id, ticket_created_at=ticket.created_at,
                role=role, state=AssignmentState.DISPATCHED, active=True, dispatched_at=now,
                acceptance_due_at=ticket.acceptance_due_at,
                first_contact_due_at=ticket.first_contact_due_at,
                reply_due_at=ticket.reply_due_at, extension_days=0, rework_count=0))
        await session.flush()

    def _set_deadlines(self, ticket: Ticket, now: datetime) -> dict[str, Any]:
        """Acceptance, first-contact and reply deadlines of a dispatch at ``now``; returns
        the provisional-calendar marker for the timeline (empty when the calendar is sure)."""
        cal, cfg = self.calendar, self.config
        if cfg.acceptance.mode == "same_day":
            ticket.acceptance_due_at = cal.end_of_working_day(now)
        else:
            ticket.acceptance_due_at = cal.add_working_hours(
                now, cfg.acceptance.hours, cfg.office_day_start, cfg.office_day_end)
        ticket.first_contact_due_at = (self._first_contact_due(ticket, now)
                                       if cfg.first_contact.start == "dispatch" else None)
        provisional = self._set_reply_due(ticket, now)
        ticket.plan_due_at = (ticket.reply_due_at
                              if ticket.handling_mode == HandlingMode.PROMISED else None)
        return provisional

    def _first_contact_due(self, ticket: Ticket, start: datetime) -> datetime | None:
        """Working time from ``start``: never on a holiday. Anonymous callers have no
        number to call, so no first-contact deadline."""
        if ticket.anonymous:
            return None
        cal, cfg = self.calendar, self.config
        if cfg.first_contact.mode == "working_days":
            return cal.end_of_day(cal.add_workdays(cal.working_day_of(start),
                                                   cfg.first_contact.days))
        return cal.add_working_hours(start, cfg.first_contact.hours, cfg.office_day_start,
                                     cfg.office_day_end)

    def _set_reply_due(self, ticket: Ticket, start: datetime) -> dict[str, Any]:
        """The reply deadline counted from ``start``: hours on the clock for an urgent
        order, else the type's working days (kept with its basis for recomputation)."""
        hours = self.taxonomy.urgency.get(ticket.urgency)
        if hours is not None:
            ticket.reply_due_at = start + timedelta(hours=hours)
            ticket.reply_due_from, ticket.reply_due_workdays = None, None
            ticket.deadline_provisional = False
            return {}
        days = self._reply_days(ticket)
        ticket.reply_due_from, ticket.reply_due_workdays = start, days
        ticket.reply_due_at = self.calendar.working_days_deadline(start, days)
        provisional = self._provisional(start, ticket.reply_due_at)
        ticket.deadline_provisional = bool(provisional)
        return provisional

    def _provisional(self, start: datetime, due: datetime) -> dict[str, Any]:
        """``{"provisional_calendar": [years]}`` when a deadline was counted over a year
        that only has the provisional calendar (see ``calendar.py``), else ``{}``."""
        years = self.calendar.provisional_years(self.calendar.local_date(start),
                                                self.calendar.local_date(due))
        if not years:
            return {}
        log.warning("deadline_provisional ticket_due=%s years=%s", due.isoformat(), years)
        return {"provisional_calendar": years}

    def _reply_days(self, ticket: Ticket) -> int:
        company = ticket.requester_kind == RequesterKind.COMPANY
        return self.taxonomy.working_days_for(ticket.ticket_type, company=company)

    async def _end_assignments(self, session: AsyncSession, ticket: Ticket, now: datetime,
                               only: TicketAssignment | None = None, *,
                               reason: AssignmentEnd, note: str | None = None) -> None:
        ended = [only] if only is not None else await self._active_assignments(session,
                                                                                ticket.id)
        for assignment in ended:
            assignment.active, assignment.ended_at = False, now
            assignment.end_reason, assignment.end_note = reason, note

    async def _active_assignments(self, session: AsyncSession, ticket_id: int
                                  ) -> Sequence[TicketAssignment]:
        query = select(TicketAssignment).where(TicketAssignment.ticket_id == ticket_id,
                                               TicketAssignment.active == true())
        return (await session.scalars(query.order_by(TicketAssignment.id))).all()

    # --- the unit's work -----------------------------------------------------------------

    async def accept(self, principal: Principal, ticket_id: int) -> Ticket:
        async with self._tx() as session:
            loaded = await self._load(session, principal, ticket_id, Action.ACCEPT)
            ticket, assignment, now = loaded.ticket, loaded.assignment, self._now()
            assert assignment is not None
            if assignment.state != AssignmentState.DISPATCHED:
                raise IllegalTransition("accept", f"already {assignment.state} by this unit")
            assignment.state, assignment.accepted_at = AssignmentState.ACCEPTED, now
            due = assignment.acceptance_due_at
            on_time = due is None or now <= due
            assignment.accepted_on_time = on_time
            if self.config.first_contact.start == "acceptance":
                assignment.first_contact_due_at = self._first_contact_due(ticket, now)
            if self._is_lead(assignment):
                ticket.accepted_at = now
                ticket.first_contact_due_at = assignment.first_contact_due_at
            self._move(session, loaded, principal, Action.ACCEPT, now,
                       unit_id=assignment.unit_id, data={"on_time": on_time})
        return ticket

    async def start(self, principal: Principal, ticket_id: int) -> Ticket:
        async with self._tx() as session:
            loaded = await self._load(session, principal, ticket_id, Action.START)
            assert loaded.assignment is not None
            loaded.assignment.state = AssignmentState.IN_PROGRESS
            self._move(session, loaded, principal, Action.START, self._now(),
                       unit_id=loaded.assignment.unit_id)
        return loaded.ticket

    async def return_order(self, principal: Principal, ticket_id: int, reason: str) -> Ticket:
        """退件: a unit that is not responsible sends the order back, the same working day."""
        async with self._tx() as session:
            loaded = await self._load(session, principal, ticket_id, Action.RETURN)
            ticket, assignment, now = loaded.ticket, loaded.assignment, self._now()
            assert assignment is not None
            if assignment.state not in (AssignmentState.DISPATCHED, AssignmentState.ACCEPTED):
                raise IllegalTransition("return", f"{assignment.state} by this unit")
            if not self.calendar.same_working_day(assignment.dispatched_at, now):
                day = self.calendar.working_day_of(assignment.dispatched_at)
                raise RuleViolation(f"an order can be returned only on the working day it "
                                    f"was dispatched ({day.isoformat()})")
            ticket.return_count += 1
            if self._is_lead(assignment):
                await self._end_assignments(session, ticket, now,
                                            reason=AssignmentEnd.RETURNED, note=reason)
                ticket.lead_unit_id = None
            else:
                await self._end_assignments(session, ticket, now, only=assignment,
                                            reason=AssignmentEnd.RETURNED, note=reason)
            self._move(session, loaded, principal, Action.RETURN, now, reason=reason,
                       unit_id=assignment.unit_id)
        return ticket

    async def record_contact(self, principal: Principal, ticket_id: int, data: ContactIn
                             ) -> Ticket:
        """首次联系: the unit reached the citizen (the call is linked as proof)."""
        async with self._tx() as session:
            loaded = await self._load(session, principal, ticket_id, Action.CONTACT)
            ticket, assignment, now = loaded.ticket, loaded.assignment, self._now()
            assert assignment is not None
            if data.call:
                await self._link_calls(session, ticket, [data.call], "contact", now)
            due = assignment.first_contact_due_at
            on_time = due is None or now <= due
            if assignment.first_contact_at is None:
                assignment.first_contact_at = now
                assignment.first_contact_on_time = on_time
            if ticket.first_contact_at is None:
                ticket.first_contact_at = now
            self._move(session, loaded, principal, Action.CONTACT, now, reason=data.note,
                       unit_id=assignment.unit_id, attachments=data.attachments,
                       data={"on_time": on_time,
                             "linkedid": data.call.linkedid if data.call else None})
        return ticket

    async def reply(self, principal: Principal, ticket_id: int, data: ReplyIn) -> Ticket:
        """回复: a plan (promised orders), an assisting unit's reply, or the final reply."""
        action = Action.REPLY_PLAN if data.kind == "plan" else Action.REPLY
        async with self._tx() as session:
            loaded = await self._load(session, principal, ticket_id, action)
            ticket, assignment, now = loaded.ticket, loaded.assignment, self._now()
            assert assignment is not None
            self._check_evidence(ticket, data)
            if data.call:
                await self._link_calls(session, ticket, [data.call], "contact", now)
            if ticket.first_contact_at is None and (data.call or data.attachments):
                ticket.first_contact_at = now
            if assignment.first_contact_at is None and (data.call or data.attachments):
                assignment.first_contact_at = now
                due = assignment.first_contact_due_at
                assignment.first_contact_on_time = due is None or now <= due
            if not self._is_lead(assignment):
                self._assisting_reply(session, loaded, principal, data, now)
            elif action is Action.REPLY_PLAN:
                self._plan_reply(session, loaded, principal, data, now)
            else:
                await self._final_reply(session, loaded, principal, data, now)
        return ticket

    def _check_evidence(self, ticket: Ticket, data: ReplyIn) -> None:
        """No fake closures: a reply shows how the citizen was contacted (seed 001)."""
        if ticket.anonymous or ticket.no_contact or data.kind == "plan":
            return
        if ticket.first_contact_at is None and not data.call and not data.attachments:
            raise InvalidInput("a reply needs proof of contact: a call record or attachments",
                               field="attachments")

    def _assisting_reply(self, session: AsyncSession, loaded: Loaded, principal: Principal,
                         data: ReplyIn, now: datetime) -> None:
        assignment = loaded.assignment
        assert assignment is not None
        if data.kind == "plan":
            raise RuleViolation("only the lead unit replies with a plan")
        if assignment.state == AssignmentState.DISPATCHED:
            raise IllegalTransition("reply", "not yet accepted by this unit")
        assignment.state, assignment.replied_at = AssignmentState.REPLIED, now
        assignment.reply = data.content
        self._move(session, loaded, principal, Action.REPLY, now, unit_id=assignment.unit_id,
                   attachments=data.attachments,
                   data={"content": data.content, "role": AssignmentRole.ASSISTING})

    def _plan_reply(self, session: AsyncSession, loaded: Loaded, principal: Principal,
                    data: ReplyIn, now: datetime) -> None:
        ticket, assignment = loaded.ticket, loaded.assignment
        assert assignment is not None and data.promised_date is not None
        if ticket.handling_mode != HandlingMode.PROMISED:
            raise RuleViolation("only a promised order replies with a plan")
        today = self.calendar.local_date(now)
        horizon = today + timedelta(days=self.config.promise_horizon_days)
        if not today <= data.promised_date <= horizon:
            raise InvalidInput(f"the promised date must lie between today ({today}) and "
                               f"{horizon} ({self.config.promise_horizon_days} days)",
                               field="promised_date")
        on_time = ticket.plan_due_at is None or now <= ticket.plan_due_at
        ticket.plan_replied_at, ticket.plan_on_time = now, on_time
        ticket.promised_completion_date = data.promised_date
        ticket.reply_due_at = self.calendar.end_of_day(data.promised_date)
        ticket.deadline_provisional = False
        ticket.reply_due_from, ticket.reply_due_workdays = None, None
        assignment.reply = data.content
        assignment.reply_due_at = ticket.reply_due_at
        self._move(session, loaded, principal, Action.REPLY_PLAN, now,
                   unit_id=assignment.unit_id, attachments=data.attachments,
                   data={"content": data.content, "on_time": on_time,
                         "promised_date": data.promised_date.isoformat()})

    async def _final_reply(self, session: AsyncSession, loaded: Loaded, principal: Principal,
                           data: ReplyIn, now: datetime) -> None:
        ticket, assignment = loaded.ticket, loaded.assignment
        assert assignment is not None
        if ticket.handling_mode == HandlingMode.PROMISED and not ticket.promised_completion_date:
            raise RuleViolation("a promised order first replies with a plan and a date")
        waiting = [a.unit_id for a in await self._active_assignments(session, ticket.id)
                   if a.role == AssignmentRole.ASSISTING and a.state != AssignmentState.REPLIED]
        if waiting:
            raise RuleViolation(f"assisting units have not replied yet: {waiting}")
        contact = await self._closing_contact(session, ticket)
        assignment.state, assignment.replied_at = AssignmentState.REPLIED, now
        assignment.reply = data.content
        ticket.replied_at = now
        on_time = ticket.reply_due_at is None or now <= ticket.reply_due_at
        assignment.replied_on_time = on_time
        self._move(session, loaded, principal, Action.REPLY, now, unit_id=assignment.unit_id,
                   attachments=data.attachments,
                   data={"content": data.content, "role": AssignmentRole.LEAD,
                         "on_time": on_time, "contact": contact})

    async def _closing_contact(self, session: AsyncSession, ticket: Ticket) -> dict[str, Any]:
        """The closing rule (no fake closures): which contact lets this order be replied to,
        or ``RuleViolation``. Exempt orders are marked, never silently passed."""
        rule = self.config.closing
        if ticket.ticket_type not in rule.contact_required_types:
            return {"rule": "not_required"}
        if ticket.anonymous:
            return {"rule": "exempt", "why": "anonymous"}
        if ticket.no_contact:
            return {"rule": "exempt", "why": "caller_asked_not_to_be_contacted"}
        record = await session.scalar(select(ContactAttempt.id).where(
            ContactAttempt.ticket_id == ticket.id, ContactAttempt.outcome == "answered",
            ContactAttempt.talk_seconds >= rule.min_talk_seconds)
            .order_by(ContactAttempt.id).limit(1))
        if record is not None:
            return {"rule": "contact_record", "contact_call_id": record}
        override = await session.scalar(select(TicketEvent.id).where(
            TicketEvent.ticket_id == ticket.id, TicketEvent.action == CONTACT_OVERRIDE)
            .order_by(TicketEvent.id.desc()).limit(1))
        if override is not None:
            return {"rule": "override", "event_id": override}
        raise RuleViolation(
            f"a reply needs a contact record: a call the citizen answered for at least "
            f"{rule.min_talk_seconds:g} s (or a supervisor's override with a reason)")

    async def contact_override(self, principal: Principal, ticket_id: int,
                               data: ContactOverrideIn) -> Ticket:
        """A supervisor lets the unit reply without a qualifying contact record; the reason
        stays in the timeline."""
        if principal.role not in lifecycle.OFFICE:
            raise NotAllowed(f"role {principal.role} may not override the closing rule")
        async with self._tx() as session:
            ticket = await session.get(Ticket, ticket_id, with_for_update=True)
            if ticket is None:
                raise TicketNotFound(f"no ticket {ticket_id}")
            if ticket.status not in OPEN_AT_UNIT:
                raise IllegalTransition(CONTACT_OVERRIDE, ticket.status)
            self._event(session, ticket, principal, CONTACT_OVERRIDE, ticket.status,
                        ticket.status, self._now(), reason=data.reason,
                        unit_id=ticket.lead_unit_id)
        return ticket

    # --- extensions ----------------------------------------------------------------------

    async def request_extension(self, principal: Principal, ticket_id: int, data: ExtensionIn
                                ) -> TicketExtension:
        async with self._tx() as session:
            loaded = await self._load(session, principal, ticket_id, Action.REQUEST_EXTENSION)
            ticket, assignment, now = loaded.ticket, loaded.assignment, self._now()
            assert assignment is not None
            pending = await session.scalar(select(TicketExtension.id).where(
                TicketExtension.ticket_id == ticket.id,
                TicketExtension.decision == ExtensionDecision.PENDING))
            if pending is not None:
                raise RuleViolation("an extension request is already waiting for a decision")
            if ticket.reply_due_at is not None and now > ticket.reply_due_at:
                raise RuleViolation("an extension must be requested before the deadline "
                                    f"({ticket.reply_due_at.isoformat()}); it has passed")
            self._check_extension_cap(ticket, data.days)
            extension = TicketExtension(ticket_id=ticket.id, unit_id=assignment.unit_id,
                                        days=data.days, reason=data.reason,
                                        requested_by=principal.user_id, requested_at=now,
                                        decision=ExtensionDecision.PENDING)
            session.add(extension)
            await session.flush()
            self._move(session, loaded, principal, Action.REQUEST_EXTENSION, now,
                       reason=data.reason, unit_id=assignment.unit_id,
                       data={"extension_id": extension.id, "days": data.days})
        return extension

    def _extend(self, ticket: Ticket, days: int) -> dict[str, Any]:
        """Move the reply deadline ``days`` working days on (the basis grows with it)."""
        if ticket.reply_due_at is None:
            return {}
        if ticket.reply_due_from is not None and ticket.reply_due_workdays is not None:
            ticket.reply_due_workdays += days
        old = ticket.reply_due_at
        ticket.reply_due_at = self.calendar.end_of_day(
            self.calendar.add_workdays(self.calendar.local_date(old), days))
        provisional = self._provisional(old, ticket.reply_due_at)
        ticket.deadline_provisional = ticket.deadline_provisional or bool(provisional)
        return provisional

    async def _lead_assignment(self, session: AsyncSession, ticket_id: int
                               ) -> TicketAssignment | None:
        return next((a for a in await self._active_assignments(session, ticket_id)
                     if self._is_lead(a)), None)

    def _check_extension_cap(self, ticket: Ticket, days: int) -> None:
        cap = self.taxonomy.deadlines.max_extension_days
        if ticket.extension_days + days > cap:
            raise RuleViolation(f"extensions may add at most {cap} working days in total; "
                                f"{ticket.extension_days} already granted")

    async def decide_extension(self, principal: Principal, ticket_id: int, extension_id: int,
                               data: ExtensionDecisionIn) -> TicketExtension:
        async with self._tx() as session:
            loaded = await self._load(session, principal, ticket_id, Action.DECIDE_EXTENSION)
            ticket, now = loaded.ticket, self._now()
            extension = await session.get(TicketExtension, extension_id)
            if extension is None or extension.ticket_id != ticket.id:
                raise TicketNotFound(f"no extension request {extension_id} on this ticket")
            if extension.decision != ExtensionDecision.PENDING:
                raise IllegalTransition("decide", f"an extension already {extension.decision}")
            provisional: dict[str, Any] = {}
            if data.approve:
                self._check_extension_cap(ticket, extension.days)
                ticket.extension_days += extension.days
                provisional = self._extend(ticket, extension.days)
                lead = await self._lead_assignment(session, ticket.id)
                if lead is not None:
                    lead.extension_days += extension.days
                    lead.reply_due_at = ticket.reply_due_at
            extension.decision = (ExtensionDecision.APPROVED if data.approve
                                  else ExtensionDecision.REFUSED)
            extension.decided_by, extension.decided_at = principal.user_id, now
            extension.decision_reason = data.reason
            self._move(session, loaded, principal, Action.DECIDE_EXTENSION, now,
                       reason=data.reason, unit_id=extension.unit_id,
                       data={"extension_id": extension.id, "approved": data.approve,
                             "days": extension.days,
                             "reply_due_at": _iso(ticket.reply_due_at), **provisional})
        return extension

    # --- office review, revisit, archive -------------------------------------------------

    async def rework(self, principal: Principal, ticket_id: int, data: ReworkIn) -> Ticket:
        """返工 / 退回重办: the order is handled again by a unit that holds it.

        After a reply or a plan the office rejects it; after an unsatisfied revisit this is
        the office's review conclusion; after a satisfied one only a spot check or an
        upper-level platform sends it back (``basis``). A redo is a new handling period: the
        reply deadline is the type's working days counted again from now. Extensions already
        granted still count against the order's cap.
        """
        async with self._tx() as session:
            loaded = await self._load(session, principal, ticket_id, Action.REWORK)
            ticket, now = loaded.ticket, self._now()
            basis = self._rework_basis(ticket, data)
            active = await self._active_assignments(session, ticket.id)
            unit_id = data.unit_id if data.unit_id is not None else ticket.lead_unit_id
            target = next((a for a in active if a.unit_id == unit_id), None)
            if target is None:
                raise InvalidInput(f"unit {unit_id} does not hold this order", field="unit_id")
            if ticket.status == S.PROMISED:  # the plan itself was rejected
                ticket.promised_completion_date = None
            if ticket.status == S.REVISITED:
                ticket.review_conclusion = ReviewConclusion.REWORK
                ticket.review_reason = data.reason
                ticket.revisit_result = None
            provisional = self._set_reply_due(ticket, now)
            replan = ticket.handling_mode == HandlingMode.PROMISED
            if replan and not ticket.promised_completion_date:
                ticket.plan_due_at = ticket.reply_due_at  # the new plan is due as at dispatch
                ticket.plan_replied_at, ticket.plan_on_time = None, None
            for assignment in active:
                if assignment is target or assignment.role == AssignmentRole.LEAD:
                    assignment.state = AssignmentState.IN_PROGRESS
                    assignment.replied_at, assignment.replied_on_time = None, None
                    assignment.reply_due_at = ticket.reply_due_at
            target.rework_count += 1
            ticket.replied_at = None
            ticket.rework_count += 1
            session.add(TicketRework(ticket_id=ticket.id, assignment_id=target.id,
                                     unit_id=target.unit_id, basis=basis, reason=data.reason,
                                     reply_due_at=ticket.reply_due_at, by=principal.user_id,
                                     at=now))
            self._move(session, loaded, principal, Action.REWORK, now, reason=data.reason,
                       unit_id=unit_id,
                       data={"basis": basis, "reply_due_at": ticket.reply_due_at.isoformat(),
                             **provisional})
        return ticket

    @staticmethod
    def _rework_basis(ticket: Ticket, data: ReworkIn) -> ReworkBasis:
        if ticket.status != S.REVISITED:
            return ReworkBasis.REPLY_REJECTED
        if ticket.revisit_result == RevisitResult.UNSATISFIED:
            return ReworkBasis.UNSATISFIED_REVISIT
        if data.basis in (ReworkBasis.SPOT_CHECK, ReworkBasis.UPPER_PLATFORM):
            return data.basis
        raise InvalidInput(f"a {ticket.revisit_result} order is handled again only after a "
                           "spot check or at an upper-level platform's request",
                           field="basis")

    async def record_revisit(self, principal: Principal, ticket_id: int, data: RevisitIn
                             ) -> Ticket:
        """回访: every result is kept; "unreachable" needs the configured attempts."""
        needed = self.config.revisit_attempts
        if data.result == RevisitResult.UNREACHABLE and data.attempts < needed:
            raise InvalidInput(f"unreachable needs {needed} attempts, {data.attempts} made",
                               field="attempts")
        async with self._tx() as session:
            loaded = await self._load(session, principal, ticket_id, Action.REVISIT)
            ticket, now = loaded.ticket, self._now()
            if ticket.status == S.REVISITED and (
                    ticket.revisit_result != RevisitResult.UNREACHABLE
                    or data.result == RevisitResult.UNREACHABLE):
                raise RuleViolation("a revisited order gets a new result only when the "
                                    "citizen answers after being unreachable; this one is "
                                    f"{ticket.revisit_result}")
            if data.call:
                await self._link_calls(session, ticket, [data.call], "revisit", now)
            ticket.revisit_result = data.result
            ticket.review_conclusion, ticket.review_reason = None, None
            session.add(TicketRevisit(ticket_id=ticket.id, unit_id=ticket.lead_unit_id,
                                      result=data.result, attempts=data.attempts,
                                      stars=data.stars, comment=data.comment,
                                      by=principal.user_id, at=now))
            self._move(session, loaded, principal, Action.REVISIT, now, reason=data.comment,
                       unit_id=ticket.lead_unit_id,
                       data={"result": str(data.result), "attempts": data.attempts,
                             **({"stars": data.stars} if data.stars else {})})
        return ticket

    async def review(self, principal: Principal, ticket_id: int, data: ReviewIn) -> Ticket:
        """复核: the office concludes an unsatisfied revisit without rework (explained)."""
        async with self._tx() as session:
            loaded = await self._load(session, principal, ticket_id, Action.REVIEW)
            ticket, now = loaded.ticket, self._now()
            if ticket.revisit_result != RevisitResult.UNSATISFIED:
                raise RuleViolation(f"only an unsatisfied revisit is reviewed; this one is "
                                    f"{ticket.revisit_result}")
            ticket.review_conclusion = ReviewConclusion.EXPLAINED
            ticket.review_reason = data.reason
            self._move(session, loaded, principal, Action.REVIEW, now, reason=data.reason,
                       unit_id=ticket.lead_unit_id,
                       data={"conclusion": str(ReviewConclusion.EXPLAINED)})
        return ticket

    async def report_silent(self, principal: Principal, ticket_id: int,
                            data: SilentAssistingIn) -> Ticket:
        """The lead unit of a co-handled order reports an assisting unit that stays silent."""
        async with self._tx() as session:
            loaded = await self._load(session, principal, ticket_id, Action.REPORT_SILENT)
            ticket, now = loaded.ticket, self._now()
            target = await self._silent_candidate(session, ticket, data.unit_id)
            target.silent_reported_at = now
            self._move(session, loaded, principal, Action.REPORT_SILENT, now,
                       reason=data.reason, unit_id=target.unit_id)
        return ticket

    async def release_assisting(self, principal: Principal, ticket_id: int,
                                data: ReleaseAssistingIn) -> Ticket:
        """The office approves: the silent unit is released; the lead replies alone."""
        async with self._tx() as session:
            loaded = await self._load(session, principal, ticket_id, Action.RELEASE_ASSISTING)
            ticket, now = loaded.ticket, self._now()
            target = await self._silent_candidate(session, ticket, data.unit_id)
            if target.silent_reported_at is None:
                raise RuleViolation(f"the lead unit has not reported unit {data.unit_id} as "
                                    "silent")
            target.state = AssignmentState.RELEASED
            await self._end_assignments(session, ticket, now, only=target,
                                        reason=AssignmentEnd.RELEASED, note=data.reason)
            self._move(session, loaded, principal, Action.RELEASE_ASSISTING, now,
                       reason=data.reason, unit_id=target.unit_id)
        return ticket

    async def _silent_candidate(self, session: AsyncSession, ticket: Ticket, unit_id: int
                                ) -> TicketAssignment:
        active = await self._active_assignments(session, ticket.id)
        target = next((a for a in active if a.unit_id == unit_id
                       and a.role == AssignmentRole.ASSISTING), None)
        if target is None:
            raise InvalidInput(f"unit {unit_id} does not assist on this order", field="unit_id")
        if target.state == AssignmentState.REPLIED:
            raise RuleViolation(f"unit {unit_id} has replied; it is not silent")
        return target

    async def archive(self, principal: Principal, ticket_id: int) -> Ticket:
        """归档 once the follow-up is complete: a rated revisit (an unsatisfied one with the
        office's review conclusion), an unreachable or declining citizen, or no revisit at
        all for an anonymous order."""
        async with self._tx() as session:
            loaded = await self._load(session, principal, ticket_id, Action.ARCHIVE)
            ticket, now = loaded.ticket, self._now()
            self._check_archivable(ticket)
            ticket.archived_at = now
            self._move(session, loaded, principal, Action.ARCHIVE, now,
                       data={"revisit_result": ticket.revisit_result,
                             "review_conclusion": ticket.review_conclusion})
        return ticket

    @staticmethod
    def _check_archivable(ticket: Ticket) -> None:
        if ticket.status == S.REPLIED and not ticket.anonymous:
            raise RuleViolation("cannot archive a ticket that is replied before its revisit "
                                "(only anonymous orders skip it)")
        if (ticket.status == S.REVISITED and ticket.revisit_result == RevisitResult.UNSATISFIED
                and ticket.review_conclusion != ReviewConclusion.EXPLAINED):
            raise RuleViolation("an unsatisfied order needs the office's review conclusion "
                                "(rework, re-dispatch or explained) before archiving")

    async def recompute_provisional(self) -> list[int]:
        """Count provisional deadlines again on the calendar as it is now (a year's file was
        added). Returns the ids of the orders whose deadline or marker changed."""
        changed: list[int] = []
        async with self.sessionmaker() as session:
            ids = (await session.scalars(select(Ticket.id).where(
                Ticket.deadline_provisional == true()).order_by(Ticket.id))).all()
        for ticket_id in ids:
            async with self._tx() as session:
                ticket = await session.get(Ticket, ticket_id, with_for_update=True)
                if ticket is None or not ticket.deadline_provisional:
                    continue
                if await self._recount(session, ticket):
                    changed.append(ticket.id)
        log.info("tickets.deadlines_recomputed count=%d", len(changed))
        return changed

    async def _recount(self, session: AsyncSession, ticket: Ticket) -> bool:
        if ticket.reply_due_from is None or ticket.reply_due_workdays is None:
            ticket.deadline_provisional = False
            return False
        old = ticket.reply_due_at
        new = self.calendar.working_days_deadline(ticket.reply_due_from,
                                                  ticket.reply_due_workdays)
        still = self.calendar.provisional_years(self.calendar.local_date(ticket.reply_due_from),
                                                self.calendar.local_date(new))
        if new == old and still:
            return False
        ticket.reply_due_at, ticket.deadline_provisional = new, bool(still)
        ticket.updated_at = now = self._now()
        lead = await self._lead_assignment(session, ticket.id)
        if lead is not None and ticket.status in OPEN_AT_UNIT:
            lead.reply_due_at = new
        session.add(TicketEvent(ticket_id=ticket.id, at=now, actor_id=None,
                                actor_role="system", action="deadline_recomputed",
                                from_status=ticket.status, to_status=ticket.status,
                                unit_id=ticket.lead_unit_id, reason=None,
                                data={"old_reply_due_at": _iso(old),
                                      "reply_due_at": new.isoformat(),
                                      "provisional_calendar": still}, attachments=[]))
        log.info("tickets.deadline_recomputed ticket=%s old=%s new=%s", ticket.id, _iso(old),
                 new.isoformat())
        return True

    # --- reads ---------------------------------------------------------------------------

    async def get(self, session: AsyncSession, principal: Principal, ticket_id: int) -> Loaded:
        """The ticket if ``principal`` may see it; ``TicketNotFound`` otherwise (no leak)."""
        ticket = await session.get(Ticket, ticket_id)
        if ticket is None:
            raise TicketNotFound(f"no ticket {ticket_id}")
        assignment = await self._assignment_of(session, principal, ticket)
        return Loaded(ticket, assignment)

    async def details(self, session: AsyncSession, ticket_id: int
                      ) -> tuple[Sequence[TicketAssignment], Sequence[TicketExtension],
                                 Sequence[TicketCall]]:
        assignments = (await session.scalars(select(TicketAssignment).where(
            TicketAssignment.ticket_id == ticket_id).order_by(TicketAssignment.id))).all()
        extensions = (await session.scalars(select(TicketExtension).where(
            TicketExtension.ticket_id == ticket_id).order_by(TicketExtension.id))).all()
        calls = (await session.scalars(select(TicketCall).where(
            TicketCall.ticket_id == ticket_id).order_by(TicketCall.id))).all()
        return assignments, extensions, calls

    async def timeline(self, principal: Principal, ticket_id: int) -> list[TicketEvent]:
        async with self.sessionmaker() as session:
            await self.get(session, principal, ticket_id)
            query = select(TicketEvent).where(TicketEvent.ticket_id == ticket_id)
            return list((await session.scalars(query.order_by(TicketEvent.id))).all())

    async def search(self, principal: Principal, query: SearchQuery) -> SearchResult:
        """Newest first, ``limit`` rows after ``cursor``; a unit sees only its own orders."""
        limit = min(query.limit, self.config.page_size_max)
        now = self._now()
        horizon = self.calendar.working_days_deadline(now, self.config.due_soon_working_days)
        topics = self.taxonomy.topic_family(query.topic) if query.topic else None
        stmt = search_statement(principal, query, now=now, due_soon_until=horizon,
                                topics=topics)
        stmt = stmt.limit(limit + 1)
        async with self.sessionmaker() as session:
            rows = list((await session.scalars(stmt)).all())
        next_cursor = encode_cursor(rows[limit - 1]) if len(rows) > limit else None
        return SearchResult(rows[:limit], next_cursor)

    async def unit_counts(self, principal: Principal, *, since: datetime | None = None,
                          until: datetime | None = None) -> dict[int, dict[str, int]]:
        """Returns and reworks per unit; a unit handler gets its own unit only."""
        stmt = unit_counts_statement(principal, since=since, until=until)
        counts: dict[int, dict[str, int]] = {}
        async with self.sessionmaker() as session:
            for unit_id, action, n in (await session.execute(stmt)).all():
                row = counts.setdefault(unit_id, {"returns": 0, "reworks": 0})
                row["returns" if action == Action.RETURN else "reworks"] += n
        return counts

    def is_overdue(self, ticket: Ticket) -> bool:
        """Late now, or late once: lateness is never erased by what happens later."""
        return ticket.overdue_since is not None or (
            ticket.status in OPEN_AT_UNIT and ticket.reply_due_at is not None
            and ticket.reply_due_at < self._now())

    # --- helpers -------------------------------------------------------------------------

    def _now(self) -> datetime:
        """Now in UTC (storage and API zone), whatever zone the clock reports in."""
        return self.clock.now().astimezone(UTC)

    def _tx(self) -> _Transaction:
        return _Transaction(self.sessionmaker)

    async def _load(self, session: AsyncSession, principal: Principal, ticket_id: int,
                    action: Action) -> Loaded:
        """Lock the ticket, check visibility, role and state; unit actions need the unit's hold."""
        lifecycle.authorize(action, principal.role)
        ticket = await session.get(Ticket, ticket_id, with_for_update=True)
        if ticket is None:
            raise TicketNotFound(f"no ticket {ticket_id}")
        assignment = await self._assignment_of(session, principal, ticket)
        assisting = assignment is not None and not self._is_lead(assignment)
        if assisting and action not in lifecycle.ASSISTING_SOURCES:
            raise RuleViolation(f"an assisting unit cannot {action}; the lead unit does")
        lifecycle.check(action, ticket.status, assisting=assisting)
        await self._stamp_overdue(session, ticket)
        period = None
        if lifecycle.TRANSITIONS[action].target is not None:  # only a move ends a period
            period = await session.scalar(select(TicketStatePeriod).where(
                TicketStatePeriod.ticket_id == ticket.id, TicketStatePeriod.ended_at.is_(None)))
        return Loaded(ticket, assignment, period)

    async def _stamp_overdue(self, session: AsyncSession, ticket: Ticket) -> None:
        """Record when the order became late, before any action can move the deadline.

        An extension requested in time and still waiting is the office's delay, not the
        unit's: the stamp waits for the decision.
        """
        due = ticket.reply_due_at
        if (ticket.overdue_since is not None or ticket.status not in OPEN_AT_UNIT
                or due is None or due >= self._now()):
            return
        waiting = await session.scalar(select(TicketExtension.id).where(
            TicketExtension.ticket_id == ticket.id,
            TicketExtension.decision == ExtensionDecision.PENDING,
            TicketExtension.requested_at <= due))
        if waiting is None:
            ticket.overdue_since = due
            log.info("tickets.overdue ticket=%s since=%s", ticket.id, due.isoformat())

    async def _assignment_of(self, session: AsyncSession, principal: Principal,
                             ticket: Ticket) -> TicketAssignment | None:
        """The principal's unit's active hold; a unit handler without one gets 404."""
        if principal.role != Role.UNIT_HANDLER:
            return None
        assignment = None
        if principal.unit_id is not None:
            assignment = await session.scalar(select(TicketAssignment).where(
                TicketAssignment.ticket_id == ticket.id,
                TicketAssignment.unit_id == principal.unit_id,
                TicketAssignment.active == true()))
        if assignment is None:
            raise TicketNotFound(f"no ticket {ticket.id}")
        return assignment

    @staticmethod
    def _is_lead(assignment: TicketAssignment) -> bool:
        return assignment.role == AssignmentRole.LEAD

    def _move(self, session: AsyncSession, loaded: Loaded, principal: Principal,
              action: Action, now: datetime, *, reason: str | None = None,
              unit_id: int | None = None, data: dict[str, Any] | None = None,
              attachments: Sequence[Any] = ()) -> None:
        """Apply the table's target state (none for an assisting unit) and log the event."""
        ticket = loaded.ticket
        before = ticket.status
        target = lifecycle.TRANSITIONS[action].target
        assisting = loaded.assignment is not None and not self._is_lead(loaded.assignment)
        if target is not None and not assisting:
            ticket.status = target
        if ticket.status != before:
            self._next_period(session, loaded, before, now)
        ticket.updated_at = now
        self._event(session, ticket, principal, action, before, ticket.status, now,
                    reason=reason, unit_id=unit_id, data=data, attachments=attachments)

    @staticmethod
    def _next_period(session: AsyncSession, loaded: Loaded, before: str, now: datetime
                     ) -> None:
        """Close the state period that ends now and open the next one. A draft's period
        is written when it ends (drafts are created in bulk by the intake writer)."""
        ticket = loaded.ticket
        if loaded.period is not None:
            loaded.period.ended_at = now
        else:
            session.add(TicketStatePeriod(ticket_id=ticket.id, status=before, unit_id=None,
                                          started_at=ticket.created_at, ended_at=now))
        session.add(TicketStatePeriod(ticket_id=ticket.id, status=ticket.status,
                                      unit_id=ticket.lead_unit_id, started_at=now))

    @classmethod
    def _event(cls, session: AsyncSession, ticket: Ticket, principal: Principal,
               action: Action | str, before: str | None, after: str | None, now: datetime, *,
               reason: str | None = None, unit_id: int | None = None,
               data: dict[str, Any] | None = None, attachments: Sequence[Any] = ()) -> None:
        session.add(TicketEvent(**cls._event_values(
            ticket, principal, action, before, after, now, reason=reason, unit_id=unit_id,
            data=data, attachments=attachments)))

    @staticmethod
    def _event_values(ticket: Ticket | None, principal: Principal, action: Action | str,
                      before: str | None, after: str | None, now: datetime, *,
                      reason: str | None = None, unit_id: int | None = None,
                      data: dict[str, Any] | None = None, attachments: Sequence[Any] = ()
                      ) -> dict[str, Any]:
        ticket_id = ticket.id if ticket is not None else None
        log.info("ticket_event ticket=%s action=%s from=%s to=%s unit=%s user=%s",
                 ticket_id, action, before, after, unit_id, principal.user_id)
        return dict(ticket_id=ticket_id, at=now, actor_id=principal.user_id,
                    actor_role=str(principal.role), action=str(action), from_status=before,
                    to_status=after, unit_id=unit_id, reason=reason, data=data or {},
                    attachments=[a.model_dump() if hasattr(a, "model_dump") else a
                                 for a in attachments])

    async def _link_calls(self, session: AsyncSession, ticket: Ticket,
                          calls: Sequence[CallLinkIn], purpose: str, now: datetime) -> None:
        """Link calls once each: the same call given again (a reply citing the contact call)
        is already on the order."""
        if not calls:
            return
        known = set((await session.scalars(select(TicketCall.linkedid).where(
            TicketCall.ticket_id == ticket.id))).all())
        for call in _first_of_each_call(calls):
            if call.linkedid not in known:
                session.add(TicketCall(ticket_id=ticket.id, linkedid=call.linkedid,
                                       purpose=purpose, recording_ref=call.recording_ref,
                                       linked_at=now))

    def _topic(self, topic: str | None) -> str | None:
        """The topic's current code (a retired code is stored under its new one)."""
        if topic is None:
            return None
        code = self.taxonomy.topic_code(topic)
        if code is None:
            raise InvalidInput(f"unknown topic {topic!r}", field="topic")
        return code

    def _check_urgency(self, urgency: str | None) -> None:
        if urgency not in (None, "normal") and urgency not in self.taxonomy.urgency:
            raise InvalidInput(f"unknown urgency {urgency!r}", field="urgency")


class _Transaction:
    """``async with`` a session in a transaction; a lost race becomes a 409, not a 500."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker
        self._session: AsyncSession | None = None

    async def __aenter__(self) -> AsyncSession:
        # Objects stay readable after commit: the API renders them once the row is durable.
        self._session = self._sessionmaker(expire_on_commit=False)
        await self._session.begin()
        return self._session

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        session = self._session
        assert session is not None
        try:
            if exc_type is None:
                await session.commit()
            else:
                await session.rollback()
        except StaleDataError as error:
            await session.rollback()
            raise ConcurrentUpdate("the ticket was changed meanwhile; reload and retry") from error
        finally:
            await session.close()
        if isinstance(exc, StaleDataError):
            raise ConcurrentUpdate("the ticket was changed meanwhile; reload and retry") from exc


def _first_of_each_call(calls: Sequence[CallLinkIn]) -> list[CallLinkIn]:
    """Each call once, as first given (a repeat without its recording adds nothing)."""
    seen: dict[str, CallLinkIn] = {}
    for call in calls:
        seen.setdefault(call.linkedid, call)
    return list(seen.values())


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
