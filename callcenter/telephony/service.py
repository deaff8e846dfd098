"""The telephony service: AMI client + resync + domain events + command port + FastAGI.

Domain events go first, synchronously and in order, to in-process listeners (the call
tracker must see them before anything else), then to the bus from a publisher task so a slow
bus never blocks the AMI reader (Asterisk drops readers that stall for 100 ms).

Hot path: an ``EventFilter`` built from what ``events.py`` translates drops the rest before
it is parsed, and an event is published on the bus only if the bus says someone subscribes to
its topic (``Bus.wants``, where the bus has it).

Resync: after every (re)connect the live channels (``CoreShowChannels``) and queues
(``QueueStatus``) are read back. A ``Hangup`` can also be lost without any reconnect, so every
``ami.reconcile_interval`` the channels alone are read back again through the same path
(``ResyncStarted`` + ``ChannelsSnapshot`` with ``periodic=True``): one cheap list action.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from callcenter.bus.base import Bus
from callcenter.clock import Clock
from callcenter.telephony import events as ev
from callcenter.telephony.agi import AgiServer
from callcenter.telephony.ami import CONNECTION_EVENTS, AmiClient
from callcenter.telephony.commands import CommandPort
from callcenter.telephony.config import AgiConfig, AmiConfig
from callcenter.telephony.errors import AmiActionError, AmiNotConnected, AmiTimeout
from callcenter.telephony.eventfilter import EventFilter
from callcenter.telephony.protocol import Fields

log = logging.getLogger(__name__)

Listener = Callable[[ev.DomainEvent], None]
PUBLISH_QUEUE_LIMIT = 100_000


def event_filter() -> EventFilter:
    """What the translation uses, plus what the AMI client acts on itself."""
    return EventFilter.of(ev.WANTED_EVENTS | CONNECTION_EVENTS,
                          variables=ev.VARIABLES_OF_INTEREST,
                          variable_prefixes=ev.VARIABLE_PREFIXES,
                          applications=ev.APPS_OF_INTEREST)


class Telephony:
    def __init__(self, ami: AmiConfig, agi: AgiConfig, bus: Bus | None, clock: Clock) -> None:
        self._clock = clock
        self._bus = bus
        self._translator = ev.EventTranslator(clock)
        self._listeners: list[Listener] = []
        self._config = ami
        self.event_filter = event_filter()
        self._client = AmiClient(ami, self._on_ami_event, self._resync, self._on_disconnected,
                                 keep=self.event_filter.keeps,
                                 receipt=self._translator.receipt)
        self.commands = CommandPort(self._client)
        self.agi = AgiServer(agi)
        self._outbox: asyncio.Queue[ev.DomainEvent] | None = None
        self._publisher: asyncio.Task[None] | None = None
        self._reconciler: asyncio.Task[None] | None = None
        self._sync_lock = asyncio.Lock()
        self.dropped_publications = 0
        self.unwanted_publications = 0
        """Events not published because no subscriber wanted their topic."""
        self.resyncs = 0
        self.reconciliations = 0

    @property
    def connected(self) -> bool:
        return self._client.connected

    @property
    def pbx(self) -> str:
        """The configured name of this Asterisk server (``ami.pbx``)."""
        return self._config.pbx

    @property
    def ami(self) -> AmiClient:
        """The underlying client (connection state, tests)."""
        return self._client

    def add_listener(self, callback: Listener) -> None:
        """``callback(event)`` is called synchronously, in order; it must not block."""
        self._listeners.append(callback)

    def remove_listener(self, callback: Listener) -> None:
        self._listeners.remove(callback)

    async def start(self) -> None:
        if self._bus is not None:
            self._outbox = asyncio.Queue(PUBLISH_QUEUE_LIMIT)
            self._publisher = asyncio.create_task(self._publish_loop(), name="telephony-bus")
        await self.agi.start()
        await self._client.start()
        self._reconciler = asyncio.create_task(self._reconcile_loop(), name="ami-reconcile")

    async def stop(self) -> None:
        if self._reconciler is not None:
            self._reconciler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconciler
            self._reconciler = None
        await self._client.stop()
        await self.agi.stop()
        if self._publisher is not None:
            assert self._outbox is not None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._outbox.join(), 2.0)
            self._publisher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._publisher
            self._publisher = None

    # -- events ----------------------------------------------------------------------------

    def _on_ami_event(self, fields: Fields) -> None:
        event = self._translator.translate(fields)
        if event is not None:
            self.emit(event)

    def emit(self, event: ev.DomainEvent) -> None:
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                log.exception("telephony.listener_failed topic=%s listener=%r",
                              event.topic, listener)
        if self._outbox is None:
            return
        if not self._bus.wants(event.topic):
            self.unwanted_publications += 1
            return
        try:
            self._outbox.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped_publications += 1
            if self.dropped_publications % 1000 == 1:
                log.error("telephony.bus_backlog_full dropped=%d", self.dropped_publications)

    async def _publish_loop(self) -> None:
        assert self._outbox is not None and self._bus is not None
        while True:
            event = await self._outbox.get()
            try:
                await self._bus.publish(event.topic, event.to_dict())
            except Exception as exc:
                log.warning("telephony.publish_failed topic=%s error=%r", event.topic, exc)
            finally:
                self._outbox.task_done()

    # -- resync ----------------------------------------------------------------------------

    async def _resync(self) -> None:
        """Rebuild live state from Asterisk after every (re)connect."""
        async with self._sync_lock:
            epoch = self._client.epoch
            self.emit(ev.AmiConnected(self._clock.now(), epoch))
            at, channels = await self._snapshot_channels(epoch, periodic=False)
            queue_items = await self.commands.queue_status()
            params, members, entries = [], [], []
            for item in queue_items:
                row = {k: v for k, v in item.items() if isinstance(v, str)}
                kind = row.get("Event")
                {"QueueParams": params, "QueueMember": members, "QueueEntry": entries}.get(
                    kind, []).append(row)
            self.emit(ev.QueuesSnapshot(at, epoch, tuple(params), tuple(members),
                                        tuple(entries)))
            self.resyncs += 1
        log.info("telephony.resynced pbx=%s epoch=%d channels=%d queues=%d waiting=%d",
                 self.pbx, epoch, channels, len(params), len(entries))

    async def reconcile(self) -> None:
        """Read the live channels back on a live connection: closes the calls whose
        ``Hangup`` was lost and picks up those whose start was missed (periodic task; also
        callable on demand). Skipped while a (re)connect resync runs: it does the same."""
        if not self._client.connected or self._sync_lock.locked():
            return
        async with self._sync_lock:
            epoch = self._client.epoch
            _, channels = await self._snapshot_channels(epoch, periodic=True)
            self.reconciliations += 1
        log.info("telephony.reconciled pbx=%s epoch=%d channels=%d", self.pbx, epoch, channels)

    async def _snapshot_channels(self, epoch: int, *, periodic: bool) -> tuple[datetime, int]:
        """``ResyncStarted`` + ``CoreShowChannels`` -> ``ChannelsSnapshot``; returns the
        snapshot's time and its channel count."""
        at = await self._asterisk_now()
        self.emit(ev.ResyncStarted(at, epoch, self.pbx, periodic))
        channels = await self.commands.core_show_channels()
        snapshots = []
        for item in channels:
            try:
                snapshots.append(ev.snapshot_from_fields(dict(item.items())))
            except ev.MissingField as exc:
                log.warning("telephony.bad_channel_item field=%s", exc)
        self._translator.keep_only({snap.uniqueid for snap in snapshots})
        self.emit(ev.ChannelsSnapshot(at, epoch, tuple(snapshots), self.pbx, periodic))
        return at, len(snapshots)

    async def _reconcile_loop(self) -> None:
        while True:
            await asyncio.sleep(self._config.reconcile_interval)
            try:
                await self.reconcile()
            except (AmiTimeout, AmiNotConnected, AmiActionError) as exc:
                log.warning("telephony.reconcile_failed pbx=%s error=%r", self.pbx, exc)
            except Exception:  # the next period tries again
                log.exception("telephony.reconcile_crashed pbx=%s", self.pbx)

    async def _asterisk_now(self) -> datetime:
        """Asterisk's own time (``Ping`` reply ``Timestamp``), so that snapshot times are on
        the same clock as the event ``Timestamp`` headers; our clock if it has none."""
        reply = await self.commands.action("Ping")
        try:
            return datetime.fromtimestamp(float(reply["Timestamp"]), UTC)
        except (KeyError, TypeError, ValueError, OverflowError):
            return self._clock.now()

    def _on_disconnected(self, epoch: int) -> None:
        self.emit(ev.AmiDisconnected(self._clock.now(), epoch))
