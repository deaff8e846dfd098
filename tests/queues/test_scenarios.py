"""Queue scenarios on the simulator over AMI: ring-no-answer moving to the next agent, an agent
logging out while a caller waits, a blind transfer into another queue, a call put on hold.
Each gives the agents' stored states and the wallboard's figures computed by hand here, and
the figures equal the simulator's own ``QueueParams`` counters (Completed, Abandoned,
ServicelevelPerf) for the same calls."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from callcenter.clock import FrozenClock
from callcenter.queues.screenpop import ScreenPopListener
from callcenter.queues.wallboard import QueueFigures, Wallboard
from callcenter.simulator.actors import Agent, Caller
from callcenter.telephony import events as ev
from tests.queues.conftest import Rig, logged_in_agent

A, B = "PJSIP/1001", "PJSIP/1002"


async def gone(rig: Rig, call: Any) -> None:
    """The caller hung up, the service saw it and stored the queue visits and states."""
    await asyncio.wait_for(call.ended, 30)
    await rig.seen_event(ev.ChannelHungUp, uniqueid=call.uniqueid)
    await rig.visits.flush()
    await rig.listener.flush()


async def figures(rig: Rig, queue: str) -> tuple[QueueFigures, dict[str, str]]:
    """The wallboard's figures for ``queue`` now, and Asterisk's ``QueueParams``."""
    params = [m for m in await rig.telephony.commands.queue_status(queue)
              if m.get("Event") == "QueueParams"][0]
    last = max(e.at for e in rig.seen)
    board = await Wallboard(rig.service.sessionmaker, FrozenClock(last),
                            rig.service.config).today()
    return {f.queue: f for f in board.queues}[queue], params


def agrees(f: QueueFigures, params: dict[str, str]) -> None:
    assert (f.answered, f.abandoned + f.timeouts) == (int(params["Completed"]),
                                                      int(params["Abandoned"]))
    assert f.service_level == float(params["ServicelevelPerf"])


async def states(rig: Rig, agent_id: int) -> list[str]:
    return [p.state for p in await rig.periods(agent_id)]


async def test_ring_no_answer_moves_the_call_to_the_next_agent(
        rig: Rig) -> None:
    _, silent = await logged_in_agent(
        rig, A, "hotline", Agent(name="silent", mode="never"))
    _, taker = await logged_in_agent(
        rig, B, "hotline", Agent(name="taker", answer_after=1.0))
    call = rig.sim.place_call("13800138001", behaviour=Caller(talk_time=6.0))
    await rig.next_state(taker, "after_call_work")
    await gone(rig, call)

    [missed] = rig.events(ev.AgentRingNoAnswer, linkedid=call.linkedid)
    [connected] = rig.events(ev.AgentConnected, linkedid=call.linkedid)
    assert (missed.interface, missed.ring_time_ms, connected.interface) == (A, 15000, B)
    assert [c.interface for c in rig.events(ev.AgentCalled, linkedid=call.linkedid)] == [A, B]
    assert await states(rig, silent) == ["available", "ringing", "available"]
    assert (await states(rig, taker))[:4] == ["available", "ringing", "on_call",
                                              "after_call_work"]
    f, params = await figures(rig, "hotline")
    # 15 s ring, 2 s retry, 1 s to answer: 18 s of wait, within the 20 s target
    assert (f.offered, f.answered, f.abandoned, f.service_level) == (1, 1, 0, 100.0)
    [joined] = rig.events(ev.QueueCallerJoined, linkedid=call.linkedid)
    [left] = rig.events(ev.QueueCallerLeft, linkedid=call.linkedid)
    assert f.average_speed_of_answer == round((left.at - joined.at).total_seconds(), 3)
    agrees(f, params)


async def test_an_agent_logging_out_while_a_caller_waits_leaves_it_to_the_next(
        rig: Rig) -> None:
    leaver, leaving = await logged_in_agent(rig, A, "hotline-en", Agent(name="leaver"))
    await rig.call(leaver, "POST", "/agents/me/pause", {"reason": "break"})
    await rig.next_state(leaving, "paused", reason="break")
    call = rig.sim.place_call("13800138002", exten="12345001",
                              behaviour=Caller(talk_time=4.0))
    await call.wait_queued()
    await rig.call(leaver, "POST", "/agents/me/logout")
    await rig.next_state(leaving, "logged_out")
    assert rig.events(ev.AgentCalled, linkedid=call.linkedid) == []
    _, taker = await logged_in_agent(
        rig, B, "hotline-en", Agent(name="taker", answer_after=1.0))
    await rig.next_state(taker, "after_call_work")
    await gone(rig, call)

    assert await states(rig, leaving) == ["available", "paused"]
    assert [c.interface for c in rig.events(ev.AgentCalled, linkedid=call.linkedid)] == [B]
    f, params = await figures(rig, "hotline-en")
    assert (f.offered, f.answered, f.abandoned) == (1, 1, 0)
    agrees(f, params)


async def test_a_blind_transfer_into_another_queue_counts_in_both_queues(
        rig: Rig, pops: ScreenPopListener) -> None:
    first, first_id = await logged_in_agent(
        rig, A, "hotline-en", Agent(name="first", answer_after=1.0))
    _, second_id = await logged_in_agent(
        rig, B, "hotline", Agent(name="second", answer_after=1.0))
    call = rig.sim.place_call("13800138003", exten="12345001",
                              behaviour=Caller(talk_time=30.0))
    await rig.next_state(first_id, "on_call")
    await pops.flush()  # the answered call is the agent's to transfer
    await rig.call(first, "POST", "/agents/me/call/blind-transfer", {"queue": "hotline"})
    await rig.next_state(second_id, "after_call_work")
    await gone(rig, call)

    [done] = rig.events(ev.AgentCompleted, interface=A)
    assert done.reason == "transfer"
    assert (await states(rig, first_id))[:4] == ["available", "ringing", "on_call",
                                                 "after_call_work"]
    for queue in ("hotline-en", "hotline"):
        f, params = await figures(rig, queue)
        assert (f.offered, f.answered, f.abandoned) == (1, 1, 0), queue
        agrees(f, params)


async def test_hold_is_handle_time_and_agrees_with_asterisk(
        rig: Rig) -> None:
    _, holder = await logged_in_agent(rig, A, "hotline-en", Agent(name="holder", answer_after=1.0,
                                                        hold_after=2.0, hold_for=3.0))
    call = rig.sim.place_call("13800138004", exten="12345001",
                              behaviour=Caller(talk_time=8.0))
    await rig.next_state(holder, "available")  # after-call work is over
    await gone(rig, call)

    periods = await rig.periods(holder)
    assert [p.state for p in periods] == ["available", "ringing", "on_call", "on_hold",
                                          "on_call", "after_call_work", "available"]
    spent = {state: sum((p.ended_at - p.started_at).total_seconds() for p in periods
                        if p.state == state and p.ended_at)
             for state in ("on_call", "on_hold", "after_call_work")}
    assert round(spent["on_hold"]) == 3
    f, params = await figures(rig, "hotline-en")
    assert (f.offered, f.answered) == (1, 1)
    assert f.average_handle_time == pytest.approx(sum(spent.values()), abs=0.05)
    agrees(f, params)
