"""Typed keys under which the app factory stores shared services.

Every feature's ``setup_web(app)`` reads what it needs from here instead of globals.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import async_sessionmaker

    from callcenter.auth.privacy import PiiPolicy
    from callcenter.bus import Bus
    from callcenter.clock import Clock

SETTINGS: web.AppKey[Any] = web.AppKey("settings", object)
SESSIONMAKER: web.AppKey[async_sessionmaker] = web.AppKey("sessionmaker", object)
BUS: web.AppKey[Bus] = web.AppKey("bus", object)
CLOCK: web.AppKey[Clock] = web.AppKey("clock", object)
TELEPHONY: web.AppKey[Any] = web.AppKey("telephony", object)
PII_POLICY: web.AppKey[PiiPolicy] = web.AppKey("pii_policy", object)
"""Who may see which personal data unmasked (set up by auth, used by every feature)."""
