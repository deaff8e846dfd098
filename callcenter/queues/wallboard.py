"""The wallboard's figures per queue for the hotline's day: from the queue visits (one row per
stay of a caller in a queue, ``visits.py``: a call transferred into another queue counts in
both, as Asterisk counts them), the agents' after-call work periods, and the live count of
waiting callers and available agents (``queues.waiting`` on the bus, published by the
telephony process; a web process starting late reads them from the live store first).

Definitions (the usual ones, stated so they can be checked by hand):
- offered: calls that entered the queue today and left it (answered, abandoned, timed out or
  another exit); callers still waiting are not counted yet;
- abandoned: the caller hung up while waiting (not a ``Queue()`` timeout: ``timeouts``);
- service level: answered within the target / answered (Asterisk's ``ServicelevelPerf``);
- ASA: mean wait of answered calls; AHT: (talk + hold + after-call work) / answered;
- abandon rate: abandoned / offered; per quarter hour: offered by the local quarter the call
  started in (``HH:MM``).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.clock import Clock
from callcenter.queues.config import QueuesConfig
from callcenter.queues.models import AgentStatePeriod, QueueVisit

log = logging.getLogger(__name__)

WAITING_TOPIC = "queues.waiting"


@dataclass
class QueueFigures:
    queue: str
    waiting: int = 0
    longest_wait_seconds: float = 0.0
    available_agents: int = 0
    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    timeouts: int = 0
    other_exits: int = 0
    answered_within_target: int = 0
    service_level: float | None = None
    average_speed_of_answer: float | None = None
    average_handle_time: float | None = None
    abandon_rate: float | None = None
    per_quarter_hour: dict[str, int] = field(default_factory=dict)


@dataclass
class Board:
    day: str
    service_level_seconds: int
    queues: list[QueueFigures]


@dataclass
class _Sums:
    wait: float = 0.0
    handle: float = 0.0


class Wallboard:
    """Computes the board; ``follow(bus)`` keeps the live waiting counts up to date."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], clock: Clock,
                 config: QueuesConfig, timezone: str = "Asia/Shanghai") -> None:
        self.sessionmaker = sessionmaker
        self.clock = clock
        self.config = config
        self.zone = ZoneInfo(timezone)
        self.waiting: dict[str, tuple[int, datetime | None]] = {}
        self.available: dict[str, int] = {}
        self.following = asyncio.Event()
        """Set once ``follow`` is subscribed."""
        self.changed = asyncio.Event()
        """Set after each waiting count applied (whoever waits for one clears it)."""

    def on_waiting(self, event: dict[str, Any]) -> None:
        oldest = event.get("oldest_joined_at")
        self.waiting[event["queue"]] = (int(event["waiting"]),
                                        datetime.fromisoformat(oldest) if oldest else None)
        self.available[event["queue"]] = int(event.get("available_agents") or 0)
        self.changed.set()

    async def follow(self, bus: Any) -> None:
        """Apply every ``queues.waiting`` event until cancelled."""
        async with bus.subscribe(WAITING_TOPIC) as subscription:
            self.following.set()
            while True:
                _, event = await subscription.get()
                try:
                    self.on_waiting(event)
                except (KeyError, TypeError, ValueError) as exc:
                    log.warning("queues.bad_waiting_event error=%r", exc)

    def day_bounds(self, now: datetime) -> tuple[str, datetime, datetime]:
        local = now.astimezone(self.zone)
        start = datetime(local.year, local.month, local.day, tzinfo=self.zone)
        return local.date().isoformat(), start.astimezone(UTC), \
            (start + timedelta(days=1)).astimezone(UTC)

    async def today(self) -> Board:
        now = self.clock.now()
        day, since, until = self.day_bounds(now)
        figures = {name: QueueFigures(name) for name in self.config.queue_names}
        async with self.sessionmaker() as session:
            v = QueueVisit
            rows = (await session.execute(
                select(v.queue, v.outcome, v.wait_seconds, v.talk_seconds, v.hold_seconds,
                       v.joined_at, v.linkedid)
                .where(v.queue.in_(list(figures)), v.joined_at >= since, v.joined_at < until,
                       v.outcome.is_not(None)))).all()
            wrap = await after_call_work(session, since, until)
        sums = {name: _Sums() for name in figures}
        for queue, outcome, wait, talk, hold, started, linkedid in rows:
            self._count(figures[queue], sums[queue], outcome, wait or 0.0,
                        (talk or 0.0) + (hold or 0.0) + wrap.get((queue, linkedid), 0.0),
                        started)
        for name, f in figures.items():
            self._ratios(f, sums[name])
            count, oldest = self.waiting.get(name, (0, None))
            f.waiting = count
            f.available_agents = self.available.get(name, 0)
            f.longest_wait_seconds = 0.0 if oldest is None or count == 0 else round(
                max((now - oldest).total_seconds(), 0.0), 3)
        return Board(day, self.config.service_level_seconds, list(figures.values()))

    def _count(self, f: QueueFigures, sums: _Sums, outcome: str, wait: float, handle: float,
               started: datetime) -> None:
        tally(f, outcome, wait, self.config.service_level_seconds)
        if outcome == "answered":
            sums.wait += wait
            sums.handle += handle
        local = started.astimezone(self.zone)
        key = f"{local.hour:02d}:{local.minute // 15 * 15:02d}"
        f.per_quarter_hour[key] = f.per_quarter_hour.get(key, 0) + 1

    @staticmethod
    def _ratios(f: QueueFigures, sums: _Sums) -> None:
        f.per_quarter_hour = dict(sorted(f.per_quarter_hour.items()))
        if f.answered:
            f.service_level = round(100.0 * f.answered_within_target / f.answered, 2)
            f.average_speed_of_answer = round(sums.wait / f.answered, 3)
            f.average_handle_time = round(sums.handle / f.answered, 3)
        if f.offered:
            f.abandon_rate = round(100.0 * f.abandoned / f.offered, 2)


def tally(figures: Any, outcome: str, wait: float, service_level_seconds: int) -> None:
    """Count one queue call that left its queue into ``figures`` (the wallboard's or an
    interval row): offered, and answered (within the target or not), abandoned, timeout or
    another exit, as Asterisk counts ``QueueParams``."""
    figures.offered += 1
    if outcome == "answered":
        figures.answered += 1
        figures.answered_within_target += wait <= service_level_seconds
    elif outcome == "abandoned":
        figures.abandoned += 1
    elif outcome == "timeout":
        figures.timeouts += 1
    else:
        figures.other_exits += 1


async def after_call_work(session: AsyncSession, since: datetime,
                          until: datetime | None = None) -> dict[tuple[str, str], float]:
    """Seconds of finished after-call work per (queue, call), of periods that began in
    ``[since, until)`` (no end: every later one)."""
    p = AgentStatePeriod
    query = (select(p.queue, p.linkedid, p.started_at, p.ended_at)
             .where(p.state == "after_call_work", p.started_at >= since,
                    p.ended_at.is_not(None), p.linkedid.is_not(None)))
    if until is not None:
        query = query.where(p.started_at < until)
    out: dict[tuple[str, str], float] = Counter()
    for queue, linkedid, start, end in (await session.execute(query)).all():
        out[(queue, linkedid)] += (end - start).total_seconds()
    return out
