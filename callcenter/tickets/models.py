"""Tables of the work-order (工单) domain.

A ``Ticket`` carries the order's current state and its deadlines; everything that happened to
it is kept as immutable ``TicketEvent`` rows (the timeline). ``TicketAssignment`` rows say
which units hold the order (one lead, optional assisting units for co-handled orders), so a
unit's view and its return/rework counts come from one place. ``TicketExtension`` keeps the
extension requests and the office's decisions; ``TicketCall`` links call-log rows (by
Asterisk ``Linkedid``) and recordings; ``TicketDailyCounter`` hands out the daily numbers.

Enumerations are stored as short strings (portable across SQLite and PostgreSQL); the allowed
values are the ``StrEnum``s below and are checked by the service layer and the API schemas.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    event,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.auth.models import UtcDateTime
from callcenter.store.base import Base


class Channel(StrEnum):
    """Where an order came from, as the monthly reports count them (seed 001)."""

    PHONE = "phone"  # 12345 热线来电
    PROVINCIAL_PLATFORM = "provincial_platform"  # 省级 12345 平台工单
    MAYOR_MAILBOX = "mayor_mailbox"  # 市（县）长信箱
    GOVERNOR_MAILBOX = "governor_mailbox"  # 省长信箱
    NATIONAL_PLATFORM = "national_platform"  # 国家政务服务平台 / 中国政府网
    WEB = "web"  # 网站
    APP = "app"  # 政务 app (湘易办 ...)
    WECHAT = "wechat"  # 微信公众号 / 小程序
    MINI_PROGRAM = "mini_program"  # kept for stored orders; new ones use wechat
    TRANSFERRED = "transferred"  # kept for stored orders; new ones name the platform


class OrderLevel(StrEnum):
    """本级 / 下级: the office's own orders, or orders handed down to a lower level."""

    OWN = "own"
    LOWER = "lower"


class ReviewConclusion(StrEnum):
    """The office's review of an unsatisfied revisit (不满意件复核)."""

    REWORK = "rework"  # 退回重办
    EXPLAINED = "explained"  # 已解释说明，不再重办


class ReworkBasis(StrEnum):
    """Why an order is handled again: the KPI counts reworks by basis."""

    REPLY_REJECTED = "reply_rejected"  # the office rejects the reply (or the plan)
    UNSATISFIED_REVISIT = "unsatisfied_revisit"  # after the office's review
    SPOT_CHECK = "spot_check"  # 抽查: a satisfied order found not really done
    UPPER_PLATFORM = "upper_platform"  # the provincial/national platform sent it back


class TicketType(StrEnum):
    CONSULTATION = "consultation"  # 咨询
    HELP = "help"  # 求助
    COMPLAINT = "complaint"  # 投诉
    REPORT = "report"  # 举报
    SUGGESTION = "suggestion"  # 建议
    PRAISE = "praise"  # 表扬
    OTHER = "other"  # 其他


class RequesterKind(StrEnum):
    INDIVIDUAL = "individual"
    COMPANY = "company"


class HandlingMode(StrEnum):
    DIRECT = "direct"  # 直办: answered from the knowledge base, closed at once
    TIME_LIMITED = "time_limited"  # 限时件
    PROMISED = "promised"  # 承诺件: plan + promised date, then a final reply
    CO_HANDLED = "co_handled"  # 会签件: a lead unit and assisting units
    ESCALATED = "escalated"  # 批办: a leader names the unit


class TicketStatus(StrEnum):
    DRAFT = "draft"
    REGISTERED = "registered"
    ESCALATED = "escalated"
    DISPATCHED = "dispatched"
    ACCEPTED = "accepted"
    IN_PROGRESS = "in_progress"
    PROMISED = "promised"  # promised order: plan replied, final reply pending
    RETURNED = "returned"  # returned by its unit, waiting for the office to re-dispatch
    REPLIED = "replied"
    REVISITED = "revisited"
    CLOSED = "closed"  # direct answer
    NOT_ACCEPTED = "not_accepted"
    MERGED = "merged"  # linked to an earlier order as its duplicate
    ARCHIVED = "archived"


