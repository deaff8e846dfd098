"""The live feed of one web process: the queues' live events, numbered, buffered for
catch-up, and handed to each connected viewer (``GET /api/v1/queues/live``).

The feed follows the bus (``queues.waiting``, ``queues.agent_state``,
``queues.members_restored``, ``queues.screen_pop.<agent_id>``, and the speech feature's
``speech.desk.<agent_id>``), starts from the shared live
store (``live.py``) and re-reads it every ``resync_interval`` seconds, so an instance started
late, or one that lost a pub/sub message, shows the same as the others. Every message gets
the next sequence number of this feed (``seq``) and the feed's id (``feed``, new at each
start): a viewer reconnecting with both gets what it missed from the buffer; with another
feed's id, a number the buffer no longer holds, or none, it gets a snapshot.

Messages (JSON objects; each has ``type``, ``seq`` and ``feed``; records are full values, so
applying one twice is harmless; an agent sees gaps in ``seq``: messages for others):
- ``snapshot``: ``at``, ``wallboard`` (supervisors: today's figures as ``wallboard``
  below; agents: null), ``queues`` (supervisors: every ``queue`` record; agents: []),
  ``agents`` (supervisors: every agent record; agents: their own);
- ``resumed``: ``missed`` (how many messages follow before the live ones);
- ``queue``: ``queue``, ``waiting``, ``oldest_joined_at`` (ISO time or null),
  ``available_agents``, ``at``;
- ``wallboard``: ``wallboard`` = ``{"day", "service_level_seconds", "queues": [...]}``,
  each queue as ``GET /api/v1/queues/wallboard`` plus ``oldest_joined_at`` (sent when today's
  figures change, at most every ``figures_interval`` seconds);
- ``agent_state``: ``agent_id``, ``member_name``, ``interface``, ``state``, ``reason``,
  ``queue``, ``since``, ``previous``;
- ``members_restored``: ``at``, ``agents`` (``agent_id``, ``interface``, ``queues``,
  ``paused_reason``) after an Asterisk restart emptied the queues;
- ``screen_pop``: ``agent_id``, ``screen_pop`` (the payload published for that agent);
- ``draft``: ``agent_id``, ``linkedid``, ``ticket_id``, ``ticket_ids`` and ``transcript``
  (as one item of ``GET /api/v1/calls/{linkedid}/transcripts`` shows it to that agent:
  ``segments`` with ``speaker``, ``start``, ``end``, ``text`` (no ``words``); ``suggestions`` with
  ``field``, ``value``, ``confidence``, ``start``/``end`` (the span), ``state``), sent to
  each agent who talked on the call once its recording is transcribed and drafted. Not in
  snapshots: the desktop reads its call's draft with that GET.
Supervisors get every type but ``screen_pop`` and ``draft``; an agent gets only its own
``agent_state``, ``screen_pop`` and ``draft``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from callcenter.clock import Clock
from callcenter.queues.live import LiveStore, Record
from callcenter.queues.service import RESTORED_TOPIC, STATE_TOPIC
from callcenter.queues.wallboard import WAITING_TOPIC, Wallboard

log = logging.getLogger(__name__)

SCREEN_POP_PREFIX = "queues.screen_pop."
DRAFT_PREFIX = "speech.desk."
"""``speech/drafting.py``: a call's transcript and draft rendered for one of its agents."""
LIVE_TOPICS = (WAITING_TOPIC, STATE_TOPIC, RESTORED_TOPIC, SCREEN_POP_PREFIX + "*",
               DRAFT_PREFIX + "*")
SUPERVISOR_TYPES = frozenset({"queue", "wallboard", "agent_state", "members_restored"})
AGENT_TYPES = frozenset({"agent_state", "screen_pop", "draft"})
OVERFLOW = object()
"""Put in a viewer's outbox when it fell too far behind: it is closed and reconnects."""


@dataclass(eq=False)
class Viewer:
    """One connected websocket: a supervisor (``agent_id`` None) or one agent."""

    agent_id: int | None
    limit: int = 1000
    outbox: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    overflowed: bool = False

    def wants(self, message: Record) -> bool:
        if self.agent_id is None:
            return message["type"] in SUPERVISOR_TYPES
        return message["type"] in AGENT_TYPES and message.get("agent_id") == self.agent_id

    def offer(self, message: Record) -> None:
        if self.overflowed:
            return
        if self.outbox.qsize() >= self.limit:
            self.overflowed = True
            self.outbox.put_nowait(OVERFLOW)
            return
        self.outbox.put_nowait(message)


