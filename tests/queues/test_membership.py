"""Login, pause, unpause, logout and after-call work against the simulator over real AMI:
what Asterisk's queues hold, and every stored period with the times of Asterisk's events."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from callcenter.queues.service import Skill
from callcenter.simulator.actors import Agent, Caller
from callcenter.telephony import events as ev
from tests.queues.conftest import Rig, make_agent

PHONE = "PJSIP/1001"


def member(rig: Rig, queue: str, interface: str = PHONE):
    return rig.sim.pbx.queues.queues[queue].members.get(interface)


async def test_login_adds_the_phone_to_each_skill_queue_with_the_levels_penalty(
        rig: Rig) -> None:
    user, agent_id = await make_agent(rig.service, extension="1001", skills=[
        Skill("hotline", 5), Skill("hotline-en", 2)])
    out = await rig.call(user, "POST", "/agents/me/login", {})
    assert out["interface"] == PHONE and out["logged_in"] is True
    event = await rig.next_state(agent_id, "available")
    added = rig.events(ev.QueueMemberAdded, interface=PHONE)
    assert sorted((e.queue, e.penalty, e.state_interface, e.member_name) for e in added) == [
        ("hotline", 0, PHONE, user.display_name), ("hotline-en", 3, PHONE, user.display_name)]
    assert event["since"] == min(e.at for e in added).isoformat()
    assert member(rig, "hotline").penalty == 0 and member(rig, "hotline-en").penalty == 3


async def test_pause_with_a_reason_then_unpause_then_logout_are_stored_as_periods(
        rig: Rig) -> None:
    user, agent_id = await make_agent(rig.service, extension="1001",
                                      skills=[Skill("hotline", 5)])
    await rig.call(user, "POST", "/agents/me/login", {})
    await rig.next_state(agent_id, "available")
    refused = await rig.call(user, "POST", "/agents/me/pause", {"reason": "nap"}, expect=409)
    assert refused["error"]["field"] == "reason"
    out = await rig.call(user, "POST", "/agents/me/pause", {"reason": "meal"})
    assert out["logged_in"] is True
    await rig.next_state(agent_id, "paused")
    assert member(rig, "hotline").paused and member(rig, "hotline").reason_paused == "meal"
    await rig.call(user, "POST", "/agents/me/unpause", {})
    await rig.next_state(agent_id, "available")
    await rig.call(user, "POST", "/agents/me/logout", {})
    await rig.next_state(agent_id, "logged_out")
    assert member(rig, "hotline") is None
    added = rig.events(ev.QueueMemberAdded, interface=PHONE)[0].at
    paused, unpaused = (e.at for e in rig.events(ev.QueueMemberPaused, interface=PHONE))
    removed = rig.events(ev.QueueMemberRemoved, interface=PHONE)[0].at
    await rig.listener.flush()
    assert [(p.state, p.reason, p.started_at, p.ended_at)
            for p in await rig.periods(agent_id)] == [
        ("available", None, added, paused), ("paused", "meal", paused, unpaused),
        ("available", None, unpaused, removed)]
    me = await rig.call(user, "GET", "/agents/me")
    assert (me["state"], me["logged_in"], ev_time(me["since"])) == ("logged_out", False, removed)


async def test_a_queue_call_rings_connects_and_ends_in_after_call_work_then_available(
        rig: Rig) -> None:
    rig.sim.add_agent(PHONE, Agent(name="softphone", answer_after=1.0))
    user, agent_id = await make_agent(rig.service, extension="1001",
                                      skills=[Skill("hotline-en", 5)])
    await rig.call(user, "POST", "/agents/me/login", {})
    await rig.next_state(agent_id, "available")
    call = rig.sim.place_call("13800138000", exten="12345001",
                              behaviour=Caller(talk_time=10.0))
    await rig.next_state(agent_id, "after_call_work")
    acw = await rig.call(user, "GET", "/agents/me")
    assert acw["state"] == "after_call_work" and acw["queue"] == "hotline-en"
    await rig.next_state(agent_id, "available")  # the 1 s timer unpaused the member
    await asyncio.wait_for(call.ended, 10)
    await rig.listener.flush()
    called = rig.events(ev.AgentCalled, interface=PHONE)[0]
    connected = rig.events(ev.AgentConnected, interface=PHONE)[0]
    completed = rig.events(ev.AgentCompleted, interface=PHONE)[0]
    pauses = rig.events(ev.QueueMemberPaused, interface=PHONE)
    assert [(p.paused, p.paused_reason) for p in pauses] == [
        (True, "after-call work"), (False, "")]
    # the call ends at the first sign: AgentComplete (Asterisk's order) or, where the phone
    # hangs up before app_queue reports (the simulator's order), the free phone's status
    freed = [e.at for e in rig.events(ev.QueueMemberStatus, interface=PHONE, status=1)
             if e.at > connected.at]
    ended = min([completed.at, *freed])
    periods = [(p.state, p.queue, p.linkedid, p.started_at, p.ended_at)
               for p in await rig.periods(agent_id)]
    added = rig.events(ev.QueueMemberAdded, interface=PHONE)[0].at
    assert periods == [
        ("available", None, None, added, called.at),
        ("ringing", "hotline-en", call.linkedid, called.at, connected.at),
        ("on_call", "hotline-en", call.linkedid, connected.at, ended),
        ("after_call_work", "hotline-en", call.linkedid, ended, pauses[1].at),
        ("available", None, None, pauses[1].at, None)]
    assert completed.talk_time == 10


async def test_after_call_work_extended_by_the_agent_lasts_longer(rig: Rig) -> None:
    rig.sim.add_agent(PHONE, Agent(name="softphone", answer_after=1.0))
    user, agent_id = await make_agent(rig.service, extension="1001",
                                      skills=[Skill("hotline-en", 5)])
    await rig.call(user, "POST", "/agents/me/login", {})
    rig.sim.place_call("13800138000", exten="12345001", behaviour=Caller(talk_time=5.0))
    await rig.next_state(agent_id, "after_call_work")
    before = (await rig.call(user, "GET", "/agents/me"))["after_call_work_until"]
    out = await rig.call(user, "POST", "/agents/me/after-call-work/extend", {"seconds": 1})
    extended = out["after_call_work_until"]
    assert (ev_time(extended) - ev_time(before)) == timedelta(seconds=1)
    await rig.next_state(agent_id, "available", timeout=10)
    unpaused = rig.events(ev.QueueMemberPaused, interface=PHONE, paused=False)[0].at
    completed = rig.events(ev.AgentCompleted, interface=PHONE)[0].at
    # 1 s configured + 1 s extension, in wall time (the simulator's clock runs 20x faster)
    assert (unpaused - completed).total_seconds() >= 2 / 0.05 * 0.9
    not_now = await rig.call(user, "POST", "/agents/me/after-call-work/extend",
                             {"seconds": 1}, expect=409)
    assert "not in after-call work" in not_now["error"]["message"]


def ev_time(text: str):
    from datetime import datetime

    return datetime.fromisoformat(text)


async def test_a_ring_no_answer_is_a_missed_offer_and_the_next_agent_takes_the_call(
        rig: Rig) -> None:
    rig.sim.add_agent(PHONE, Agent(name="asleep", mode="never"))
    rig.sim.add_agent("PJSIP/1002", Agent(name="awake", answer_after=1.0))
    sleepy, sleepy_id = await make_agent(rig.service, extension="1001",
                                         skills=[Skill("hotline", 5)])
    await rig.call(sleepy, "POST", "/agents/me/login", {})
    await rig.next_state(sleepy_id, "available")
    awake, awake_id = await make_agent(rig.service, extension="1002",
                                       skills=[Skill("hotline", 5)])
    await rig.call(awake, "POST", "/agents/me/login", {})
    await rig.next_state(awake_id, "available")
    # hotline (rrmemory) moves on after a ring-no-answer; the IVR is unreachable here, so
    # the dialplan goes straight on to the queue
    call = rig.sim.place_call("13800138000", behaviour=Caller(talk_time=4.0))
    await rig.next_state(awake_id, "after_call_work")
    await rig.listener.flush()
    missed = rig.events(ev.AgentRingNoAnswer, interface=PHONE)
    called = rig.events(ev.AgentCalled, interface=PHONE)
    assert len(called) == len(missed) == 1  # rung first, once; then the next agent
    assert [(p.state, p.linkedid, p.started_at, p.ended_at)
            for p in (await rig.periods(sleepy_id))[1:3]] == [
        ("ringing", call.linkedid, called[0].at, missed[0].at),
        ("available", None, missed[0].at, None)]
    taken = rig.events(ev.AgentConnected, interface="PJSIP/1002")
    assert [(p.state, p.linkedid) for p in (await rig.periods(awake_id))[1:4]] == [
        ("ringing", call.linkedid), ("on_call", call.linkedid),
        ("after_call_work", call.linkedid)]
    assert len(taken) == 1 and taken[0].linkedid == call.linkedid
