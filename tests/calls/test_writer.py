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
