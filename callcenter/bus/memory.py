"""The in-process bus: the embedded default when one process runs everything.

Topics fan out to per-subscriber bounded queues (see ``Subscription`` for the overflow
policy). Job queues keep every job until each group that exists has acknowledged it (and
the last ``retain_acked`` after that, for groups created later); a job fetched and not
acknowledged within ``redelivery_timeout`` goes back to its group, so a consumer task that
dies does not lose work. "Durable" here means durable within the
process: a restart of the process loses queued jobs (use the Redis bus for that).
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import logging
from dataclasses import dataclass, field
from typing import Any

from callcenter.bus.base import Bus, Job, Subscription

log = logging.getLogger(__name__)

_ROUTE_CACHE_SIZE = 4096  # distinct topics whose subscribers are remembered; topics are few
_SCALARS = frozenset({str, int, float, bool, type(None)})


def _copy(value: Any) -> Any:
    """A private copy of a JSON-like value: containers are copied, immutable scalars shared.
    What ``copy.deepcopy`` gives for bus payloads, at a fraction of its cost (no memo: a
    payload is a tree); anything else still goes through ``deepcopy``."""
    kind = type(value)
    if kind is dict:
        if _SCALARS.issuperset(map(type, value.values())):
            return value.copy()  # the common case: a flat event
        return {key: _copy(item) for key, item in value.items()}
    if kind in _SCALARS:
        return value
    if kind is list:
        return [_copy(item) for item in value]
    return copy.deepcopy(value)


@dataclass
class _Pending:
    consumer: str
    deadline: float
    attempts: int


@dataclass
class _Group:
    cursor: int = 0  # absolute position of the next job this group has not seen
    pending: dict[str, _Pending] = field(default_factory=dict)


@dataclass
class _Queue:
    """Jobs in arrival order; ``order[0]`` sits at absolute position ``base``."""

    order: list[str] = field(default_factory=list)
    base: int = 0
    payloads: dict[str, dict[str, Any]] = field(default_factory=dict)
    groups: dict[str, _Group] = field(default_factory=dict)
    acked: dict[str, set[str]] = field(default_factory=dict)  # job id -> groups done
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class MemoryBus(Bus):
    """Everything in this process's memory; no backing service to lose."""

    def __init__(self, subscriber_queue_size: int = 1000,
                 redelivery_timeout: float = 60.0, retain_acked: int = 10_000) -> None:
        self._maxsize = subscriber_queue_size
        self._redelivery_timeout = redelivery_timeout
        self._retain = retain_acked
        self._subscriptions: list[Subscription] = []
        self._routes: dict[str, tuple[Subscription, ...]] = {}  # topic -> its subscribers
        self._queues: dict[str, _Queue] = {}
        self._seq = itertools.count(1)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        for sub in list(self._subscriptions):
            await sub.close()

    async def ping(self) -> bool:
        return True

    # --- topics ---

    async def publish(self, topic: str, event: dict[str, Any]) -> None:
        for sub in self._route(topic):
            # A copy each: subscribers must not see each other's (or the caller's) mutations.
            sub.deliver(topic, _copy(event))

    def subscribe(self, *patterns: str) -> Subscription:
        return Subscription(patterns, self._maxsize, self._register, self._unregister)

    def wants(self, topic: str) -> bool:
        """True when a subscription of this process matches ``topic`` (the only ones)."""
        return bool(self._route(topic))

    def _route(self, topic: str) -> tuple[Subscription, ...]:
        """The subscriptions matching ``topic``, matched once per topic (until one opens or
        closes): pattern matching per publish cost more than the delivery."""
        route = self._routes.get(topic)
        if route is None:
            if len(self._routes) >= _ROUTE_CACHE_SIZE:
                self._routes.clear()
            route = tuple(sub for sub in self._subscriptions
                          if sub.first_match(topic) is not None)
            self._routes[topic] = route
        return route

    async def _register(self, sub: Subscription) -> None:
        self._subscriptions.append(sub)
        self._routes.clear()

    async def _unregister(self, sub: Subscription) -> None:
        if sub in self._subscriptions:
            self._subscriptions.remove(sub)
        self._routes.clear()

    # --- jobs ---

    async def enqueue(self, queue: str, payload: dict[str, Any]) -> str:
        seq = next(self._seq)
        job_id = f"{seq}-0"
        q = self._queue(queue)
        q.order.append(job_id)
        q.payloads[job_id] = copy.deepcopy(payload)
        self._wake(q)
        return job_id

    async def fetch(self, queue: str, group: str, consumer: str,
                    timeout: float = 1.0) -> Job | None:
        q = self._queue(queue)
        g = q.groups.setdefault(group, _Group())
        loop = asyncio.get_running_loop()
        give_up = loop.time() + timeout
        while True:
            job = self._take(q, g, queue, consumer, loop.time())
            if job is not None:
                return job
            wait = min(give_up, self._next_deadline(g, give_up)) - loop.time()
            if wait <= 0 and loop.time() >= give_up:
                return None
            q.changed.clear()
            try:
                await asyncio.wait_for(q.changed.wait(), max(wait, 0))
            except TimeoutError:
                pass

    async def ack(self, job: Job, group: str) -> None:
        q = self._queues.get(job.queue)
        if q is None or group not in q.groups:
            return
        if q.groups[group].pending.pop(job.id, None) is None:
            return
        q.acked.setdefault(job.id, set()).add(group)
        self._prune(q)

    # --- internals ---

    def _queue(self, name: str) -> _Queue:
        return self._queues.setdefault(name, _Queue())

    @staticmethod
    def _wake(q: _Queue) -> None:
        q.changed.set()

    def _take(self, q: _Queue, g: _Group, queue: str, consumer: str, now: float) -> Job | None:
        """A timed-out pending job first (oldest first), else the next new job."""
        for job_id, pending in g.pending.items():
            if pending.deadline <= now:
                pending.consumer = consumer
                pending.deadline = now + self._redelivery_timeout
                pending.attempts += 1
                log.info("bus job redelivered queue=%s id=%s attempts=%d",
                         queue, job_id, pending.attempts)
                return self._job(q, queue, job_id, pending.attempts)
        g.cursor = max(g.cursor, q.base)
        if g.cursor >= q.base + len(q.order):
            return None
        job_id = q.order[g.cursor - q.base]
        g.cursor += 1
        g.pending[job_id] = _Pending(consumer, now + self._redelivery_timeout, 1)
        return self._job(q, queue, job_id, 1)

    @staticmethod
    def _job(q: _Queue, queue: str, job_id: str, attempts: int) -> Job:
        return Job(queue=queue, id=job_id, payload=copy.deepcopy(q.payloads[job_id]),
                   attempts=attempts)

    @staticmethod
    def _next_deadline(g: _Group, default: float) -> float:
        return min((p.deadline for p in g.pending.values()), default=default)

    def _prune(self, q: _Queue) -> None:
        """Forget the oldest jobs every group has acknowledged, beyond ``retain_acked``.

        Retaining some lets a group created later (a new worker kind) see recent history,
        as a Redis stream does; pruning keeps a long-running process's memory bounded.
        """
        if len(q.order) <= self._retain * 1.25:
            return
        groups = set(q.groups)
        excess = len(q.order) - self._retain
        count = 0
        for job_id in q.order[:excess]:
            if q.acked.get(job_id, set()) < groups:
                break
            count += 1
        for job_id in q.order[:count]:
            q.payloads.pop(job_id, None)
            q.acked.pop(job_id, None)
        del q.order[:count]
        q.base += count
