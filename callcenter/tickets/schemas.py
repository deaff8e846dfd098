"""Payloads of the work-order API (pydantic v2): what comes in and what goes out.

The same models feed validation, the service layer and the generated OpenAPI document.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from callcenter.tickets.models import (
    Channel,
    HandlingMode,
    NotAcceptedReason,
    OrderLevel,
    RequesterKind,
    RevisitResult,
    ReworkBasis,
    TicketStatus,
    TicketType,
)
from callcenter.web.inputs import FileRef


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CallerIn(_In):
    name: str | None = Field(default=None, max_length=100)
    phone: str | None = Field(default=None, max_length=32, pattern=r"^[0-9+\-() ]{3,32}$")
    address: str | None = Field(default=None, max_length=300)


class CallLinkIn(_In):
    """A call from the call log (Asterisk ``Linkedid``) and its recording, if any."""

    linkedid: str = Field(min_length=1, max_length=64)
    recording_ref: FileRef | None = None


class AttachmentIn(_In):
    """Proof of handling: a photo, a call record, a document (stored elsewhere; referenced)."""

    kind: Literal["photo", "call_record", "document", "other"] = "other"
    name: str = Field(min_length=1, max_length=200)
    ref: FileRef
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")


class DraftIn(_In):
    channel: Channel = Channel.PHONE
    caller: CallerIn = CallerIn()
    anonymous: bool = False
    no_contact: bool = False  # the caller asked not to be contacted
    requester_kind: RequesterKind = RequesterKind.INDIVIDUAL
    company_name: str | None = Field(default=None, max_length=200)
    public: bool = False
    ticket_type: TicketType = TicketType.CONSULTATION
    topic: str | None = Field(default=None, max_length=64)
    title: str | None = Field(default=None, max_length=200)
    content: str = Field(default="", max_length=20000)
    location: str | None = Field(default=None, max_length=300)
    calls: list[CallLinkIn] = Field(default_factory=list, max_length=50)
    external_number: str | None = Field(default=None, max_length=64)
    order_level: OrderLevel = OrderLevel.OWN
    complained_party: str | None = Field(default=None, max_length=200)
    urgency: str = Field(default="normal", max_length=16)  # or a level of the taxonomy


class DraftPatch(_In):
    """Only the fields sent are changed."""

    channel: Channel | None = None
    caller: CallerIn | None = None
    anonymous: bool | None = None
    no_contact: bool | None = None
    requester_kind: RequesterKind | None = None
    company_name: str | None = Field(default=None, max_length=200)
    public: bool | None = None
    ticket_type: TicketType | None = None
    topic: str | None = Field(default=None, max_length=64)
    title: str | None = Field(default=None, max_length=200)
    content: str | None = Field(default=None, max_length=20000)
    location: str | None = Field(default=None, max_length=300)
    calls: list[CallLinkIn] | None = Field(default=None, max_length=50)
    external_number: str | None = Field(default=None, max_length=64)
    order_level: OrderLevel | None = None
    complained_party: str | None = Field(default=None, max_length=200)
    urgency: str | None = Field(default=None, max_length=16)

    @field_validator("channel", "caller", "anonymous", "requester_kind", "public",
                     "ticket_type", "content", "calls", "order_level", "urgency",
                     mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        """Absent means unchanged; an explicit null cannot clear a required field."""
        if value is None:
            raise ValueError("may be left out but not set to null")
        return value


class ReasonIn(_In):
    reason: str = Field(min_length=1, max_length=2000)


class NotAcceptIn(_In):
    reason: NotAcceptedReason
    note: str | None = Field(default=None, max_length=2000)


class DirectAnswerIn(_In):
    """A complaint or report needs ``article_id`` or a supervisor: the one answering, or
    the one named in ``approved_by`` who approved the agent's answer."""

    answer: str = Field(min_length=1, max_length=20000)
    article_id: int | None = None
    approved_by: int | None = None


class LinkDuplicateIn(_In):
    duplicate_of: int


