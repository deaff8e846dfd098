"""Restarts: Asterisk's (``persistentmembers = no`` empties the queues: the service adds the
logged-in agents back and says so) and the service's (state rebuilt from ``QueueStatus``,
the open period continues)."""

from __future__ import annotations

import asyncio

from callcenter.queues.listeners import AgentStateListener
from callcenter.queues.service import RESTORED_TOPIC, Skill
from callcenter.telephony import events as ev
from callcenter.telephony.service import Telephony
from tests.queues.conftest import Rig, make_agent

PHONE = "PJSIP/1001"


async def test_after_an_asterisk_restart_logged_in_agents_are_added_back_with_their_pause(
        rig: Rig) -> None:
    restored = await rig.bus.subscribe(RESTORED_TOPIC).open()
    user, agent_id = await make_agent(rig.service, extension="1001", skills=[
        Skill("hotline", 5), Skill("hotline-en", 4)])
    other, other_id = await make_agent(rig.service, extension="1002",
                                       skills=[Skill("hotline", 3)])
    await rig.call(user, "POST", "/agents/me/login", {})
    await rig.call(other, "POST", "/agents/me/login", {})
    await rig.next_state(agent_id, "available")
    await rig.call(user, "POST", "/agents/me/pause", {"reason": "training"})
    await rig.next_state(agent_id, "paused")
    await rig.call(other, "POST", "/agents/me/logout", {})
    await rig.next_state(other_id, "logged_out")

    await rig.sim.restart(down_for=0.5)
    _, said = await restored.get(timeout=15)
    assert said["agents"] == [{"agent_id": agent_id, "interface": PHONE,
                               "queues": ["hotline", "hotline-en"],
                               "paused_reason": "training"}]
    lost = await rig.next_state(agent_id, "logged_out")
    await rig.next_state(agent_id, "paused", reason="training")
    queues = rig.sim.pbx.queues.queues
    assert [(q, queues[q].members[PHONE].paused, queues[q].members[PHONE].reason_paused,
             queues[q].members[PHONE].penalty) for q in ("hotline", "hotline-en")] == [
        ("hotline", True, "training", 0), ("hotline-en", True, "training", 1)]
    assert "PJSIP/1002" not in queues["hotline"].members  # logged out: not added back
    snapshot = [e for e in rig.seen if isinstance(e, ev.QueuesSnapshot)][-1]
    assert lost["since"] == snapshot.at.isoformat()
    await rig.listener.flush()
    periods = [(p.state, p.reason) for p in await rig.periods(agent_id)]
    # QueueAdd takes no reason: added paused (never rung), then QueuePause gives the reason
    assert periods[-3:] == [("paused", "training"), ("paused", None), ("paused", "training")]
    last_two = (await rig.periods(agent_id))[-2:]
    assert last_two[0].ended_at == last_two[1].started_at


async def test_a_service_restart_continues_the_open_period_from_queue_status(rig: Rig) -> None:
    user, agent_id = await make_agent(rig.service, extension="1001",
                                      skills=[Skill("hotline", 5)])
    await rig.call(user, "POST", "/agents/me/login", {})
    await rig.next_state(agent_id, "available")
    await rig.call(user, "POST", "/agents/me/pause", {"reason": "meal"})
    await rig.next_state(agent_id, "paused")
    await rig.listener.flush()
    before = await rig.periods(agent_id)
    # the service stops; Asterisk keeps the member paused; a new process starts
    await rig.telephony.stop()
    await rig.listener.stop()
    telephony = Telephony(rig.telephony.ami.config, rig.telephony.agi.config, None,
                          rig.service.clock)
    listener = AgentStateListener(rig.service, telephony.commands)
    await listener.start()
    assert listener.board.state(PHONE).state == "paused"
    synced = asyncio.Event()
    telephony.add_listener(listener)
    telephony.add_listener(lambda e: isinstance(e, ev.QueuesSnapshot) and synced.set())
    await telephony.start()
    try:
        await asyncio.wait_for(synced.wait(), 10)
        await listener.flush()
        after = await rig.periods(agent_id)
        assert [(p.id, p.state, p.reason, p.started_at, p.ended_at) for p in after] == [
            (p.id, p.state, p.reason, p.started_at, p.ended_at) for p in before]
        assert after[-1].ended_at is None and after[-1].state == "paused"
        await rig.service.unpause(telephony.commands, agent_id)
        await rig.next_state(agent_id, "available")
        await listener.flush()
        closed = (await rig.periods(agent_id))[-2]
        assert closed.id == before[-1].id and closed.ended_at is not None
    finally:
        await telephony.stop()
        await listener.stop()
