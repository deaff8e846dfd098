"""The migrations build exactly the queues models, on SQLite and PostgreSQL, and goes back."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import callcenter.queues.models  # noqa: F401  the queues tables in Base.metadata
from callcenter.store import migrations
from callcenter.store.engine import create_engine
from callcenter.store.models import Base


def _diff(connection: Any) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "compare_server_default": True})
    return compare_metadata(context, Base.metadata)


async def test_migrated_schema_equals_the_models_with_the_queues_tables(db_url: str) -> None:
    await migrations.upgrade(db_url)
    engine = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
    finally:
        await engine.dispose()
