"""The other first-contact rule an office may choose: by the end of the next working day
after dispatch (``tickets.first_contact``), never on a holiday."""

from __future__ import annotations

import pytest

from callcenter.tickets.config import FirstContactDeadline, TicketsConfig
from tests.tickets.conftest import Hotline, local


@pytest.fixture
def tickets_config() -> TicketsConfig:
    return TicketsConfig(first_contact=FirstContactDeadline(start="dispatch",
                                                            mode="working_days", days=1))


async def test_first_contact_by_the_next_working_day_after_dispatch(hotline: Hotline) -> None:
    h = hotline
    h.clock.set(local(2026, 9, 30, 17, 30))  # 1-7 Oct 2026 are holidays
    dispatched = await h.dispatched()
    assert dispatched["first_contact_due_at"].startswith("2026-10-08T15:59:59")
    h.clock.set(local(2026, 10, 8, 9))
    accepted = await h.call(h.handler_a, "POST", f"/tickets/{dispatched['id']}/accept",
                            expect=200)
    assert accepted["first_contact_due_at"] == dispatched["first_contact_due_at"]


async def test_an_anonymous_order_gets_no_contact_deadline_at_dispatch(hotline: Hotline
                                                                      ) -> None:
    h = hotline
    dispatched = await h.dispatched(anonymous=True, caller={})
    assert dispatched["first_contact_due_at"] is None
