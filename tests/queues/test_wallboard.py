"""Wallboard figures per queue for the hotline's day, computed by hand from call-log rows,
after-call work periods and the live waiting count published on the bus; then a simulated
day whose figures must agree with the simulator's own ``QueueParams`` counters."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.auth.principal import Role
from callcenter.auth.testing import bare_app, bearer, make_user, test_auth_config, token_for
from callcenter.auth.users import principal_for
from callcenter.bus.memory import MemoryBus
from callcenter.clock import FrozenClock
from callcenter.queues.config import QueuesConfig
from callcenter.queues.http import WALLBOARD
from callcenter.queues.http import setup_web as setup_queues
from callcenter.queues.models import Agent, AgentStatePeriod, QueueVisit
from callcenter.queues.wallboard import WAITING_TOPIC, Wallboard
from callcenter.simulator.actors import Agent as SimAgent
from callcenter.simulator.actors import Caller
from callcenter.telephony import events as ev
from tests.queues.conftest import Rig

# 2 Dec 2026 in Shanghai (UTC+8) runs from 1 Dec 16:00 UTC to 2 Dec 16:00 UTC
NOW = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


def call(n: int, queue: str, outcome: str | None, started: datetime, *, wait: float = 0.0,
         talk: float = 0.0, hold: float = 0.0) -> QueueVisit:
    """A caller's stay in a queue (``outcome`` None: still waiting)."""
    answered = outcome == "answered"
    return QueueVisit(id=f"u{n}@{started.isoformat()}", linkedid=f"c{n}", queue=queue,
                      joined_at=started, outcome=outcome, wait_seconds=wait,
                      talk_seconds=talk if answered else None,
                      hold_seconds=hold if answered else None)


