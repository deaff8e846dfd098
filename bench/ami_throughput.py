"""AMI event throughput and call-state lag of the telephony layer.

Part 1: the real Asterisk 22 capture streams (queue calls, abandon, MixMonitor, FastAGI, SIP),
repeated with fresh Uniqueids/Linkedids, are written over TCP by an AMI server in a process of
its own (as Asterisk is) into the whole path (socket -> early drop -> parse -> domain events
-> call tracker -> batched SQLite writes, and the in-process bus -> a subscriber; timed until
both have the last event), and,
in the same run, parsed by panoramisk's own ``Message.from_line`` (its raw parsing, the way its
protocol splits the stream). Prints events/s of both and the ratio. The bus subscriber follows
``--subscribe`` (a live queue view: ``queue.*``); the service publishes only the topics
someone subscribes to, so a catch-all ``*`` subscriber is measured too (the worst case).

Part 2: ``--calls`` concurrent queue calls (the captured queue call, ids rewritten), set up over
``--ramp`` seconds, all live together, then torn down over ``--ramp`` seconds. Every event
carries a ``Timestamp`` header set when it is written, so event-to-state lag is the time from
the write to the call tracker having applied it. Memory (tracemalloc, two more batches) is
compared with the baseline after the calls have ended.

Both parts check the call log in the database: exactly one closed row per call, none missing.

Usage: python bench/ami_throughput.py [--reps 200] [--calls 2500] [--ramp 10]
(the Markdown section goes to stdout, progress to stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import multiprocessing
import os
import platform
import re
import statistics
import sys
import tempfile
import time
import tracemalloc
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from panoramisk.message import Message
from pydantic import SecretStr
from sqlalchemy import func, select

from callcenter.bus.memory import MemoryBus
from callcenter.calls.models import CallLog
from callcenter.calls.tracker import CallTracker
from callcenter.clock import SystemClock
from callcenter.store.base import Base
from callcenter.store.engine import create_engine, create_sessionmaker
from callcenter.telephony import events as ev
from callcenter.telephony.config import AgiConfig, AmiConfig
from callcenter.telephony.service import Telephony

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CALLCENTER_SHARED", REPO.parent / "shared"))
CAPTURES = SHARED / "asterisk" / "captures"
TEMPLATES = ["queue_call", "abandon", "mixmonitor", "fastagi", "sip_call"]
END_MARK = b"Event: UserEvent\r\nPrivilege: user,all\r\nUserEvent: BenchEnd\r\n\r\n"
LINKEDID = re.compile(rb"\r\nLinkedid: ([^\r]+)\r\n")


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
    """``reps`` copies of every template with fresh ids: (bytes, events, calls), where calls
    counts the distinct Linkedids (one call-log row each)."""
    templates = [b"".join(capture_events(name)) for name in TEMPLATES]
    per_rep = sum(t.count(b"\r\n\r\n") for t in templates)
    parts = [t.replace(b"1795239", b"%07d" % rep) for rep in range(reps) for t in templates]
    stream = b"".join(parts)
    return stream, per_rep * reps, len(set(LINKEDID.findall(stream)))


class StreamServer:
    """A minimal AMI server: login, FullyBooted, empty resync listings, Ping; then streams
    bytes."""

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
                writer.write(b"Event: FullyBooted\r\nPrivilege: system,all\r\nUptime: 8\r\n"
                             b"LastReload: 8\r\nStatus: Fully Booted\r\n\r\n")
                self.writer = writer
                self.ready.set()

    async def send(self, data: bytes, chunk: int = 65536) -> None:
        await self.ready.wait()
        assert self.writer is not None
        for start in range(0, len(data), chunk):
            self.writer.write(data[start : start + chunk])
            await self.writer.drain()


def asterisk_process(conn: multiprocessing.connection.Connection) -> None:
    """Child process: a StreamServer obeying the parent's commands, like a real Asterisk
    (another process) writing the AMI stream."""
    asyncio.run(_serve_commands(conn))


async def _serve_commands(conn: multiprocessing.connection.Connection) -> None:
    server = StreamServer()
    conn.send(await server.start())
    stream = b""
    while True:
        command, *args = await asyncio.to_thread(conn.recv)
        if command == "prepare":
            stream = build_stream(*args)[0] + END_MARK
            conn.send("prepared")
        elif command == "stream":
            await server.send(stream)
        elif command == "calls":
            await run_calls(server, *args)
        else:
            await server.stop()
            return


class AsteriskProcess:
    """The AMI server in a process of its own, as Asterisk is: the client process pays for
    reading the socket, not for building and writing the stream."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=asterisk_process, args=(child,), daemon=True)

    async def start(self) -> int:
        self._process.start()
        return await asyncio.to_thread(self._conn.recv)

    async def prepare(self, reps: int) -> None:
        """Build the part 1 stream in the server (before the clock starts)."""
        self._conn.send(("prepare", reps))
        await asyncio.to_thread(self._conn.recv)

    def stream(self) -> None:
        self._conn.send(("stream",))

    def calls(self, calls: int, offset: int, ramp: float) -> None:
        self._conn.send(("calls", calls, offset, ramp))

    async def stop(self) -> None:
        self._conn.send(("stop",))
        await asyncio.to_thread(self._process.join, 10)