class LiveFeed:
    """Numbers, buffers and fans out the live messages of this web process.

    ``metrics`` (optional) has the per-queue gauges of ``web/health.py``: set here from the
    records and today's figures.
    """

    def __init__(self, bus: Any, store: LiveStore, wallboard: Wallboard, clock: Clock, *,
                 buffer_size: int = 1000, figures_interval: float = 2.0,
                 refresh_interval: float = 30.0, resync_interval: float = 30.0,
                 metrics: Any = None) -> None:
        self.bus = bus
        self.store = store
        self.wallboard = wallboard
        self.clock = clock
        self.metrics = metrics
        self.id = uuid.uuid4().hex[:12]
        self.seq = 0
        self.buffer: deque[Record] = deque(maxlen=buffer_size)
        self.viewers: set[Viewer] = set()
        self.queues: dict[str, Record] = {}
        self.agents: dict[int, Record] = {}
        self.board: Record | None = None
        self.figures_interval = figures_interval
        self.refresh_interval = refresh_interval
        self.resync_interval = resync_interval
        self.ready = asyncio.Event()
        """Set once subscribed and started from the store."""
        self._dirty = asyncio.Event()

    # -- running ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Follow the bus until cancelled."""
        async with self.bus.subscribe(*LIVE_TOPICS) as subscription:
            await self.resync()
            self.ready.set()
            helpers = [asyncio.create_task(self._figures_loop(), name="queues-live-figures"),
                       asyncio.create_task(self._resync_loop(), name="queues-live-resync")]
            try:
                async for topic, event in subscription:
                    try:
                        self.on_event(topic, event)
                    except (KeyError, TypeError, ValueError) as exc:
                        log.warning("queues.bad_live_event topic=%s error=%r", topic, exc)
            finally:
                for task in helpers:
                    task.cancel()
                await asyncio.gather(*helpers, return_exceptions=True)

    def on_event(self, topic: str, event: Record) -> None:
        if topic == WAITING_TOPIC:
            self._apply_queue(event)
        elif topic == STATE_TOPIC:
            self._apply_agent(event)
        elif topic == RESTORED_TOPIC:
            self._emit({"type": "members_restored", "at": event.get("at"),
                        "agents": event.get("agents", [])})
        elif topic.startswith(SCREEN_POP_PREFIX):
            agent_id = int(topic[len(SCREEN_POP_PREFIX):])
            self._emit({"type": "screen_pop", "agent_id": agent_id, "screen_pop": event})
        elif topic.startswith(DRAFT_PREFIX):
            agent_id = int(topic[len(DRAFT_PREFIX):])
            self._emit({"type": "draft", "agent_id": agent_id,
                        **{key: event[key] for key in ("linkedid", "ticket_id", "ticket_ids",
                                                       "transcript")}})

    async def resync(self) -> None:
        """Apply what the store holds that this feed has not seen (newer records only)."""
        queues, agents = await self.store.queues(), await self.store.agents()
        for record in queues.values():
            self._apply_queue(record)
        for record in agents.values():
            self._apply_agent(record)

    async def _resync_loop(self) -> None:
        while True:
            await asyncio.sleep(self.resync_interval)  # a period, not synchronisation
            try:
                await self.resync()
            except Exception as exc:  # noqa: BLE001 - the next period tries again
                log.warning("queues.live_resync_failed error=%r", exc)

    # -- records ---------------------------------------------------------------------------

    def _apply_queue(self, record: Record) -> None:
        name = str(record["queue"])
        queue = {"queue": name, "waiting": int(record["waiting"]),
                 "oldest_joined_at": record.get("oldest_joined_at"),
                 "available_agents": int(record.get("available_agents") or 0),
                 "at": record.get("at")}
        old = self.queues.get(name)
        if old == queue or old is not None and _older(queue["at"], old["at"]):
            return
        self.queues[name] = queue
        self.wallboard.on_waiting(queue)
        if self.metrics is not None:
            self.metrics.queue_waiting.labels(queue=name).set(queue["waiting"])
            self.metrics.queue_available_agents.labels(queue=name).set(
                queue["available_agents"])
        self._emit({"type": "queue", **queue})
        self._dirty.set()

    def _apply_agent(self, record: Record) -> None:
        agent = {key: record.get(key) for key in ("agent_id", "member_name", "interface",
                                                  "state", "reason", "queue", "since",
                                                  "previous")}
        agent["agent_id"] = int(record["agent_id"])
        old = self.agents.get(agent["agent_id"])
        if old is not None and (_same_state(old, agent) or _older(agent["since"],
                                                                  old["since"])):
            return
        self.agents[agent["agent_id"]] = agent
        self._emit({"type": "agent_state", **agent})
        self._dirty.set()

    def _emit(self, body: Record) -> None:
        self.seq += 1
        message = {"type": body.pop("type"), "seq": self.seq, "feed": self.id, **body}
        self.buffer.append(message)
        for viewer in list(self.viewers):
            if viewer.wants(message):
                viewer.offer(message)

    # -- today's figures -------------------------------------------------------------------

    async def figures(self) -> Record:
        """Today's figures (the last computed, or now when none were yet)."""
        if self.board is None:
            self.board = await self._compute()
        return self.board

    async def _compute(self) -> Record:
        board = dataclasses.asdict(await self.wallboard.today())
        for queue in board["queues"]:
            live = self.queues.get(queue["queue"])
            queue["oldest_joined_at"] = live["oldest_joined_at"] if live else None
            if self.metrics is not None and queue["service_level"] is not None:
                self.metrics.queue_service_level.labels(queue=queue["queue"]).set(
                    queue["service_level"])
        return board

    async def _figures_loop(self) -> None:
        """Recompute after changes (at most every ``figures_interval``) and every
        ``refresh_interval`` (calls are logged a moment after they leave the queue)."""
        while True:
            with contextlib.suppress(TimeoutError):  # not wait_for: on 3.11 it can
                async with asyncio.timeout(self.refresh_interval):  # swallow a cancel
                    await self._dirty.wait()
            self._dirty.clear()
            try:
                board = await self._compute()
            except Exception as exc:  # noqa: BLE001 - the next change tries again
                log.warning("queues.live_figures_failed error=%r", exc)
            else:
                if self.board is None or _figures(board) != _figures(self.board):
                    self._emit({"type": "wallboard", "wallboard": board})
                self.board = board
            await asyncio.sleep(self.figures_interval)  # a rate limit, not synchronisation

    # -- viewers ---------------------------------------------------------------------------

    def open(self, viewer: Viewer, *, since: int | None, feed: str | None,
             board: Record | None, own: Record | None = None) -> list[Record]:
        """Register ``viewer`` and return its first messages: what it missed after
        ``since`` (after a ``resumed``), or a snapshot. Nothing runs between the two, so
        the live messages queued for the viewer follow them without gap or repeat."""
        self.viewers.add(viewer)
        missed = self._missed(viewer, since, feed)
        if missed is not None:
            return [{"type": "resumed", "seq": self.seq, "feed": self.id,
                     "missed": len(missed)}, *missed]
        return [self.snapshot(viewer, board, own)]

    def _missed(self, viewer: Viewer, since: int | None, feed: str | None
                ) -> list[Record] | None:
        if since is None or feed is not None and feed != self.id or since > self.seq:
            return None
        oldest = self.buffer[0]["seq"] if self.buffer else self.seq + 1
        if since < oldest - 1:
            return None  # older than the buffer holds
        return [m for m in self.buffer if m["seq"] > since and viewer.wants(m)]

    def snapshot(self, viewer: Viewer, board: Record | None, own: Record | None = None
                 ) -> Record:
        if viewer.agent_id is None:
            agents = sorted(self.agents.values(), key=lambda a: a["agent_id"])
            queues = sorted(self.queues.values(), key=lambda q: q["queue"])
            board = None if board is None else self._live_figures(board)
        else:
            mine = self.agents.get(viewer.agent_id) or own
            agents, queues, board = [mine] if mine else [], [], None
        return {"type": "snapshot", "seq": self.seq, "feed": self.id,
                "at": self.clock.now().isoformat(), "wallboard": board, "queues": queues,
                "agents": agents}

    def _live_figures(self, board: Record) -> Record:
        """Today's figures with the live values of this moment (they move in between)."""
        now = self.clock.now()
        queues = []
        for figures in board["queues"]:
            live = self.queues.get(figures["queue"])
            if live is not None:
                oldest = live["oldest_joined_at"]
                longest = 0.0 if not oldest or not live["waiting"] else round(max(
                    (now - datetime.fromisoformat(oldest)).total_seconds(), 0.0), 3)
                figures = {**figures, "waiting": live["waiting"],
                           "available_agents": live["available_agents"],
                           "oldest_joined_at": oldest, "longest_wait_seconds": longest}
            queues.append(figures)
        return {**board, "queues": queues}

    def close(self, viewer: Viewer) -> None:
        self.viewers.discard(viewer)


def _older(new: str | None, old: str | None) -> bool:
    """Is ``new`` strictly before ``old`` (ISO times; unknown is never older)?"""
    if not new or not old:
        return False
    return datetime.fromisoformat(new) < datetime.fromisoformat(old)


def _same_state(old: Record, new: Record) -> bool:
    return all(old[k] == new[k] for k in ("state", "reason", "queue", "since", "interface"))


def _figures(board: Record) -> list[Record]:
    """The board without what moves by itself (the longest wait grows every second)."""
    return [{k: v for k, v in q.items() if k != "longest_wait_seconds"}
            for q in board["queues"]]
