"""Queue visits: each stay of a caller in a queue, stored as it goes (telephony listener).

Asterisk counts its queues per stay: a call transferred from ``hotline-en`` into ``hotline``
is offered, and answered, in both (``QueueParams`` Completed of each). The call log keeps one
row per call, with its last queue, so the wallboard and the 15-minute history count visits.

A visit starts at ``QueueCallerJoin``; its wait ends when the caller leaves the queue; it is
answered at ``AgentConnect`` and its talk ends at ``AgentComplete`` (or, should that never
come, the caller's hang-up), minus the agent's hold in between. A caller leaving unanswered
is a timeout or another exit when the dialplan goes on (``QUEUESTATUS``), and abandoned when
the caller hangs up (``QueueCallerAbandon`` is sent for both, so it alone decides nothing).
Each change is written in event order by one task; a visit cut by a service restart keeps
no outcome and is not counted.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.queues.lanes import drain
from callcenter.queues.models import QueueVisit
from callcenter.telephony import events as ev

log = logging.getLogger(__name__)

ANSWERED_KEPT = 10_000
"""Answered visits waiting for their ``AgentComplete`` kept at most (oldest dropped)."""


@dataclass
class Visit:
    id: str
    linkedid: str
    uniqueid: str
    queue: str
    joined_at: datetime
    left_at: datetime | None = None
    outcome: str | None = None
    agent_interface: str | None = None
    connected_at: datetime | None = None
    hold_since: datetime | None = None
    hold_seconds: float = 0.0
    talk_seconds: float | None = None

    def row(self) -> QueueVisit:
        wait = None if self.left_at is None else (self.left_at - self.joined_at).total_seconds()
        answered = self.outcome == "answered"
        return QueueVisit(id=self.id, linkedid=self.linkedid, queue=self.queue,
                          joined_at=self.joined_at, outcome=self.outcome, wait_seconds=wait,
                          agent_interface=self.agent_interface,
                          talk_seconds=self.talk_seconds if answered else None,
                          hold_seconds=self.hold_seconds if answered else None)

    def end_talk(self, at: datetime) -> None:
        if self.hold_since is not None:
            self.hold_seconds += (at - self.hold_since).total_seconds()
            self.hold_since = None
        assert self.connected_at is not None
        self.talk_seconds = max((at - self.connected_at).total_seconds()
                                - self.hold_seconds, 0.0)


class VisitRecorder:
    """Telephony listener: follows each caller's visits and stores them."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker
        self.waiting: dict[str, Visit] = {}
        """Callers in a queue or just out of one unanswered (by caller Uniqueid)."""
        self.talking: dict[str, Visit] = {}
        """Answered visits until their ``AgentComplete`` (by Linkedid)."""
        self._writes: asyncio.Queue[QueueVisit] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._writer = asyncio.create_task(drain(self._writes, self._store),
                                           name="queues-visits")

    async def stop(self) -> None:
        if self._writer is not None:
            await self.flush()
            self._writer.cancel()
            self._writer = None

    async def flush(self) -> None:
        await self._writes.join()

    def __call__(self, event: Any) -> None:
        handler = self._HANDLERS.get(type(event))
        if handler is not None:
            handler(self, event)

    # -- the events ------------------------------------------------------------------------

    def _joined(self, event: ev.QueueCallerJoined) -> None:
        visit = Visit(f"{event.uniqueid}@{event.at.isoformat()}", event.linkedid,
                      event.uniqueid, event.queue, event.at)
        self.waiting[event.uniqueid] = visit
        self._write(visit)

    def _left(self, event: ev.QueueCallerLeft | ev.QueueCallerAbandoned) -> None:
        visit = self.waiting.get(event.uniqueid)
        if visit is not None and visit.left_at is None:
            visit.left_at = event.at

    def _connected(self, event: ev.AgentConnected) -> None:
        visit = self.waiting.pop(event.uniqueid, None)
        if visit is None or visit.queue != event.queue:
            return
        visit.left_at = visit.left_at or event.at
        visit.outcome, visit.agent_interface = "answered", event.interface
        visit.connected_at = event.at
        self.talking[visit.linkedid] = visit
        if len(self.talking) > ANSWERED_KEPT:
            del self.talking[next(iter(self.talking))]
        self._write(visit)

    def _completed(self, event: ev.AgentCompleted) -> None:
        visit = self.talking.get(event.linkedid)
        if visit is None or visit.queue != event.queue:
            return
        del self.talking[event.linkedid]
        visit.end_talk(event.at)
        self._write(visit)

    def _hold(self, event: ev.HoldStarted | ev.HoldEnded) -> None:
        visit = self.talking.get(event.linkedid)
        if visit is None:
            return
        if isinstance(event, ev.HoldStarted):
            visit.hold_since = visit.hold_since or event.at
        elif visit.hold_since is not None:
            visit.hold_seconds += (event.at - visit.hold_since).total_seconds()
            visit.hold_since = None

    def _variable(self, event: ev.VariableSet) -> None:
        """``QUEUESTATUS`` after ``Queue()`` returned unanswered: why the caller left."""
        if event.name != "QUEUESTATUS":
            return
        visit = self.waiting.pop(event.uniqueid, None)
        if visit is not None:
            visit.left_at = visit.left_at or event.at
            visit.outcome = event.value.lower()
            self._write(visit)

    def _hung_up(self, event: ev.ChannelHungUp) -> None:
        visit = self.waiting.pop(event.uniqueid, None)
        if visit is not None:
            visit.left_at = visit.left_at or event.at
            visit.outcome = "abandoned"
            self._write(visit)
        talking = self.talking.get(event.linkedid)
        if talking is not None and talking.uniqueid == event.uniqueid:
            talking.end_talk(event.at)  # AgentComplete, if it comes, ends it again
            self._write(talking)

    _HANDLERS: dict[type, Any] = {
        ev.QueueCallerJoined: _joined, ev.QueueCallerLeft: _left,
        ev.QueueCallerAbandoned: _left, ev.AgentConnected: _connected,
        ev.AgentCompleted: _completed, ev.HoldStarted: _hold, ev.HoldEnded: _hold,
        ev.VariableSet: _variable, ev.ChannelHungUp: _hung_up,
    }

    # -- storing ---------------------------------------------------------------------------

    def _write(self, visit: Visit) -> None:
        self._writes.put_nowait(visit.row())

    async def _store(self, rows: list[QueueVisit]) -> None:
        """A backlog in one transaction (one by one if that fails: one bad row must not
        stop the others)."""
        try:
            async with self.sessionmaker() as session, session.begin():
                for row in rows:
                    await session.merge(row)
            return
        except Exception:  # noqa: BLE001 - retried alone below
            log.warning("queues.visit_batch_failed visits=%d: one by one", len(rows))
        for row in rows:
            try:
                async with self.sessionmaker() as session, session.begin():
                    await session.merge(row)
            except Exception:  # noqa: BLE001
                log.exception("queues.visit_write_failed visit=%s", row.id)
