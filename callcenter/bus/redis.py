"""The Redis bus: pub/sub for live fan-out, Streams consumer groups for durable jobs.

- Events: ``PUBLISH <prefix><events_channel><topic>``; one pattern-subscribed connection
  per process reads them and hands each to the local subscriptions it matches. While Redis
  is away, live events are lost (they are at most once by contract); the reader reconnects
  with backoff and subscribes again.
- Jobs: ``XADD <prefix><jobs_stream><queue>``; a group is created at the stream's start
  (``XGROUP CREATE ... 0 MKSTREAM``), consumers read with ``XREADGROUP`` and ``XACK`` when
  done. A job left unacknowledged longer than ``redelivery_timeout`` (its consumer died,
  or its connection was cut before the reply arrived) is taken over with ``XAUTOCLAIM``.
  Jobs live in Redis, so they survive the restart of any process (and of Redis itself when
  it persists, e.g. ``appendonly yes``). Acknowledged jobs are trimmed from the stream
  (``XTRIM MINID``, at most every ``trim_interval`` seconds), keeping the newest
  ``retain_acked`` like the in-process bus: memory stays bounded, and no job that a group
  has not acknowledged is ever trimmed.
- Interest (``Bus.wants``): each process keeps its subscription patterns in
  ``<prefix>interest:<process>`` (a key that expires unless its heartbeat renews it, so a
  dead process is forgotten) listed in the set ``<prefix>interest``; every process reads
  them all every ``interest_interval`` seconds and at once when ``<prefix>interest:changed``
  announces a change. While that picture is unknown or stale, ``wants`` answers True.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
import uuid
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from callcenter.bus.base import Bus, BusError, Job, Subscription

log = logging.getLogger(__name__)

_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")
_TRANSIENT = (RedisConnectionError, RedisTimeoutError, OSError)
_WANTED_CACHE_SIZE = 4096  # distinct topics remembered by ``wants``; topics are few


class RedisBus(Bus):
    """A bus shared by every process that uses the same Redis and key prefix."""

    def __init__(self, url: str, prefix: str = "callcenter:", *, password: str | None = None,
                 events_channel: str = "ev:", jobs_stream: str = "jobs:",
                 subscriber_queue_size: int = 1000, redelivery_timeout: float = 60.0,
                 client_name: str = "callcenter-bus", reconnect_max: float = 5.0,
                 retain_acked: int = 10_000, trim_interval: float = 60.0,
                 interest_interval: float = 5.0) -> None:
        self.url = url
        self.client_name = client_name
        self._password = password
        self._channel_prefix = prefix + events_channel
        self._stream_prefix = prefix + jobs_stream
        self._maxsize = subscriber_queue_size
        self._idle_ms = max(1, int(redelivery_timeout * 1000))
        self._reconnect_max = reconnect_max
        self._client: aioredis.Redis | None = None
        self._subscriptions: list[Subscription] = []
        self._patterns: dict[str, int] = {}  # pattern -> number of subscriptions using it
        self._confirmed: dict[str, asyncio.Future[None]] = {}
        self._pubsub: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._groups: set[tuple[str, str]] = set()
        self._claim_cursor: dict[tuple[str, str], str] = {}
        self._next_claim: dict[tuple[str, str], float] = {}
        self._retain = retain_acked
        self._trim_interval = trim_interval
        self._next_trim: dict[str, float] = {}
        self.connected = asyncio.Event()
        self._interest_index = prefix + "interest"
        self._interest_key = f"{prefix}interest:{client_name}:{uuid.uuid4().hex[:8]}"
        self._interest_channel = prefix + "interest:changed"
        self._interest_interval = interest_interval
        self._interest_task: asyncio.Task[None] | None = None
        self._interest_nudge = asyncio.Event()
        self._remote_patterns: frozenset[str] | None = None  # None: unknown
        self._remote_known_until = 0.0  # time.monotonic() after which they are stale
        self._wanted: dict[str, bool] = {}
        self.interest_refreshed = asyncio.Event()  # set after each refresh, for tests

    # --- lifecycle ---

    async def start(self) -> None:
        """Connect (failing loudly if Redis cannot be reached) and start the reader."""
        self._client = aioredis.Redis.from_url(
            self.url, password=self._password, decode_responses=True,
            socket_timeout=None, socket_connect_timeout=5, socket_keepalive=True,
            health_check_interval=15, client_name=self.client_name,
            retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=6),
            retry_on_error=[RedisConnectionError, RedisTimeoutError],
        )
        try:
            await self._client.ping()
        except RedisError as exc:
            await self._client.aclose()
            raise BusError(f"cannot reach Redis at {_without_password(self.url)}: {exc}") from exc
        self._reader = asyncio.create_task(self._read_events(), name="redis-bus-reader")
        await self.refresh_interest()
        self._interest_task = asyncio.create_task(self._interest_loop(),
                                                  name="redis-bus-interest")

    async def close(self) -> None:
        for sub in list(self._subscriptions):
            await sub.close()
        for task in (self._reader, self._interest_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._reader = self._interest_task = None
        await self._close_pubsub()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def ping(self) -> bool:
        try:
            return bool(await asyncio.wait_for(self._redis.ping(), 1.0))
        except (RedisError, OSError, TimeoutError, BusError):
            return False

    @property
    def _redis(self) -> aioredis.Redis:
        if self._client is None:
            raise BusError("RedisBus used before start()")
        return self._client

    # --- topics ---

    async def publish(self, topic: str, event: dict[str, Any]) -> None:
        try:
            await self._redis.publish(self._channel_prefix + topic, json.dumps(event))
        except RedisError as exc:
            raise BusError(f"publish {topic} failed: {exc}") from exc

    async def publish_many(self, messages: list[tuple[str, dict[str, Any]]]) -> None:
        """One round trip for the lot (a pipeline keeps their order)."""
        if not messages:
            return
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for topic, event in messages:
                    pipe.publish(self._channel_prefix + topic, json.dumps(event))
                await pipe.execute()
        except RedisError as exc:
            raise BusError(f"publish of {len(messages)} events failed: {exc}") from exc

    def subscribe(self, *patterns: str) -> Subscription:
        return Subscription(patterns, self._maxsize, self._register, self._unregister)

    async def _register(self, sub: Subscription) -> None:
        self._subscriptions.append(sub)
        new = [p for p in sub.patterns if self._patterns.get(p, 0) == 0]
        for pattern in sub.patterns:
            self._patterns[pattern] = self._patterns.get(pattern, 0) + 1
        if new:
            self._wanted.clear()
            await self._psubscribe(new)
            await self._announce_change()

    async def _unregister(self, sub: Subscription) -> None:
        if sub in self._subscriptions:
            self._subscriptions.remove(sub)
        gone = []
        for pattern in sub.patterns:
            self._patterns[pattern] -= 1
            if self._patterns[pattern] == 0:
                del self._patterns[pattern]
                gone.append(self._wire_pattern(pattern))
        if gone:
            self._wanted.clear()
            await self._announce_change()
        if gone and self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.punsubscribe(*gone)

    async def _psubscribe(self, patterns: list[str], timeout: float = 10.0) -> None:
        """Subscribe and wait for Redis to confirm, so no later publish is missed."""
        loop = asyncio.get_running_loop()
        waits = [self._confirmed.setdefault(p, loop.create_future()) for p in patterns]
        if self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.psubscribe(*(self._wire_pattern(p) for p in patterns))
        # If the connection is down now, the reader subscribes again when it is back.
        await asyncio.wait_for(asyncio.gather(*waits), timeout)

    def _wire_pattern(self, pattern: str) -> str:
        return _GLOB_SPECIAL.sub(r"\\\1", self._channel_prefix) + pattern

    async def _read_events(self) -> None:
        """Read pub/sub forever; on a broken connection, back off and subscribe again."""
        backoff = 0.05
        while True:
            try:
                await self._open_pubsub()
                backoff = 0.05
                while True:
                    message = await self._pubsub.get_message(timeout=1.0)
                    if message is not None:
                        self._dispatch(message)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                self.connected.clear()
                log.warning("redis bus events connection lost error=%r retry_in=%.2fs",
                            exc, backoff)
                await self._close_pubsub()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._reconnect_max)

    async def _open_pubsub(self) -> None:
        pubsub = self._redis.pubsub()
        await pubsub.connect()
        await pubsub.subscribe(self._interest_channel)
        if self._patterns:
            await pubsub.psubscribe(*(self._wire_pattern(p) for p in self._patterns))
        self._pubsub = pubsub
        self.connected.set()
        self._interest_nudge.set()  # changes announced while we were away were missed

    async def _close_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "message" and message.get("channel") == self._interest_channel:
            self._interest_nudge.set()
            return
        if kind == "psubscribe":
            pattern = message["channel"][len(self._wire_pattern("")):]
            future = self._confirmed.pop(pattern, None)
            if future is not None and not future.done():
                future.set_result(None)
            return
        if kind != "pmessage":
            return
        topic = message["channel"][len(self._channel_prefix):]
        pattern = message["pattern"][len(self._wire_pattern("")):]
        for sub in self._subscriptions:
            # Redis sends one message per matching pattern: deliver once per subscription.
            if sub.first_match(topic) != pattern:
                continue
            try:
                event = json.loads(message["data"])  # a fresh copy for each subscriber
            except (TypeError, ValueError):
                log.warning("redis bus skipped a malformed event topic=%s", topic)
                return
            sub.deliver(topic, event)

    # --- interest: which topics any process subscribes to ---

    def wants(self, topic: str) -> bool:
        """True when a pattern of this or another process matches ``topic``, or when the
        other processes' patterns are not known right now."""
        if self._remote_patterns is None or time.monotonic() > self._remote_known_until:
            return True
        wanted = self._wanted.get(topic)
        if wanted is None:
            if len(self._wanted) >= _WANTED_CACHE_SIZE:
                self._wanted.clear()
            wanted = any(fnmatchcase(topic, p)
                         for p in (*self._patterns, *self._remote_patterns))
            self._wanted[topic] = wanted
        return wanted

    async def refresh_interest(self) -> None:
        """Renew this process's patterns in Redis and read everyone's; on failure forget
        them, so ``wants`` answers True until the next refresh succeeds."""
        try:
            async with asyncio.timeout(self._interest_interval):
                await self._announce()
                remote = await self._read_interest()
        except (RedisError, OSError, TimeoutError, BusError, ValueError, TypeError) as exc:
            if self._remote_patterns is not None:
                log.warning("redis bus interest unknown error=%r", exc)
            remote = None
        else:
            self._remote_known_until = time.monotonic() + 3 * self._interest_interval
        if remote != self._remote_patterns:
            self._remote_patterns = remote
            self._wanted.clear()
        self.interest_refreshed.set()

    async def _interest_loop(self) -> None:
        while True:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow the cancel of close()
            # when the nudge is set at the same moment, and close() would wait forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interest_interval):
                    await self._interest_nudge.wait()
            self._interest_nudge.clear()
            await self.refresh_interest()

    async def _announce(self) -> None:
        """Write (or, with no subscription left, remove) this process's patterns."""
        async with self._redis.pipeline(transaction=False) as pipe:
            if self._patterns:
                ttl_ms = int(self._interest_interval * 3 * 1000)
                pipe.sadd(self._interest_index, self._interest_key)
                pipe.set(self._interest_key, json.dumps(sorted(self._patterns)), px=ttl_ms)
            else:
                pipe.srem(self._interest_index, self._interest_key)
                pipe.delete(self._interest_key)
            await pipe.execute()

    async def _announce_change(self) -> None:
        """Tell the other processes at once; the heartbeat repairs a failure here."""
        try:
            async with asyncio.timeout(1.0):  # closing a subscription must stay quick
                await self._announce()
                await self._redis.publish(self._interest_channel, "")
        except (RedisError, OSError, BusError, TimeoutError) as exc:
            log.warning("redis bus interest announce failed error=%r", exc)

    async def _read_interest(self) -> frozenset[str]:
        members = await self._redis.smembers(self._interest_index)
        keys = sorted(members - {self._interest_key})  # our own patterns are known here
        values = await self._redis.mget(keys) if keys else []
        expired = [key for key, value in zip(keys, values, strict=True) if value is None]
        if expired:  # processes that stopped renewing: gone
            await self._redis.srem(self._interest_index, *expired)
        return frozenset(p for value in values if value for p in json.loads(value))

    # --- jobs ---

    async def enqueue(self, queue: str, payload: dict[str, Any]) -> str:
        try:
            return await self._redis.xadd(self._stream(queue), {"payload": json.dumps(payload)})
        except RedisError as exc:
            raise BusError(f"enqueue to {queue} failed: {exc}") from exc

    async def fetch(self, queue: str, group: str, consumer: str,
                    timeout: float = 1.0) -> Job | None:
        """Stale jobs of the group first, then new ones; None when ``timeout`` passes.

        Connection trouble is absorbed here (logged, retried until the timeout) so a
        consumer loop simply keeps calling ``fetch``.
        """
        loop = asyncio.get_running_loop()
        give_up = loop.time() + timeout
        pause = 0.05
        while True:
            remaining = give_up - loop.time()
            try:
                # Bounded: the client's own retries must not stretch the caller's timeout.
                async with asyncio.timeout(max(remaining, 0.0) + 0.25):
                    job = await self._fetch_once(queue, group, consumer, remaining)
                if job is not None or remaining <= 0:
                    return job
            except _TRANSIENT + (RedisError, TimeoutError) as exc:
                log.warning("redis bus fetch failed queue=%s error=%r", queue, exc)
                self._groups.discard((self._stream(queue), group))
                if loop.time() + pause >= give_up:
                    return None
                await asyncio.sleep(pause)
                pause = min(pause * 2, 1.0)

    async def _fetch_once(self, queue: str, group: str, consumer: str,
                          remaining: float) -> Job | None:
        key = self._stream(queue)
        await self._ensure_group(key, group)
        now = asyncio.get_running_loop().time()
        if now >= self._next_claim.get((key, group), 0.0):
            # Look for stale jobs at most every half redelivery timeout (or second): one
            # round trip saved on most fetches, a stale job waits at most that much longer.
            job = await self._claim_stale(queue, key, group, consumer)
            if job is not None:
                return job
            self._next_claim[(key, group)] = now + min(1.0, self._idle_ms / 2000)
        # Block at most half the redelivery timeout, so stale jobs are noticed in time.
        block_ms = int(max(0.0, min(remaining, self._idle_ms / 2000)) * 1000)
        try:
            reply = await self._redis.xreadgroup(group, consumer, {key: ">"}, count=1,
                                                 block=max(block_ms, 1))
        except ResponseError as exc:
            if "NOGROUP" in str(exc):  # the stream was deleted (e.g. Redis lost its data)
                self._groups.discard((key, group))
                return None
            raise
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                return self._job(queue, entry_id, fields, attempts=1)
        return None

    async def _claim_stale(self, queue: str, key: str, group: str,
                           consumer: str) -> Job | None:
        cursor = self._claim_cursor.get((key, group), "0-0")
        reply = await self._redis.xautoclaim(key, group, consumer, self._idle_ms,
                                             start_id=cursor, count=1)
        self._claim_cursor[(key, group)] = reply[0]
        for entry_id, fields in reply[1]:
            if fields is None:  # trimmed away meanwhile
                await self._redis.xack(key, group, entry_id)
                continue
            attempts = await self._attempts(key, group, entry_id)
            log.info("bus job redelivered queue=%s id=%s attempts=%d", queue, entry_id,
                     attempts)
            return self._job(queue, entry_id, fields, attempts)
        return None

    async def _attempts(self, key: str, group: str, entry_id: str) -> int:
        info = await self._redis.xpending_range(key, group, min=entry_id, max=entry_id,
                                                count=1)
        return int(info[0]["times_delivered"]) if info else 1

    async def _ensure_group(self, key: str, group: str) -> None:
        if (key, group) in self._groups:
            return
        try:
            await self._redis.xgroup_create(key, group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._groups.add((key, group))

    async def ack(self, job: Job, group: str) -> None:
        key = self._stream(job.queue)
        try:
            await self._redis.xack(key, group, job.id)
        except RedisError as exc:
            raise BusError(f"ack of {job.queue}/{job.id} failed: {exc}") from exc
        now = asyncio.get_running_loop().time()
        if now >= self._next_trim.get(key, 0.0):
            self._next_trim[key] = now + self._trim_interval
            try:
                await self._trim(key)
            except (RedisError, OSError) as exc:  # housekeeping: the next ack tries again
                log.warning("redis bus trim failed stream=%s error=%r", key, exc)

    async def _trim(self, key: str) -> None:
        """Delete the entries every group has read and acknowledged, except the newest
        ``retain_acked`` (a group created later still sees recent history)."""
        newest = await self._redis.xrevrange(key, count=self._retain)
        if len(newest) < self._retain:
            return
        floor = _stream_id(newest[-1][0])
        for group in await self._redis.xinfo_groups(key):
            pending = await self._redis.xpending(key, group["name"])
            if pending["pending"]:
                keep = _stream_id(pending["min"])
            else:  # everything up to the last delivered entry is acknowledged
                ms, seq = _stream_id(group["last-delivered-id"])
                keep = (ms, seq + 1)
            floor = min(floor, keep)
        if floor > (0, 0):
            await self._redis.xtrim(key, minid=f"{floor[0]}-{floor[1]}", approximate=False)

    def _stream(self, queue: str) -> str:
        return self._stream_prefix + queue

    def _job(self, queue: str, entry_id: str, fields: dict[str, str], attempts: int) -> Job:
        return Job(queue=queue, id=entry_id, payload=json.loads(fields["payload"]),
                   attempts=attempts, meta={"stream": self._stream(queue)})


def _stream_id(entry_id: str) -> tuple[int, int]:
    """``"1700000000000-3"`` -> (1700000000000, 3), ordered as Redis orders stream ids."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def _without_password(url: str) -> str:
    """The URL as it may be shown in logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
