"""AMI event throughput and call-state lag of the telephony layer.

Part 1: the real Asterisk 22 capture streams (queue calls, abandon, MixMonitor, FastAGI, SIP),
repeated with fresh Uniqueids/Linkedids, are written by a local AMI server over TCP into the
whole path (socket -> parse -> domain events -> call tracker -> batched SQLite writes, and
the in-process bus -> a subscriber; timed until both have the last event), and, in the same
run, parsed by panoramisk's own ``Message.from_line`` (its raw parsing, the way its protocol
splits the stream). Prints events/s of both and the ratio.

Part 2: 1,000 concurrent queue calls (the captured queue call, ids rewritten): every event
carries a ``Timestamp`` header set when it is written, so event-to-state lag is the time from
the write to the call tracker having applied it. Memory (tracemalloc, second run) is compared
with the baseline after the calls have ended.

Usage: python bench/ami_throughput.py [--reps 200] [--calls 1000] >> bench/RESULTS.md
(the Markdown section goes to stdout, progress to stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

from panoramisk.message import Message
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from callcenter.bus.memory import MemoryBus
from callcenter.calls.models import CallLog  # noqa: F401  (registers the table)
from callcenter.calls.tracker import CallTracker
from callcenter.clock import SystemClock
from callcenter.store.base import Base
from callcenter.telephony import events as ev
from callcenter.telephony.config import AgiConfig, AmiConfig
from callcenter.telephony.service import Telephony

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CALLCENTER_SHARED", REPO.parent / "shared"))
CAPTURES = SHARED / "asterisk" / "captures"
TEMPLATES = ["queue_call", "abandon", "mixmonitor", "fastagi", "sip_call"]
END_MARK = b"Event: UserEvent\r\nPrivilege: user,all\r\nUserEvent: BenchEnd\r\n\r\n"


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def capture_events(name: str) -> list[bytes]:
    """The event messages of a capture (replies and list items left out)."""
    data = (CAPTURES / f"{name}.raw").read_bytes().split(b"\r\n", 1)[1]
    out = []
    for chunk in data.split(b"\r\n\r\n"):
        if chunk.startswith(b"Event: ") and b"\r\nActionID: " not in chunk:
            out.append(chunk + b"\r\n\r\n")
    return out


def build_stream(reps: int) -> tuple[bytes, int, int]:
    """``reps`` copies of every template with fresh ids: (bytes, events, calls)."""
    templates = [b"".join(capture_events(name)) for name in TEMPLATES]
    per_rep = sum(t.count(b"\r\n\r\n") for t in templates)
    parts = [t.replace(b"1795239", b"%07d" % rep) for rep in range(reps) for t in templates]
    return b"".join(parts), per_rep * reps, len(TEMPLATES) * reps


class StreamServer:
    """A minimal AMI server: login, empty resync listings, Ping; then streams bytes."""

    def __init__(self) -> None:
        self.writer: asyncio.StreamWriter | None = None
        self.ready = asyncio.Event()
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Asterisk Call Manager/11.0.0\r\n")
        while True:
            try:
                raw = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            head = dict(line.split(": ", 1) for line in raw.decode().split("\r\n") if ": " in line)
            aid, action = head.get("ActionID", ""), head.get("Action", "").lower()
            if action in ("coreshowchannels", "queuestatus"):
                done = (
                    "CoreShowChannelsComplete"
                    if action == "coreshowchannels"
                    else "QueueStatusComplete"
                )
                writer.write(
                    f"Response: Success\r\nActionID: {aid}\r\nEventList: start\r\n"
                    f"Message: follows\r\n\r\nEvent: {done}\r\nActionID: {aid}\r\n"
                    f"EventList: Complete\r\nListItems: 0\r\n\r\n".encode()
                )
            else:
                writer.write(
                    f"Response: Success\r\nActionID: {aid}\r\n"
                    f"Message: Authentication accepted\r\n\r\n".encode()
                )
            if action == "login":
                self.writer = writer
                self.ready.set()

    async def send(self, data: bytes, chunk: int = 65536) -> None:
        assert self.writer is not None
        for start in range(0, len(data), chunk):
            self.writer.write(data[start : start + chunk])
            await self.writer.drain()


class Rig:
    """Telephony + CallTracker on SQLite + the in-process bus with one subscriber (the
    embedded default), connected to a StreamServer."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.end = asyncio.Event()
        self.bus_end = asyncio.Event()
        self.resynced = asyncio.Event()
        self.delivered = 0

    async def __aenter__(self) -> Rig:
        self.server = StreamServer()
        port = await self.server.start()
        self.engine = create_async_engine(f"sqlite+aiosqlite:///{self.tmp / 'bench.db'}")
        async with self.engine.begin() as conn:
            await conn.run_sync(Base.metadata.drop_all)
            await conn.run_sync(Base.metadata.create_all)
        self.tracker = CallTracker(
            async_sessionmaker(self.engine, expire_on_commit=False), SystemClock()
        )
        await self.tracker.start()
        config = AmiConfig(
            port=port, username="bench", secret=SecretStr("x"), auth="plain", ping_interval=3600
        )
        self.bus = MemoryBus(subscriber_queue_size=1_000_000)
        await self.bus.start()
        self.subscription = await self.bus.subscribe("*").open()
        self.reader = asyncio.create_task(self._read_bus())
        self.telephony = Telephony(config, AgiConfig(port=0), self.bus, SystemClock())
        self.telephony.add_listener(self.tracker)
        self.telephony.add_listener(self._watch)
        await self.telephony.start()
        await asyncio.wait_for(self.resynced.wait(), 10)
        return self

    async def _read_bus(self) -> None:
        async for topic, event in self.subscription:
            self.delivered += 1
            if topic == "user.event" and event.get("name") == "BenchEnd":
                self.bus_end.set()

    async def wait_end(self) -> None:
        """The last event has reached the tracker and the bus subscriber."""
        await self.end.wait()
        await self.bus_end.wait()
        self.end.clear()
        self.bus_end.clear()

    def _watch(self, event: ev.DomainEvent) -> None:
        if isinstance(event, ev.QueuesSnapshot):
            self.resynced.set()
        elif isinstance(event, ev.UserEvent) and event.name == "BenchEnd":
            self.end.set()

    async def __aexit__(self, *exc: object) -> None:
        await self.telephony.stop()
        await self.bus.close()
        await self.reader
        await self.tracker.stop()
        await self.server.stop()
        await self.engine.dispose()


