"""The queues' live state, shared: what the telephony process derives from Asterisk's events
(callers waiting per queue, the longest wait, available agents, every agent's state), kept
where every web process can read it.

The telephony process is the only writer (its agent-state listener, in event order); web
processes read. With the Redis bus the state lives in two Redis hashes, so any instance
behind a load balancer answers the same (``<prefix>queues:live:queues`` field = queue name,
``<prefix>queues:live:agents`` field = agent id, values JSON); with the in-process bus it is
a dict shared by the process's listener and web app (one store per bus object).

Records hold full current values, never deltas, so applying one twice is harmless:
- queue: ``{"queue", "waiting", "oldest_joined_at", "available_agents", "at"}``;
- agent: ``{"agent_id", "member_name", "interface", "state", "reason", "queue", "since",
  "previous"}`` (as published on ``queues.agent_state``).
"""

from __future__ import annotations

import abc
import json
import weakref
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.queues.models import Agent

Record = dict[str, Any]


class LiveStore(abc.ABC):
    """Where the live queue and agent records are kept."""

    @abc.abstractmethod
    async def put(self, queues: Sequence[Record] = (), agents: Sequence[Record] = ()) -> None:
        """Replace these queues' and agents' records (a batch: one round trip)."""

    @abc.abstractmethod
    async def replace_agents(self, records: list[Record]) -> None:
        """Every agent at once (the telephony process starting from the database)."""

    @abc.abstractmethod
    async def queues(self) -> dict[str, Record]: ...

    @abc.abstractmethod
    async def agents(self) -> dict[int, Record]: ...

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections."""


class MemoryLiveStore(LiveStore):
    """One process: the listener and the web app share this object through the bus."""

    def __init__(self) -> None:
        self._queues: dict[str, Record] = {}
        self._agents: dict[int, Record] = {}

    async def put(self, queues: Sequence[Record] = (), agents: Sequence[Record] = ()) -> None:
        for record in queues:
            self._queues[record["queue"]] = dict(record)
        for record in agents:
            self._agents[int(record["agent_id"])] = dict(record)

    async def replace_agents(self, records: list[Record]) -> None:
        self._agents = {int(r["agent_id"]): dict(r) for r in records}

    async def queues(self) -> dict[str, Record]:
        return {k: dict(v) for k, v in self._queues.items()}

    async def agents(self) -> dict[int, Record]:
        return {k: dict(v) for k, v in self._agents.items()}

    async def close(self) -> None:
        """Nothing to release: the records stay for the process's other users."""


class RedisLiveStore(LiveStore):
    """The records in two Redis hashes under ``prefix`` (the bus's key prefix)."""

    def __init__(self, url: str, prefix: str = "callcenter:", *,
                 password: str | None = None) -> None:
        self._client = aioredis.Redis.from_url(url, password=password, decode_responses=True,
                                               socket_connect_timeout=5)
        self.queues_key = f"{prefix}queues:live:queues"
        self.agents_key = f"{prefix}queues:live:agents"

    async def put(self, queues: Sequence[Record] = (), agents: Sequence[Record] = ()) -> None:
        async with self._client.pipeline(transaction=False) as pipe:
            if queues:
                pipe.hset(self.queues_key, mapping={r["queue"]: json.dumps(r) for r in queues})
            if agents:
                pipe.hset(self.agents_key, mapping={str(r["agent_id"]): json.dumps(r)
                                                    for r in agents})
            await pipe.execute()

    async def replace_agents(self, records: list[Record]) -> None:
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.delete(self.agents_key)
            if records:
                pipe.hset(self.agents_key, mapping={str(r["agent_id"]): json.dumps(r)
                                                    for r in records})
            await pipe.execute()

    async def queues(self) -> dict[str, Record]:
        raw = await self._client.hgetall(self.queues_key)
        return {k: json.loads(v) for k, v in raw.items()}

    async def agents(self) -> dict[int, Record]:
        raw = await self._client.hgetall(self.agents_key)
        return {int(k): json.loads(v) for k, v in raw.items()}

    async def close(self) -> None:
        await self._client.aclose()


_IN_PROCESS: weakref.WeakKeyDictionary[Any, MemoryLiveStore] = weakref.WeakKeyDictionary()


def live_store(bus: Any, settings: Any = None) -> LiveStore:
    """The store matching the bus: Redis when ``settings.bus`` is Redis (a new client: the
    caller closes it), else the in-process store of this bus object (or a private one)."""
    cfg = getattr(settings, "bus", None)
    if cfg is not None and cfg.backend == "redis":
        password = cfg.redis_password.get_secret_value() if cfg.redis_password else None
        return RedisLiveStore(cfg.redis_url, cfg.redis_prefix, password=password)
    if bus is None:
        return MemoryLiveStore()
    store = _IN_PROCESS.get(bus)
    if store is None:
        store = _IN_PROCESS[bus] = MemoryLiveStore()
    return store


def agent_record(agent: Agent, previous: str | None = None) -> Record:
    """An agent row as a live record (the shape of ``queues.agent_state``)."""
    return {"agent_id": agent.id, "member_name": agent.member_name,
            "interface": agent.interface, "state": agent.state, "reason": agent.state_reason,
            "queue": agent.state_queue,
            "since": agent.state_since.isoformat() if agent.state_since else None,
            "previous": previous}


async def stored_agent_records(sessionmaker: async_sessionmaker[AsyncSession]
                               ) -> list[Record]:
    """Every agent's stored state (what the telephony process starts the store from)."""
    async with sessionmaker() as session:
        agents = (await session.scalars(select(Agent).order_by(Agent.id))).all()
    return [agent_record(a) for a in agents]
