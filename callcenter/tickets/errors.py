"""Typed errors of the work-order domain; the HTTP layer maps each to one status code."""

from __future__ import annotations

from callcenter.errors import DomainError


class TicketError(DomainError):
    """Base of the work-order errors."""

    code = "ticket_error"


class TicketNotFound(TicketError):
    """Also raised when the ticket exists but the principal may not see it (no leak)."""

    status = 404
    code = "not_found"


class IllegalTransition(TicketError):
    """The action is not allowed in the ticket's current state."""

    status = 409
    code = "illegal_transition"

    def __init__(self, action: str, status: str) -> None:
        super().__init__(f"cannot {action} a ticket that is {status}")
        self.action = action
        self.current_status = status


class RuleViolation(TicketError):
    """A business rule forbids the action now (return window closed, extension cap...)."""

    status = 409
    code = "rule_violation"


class ConcurrentUpdate(TicketError):
    status = 409
    code = "concurrent_update"


class NotAllowed(TicketError):
    """The principal's role may not perform this action."""

    status = 403
    code = "forbidden"


class InvalidInput(TicketError):
    """A value is well-formed but wrong for the domain (unknown topic, unknown unit...)."""

    status = 422
    code = "invalid"
