"""Login rate limit: a sliding window per username and per IP, stored in the database."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from callcenter.auth.principal import Role
from callcenter.auth.testing import TEST_PASSWORD, make_user


async def _login(client, username, password=TEST_PASSWORD):
    return await client.post("/api/v1/auth/login",
                             json={"username": username, "password": password})


async def test_too_many_failures_lock_the_username_until_the_window_slides(
        client, sessionmaker, clock):
    await make_user(sessionmaker, clock, role=Role.AGENT, username="sun")
    for _ in range(3):
        assert (await _login(client, "sun", "wrong-password")).status == 401
        clock.advance(timedelta(minutes=1))
    # Even the right password is refused while the window is full: no oracle for guessing.
    limited = await _login(client, "sun")
    assert limited.status == 429
    assert (await limited.json())["error"]["code"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) == 7 * 60 + 1
    # The first failure leaves the window 10 minutes after it happened.
    clock.advance(timedelta(minutes=7, seconds=1))
    assert (await _login(client, "sun")).status == 200


async def test_a_successful_login_clears_earlier_failures(client, sessionmaker, clock):
    await make_user(sessionmaker, clock, role=Role.AGENT, username="zhou")
    for _ in range(2):
        assert (await _login(client, "zhou", "typo-typo-typo")).status == 401
    assert (await _login(client, "zhou")).status == 200
    clock.advance(timedelta(seconds=1))
    for _ in range(2):
        assert (await _login(client, "zhou", "typo-typo-typo")).status == 401
    assert (await _login(client, "zhou")).status == 200


async def test_one_ip_trying_many_usernames_is_limited(client, sessionmaker, clock):
    await make_user(sessionmaker, clock, role=Role.AGENT, username="wu")
    for n in range(8):  # per-IP limit is 8 in this test's config
        assert (await _login(client, f"guess{n}", "password-guess")).status == 401
    assert (await _login(client, "wu")).status == 429


async def test_the_limit_is_shared_by_every_process_using_the_database(
        client, sessionmaker, clock, auth_config, db_url):
    """A second service process (own engine, own app) sees the first one's failures."""
    from aiohttp.test_utils import TestClient, TestServer

    from callcenter.auth.testing import bare_app
    from callcenter.store.engine import create_engine, create_sessionmaker

    await make_user(sessionmaker, clock, role=Role.AGENT, username="zheng")
    other_engine = create_engine(db_url)
    other_app = bare_app(create_sessionmaker(other_engine), clock, config=auth_config)
    try:
        async with TestClient(TestServer(other_app)) as other:
            for target in (client, other, client):
                assert (await _login(target, "zheng", "wrong-password")).status == 401
            assert (await _login(other, "zheng")).status == 429
    finally:
        await other_engine.dispose()


async def test_forty_parallel_guesses_get_exactly_five_password_checks(sessionmaker, clock):
    """The check and the count are one atomic step: no burst slips past the limit, and no
    failure goes uncounted (SQLite once lost some to "database is locked")."""
    from aiohttp.test_utils import TestClient, TestServer
    from sqlalchemy import select

    from callcenter.auth.models import LoginAttempt
    from callcenter.auth.testing import bare_app, test_auth_config

    config = test_auth_config()  # the defaults: 5 per username, 30 per IP
    await make_user(sessionmaker, clock, role=Role.AGENT, username="qian")
    async with TestClient(TestServer(bare_app(sessionmaker, clock, config=config))) as client:
        responses = await asyncio.gather(*(_login(client, "qian", f"guess-number-{n}")
                                           for n in range(40)))
        statuses = sorted(r.status for r in responses)
        assert statuses == [401] * 5 + [429] * 35  # 401: a password was checked
        assert (await _login(client, "qian")).status == 429  # even the right one, now
    async with sessionmaker() as session:
        attempts = (await session.scalars(select(LoginAttempt))).all()
    assert [(a.username, a.succeeded) for a in attempts] == [("qian", False)] * 5


async def test_a_successful_attempt_is_recorded_as_one_and_frees_the_user(
        client, sessionmaker, clock):
    from sqlalchemy import select

    from callcenter.auth.models import LoginAttempt

    await make_user(sessionmaker, clock, role=Role.AGENT, username="feng")
    assert (await _login(client, "feng", "wrong-password")).status == 401
    assert (await _login(client, "feng")).status == 200
    async with sessionmaker() as session:
        attempts = (await session.scalars(select(LoginAttempt).order_by(LoginAttempt.id))).all()
    assert [a.succeeded for a in attempts] == [False, True]


async def test_parallel_guesses_through_four_processes_share_the_five_checks(
        sessionmaker, clock, db_url):
    """Each process serialises its own attempts; the database serialises the processes."""
    from contextlib import AsyncExitStack

    from aiohttp.test_utils import TestClient, TestServer

    from callcenter.auth.testing import bare_app, test_auth_config
    from callcenter.store.engine import create_engine, create_sessionmaker

    config = test_auth_config()
    await make_user(sessionmaker, clock, role=Role.AGENT, username="chu")
    async with AsyncExitStack() as stack:
        clients = []
        for _ in range(4):  # four service processes: own engine, own app, own limiter
            engine = create_engine(db_url)
            stack.push_async_callback(engine.dispose)
            app = bare_app(create_sessionmaker(engine), clock, config=config)
            clients.append(await stack.enter_async_context(TestClient(TestServer(app))))
        responses = await asyncio.gather(*(_login(clients[n % 4], "chu", f"guess-{n}-x")
                                           for n in range(40)))
    assert sorted(r.status for r in responses) == [401] * 5 + [429] * 35
