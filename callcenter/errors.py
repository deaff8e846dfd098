"""The base of every feature's domain errors, free of HTTP.

A service raises a subclass with ``status`` (the HTTP status the web layer answers with) and
``code`` (a stable machine-readable id); ``web/errors.py`` maps it to the JSON error shape in
one place, so no ``service.py`` needs to know aiohttp.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base: ``status`` is the HTTP status, ``code`` a stable machine-readable id."""

    status = 400
    code = "domain_error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
