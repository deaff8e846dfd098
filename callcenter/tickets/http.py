"""The work-order API under ``/api/v1``: thin handlers over ``TicketService``.

Each route declares the roles it admits (the service checks the state machine and the
unit's hold on the order). Caller data is masked by the auth privacy policy; a read that
shows unmasked fields writes an audit row in the same transaction. Lists never show
personal data unmasked.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, ConfigDict

from callcenter.auth.principal import Principal, Role
from callcenter.auth.privacy import mask_address, mask_name, mask_phone, record_access
from callcenter.pii import mask_numbers
from callcenter.tickets.config import TicketsConfig
from callcenter.tickets.models import Ticket, TicketExtension
from callcenter.tickets.schemas import (
    AssignmentOut,
    CallerOut,
    ContactIn,
    ContactOverrideIn,
    DirectAnswerIn,
    DispatchIn,
    DraftIn,
    DraftPatch,
    EventOut,
    ExtensionDecisionIn,
    ExtensionIn,
    ExtensionOut,
    LinkDuplicateIn,
    NotAcceptIn,
    ReasonIn,
    RegisterOut,
    ReleaseAssistingIn,
    ReplyIn,
    ReviewIn,
    RevisitIn,
    ReworkIn,
    SearchPage,
    SearchQuery,
    SilentAssistingIn,
    TicketBrief,
    TicketOut,
    Timeline,
    UnitCount,
    UnitCounts,
)
from callcenter.tickets.service import Loaded, TicketService
from callcenter.web.keys import CLOCK, PII_POLICY, SESSIONMAKER, SETTINGS
from callcenter.web.request import API_PREFIX, client_ip, path_int
from callcenter.web.routing import Api

log = logging.getLogger(__name__)

TICKETS: web.AppKey[TicketService] = web.AppKey("tickets", TicketService)
PREFIX = API_PREFIX
ONE = PREFIX + "/tickets/{ticket_id}"

FREE_TEXT = ("title", "content", "location", "complained_party", "review_reason")
"""Fields where a caller's number may have been typed."""

ALL = (Role.AGENT, Role.UNIT_HANDLER, Role.SUPERVISOR, Role.ADMIN)
INTAKE = (Role.AGENT, Role.SUPERVISOR, Role.ADMIN)
OFFICE = (Role.SUPERVISOR, Role.ADMIN)
UNIT = (Role.UNIT_HANDLER,)

api = Api()


class TicketQuery(BaseModel):
    """``need`` says why the caller's data is wanted; the privacy policy decides by it."""

    model_config = ConfigDict(extra="forbid")
    need: Literal["view", "contact", "revisit"] = "view"


class CountsQuery(BaseModel):
    """Bounds (ISO datetimes with a zone) of the events counted."""

    model_config = ConfigDict(extra="forbid")
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None


def _service(request: web.Request) -> TicketService:
    return request.app[TICKETS]


# --- rendering -----------------------------------------------------------------------------


def masked_caller(ticket: Ticket) -> CallerOut:
    """The caller as every list and every action response shows it: masked, whoever asks."""
    return CallerOut(name=mask_name(ticket.caller_name), phone=mask_phone(ticket.caller_phone),
                     address=mask_address(ticket.caller_address), anonymous=ticket.anonymous,
                     masked=True)


def policy_caller(request: web.Request, principal: Principal, ticket: Ticket, need: str,
                  unit_id: int | None) -> tuple[CallerOut, list[str]]:
    """The caller as the privacy policy lets ``principal`` see it for ``need``."""
    caller = {"name": ticket.caller_name, "phone": ticket.caller_phone,
              "address": ticket.caller_address, "anonymous": ticket.anonymous}
    shown, revealed = request.app[PII_POLICY].view(principal, caller, need=need,
                                                  assigned_unit_id=unit_id)
    out = CallerOut(name=shown.get("name"), phone=shown.get("phone"),
                    address=shown.get("address"), anonymous=ticket.anonymous,
                    masked=not revealed)
    return out, revealed