class NotAcceptedReason(StrEnum):
    """Grounds on which the office may refuse an order (regulation art. 8)."""

    MALICIOUS = "malicious"
    DUPLICATE = "duplicate"
    EMPTY = "empty"
    ADVERTISING = "advertising"
    LEGAL_PROCEDURE = "legal_procedure"


class RevisitResult(StrEnum):
    SATISFIED = "satisfied"
    BASICALLY_SATISFIED = "basically_satisfied"
    UNSATISFIED = "unsatisfied"
    UNREACHABLE = "unreachable"  # no answer after the configured number of attempts
    DECLINED = "declined"  # the citizen declined to be surveyed


class AssignmentRole(StrEnum):
    LEAD = "lead"
    ASSISTING = "assisting"


class AssignmentState(StrEnum):
    DISPATCHED = "dispatched"
    ACCEPTED = "accepted"
    IN_PROGRESS = "in_progress"
    REPLIED = "replied"
    RELEASED = "released"  # a silent assisting unit released by the office


class AssignmentEnd(StrEnum):
    """Why a unit stopped holding an order."""

    RETURNED = "returned"
    REDISPATCHED = "redispatched"
    RELEASED = "released"


class ExtensionDecision(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REFUSED = "refused"


class Ticket(Base):
    """工单: one citizen request and its current state."""

    __tablename__ = "tickets"
    __table_args__ = (
        # Lists are newest first on (created_at, id): each filter has an index in that order.
        Index("ix_tickets_created_at_id", "created_at", "id"),
        Index("ix_tickets_status_created_at_id", "status", "created_at", "id"),
        Index("ix_tickets_type_status_created_at_id", "ticket_type", "status", "created_at",
              "id"),
        Index("ix_tickets_topic_created_at_id", "topic", "created_at", "id"),
        Index("ix_tickets_lead_unit_status", "lead_unit_id", "status"),
        Index("ix_tickets_reply_due_at", "reply_due_at"),
        Index("ix_tickets_caller_phone_created_at", "caller_phone", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)
    status: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(20))
    # Caller: personal data, masked by the auth privacy policy on every read.
    caller_name: Mapped[str | None] = mapped_column(String(100))
    caller_phone: Mapped[str | None] = mapped_column(String(32))
    caller_address: Mapped[str | None] = mapped_column(String(300))
    anonymous: Mapped[bool] = mapped_column(Boolean, default=False)
    # the caller asked not to be contacted (不需回复): exempt from the closing rule
    no_contact: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    requester_kind: Mapped[str] = mapped_column(String(20), default=RequesterKind.INDIVIDUAL)
    company_name: Mapped[str | None] = mapped_column(String(200))
    public: Mapped[bool] = mapped_column(Boolean, default=False)
    ticket_type: Mapped[str] = mapped_column(String(20))
    topic: Mapped[str | None] = mapped_column(String(64))
    title: Mapped[str | None] = mapped_column(String(200))
    content: Mapped[str] = mapped_column(Text, default="")
    location: Mapped[str | None] = mapped_column(String(300))
    handling_mode: Mapped[str | None] = mapped_column(String(20))
    lead_unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    registered_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    dispatched_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    accepted_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    first_contact_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    replied_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    archived_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # Deadlines (UTC instants computed on the working-day calendar).
    acceptance_due_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    first_contact_due_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    reply_due_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    promised_completion_date: Mapped[date | None] = mapped_column(Date)
    # Counters (also derivable from the timeline; kept for fast lists and KPIs).
    extension_days: Mapped[int] = mapped_column(Integer, default=0)
    dispatch_count: Mapped[int] = mapped_column(Integer, default=0)
    return_count: Mapped[int] = mapped_column(Integer, default=0)
    rework_count: Mapped[int] = mapped_column(Integer, default=0)
    duplicate_count: Mapped[int] = mapped_column(Integer, default=0)
    not_accepted_reason: Mapped[str | None] = mapped_column(String(32))
    revisit_result: Mapped[str | None] = mapped_column(String(32))
    knowledge_article_id: Mapped[int | None] = mapped_column(Integer)
    direct_answer_approved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # Source (seed 001 counts orders by channel and own vs lower level).
    external_number: Mapped[str | None] = mapped_column(String(64))
    order_level: Mapped[str] = mapped_column(String(8), default=OrderLevel.OWN)
    complained_party: Mapped[str | None] = mapped_column(String(200))  # 被投诉对象
    urgency: Mapped[str] = mapped_column(String(16), default="normal")
    # Lateness is a fact: once set, nothing later (extension, plan, rework) clears it.
    overdue_since: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # A deadline counted over a provisional calendar year; recomputed when the year arrives.
    deadline_provisional: Mapped[bool] = mapped_column(Boolean, default=False)
    # Promised order: the plan is due by the normal deadline; was it on time?
    # The reply deadline's basis, so it can be counted again on a corrected calendar.
    reply_due_from: Mapped[datetime | None] = mapped_column(UtcDateTime())
    reply_due_workdays: Mapped[int | None] = mapped_column(Integer)
    plan_due_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    plan_replied_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    plan_on_time: Mapped[bool | None] = mapped_column(Boolean)
    review_conclusion: Mapped[str | None] = mapped_column(String(16))
    review_reason: Mapped[str | None] = mapped_column(Text)
    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    # Optimistic concurrency: two conflicting transitions cannot both win.
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}


