"""Queue visits from Asterisk's events, on both databases: a ``Queue()`` timeout and a caller
hanging up both send ``QueueCallerAbandon``, and only what follows tells them apart; an
answered visit's talk excludes the agent's hold; a call transferred into a second queue is a
visit in each; a visit without an end yet is stored without an outcome."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.queues.models import QueueVisit
from callcenter.queues.visits import VisitRecorder
from callcenter.telephony import events as ev

T0 = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)
CALLER, AGENT = "PJSIP/trunk-00000001", "PJSIP/1001-00000002"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def base(seconds: float, channel: str = CALLER, uniqueid: str = "c.1",
         linkedid: str = "c.1") -> dict[str, Any]:
    return {"at": at(seconds), "channel": channel, "uniqueid": uniqueid, "linkedid": linkedid,
            "state": 6, "caller_num": "13800138000", "caller_name": "", "context": "from-pstn",
            "exten": "12345"}


def agent(kind: type, seconds: float, queue: str = "hotline", **extra: Any) -> Any:
    return kind(**base(seconds), queue=queue, member_name="A", interface="PJSIP/1001",
                dest_channel=AGENT, **extra)


async def visits(sessionmaker: async_sessionmaker[AsyncSession], events: list[Any]
                 ) -> list[tuple[Any, ...]]:
    recorder = VisitRecorder(sessionmaker)
    await recorder.start()
    for event in events:
        recorder(event)
    await recorder.stop()
    async with sessionmaker() as session:
        rows = await session.scalars(select(QueueVisit).order_by(QueueVisit.joined_at))
        return [(v.queue, v.outcome, v.wait_seconds, v.agent_interface, v.talk_seconds,
                 v.hold_seconds) for v in rows]


def joined(seconds: float, queue: str = "hotline") -> ev.QueueCallerJoined:
    return ev.QueueCallerJoined(**base(seconds), queue=queue, position=1, count=1)


def abandoned(seconds: float) -> ev.QueueCallerAbandoned:
    return ev.QueueCallerAbandoned(**base(seconds), queue="hotline", position=1,
                                   original_position=1, hold_time=int(seconds))


def left(seconds: float, queue: str = "hotline") -> ev.QueueCallerLeft:
    return ev.QueueCallerLeft(**base(seconds), queue=queue, position=1, count=0)


async def test_a_queue_timeout_is_a_timeout_and_a_hang_up_an_abandon(sessionmaker) -> None:
    timeout = [joined(0), abandoned(300), left(300),
               ev.VariableSet(**base(300), name="QUEUESTATUS", value="TIMEOUT"),
               ev.ChannelHungUp(**base(301), cause=16, cause_text="Normal Clearing")]
    assert await visits(sessionmaker, timeout) == [
        ("hotline", "timeout", 300.0, None, None, None)]


async def test_a_caller_hanging_up_while_waiting_abandons(sessionmaker) -> None:
    gave_up = [joined(0), abandoned(42), left(42),
               ev.ChannelHungUp(**base(42), cause=16, cause_text="Normal Clearing")]
    assert await visits(sessionmaker, gave_up) == [
        ("hotline", "abandoned", 42.0, None, None, None)]


async def test_an_answered_visit_talks_without_the_hold(sessionmaker) -> None:
    held = dict(base(30, AGENT, "a.2"), linkedid="c.1")
    resumed = dict(base(40, AGENT, "a.2"), linkedid="c.1")
    answered = [joined(0), left(18), agent(ev.AgentConnected, 18, hold_time=18, ring_time=2),
                ev.HoldStarted(**held, music_class="default"), ev.HoldEnded(**resumed),
                ev.ChannelHungUp(**base(78), cause=16, cause_text="Normal Clearing"),
                agent(ev.AgentCompleted, 78, hold_time=18, talk_time=60, reason="caller")]
    assert await visits(sessionmaker, answered) == [
        ("hotline", "answered", 18.0, "PJSIP/1001", 50.0, 10.0)]


async def test_a_transfer_into_another_queue_is_a_visit_in_each(sessionmaker) -> None:
    moved = [joined(0, "hotline-en"), left(5, "hotline-en"),
             agent(ev.AgentConnected, 5, "hotline-en", hold_time=5, ring_time=1),
             agent(ev.AgentCompleted, 35, "hotline-en", hold_time=5, talk_time=30,
                   reason="transfer"),
             joined(35, "hotline")]
    assert await visits(sessionmaker, moved) == [
        ("hotline-en", "answered", 5.0, "PJSIP/1001", 30.0, 0.0),
        ("hotline", None, None, None, None, None)]