def ticket_out(service: TicketService, ticket: Ticket, caller: CallerOut,
               details: tuple[Any, Any, Any] | None = None) -> TicketOut:
    values = {name: getattr(ticket, name) for name in TicketOut.model_fields
              if hasattr(ticket, name) and name not in ("caller", "assignments", "extensions",
                                                        "calls")}
    out = TicketOut(caller=caller, overdue=service.is_overdue(ticket), **values)
    if details is not None:
        assignments, extensions, calls = details
        out.assignments = [AssignmentOut.model_validate(a, from_attributes=True)
                           for a in assignments]
        out.extensions = [extension_out(e) for e in extensions]
        out.calls = [{"linkedid": c.linkedid, "purpose": c.purpose,
                      "recording_ref": c.recording_ref, "linked_at": c.linked_at.isoformat()}
                     for c in calls]
    return out


def brief(service: TicketService, ticket: Ticket) -> TicketBrief:
    return TicketBrief(id=ticket.id, number=ticket.number, status=ticket.status,
                       ticket_type=ticket.ticket_type, topic=ticket.topic,
                       title=mask_text(ticket.title),
                       caller_phone=None if ticket.anonymous else mask_phone(ticket.caller_phone),
                       lead_unit_id=ticket.lead_unit_id, created_at=ticket.created_at,
                       reply_due_at=ticket.reply_due_at, overdue=service.is_overdue(ticket))


def extension_out(extension: TicketExtension) -> ExtensionOut:
    return ExtensionOut.model_validate(extension, from_attributes=True)


def _done(request: web.Request, principal: Principal, ticket: Ticket) -> TicketOut:
    out = ticket_out(_service(request), ticket, masked_caller(ticket))
    return out if reads_numbers(request, principal, ticket, ticket.lead_unit_id) \
        else numbers_masked(out)


def reads_numbers(request: web.Request, principal: Principal, ticket: Ticket | None,
                  unit_id: int | None) -> bool:
    """Whether ``principal`` may read phone and ID numbers typed into the order's free text:
    the right to see the caller's phone for an ordinary view (agents, supervisors)."""
    allowed = request.app[PII_POLICY].allowed_fields(
        principal, need="view", assigned_unit_id=unit_id,
        anonymous=bool(ticket and ticket.anonymous))
    return "phone" in allowed


def numbers_masked(out: TicketOut) -> TicketOut:
    """The order with the numbers in its free text masked, as its structured fields are."""
    return out.model_copy(update={name: mask_text(getattr(out, name))
                                  for name in FREE_TEXT})


def mask_text(value: Any) -> Any:
    """Strings (also inside lists and dicts) with their phone and ID numbers masked."""
    if isinstance(value, str):
        return mask_numbers(value)
    if isinstance(value, list):
        return [mask_text(item) for item in value]
    if isinstance(value, dict):
        return {key: mask_text(item) for key, item in value.items()}
    return value


# --- reads -------------------------------------------------------------------------------


@api.route("GET", PREFIX + "/tickets", summary="Search and filter tickets (newest first)",
           roles=ALL, query=SearchQuery, response=SearchPage)
async def search(request: web.Request, principal: Principal, query: SearchQuery) -> SearchPage:
    """Keyset pagination: pass ``next_cursor`` back as ``cursor``. Units see only their own."""
    service = _service(request)
    result = await service.search(principal, query)
    return SearchPage(items=[brief(service, t) for t in result.tickets],
                      next_cursor=result.next_cursor)


@api.route("GET", ONE, summary="One ticket, caller data as the privacy policy allows",
           roles=ALL, query=TicketQuery, response=TicketOut)