async def seed_day(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    local = timedelta(hours=8)
    at = [datetime(2026, 12, 2, h, m, tzinfo=UTC) - local for h, m in
          ((9, 1), (9, 14), (9, 15), (9, 40), (9, 44), (9, 59))]
    async with sessionmaker() as session, session.begin():
        session.add_all([
            call(1, "hotline", "answered", at[0], wait=5, talk=100, hold=10),
            call(2, "hotline", "answered", at[1], wait=35, talk=200),
            call(3, "hotline", "abandoned", at[2], wait=50),
            call(4, "hotline", "timeout", at[3], wait=300),
            call(5, "hotline", "joinempty", at[4]),
            call(6, "hotline-en", "answered", at[5], wait=20, talk=60),
            # not counted: yesterday (local), still waiting, another queue
            call(7, "hotline", "answered", datetime(2026, 12, 1, 15, 59, tzinfo=UTC), wait=1),
            call(8, "hotline", None, at[5]),
            call(9, "other", "answered", at[5], wait=1),
        ])
        user_id = (await make_user(sessionmaker, FrozenClock(NOW), role=Role.AGENT)).id
        agent = Agent(user_id=user_id, member_name="A", extension="1001", logged_in=False,
                      state="logged_out")
        session.add(agent)
        await session.flush()
        session.add_all([
            AgentStatePeriod(agent_id=agent.id, state="after_call_work", queue="hotline",
                             linkedid="c1", started_at=at[0] + timedelta(seconds=120),
                             ended_at=at[0] + timedelta(seconds=150)),
            AgentStatePeriod(agent_id=agent.id, state="after_call_work", queue="hotline",
                             linkedid="c2", started_at=at[1] + timedelta(seconds=300),
                             ended_at=None),  # still going: not counted yet
        ])


@pytest.fixture
async def board_client(sessionmaker: async_sessionmaker[AsyncSession]
                       ) -> Any:
    clock = FrozenClock(NOW)
    bus = MemoryBus()
    auth = test_auth_config()
    app = bare_app(sessionmaker, clock, config=auth, bus=bus)
    setup_queues(app, QueuesConfig())
    supervisor = await make_user(sessionmaker, clock, role=Role.SUPERVISOR)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield client, bearer(token_for(principal_for(supervisor), auth, clock)), bus, app
    finally:
        await client.close()


async def test_wallboard_figures_equal_the_hand_computed_ones(
        board_client: Any, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    client, headers, bus, app = board_client
    await seed_day(sessionmaker)
    wallboard: Wallboard = app[WALLBOARD]
    await asyncio.wait_for(wallboard.following.wait(), 5)
    await bus.publish(WAITING_TOPIC, {"queue": "hotline", "waiting": 2,
                                      "at": NOW.isoformat(),
                                      "oldest_joined_at": (NOW - timedelta(seconds=42.5))
                                      .isoformat()})
    await asyncio.wait_for(wallboard.changed.wait(), 5)
    response = await client.get("/api/v1/queues/wallboard", headers=headers)
    data = await response.json()
    assert response.status == 200, data
    assert (data["day"], data["service_level_seconds"]) == ("2026-12-02", 20)
    hotline, english = data["queues"]
    assert hotline == {
        "queue": "hotline", "waiting": 2, "longest_wait_seconds": 42.5,
        "offered": 5, "answered": 2, "abandoned": 1, "timeouts": 1, "other_exits": 1,
        "answered_within_target": 1,
        "service_level": 50.0,  # 1 of 2 answered within 20 s
        "average_speed_of_answer": 20.0,  # (5 + 35) / 2
        "average_handle_time": 170.0,  # (100 + 10 + 30 + 200) / 2
        "abandon_rate": 20.0,  # 1 of 5
        "per_quarter_hour": {"09:00": 2, "09:15": 1, "09:30": 2}}
    assert english == {
        "queue": "hotline-en", "waiting": 0, "longest_wait_seconds": 0.0,
        "offered": 1, "answered": 1, "abandoned": 0, "timeouts": 0, "other_exits": 0,
        "answered_within_target": 1, "service_level": 100.0,
        "average_speed_of_answer": 20.0, "average_handle_time": 60.0, "abandon_rate": 0.0,
        "per_quarter_hour": {"09:45": 1}}


async def test_a_simulated_day_agrees_with_asterisks_queue_params(rig: Rig) -> None:
    """One call answered, one abandoned while the only agent is paused: the wallboard's
    answered / abandoned / service level equal the simulator's Completed / Abandoned /
    ServicelevelPerf for the queue."""
    from callcenter.queues.service import Skill
    from tests.queues.conftest import make_agent

    rig.sim.add_agent("PJSIP/1001", SimAgent(name="softphone", answer_after=1.0))
    user, agent_id = await make_agent(rig.service, extension="1001",
                                      skills=[Skill("hotline-en", 5)])
    await rig.call(user, "POST", "/agents/me/login", {})
    await rig.next_state(agent_id, "available")
    answered = rig.sim.place_call("13800138001", exten="12345001",
                                  behaviour=Caller(talk_time=6.0))
    await asyncio.wait_for(answered.ended, 15)
    await rig.call(user, "POST", "/agents/me/pause", {"reason": "break"})
    await rig.next_state(agent_id, "paused", reason="break")
    gave_up = rig.sim.place_call("13800138002", exten="12345001",
                                 behaviour=Caller(patience=3.0))
    await rig.seen_event(ev.ChannelHungUp, uniqueid=gave_up.uniqueid)
    await rig.visits.flush()
    params = [m for m in await rig.telephony.commands.queue_status("hotline-en")
              if m.get("Event") == "QueueParams"][0]
    last = max(e.at for e in rig.seen)
    wallboard = Wallboard(rig.service.sessionmaker, FrozenClock(last), rig.service.config)
    figures = {q.queue: q for q in (await wallboard.today()).queues}["hotline-en"]
    assert (figures.offered, figures.answered, figures.abandoned) == (2, 1, 1)
    assert (figures.answered, figures.abandoned + figures.timeouts) == (
        int(params["Completed"]), int(params["Abandoned"]))
    assert figures.service_level == float(params["ServicelevelPerf"])
    assert figures.abandon_rate == 50.0
