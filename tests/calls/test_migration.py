"""The hand-written migration 0001_calls creates exactly the CallLog model."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from callcenter.calls.models import CallLog
from callcenter.store.base import Base

MIGRATION = (Path(__file__).resolve().parents[2] / "callcenter" / "store" / "migrations"
             / "versions" / "0001_calls.py")


def _load():
    spec = importlib.util.spec_from_file_location("migration_0001_calls", MIGRATION)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def _upgrade_and_compare(connection) -> list:
    migration = _load()
    assert (migration.revision, migration.down_revision) == ("0001_calls", None)
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    with Operations.context(context):
        migration.upgrade()
    diffs = compare_metadata(context, Base.metadata)
    return [d for d in diffs if "call_log" in repr(d)]


def _downgrade(connection) -> list[str]:
    context = MigrationContext.configure(connection)
    with Operations.context(context):
        _load().downgrade()
    return inspect(connection).get_table_names()


async def test_migration_matches_the_model(db_url: str) -> None:
    assert CallLog.__tablename__ == "call_log"
    engine = create_async_engine(db_url)
    try:
        async with engine.begin() as conn:
            assert await conn.run_sync(_upgrade_and_compare) == []
        async with engine.begin() as conn:
            assert "call_log" not in await conn.run_sync(_downgrade)
    finally:
        await engine.dispose()
