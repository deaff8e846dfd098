"""Async engine and session factory from one URL, for both supported engines.

SQLite (aiosqlite) is the embedded default: the file's folder is created, and every
connection gets WAL (readers do not block the writer), foreign keys (off by default in
SQLite) and a busy timeout (writers wait instead of failing). PostgreSQL (asyncpg) is the
production engine and gets a pool sized from the settings.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine

log = logging.getLogger(__name__)


def create_engine(url: str | URL, *, echo: bool = False, pool_size: int = 5,
                  max_overflow: int = 10, pool_timeout: float = 30.0,
                  pool_recycle: int = 1800, sqlite_busy_timeout_ms: int = 5000,
                  sqlite_foreign_keys: bool = True, pool_pre_ping: bool = True) -> AsyncEngine:
    """An async engine for ``sqlite+aiosqlite://`` or ``postgresql+asyncpg://``."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, echo, sqlite_busy_timeout_ms, sqlite_foreign_keys)
    return _create_async_engine(
        parsed, echo=echo, pool_size=pool_size, max_overflow=max_overflow,
        pool_timeout=pool_timeout, pool_recycle=pool_recycle, pool_pre_ping=pool_pre_ping,
        hide_parameters=True,  # statement parameters are callers' data: never in errors
    )


def engine_from_settings(db: Any, **overrides: Any) -> AsyncEngine:
    """Build the engine from a ``DatabaseConfig`` section."""
    options: dict[str, Any] = dict(
        echo=db.echo, pool_size=db.pool_size, max_overflow=db.max_overflow,
        pool_timeout=db.pool_timeout, pool_recycle=db.pool_recycle,
        sqlite_busy_timeout_ms=db.sqlite_busy_timeout_ms, pool_pre_ping=db.pool_pre_ping,
    )
    options.update(overrides)
    return create_engine(db.effective_url(), **options)


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions keep loaded objects usable after commit (no lazy reload in async code)."""
    return async_sessionmaker(engine, expire_on_commit=False)


async def check_health(engine: AsyncEngine) -> bool:
    """True when the database answers a trivial query."""
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means "down" for /healthz
        log.warning("database health check failed error=%r", exc)
        return False
    return True


def _sqlite_engine(url: URL, echo: bool, busy_timeout_ms: int,
                   foreign_keys: bool) -> AsyncEngine:
    database = url.database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = _create_async_engine(url, echo=echo, hide_parameters=True)
    pragmas = [
        "PRAGMA journal_mode=WAL",
        f"PRAGMA busy_timeout={int(busy_timeout_ms)}",
        f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}",
    ]

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            for pragma in pragmas:
                cursor.execute(pragma)
        finally:
            cursor.close()

    return engine
