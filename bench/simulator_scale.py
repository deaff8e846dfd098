"""Can the simulator play a big hotline on one core? 1,000 concurrent calls, 300 agents.

Every call goes the hotline's real way (config/asterisk): trunk channel, IVR over FastAGI
(a minimal server in this process), MixMonitor (a real 8 kHz WAV per call, about 1 MB,
written into a temporary folder when the call ends), queue, agent ringing and answering, talk,
hang-up. One AMI client reads every event over TCP.

"Keeps up" means the event loop stays responsive (timer lateness p99 under 50 ms) and
simulated durations stay true: callers asked to talk 60 s are reported by AgentComplete as
TalkTime 60 (mean error at most 1 s). All calls are placed within `--ramp` simulated seconds,
shorter than a call lasts, so all 1,000 are up at once (IVR, queue or talking) for a while.
CPU is the whole process (simulator, AMI reader and FastAGI server share the core).

    python bench/simulator_scale.py                     # 5x real time, about a minute
    python bench/simulator_scale.py --time-scale 1      # real time, about 5 minutes
    python bench/simulator_scale.py --time-scale 0.05   # 20x, a stress test
    python bench/simulator_scale.py --record   # also append the result to bench/RESULTS.md
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from callcenter.simulator import Agent, Caller, Simulator, SimulatorConfig  # noqa: E402


async def fastagi_server() -> tuple[asyncio.base_events.Server, int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (await reader.readline()).strip():
            pass
        writer.write(b"ANSWER\n")
        await writer.drain()
        await reader.readline()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


class AmiReader:
    def __init__(self) -> None:
        self.bytes = 0
        self.events = 0
        self.talk_times: list[int] = []

    async def run(self, port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await reader.readline()
        writer.write(
            b"Action: Login\r\nUsername: callcenter\r\nSecret: CHANGE_ME\r\nEvents: on\r\n\r\n"
        )
        buf = b""
        while True:
            data = await reader.read(1 << 20)
            if not data:
                return
            self.bytes += len(data)
            buf += data
            *blocks, buf = buf.split(b"\r\n\r\n")
            for block in blocks:
                if block.startswith(b"Event: "):
                    self.events += 1
                    if block.startswith(b"Event: AgentComplete"):
                        talk = block.split(b"TalkTime: ", 1)[1].split(b"\r\n", 1)[0]
                        self.talk_times.append(int(talk))


async def lag_monitor(samples: list[float], stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        t = loop.time()
        await asyncio.sleep(0.02)
        samples.append((loop.time() - t - 0.02) * 1000)


def live_calls(sim: Simulator) -> int:
    return sum(1 for name in sim.pbx.channels if name.startswith("PJSIP/trunk"))


async def concurrency_monitor(
    sim: Simulator, target: int, stop: asyncio.Event, seen: dict[str, float]
) -> None:
    """Peak of live inbound calls and the simulated seconds spent with all `target` up."""
    step = 0.25
    while not stop.is_set():
        live = live_calls(sim)
        seen["peak"] = max(seen["peak"], live)
        if live >= target:
            seen["full_s"] += step / sim.clock.time_scale
        await asyncio.sleep(step)


async def run(calls: int, agents: int, time_scale: float, talk: float, ramp: float) -> dict:
    agi, agi_port = await fastagi_server()
    with tempfile.TemporaryDirectory() as tmp:
        sim = Simulator(
            SimulatorConfig(
                port=0, time_scale=time_scale, seed=1, agi_port=agi_port, recordings_dir=Path(tmp)
            )
        )
        await sim.start()
        for n in range(agents):
            sim.add_agent(
                f"PJSIP/{2000 + n}",
                Agent(answer_after=2, voice=None),
                queues=["hotline"],
                login=True,
            )
        reader = AmiReader()
        reader_task = asyncio.create_task(reader.run(sim.ami_port))
        await asyncio.sleep(0.2)
        lags: list[float] = []
        stop = asyncio.Event()
        monitor = asyncio.create_task(lag_monitor(lags, stop))
        seen = {"peak": 0.0, "full_s": 0.0}
        counter = asyncio.create_task(concurrency_monitor(sim, calls, stop, seen))
        events_before = sim.hub.count
        cpu0, wall0, sim0 = time.process_time(), time.monotonic(), sim.clock.now()
        load0 = os.getloadavg()[0]
        handles = []
        for i in range(calls):
            handles.append(
                sim.place_call(f"138{i:08d}", behaviour=Caller(talk_time=talk, voice=None))
            )
            if i % 10 == 9:
                await asyncio.sleep(sim.clock.wall(ramp / (calls / 10)))
        await asyncio.gather(*(h.ended for h in handles))
        await sim.wait_idle(3600)
        wall = time.monotonic() - wall0
        cpu = time.process_time() - cpu0
        sim_s = sim.clock.now() - sim0
        load1 = os.getloadavg()[0]
        stop.set()
        await monitor
        await counter
        await asyncio.sleep(0.3)
        events = sim.hub.count - events_before
        await sim.stop()
        reader_task.cancel()
        agi.close()
    lags.sort()
    talk_err = [abs(t - talk) for t in reader.talk_times]
    return {
        "calls": calls,
        "agents": agents,
        "time_scale": time_scale,
        "peak_concurrent_calls": int(seen["peak"]),
        "all_up_sim_s": seen["full_s"],
        "sim_s": sim_s,
        "cpu_per_sim_s": cpu / sim_s,
        "load_avg": (load0, load1),
        "events": events,
        "events_received": reader.events,
        "wall_s": wall,
        "cpu_s": cpu,
        "events_per_s": events / wall,
        "mb_per_s": reader.bytes / wall / 1e6,
        "lag_p50_ms": lags[len(lags) // 2] if lags else 0.0,
        "lag_p99_ms": lags[int(len(lags) * 0.99)] if lags else 0.0,
        "lag_max_ms": lags[-1] if lags else 0.0,
        "completed": len(reader.talk_times),
        "talk_time_error_mean_s": statistics.mean(talk_err) if talk_err else float("nan"),
    }


def verdict(r: dict) -> str:
    ok = (
        r["lag_p99_ms"] < 50 and r["talk_time_error_mean_s"] <= 1.0 and r["completed"] == r["calls"]
    )
    return "keeps up" if ok else "falls behind"


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--calls", type=int, default=1000)
    ap.add_argument("--agents", type=int, default=300)
    ap.add_argument("--time-scale", type=float, default=0.2)
    ap.add_argument("--talk", type=float, default=60.0, help="simulated seconds each caller talks")
    ap.add_argument("--ramp", type=float, default=30.0, help="simulated seconds to place all calls")
    ap.add_argument("--record", action="store_true", help="append the result to bench/RESULTS.md")
    args = ap.parse_args()
    r = asyncio.run(run(args.calls, args.agents, args.time_scale, args.talk, args.ramp))
    lines = [
        f"calls {r['calls']}, agents {r['agents']}, time_scale {r['time_scale']}"
        f" ({1 / r['time_scale']:g}x real time); peak concurrent calls"
        f" {r['peak_concurrent_calls']}, all {r['calls']} up for {r['all_up_sim_s']:.0f}"
        " simulated s",
        f"events {r['events']} ({r['events_received']} received over AMI)"
        f" in {r['wall_s']:.1f} s wall ({r['sim_s']:.0f} simulated s),"
        f" {r['cpu_s']:.1f} s CPU: {r['events_per_s']:.0f} events/s, {r['mb_per_s']:.1f} MB/s",
        f"CPU per simulated second {r['cpu_per_sim_s'] * 1000:.1f} ms"
        f" ({r['cpu_per_sim_s'] * 100:.1f} % of a core at real time);"
        f" load average {r['load_avg'][0]:.2f} before, {r['load_avg'][1]:.2f} after",
        f"event-loop lag p50 {r['lag_p50_ms']:.1f} ms, p99 {r['lag_p99_ms']:.1f} ms,"
        f" max {r['lag_max_ms']:.1f} ms",
        f"calls completed {r['completed']}/{r['calls']}; TalkTime error mean"
        f" {r['talk_time_error_mean_s']:.2f} s (asked {args.talk:.0f} s)",
        f"verdict: {verdict(r)}",
    ]
    print("\n".join(lines))
    if args.record:
        record(args, lines)


SECTION = "## Simulator scale"


def record(args: argparse.Namespace, lines: list[str]) -> None:
    """Add this run to the simulator section of bench/RESULTS.md (created if missing), in place:
    the other sections and earlier runs stay as they are."""
    results = ROOT / "bench" / "RESULTS.md"
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    entry = (
        f"\n### {stamp}, {machine}, load average {os.getloadavg()[0]:.2f}\n\n"
        f"`python bench/simulator_scale.py --calls {args.calls} --agents {args.agents}"
        f" --time-scale {args.time_scale} --talk {args.talk:g} --ramp {args.ramp:g}`\n\n"
        + "".join(f"- {line}\n" for line in lines)
    )
    text = results.read_text(encoding="utf-8") if results.exists() else ""
    start = text.find(SECTION)
    if start == -1:
        text = text.rstrip("\n") + f"\n\n{SECTION}\n" + entry
    else:
        end = text.find("\n## ", start + len(SECTION))
        end = len(text) if end == -1 else end
        text = text[:end].rstrip("\n") + "\n" + entry + text[end:]
    results.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
