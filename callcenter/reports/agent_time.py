"""Agents' time in a period, from their stored state periods (``queue_agent_periods``):
logged-in time, time per state, pause time by reason, and occupancy.

Occupancy is the share of staffed time spent handling calls: (talk + hold + after-call work)
/ (that + available + ringing). Paused time is not staffed time, and after-call work is not
a pause, though Asterisk carries it as one (a ``QueuePause`` with its own reason).
A period is clipped to the report's period; one still open counts until ``as_of``.
Summed in the database: the periods are never loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.auth.models import UtcDateTime
from callcenter.queues.models import Agent, AgentStatePeriod

HANDLING = ("on_call", "on_hold", "after_call_work")
STAFFED = ("available", "ringing", *HANDLING)
STATES = (*STAFFED, "paused")


@dataclass
class AgentTime:
    """Seconds per state (``paused`` split by reason in ``pause_by_reason``)."""

    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STATES, 0.0))
    pause_by_reason: dict[str, float] = field(default_factory=dict)

    @property
    def logged_in(self) -> float:
        return sum(self.seconds.values())

    @property
    def occupancy(self) -> float | None:
        staffed = sum(self.seconds[s] for s in STAFFED)
        return sum(self.seconds[s] for s in HANDLING) / staffed if staffed else None

    def add(self, state: str, reason: str | None, seconds: float) -> None:
        self.seconds[state] = self.seconds.get(state, 0.0) + seconds
        if state == "paused":
            key = reason or ""
            self.pause_by_reason[key] = self.pause_by_reason.get(key, 0.0) + seconds

    def as_json(self) -> dict[str, Any]:
        return {"logged_in_seconds": round(self.logged_in, 3),
                "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
                "pause_by_reason": {k: round(v, 3) for k, v in
                                    sorted(self.pause_by_reason.items())},
                "occupancy": self.occupancy}


def _seconds(start: ColumnElement[Any], end: ColumnElement[Any], dialect: str
             ) -> ColumnElement[Any]:
    if dialect == "sqlite":
        return (func.julianday(end) - func.julianday(start)) * 86400.0
    return func.extract("epoch", end - start)


def _later(a: ColumnElement[Any], b: ColumnElement[Any], dialect: str) -> ColumnElement[Any]:
    return func.max(a, b) if dialect == "sqlite" else func.greatest(a, b)


def _earlier(a: ColumnElement[Any], b: ColumnElement[Any], dialect: str) -> ColumnElement[Any]:
    return func.min(a, b) if dialect == "sqlite" else func.least(a, b)


async def agent_time(session: AsyncSession, start: datetime, end: datetime,
                     as_of: datetime | None = None) -> tuple[AgentTime, dict[str, AgentTime]]:
    """The office's agent time and each agent's (by member name) in ``[start, end)``."""
    dialect = session.bind.dialect.name
    open_until = min(end, as_of or datetime.now(UTC))
    P = AgentStatePeriod
    lo = _later(P.started_at, literal(start, UtcDateTime()), dialect)
    ended = func.coalesce(P.ended_at, literal(open_until, UtcDateTime()))
    hi = _earlier(ended, literal(end, UtcDateTime()), dialect)
    rows = (await session.execute(
        select(Agent.member_name, P.state, P.reason, func.sum(_seconds(lo, hi, dialect)))
        .join(Agent, Agent.id == P.agent_id)
        .where(P.started_at < end, ended > start, P.started_at < open_until)
        .group_by(Agent.member_name, P.state, P.reason))).all()
    office, agents = AgentTime(), {}
    for name, state, reason, seconds in rows:
        value = max(0.0, float(seconds or 0.0))
        office.add(state, reason, value)
        agents.setdefault(name, AgentTime()).add(state, reason, value)
    return office, agents
