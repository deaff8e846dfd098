"""Statistics per 15-minute interval: hand-computed figures from seeded call-log rows and
state periods, a recomputation that replaces rather than adds, and a simulated queue whose
intervals add up to the simulator's own ``QueueParams`` counters."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.auth.principal import Role
from callcenter.auth.testing import make_user
from callcenter.clock import FrozenClock
from callcenter.queues.history import Range, aggregate
from callcenter.queues.models import Agent, AgentInterval, AgentStatePeriod, QueueInterval
from callcenter.queues.service import Skill
from callcenter.simulator.actors import Agent as SimAgent
from callcenter.simulator.actors import Caller
from callcenter.store import migrations
from callcenter.telephony import events as ev
from tests.queues.conftest import Rig, make_agent
from tests.queues.test_wallboard import call

T0 = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


async def seed(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    async with sessionmaker() as session, session.begin():
        session.add_all([
            call(1, "hotline", "answered", at(1), wait=5, talk=100, hold=10),
            call(2, "hotline", "answered", at(14), wait=35, talk=200),
            call(3, "hotline", "abandoned", at(15), wait=50),
            call(4, "hotline", "timeout", at(20), wait=300),
            call(5, "hotline-en", "answered", at(16), wait=3, talk=60),
        ])
        user = await make_user(sessionmaker, FrozenClock(T0), role=Role.AGENT)
        agent = Agent(user_id=user.id, member_name="A", extension="1001", logged_in=True,
                      state="available")
        session.add(agent)
        await session.flush()

        def period(state: str, start: float, end: float | None, *, queue: str | None = None,
                   linkedid: str | None = None, reason: str | None = None
                   ) -> AgentStatePeriod:
            return AgentStatePeriod(agent_id=agent.id, state=state, queue=queue,
                                    linkedid=linkedid, reason=reason, started_at=at(start),
                                    ended_at=None if end is None else at(end))

        session.add_all([
            period("available", 0, 1),
            period("ringing", 1, 1.25, queue="hotline", linkedid="c1"),
            period("on_call", 1.25, 3, queue="hotline", linkedid="c1"),
            period("on_hold", 3, 3.5, queue="hotline", linkedid="c1"),
            period("on_call", 3.5, 4, queue="hotline", linkedid="c1"),  # back from hold
            period("after_call_work", 4, 4.5, queue="hotline", linkedid="c1"),
            period("ringing", 4.5, 5, queue="hotline", linkedid="c2"),  # rang out
            period("paused", 5, 20, reason="meal"),  # crosses 10:15
            period("available", 20, None),  # still going at 10:25
        ])
        return agent.id


async def test_intervals_equal_the_hand_computed_figures(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    agent_id = await seed(sessionmaker)
    now = at(25)
    async with sessionmaker() as session, session.begin():
        assert await aggregate(session, Range.around(now, timedelta(hours=1)), now, 20) == (
            3, 2)
    async with sessionmaker() as session, session.begin():  # again: replaced, not added
        await aggregate(session, Range.around(now, timedelta(hours=1)), now, 20)
    async with sessionmaker() as session:
        queues = (await session.scalars(select(QueueInterval).order_by(
            QueueInterval.queue, QueueInterval.interval_start))).all()
        agents = (await session.scalars(select(AgentInterval).order_by(
            AgentInterval.interval_start))).all()
    assert [(q.queue, q.interval_start, q.offered, q.answered, q.abandoned, q.timeouts,
             q.answered_within_target, q.wait_seconds, q.talk_seconds, q.hold_seconds,
             q.wrap_seconds) for q in queues] == [
        ("hotline", at(0), 2, 2, 0, 0, 1, 40.0, 300.0, 10.0, 30.0),
        ("hotline", at(15), 2, 0, 1, 1, 0, 0.0, 0.0, 0.0, 0.0),
        ("hotline-en", at(15), 1, 1, 0, 0, 1, 3.0, 60.0, 0.0, 0.0)]
    first, second = agents
    assert (first.agent_id, first.interval_start) == (agent_id, at(0))
    assert (first.login_seconds, first.available_seconds, first.ringing_seconds,
            first.on_call_seconds, first.on_hold_seconds, first.after_call_work_seconds,
            first.paused_seconds, first.paused_by_reason) == (
        900.0, 60.0, 45.0, 135.0, 30.0, 30.0, 600.0, {"meal": 600.0})
    assert (first.calls_offered, first.calls_answered) == (2, 1)
    assert (second.interval_start, second.login_seconds, second.paused_seconds,
            second.available_seconds, second.paused_by_reason) == (
        at(15), 600.0, 300.0, 300.0, {"meal": 300.0})


async def test_the_history_migration_builds_the_models_tables(db_url: str) -> None:
    await migrations.upgrade(db_url, "0013_queue_history")
    assert (await migrations.state(db_url)).current == "0013_queue_history"


async def test_a_simulated_queue_adds_up_to_asterisks_queue_params(rig: Rig) -> None:
    """Answered at once; abandoned while the only agent is paused; answered after waiting
    past the 20 s target: the intervals' sums equal Completed, Abandoned and
    ServicelevelPerf, and the agent's intervals count the two answers."""
    rig.sim.add_agent("PJSIP/1001", SimAgent(name="softphone", answer_after=1.0))
    user, agent_id = await make_agent(rig.service, extension="1001",
                                      skills=[Skill("hotline-en", 5)])
    await rig.call(user, "POST", "/agents/me/login", {})
    await rig.next_state(agent_id, "available")
    first = rig.sim.place_call("13800138001", exten="12345001",
                               behaviour=Caller(talk_time=6.0))
    await asyncio.wait_for(first.ended, 15)
    await rig.call(user, "POST", "/agents/me/pause", {"reason": "break"})
    await rig.next_state(agent_id, "paused", reason="break")
    gave_up = rig.sim.place_call("13800138002", exten="12345001",
                                 behaviour=Caller(patience=3.0))
    await asyncio.wait_for(gave_up.ended, 15)
    late = rig.sim.place_call("13800138003", exten="12345001",
                              behaviour=Caller(talk_time=4.0))
    await rig.sim.advance(25)  # the caller waits past the service-level target
    await rig.call(user, "POST", "/agents/me/unpause", {})
    await asyncio.wait_for(late.ended, 15)
    await rig.seen_event(ev.ChannelHungUp, uniqueid=late.uniqueid)
    await rig.visits.flush()
    await rig.listener.flush()
    params = [m for m in await rig.telephony.commands.queue_status("hotline-en")
              if m.get("Event") == "QueueParams"][0]
    now = max(e.at for e in rig.seen) + timedelta(seconds=1)
    async with rig.service.sessionmaker() as session, session.begin():
        await aggregate(session, Range.around(now, timedelta(hours=1)), now,
                        rig.service.config.service_level_seconds)
    async with rig.service.sessionmaker() as session:
        queues = (await session.scalars(select(QueueInterval).where(
            QueueInterval.queue == "hotline-en"))).all()
        agents = (await session.scalars(select(AgentInterval).where(
            AgentInterval.agent_id == agent_id))).all()
    answered = sum(q.answered for q in queues)
    within = sum(q.answered_within_target for q in queues)
    assert (sum(q.offered for q in queues), answered, within) == (3, 2, 1)
    assert (answered, sum(q.abandoned + q.timeouts for q in queues)) == (
        int(params["Completed"]), int(params["Abandoned"]))
    assert round(100.0 * within / answered, 1) == float(params["ServicelevelPerf"])
    assert sum(a.calls_answered for a in agents) == 2
    assert sum(a.calls_offered for a in agents) == 2