class DispatchIn(_In):
    mode: Literal["time_limited", "promised", "co_handled"] = "time_limited"
    lead_unit_id: int
    assisting_unit_ids: list[int] = Field(
        default_factory=list, max_length=20, validate_default=True
    )
    note: str | None = Field(default=None, max_length=2000)

    @field_validator("assisting_unit_ids")
    @classmethod
    def _co_handled_needs_assistants(cls, value: list[int], info: ValidationInfo) -> list[int]:
        mode = info.data.get("mode")
        if mode == HandlingMode.CO_HANDLED and not value:
            raise ValueError("a co-handled order needs assisting units")
        if mode != HandlingMode.CO_HANDLED and value:
            raise ValueError("only co-handled orders have assisting units")
        if info.data.get("lead_unit_id") in value:
            raise ValueError("the lead unit cannot also assist")
        if len(set(value)) != len(value):
            raise ValueError("a unit is listed twice")
        return value


class ContactIn(_In):
    """The unit contacted the citizen (首次联系): ideally a call through the platform."""

    call: CallLinkIn | None = None
    note: str | None = Field(default=None, max_length=2000)
    attachments: list[AttachmentIn] = Field(default_factory=list, max_length=20)


class ContactOverrideIn(_In):
    """A supervisor lets the unit reply without a qualifying contact record; the written
    reason is kept in the timeline."""

    reason: str = Field(min_length=5, max_length=2000)


class ReplyIn(_In):
    """``kind=plan`` is a promised order's first reply with its promised completion date."""

    kind: Literal["final", "plan"] = "final"
    content: str = Field(min_length=1, max_length=20000)
    promised_date: date | None = Field(default=None, validate_default=True)
    attachments: list[AttachmentIn] = Field(default_factory=list, max_length=20)
    call: CallLinkIn | None = None

    @field_validator("promised_date")
    @classmethod
    def _plan_needs_date(cls, value: date | None, info: ValidationInfo) -> date | None:
        if info.data.get("kind") == "plan" and value is None:
            raise ValueError("a plan reply needs a promised completion date")
        return value


class ExtensionIn(_In):
    days: int = Field(ge=1, le=60)
    reason: str = Field(min_length=1, max_length=2000)


class ExtensionDecisionIn(_In):
    approve: bool
    reason: str | None = Field(default=None, max_length=2000)


class ReworkIn(_In):
    """``basis`` is needed only after a satisfied revisit: spot_check or upper_platform."""

    reason: str = Field(min_length=1, max_length=2000)
    unit_id: int | None = None  # default: the lead unit
    basis: ReworkBasis | None = None


class RevisitIn(_In):
    """``attempts``: calls made; "unreachable" needs the configured number."""

    result: RevisitResult
    comment: str | None = Field(default=None, max_length=2000)
    call: CallLinkIn | None = None
    attempts: int = Field(default=1, ge=1, le=20)
    stars: int | None = Field(default=None, ge=1, le=5)


class ReviewIn(_In):
    """The office's conclusion on an unsatisfied revisit: explained, no rework."""

    conclusion: Literal["explained"] = "explained"
    reason: str = Field(min_length=1, max_length=2000)


class SilentAssistingIn(_In):
    unit_id: int
    reason: str = Field(min_length=1, max_length=2000)


class ReleaseAssistingIn(_In):
    unit_id: int
    reason: str = Field(min_length=1, max_length=2000)


class SearchQuery(_In):
    """Filters of ``GET /tickets``; newest first, keyset pagination (``cursor``)."""

    status: list[TicketStatus] | None = None
    unit_id: int | None = None
    ticket_type: TicketType | None = None
    topic: str | None = None
    overdue: bool | None = None
    due_soon: bool | None = None
    provisional: bool | None = None  # deadlines counted on a provisional calendar
    channel: Channel | None = None
    order_level: OrderLevel | None = None
    created_from: AwareDatetime | None = None
    created_to: AwareDatetime | None = None
    text: str | None = Field(default=None, min_length=1, max_length=200)
    cursor: str | None = Field(default=None, pattern=r"^[0-9]{1,20}-[0-9]{1,19}$")
    limit: int = Field(default=50, ge=1, le=1000)


