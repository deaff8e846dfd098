"""The work order's state machine as one explicit table.

Each ``Action`` names the ticket states it may start from, the state it leads to (``None``
when the action changes a unit's share of the order but not the order's own state: an
assisting unit's reply, a contact record, an extension request) and the roles that may take
it. The service layer checks every action against this table before touching a row.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from callcenter.auth.principal import Role
from callcenter.tickets.errors import IllegalTransition, NotAllowed
from callcenter.tickets.models import TicketStatus as S


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    REGISTER = "register"
    LINK_DUPLICATE = "link_duplicate"
    DIRECT_ANSWER = "direct_answer"
    NOT_ACCEPT = "not_accept"
    ESCALATE = "escalate"
    DISPATCH = "dispatch"
    ACCEPT = "accept"
    START = "start"
    RETURN = "return"
    CONTACT = "contact"
    REPLY_PLAN = "reply_plan"  # promised order: plan + promised completion date
    REPLY = "reply"  # the (final) reply of the lead unit, or an assisting unit's reply
    REQUEST_EXTENSION = "request_extension"
    DECIDE_EXTENSION = "decide_extension"
    REWORK = "rework"  # 返工: after the reply, the plan, or a revisit (with the office's review)
    REVISIT = "revisit"
    REVIEW = "review"  # the office concludes an unsatisfied revisit without rework (已解释)
    REPORT_SILENT = "report_silent"  # the lead unit reports a silent assisting unit
    RELEASE_ASSISTING = "release_assisting"  # the office releases it; the lead closes alone
    ARCHIVE = "archive"


OFFICE = frozenset({Role.SUPERVISOR, Role.ADMIN})
INTAKE = frozenset({Role.AGENT, Role.SUPERVISOR, Role.ADMIN})
UNIT = frozenset({Role.UNIT_HANDLER})

# A unit holds an order in these states; deadlines run and "overdue" is meaningful.
OPEN_AT_UNIT = frozenset({S.DISPATCHED, S.ACCEPTED, S.IN_PROGRESS, S.PROMISED})
WORKING = frozenset({S.ACCEPTED, S.IN_PROGRESS, S.PROMISED})


@dataclass(frozen=True)
class Transition:
    sources: frozenset[S]
    target: S | None
    roles: frozenset[Role]


TRANSITIONS: dict[Action, Transition] = {
    Action.UPDATE: Transition(frozenset({S.DRAFT}), None, INTAKE),
    Action.REGISTER: Transition(frozenset({S.DRAFT}), S.REGISTERED, INTAKE),
    Action.LINK_DUPLICATE: Transition(frozenset({S.DRAFT, S.REGISTERED}), S.MERGED, INTAKE),
    Action.DIRECT_ANSWER: Transition(frozenset({S.REGISTERED}), S.CLOSED, INTAKE),
    Action.NOT_ACCEPT: Transition(frozenset({S.REGISTERED}), S.NOT_ACCEPTED, INTAKE),
    Action.ESCALATE: Transition(frozenset({S.REGISTERED, S.RETURNED}), S.ESCALATED, INTAKE),
    # Re-dispatch after an unsatisfied revisit goes to another unit (the same unit gets a
    # rework instead); the service checks.
    Action.DISPATCH: Transition(
        frozenset({S.REGISTERED, S.ESCALATED, S.RETURNED, S.REVISITED}), S.DISPATCHED, OFFICE
    ),
    Action.ACCEPT: Transition(frozenset({S.DISPATCHED}), S.ACCEPTED, UNIT),
    Action.START: Transition(frozenset({S.ACCEPTED}), S.IN_PROGRESS, UNIT),
    Action.RETURN: Transition(frozenset({S.DISPATCHED, S.ACCEPTED}), S.RETURNED, UNIT),
    Action.CONTACT: Transition(OPEN_AT_UNIT, None, UNIT),
    Action.REPLY_PLAN: Transition(frozenset({S.IN_PROGRESS}), S.PROMISED, UNIT),
    Action.REPLY: Transition(frozenset({S.IN_PROGRESS, S.PROMISED}), S.REPLIED, UNIT),
    Action.REQUEST_EXTENSION: Transition(WORKING, None, UNIT),
    Action.DECIDE_EXTENSION: Transition(OPEN_AT_UNIT, None, OFFICE),
    Action.REWORK: Transition(frozenset({S.REPLIED, S.PROMISED, S.REVISITED}), S.IN_PROGRESS,
                              OFFICE),
    # Again from "revisited" only after "unreachable" (a late reply); the service checks.
    Action.REVISIT: Transition(frozenset({S.REPLIED, S.CLOSED, S.REVISITED}), S.REVISITED,
                               INTAKE),
    Action.REVIEW: Transition(frozenset({S.REVISITED}), None, OFFICE),
    Action.REPORT_SILENT: Transition(WORKING, None, UNIT),
    Action.RELEASE_ASSISTING: Transition(OPEN_AT_UNIT, None, OFFICE),
    # From "replied" only an anonymous order (nobody to call back); the service checks.
    Action.ARCHIVE: Transition(frozenset({S.REVISITED, S.CLOSED, S.REPLIED}), S.ARCHIVED,
                               OFFICE),
}

# Assisting units of a co-handled order act on their own share while the order is open.
ASSISTING_SOURCES: dict[Action, frozenset[S]] = {
    Action.ACCEPT: OPEN_AT_UNIT,
    Action.RETURN: OPEN_AT_UNIT,
    Action.REPLY: OPEN_AT_UNIT,
    Action.CONTACT: OPEN_AT_UNIT,
}


def authorize(action: Action, role: Role) -> None:
    """Raise ``NotAllowed`` unless ``role`` may take ``action`` at all."""
    roles = INTAKE if action is Action.CREATE else TRANSITIONS[action].roles
    if role not in roles:
        raise NotAllowed(f"role {role} may not {action} a ticket")


def check(action: Action, status: str, *, assisting: bool = False) -> Transition:
    """The transition for ``action`` from ``status``; ``IllegalTransition`` when there is none."""
    transition = TRANSITIONS[action]
    sources = ASSISTING_SOURCES.get(action, frozenset()) if assisting else transition.sources
    if S(status) not in sources:
        raise IllegalTransition(action.value, status)
    return transition
