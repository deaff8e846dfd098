"""The bus interface every implementation (in-process, Redis) satisfies.

Two kinds of traffic share one object:
- *topics*: live fan-out of domain events (at most once, to whoever listens now);
- *job queues*: durable work items acknowledged by exactly one consumer of a group
  (at least once: a job not acknowledged is delivered again after a restart).
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Job:
    """One delivered job; call ``Bus.ack(job)`` once it is done."""

    queue: str
    id: str
    payload: dict[str, Any]
    attempts: int = 1
    meta: dict[str, Any] = field(default_factory=dict)


class Bus(abc.ABC):
    """Same behaviour for every implementation; payloads are JSON-serialisable dicts."""

    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def publish(self, topic: str, event: dict[str, Any]) -> None:
        """Fan ``event`` out to every current subscriber of ``topic``."""

    @abc.abstractmethod
    def subscribe(self, *patterns: str) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """Yield ``(topic, event)`` for topics matching glob ``patterns`` (e.g. ``call.*``)."""

    @abc.abstractmethod
    async def enqueue(self, queue: str, payload: dict[str, Any]) -> str:
        """Durably add a job; returns its id."""

    @abc.abstractmethod
    async def fetch(self, queue: str, group: str, consumer: str,
                    timeout: float = 1.0) -> Job | None:
        """Take the next job for ``group`` (one consumer per job), or None on timeout."""

    @abc.abstractmethod
    async def ack(self, job: Job, group: str) -> None:
        """Mark ``job`` done for ``group``; it is never delivered again."""

    @abc.abstractmethod
    async def ping(self) -> bool:
        """True when the bus's backing service answers (health checks)."""
