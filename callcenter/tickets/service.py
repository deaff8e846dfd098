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

from callcenter.auth.models import Unit
from callcenter.auth.principal import Principal, Role
from callcenter.clock import Clock
from callcenter.knowledge.models import KnowledgeArticle
from callcenter.tickets import lifecycle
from callcenter.tickets.calendar import WorkingCalendar
from callcenter.tickets.config import Taxonomy, TicketsConfig
from callcenter.tickets.duplicates import rank_duplicate_candidates
from callcenter.tickets.errors import (
    ConcurrentUpdate,
    IllegalTransition,
    InvalidInput,
    RuleViolation,
    TicketNotFound,
)
from callcenter.tickets.intake import DraftWriter
from callcenter.tickets.lifecycle import OPEN_AT_UNIT, Action
from callcenter.tickets.models import (
    AssignmentRole,
    AssignmentState,
    ExtensionDecision,
    HandlingMode,
    RequesterKind,
    RevisitResult,
    Ticket,
    TicketAssignment,
    TicketCall,
    TicketEvent,
    TicketExtension,
    TicketStatus,
    TicketTerms,
    TicketWord,
)
from callcenter.tickets.numbering import TicketNumbers
from callcenter.tickets.schemas import (
    CallLinkIn,
    ContactIn,
    DirectAnswerIn,
    DispatchIn,
    DraftIn,
    DraftPatch,
    ExtensionDecisionIn,
    ExtensionIn,
    NotAcceptIn,
    ReplyIn,
    RevisitIn,
    ReworkIn,
    SearchQuery,
)
from callcenter.tickets.search import encode_cursor, search_statement, unit_counts_statement
from callcenter.tickets.similarity import TextFeatures, features_and_words
from callcenter.tickets.terms import ticket_text

log = logging.getLogger(__name__)

S = TicketStatus
DRAFT_FIELDS = ("channel", "anonymous", "requester_kind", "company_name", "public",
                "ticket_type", "topic", "title", "content", "location")