async def full_path_rate(tmp: Path, stream: bytes, events: int) -> tuple[float, int, int]:
    async with Rig(tmp) as rig:
        start = time.perf_counter()
        await rig.server.send(stream + END_MARK)
        await rig.wait_end()
        elapsed = time.perf_counter() - start
        await rig.tracker.flush()
        return events / elapsed, rig.tracker.writer.rows_written, rig.tracker.live_calls


def panoramisk_rate(stream: bytes) -> float:
    """panoramisk's own way: decode, split on blank lines, ``Message.from_line``."""
    start = time.perf_counter()
    parsed = 0
    for chunk in stream.decode("ascii", "ignore").split("\r\n\r\n"):
        if Message.from_line(chunk.strip()) is not None:
            parsed += 1
    return parsed / (time.perf_counter() - start)


async def part_throughput(tmp: Path, reps: int, rounds: int) -> dict[str, float]:
    """Alternate both measurements ``rounds`` times; best of each (the machine is shared)."""
    stream, events, calls = build_stream(reps)
    log(f"part 1: {events} events, {calls} calls, {len(stream) / 1e6:.1f} MB")
    ours, raw, written, live = [], [], 0, 0
    for _ in range(rounds):
        rate, written, live = await full_path_rate(tmp, stream, events)
        ours.append(rate)
        raw.append(panoramisk_rate(stream))
        log(f"  ours {ours[-1]:,.0f} ev/s, panoramisk raw parse {raw[-1]:,.0f} ev/s")
    return {
        "events": events,
        "calls": calls,
        "ours": max(ours),
        "panoramisk": max(raw),
        "ratio": max(ours) / max(raw),
        "rows": written,
        "live_after": live,
        "rounds": rounds,
    }


def call_template() -> tuple[list[bytes], list[bytes]]:
    """The captured queue call split into set-up (to the conversation) and tear-down."""
    events = capture_events("queue_call")
    cut = next(i for i, e in enumerate(events) if e.startswith(b"Event: SoftHangupRequest"))
    return events[:cut], events[cut:]


def stamp(message: bytes, now: float) -> bytes:
    return message[:-2] + b"Timestamp: %.6f\r\n\r\n" % now


