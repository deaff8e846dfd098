"""Queues under load: event-to-wallboard latency in Chromium and the service's CPU.

The simulated Asterisk runs in a process of its own with ``--agents`` softphones (answer
after 2 s, talk 20-40 s) and keeps ``--calls`` callers in the hotline-en queue (a new caller
as soon as one hangs up). The service runs as ``callcenter serve`` (every role: telephony,
web, workers) on PostgreSQL and Redis when they answer, else SQLite and the in-process bus;
every agent logs in through the API (QueueAdd). Calls are not transcribed here:
speech-to-text runs on worker machines of its own (``callcenter worker stt``). A
supervisor's wallboard page in headless Chromium records, for every queue and agent-state
message, the time from the Asterisk event (its ``Timestamp``) to the end of the page's
handler that drew it. The reference in the same
run is the AMI hop alone: the same event's Timestamp to its arrival at a bare AMI client.

    python bench/queues_bench.py [--agents 200] [--calls 500] [--seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import requests
from playwright.async_api import expect

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout, not another installed copy

from callcenter.auth.config import AuthConfig  # noqa: E402
from callcenter.auth.principal import Role  # noqa: E402
from callcenter.auth.testing import make_user, token_for  # noqa: E402
from callcenter.clock import SystemClock  # noqa: E402
from callcenter.queues.config import QueuesConfig  # noqa: E402
from callcenter.queues.service import AgentService, Skill  # noqa: E402
from callcenter.store import migrations  # noqa: E402
from callcenter.store.engine import create_engine, create_sessionmaker  # noqa: E402
from tests.browser import chromium, new_session_page  # noqa: E402
from tests.bus.private_redis import free_port  # noqa: E402

SECRET = "bench-" + "q" * 40
QUEUE = "hotline-en"
LATENCY_PROBE = """
window.__latency = [];
const NativeSocket = window.WebSocket;
window.WebSocket = function (url, protocols) {
  const socket = new NativeSocket(url, protocols);
  Object.defineProperty(socket, "onmessage", {set(handler) {
    socket.addEventListener("message", (event) => {
      handler(event);
      const m = JSON.parse(event.data);
      const at = m.type === "queue" ? m.at : m.type === "agent_state" ? m.since : null;
      if (at) window.__latency.push(Date.now() - Date.parse(at));
    });
  }});
  return socket;
};
"""


def simulator_process(agents: int, calls: int, seconds: float, folder: str,
                      out: multiprocessing.Queue) -> None:
    """Asterisk's side: the agents' phones, and ``calls`` callers kept in the queue."""
    from callcenter.simulator.actors import Agent, Caller
    from callcenter.simulator.scenario import Simulator

    async def main() -> None:
        rng = random.Random(12)
        sim = Simulator(port=0, time_scale=1.0, seed=12, recordings_dir=Path(folder) / "rec",
                        cdr_dir=Path(folder) / "cdr")
        await sim.start()
        for n in range(agents):
            sim.add_agent(f"PJSIP/{2000 + n}", Agent(name=f"Agent {2000 + n}", answer_after=2.0,
                                                    talk_time=rng.uniform(20, 40)))
        out.put(("port", sim.ami_port))
        await asyncio.get_running_loop().run_in_executor(None, out_go.wait)
        placed, started = 0, time.monotonic()
        live: set[asyncio.Future] = set()
        while time.monotonic() - started < seconds:
            while len(live) < calls:
                handle = sim.place_call(f"1390000{placed:04d}", exten="12345001",
                                        behaviour=Caller(talk_time=None, max_duration=600))
                live.add(handle.ended)
                placed += 1
                await asyncio.sleep(0.01)
            done, _ = await asyncio.wait(live, timeout=0.5, return_when=asyncio.FIRST_COMPLETED)
            live -= done
        out.put(("placed", placed))
        await sim.stop()

    asyncio.run(main())


out_go = multiprocessing.Event()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def database_url(folder: Path) -> tuple[str, str | None]:
    """A fresh PostgreSQL database when one answers locally, else SQLite."""
    try:
        from tests.conftest import _create_pg_database
        name, url = asyncio.run(_create_pg_database())
        return url, name
    except Exception:  # noqa: BLE001 - the benchmark runs without PostgreSQL too
        return f"sqlite+aiosqlite:///{folder / 'bench.db'}", None


def redis_url() -> str | None:
    try:
        import redis
        redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=1).ping()
        return "redis://127.0.0.1:6379/5"
    except Exception:  # noqa: BLE001
        return None


async def seed(url: str, agents: int) -> tuple[list[str], str]:
    """The agents (users with a desk on PJSIP/2000...) and a supervisor; their tokens."""
    await migrations.upgrade(url)
    engine = create_engine(url)
    sessionmaker, clock = create_sessionmaker(engine), SystemClock()
    auth = AuthConfig(token_secret=SECRET)
    service = AgentService(sessionmaker, clock, QueuesConfig(), None)
    tokens = []
    for n in range(agents):
        user = await make_user(sessionmaker, clock, role=Role.AGENT, username=f"a{2000 + n}")
        async with sessionmaker() as session, session.begin():
            await service.save_agent(session, user_id=user.id, extension=str(2000 + n),
                                     skills=[Skill(QUEUE, 5)])
        tokens.append(token_for(user, auth, clock))
    boss = await make_user(sessionmaker, clock, role=Role.SUPERVISOR, username="boss")
    await engine.dispose()
    return tokens, token_for(boss, auth, clock)


def ami_hop(port: int, seconds: float, out: multiprocessing.Queue) -> None:
    """The reference, in a process of its own: ms from each event's Timestamp to its arrival
    at a bare AMI client reading for ``seconds``."""
    import socket

    hops: list[float] = []
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"Action: Login\r\nUsername: callcenter\r\nSecret: CHANGE_ME\r\n\r\n")
        sock.settimeout(0.5)
        buffered, end = b"", time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            arrived = time.time()
            *lines, buffered = (buffered + data).split(b"\r\n")
            hops.extend((arrived - float(line[11:])) * 1000 for line in lines
                        if line.startswith(b"Timestamp: "))
    out.put(hops)


async def watch(base: str, token: str, seconds: float, ami_port: int
                ) -> tuple[list[float], list[float]]:
    """The wallboard open for ``seconds``: the latencies its page measured, and the AMI
    hop's over the same window."""
    hops: multiprocessing.Queue = multiprocessing.Queue()
    reference = multiprocessing.Process(target=ami_hop, args=(ami_port, seconds, hops))
    reference.start()
    async with chromium() as browser:
        page = await new_session_page(browser, base, token, {
            "id": 0, "username": "boss", "role": "supervisor", "unit_id": None})
        await page.add_init_script(LATENCY_PROBE)
        await page.goto("/ui/wallboard")
        await expect(page.locator("#status")).to_have_text("live", timeout=30_000)
        await page.evaluate("window.__latency.length = 0")
        await asyncio.sleep(seconds)  # the measuring window, not synchronisation
        latencies = await page.evaluate("window.__latency")
    measured = hops.get(timeout=30)
    reference.join()
    return latencies, measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=60.0, help="measuring window")
    parser.add_argument("--ramp", type=float, default=30.0, help="seconds before measuring")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="queues-bench-"))
    url, pg_name = database_url(folder)
    bus = redis_url()
    tokens, boss = asyncio.run(seed(url, args.agents))

    out: multiprocessing.Queue = multiprocessing.Queue()
    ramp = args.ramp
    sim = multiprocessing.Process(target=simulator_process, daemon=True, args=(
        args.agents, args.calls, args.seconds + ramp + 10, str(folder), out))
    sim.start()
    _, ami_port = out.get(timeout=60)
    web_port = free_port()
    env = {**os.environ, "CALLCENTER_DATABASE__URL": url, "CALLCENTER_WEB__PORT": str(web_port),
           "CALLCENTER_AMI__PORT": str(ami_port), "CALLCENTER_AGI__PORT": str(free_port()),
           "CALLCENTER_AUTH__TOKEN_SECRET": SECRET,
           "CALLCENTER_LOGGING__LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
           "CALLCENTER_RECORDINGS__MONITOR_DIR": str(folder / "rec"),
           # speech-to-text has worker machines of its own (`callcenter worker stt`)
           "CALLCENTER_SPEECH__TRANSCRIBE_CALLS": "false",
           "CALLCENTER_RECORDINGS__STORE_DIR": str(folder / "store"),
           **({"CALLCENTER_BUS__BACKEND": "redis", "CALLCENTER_BUS__REDIS_URL": bus,
               "CALLCENTER_BUS__REDIS_PREFIX": f"bench{web_port}:"} if bus else {})}
    service = subprocess.Popen([sys.executable, "-m", "callcenter", "serve", "--upgrade"],
                               env=env, cwd=folder, stdout=subprocess.DEVNULL,
                               stderr=open(folder / "service.log", "wb"))
    base = f"http://127.0.0.1:{web_port}"
    try:
        for _ in range(600):
            if service.poll() is not None:
                raise SystemExit((folder / "service.log").read_text())
            try:
                if requests.get(base + "/healthz", timeout=1).ok:
                    break
            except requests.RequestException:
                time.sleep(0.1)
        for token in tokens:
            requests.post(base + "/api/v1/agents/me/login", json={}, timeout=30,
                          headers={"Authorization": f"Bearer {token}"}).raise_for_status()
        out_go.set()
        time.sleep(ramp)  # the queue fills to --calls callers
        cpu0, wall0 = cpu_seconds(service.pid), time.monotonic()
        latencies, hops = asyncio.run(watch(base, boss, args.seconds, ami_port))
        cpu = (cpu_seconds(service.pid) - cpu0) / (time.monotonic() - wall0)
        _, placed = out.get(timeout=args.seconds + 120)
    finally:
        service.terminate()
        try:
            service.wait(timeout=30)
        except subprocess.TimeoutExpired:
            print("the service did not stop within 30 s of SIGTERM", file=sys.stderr)
            service.kill()
        sim.join(timeout=30)
        if pg_name:
            from tests.conftest import _drop_pg_database
            asyncio.run(_drop_pg_database(pg_name))
    report(args, latencies, hops, cpu, placed, url, bus)