class Rig:
    """Telephony + CallTracker on SQLite + the in-process bus with one subscriber to
    ``patterns`` (the embedded default), connected to a StreamServer."""

    def __init__(self, tmp: Path, patterns: tuple[str, ...], *, call_log: bool = True) -> None:
        self.tmp = tmp
        self.patterns = patterns
        self.with_call_log = call_log
        self.end = asyncio.Event()
        self.bus_end = asyncio.Event()
        self.resynced = asyncio.Event()
        self.delivered = 0

    async def __aenter__(self) -> Rig:
        self.server = AsteriskProcess()
        port = await self.server.start()
        # the service's own engine: SQLite as ``callcenter serve`` configures it (WAL, ...)
        self.engine = create_engine(f"sqlite+aiosqlite:///{self.tmp / 'bench.db'}")
        async with self.engine.begin() as conn:
            await conn.run_sync(Base.metadata.drop_all)
            await conn.run_sync(Base.metadata.create_all)
        self.sessionmaker = create_sessionmaker(self.engine)
        self.tracker = CallTracker(self.sessionmaker, SystemClock())
        await self.tracker.start()
        config = AmiConfig(
            port=port, username="bench", secret=SecretStr("x"), auth="plain", ping_interval=3600
        )
        self.bus = MemoryBus(subscriber_queue_size=1_000_000)
        await self.bus.start()
        # the bench's end mark travels as a UserEvent: its topic is always subscribed
        self.subscription = await self.bus.subscribe(*self.patterns, "user.event").open()
        self.reader = asyncio.create_task(self._read_bus())
        self.telephony = Telephony(config, AgiConfig(port=0), self.bus, SystemClock())
        if self.with_call_log:
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

    async def call_log(self) -> tuple[int, int]:
        """(rows, rows still open) in the database, after flushing the tracker."""
        await self.tracker.flush()
        async with self.sessionmaker() as session:
            rows = await session.scalar(select(func.count()).select_from(CallLog))
            still_open = await session.scalar(
                select(func.count()).select_from(CallLog).where(CallLog.ended_at.is_(None)))
        return rows or 0, still_open or 0

    async def __aexit__(self, *exc: object) -> None:
        await self.telephony.stop()
        await self.bus.close()
        await self.reader
        await self.tracker.stop()
        await self.server.stop()
        await self.engine.dispose()


@dataclass
class PathRun:
    rate: float
    cpu_rate: float
    rows: int
    still_open: int
    delivered: int
    unwanted: int
    dropped_unparsed: int


async def full_path_run(tmp: Path, reps: int, events: int, patterns: tuple[str, ...],
                        call_log: bool = True) -> PathRun:
    async with Rig(tmp, patterns, call_log=call_log) as rig:
        await rig.server.prepare(reps)
        start, cpu = time.perf_counter(), time.process_time()
        rig.server.stream()
        await rig.wait_end()
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        rows, still_open = await rig.call_log()
        return PathRun(events / elapsed, events / cpu, rows, still_open, rig.delivered,
                       rig.telephony.unwanted_publications, rig.telephony.event_filter.dropped)


def panoramisk_rate(stream: bytes) -> tuple[float, float]:
    """panoramisk's own way: decode, split on blank lines, ``Message.from_line``; messages
    per wall second and per CPU second."""
    start, cpu = time.perf_counter(), time.process_time()
    parsed = 0
    for chunk in stream.decode("ascii", "ignore").split("\r\n\r\n"):
        if Message.from_line(chunk.strip()) is not None:
            parsed += 1
    return parsed / (time.perf_counter() - start), parsed / (time.process_time() - cpu)


