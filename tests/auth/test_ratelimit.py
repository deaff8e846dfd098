"""Login rate limit: a sliding window per username and per IP, stored in the database."""

from __future__ import annotations

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
