"""Agent states stored in batches, on both databases: a run of changes written in one
transaction leaves the same chain of periods as writes one by one, and a change of an
unknown phone is skipped without spoiling the others. The wallboard's waiting count does not
wait for those writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, text

from callcenter.auth.principal import Role
from callcenter.auth.testing import make_user
from callcenter.bus.memory import MemoryBus
from callcenter.clock import FrozenClock
from callcenter.queues.agent_state import AgentState, Change
from callcenter.queues.config import QueuesConfig
from callcenter.queues.listeners import AgentStateListener
from callcenter.queues.live import MemoryLiveStore
from callcenter.queues.models import AgentStatePeriod
from callcenter.queues.service import STATE_TOPIC, AgentService, Skill
from callcenter.queues.wallboard import WAITING_TOPIC
from callcenter.store.engine import create_engine, create_sessionmaker
from callcenter.telephony import events as ev

T0 = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)
PHONE = "PJSIP/1001"


def change(before: str, after: str, seconds: float, interface: str = PHONE) -> Change:
    state = AgentState(after) if after == "logged_out" else AgentState(after, queue="hotline")
    return Change(interface, "A", AgentState(before), state, T0 + timedelta(seconds=seconds))


async def agent_on(service: AgentService, extension: str) -> int:
    user = await make_user(service.sessionmaker, service.clock, role=Role.AGENT)
    async with service.sessionmaker() as session, session.begin():
        agent = await service.save_agent(session, user_id=user.id, extension=extension,
                                         skills=[Skill("hotline", 5)])
        agent.interface = f"PJSIP/{extension}"
        return agent.id


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


async def test_a_later_batch_closes_what_an_earlier_one_opened_for_each_agent(
        sessionmaker) -> None:
    service = AgentService(sessionmaker, FrozenClock(T0), QueuesConfig(), None)
    first, second = await agent_on(service, "1001"), await agent_on(service, "1002")
    other = "PJSIP/1002"
    await service.record_all([change("logged_out", "available", 0),
                              change("logged_out", "available", 1, other)])
    await service.record_all([change("available", "paused", 5, other),
                              change("available", "logged_out", 8),
                              change("paused", "available", 9, other)])

    async with sessionmaker() as session:
        periods = (await session.scalars(select(AgentStatePeriod).order_by(
            AgentStatePeriod.agent_id, AgentStatePeriod.started_at))).all()
    at = [T0 + timedelta(seconds=s) for s in range(10)]
    assert [(p.agent_id, p.state, p.started_at, p.ended_at) for p in periods] == [
        (first, "available", at[0], at[8]),  # logged out: closed, nothing opened
        (second, "available", at[1], at[5]), (second, "paused", at[5], at[9]),
        (second, "available", at[9], None)]


async def test_a_waiting_caller_is_shown_while_state_writes_wait_for_the_database(
        pg_schema_url: str) -> None:
    engine = create_engine(pg_schema_url)
    bus = MemoryBus()
    await bus.start()
    service = AgentService(create_sessionmaker(engine), FrozenClock(T0), QueuesConfig(), bus)
    await agent_on(service, "1001")
    listener = AgentStateListener(service, live=MemoryLiveStore())
    await listener.start()
    subscription = await bus.subscribe(WAITING_TOPIC, STATE_TOPIC).open()
    base = {"at": T0, "member_name": "A", "interface": PHONE, "state_interface": PHONE,
            "membership": "dynamic", "penalty": 5, "calls_taken": 0, "in_call": False,
            "status": 1, "paused": False, "paused_reason": ""}
    try:
        async with service.sessionmaker() as blocker, blocker.begin():
            await blocker.execute(text("LOCK TABLE queue_agents IN ACCESS EXCLUSIVE MODE"))
            listener(ev.QueueMemberAdded(**base, queue="hotline"))  # its write now waits
            listener(ev.QueueCallerJoined(
                at=T0, channel="PJSIP/trunk-1", uniqueid="c.1", linkedid="c.1", state=6,
                caller_num="13800138000", caller_name="", context="hotline", exten="12345",
                queue="hotline", position=1, count=1))
            topic, shown = await subscription.get(timeout=5)
            assert (topic, shown["waiting"], shown["available_agents"]) == (WAITING_TOPIC, 1, 1)
        topic, stored = await subscription.get(timeout=5)  # the lock is gone: it follows
        assert (topic, stored["state"]) == (STATE_TOPIC, "available")
    finally:
        await subscription.close()
        await listener.stop()
        await bus.close()
        await engine.dispose()