async def part_throughput(tmp: Path, reps: int, rounds: int,
                          patterns: tuple[str, ...]) -> dict[str, object]:
    """Alternate the measurements ``rounds`` times. The machine is shared, so rates swing
    between rounds: the ratio is taken within each round (both measured seconds apart) and
    the median reported, with the best rates and the ratio of CPU time (load-independent)."""
    stream, events, calls = build_stream(reps)
    log(f"part 1: {events} events, {calls} calls, {len(stream) / 1e6:.1f} MB")
    ours: list[PathRun] = []
    everything: list[PathRun] = []
    no_call_log: list[PathRun] = []
    raw: list[tuple[float, float]] = []
    for _ in range(rounds):
        ours.append(await full_path_run(tmp, reps, events, patterns))
        raw.append(panoramisk_rate(stream))
        everything.append(await full_path_run(tmp, reps, events, ("*",)))
        no_call_log.append(await full_path_run(tmp, reps, events, patterns, call_log=False))
        log(f"  ours ({','.join(patterns)}) {ours[-1].rate:,.0f} ev/s "
            f"({ours[-1].cpu_rate:,.0f} per CPU s), panoramisk raw parse {raw[-1][0]:,.0f} "
            f"ev/s ({raw[-1][1]:,.0f}), ours (*) {everything[-1].rate:,.0f}")

    def median_ratio(runs: list[PathRun], cpu: bool = False) -> float:
        return statistics.median((r.cpu_rate / p[1]) if cpu else (r.rate / p[0])
                                 for r, p in zip(runs, raw, strict=True))

    return {
        "events": events, "calls": calls, "rounds": rounds, "patterns": patterns,
        "ours": max(ours, key=lambda r: r.rate), "all": max(everything, key=lambda r: r.rate),
        "panoramisk": max(p[0] for p in raw),
        "ratio": median_ratio(ours), "ratio_cpu": median_ratio(ours, cpu=True),
        "ratio_all": median_ratio(everything),
        "no_call_log": max(no_call_log, key=lambda r: r.rate),
        "ratio_no_call_log": median_ratio(no_call_log),
        "ratio_cpu_no_call_log": median_ratio(no_call_log, cpu=True),
        "ratios": [r.rate / p[0] for r, p in zip(ours, raw, strict=True)],
        "rows_ok": all(r.rows == calls and r.still_open == 0 for r in ours + everything),
        "rows": [(r.rows, r.still_open) for r in ours + everything],
    }


def call_template() -> tuple[list[bytes], list[bytes]]:
    """The captured queue call split into set-up (to the conversation) and tear-down."""
    events = capture_events("queue_call")
    cut = next(i for i, e in enumerate(events) if e.startswith(b"Event: SoftHangupRequest"))
    return events[:cut], events[cut:]


def stamp(message: bytes, now: float) -> bytes:
    return message[:-2] + b"Timestamp: %.6f\r\n\r\n" % now


