"""Queue and agent statistics per 15-minute interval, kept in the database for reports.

Each interval row is recomputed from the facts (the queue visits, ``visits.py``, and the
agents' state periods)
until the calls in it are over, so a row is always what the facts say, whoever computed it
and however often (the worker recomputes the last ``lookback`` at each pass).

Definitions (as on the wallboard, and as Asterisk counts ``QueueParams``):
- a queue visit counts in the interval it started in, once it left the queue (a call
  transferred into another queue counts in both, as in Asterisk);
  offered = answered + abandoned + timeouts + other exits; ``answered_within_target``
  waited at most ``service_level_seconds`` (Asterisk's ``ServicelevelPerf`` is
  answered_within_target / answered); ``wait``/``talk``/``hold``/``wrap`` sum the answered
  calls (wrap: finished after-call work of the call);
- an agent's seconds per state are the parts of its periods inside the interval (login time
  is their sum: logged out is the absence of periods); a call offered is a ring of a queue
  call, answered when the agent's next period is that call's ``on_call``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    delete,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.queues.models import (
    AgentInterval,
    AgentStatePeriod,
    QueueInterval,
    QueueVisit,
)
from callcenter.queues.wallboard import after_call_work, tally

INTERVAL = timedelta(minutes=15)
PERIOD_MARGIN = timedelta(hours=12)
"""Periods are read from this long before the range, to find the ring before an answer."""


STATE_COLUMNS = {"available": "available_seconds", "ringing": "ringing_seconds",
                 "on_call": "on_call_seconds", "on_hold": "on_hold_seconds",
                 "after_call_work": "after_call_work_seconds", "paused": "paused_seconds"}


def interval_of(at: datetime) -> datetime:
    """The start of the 15-minute interval holding ``at`` (UTC; every zone's quarter hours
    are UTC quarter hours)."""
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)  # SQLite: UTC
    return at.replace(minute=at.minute // 15 * 15, second=0, microsecond=0)


@dataclass
class Range:
    since: datetime
    until: datetime

    @classmethod
    def around(cls, now: datetime, lookback: timedelta) -> Range:
        """From the interval ``lookback`` before ``now`` to the end of now's interval."""
        return cls(interval_of(now - lookback), interval_of(now) + INTERVAL)


async def aggregate(session: AsyncSession, span: Range, now: datetime,
                    service_level_seconds: int) -> tuple[int, int]:
    """Recompute every interval of ``span`` (replacing its rows); returns how many queue and
    agent rows it holds now."""
    queues = await _queue_rows(session, span, now, service_level_seconds)
    agents = await _agent_rows(session, span, now)
    await session.execute(delete(QueueInterval).where(
        QueueInterval.interval_start >= span.since, QueueInterval.interval_start < span.until))
    await session.execute(delete(AgentInterval).where(
        AgentInterval.interval_start >= span.since, AgentInterval.interval_start < span.until))
    session.add_all(queues + agents)
    await session.flush()
    return len(queues), len(agents)


async def _queue_rows(session: AsyncSession, span: Range, now: datetime,
                      service_level_seconds: int) -> list[QueueInterval]:
    v = QueueVisit
    calls = (await session.execute(
        select(v.queue, v.outcome, v.wait_seconds, v.talk_seconds, v.hold_seconds,
               v.joined_at, v.linkedid)
        .where(v.outcome.is_not(None), v.joined_at >= span.since,
               v.joined_at < span.until))).all()
    wrap = await after_call_work(session, span.since)
    rows: dict[tuple[str, datetime], QueueInterval] = {}
    for queue, outcome, wait, talk, hold, started, linkedid in calls:
        key = (queue, interval_of(started))
        row = rows.get(key)
        if row is None:
            row = rows[key] = QueueInterval(
                queue=queue, interval_start=key[1], offered=0, answered=0, abandoned=0,
                timeouts=0, other_exits=0, answered_within_target=0, wait_seconds=0.0,
                talk_seconds=0.0, hold_seconds=0.0, wrap_seconds=0.0, computed_at=now)
        tally(row, outcome, wait or 0.0, service_level_seconds)
        if outcome == "answered":
            row.wait_seconds += wait or 0.0
            row.talk_seconds += talk or 0.0
            row.hold_seconds += hold or 0.0
            row.wrap_seconds += wrap.get((queue, linkedid), 0.0)
    return list(rows.values())


async def _agent_rows(session: AsyncSession, span: Range, now: datetime
                      ) -> list[AgentInterval]:
    p = AgentStatePeriod
    periods = (await session.scalars(
        select(p).where(p.started_at < span.until,
                        or_(p.ended_at.is_(None), p.ended_at > span.since - PERIOD_MARGIN))
        .order_by(p.agent_id, p.started_at, p.id))).all()
    rows: dict[tuple[int, datetime], AgentInterval] = {}
    previous: Any = None
    for period in periods:
        if previous is not None and previous.agent_id != period.agent_id:
            previous = None
        _count_calls(rows, span, now, previous, period)
        _add_time(rows, span, now, period)
        previous = period
    return list(rows.values())


def _row(rows: dict[tuple[int, datetime], AgentInterval], agent_id: int, start: datetime,
         now: datetime) -> AgentInterval:
    row = rows.get((agent_id, start))
    if row is None:
        row = rows[(agent_id, start)] = AgentInterval(
            agent_id=agent_id, interval_start=start, login_seconds=0.0, paused_by_reason={},
            calls_offered=0, calls_answered=0, computed_at=now,
            **{column: 0.0 for column in STATE_COLUMNS.values()})
    return row


def _add_time(rows: dict[tuple[int, datetime], AgentInterval], span: Range, now: datetime,
              period: AgentStatePeriod) -> None:
    """Split the period over the intervals it covers inside ``span``."""
    start = max(period.started_at, span.since)
    end = min(period.ended_at or now, span.until, now)
    while start < end:
        interval = interval_of(start)
        part = min(end, interval + INTERVAL)
        seconds = (part - start).total_seconds()
        row = _row(rows, period.agent_id, interval, now)
        row.login_seconds += seconds
        column = STATE_COLUMNS.get(period.state)
        if column is not None:
            setattr(row, column, getattr(row, column) + seconds)
        if period.state == "paused":
            reason = period.reason or ""
            row.paused_by_reason = {**row.paused_by_reason,
                                    reason: row.paused_by_reason.get(reason, 0.0) + seconds}
        start = part


def _count_calls(rows: dict[tuple[int, datetime], AgentInterval], span: Range,
                 now: datetime, previous: AgentStatePeriod | None,
                 period: AgentStatePeriod) -> None:
    """A ring of a queue call is an offer; the call's ``on_call`` right after it, an
    answer (both counted in the interval they started in)."""
    if period.queue is None or not span.since <= period.started_at < span.until:
        return
    if period.state == "ringing":
        _row(rows, period.agent_id, interval_of(period.started_at), now).calls_offered += 1
    elif period.state == "on_call" and previous is not None \
            and previous.state == "ringing" and previous.linkedid == period.linkedid:
        _row(rows, period.agent_id, interval_of(period.started_at), now).calls_answered += 1
