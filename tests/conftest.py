"""Shared fixtures: real PostgreSQL, real Redis, a SQLite file, the shared/ folder.

Every test that needs PostgreSQL gets a database of its own (created and dropped here), and
every test that needs Redis gets its own key prefix, so tests can run side by side.
A missing server is an error, never a skip: CI must fail loudly.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
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
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return name, f"{base}/{name}"


async def _drop_pg_database(name: str) -> None:
    import asyncpg

    admin = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database for one test; dropped afterwards."""
    name, url = await _create_pg_database()
    yield url
    await _drop_pg_database(name)


@pytest.fixture(params=["sqlite", "postgres"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Run a store test on both engines: the embedded default and production's."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'callcenter.db'}"
        return
    name, url = await _create_pg_database()
    yield url
    await _drop_pg_database(name)


@pytest.fixture
async def sessionmaker(db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on a database holding the whole schema (created from the models)."""
    from callcenter.store.engine import create_engine, create_sessionmaker
    from callcenter.store.models import Base

    engine = create_engine(db_url)
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
