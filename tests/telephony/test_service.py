"""Telephony service end to end: replaying Asterisk -> resync -> listeners -> bus -> tracker."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from callcenter.bus.base import Bus, Job
from callcenter.calls.models import CallLog
from callcenter.calls.tracker import CallTracker
from callcenter.clock import SystemClock
from callcenter.store.base import Base
from callcenter.telephony import events as ev
from callcenter.telephony.config import AgiConfig
from callcenter.telephony.service import Telephony
from tests.telephony.asterisk_double import ReplayAsterisk
from tests.telephony.capture_tools import received_messages
from tests.telephony.conftest import Collector, ami_config


class RecordingBus(Bus):
    """Just enough of a bus to see what the service publishes."""

    def __init__(self) -> None:
        self.published = Collector()

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def publish(self, topic: str, event: dict[str, Any]) -> None:
        self.published((topic, event))

    def subscribe(self, *patterns: str) -> Any:
        raise NotImplementedError

    async def enqueue(self, queue: str, payload: dict[str, Any]) -> str:
        raise NotImplementedError

    async def fetch(self, queue: str, group: str, consumer: str,
                    timeout: float = 1.0) -> Job | None:
        raise NotImplementedError

    async def ack(self, job: Job, group: str) -> None:
        raise NotImplementedError

    async def ping(self) -> bool:
        return True


def _events_after(path: Path, seconds: float) -> bytes:
    """The captured event bytes Asterisk sent after ``seconds`` (list replies excluded)."""
    return b"".join(b.wire for b in received_messages(path)
                    if b.t > seconds and "ActionID: " not in b.text)


async def _rows(sessionmaker) -> list[CallLog]:
    async with sessionmaker() as session:
        return list((await session.execute(select(CallLog))).scalars())


async def test_connect_mid_call_resync_then_reconnect(
        asterisk: ReplayAsterisk, captures_dir: Path, sqlite_url: str) -> None:
    engine = create_async_engine(sqlite_url)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
    clock = SystemClock()
    tracker = CallTracker(sessionmaker, clock)
    await tracker.start()
    bus = RecordingBus()
    telephony = Telephony(ami_config(asterisk.port), AgiConfig(port=0), bus, clock)
    seen = Collector()
    telephony.add_listener(tracker)
    telephony.add_listener(seen)
    await telephony.start()
    try:
        # connecting while a call is up: the captured CoreShowChannels lists its 3 channels
        await seen.wait_for(lambda items: any(isinstance(e, ev.QueuesSnapshot) for e in items))
        assert telephony.connected
        kinds = [type(e) for e in seen.items]
        assert kinds[:4] == [ev.AmiConnected, ev.ResyncStarted, ev.ChannelsSnapshot,
                             ev.QueuesSnapshot]
        snapshot = seen.items[2]
        assert {c.linkedid for c in snapshot.channels} == {"1795239874.0"}
        assert tracker.live_calls == 1
        # the rest of the call arrives live
        asterisk.send(_events_after(captures_dir / "queue_call.txt", 5.0))
        await seen.wait_for(lambda items: sum(isinstance(e, ev.ChannelHungUp)
                                              for e in items) == 4)
        assert tracker.live_calls == 0
        await tracker.flush()
        (row,) = await _rows(sessionmaker)
        assert row.linkedid == "1795239874.0" and row.disposition == "answered"
        # Asterisk goes away and comes back: a second resync, nothing duplicated
        asterisk.variant["coreshowchannels"] = 1
        asterisk.drop()
        await seen.wait_for(lambda items: sum(isinstance(e, ev.ChannelsSnapshot)
                                              for e in items) == 2)
        assert any(isinstance(e, ev.AmiDisconnected) for e in seen.items)
        await tracker.flush()
        assert len(await _rows(sessionmaker)) == 1
        # listeners first, then the bus, same order
        await bus.published.wait_for(lambda items: len(items) >= len(seen.items))
        assert [t for t, _ in bus.published.items] == [e.topic for e in seen.items]
        assert bus.published.items[0][1]["topic"] == "telephony.connected"
        assert telephony.resyncs == 2
    finally:
        await telephony.stop()
        await tracker.stop()
        await engine.dispose()
    assert not telephony.connected


async def test_listener_errors_do_not_stop_the_stream(asterisk: ReplayAsterisk,
                                                      captures_dir: Path) -> None:
    telephony = Telephony(ami_config(asterisk.port), AgiConfig(port=0), None, SystemClock())

    def broken(event: ev.DomainEvent) -> None:
        raise RuntimeError("listener bug")

    seen = Collector()
    telephony.add_listener(broken)
    telephony.add_listener(seen)
    await telephony.start()
    try:
        await seen.wait_for(lambda items: any(isinstance(e, ev.QueuesSnapshot) for e in items))
        asterisk.send((captures_dir / "abandon.raw").read_bytes().split(b"\r\n", 1)[1])
        await seen.wait_for(lambda items: any(isinstance(e, ev.QueueCallerAbandoned)
                                              for e in items))
        assert telephony.agi.port > 0
    finally:
        await telephony.stop()


async def test_timestamps_use_the_timestamp_header(asterisk: ReplayAsterisk) -> None:
    telephony = Telephony(ami_config(asterisk.port), AgiConfig(port=0), None, SystemClock())
    seen = Collector()
    telephony.add_listener(seen)
    await telephony.start()
    try:
        await seen.wait_for(lambda items: any(isinstance(e, ev.QueuesSnapshot) for e in items))
        asterisk.send(b"Event: Newchannel\r\nPrivilege: call,all\r\nTimestamp: 1795239874.250000"
                      b"\r\nChannel: PJSIP/6001-1\r\nChannelState: 4\r\nUniqueid: 9.1\r\n"
                      b"Linkedid: 9.1\r\n\r\n")
        await seen.wait_for(lambda items: any(isinstance(e, ev.ChannelCreated) for e in items))
        created = next(e for e in seen.items if isinstance(e, ev.ChannelCreated))
        assert created.at == datetime.fromtimestamp(1795239874.25, UTC)
    finally:
        await telephony.stop()




async def test_failed_resync_reconnects_and_resyncs_again(asterisk: ReplayAsterisk) -> None:
    asterisk.silent.add("coreshowchannels")
    telephony = Telephony(ami_config(asterisk.port, action_timeout=0.1), AgiConfig(port=0),
                          None, SystemClock())
    seen = Collector()
    telephony.add_listener(seen)
    await telephony.start()
    try:
        await asterisk.wait_for(lambda: asterisk.logins >= 2)
        asterisk.silent.clear()
        await seen.wait_for(lambda items: any(isinstance(e, ev.QueuesSnapshot) for e in items))
        assert telephony.resyncs == 1 and telephony.connected
    finally:
        await telephony.stop()


def _ping_now(fields: dict[str, list[str]]) -> list[bytes]:
    """Ping answered with the current time (the captures carry no Timestamp headers, so
    event times are receipt times)."""
    return [b"Response: Success\r\nActionID: {ActionID}\r\nPing: Pong\r\n"
            b"Timestamp: %.6f\r\n\r\n" % time.time()]


async def test_periodic_reconciliation_closes_a_call_whose_hangup_was_lost(
        asterisk: ReplayAsterisk, captures_dir: Path, sqlite_url: str) -> None:
    engine = create_async_engine(sqlite_url)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
    clock = SystemClock()
    tracker = CallTracker(sessionmaker, clock, pbx="pbx-a")
    await tracker.start()
    asterisk.overrides["ping"] = _ping_now
    telephony = Telephony(ami_config(asterisk.port, pbx="pbx-a", reconcile_interval=0.1),
                          AgiConfig(port=0), None, clock)
    seen = Collector()
    telephony.add_listener(tracker)
    telephony.add_listener(seen)
    await telephony.start()
    try:
        await seen.wait_for(lambda items: any(isinstance(e, ev.QueuesSnapshot) for e in items))
        assert tracker.live_calls == 1
        # the rest of the call arrives, but every Hangup is lost (no reconnect)
        rest = b"".join(b.wire for b in received_messages(captures_dir / "queue_call.txt")
                        if b.t > 5.0 and "ActionID: " not in b.text
                        and not b.text.startswith("Event: Hangup"))
        asterisk.send(rest)
        await seen.wait_for(lambda items: sum(isinstance(e, ev.BridgeLeft) for e in items) == 2)
        assert tracker.live_calls == 1  # nothing says it ended
        asterisk.variant["coreshowchannels"] = 1  # Asterisk has no channel left
        await seen.wait_for(lambda items: any(
            isinstance(e, ev.ChannelsSnapshot) and e.periodic and not e.channels
            for e in items), timeout=10)
        assert tracker.live_calls == 0
        await tracker.flush()
        (row,) = await _rows(sessionmaker)
        assert row.linkedid == "1795239874.0" and row.pbx == "pbx-a"
        assert row.disposition == "answered" and row.end_estimated is True
        assert row.ended_at is not None
        # the same path as the reconnect resync, without a reconnect and channels only
        assert asterisk.logins == 1 and telephony.resyncs == 1
        assert telephony.reconciliations >= 1
        assert asterisk.count("QueueStatus") == 1
        periodic = next(e for e in seen.items if isinstance(e, ev.ResyncStarted) and e.periodic)
        assert periodic.pbx == "pbx-a"
    finally:
        await telephony.stop()
        await tracker.stop()
        await engine.dispose()