def report(args: argparse.Namespace, latencies: list[float], hops: list[float], cpu: float,
           placed: int, url: str, bus: str | None) -> None:
    print(f"# queues bench {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, "
          f"{os.cpu_count()} cores, {url.split(':')[0]}, bus {'redis' if bus else 'memory'}")
    print(f"agents {args.agents}, callers kept {args.calls}, calls placed {placed}, "
          f"window {args.seconds:.0f} s")
    print(f"wallboard messages measured {len(latencies)} "
          f"({len(latencies) / args.seconds:.1f}/s)")
    p50, p90, p99, top = (percentile(latencies, q) for q in (0.5, 0.9, 0.99, 1.0))
    print(f"event-to-wallboard latency ms: p50 {p50:.0f}  p90 {p90:.0f}  p99 {p99:.0f}  "
          f"max {top:.0f}  (target p99 < 250)")
    hop50, hop99 = percentile(hops, 0.5), percentile(hops, 0.99)
    print(f"reference, AMI hop alone ms: p50 {hop50:.1f}  p99 {hop99:.1f}  ({len(hops)} events, "
          f"{len(hops) / args.seconds:.0f}/s); wallboard p99 / AMI hop p99: {p99 / hop99:.1f}x")
    print(f"service CPU {cpu:.2f} of one core (target < 0.5)")


if __name__ == "__main__":
    main()
