"""The aiohttp app factory: shared services under typed keys, one error mapping, features.

Pages (``/ui/``, ``pages.py``) are static files that read everything through the API.
Features never see globals: each reads what it needs from the keys in ``web/keys.py`` inside
its ``setup_web(app)``. Errors become JSON in one place (``errors.errors_middleware``):
``{"error": {"code": ..., "message": ..., "field": ...}}``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.bus import Bus
from callcenter.clock import Clock
from callcenter.feature import Feature
from callcenter.registry import FEATURES
from callcenter.web.errors import errors_middleware
from callcenter.web.health import setup_health
from callcenter.web.keys import BUS, CLOCK, SESSIONMAKER, SETTINGS, TELEPHONY
from callcenter.web.openapi import setup_openapi
from callcenter.web.pages import setup_pages


def create_app(settings: Any, sessionmaker: async_sessionmaker[AsyncSession], bus: Bus,
               clock: Clock, telephony: Any = None, *,
               live_calls: Callable[[], int] | None = None,
               features: Sequence[Feature] = FEATURES) -> web.Application:
    """Build the app; the caller owns (starts and stops) the services passed in."""
    app = web.Application(middlewares=[errors_middleware])
    app[SETTINGS] = settings
    app[SESSIONMAKER] = sessionmaker
    app[BUS] = bus
    app[CLOCK] = clock
    if telephony is not None:
        app[TELEPHONY] = telephony
    setup_health(app, live_calls=live_calls)
    for feature in features:
        feature.setup_web(app)
    setup_openapi(app)
    setup_pages(app)
    return app


async def serve_app(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Listen on ``host:port`` (0: any free port); the caller cleans the runner up."""
    runner = web.AppRunner(app, access_log=logging.getLogger("aiohttp.access"))
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner
