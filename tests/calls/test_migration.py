"""The call-log migrations (0001_calls, then 0005_call_truth) create exactly the call models,
and 0005 keeps the rows written before it."""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

from alembic.autogenerate import compare_metadata
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from callcenter.calls.models import CallAgentAttempt, CallLog
from callcenter.store.base import Base

VERSIONS = Path(__file__).resolve().parents[2] / "callcenter" / "store" / "migrations" / "versions"
CALL_TABLES = (CallLog.__tablename__, CallAgentAttempt.__tablename__)


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"migration_{name}", VERSIONS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def _run(connection, name: str, step: str) -> None:
    context = MigrationContext.configure(connection)
    with Operations.context(context):
        getattr(_load(name), step)()


def _compare(connection) -> list:
    context = MigrationContext.configure(connection, opts={"compare_type": True,
                                                           "compare_server_default": True})
    diffs = compare_metadata(context, Base.metadata)
    return [d for d in diffs if any(table in repr(d) for table in CALL_TABLES)]


def _old_row(connection) -> None:
    connection.execute(text(
        "INSERT INTO call_log (linkedid, pbx, direction, started_at, wait_seconds, "
        "talk_seconds, end_estimated) VALUES ('1.1', 'default', 'inbound', :at, 0, 5, false)"),
        {"at": datetime(2026, 11, 21, tzinfo=UTC)})


async def test_migrations_match_the_models_and_keep_old_rows(db_url: str) -> None:
    assert (_load("0001_calls").revision, _load("0005_call_truth").down_revision) == \
        ("0001_calls", "0004_supervision")
    engine = create_async_engine(db_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_run, "0001_calls", "upgrade")
            await conn.run_sync(_old_row)
            await conn.run_sync(_run, "0005_call_truth", "upgrade")
            assert await conn.run_sync(_compare) == []
            row = (await conn.execute(text(
                "SELECT hold_seconds, backfilled, start_estimated FROM call_log"))).one()
            assert (row[0], bool(row[1]), bool(row[2])) == (0, False, False)
            # the same Linkedid on another server is another call
            await conn.execute(text(
                "INSERT INTO call_log (linkedid, pbx, direction, started_at, wait_seconds, "
                "talk_seconds, hold_seconds, end_estimated, start_estimated, "
                "answer_estimated, backfilled) VALUES ('1.1', 'pbx-b', 'inbound', "
                "'2026-11-21 00:00:00', 0, 0, 0, false, false, false, false)"))
        async with engine.begin() as conn:
            await conn.execute(text("DELETE FROM call_log WHERE pbx = 'pbx-b'"))
            await conn.run_sync(_run, "0005_call_truth", "downgrade")
            assert "call_agent_attempt" not in await conn.run_sync(
                lambda c: inspect(c).get_table_names())
            await conn.run_sync(_run, "0001_calls", "downgrade")
            assert "call_log" not in await conn.run_sync(lambda c: inspect(c).get_table_names())
    finally:
        await engine.dispose()
