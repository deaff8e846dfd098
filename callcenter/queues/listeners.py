"""The queues feature on the telephony listener: agent states from Asterisk's events, stored
and published in order; automatic after-call work; members re-added after a restart.

The listener must not block, so the board (pure, in memory) decides at once and the
database work runs in one writer task, in event order. After-call work is Asterisk's own
pause (``QueuePause`` with the configured reason) rather than queues.conf ``wrapuptime``:
``wrapuptime`` is per queue, not visible on AMI (no event starts or ends it, so no state or
period could be stored), and cannot be extended by the agent. queues.conf keeps a small
``wrapuptime`` as a guard: it stops Asterisk ringing the agent in the instant between
``AgentComplete`` and the pause arriving.

This process owns the queues' live state (``live.py``): each queue record (callers waiting,
the oldest, available agents) and agent record is written to the live store before it is
published, so a web process that reads the store after subscribing misses nothing. Queue
records need no database, so they have a lane of their own: the wallboard's waiting count
never waits behind the stored state changes. Each lane takes what has piled up at once (one
transaction, one live-store round trip, one publish round trip), so a burst of Asterisk's
events costs a few round trips, not a few per event.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any

from callcenter.auth.config import AuthConfig
from callcenter.auth.privacy import PiiPolicy
from callcenter.feature import Listener, Runtime
from callcenter.queues.agent_state import AgentBoard, Change
from callcenter.queues.config import QueuesConfig
from callcenter.queues.lanes import drain
from callcenter.queues.live import LiveStore, live_store, stored_agent_records
from callcenter.queues.screenpop import ScreenPopListener, ScreenPops
from callcenter.queues.service import RESTORED_TOPIC, STATE_TOPIC, AgentService
from callcenter.queues.visits import VisitRecorder
from callcenter.queues.wallboard import WAITING_TOPIC
from callcenter.telephony import events as ev

log = logging.getLogger(__name__)



class AgentStateListener:
    """Feeds the board and acts on its changes (commands may be None: no after-call work
    pause and no restore, e.g. in a replay)."""

    def __init__(self, service: AgentService, commands: Any = None,
                 live: LiveStore | None = None) -> None:
        self.service = service
        self.commands = commands
        self.live = live if live is not None else live_store(service.bus)
        """Where web processes read the live state (written before each publish)."""
        config = service.config
        self.board = AgentBoard(config.after_call_work_reason,
                                after_call_work=config.after_call_work_seconds > 0)
        self._writes: asyncio.Queue[Any] = asyncio.Queue()
        """State changes and snapshots, in event order."""
        self._queue_records: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._lanes: list[asyncio.Task[None]] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._timers: dict[str, asyncio.Task[None]] = {}
        self.waiting: dict[str, dict[str, datetime]] = {}
        """Callers waiting per queue: Uniqueid -> when they joined."""
        self.available: dict[str, int] = {}
        """Available agents per queue, as last published."""

    async def start(self) -> None:
        for interface, name, state, queues in await self.service.stored_states():
            self.board.seed(interface, name, state, queues)
        await self.live.replace_agents(await stored_agent_records(self.service.sessionmaker))
        self._lanes = [
            asyncio.create_task(drain(self._writes, self._write), name="queues-agent-state"),
            asyncio.create_task(drain(self._queue_records, self._put_queues),
                                name="queues-waiting")]

    async def stop(self) -> None:
        for timer in list(self._timers.values()):
            timer.cancel()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=10)
        if self._lanes:
            await self.flush()
            for lane in self._lanes:
                lane.cancel()
            self._lanes = []
        await self.live.close()

    async def flush(self) -> None:
        """Wait until every change seen so far is stored and published (tests, stop)."""
        await self._writes.join()
        await self._queue_records.join()

    def __call__(self, event: Any) -> None:
        if isinstance(event, ev.QueueCallerJoined | ev.QueueCallerLeft |
                      ev.QueueCallerAbandoned):
            self._caller(event)
            return
        if not isinstance(event, ev.QueueMemberEvent | ev.AgentEvent | ev.HoldStarted |
                          ev.HoldEnded | ev.QueuesSnapshot):
            return
        changes = self.board.apply(event)
        for change in changes:
            self._writes.put_nowait(change)
        if isinstance(event, ev.QueuesSnapshot):
            self._waiting_snapshot(event)
            if self.commands is not None:
                self._writes.put_nowait(event)
        elif changes:
            self._publish_available(event.at)

    # -- callers waiting (the wallboard) ---------------------------------------------------

    def _caller(self, event: ev.QueueCallerJoined | ev.QueueCallerLeft |
                ev.QueueCallerAbandoned) -> None:
        waiting = self.waiting.setdefault(event.queue, {})
        if isinstance(event, ev.QueueCallerJoined):
            waiting[event.uniqueid] = event.at
        elif waiting.pop(event.uniqueid, None) is None:
            return
        self._publish_waiting(event.queue, event.at)

    def _waiting_snapshot(self, snapshot: ev.QueuesSnapshot) -> None:
        """Callers waiting now (``QueueEntry``: ``Wait`` seconds so far)."""
        queues = {p.get("Queue", "") for p in snapshot.params} | set(self.waiting)
        self.waiting = {q: {} for q in queues if q}
        for entry in snapshot.entries:
            joined = snapshot.at - timedelta(seconds=_seconds(entry.get("Wait")))
            self.waiting.setdefault(entry.get("Queue", ""), {})[
                entry.get("Uniqueid", "")] = joined
        for queue in self.waiting:
            self._publish_waiting(queue, snapshot.at)

    def _publish_waiting(self, queue: str, at: datetime) -> None:
        """The queue's live record: callers waiting, the oldest, agents available now."""
        waiting = self.waiting.get(queue, {})
        oldest = min(waiting.values()) if waiting else None
        available = self._available_counts().get(queue, 0)
        self.available[queue] = available
        self._queue_records.put_nowait({
            "queue": queue, "waiting": len(waiting), "at": at.isoformat(),
            "oldest_joined_at": oldest.isoformat() if oldest else None,
            "available_agents": available})

    def _available_counts(self) -> dict[str, int]:
        counts = {queue: 0 for queue in self.service.config.queue_names}
        for interface, state in self.board.states.items():
            if state.state == "available":
                for queue in self.board.agents[interface].queues:
                    counts[queue] = counts.get(queue, 0) + 1
        return counts

    def _publish_available(self, at: datetime) -> None:
        """Queues whose count of available agents the last changes moved."""
        for queue, count in self._available_counts().items():
            if self.available.get(queue, 0) != count:
                self._publish_waiting(queue, at)

    async def _put_queues(self, records: list[dict[str, Any]]) -> None:
        """The newest record of each queue (records are full values) stored, then
        published."""
        newest = list({record["queue"]: record for record in records}.values())
        await self.live.put(queues=newest)
        await self.service.publish([(WAITING_TOPIC, record) for record in newest])

    async def _write(self, batch: list[Any]) -> None:
        """Runs of state changes stored together; a snapshot acted on where it fell."""
        start = 0
        while start < len(batch):
            end = start
            while end < len(batch) and isinstance(batch[end], Change):
                end += 1
            if end > start:
                await self._record(batch[start:end])
                start = end
                continue
            try:
                await self._after_snapshot(batch[start])
            except Exception:  # noqa: BLE001 - one bad snapshot must not stop the changes
                log.exception("queues.snapshot_failed")
            start += 1

    async def _record(self, changes: list[Change]) -> None:
        """Store the changes together (one by one if that fails: one bad change must not
        stop the others), then put and publish the stored ones together."""
        try:
            payloads = await self.service.record_all(changes)
        except Exception:  # noqa: BLE001 - retried alone below
            log.warning("queues.batch_write_failed changes=%d: one by one", len(changes))
            payloads = []
            for change in changes:
                try:
                    payloads += await self.service.record_all([change])
                except Exception:  # noqa: BLE001
                    log.exception("queues.write_failed change=%r", change)
                    payloads.append(None)
        stored = [(c, p) for c, p in zip(changes, payloads, strict=True) if p is not None]
        try:
            await self.live.put(agents=[payload for _, payload in stored])
            await self.service.publish([(STATE_TOPIC, payload) for _, payload in stored])
        except Exception:  # noqa: BLE001 - stored; the feeds' resync shows them later
            log.exception("queues.publish_failed changes=%d", len(stored))
        for change, payload in stored:
            log.info("queues.agent_state agent=%s interface=%s state=%s reason=%s queue=%s",
                     payload["agent_id"], change.interface, change.after.state,
                     change.after.reason, change.after.queue)
            if change.call_ended and self.commands is not None:
                self._spawn(self._after_call_work(change.interface, change.at))

    async def _after_snapshot(self, snapshot: ev.QueuesSnapshot) -> None:
        """Re-add the logged-in agents Asterisk lost; re-arm after-call work timers."""
        restored = await self.service.restore_members(self.commands, snapshot.members)
        if restored:
            log.warning("queues.members_restored agents=%d detail=%s", len(restored),
                        ";".join(f"{r['interface']}:{','.join(r['queues'])}" for r in restored))
            await self.service.publish([(RESTORED_TOPIC, {"at": snapshot.at.isoformat(),
                                                         "agents": restored})])
        for interface, state in list(self.board.states.items()):
            if state.state == "after_call_work" and interface not in self._timers:
                until = await self.service.after_call_work_until(interface)
                if until is not None:
                    left = (until - self.service.clock.now()).total_seconds()
                    self._arm(interface, until, max(left, 0.0))

    # -- after-call work -------------------------------------------------------------------

    async def _after_call_work(self, interface: str, at: datetime) -> None:
        until = await self.service.start_after_call_work(self.commands, interface, at)
        if until is not None:
            self._arm(interface, until, self.service.config.after_call_work_seconds)

    def _arm(self, interface: str, until: datetime, seconds: float) -> None:
        old = self._timers.pop(interface, None)
        if old is not None:
            old.cancel()
        task = asyncio.get_running_loop().create_task(self._timer(interface, until, seconds))
        self._timers[interface] = task
        task.add_done_callback(lambda t: self._timers.get(interface) is t
                               and self._timers.pop(interface))

    async def _timer(self, interface: str, until: datetime, seconds: float) -> None:
        """Sleep the after-call work out; an extension moves the stored end, so sleep the
        difference; unpause only if the agent is still in after-call work."""
        try:
            while True:
                await asyncio.sleep(seconds)  # a timer, not synchronisation
                if self.board.state(interface).state != "after_call_work":
                    return
                stored = await self.service.after_call_work_until(interface)
                if stored is None or stored <= until:
                    break
                seconds, until = (stored - until).total_seconds(), stored
            await self.commands.queue_pause(None, interface, False, None)
            log.info("queues.after_call_work_over interface=%s", interface)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the agent can still unpause by hand
            log.warning("queues.after_call_work_end_failed interface=%s error=%r",
                        interface, exc)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def listeners(runtime: Runtime) -> list[Listener]:
    config = getattr(runtime.settings, "queues", None) or QueuesConfig()
    service = AgentService(runtime.sessionmaker, runtime.clock, config, runtime.bus)
    commands = runtime.telephony.commands if runtime.telephony is not None else None
    return [AgentStateListener(service, commands, live_store(runtime.bus, runtime.settings)),
            screen_pop_listener(runtime, commands), VisitRecorder(runtime.sessionmaker)]


def screen_pop_listener(runtime: Runtime, commands: Any) -> ScreenPopListener:
    """The agents' screen-pops (``screenpop.py``), under the same privacy policy as the API."""
    auth = getattr(runtime.settings, "auth", None) or AuthConfig()
    pops = ScreenPops(runtime.sessionmaker, runtime.clock, PiiPolicy(auth))
    return ScreenPopListener(pops, runtime.bus, commands)


def _seconds(value: str | None) -> float:
    try:
        return float(value or 0)
    except ValueError:
        return 0.0
