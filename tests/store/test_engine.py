"""The engine factory: SQLite gets its folder and pragmas, both engines report health."""

from __future__ import annotations

import socket
from pathlib import Path

from sqlalchemy import text

from callcenter.store.engine import check_health, create_engine, create_sessionmaker


async def test_sqlite_file_gets_its_folder_wal_foreign_keys_and_busy_timeout(
        tmp_path: Path) -> None:
    db_file = tmp_path / "var" / "nested" / "callcenter.db"
    engine = create_engine(f"sqlite+aiosqlite:///{db_file}", sqlite_busy_timeout_ms=7000)
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
            assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 1
            assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar() == 7000
        assert db_file.is_file()
    finally:
        await engine.dispose()


async def test_both_engines_answer_the_health_check_and_give_sessions(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        assert await check_health(engine) is True
        async with create_sessionmaker(engine)() as session:
            assert (await session.execute(text("SELECT 41 + 1"))).scalar() == 42
    finally:
        await engine.dispose()


async def test_an_unreachable_database_is_reported_down(pg_url: str) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    engine = create_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{port}/nothing")
    try:
        assert await check_health(engine) is False
    finally:
        await engine.dispose()