async def get_ticket(request: web.Request, principal: Principal, query: TicketQuery
                     ) -> TicketOut:
    """Unmasked caller fields are written to the audit log with the reason (``need``)."""
    service = _service(request)
    ticket_id = path_int(request, "ticket_id")
    async with request.app[SESSIONMAKER]() as session, session.begin():
        loaded: Loaded = await service.get(session, principal, ticket_id)
        ticket = loaded.ticket
        unit_id = loaded.assignment.unit_id if loaded.assignment else ticket.lead_unit_id
        caller, revealed = policy_caller(request, principal, ticket, query.need, unit_id)
        if revealed:
            await record_access(session, principal, action=f"ticket.{query.need}",
                                object_type="ticket", object_id=ticket.id, fields=revealed,
                                ip=client_ip(request), clock=request.app[CLOCK])
        out = ticket_out(service, ticket, caller, await service.details(session, ticket.id))
        return out if reads_numbers(request, principal, ticket, unit_id) else numbers_masked(out)


@api.route("GET", ONE + "/timeline", summary="Every event of a ticket, oldest first",
           roles=ALL, response=Timeline)
async def timeline(request: web.Request, principal: Principal, _: None) -> Timeline:
    ticket_id = path_int(request, "ticket_id")
    events = [EventOut.model_validate(e, from_attributes=True)
              for e in await _service(request).timeline(principal, ticket_id)]
    if not reads_numbers(request, principal, None, principal.unit_id):
        events = [e.model_copy(update={"reason": mask_text(e.reason), "data": mask_text(e.data)})
                  for e in events]
    return Timeline(ticket_id=ticket_id, events=events)


@api.route("GET", PREFIX + "/ticket-counts/units",
           summary="Returns and reworks per unit (a unit sees its own)", roles=ALL,
           query=CountsQuery, response=UnitCounts)
async def unit_counts(request: web.Request, principal: Principal, query: CountsQuery
                      ) -> UnitCounts:
    counts = await _service(request).unit_counts(principal, since=query.since,
                                                 until=query.until)
    return UnitCounts(units=[UnitCount(unit_id=u, **c) for u, c in sorted(counts.items())])


# --- intake ------------------------------------------------------------------------------


@api.route("POST", PREFIX + "/tickets", summary="Create a draft ticket", roles=INTAKE,
           body=DraftIn, response=TicketOut, status=201)
async def create(request: web.Request, principal: Principal, body: DraftIn) -> TicketOut:
    return _done(request, principal, await _service(request).create_draft(principal, body))


@api.route("PATCH", ONE, summary="Change a draft", roles=INTAKE, body=DraftPatch,
           response=TicketOut)
async def update(request: web.Request, principal: Principal, body: DraftPatch) -> TicketOut:
    ticket = await _service(request).update_draft(principal, path_int(request, "ticket_id"),
                                                  body)
    return _done(request, principal, ticket)


@api.route("POST", ONE + "/register", summary="Register a draft; lists duplicate candidates",
           roles=INTAKE, response=RegisterOut)
async def register(request: web.Request, principal: Principal, _: None) -> RegisterOut:
    service = _service(request)
    ticket, candidates = await service.register(principal, path_int(request, "ticket_id"))
    return RegisterOut(ticket=_done(request, principal, ticket),
                       duplicate_candidates=[brief(service, t) for t in candidates])


@api.route("POST", ONE + "/link-duplicate", summary="Merge into an earlier ticket",
           roles=INTAKE, body=LinkDuplicateIn, response=TicketOut)
async def link_duplicate(request: web.Request, principal: Principal, body: LinkDuplicateIn
                         ) -> TicketOut:
    ticket = await _service(request).link_duplicate(principal, path_int(request, "ticket_id"),
                                                    body.duplicate_of)
    return _done(request, principal, ticket)


@api.route("POST", ONE + "/direct-answer", summary="Close at once from the knowledge base",
           roles=INTAKE, body=DirectAnswerIn, response=TicketOut)
async def direct_answer(request: web.Request, principal: Principal, body: DirectAnswerIn
                        ) -> TicketOut:
    ticket = await _service(request).direct_answer(principal, path_int(request, "ticket_id"),
                                                   body)
    return _done(request, principal, ticket)