async def send_calls(server: StreamServer, calls: int, offset: int, phase: list[bytes],
                     ramp: float, batch: int = 4) -> None:
    """Write one phase of every call, ``batch`` calls at a time, spread evenly over ``ramp``
    seconds (paced against the clock, so slow processing does not stretch the ramp)."""
    writes = max(1, -(-calls // batch))
    start = time.perf_counter()
    for n, first in enumerate(range(0, calls, batch)):
        now = time.time()
        chunk = b"".join(
            stamp(m, now).replace(b"1795239874.", b"9%09d." % (offset + i))
            for i in range(first, min(calls, first + batch))
            for m in phase
        )
        await server.send(chunk)
        await asyncio.sleep(max(0.0, start + (n + 1) * ramp / writes - time.perf_counter()))


async def run_calls(server: StreamServer, calls: int, offset: int, ramp: float) -> None:
    """(In the server process) set up ``calls`` calls, tear them down, then the end mark."""
    setup, teardown = call_template()
    await send_calls(server, calls, offset, setup, ramp)
    await send_calls(server, calls, offset, teardown, ramp)
    await server.send(END_MARK)


async def calls_through(rig: Rig, calls: int, offset: int, ramp: float) -> None:
    rig.server.calls(calls, offset, ramp)
    await rig.wait_end()


async def part_concurrent(tmp: Path, calls: int, ramp: float) -> dict[str, float]:
    setup, teardown = call_template()
    log(f"part 2: {calls} concurrent calls, set up and torn down over {ramp:g} s each")
    lags: list[float] = []
    peak_live = 0
    async with Rig(tmp, ("queue.*",)) as rig:

        def lag(event: ev.DomainEvent) -> None:
            nonlocal peak_live
            if isinstance(event, ev.ChannelEvent):
                lags.append(time.time() - event.at.timestamp())
                peak_live = max(peak_live, rig.tracker.live_calls)

        rig.telephony.add_listener(lag)
        await calls_through(rig, calls, 0, ramp)
        rig.telephony.remove_listener(lag)
        rows_first, open_first = await rig.call_log()
        # memory: two more batches under tracemalloc; after the first, the steady state
        gc.collect()
        tracemalloc.start()
        await calls_through(rig, calls, calls, ramp)
        gc.collect()
        settled = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        await calls_through(rig, calls, 2 * calls, ramp)
        peak = tracemalloc.get_traced_memory()[1]
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        rows_all, open_all = await rig.call_log()
        live_after = rig.tracker.live_calls
    lags.sort()
    return {
        "calls": calls,
        "ramp": ramp,
        "rate_setup": calls * len(setup) / ramp,
        "rate_teardown": calls * len(teardown) / ramp,
        "events": len(lags),
        "peak_live": peak_live,
        "p50_ms": statistics.median(lags) * 1000,
        "p99_ms": lags[int(len(lags) * 0.99) - 1] * 1000,
        "max_ms": lags[-1] * 1000,
        "rows": rows_first,
        "open": open_first,
        "rows_all": rows_all,
        "open_all": open_all,
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
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{cpu}, {os.cpu_count()} cores (shared; load average {load} at the end), "
            f"Python {platform.python_version()}, {platform.system()}")


def report(one: dict, two: dict) -> str:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    ours: PathRun = one["ours"]
    everything: PathRun = one["all"]
    calls = one["calls"]
    rows = [
        (
            f"full path (TCP -> early drop -> parse -> domain events -> call tracker -> "
            f"SQLite, and in-process bus -> a `{', '.join(one['patterns'])}` subscriber), "
            f"events/s, best of {one['rounds']}",
            f"{ours.rate:,.0f}",
        ),
        (
            "panoramisk 1.4 `Message.from_line` raw parse of the same stream, events/s, best",
            f"{one['panoramisk']:,.0f}",
        ),
        (
            "**ratio full path / panoramisk raw parse** (median of the rounds' ratios; each "
            "round's); ratio of CPU time",
            f"**{one['ratio']:.2f}** ({', '.join(f'{r:.2f}' for r in one['ratios'])}); "
            f"{one['ratio_cpu']:.2f}",
        ),
        (
            "the same full path with a catch-all `*` subscriber (every event published), "
            "events/s, best; median ratio",
            f"{everything.rate:,.0f}; {one['ratio_all']:.2f}",
        ),
        (
            "the same path without the call tracker (no call log: to see its share), "
            "events/s, best; median ratio; ratio of CPU time",
            f"{one['no_call_log'].rate:,.0f}; {one['ratio_no_call_log']:.2f}; "
            f"{one['ratio_cpu_no_call_log']:.2f}",
        ),
        (
            "stream; dropped before parsing; not published (no subscriber)",
            f"{one['events']:,} events of {calls:,} calls; {ours.dropped_unparsed:,}; "
            f"{ours.unwanted:,}",
        ),
        (
            "call-log rows in the database per run (expected one closed row per call)",
            f"{calls:,} expected; runs: " + ", ".join(
                f"{r:,}" + (f" ({o} open)" if o else "") for r, o in one["rows"])
            + (" — OK" if one["rows_ok"] else " — MISMATCH"),
        ),
        (
            "concurrent calls (peak live in the tracker); set-up / tear-down rate",
            f"{two['calls']:,} ({two['peak_live']:,}); {two['ramp']:g} s each: "
            f"{two['rate_setup']:,.0f} / {two['rate_teardown']:,.0f} events/s",
        ),
        (
            "**event-to-state lag p50 / p99 / max, ms**",
            f"**{two['p50_ms']:.2f} / {two['p99_ms']:.2f}** / {two['max_ms']:.2f}",
        ),
        (
            "call-log rows / still open, first batch; after all three batches; calls left "
            "live in the tracker",
            f"{two['rows']:,} / {two['open']}; {two['rows_all']:,} / {two['open_all']} "
            f"(expected {3 * two['calls']:,} / 0); {two['live_after']}",
        ),
        (
            f"traced memory before -> peak during -> after {two['calls']:,} more calls, KiB",
            f"{two['mem_baseline_kb']:,.0f} -> {two['mem_peak_kb']:,.0f} -> "
            f"{two['mem_after_kb']:,.0f} ({two['mem_growth_kb']:+,.0f})",
        ),
    ]
    table = "\n".join(f"| {name} | {value} |" for name, value in rows)
    return (
        f"\n## Telephony: AMI event throughput and call-state lag "
        f"(bench/ami_throughput.py)\n\n{now}; {machine()}; the AMI server writes from a "
        f"process of its own; the service side is one process, one event loop (client, "
        f"tracker, bus subscriber; SQLite writes in aiosqlite's thread)."
        f"\n\n"
        f"| measure | value |\n|---|---|\n{table}\n"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--calls", type=int, default=2500)
    parser.add_argument("--ramp", type=float, default=10.0,
                        help="seconds over which the calls are set up (and torn down)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--subscribe", nargs="+", default=["queue.*"],
                        help="topic patterns of the bus subscriber in part 1")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        one = await part_throughput(Path(tmp), args.reps, args.rounds, tuple(args.subscribe))
        two = await part_concurrent(Path(tmp), args.calls, args.ramp)
    print(report(one, two))


if __name__ == "__main__":
    asyncio.run(main())
