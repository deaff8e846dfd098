"""The ticket API fixtures (``hotline``, ``clock``) of tests/tickets, shared here."""

from tests.tickets.conftest import clock, hotline, tickets_config  # noqa: F401
