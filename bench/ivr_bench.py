"""IVR under load: concurrent FastAGI sessions of the default flow, the service's side timed.

The simulated Asterisk runs in a process of its own and places ``--calls`` calls within
``--ramp`` wall seconds; every caller stays in the IVR for the whole flow (greeting, English
offer, the announcement switches read from the database, the hand-over to the queue), then
hangs up in the queue. The service process runs only the FastAGI server and the IVR, so its
CPU time is the IVR's. Measured in the service: the round trip of each FastAGI command that
answers at once (ANSWER, SET VARIABLE: write to reply), per command kind, and CPU per session.

    python bench/ivr_bench.py [--calls 500] [--ramp 2] [--time-scale 0.5]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout, not another installed copy

from callcenter.clock import SystemClock  # noqa: E402
from callcenter.ivr.agi import script_for  # noqa: E402
from callcenter.ivr.app import IvrApp, load_flows, prompts_of  # noqa: E402
from callcenter.ivr.config import IvrConfig  # noqa: E402
from callcenter.ivr.prompts import PromptCatalog, PromptLibrary  # noqa: E402
from callcenter.ivr.service import IvrService  # noqa: E402
from callcenter.store.base import Base  # noqa: E402
from callcenter.store.engine import create_engine, create_sessionmaker  # noqa: E402
from callcenter.telephony import agi as telephony_agi  # noqa: E402
from callcenter.telephony.config import AgiConfig  # noqa: E402
from callcenter.tickets.calendar import WorkingCalendar  # noqa: E402


def simulator_process(agi_port: int, sounds: str, calls: int, ramp: float, scale: float,
                      ready: multiprocessing.Queue) -> None:
    """Asterisk's side: place the calls, wait until they all ended."""
    from callcenter.simulator.actors import Caller
    from callcenter.simulator.scenario import Simulator

    async def main() -> None:
        folder = Path(tempfile.mkdtemp(prefix="ivr-bench-sim-"))
        sim = Simulator(port=0, time_scale=scale, seed=5, agi_host="127.0.0.1",
                        agi_port=agi_port, sounds_dir=Path(sounds),
                        recordings_dir=folder / "rec", cdr_dir=folder / "cdr")
        await sim.start()
        handles = []
        for n in range(calls):
            handles.append(sim.place_call(f"1380000{n:04d}",
                                          behaviour=Caller(max_duration=12.0)))
            await asyncio.sleep(ramp / calls)
        await asyncio.wait_for(asyncio.gather(*(h.ended for h in handles)), 300)
        await sim.stop()
        ready.put("done")

    asyncio.run(main())


class CommandTimer:
    """Wraps ``AgiSession.command`` (this benchmark only) to time each round trip."""

    def __init__(self) -> None:
        self.times: dict[str, list[float]] = defaultdict(list)
        self.turnaround: list[float] = []
        """ms from a reply to the session's next command: the service's own work."""
        self.original = telephony_agi.AgiSession.command

    def install(self) -> None:
        original, times, turnaround = self.original, self.times, self.turnaround
        replied: dict[int, float] = {}

        async def timed(session, text, timeout=None):  # type: ignore[no-untyped-def]
            started = time.perf_counter()
            if id(session) in replied:
                turnaround.append((started - replied[id(session)]) * 1000)
            try:
                return await original(session, text, timeout)
            finally:
                words = text.split()
                kind = " ".join(words[:2]) if words[0] in ("SET", "GET", "STREAM") \
                    else words[0]
                replied[id(session)] = time.perf_counter()
                times[kind].append((replied[id(session)] - started) * 1000)

        telephony_agi.AgiSession.command = timed  # type: ignore[method-assign]

    def remove(self) -> None:
        telephony_agi.AgiSession.command = self.original  # type: ignore[method-assign]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(calls: int, ramp: float, scale: float) -> None:
    work = Path(tempfile.mkdtemp(prefix="ivr-bench-"))
    config = IvrConfig(sounds_dir=work / "sounds", cache_dir=REPO / "var" / "prompt-cache",
                       announcement_cache_seconds=1.0)
    catalog = PromptCatalog(config.flows_dir)
    PromptLibrary(catalog, config).build(prompts_of(load_flows(config, catalog)))
    engine = create_engine(f"sqlite+aiosqlite:///{work / 'bench.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    sessionmaker = create_sessionmaker(engine)
    clock = SystemClock()
    service = IvrService(sessionmaker, clock, config, WorkingCalendar())
    app = IvrApp.load(config, service, clock)

    finished = 0
    live = 0
    peak = 0
    script = script_for(app)

    async def counted(session: telephony_agi.AgiSession) -> None:
        nonlocal finished, live, peak
        live += 1
        peak = max(peak, live)
        try:
            await script(session)
        finally:
            live -= 1
            finished += 1

    server = telephony_agi.AgiServer(AgiConfig(port=0))
    server.route("ivr", counted)
    await server.start()
    timer = CommandTimer()
    timer.install()
    spawn = multiprocessing.get_context("spawn")
    ready: multiprocessing.Queue = spawn.Queue()
    sim = spawn.Process(
        target=simulator_process,
        args=(server.port, str(config.sounds_dir), calls, ramp, scale, ready))
    cpu0, wall0 = time.process_time(), time.perf_counter()
    sim.start()
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, ready.get)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    sim.join()
    timer.remove()
    await server.stop()
    await engine.dispose()

    quick = [t for kind, values in timer.times.items() if kind in ("ANSWER", "SET VARIABLE")
             for t in values]
    load = os.getloadavg()
    machine = platform.processor() or platform.machine()
    print(f"# IVR benchmark {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {machine}, "
          f"{os.cpu_count()} cores, load {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}")
    print(f"sessions finished {finished} of {calls}; peak concurrent sessions {peak}")
    print(f"wall {wall:.1f} s; service CPU {cpu:.2f} s = {cpu / max(finished, 1) * 1000:.2f} "
          f"ms per session")
    print("| command | count | p50 ms | p99 ms | max ms |")
    print("|---|---|---|---|---|")
    for kind, values in sorted(timer.times.items()):
        print(f"| {kind} | {len(values)} | {statistics.median(values):.2f} | "
              f"{percentile(values, 0.99):.2f} | {max(values):.2f} |")
    print(f"| **answer-at-once commands (ANSWER, SET VARIABLE)** | {len(quick)} | "
          f"{statistics.median(quick):.2f} | **{percentile(quick, 0.99):.2f}** | "
          f"{max(quick):.2f} |")
    turn = timer.turnaround
    print(f"| service turnaround (reply -> next command) | {len(turn)} | "
          f"{statistics.median(turn):.2f} | {percentile(turn, 0.99):.2f} | {max(turn):.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--ramp", type=float, default=2.0, help="wall seconds to place them")
    parser.add_argument("--time-scale", type=float, default=0.5)
    args = parser.parse_args()
    asyncio.run(run(args.calls, args.ramp, args.time_scale))


if __name__ == "__main__":
    main()
