"""Agent states stored in batches, on both databases: a run of changes written in one
transaction leaves the same chain of periods as writes one by one, and a change of an
unknown phone is skipped without spoiling the others."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from callcenter.auth.principal import Role
from callcenter.auth.testing import make_user
from callcenter.clock import FrozenClock
from callcenter.queues.agent_state import AgentState, Change
from callcenter.queues.config import QueuesConfig
from callcenter.queues.models import AgentStatePeriod
from callcenter.queues.service import AgentService, Skill

T0 = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)
PHONE = "PJSIP/1001"


def change(before: str, after: str, seconds: float, interface: str = PHONE) -> Change:
    return Change(interface, "A", AgentState(before), AgentState(after, queue="hotline"),
                  T0 + timedelta(seconds=seconds))


async def test_a_batch_of_changes_chains_the_periods_in_order(sessionmaker) -> None:
    clock = FrozenClock(T0)
    service = AgentService(sessionmaker, clock, QueuesConfig(), None)
    user = await make_user(sessionmaker, clock, role=Role.AGENT)
    async with sessionmaker() as session, session.begin():
        agent = await service.save_agent(session, user_id=user.id, extension="1001",
                                         skills=[Skill("hotline", 5)])
        agent.interface = PHONE
        agent_id = agent.id

    payloads = await service.record_all([
        change("logged_out", "available", 0), change("available", "ringing", 10),
        change("ringing", "available", 25, interface="PJSIP/9999"),  # not ours
        change("ringing", "on_call", 12), change("on_call", "after_call_work", 70)])

    assert [p and (p["agent_id"], p["state"], p["previous"]) for p in payloads] == [
        (agent_id, "available", "logged_out"), (agent_id, "ringing", "available"), None,
        (agent_id, "on_call", "ringing"), (agent_id, "after_call_work", "on_call")]
    async with sessionmaker() as session:
        periods = (await session.scalars(select(AgentStatePeriod).order_by(
            AgentStatePeriod.id))).all()
        agent = await service.agent(session, agent_id)
    at = [T0 + timedelta(seconds=s) for s in (0, 10, 12, 70)]
    assert [(p.state, p.started_at, p.ended_at) for p in periods] == [
        ("available", at[0], at[1]), ("ringing", at[1], at[2]), ("on_call", at[2], at[3]),
        ("after_call_work", at[3], None)]
    assert (agent.state, agent.state_since) == ("after_call_work", at[3])