@api.route("POST", ONE + "/not-accept", summary="Refuse the request (regulation art. 8)",
           roles=INTAKE, body=NotAcceptIn, response=TicketOut)
async def not_accept(request: web.Request, principal: Principal, body: NotAcceptIn
                     ) -> TicketOut:
    ticket = await _service(request).not_accept(principal, path_int(request, "ticket_id"), body)
    return _done(request, principal, ticket)


@api.route("POST", ONE + "/escalate", summary="Send to a leader to name the unit (批办)",
           roles=INTAKE, body=ReasonIn, response=TicketOut)
async def escalate(request: web.Request, principal: Principal, body: ReasonIn) -> TicketOut:
    ticket = await _service(request).escalate(principal, path_int(request, "ticket_id"),
                                              body.reason)
    return _done(request, principal, ticket)


# --- office ------------------------------------------------------------------------------


@api.route("POST", ONE + "/dispatch", summary="Dispatch (or re-dispatch) to units",
           roles=OFFICE, body=DispatchIn, response=TicketOut)
async def dispatch(request: web.Request, principal: Principal, body: DispatchIn) -> TicketOut:
    ticket = await _service(request).dispatch(principal, path_int(request, "ticket_id"), body)
    return _done(request, principal, ticket)


@api.route("POST", ONE + "/extensions/{extension_id}/decision",
           summary="Approve or refuse an extension request", roles=OFFICE,
           body=ExtensionDecisionIn, response=ExtensionOut)
async def decide_extension(request: web.Request, principal: Principal,
                           body: ExtensionDecisionIn) -> ExtensionOut:
    extension = await _service(request).decide_extension(
        principal, path_int(request, "ticket_id"), path_int(request, "extension_id"), body)
    return extension_out(extension)


@api.route("POST", ONE + "/rework", summary="Send a reply back for rework (返工)",
           roles=OFFICE, body=ReworkIn, response=TicketOut)
async def rework(request: web.Request, principal: Principal, body: ReworkIn) -> TicketOut:
    ticket = await _service(request).rework(principal, path_int(request, "ticket_id"), body)
    return _done(request, principal, ticket)


@api.route("POST", ONE + "/revisit", summary="Record the revisit result (回访)", roles=INTAKE,
           body=RevisitIn, response=TicketOut)
async def revisit(request: web.Request, principal: Principal, body: RevisitIn) -> TicketOut:
    ticket = await _service(request).record_revisit(principal, path_int(request, "ticket_id"),
                                                    body)
    return _done(request, principal, ticket)


@api.route("POST", ONE + "/review", summary="Conclude an unsatisfied revisit: explained",
           roles=OFFICE, body=ReviewIn, response=TicketOut)
async def review(request: web.Request, principal: Principal, body: ReviewIn) -> TicketOut:
    ticket = await _service(request).review(principal, path_int(request, "ticket_id"), body)
    return _done(request, principal, ticket)


@api.route("POST", ONE + "/assisting/release",
           summary="Release a silent assisting unit (the lead unit reported it)",
           roles=OFFICE, body=ReleaseAssistingIn, response=TicketOut)
async def release_assisting(request: web.Request, principal: Principal,
                            body: ReleaseAssistingIn) -> TicketOut:
    ticket = await _service(request).release_assisting(principal,
                                                       path_int(request, "ticket_id"), body)
    return _done(request, principal, ticket)


@api.route("POST", ONE + "/archive", summary="Archive (归档)", roles=OFFICE,
           response=TicketOut)
async def archive(request: web.Request, principal: Principal, _: None) -> TicketOut:
    ticket = await _service(request).archive(principal, path_int(request, "ticket_id"))
    return _done(request, principal, ticket)


# --- unit --------------------------------------------------------------------------------


@api.route("POST", ONE + "/accept", summary="Accept a dispatched ticket (接收)", roles=UNIT,
           response=TicketOut)
