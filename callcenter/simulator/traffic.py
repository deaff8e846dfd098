"""Demo traffic: citizens calling 12345 at a rate, with varied behaviour, and agents logged in.

Arrivals are a Poisson process on the simulator's clock; each caller gets a voice from the
speech samples, may press IVR keys, may give up while waiting, and talks for a while.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from callcenter.simulator.actors import Agent, Caller
from callcenter.simulator.scenario import CallHandle, Simulator

log = logging.getLogger(__name__)

CITIZEN_VOICES = [f"c{n:02d}.wav" for n in range(1, 11)]
AGENT_VOICES = ["a01.wav", "a02.wav"]


@dataclass
class TrafficStats:
    placed: int = 0
    ended: int = 0


ENGLISH_QUEUE = "hotline-en"


def login_agents(sim: Simulator, count: int = 5, queue: str = "hotline", first: int = 1001) -> None:
    """Agents 1001.. register and join `queue`, with a little variety in their habits; every
    fifth also speaks English (the IVR's key 9 queues callers to hotline-en)."""
    rng = sim.rng
    for n in range(count):
        interface = f"PJSIP/{first + n}"
        behaviour = Agent(
            name=f"Agent {first + n}",
            mode="never" if rng.random() < 0.05 else "answer",
            answer_after=rng.uniform(1.0, 6.0),
            talk_time=None,
            voice=rng.choice(AGENT_VOICES),
        )
        queues = [queue, ENGLISH_QUEUE] if n % 5 == 0 else [queue]
        sim.add_agent(interface, behaviour, queues=queues, login=True)


def random_caller(sim: Simulator) -> Caller:
    rng = sim.rng
    return Caller(
        name="",
        keys=rng.choice(["", "", "", "9", "1", "0"]),  # 9: English, during the welcome
        key_delay=rng.uniform(0.5, 3.0),
        patience=rng.choice([None, None, rng.uniform(20, 120)]),
        talk_time=rng.uniform(15, 150),  # short enough that the demo shows ended calls soon
        voice=rng.choice(CITIZEN_VOICES),
    )


def random_number(sim: Simulator) -> str:
    rng = sim.rng
    return "1" + rng.choice("3589") + "".join(str(rng.randrange(10)) for _ in range(9))


async def run_traffic(
    sim: Simulator,
    stop_event: asyncio.Event,
    calls_per_minute: float = 12.0,
    max_calls: int | None = None,
) -> TrafficStats:
    """Place calls until stop_event is set (or max_calls); returns counts."""
    stats = TrafficStats()
    handles: set[CallHandle] = set()
    rate = calls_per_minute / 60.0
    while not stop_event.is_set() and (max_calls is None or stats.placed < max_calls):
        gap = sim.rng.expovariate(rate) if rate > 0 else 60.0
        try:
            await asyncio.wait_for(stop_event.wait(), sim.clock.wall(gap))
            break
        except TimeoutError:
            pass
        call = sim.place_call(random_number(sim), behaviour=random_caller(sim))
        stats.placed += 1
        handles.add(call)

        def done(_: object, call: CallHandle = call) -> None:
            handles.discard(call)
            stats.ended += 1

        call.ended.add_done_callback(done)
    return stats
