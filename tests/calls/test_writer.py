"""The call-log writer: one bad row never holds the others back (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.calls.models import CallLog
from callcenter.calls.writer import CallLogWriter

AT = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


def row(linkedid: str, **changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "linkedid": linkedid, "direction": "inbound", "caller_number": "13800138000",
        "called_number": "12345", "queue": "hotline", "agent_name": None,
        "agent_interface": None, "ivr_path": None, "recording_file": None,
        "started_at": AT, "answered_at": None, "ended_at": AT, "wait_seconds": 3.0,
        "talk_seconds": 0.0, "disposition": "abandoned", "hangup_cause": 16,
        "end_estimated": False,
    }
    return {**base, **changes}


async def stored(sessionmaker: async_sessionmaker[AsyncSession]) -> dict[str, CallLog]:
    async with sessionmaker() as session:
        return {r.linkedid: r for r in (await session.scalars(select(CallLog))).all()}


async def test_text_longer_than_its_column_is_cut_to_fit(sessionmaker) -> None:
    writer = CallLogWriter(sessionmaker)
    writer.submit(row("1.1", caller_number="9" * 100, recording_file="/r/" + "x" * 300))
    await asyncio.wait_for(writer.flush(), 10)
    saved = (await stored(sessionmaker))["1.1"]
    assert saved.caller_number == "9" * 64
    assert saved.recording_file is not None and len(saved.recording_file) == 255
    assert writer.rows_rejected == 0


async def test_a_row_the_database_refuses_is_rejected_alone(sessionmaker) -> None:
    writer = CallLogWriter(sessionmaker)
    writer.submit(row("2.1"))
    writer.submit(row("2.2", started_at=None))  # NOT NULL: refused whatever we retry
    writer.submit(row("2.3"))
    await asyncio.wait_for(writer.flush(), 10)  # would retry forever before
    assert set(await stored(sessionmaker)) == {"2.1", "2.3"}
    assert (writer.rows_rejected, writer.pending) == (1, 0)
    await writer.stop()


async def test_a_row_handed_over_to_build_later_is_built_once_from_its_latest_state(
        sessionmaker) -> None:
    writer = CallLogWriter(sessionmaker)
    state = {"disposition": None, "ended_at": None}
    builds = []

    def build() -> dict[str, Any]:
        builds.append(dict(state))
        return row("3.1", **state)

    writer.submit_later(("default", "3.1"), build)  # the call starts ...
    state["disposition"] = "answered"
    writer.submit_later(("default", "3.1"), build)  # ... is answered ...
    state["ended_at"] = AT
    writer.submit_later(("default", "3.1"), build, urgent=True)  # ... and ends: one write
    await asyncio.wait_for(writer.flush(), 10)
    assert builds == [{"disposition": "answered", "ended_at": AT}]
    saved = (await stored(sessionmaker))["3.1"]
    assert saved.disposition == "answered" and saved.ended_at is not None
    assert (writer.rows_written, writer.pending) == (1, 0)
    await writer.stop()


async def test_a_row_that_cannot_be_built_is_rejected_alone(sessionmaker) -> None:
    writer = CallLogWriter(sessionmaker)

    def broken() -> dict[str, Any]:
        raise ValueError("a bug in the rules")

    writer.submit_later(("default", "4.1"), lambda: row("4.1"))
    writer.submit_later(("default", "4.2"), broken)
    writer.submit_later(("default", "4.3"), lambda: row("4.3", caller_number="9" * 100))
    await asyncio.wait_for(writer.flush(), 10)
    rows = await stored(sessionmaker)
    assert set(rows) == {"4.1", "4.3"}
    assert rows["4.3"].caller_number == "9" * 64  # built rows are cut to fit too
    assert (writer.rows_rejected, writer.pending) == (1, 0)
    await writer.stop()
