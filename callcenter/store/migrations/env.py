"""Alembic environment: one metadata (every model), async URLs on both engines.

Normally ``callcenter.store.migrations.upgrade`` hands a live connection in through
``config.attributes["connection"]``. Run by the ``alembic`` command line instead (for
``alembic revision --autogenerate`` while writing a migration), it reads the URL from
``-x url=...`` or ``CALLCENTER_DATABASE__URL``.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from alembic import context

from callcenter.store.engine import create_engine
from callcenter.store.models import Base

target_metadata = Base.metadata


def _configure(connection: Any) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        compare_server_default=True,
    )


def _run(connection: Any) -> None:
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url")
    url = url or os.environ.get("CALLCENTER_DATABASE__URL") or "sqlite+aiosqlite:///var/callcenter.db"
    return url


async def _run_with_own_engine() -> None:
    engine = create_engine(_url(), sqlite_foreign_keys=False)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_run)
    finally:
        await engine.dispose()


def _offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata,
                      literal_binds=True, render_as_batch=_url().startswith("sqlite"))
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    _offline()
elif (given := context.config.attributes.get("connection")) is not None:
    _run(given)
else:
    asyncio.run(_run_with_own_engine())