async def send_calls(rig: Rig, calls: int, offset: int, phase: list[bytes], batch: int = 4) -> None:
    """Write one phase of every call, ``batch`` calls at a time, paced over ~1 s."""
    pause = 1.0 / max(1, calls // batch)
    for first in range(0, calls, batch):
        now = time.time()
        chunk = b"".join(
            stamp(m, now).replace(b"1795239874.", b"9%09d." % (offset + n))
            for n in range(first, min(calls, first + batch))
            for m in phase
        )
        await rig.server.send(chunk)
        await asyncio.sleep(pause)


async def run_calls(rig: Rig, calls: int, offset: int) -> None:
    setup, teardown = call_template()
    await send_calls(rig, calls, offset, setup)
    await send_calls(rig, calls, offset, teardown)
    await rig.server.send(END_MARK)
    await rig.wait_end()
    await rig.tracker.flush()


async def part_concurrent(tmp: Path, calls: int) -> dict[str, float]:
    log(f"part 2: {calls} concurrent calls")
    lags: list[float] = []
    peak_live = 0
    async with Rig(tmp) as rig:

        def lag(event: ev.DomainEvent) -> None:
            nonlocal peak_live
            if isinstance(event, ev.ChannelEvent):
                lags.append(time.time() - event.at.timestamp())
                peak_live = max(peak_live, rig.tracker.live_calls)

        rig.telephony.add_listener(lag)
        await run_calls(rig, calls, 0)
        rig.telephony.remove_listener(lag)
        rows_first = rig.tracker.writer.rows_written
        # memory: two more batches under tracemalloc; after the first, the steady state
        gc.collect()
        tracemalloc.start()
        await run_calls(rig, calls, calls)
        gc.collect()
        settled = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        await run_calls(rig, calls, 2 * calls)
        peak = tracemalloc.get_traced_memory()[1]
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        live_after = rig.tracker.live_calls
    lags.sort()
    return {
        "calls": calls,
        "events": len(lags),
        "peak_live": peak_live,
        "p50_ms": statistics.median(lags) * 1000,
        "p99_ms": lags[int(len(lags) * 0.99) - 1] * 1000,
        "max_ms": lags[-1] * 1000,
        "rows": rows_first,
        "live_after": live_after,
        "mem_baseline_kb": settled / 1024,
        "mem_peak_kb": peak / 1024,
        "mem_after_kb": after / 1024,
        "mem_growth_kb": (after - settled) / 1024,
    }


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.system()}"


def report(one: dict[str, float], two: dict[str, float]) -> str:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    rows = [
        (
            f"full path (TCP -> parse -> domain events -> call tracker -> SQLite, and "
            f"in-process bus -> subscriber), events/s, best of {one['rounds']:.0f}",
            f"{one['ours']:,.0f}",
        ),
        (
            "panoramisk 1.4 `Message.from_line` raw parse of the same stream, events/s, best",
            f"{one['panoramisk']:,.0f}",
        ),
        ("ratio full path / panoramisk raw parse", f"{one['ratio']:.2f}"),
        (
            "stream",
            f"{one['events']:,.0f} events, {one['calls']:,.0f} calls, "
            f"{one['rows']:,.0f} rows written, {one['live_after']:.0f} left live",
        ),
        (
            "concurrent calls (peak live in the tracker)",
            f"{two['calls']:,.0f} ({two['peak_live']:,.0f})",
        ),
        (
            "event-to-state lag p50 / p99 / max, ms",
            f"{two['p50_ms']:.2f} / {two['p99_ms']:.2f} / {two['max_ms']:.2f}",
        ),
        (
            "rows written / calls left live after the calls ended",
            f"{two['rows']:,.0f} / {two['live_after']:.0f}",
        ),
        (
            f"traced memory before -> peak during -> after {two['calls']:,.0f} more calls, KiB",
            f"{two['mem_baseline_kb']:,.0f} -> {two['mem_peak_kb']:,.0f} -> "
            f"{two['mem_after_kb']:,.0f} ({two['mem_growth_kb']:+,.0f}; the tracker keeps the "
            f"last 10,000 ended Linkedids so late events cannot reopen a call)",
        ),
    ]
    table = "\n".join(f"| {name} | {value} |" for name, value in rows)
    return (
        f"\n## Telephony: AMI event throughput and call-state lag "
        f"(bench/ami_throughput.py)\n\n{now}; {machine()}; one process, one event loop "
        f"(AMI server, client, tracker, bus subscriber and SQLite writes share the core)."
        f"\n\n"
        f"| measure | value |\n|---|---|\n{table}\n"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        one = await part_throughput(Path(tmp), args.reps, args.rounds)
        two = await part_concurrent(Path(tmp), args.calls)
    print(report(one, two))


if __name__ == "__main__":
    asyncio.run(main())
