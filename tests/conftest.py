"""Shared fixtures: real PostgreSQL, real Redis, a SQLite file, the shared/ folder.

Every test that needs PostgreSQL gets a database of its own (created and dropped here), and
every test that needs Redis gets its own key prefix, so tests can run side by side.
A missing server is an error, never a skip: CI must fail loudly.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CALLCENTER_SHARED", REPO.parent / "shared"))
CAPTURES = SHARED / "asterisk" / "captures"
SPEECH_SAMPLES = SHARED / "speech-samples"
VOSK_MODEL = SHARED / "models" / "vosk-model-small-cn-0.22"

PG_ADMIN_DSN = os.environ.get("CALLCENTER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("CALLCENTER_TEST_REDIS", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        raise RuntimeError(f"shared/ folder not found at {SHARED} (set CALLCENTER_SHARED)")
    return SHARED


@pytest.fixture(scope="session")
def captures_dir(shared_dir: Path) -> Path:
    return CAPTURES


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'callcenter.db'}"


async def _create_pg_database() -> tuple[str, str]:
    import asyncpg

    name = f"cc_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return name, f"{_pg_base()}/{name}"


_SCHEMA_TEMPLATES: dict[str, str] = {}
"""Template database per set of tables (a digest of their DDL): built once per session."""
_SCHEMA_COPIES: set[str] = set()
"""URLs of databases copied from a template: their tables exist already."""


def _schema_digest() -> str:
    from sqlalchemy.dialects import postgresql
    from sqlalchemy.schema import CreateTable

    from callcenter.store.models import Base

    dialect = postgresql.dialect()
    ddl = sorted(str(CreateTable(table).compile(dialect=dialect))
                 for table in Base.metadata.tables.values())
    return hashlib.sha256("\n".join(ddl).encode()).hexdigest()


async def _create_pg_schema_database() -> tuple[str, str]:
    """A fresh PostgreSQL database already holding every table of ``Base.metadata``.

    ``create_all`` costs seconds per test on a busy machine; copying a template built by it
    once per session (and again whenever later imports add tables) costs a fraction of one.
    """
    import asyncpg

    digest = _schema_digest()
    if digest not in _SCHEMA_TEMPLATES:
        _SCHEMA_TEMPLATES[digest] = await _build_schema_template()
    name = f"cc_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{_SCHEMA_TEMPLATES[digest]}"')
    finally:
        await admin.close()
    url = f"{_pg_base()}/{name}"
    _SCHEMA_COPIES.add(url)
    return name, url


async def _build_schema_template() -> str:
    from callcenter.store.engine import create_engine
    from callcenter.store.models import Base

    name, url = await _create_pg_database()
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
    finally:
        await engine.dispose()  # a template takes no connections while it is copied
    return name


_DROPS = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pg-drop")
"""Drops a test's database while the next test runs: a drop waits on PostgreSQL's disk."""


def _drop_later(name: str) -> None:
    import asyncio

    _DROPS.submit(asyncio.run, _drop_pg_database(name))


@pytest.fixture(scope="session", autouse=True)
def _drop_schema_templates() -> Iterator[None]:
    """At the end of the session: every test's database is gone, then the templates."""
    yield
    for name in _SCHEMA_TEMPLATES.values():
        _drop_later(name)
    _SCHEMA_TEMPLATES.clear()
    _DROPS.shutdown(wait=True)


def _pg_base() -> str:
    return PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)


async def _drop_pg_database(name: str) -> None:
    import asyncpg

    admin = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def pg_url(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database for one test; dropped afterwards.

    Unless the test also takes ``pg_schema_url``: then this is that database, schema and all.
    """
    if "pg_schema_url" in request.fixturenames:
        name, url = await _create_pg_schema_database()
    else:
        name, url = await _create_pg_database()
    yield url
    _SCHEMA_COPIES.discard(url)
    _drop_later(name)


@pytest.fixture
def pg_schema_url(pg_url: str) -> str:
    """A fresh PostgreSQL database holding the whole schema (as ``create_all`` leaves it)."""
    assert pg_url in _SCHEMA_COPIES
    return pg_url


@pytest.fixture(params=["sqlite", "postgres"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Run a store test on both engines: the embedded default and production's.

    Empty, unless the test also takes ``sessionmaker``: then PostgreSQL's copy already holds
    the schema that fixture would create."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'callcenter.db'}"
        return
    if "sessionmaker" in request.fixturenames:
        name, url = await _create_pg_schema_database()
    else:
        name, url = await _create_pg_database()
    yield url
    _SCHEMA_COPIES.discard(url)
    _drop_later(name)


@pytest.fixture
async def sessionmaker(db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on a database holding the whole schema (created from the models)."""
    from callcenter.store.engine import create_engine, create_sessionmaker
    from callcenter.store.models import Base

    engine = create_engine(db_url)
    if db_url not in _SCHEMA_COPIES:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
    yield create_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
def redis_url() -> str:
    return REDIS_URL


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix unique to this test; its keys are deleted afterwards."""
    prefix = f"cctest:{uuid.uuid4().hex[:10]}:"
    yield prefix
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
