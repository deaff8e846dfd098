"""The bus interface every implementation (in-process, Redis) satisfies.

Two kinds of traffic share one object:
- *topics*: live fan-out of domain events (at most once, to whoever listens now);
- *job queues*: durable work items acknowledged by exactly one consumer of a group
  (at least once: a job not acknowledged is delivered again after a restart).

A subscriber reads from a bounded queue of its own. When it falls behind and the queue is
full, the OLDEST waiting event is dropped and counted (``Subscription.dropped``): a slow
reader never blocks the publisher or the other subscribers, and live views catch up on the
newest state. Anything that must not be lost is a job, not an event.
"""

from __future__ import annotations

import abc
import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from types import TracebackType
from typing import Any

log = logging.getLogger(__name__)

Event = tuple[str, dict[str, Any]]


class BusError(Exception):
    """The bus's backing service failed an operation (after its own retries)."""


@dataclass(slots=True)
class Job:
    """One delivered job; call ``Bus.ack(job)`` once it is done."""

    queue: str
    id: str
    payload: dict[str, Any]
    attempts: int = 1
    meta: dict[str, Any] = field(default_factory=dict)


_CLOSED = object()


class Subscription(AsyncIterator[Event]):
    """Live events for some glob patterns; an async iterator and an async context manager.

    ``async with bus.subscribe("call.*") as sub`` is registered when the block starts, so
    nothing published afterwards is missed; ``async for`` alone registers at the first read.
    """

    def __init__(self, patterns: tuple[str, ...], maxsize: int,
                 register: Callable[[Subscription], Awaitable[None]],
                 unregister: Callable[[Subscription], Awaitable[None]]) -> None:
        if not patterns:
            raise ValueError("subscribe() needs at least one pattern")
        self.patterns = patterns
        self.dropped = 0
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize)
        self._register = register
        self._unregister = unregister
        self._state = "new"

    def first_match(self, topic: str) -> str | None:
        """The first of this subscription's patterns matching ``topic`` (None: no match)."""
        return next((p for p in self.patterns if fnmatchcase(topic, p)), None)

    def deliver(self, topic: str, event: dict[str, Any]) -> None:
        """Queue an event without waiting; a full queue loses its oldest event."""
        if self._state == "closed":
            return
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("bus subscriber overflow patterns=%s dropped=%d",
                            ",".join(self.patterns), self.dropped)
        self._queue.put_nowait((topic, event))

    async def open(self) -> Subscription:
        if self._state == "new":
            self._state = "open"
            await self._register(self)
        return self

    async def close(self) -> None:
        if self._state == "closed":
            return
        was_open = self._state == "open"
        self._state = "closed"
        if was_open:
            await self._unregister(self)
        if self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(_CLOSED)

    async def __aenter__(self) -> Subscription:
        return await self.open()

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        if self._state == "new":
            await self.open()
        item = await self._queue.get()
        if item is _CLOSED:
            self._queue.put_nowait(_CLOSED)
            raise StopAsyncIteration
        return item

    async def get(self, timeout: float | None = None) -> Event:
        """The next event, waiting at most ``timeout`` seconds (TimeoutError after)."""
        return await asyncio.wait_for(self.__anext__(), timeout)


class Bus(abc.ABC):
    """Same behaviour for every implementation; payloads are JSON-serialisable dicts."""

    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def publish(self, topic: str, event: dict[str, Any]) -> None:
        """Fan ``event`` out to every current subscriber of ``topic``."""

    async def publish_many(self, messages: list[tuple[str, dict[str, Any]]]) -> None:
        """Publish ``(topic, event)`` pairs in order (a backend with a network hop sends
        them together)."""
        for topic, event in messages:
            await self.publish(topic, event)

    @abc.abstractmethod
    def subscribe(self, *patterns: str) -> Subscription:
        """Yield ``(topic, event)`` for topics matching glob ``patterns`` (e.g. ``call.*``)."""

    @abc.abstractmethod
    async def enqueue(self, queue: str, payload: dict[str, Any]) -> str:
        """Durably add a job; returns its id."""

    @abc.abstractmethod
    async def fetch(self, queue: str, group: str, consumer: str,
                    timeout: float = 1.0) -> Job | None:
        """Take the next job for ``group`` (one consumer per job), or None on timeout.

        A job fetched but not acknowledged within the bus's redelivery timeout (its
        consumer died or hung) is delivered again to a consumer of the same group, with
        ``attempts`` increased: consumers must be idempotent.
        """

    @abc.abstractmethod
    async def ack(self, job: Job, group: str) -> None:
        """Mark ``job`` done for ``group``; it is never delivered again."""

    @abc.abstractmethod
    async def ping(self) -> bool:
        """True when the bus's backing service answers (health checks)."""

    def wants(self, topic: str) -> bool:
        """Might any subscriber, in any process, want ``topic``? Cheap: no I/O, cached.

        Publishers of high-volume events (the AMI client) call it to skip building and
        publishing events nobody listens to. False only when the bus is sure; a bus that
        cannot know answers True.
        """
        return True
