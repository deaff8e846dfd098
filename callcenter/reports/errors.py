"""Domain errors of the reports feature (each one HTTP status and a stable code)."""

from __future__ import annotations

from callcenter.errors import DomainError


class ReportNotFound(DomainError):
    """The revisit, appeal or order does not exist or is not the principal's to see."""

    status = 404
    code = "not_found"


class ReportConflict(DomainError):
    """Not allowed in the current state (month not over, appeal decided, duplicate)."""

    status = 409
    code = "conflict"