class TicketAssignment(Base):
    """One unit holding one order: the lead, or an assisting unit of a co-handled order.

    ``active`` is false once the unit has returned the order or the office re-dispatched it
    elsewhere; a unit sees exactly the orders it holds actively. ``ticket_created_at``
    repeats the ticket's creation time so a unit's newest-first list walks one index.
    """

    __tablename__ = "ticket_assignments"
    __table_args__ = (
        Index("ix_ticket_assignments_unit_list", "unit_id", "active", "ticket_created_at",
              "ticket_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    # A copy of the (immutable) ticket creation time: a unit's list pages by it.
    ticket_created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    role: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    dispatched_at: Mapped[datetime] = mapped_column(UtcDateTime())
    accepted_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    replied_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    reply: Mapped[str | None] = mapped_column(Text)
    # Facts of this unit's hold, written when they happen (the monthly KPIs read them).
    acceptance_due_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    accepted_on_time: Mapped[bool | None] = mapped_column(Boolean)
    first_contact_due_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    first_contact_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    first_contact_on_time: Mapped[bool | None] = mapped_column(Boolean)
    reply_due_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    replied_on_time: Mapped[bool | None] = mapped_column(Boolean)
    extension_days: Mapped[int] = mapped_column(Integer, default=0)
    rework_count: Mapped[int] = mapped_column(Integer, default=0)
    end_reason: Mapped[str | None] = mapped_column(String(16))
    end_note: Mapped[str | None] = mapped_column(Text)
    silent_reported_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class TicketEvent(Base):
    """One transition or fact on an order's timeline. Append-only: never updated or deleted."""

    __tablename__ = "ticket_events"
    __table_args__ = (
        Index("ix_ticket_events_ticket_id_id", "ticket_id", "id"),
        Index("ix_ticket_events_action_unit", "action", "unit_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor_role: Mapped[str | None] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str | None] = mapped_column(String(20))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    reason: Mapped[str | None] = mapped_column(Text)
    data: Mapped[Any] = mapped_column(JSON, default=dict)
    attachments: Mapped[Any] = mapped_column(JSON, default=list)


class TicketExtension(Base):
    """延期申请: a unit asks for more working days; the office approves or refuses."""

    __tablename__ = "ticket_extensions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    days: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime())
    decision: Mapped[str] = mapped_column(String(16), default=ExtensionDecision.PENDING)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    decision_reason: Mapped[str | None] = mapped_column(Text)


class TicketStatePeriod(Base):
    """One stretch of time an order spent in one state (with the lead unit then holding it).

    Opened and closed by every state change, so "time spent in X" is a sum over rows.
    """

    __tablename__ = "ticket_state_periods"
    __table_args__ = (
        Index("ix_ticket_state_periods_ticket_open", "ticket_id", "ended_at"),
        Index("ix_ticket_state_periods_status_started", "status", "started_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    status: Mapped[str] = mapped_column(String(20))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class TicketRevisit(Base):
    """One revisit result (回访): every one is kept, not only the last."""

    __tablename__ = "ticket_revisits"
    __table_args__ = (Index("ix_ticket_revisits_unit_at", "unit_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    result: Mapped[str] = mapped_column(String(32))
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    stars: Mapped[int | None] = mapped_column(Integer)  # 1-5 when the survey asked stars
    comment: Mapped[str | None] = mapped_column(Text)
    by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(UtcDateTime())


class TicketRework(Base):
    """One rework (返工 / 退回重办) of one unit, with its basis and new deadline."""

    __tablename__ = "ticket_reworks"
    __table_args__ = (Index("ix_ticket_reworks_unit_at", "unit_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("ticket_assignments.id"))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    basis: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    reply_due_at: Mapped[datetime] = mapped_column(UtcDateTime())
    by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(UtcDateTime())


class TicketCall(Base):
    """A call linked to an order: the intake call, a unit's contact call, a revisit call."""

    __tablename__ = "ticket_calls"
    __table_args__ = (
        UniqueConstraint("ticket_id", "linkedid", name="uq_ticket_calls_ticket_linkedid"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    linkedid: Mapped[str] = mapped_column(String(64), index=True)
    purpose: Mapped[str] = mapped_column(String(16))  # intake | contact | revisit
    recording_ref: Mapped[str | None] = mapped_column(String(300))
    linked_at: Mapped[datetime] = mapped_column(UtcDateTime())


class TicketWord(Base):
    """One search word of one registered order: the full-text index of ticket search.

    Chinese has no spaces, so neither LIKE (a scan) nor FTS5/tsvector (they split on spaces)
    searches it well; words come from jieba (``similarity.search_words``), written once at
    registration (an order's text is fixed from then on), the same on SQLite and
    PostgreSQL. The key leads with the word, then the order's creation time, so a search
    walks one word's orders newest first, and checks another word by one key lookup.
    """

    __tablename__ = "ticket_words"

    term: Mapped[str] = mapped_column(String(32), primary_key=True)
    ticket_created_at: Mapped[datetime] = mapped_column(UtcDateTime(), primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), primary_key=True)


class TicketDailyCounter(Base):
    """The last number handed out on one local day (``20261121`` → 123)."""

    __tablename__ = "ticket_daily_counters"

    day: Mapped[str] = mapped_column(String(8), primary_key=True)
    last: Mapped[int] = mapped_column(Integer)


@event.listens_for(TicketEvent, "before_update")
@event.listens_for(TicketEvent, "before_delete")
def _timeline_is_append_only(mapper: Any, connection: Any, target: TicketEvent) -> None:
    raise RuntimeError(f"ticket event {target.id} is append-only")


class TicketTerms(Base):
    """The order's text as a term vector, computed once (jieba is the slow part)."""

    __tablename__ = "ticket_terms"

    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), primary_key=True)
    terms: Mapped[Any] = mapped_column(JSON)  # term -> weight (unit vector)
    places: Mapped[Any] = mapped_column(JSON)  # estate/road names: different places differ


# The daily scan's access paths on the tickets table (created by migration 0004).
SCAN_INDEXES = (
    Index("ix_tickets_status_reply_due_at", Ticket.status, Ticket.reply_due_at),
    Index("ix_tickets_status_acceptance_due_at", Ticket.status, Ticket.acceptance_due_at),
    Index("ix_tickets_status_first_contact", Ticket.status, Ticket.first_contact_at,
          Ticket.first_contact_due_at),
    Index("ix_tickets_provisional", Ticket.deadline_provisional),
)
