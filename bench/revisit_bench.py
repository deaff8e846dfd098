"""Revisit dialer benchmark: N revisits on L lines against the simulator (SQLite file,
real AMI and FastAGI over TCP, the real survey). Destinations answer (and press 1, 1),
are busy or do not answer in realistic proportions; retries are immediate so every
revisit ends within the run.

Prints line utilisation while work remained (sampled busy lines / lines, while a revisit
was due and not dialed yet, checked every second), double dials
(a revisit answered twice or dialed more than ``max_attempts`` times; must be 0) and
completion time against the ideal (total busy line time / lines). The ideal assumes a
freed line is refilled at once, so the pace (``--cps``, real seconds) must stay above the
rate the lines need (printed as ``needed_cps``: attempts / ideal); the default is the
highest pace a campaign allows.

    python3 bench/revisit_bench.py --revisits 10000 --lines 100 --time-scale 0.005 \
        --db postgresql+asyncpg://postgres@127.0.0.1/revisit_bench
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import func, select

import callcenter.store.models  # noqa: F401
from callcenter.auth.models import Unit
from callcenter.clock import FrozenClock, SystemClock
from callcenter.ivr.config import IvrConfig
from callcenter.ivr.prompts import PromptCatalog, PromptLibrary
from callcenter.revisit.agi import PROMPTS, Survey
from callcenter.revisit.config import CampaignSettings, RevisitConfig
from callcenter.revisit.dialer import Dialer
from callcenter.revisit.models import Revisit, RevisitAttempt
from callcenter.revisit.service import RevisitService
from callcenter.simulator.actors import Destination
from callcenter.simulator.scenario import Simulator
from callcenter.store.base import Base
from callcenter.store.engine import create_engine, create_sessionmaker
from callcenter.telephony.config import AgiConfig, AmiConfig
from callcenter.telephony.service import Telephony
from callcenter.tickets.config import TicketsConfig
from callcenter.tickets.models import Ticket
from callcenter.tickets.service import TicketService

SAMPLE = 0.05
MIX = (("answer", 0.6), ("busy", 0.15), ("noanswer", 0.25))


def destination(rng: random.Random) -> Destination:
    mode = rng.choices([m for m, _ in MIX], [w for _, w in MIX])[0]
    if mode == "answer":
        return Destination(mode="answer", answer_after=rng.uniform(3, 12), keys="11",
                           first_key_after=25, key_delay=20, talk_time=None)
    return Destination(mode=mode, answer_after=1)  # type: ignore[arg-type]


async def seed(sessionmaker, n: int, rng: random.Random, sim: Simulator) -> None:
    now = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    async with sessionmaker() as session, session.begin():
        unit = Unit(code="u1", name="unit", active=True)
        session.add(unit)
        await session.flush()
        for i in range(n):
            phone = f"139{i:08d}"
            sim.add_destination(phone, destination(rng))
            session.add(Ticket(number=f"B{i:08d}", status="replied", channel="phone",
                               caller_phone=phone, anonymous=False, ticket_type="complaint",
                               topic="urban_management", title="bench", content="bench",
                               lead_unit_id=unit.id, created_at=now, updated_at=now,
                               replied_at=now))


async def main(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.WARNING)
    rng = random.Random(15)
    work = Path(tempfile.mkdtemp(prefix="revisit-bench-"))
    # the calls, their surveys and the dialer share the pool: a call waiting 30 s for a
    # connection dies, and its revisit waits for the reconciliation after its lease
    engine = create_engine(args.db or f"sqlite+aiosqlite:///{work}/b.db", pool_size=40)
    sessionmaker = create_sessionmaker(engine)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.drop_all)
        await conn.run_sync(Base.metadata.create_all)
    sim = Simulator(port=0, time_scale=args.time_scale, seed=15, agi_host="127.0.0.1",
                    bad_login_delay=0.05, recordings_dir=work / "monitor",
                    sounds_dir=work / "sounds", cdr_dir=work / "cdr")
    await sim.start()
    await seed(sessionmaker, args.revisits, rng, sim)
    clock = FrozenClock(datetime(2026, 11, 23, 2, 0, tzinfo=UTC))  # Monday 10:00 Shanghai
    settings = CampaignSettings(max_lines=args.lines, calls_per_second=args.cps,
                                max_attempts=3, retry_busy_seconds=0,
                                retry_no_answer_seconds=0, retry_failed_seconds=0,
                                delay_after_reply_hours=0)
    config = RevisitConfig(campaign=settings, poll_seconds=0.2, key_timeout_ms=20000,
                           comment_max_seconds=3, key_retries=1)
    tickets = TicketService.from_config(sessionmaker, clock, TicketsConfig())
    service = RevisitService(sessionmaker, clock, config, tickets)
    library = PromptLibrary(PromptCatalog(config.prompts_dir),
                            IvrConfig(sounds_dir=work / "sounds"))
    library.ensure([(p, "zh") for p in PROMPTS], True)
    door = Telephony(AmiConfig(port=sim.ami_port, username="callcenter",
                               secret=SecretStr("CHANGE_ME"), action_timeout=10, pbx="bench"),
                     AgiConfig(host="127.0.0.1", port=0), None, SystemClock())
    door.agi.route("revisit", Survey(service, library, config).run)
    dialer = Dialer(service, door.commands, config)
    door.add_listener(dialer.on_event)
    await door.start()
    while not door.connected:
        await asyncio.sleep(0.05)
    sim.pbx.config.agi_port = door.agi.port
    busy_samples: list[int] = []  # while a revisit is due and not yet dialed
    open_samples: list[int] = []  # while more revisits are not done than there are lines
    all_samples: list[int] = []
    remaining, waiting = [args.revisits], [args.revisits]
    stop = asyncio.Event()

    async def sample() -> None:
        """Busy lines, each sample also counted while work remains by either measure."""
        while not stop.is_set():
            busy = sum(1 for c in sim.pbx.channels.values()
                       if c.name.startswith("PJSIP/trunk") and not c.dead)
            all_samples.append(busy)
            if waiting[0] > 0:
                busy_samples.append(busy)
            if remaining[0] > args.lines:
                open_samples.append(busy)
            await asyncio.sleep(SAMPLE)

    started = time.perf_counter()
    sampler = asyncio.create_task(sample())
    runner = asyncio.create_task(dialer.run(stop))
    while True:
        await asyncio.sleep(1)
        clock.advance(timedelta(seconds=1))  # leases run out (a lost call is reconciled)
        async with sessionmaker() as session:  # one counting query: the bench stays light
            total, left, waiting[0] = (await session.execute(select(
                func.count(),
                func.count().filter(Revisit.state.notin_(["done", "canceled"])),
                func.count().filter(Revisit.state == "pending",
                                    Revisit.due_at <= clock.now())).select_from(Revisit))).one()
        remaining[0] = left
        if int(time.perf_counter() - started) % 60 == 0 and busy_samples:
            print(f"progress: {time.perf_counter() - started:.0f}s done={total - left} "
                  f"utilisation={sum(busy_samples) / (args.lines * len(busy_samples)):.3f}",
                  flush=True)
        if total == args.revisits and left == 0:
            break
    elapsed = time.perf_counter() - started
    stop.set()
    await runner
    await sampler
    async with sessionmaker() as session:
        attempts = (await session.execute(select(RevisitAttempt.revisit_id,
                                                 RevisitAttempt.outcome))).all()
    answered: dict[int, int] = {}
    tries: dict[int, int] = {}
    for rid, outcome in attempts:
        tries[rid] = tries.get(rid, 0) + 1
        answered[rid] = answered.get(rid, 0) + (outcome == "answered")
    # a double dial: a revisit answered twice, or dialed beyond its attempts
    double = sum(1 for rid in tries if answered[rid] > 1 or tries[rid] > settings.max_attempts)
    def utilisation_of(samples: list[int]) -> float:
        return sum(min(b, args.lines) for b in samples) / (args.lines * len(samples))

    utilisation = utilisation_of(busy_samples)
    ideal = sum(all_samples) * SAMPLE / args.lines  # busy line time / lines
    print(f"completion={elapsed:.1f}s ideal={ideal:.1f}s ratio={elapsed / ideal:.2f} "
          f"needed_cps={len(attempts) / ideal:.1f} cps={args.cps:g}")
    print(f"revisits={args.revisits} lines={args.lines} attempts={len(attempts)} "
          f"dials={dialer.dials} wall={elapsed:.1f}s utilisation={utilisation:.3f} "
          f"peak_lines={max(busy_samples)} double_dials={double}")
    print(f"utilisation while more revisits were not done than there are lines (a result "
          f"being written counts as work): {utilisation_of(open_samples):.3f}")
    await door.stop()
    await sim.stop()
    await engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--revisits", type=int, default=10000)
    parser.add_argument("--lines", type=int, default=100)
    parser.add_argument("--cps", type=float, default=100.0)
    parser.add_argument("--time-scale", type=float, default=0.005)
    parser.add_argument("--db", default=None, help="a database URL (dropped and created); "
                        "default: a new SQLite file")
    asyncio.run(main(parser.parse_args()))
