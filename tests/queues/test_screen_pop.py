"""The screen-pop: an offered and then answered queue call reaches the agent on the bus and at
``GET /agents/me/call`` with the calling number as the role may see it, the IVR's account read
from the caller's channel, and the caller's open and earlier tickets; it goes away after the
call's wrap-up, and a ring nobody answered leaves nothing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

from sqlalchemy import select

from callcenter.auth.config import MaskingRule
from callcenter.auth.models import AuditLog
from callcenter.auth.principal import Role
from callcenter.queues.screenpop import ScreenPopListener
from callcenter.queues.service import Skill
from callcenter.simulator.actors import Agent, Caller
from callcenter.telephony import events as ev
from callcenter.tickets.models import Ticket
from tests.queues.conftest import Rig, make_agent, start_pops

PHONE = "PJSIP/1001"
CALLER = "13800138000"
IVR = {"IVR_PATH": "welcome>progress:20261201000007", "IVR_LANGUAGE": "zh",
       "IVR_TICKET": "20261201-000007", "IVR_VERIFIED": "pin"}
_numbers = count(1)


async def ticket(rig: Rig, *, status: str, title: str, days_ago: int,
                 phone: str = CALLER) -> Ticket:
    at = datetime.now(UTC) - timedelta(days=days_ago)
    async with rig.service.sessionmaker() as session, session.begin():
        row = Ticket(number=f"2026110{next(_numbers)}-000001", status=status, channel="phone",
                     ticket_type="complaint", topic="water", title=title, content="",
                     created_at=at, updated_at=at, caller_phone=phone)
        session.add(row)
    return row


async def caller_waiting_with_ivr_facts(rig: Rig, talk_time: float) -> Any:
    """A caller in hotline-en before any agent is there, carrying the IVR's variables."""
    joined = asyncio.Event()
    rig.telephony.add_listener(lambda e: isinstance(e, ev.QueueCallerJoined) and joined.set())
    call = rig.sim.place_call(CALLER, exten="12345001", behaviour=Caller(talk_time=talk_time))
    await asyncio.wait_for(joined.wait(), 10)
    for name, value in IVR.items():
        await rig.telephony.commands.setvar(call.name, name, value)
    return call


async def next_pop(subscription: Any, phase: str) -> dict[str, Any]:
    async with asyncio.timeout(15):
        while True:
            _, payload = await subscription.get()
            if payload["phase"] == phase:
                return payload


def ref(t: Ticket) -> dict[str, Any]:
    return {"id": t.id, "number": t.number, "status": t.status, "topic": t.topic,
            "title": t.title, "created_at": t.created_at.isoformat()}


async def test_offered_and_answered_call_pops_number_ivr_and_tickets_then_clears(
        rig: Rig, pops: ScreenPopListener) -> None:
    rig.sim.add_agent(PHONE, Agent(name="softphone", answer_after=1.0))
    user, agent_id = await make_agent(rig.service, extension="1001",
                                      skills=[Skill("hotline-en", 5)])
    open_old = await ticket(rig, status="dispatched", title="停水 13912345678", days_ago=9)
    open_new = await ticket(rig, status="registered", title="路灯不亮", days_ago=2)
    done = await ticket(rig, status="archived", title="噪音", days_ago=30)
    await ticket(rig, status="dispatched", title="别人的", days_ago=1, phone="13900000000")
    subscription = await rig.bus.subscribe(f"queues.screen_pop.{agent_id}").open()
    call = await caller_waiting_with_ivr_facts(rig, talk_time=3.0)

    await rig.call(user, "POST", "/agents/me/login", {})
    offered = await next_pop(subscription, "offered")
    called = rig.events(ev.AgentCalled, interface=PHONE)[0]
    assert offered == {
        "agent_id": agent_id, "linkedid": call.linkedid, "queue": "hotline-en",
        "transferred_by": None,
        "phase": "offered", "offered_at": called.at.isoformat(), "answered_at": None,
        "ended_at": None,
        "caller": {"number": CALLER, "name": None, "masked": False},
        "ivr": {"path": IVR["IVR_PATH"], "language": "zh", "ticket": "20261201-000007",
                "verification": "pin", "verified": True},
        "open_tickets": [ref(open_new), ref(open_old)], "earlier_tickets": [ref(done)],
    }
    shown = (await rig.call(user, "GET", "/agents/me/call"))["call"]
    assert shown["phase"] in ("offered", "answered") and shown["linkedid"] == call.linkedid
    assert shown["caller"]["number"] == CALLER and shown["ivr"]["verified"] is True
    assert [t["number"] for t in shown["open_tickets"]] == [open_new.number, open_old.number]

    answered = await next_pop(subscription, "answered")
    connected = rig.events(ev.AgentConnected, interface=PHONE)[0]
    assert answered == {**offered, "phase": "answered",
                        "answered_at": connected.at.isoformat()}

    ended = await next_pop(subscription, "ended")
    completed = rig.events(ev.AgentCompleted, interface=PHONE)[0]
    assert ended == {**answered, "phase": "ended", "ended_at": completed.at.isoformat()}
    await rig.next_state(agent_id, "after_call_work")
    await rig.listener.flush()
    wrapping_up = (await rig.call(user, "GET", "/agents/me/call"))["call"]
    assert wrapping_up["phase"] == "ended" and wrapping_up["linkedid"] == call.linkedid
    await rig.next_state(agent_id, "available")
    await rig.listener.flush()
    assert await rig.call(user, "GET", "/agents/me/call") == {"call": None}

    async with rig.service.sessionmaker() as session:
        reads = (await session.scalars(select(AuditLog).where(
            AuditLog.action == "call.screen_pop"))).all()
    assert {(r.user_id, r.object_id, tuple(r.fields)) for r in reads} == {
        (user.id, call.linkedid, ("phone",))}
    assert len(reads) == 5  # three publications, two reads of the API