# --- responses -------------------------------------------------------------------------


class CallerOut(BaseModel):
    name: str | None = None
    phone: str | None = None
    address: str | None = None
    anonymous: bool = False
    masked: bool = True


class AssignmentOut(BaseModel):
    unit_id: int
    role: str
    state: str
    active: bool
    dispatched_at: datetime
    accepted_at: datetime | None
    replied_at: datetime | None
    reply: str | None
    ended_at: datetime | None = None
    end_reason: str | None = None
    acceptance_due_at: datetime | None = None
    accepted_on_time: bool | None = None
    first_contact_due_at: datetime | None = None
    first_contact_at: datetime | None = None
    first_contact_on_time: bool | None = None
    reply_due_at: datetime | None = None
    replied_on_time: bool | None = None
    extension_days: int = 0
    rework_count: int = 0
    silent_reported_at: datetime | None = None


class ExtensionOut(BaseModel):
    id: int
    unit_id: int
    days: int
    reason: str
    requested_at: datetime
    decision: str
    decided_at: datetime | None
    decision_reason: str | None


class TicketOut(BaseModel):
    id: int
    number: str
    status: TicketStatus
    channel: str
    caller: CallerOut
    requester_kind: str
    company_name: str | None
    public: bool
    ticket_type: str
    topic: str | None
    title: str | None
    content: str
    location: str | None
    handling_mode: str | None
    lead_unit_id: int | None
    created_at: datetime
    registered_at: datetime | None
    dispatched_at: datetime | None
    accepted_at: datetime | None
    first_contact_at: datetime | None
    replied_at: datetime | None
    closed_at: datetime | None
    archived_at: datetime | None
    acceptance_due_at: datetime | None
    first_contact_due_at: datetime | None
    reply_due_at: datetime | None
    promised_completion_date: date | None
    overdue: bool
    extension_days: int
    dispatch_count: int
    return_count: int
    rework_count: int
    duplicate_count: int
    not_accepted_reason: str | None
    revisit_result: str | None
    knowledge_article_id: int | None
    duplicate_of_id: int | None
    direct_answer_approved_by: int | None = None
    external_number: str | None = None
    order_level: str = "own"
    complained_party: str | None = None
    urgency: str = "normal"
    overdue_since: datetime | None = None
    deadline_provisional: bool = False
    plan_due_at: datetime | None = None
    plan_replied_at: datetime | None = None
    plan_on_time: bool | None = None
    review_conclusion: str | None = None
    review_reason: str | None = None
    no_contact: bool = False
    assignments: list[AssignmentOut] = []
    extensions: list[ExtensionOut] = []
    calls: list[dict[str, Any]] = []


class TicketBrief(BaseModel):
    """One row of a list: no unmasked personal data, ever."""

    id: int
    number: str
    status: TicketStatus
    ticket_type: str
    topic: str | None
    title: str | None
    caller_phone: str | None
    lead_unit_id: int | None
    created_at: datetime
    reply_due_at: datetime | None
    overdue: bool


class RegisterOut(BaseModel):
    ticket: TicketOut
    duplicate_candidates: list[TicketBrief]


class SearchPage(BaseModel):
    items: list[TicketBrief]
    next_cursor: str | None


class EventOut(BaseModel):
    id: int
    at: datetime
    actor_id: int | None
    actor_role: str | None
    action: str
    from_status: str | None
    to_status: str | None
    unit_id: int | None
    reason: str | None
    data: dict[str, Any]
    attachments: list[dict[str, Any]]


class Timeline(BaseModel):
    ticket_id: int
    events: list[EventOut]


class UnitCount(BaseModel):
    unit_id: int
    returns: int
    reworks: int


class UnitCounts(BaseModel):
    units: list[UnitCount]
