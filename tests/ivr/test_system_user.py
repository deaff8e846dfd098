"""The IVR's own user (who registers after-hours messages) is created with a password the
policy accepts, even when a random draw happens to contain its name."""

from __future__ import annotations

import itertools

from callcenter.clock import SystemClock
from callcenter.ivr.config import IvrConfig
from callcenter.ivr.service import IVR_USER, IvrService
from callcenter.tickets.calendar import WorkingCalendar


async def test_a_random_password_containing_the_name_is_drawn_again(sessionmaker,
                                                                     monkeypatch) -> None:
    import callcenter.auth.users as users

    draws = itertools.chain(["abcIVRdefghijklmnop"], iter(lambda: "Zq8-wT3_pL5xN7vR2mK9", None))
    monkeypatch.setattr(users.secrets, "token_urlsafe", lambda _n: next(draws))
    service = IvrService(sessionmaker, SystemClock(), IvrConfig(), WorkingCalendar())
    principal = await service._ivr_principal()
    assert principal.username == IVR_USER