async def test_a_policy_that_hides_numbers_from_agents_masks_the_pop(rig: Rig) -> None:
    names_only = rig.auth.model_copy(update={"masking": [
        MaskingRule(role=Role.AGENT, fields=["name"]),
        MaskingRule(role=Role.SUPERVISOR, fields=["name", "phone", "address"])]})
    pops = await start_pops(rig, names_only)
    rig.sim.add_agent(PHONE, Agent(name="softphone", answer_after=1.0))
    _, agent_id = await make_agent(rig.service, extension="1001",
                                   skills=[Skill("hotline-en", 5)])
    typed = await ticket(rig, status="dispatched", title="回电 13912345678", days_ago=1)
    subscription = await rig.bus.subscribe(f"queues.screen_pop.{agent_id}").open()
    rig.sim.place_call(CALLER, exten="12345001", behaviour=Caller(talk_time=1.0))
    await rig.service.login(rig.telephony.commands, agent_id)

    try:
        offered = await next_pop(subscription, "offered")
    finally:
        await pops.stop()
    assert offered["caller"] == {"number": "138****8000", "name": None, "masked": True}
    assert offered["open_tickets"] == [{**ref(typed), "title": "回电 139****5678"}]
    async with rig.service.sessionmaker() as session:
        assert (await session.scalars(select(AuditLog).where(
            AuditLog.action == "call.screen_pop"))).all() == []


async def test_an_unanswered_ring_ends_the_pop_and_a_caller_who_gives_up_leaves_no_call(
        rig: Rig, pops: ScreenPopListener) -> None:
    rig.sim.add_agent(PHONE, Agent(name="softphone", mode="never"))
    user, agent_id = await make_agent(rig.service, extension="1001",
                                      skills=[Skill("hotline-en", 5)])
    subscription = await rig.bus.subscribe(f"queues.screen_pop.{agent_id}").open()
    await rig.call(user, "POST", "/agents/me/login", {})
    await rig.next_state(agent_id, "available")
    # rung for 15 s (queues.conf timeout), again after the 2 s retry, gone at 20 s
    call = rig.sim.place_call(CALLER, exten="12345001", behaviour=Caller(patience=20.0))

    offered = await next_pop(subscription, "offered")
    assert offered["linkedid"] == call.linkedid and offered["ivr"] == {
        "path": None, "language": None, "ticket": None, "verification": None,
        "verified": False}
    missed = await next_pop(subscription, "ended")
    no_answer = rig.events(ev.AgentRingNoAnswer, interface=PHONE)[0]
    assert missed["ended_at"] == no_answer.at.isoformat() and missed["answered_at"] is None
    again = await next_pop(subscription, "offered")
    assert again["linkedid"] == call.linkedid and again["offered_at"] > missed["ended_at"]
    gave_up = await next_pop(subscription, "ended")
    abandoned = rig.events(ev.QueueCallerAbandoned, linkedid=call.linkedid)[0]
    assert gave_up["ended_at"] == abandoned.at.isoformat()
    await pops.flush()
    assert await rig.call(user, "GET", "/agents/me/call") == {"call": None}