@dataclass
class Loaded:
    """A ticket as one principal acts on it: with that principal's unit assignment, if any."""

    ticket: Ticket
    assignment: TicketAssignment | None


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

    # --- intake --------------------------------------------------------------------------

    async def create_draft(self, principal: Principal, data: DraftIn) -> Ticket:
        """A new draft, its first timeline entry and its intake calls, atomically.

        Intake is the hot path of the service (a large city: tens of thousands of orders a
        day, in bursts): the rows go through ``DraftWriter``, which writes the drafts of
        concurrent callers in one transaction.
        """
        lifecycle.authorize(Action.CREATE, principal.role)
        self._check_topic(data.topic)
        now = self._now()
        number = await self.numbers.next(now)
        values = dict(self._NEW_TICKET, number=number, status=S.DRAFT,
                      created_by=principal.user_id, created_at=now, updated_at=now,
                      caller_name=data.caller.name, caller_phone=data.caller.phone,
                      caller_address=data.caller.address,
                      **{name: getattr(data, name) for name in DRAFT_FIELDS})
        event = self._event_values(None, principal, Action.CREATE, None, S.DRAFT, now)
        calls = [dict(linkedid=c.linkedid, purpose="intake", recording_ref=c.recording_ref,
                      linked_at=now) for c in _first_of_each_call(data.calls)]
        ticket = Ticket(id=await self.drafts.write(values, event, calls), **values)
        log.info("ticket_created id=%s number=%s user=%s", ticket.id, number,
                 principal.user_id)
        return ticket

    # Column defaults of a new ticket, written explicitly so no reload is needed.
    _NEW_TICKET: dict[str, Any] = dict(extension_days=0, dispatch_count=0, return_count=0,
                                       rework_count=0, duplicate_count=0, version=1)

    async def update_draft(self, principal: Principal, ticket_id: int, data: DraftPatch
                           ) -> Ticket:
        changes = data.model_dump(exclude_unset=True)
        if "topic" in changes:
            self._check_topic(changes["topic"])
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
            ticket.handling_mode = HandlingMode.DIRECT
            ticket.knowledge_article_id = data.article_id
            ticket.closed_at = now
            self._move(session, loaded, principal, Action.DIRECT_ANSWER, now,
                       data={"answer": data.answer, "article_id": data.article_id})
        return ticket

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
            if ticket.status == S.REVISITED and ticket.revisit_result != RevisitResult.UNSATISFIED:
                raise RuleViolation("only an unsatisfied revisit sends an order back to a unit")
            await self._check_units(session, data)
            await self._end_assignments(session, ticket, now)
            escalation = ticket.status == S.ESCALATED
            self._assign(session, ticket, data, now)
            provisional = self._set_deadlines(ticket, now)
            ticket.handling_mode = data.mode
            ticket.lead_unit_id = data.lead_unit_id
            ticket.dispatched_at = now
            ticket.dispatch_count += 1
            for name in ("accepted_at", "first_contact_at", "replied_at", "revisit_result",
                         "promised_completion_date"):
                setattr(ticket, name, None)
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

    def _assign(self, session: AsyncSession, ticket: Ticket, data: DispatchIn,
                now: datetime) -> None:
        roles = [(data.lead_unit_id, AssignmentRole.LEAD)]
        roles += [(u, AssignmentRole.ASSISTING) for u in data.assisting_unit_ids]
        for unit_id, role in roles:
            session.add(TicketAssignment(ticket_id=ticket.id, unit_id=unit_id,
                                         ticket_created_at=ticket.created_at, role=role,
                                         state=AssignmentState.DISPATCHED, active=True,
                                         dispatched_at=now))

    def _set_deadlines(self, ticket: Ticket, now: datetime) -> dict[str, Any]:
        """Acceptance, first-contact and reply deadlines of a dispatch at ``now``; returns
        the provisional-calendar marker for the timeline (empty when the calendar is sure)."""
        cal, cfg = self.calendar, self.config
        if cfg.acceptance.mode == "same_day":
            ticket.acceptance_due_at = cal.end_of_working_day(now)
        else:
            ticket.acceptance_due_at = cal.add_working_hours(
                now, cfg.acceptance.hours, cfg.office_day_start, cfg.office_day_end)
        ticket.first_contact_due_at = now + timedelta(hours=cfg.first_contact_hours)
        ticket.reply_due_at = cal.working_days_deadline(now, self._reply_days(ticket))
        return self._provisional(now, ticket.reply_due_at)

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
                               only: TicketAssignment | None = None) -> None:
        if only is not None:
            only.active, only.ended_at = False, now
            return
        for assignment in await self._active_assignments(session, ticket.id):
            assignment.active, assignment.ended_at = False, now

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
            on_time = ticket.acceptance_due_at is None or now <= ticket.acceptance_due_at
            if self._is_lead(assignment):
                ticket.accepted_at = now
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
                await self._end_assignments(session, ticket, now)
                ticket.lead_unit_id = None
            else:
                await self._end_assignments(session, ticket, now, only=assignment)
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
            on_time = ticket.first_contact_due_at is None or now <= ticket.first_contact_due_at
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
            if not self._is_lead(assignment):
                self._assisting_reply(session, loaded, principal, data, now)
            elif action is Action.REPLY_PLAN:
                self._plan_reply(session, loaded, principal, data, now)
            else:
                await self._final_reply(session, loaded, principal, data, now)
        return ticket

    def _check_evidence(self, ticket: Ticket, data: ReplyIn) -> None:
        """No fake closures: a reply shows how the citizen was contacted (seed 001)."""
        if ticket.anonymous or data.kind == "plan":
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
        if data.promised_date <= self.calendar.local_date(now):
            raise InvalidInput("the promised date must be in the future", field="promised_date")
        ticket.promised_completion_date = data.promised_date
        ticket.reply_due_at = self.calendar.end_of_day(data.promised_date)
        assignment.reply = data.content
        self._move(session, loaded, principal, Action.REPLY_PLAN, now,
                   unit_id=assignment.unit_id, attachments=data.attachments,
                   data={"content": data.content,
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
        assignment.state, assignment.replied_at = AssignmentState.REPLIED, now
        assignment.reply = data.content
        ticket.replied_at = now
        on_time = ticket.reply_due_at is None or now <= ticket.reply_due_at
        self._move(session, loaded, principal, Action.REPLY, now, unit_id=assignment.unit_id,
                   attachments=data.attachments,
                   data={"content": data.content, "role": AssignmentRole.LEAD,
                         "on_time": on_time})

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
                if ticket.reply_due_at is not None:
                    due_day = self.calendar.local_date(ticket.reply_due_at)
                    ticket.reply_due_at = self.calendar.end_of_day(
                        self.calendar.add_workdays(due_day, extension.days))
                    provisional = self._provisional(now, ticket.reply_due_at)
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
        """返工 / 退回重办: the reply is not good enough; the unit handles the order again.

        A redo is a new handling period (重办): the reply deadline is the type's working days
        counted again from the rework, as at dispatch. Extensions already granted still count
        against the order's cap; the unit may ask for more within it.
        """
        async with self._tx() as session:
            loaded = await self._load(session, principal, ticket_id, Action.REWORK)
            ticket, now = loaded.ticket, self._now()
            active = await self._active_assignments(session, ticket.id)
            unit_id = data.unit_id if data.unit_id is not None else ticket.lead_unit_id
            target = next((a for a in active if a.unit_id == unit_id), None)
            if target is None:
                raise InvalidInput(f"unit {unit_id} does not hold this order", field="unit_id")
            for assignment in active:
                if assignment is target or assignment.role == AssignmentRole.LEAD:
                    assignment.state = AssignmentState.IN_PROGRESS
                    assignment.replied_at = None
            if ticket.status == S.PROMISED:  # the plan itself was rejected
                ticket.promised_completion_date = None
            ticket.reply_due_at = self.calendar.working_days_deadline(
                now, self._reply_days(ticket))
            ticket.replied_at = None
            ticket.rework_count += 1
            self._move(session, loaded, principal, Action.REWORK, now, reason=data.reason,
                       unit_id=unit_id,
                       data={"reply_due_at": ticket.reply_due_at.isoformat(),
                             **self._provisional(now, ticket.reply_due_at)})
        return ticket

    async def record_revisit(self, principal: Principal, ticket_id: int, data: RevisitIn
                             ) -> Ticket:
        async with self._tx() as session:
            loaded = await self._load(session, principal, ticket_id, Action.REVISIT)
            ticket, now = loaded.ticket, self._now()
            if data.call:
                await self._link_calls(session, ticket, [data.call], "revisit", now)
            ticket.revisit_result = data.result
            self._move(session, loaded, principal, Action.REVISIT, now, reason=data.comment,
                       unit_id=ticket.lead_unit_id, data={"result": str(data.result)})
        return ticket

    async def archive(self, principal: Principal, ticket_id: int) -> Ticket:
        async with self._tx() as session:
            loaded = await self._load(session, principal, ticket_id, Action.ARCHIVE)
            now = self._now()
            loaded.ticket.archived_at = now
            self._move(session, loaded, principal, Action.ARCHIVE, now)
        return loaded.ticket

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
        stmt = search_statement(principal, query, now=now, due_soon_until=horizon)
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
        return (ticket.status in OPEN_AT_UNIT and ticket.reply_due_at is not None
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
        return Loaded(ticket, assignment)

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
        ticket.updated_at = now
        self._event(session, ticket, principal, action, before, ticket.status, now,
                    reason=reason, unit_id=unit_id, data=data, attachments=attachments)

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

    def _check_topic(self, topic: str | None) -> None:
        if topic is not None and topic not in self.taxonomy.topics:
            raise InvalidInput(f"unknown topic {topic!r}", field="topic")


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
