"""The pages' files are served as files, never as a path into the package, with headers
that keep scripts to the service's own; the media cookie opens recordings' audio and
nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from callcenter.auth.principal import Role
from callcenter.auth.testing import TEST_PASSWORD, make_user
from callcenter.bus.memory import MemoryBus
from callcenter.clock import SystemClock
from callcenter.settings import load_settings
from callcenter.store import migrations
from callcenter.store.engine import create_engine, create_sessionmaker
from callcenter.web.app import create_app
from callcenter.web.pages import PAGES_DIR, page_file

AUDIO = "/api/v1/recordings/7/audio"


@pytest.fixture
async def client(sqlite_url: str) -> AsyncIterator[TestClient]:
    await migrations.upgrade(sqlite_url)
    engine = create_engine(sqlite_url)
    sessionmaker = create_sessionmaker(engine)
    settings = load_settings(None, env={"CALLCENTER_AUTH__TOKEN_SECRET": "p" * 48})
    app = create_app(settings, sessionmaker, MemoryBus(), SystemClock())
    async with TestClient(TestServer(app)) as test_client:
        user = await make_user(sessionmaker, SystemClock(), role=Role.SUPERVISOR,
                               username="chief")
        test_client.user = user  # type: ignore[attr-defined]
        yield test_client
    await engine.dispose()


async def token(client: TestClient) -> str:
    response = await client.post("/api/v1/auth/login",
                                 json={"username": "chief", "password": TEST_PASSWORD})
    return (await response.json())["token"]


@pytest.mark.parametrize(("name", "expected"), [
    ("", "index.html"), ("index", "index.html"), ("dashboard", "dashboard.html"),
    ("app.js", "app.js"), ("app.css", "app.css"), ("ticket", "ticket.html"),
])
def test_a_page_name_is_a_file_of_the_pages_folder(name: str, expected: str) -> None:
    assert page_file(name) == PAGES_DIR / expected


@pytest.mark.parametrize("name", [
    "../pages.py", "..", "nothere", "index.py", "Index", ".hidden", "app.js.map", "a/b",
    "%2e%2e", "x" * 42,
])
def test_anything_else_is_no_page(name: str) -> None:
    assert page_file(name) is None


async def test_pages_are_served_with_their_type_and_security_headers(client) -> None:
    root = await client.get("/", allow_redirects=False)
    assert (root.status, root.headers["Location"]) == (302, "/ui/")
    index = await client.get("/ui/")
    assert index.status == 200 and index.content_type == "text/html"
    assert "script-src 'self';" in index.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in index.headers["Content-Security-Policy"]
    assert index.headers["X-Content-Type-Options"] == "nosniff"
    assert (await index.text()) == (PAGES_DIR / "index.html").read_text(encoding="utf-8")
    script = await client.get("/ui/app.js")
    assert script.content_type == "text/javascript"
    for path in ("/ui/..%2fpages.py", "/ui/nothere", "/ui/pages.py"):
        assert (await client.get(path)).status == 404, path


async def test_no_page_carries_an_inline_script() -> None:
    """The policy forbids them: a page with one would silently not work."""
    for page in PAGES_DIR.glob("*.html"):
        text = page.read_text(encoding="utf-8")
        assert text.count("<script") == text.count('<script src="/ui/'), page.name


async def test_the_media_cookie_is_http_only_strict_and_scoped_to_recordings(client) -> None:
    bearer = {"Authorization": f"Bearer {await token(client)}"}
    response = await client.post("/api/v1/auth/media-session", headers=bearer)
    assert response.status == 200
    cookie = response.cookies["callcenter_media"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict"
    assert cookie["path"] == "/api/v1/recordings/"
    assert 0 < int(cookie["max-age"]) <= 480 * 60
    assert (await client.post("/api/v1/auth/media-session")).status == 401


async def test_the_media_cookie_opens_audio_and_nothing_else(client) -> None:
    """A cookie of a valid session passes auth for a recording's audio (the recording does
    not exist: 404), and for nothing else: not other reads, not writes to the same path."""
    cookies = {"callcenter_media": await token(client)}
    assert (await client.get(AUDIO, cookies=cookies)).status == 404
    assert (await client.get(AUDIO, cookies={"callcenter_media": "forged"})).status == 401
    assert (await client.get(AUDIO)).status == 401
    assert (await client.get("/api/v1/recordings/7", cookies=cookies)).status == 401
    assert (await client.get("/api/v1/auth/me", cookies=cookies)).status == 401
    assert (await client.head(AUDIO, cookies=cookies)).status == 404  # HEAD: like GET
    assert (await client.post(AUDIO, cookies=cookies)).status == 401  # a write: no cookie


async def test_logging_out_clears_the_media_cookie(client) -> None:
    bearer = {"Authorization": f"Bearer {await token(client)}"}
    response = await client.delete("/api/v1/auth/media-session", headers=bearer)
    assert response.status == 204
    assert response.cookies["callcenter_media"].value == ""
    assert response.cookies["callcenter_media"]["max-age"] == "0"
