"""No personal data in the logs: the error paths are driven over real TCP with a citizen's
phone number, name and address and a bearer token planted, and the log file the service
writes is searched for them.

The failed write is real: a trigger makes the database refuse every new order, so the
statement (with the caller's data as parameters) fails inside the driver.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import aiohttp
import pytest
from sqlalchemy import text

from callcenter.auth.principal import Role
from callcenter.auth.testing import bearer, make_user, token_for
from callcenter.bus.memory import MemoryBus
from callcenter.clock import SystemClock
from callcenter.logging import setup_logging
from callcenter.settings import load_settings
from callcenter.store import migrations
from callcenter.store.engine import create_engine, create_sessionmaker
from callcenter.web.app import create_app, serve_app

PHONE = "13987654321"
NAME = "欧阳秘密"
ADDRESS = "幸福路88号3单元"

REFUSE_SQLITE = ("CREATE TRIGGER refuse_orders BEFORE INSERT ON tickets "
                 "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",)
REFUSE_PG = ("CREATE FUNCTION refuse_orders() RETURNS trigger AS $$ BEGIN "
             "RAISE EXCEPTION 'refused by the test'; END $$ LANGUAGE plpgsql",
             "CREATE TRIGGER refuse_orders BEFORE INSERT ON tickets "
             "FOR EACH ROW EXECUTE FUNCTION refuse_orders()")


@pytest.fixture
def log_file(tmp_path: Path) -> AsyncIterator[Path]:
    """The service's own log setup, writing to a file (access log on), restored after."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level,
             logging.getLogger("aiohttp.access").level)
    path = tmp_path / "service.log"
    setup_logging("INFO", "text", access_log=True, path=path)
    yield path
    for handler in list(root.handlers):
        if handler not in saved[0]:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(saved[1])
    logging.getLogger("aiohttp.access").setLevel(saved[2])


async def test_error_paths_leave_no_phone_name_address_or_token_in_the_log(
        db_url: str, log_file: Path) -> None:
    await migrations.upgrade(db_url)
    engine = create_engine(db_url)
    sessionmaker = create_sessionmaker(engine)
    settings = load_settings(None, env={"CALLCENTER_DATABASE__URL": db_url})
    clock = SystemClock()
    agent = await make_user(sessionmaker, clock, role=Role.AGENT)
    token = token_for(agent, settings.auth, clock)
    refuse = REFUSE_PG if db_url.startswith("postgresql") else REFUSE_SQLITE
    async with engine.begin() as connection:
        for statement in refuse:
            await connection.execute(text(statement))
    runner = await serve_app(create_app(settings, sessionmaker, MemoryBus(), clock),
                             "127.0.0.1", 0)
    base = f"http://127.0.0.1:{runner.addresses[0][1]}/api/v1"
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(6):  # failures, then the rate limit, with a phone as the name
                async with http.post(f"{base}/auth/login",
                                     json={"username": PHONE, "password": "wrong"}) as r:
                    assert r.status in (401, 429)
            assert r.status == 429
            async with http.get(f"{base}/tickets", params={"text": f"停水 {NAME} {PHONE}"},
                                headers=bearer(token)) as r:
                assert r.status == 200
            draft = {"caller": {"name": NAME, "phone": PHONE, "address": ADDRESS},
                     "content": f"{NAME}住{ADDRESS}，电话{PHONE}"}
            async with http.post(f"{base}/tickets", json=draft, headers=bearer(token)) as r:
                assert r.status >= 500  # the database refused the write
            async with http.get(f"{base}/notifications/ws",
                                params={"access_token": token}) as r:
                assert r.status in (400, 401, 403)
    finally:
        await runner.cleanup()
        await engine.dispose()
    for handler in logging.getLogger().handlers:
        handler.flush()
    written = log_file.read_text(encoding="utf-8")
    # The paths were taken and logged...
    assert "login_failed" in written and "login_rate_limited" in written
    assert "refused by the test" in written
    assert "GET /api/v1/tickets?text=*** HTTP/1.1" in written
    # ...and none of the planted data is there.
    for secret in (PHONE, NAME, ADDRESS, quote(NAME), token, token[-20:]):
        assert secret not in written