async def accept(request: web.Request, principal: Principal, _: None) -> TicketOut:
    ticket = await _service(request).accept(principal, path_int(request, "ticket_id"))
    return _done(request, principal, ticket)


@api.route("POST", ONE + "/start", summary="Start handling", roles=UNIT, response=TicketOut)
async def start(request: web.Request, principal: Principal, _: None) -> TicketOut:
    ticket = await _service(request).start(principal, path_int(request, "ticket_id"))
    return _done(request, principal, ticket)


@api.route("POST", ONE + "/return", summary="Return: not this unit's matter (退件, same day)",
           roles=UNIT, body=ReasonIn, response=TicketOut)
async def return_order(request: web.Request, principal: Principal, body: ReasonIn
                       ) -> TicketOut:
    ticket = await _service(request).return_order(principal, path_int(request, "ticket_id"),
                                                  body.reason)
    return _done(request, principal, ticket)


@api.route("POST", ONE + "/contact", summary="Record contact with the citizen", roles=UNIT,
           body=ContactIn, response=TicketOut)
async def contact(request: web.Request, principal: Principal, body: ContactIn) -> TicketOut:
    ticket = await _service(request).record_contact(principal, path_int(request, "ticket_id"),
                                                    body)
    return _done(request, principal, ticket)


@api.route("POST", ONE + "/contact-override",
           summary="Let the unit reply without a contact record (a supervisor, with a reason)",
           roles=OFFICE, body=ContactOverrideIn, response=TicketOut)
async def contact_override(request: web.Request, principal: Principal, body: ContactOverrideIn
                           ) -> TicketOut:
    ticket = await _service(request).contact_override(
        principal, path_int(request, "ticket_id"), body)
    return _done(request, principal, ticket)


@api.route("POST", ONE + "/reply", summary="Reply: final, promised plan, or assisting unit's",
           roles=UNIT, body=ReplyIn, response=TicketOut)
async def reply(request: web.Request, principal: Principal, body: ReplyIn) -> TicketOut:
    ticket = await _service(request).reply(principal, path_int(request, "ticket_id"), body)
    return _done(request, principal, ticket)


@api.route("POST", ONE + "/assisting/silent",
           summary="Lead unit: report an assisting unit that stays silent", roles=UNIT,
           body=SilentAssistingIn, response=TicketOut)
async def report_silent(request: web.Request, principal: Principal, body: SilentAssistingIn
                        ) -> TicketOut:
    ticket = await _service(request).report_silent(principal, path_int(request, "ticket_id"),
                                                   body)
    return _done(request, principal, ticket)


@api.route("POST", ONE + "/extensions", summary="Request an extension (延期)", roles=UNIT,
           body=ExtensionIn, response=ExtensionOut, status=201)
async def request_extension(request: web.Request, principal: Principal, body: ExtensionIn
                            ) -> ExtensionOut:
    extension = await _service(request).request_extension(
        principal, path_int(request, "ticket_id"), body)
    return extension_out(extension)


# --- wiring ------------------------------------------------------------------------------


def build_service(app: web.Application, config: TicketsConfig) -> TicketService:
    """Load and check the taxonomy and the calendar: a bad file stops the start."""
    service = TicketService.from_config(app[SESSIONMAKER], app[CLOCK], config)
    calendar = service.calendar
    calendar.check_years(calendar.local_date(app[CLOCK].now()))  # logs each provisional year
    return service


def setup_web(app: web.Application, config: TicketsConfig | None = None) -> None:
    """Register the ticket routes (after auth's ``setup_web``).

    ``config`` defaults to ``app[SETTINGS].tickets`` when settings are present.
    """
    if config is None:
        settings = app.get(SETTINGS)
        config = getattr(settings, "tickets", None) or TicketsConfig()
    app[TICKETS] = build_service(app, config)
    api.install(app)
    log.info("tickets_api_ready routes=%d", len(api.routes))
