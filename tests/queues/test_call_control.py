"""Call control from the agent desk, against the simulator over AMI: a blind transfer of the
agent's answered call (to an agent's phone, to a queue) is reported as Asterisk 22 reports
one (captures/blind_transfer), a hang-up ends the call, every action is audited, and there is
nothing to act on without an answered call or without the phone system."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from callcenter.auth.models import AuditLog
from callcenter.auth.users import principal_for
from callcenter.queues.callcontrol import CallControl, Target
from callcenter.queues.errors import TelephonyUnavailable
from callcenter.queues.screenpop import ScreenPopListener
from callcenter.queues.service import Skill
from callcenter.simulator.actors import Agent, Caller
from callcenter.telephony import events as ev
from callcenter.telephony.protocol import parse_stream
from tests.queues.conftest import Rig, logged_in_agent, make_agent, queues_config

PHONE, OTHER = "PJSIP/1001", "PJSIP/1002"
CALLER = "13800138000"
TRANSFER_EVENTS = ("Unhold", "VarSet", "VarSet", "VarSet", "BlindTransfer", "AgentComplete")


async def next_pop(subscription: Any, phase: str) -> dict[str, Any]:
    async with asyncio.timeout(15):
        while True:
            _, payload = await subscription.get()
            if payload["phase"] == phase:
                return payload


def fields(text: str) -> dict[str, str]:
    pairs = (line.partition(":") for line in text.splitlines() if ":" in line)
    return {key: value.strip() for key, _, value in pairs}


def captured_transfer(captures_dir: Path) -> list[dict[str, str]]:
    """The events of the AMI BlindTransfer (call 1), from the transferer's Unhold to
    app_queue's AgentComplete."""
    events = list(parse_stream((captures_dir / "blind_transfer.raw").read_bytes()))
    end = next(i for i, e in enumerate(events) if e.get("Event") == "BlindTransfer") + 1
    return [dict(e) for e in events[end - 5:end + 1]]


async def answered_call(rig: Rig, pops: ScreenPopListener, *, talk_time: float = 40.0
                        ) -> tuple[Any, int, Any, dict[str, Any]]:
    """Agent 1001 (hotline-en) answers a caller; returns (user, agent id, call, pop)."""
    rig.sim.add_agent(PHONE, Agent(name="Agent 1001", answer_after=1.0))
    user, agent_id = await make_agent(rig.service, extension="1001",
                                      skills=[Skill("hotline-en", 5)])
    subscription = await rig.bus.subscribe(f"queues.screen_pop.{agent_id}").open()
    await rig.call(user, "POST", "/agents/me/login", {})
    await rig.next_state(agent_id, "available")
    call = rig.sim.place_call(CALLER, exten="12345001", behaviour=Caller(talk_time=talk_time))
    answered = await next_pop(subscription, "answered")
    return user, agent_id, call, {"subscription": subscription, "pop": answered}


async def audit(rig: Rig, action: str) -> list[tuple[int, str | None, list[str]]]:
    async with rig.service.sessionmaker() as session:
        rows = await session.scalars(select(AuditLog).where(AuditLog.action == action))
        return [(r.user_id, r.object_id, list(r.fields)) for r in rows]


async def test_blind_transfer_to_an_agent_is_reported_as_asterisk_reports_it(
        rig: Rig, pops: ScreenPopListener, captures_dir: Path) -> None:
    rig.sim.add_agent(OTHER, Agent(name="Agent 1002", answer_after=1.0))
    user, agent_id, call, live = await answered_call(rig, pops)
    log = rig.sim.record_events()
    gone = asyncio.Event()
    rig.telephony.add_listener(lambda e: isinstance(e, ev.ChannelHungUp)
                               and e.channel == call.name and gone.set())

    done = await rig.call(user, "POST", "/agents/me/call/blind-transfer",
                          {"extension": "1002"})
    assert done == {"linkedid": call.linkedid, "action": "blind_transfer",
                    "target": "extension:1002"}
    ended = await next_pop(live["subscription"], "ended")
    await rig.next_state(agent_id, "after_call_work")
    await asyncio.wait_for(gone.wait(), 15)

    ours = [(name, fields(text)) for name, text in log.events]
    start = next(i for i, (name, _) in enumerate(ours) if name == "Unhold")
    sent = ours[start:start + len(TRANSFER_EVENTS)]
    expected = captured_transfer(captures_dir)
    assert [name for name, _ in sent] == [e["Event"] for e in expected] == list(
        TRANSFER_EVENTS)
    for (_, mine), theirs in zip(sent, expected, strict=True):
        assert list(mine) == list(theirs)
    assert [(f["Variable"], f["Value"]) for name, f in sent if name == "VarSet"] == [
        ("BLINDTRANSFER", call.name), ("BLINDTRANSFER", sent[0][1]["Channel"]),
        ("BRIDGEPEER", "")]
    transfer = sent[4][1]
    assert (transfer["Result"], transfer["IsExternal"], transfer["Context"],
            transfer["Extension"]) == ("Success", "Yes", "agents", "1002")
    assert (transfer["TransfererChannel"], transfer["TransfereeChannel"]) == (
        sent[0][1]["Channel"], call.name)

    completed = rig.events(ev.AgentCompleted, interface=PHONE)
    assert [(c.reason, c.linkedid) for c in completed] == [("transfer", call.linkedid)]
    assert ended["ended_at"] == completed[0].at.isoformat()
    [moved] = rig.events(ev.CallTransferred, linkedid=call.linkedid)
    assert (moved.kind, moved.success, moved.target) == ("blind", True, "1002@agents")
    hangups = rig.events(ev.ChannelHungUp)
    assert [h.cause for h in hangups if h.channel == sent[0][1]["Channel"]] == [16]
    assert any(e.channel.startswith(OTHER + "-") for e in rig.events(ev.ChannelHungUp)
               if e.linkedid == call.linkedid)
    assert await audit(rig, "call.blind_transfer") == [
        (user.id, call.linkedid, ["extension:1002"])]


async def test_a_call_transferred_to_an_agents_phone_pops_up_with_who_passed_it_on(
        rig: Rig, pops: ScreenPopListener) -> None:
    other, other_id = await logged_in_agent(rig, OTHER, "hotline",
                                            Agent(name="Agent 1002", answer_after=2.0))
    theirs = await rig.bus.subscribe(f"queues.screen_pop.{other_id}").open()
    user, agent_id, call, live = await answered_call(rig, pops)
    async with rig.service.sessionmaker() as session:
        passer = (await rig.service.agent(session, agent_id)).member_name

    await rig.call(user, "POST", "/agents/me/call/blind-transfer", {"extension": "1002"})
    offered = await next_pop(theirs, "offered")
    answered = await next_pop(theirs, "answered")
    now = (await rig.call(other, "GET", "/agents/me/call"))["call"]
    ended = await next_pop(theirs, "ended")

    assert (offered["linkedid"], offered["queue"], offered["transferred_by"]) == (
        call.linkedid, "hotline-en", passer)
    assert offered["caller"]["number"] == CALLER
    assert offered["ivr"] == live["pop"]["ivr"]
    assert (now["linkedid"], now["transferred_by"]) == (call.linkedid, passer)
    [dial] = [d for d in rig.events(ev.DialEnded, linkedid=call.linkedid)
              if d.dest_channel.startswith(OTHER + "-")]
    assert (dial.dial_status, answered["answered_at"]) == ("ANSWER", dial.at.isoformat())
    [gone] = [h for h in rig.events(ev.ChannelHungUp) if h.channel == dial.dest_channel]
    assert ended["ended_at"] == gone.at.isoformat()
    assert live["pop"]["transferred_by"] is None


async def consulting(rig: Rig, pops: ScreenPopListener, *, answer: bool = True
                     ) -> tuple[Any, int, Any, dict[str, Any], Any, int, Any]:
    """Agent 1001's answered call, an attended transfer to 1002 asked: the consultation
    rings 1002's phone (answered after 1 s unless ``answer`` is False)."""
    other, other_id = await logged_in_agent(
        rig, OTHER, "hotline",
        Agent(name="Agent 1002", answer_after=1.0, mode="answer" if answer else "never"))
    theirs = await rig.bus.subscribe(f"queues.screen_pop.{other_id}").open()
    user, agent_id, call, live = await answered_call(rig, pops, talk_time=120.0)
    done = await rig.call(user, "POST", "/agents/me/call/attended-transfer",
                          {"extension": "1002"})
    assert done == {"linkedid": call.linkedid, "action": "attended_transfer",
                    "target": "extension:1002"}
    return user, agent_id, call, live, other, other_id, theirs


async def test_an_attended_transfer_consults_the_target_then_hands_the_caller_over(
        rig: Rig, pops: ScreenPopListener) -> None:
    user, agent_id, call, live, other, other_id, theirs = await consulting(rig, pops)
    offered = await next_pop(theirs, "offered")
    async with rig.service.sessionmaker() as session:
        passer = (await rig.service.agent(session, agent_id)).member_name
    assert (offered["linkedid"], offered["transferred_by"]) == (call.linkedid, passer)
    await next_pop(theirs, "answered")
    [held] = rig.events(ev.HoldStarted, linkedid=call.linkedid)
    assert held.channel.startswith(PHONE + "-")

    done = await rig.call(user, "POST", "/agents/me/call/attended-transfer/complete")
    assert done["action"] == "attended_transfer_complete"
    await next_pop(live["subscription"], "ended")
    await rig.next_state(agent_id, "after_call_work")
    moved = await rig.seen_event(ev.CallTransferred, linkedid=call.linkedid)
    assert (moved.kind, moved.success, moved.transferer_channel) == (
        "attended", True, held.channel)
    completed = rig.events(ev.AgentCompleted, interface=PHONE)
    assert [(c.reason, c.linkedid) for c in completed] == [("transfer", call.linkedid)]
    assert (await rig.call(other, "GET", "/agents/me/call"))["call"]["phase"] == "answered"
    assert not call.ended.done()  # the caller talks to 1002 now
    await rig.telephony.commands.hangup(call.name)
    assert (await next_pop(theirs, "ended"))["linkedid"] == call.linkedid
    assert [a[2] for a in await audit(rig, "call.attended_transfer")] == [["extension:1002"]]
    assert [a[1] for a in await audit(rig, "call.attended_transfer_complete")] == [
        call.linkedid]


async def test_cancelling_an_attended_transfer_brings_the_agent_back_to_the_caller(
        rig: Rig, pops: ScreenPopListener) -> None:
    user, agent_id, call, live, other, other_id, theirs = await consulting(rig, pops)
    await next_pop(theirs, "answered")

    done = await rig.call(user, "POST", "/agents/me/call/attended-transfer/cancel")
    assert done["action"] == "attended_transfer_cancel"
    assert (await next_pop(theirs, "ended"))["linkedid"] == call.linkedid
    resumed = await rig.seen_event(ev.HoldEnded, linkedid=call.linkedid)
    assert resumed.channel.startswith(PHONE + "-")
    assert rig.events(ev.CallTransferred, linkedid=call.linkedid) == []
    assert rig.events(ev.AgentCompleted, interface=PHONE) == []
    assert (await rig.call(user, "GET", "/agents/me/call"))["call"]["phase"] == "answered"
    assert [a[1] for a in await audit(rig, "call.attended_transfer_cancel")] == [
        call.linkedid]


async def test_completing_or_cancelling_without_a_consultation_is_refused(
        rig: Rig, pops: ScreenPopListener) -> None:
    user, agent_id, call, live = await answered_call(rig, pops, talk_time=60.0)
    for action in ("complete", "cancel"):
        refused = await rig.call(user, "POST", f"/agents/me/call/attended-transfer/{action}",
                                 expect=409)
        assert refused["error"]["code"] == "no_call"
    assert not call.ended.done()
    assert rig.events(ev.AgentCompleted, interface=PHONE) == []


async def test_a_phone_call_between_agents_outside_a_queue_call_pops_nothing(
        rig: Rig, pops: ScreenPopListener) -> None:
    other, other_id = await logged_in_agent(rig, OTHER, "hotline",
                                            Agent(name="Agent 1002", answer_after=1.0))
    call = rig.sim.place_call("1001", exten="1002", context="agents",
                              behaviour=Caller(talk_time=2.0))
    await asyncio.wait_for(call.ended, 15)
    await pops.flush()
    assert (await rig.call(other, "GET", "/agents/me/call"))["call"] is None


async def test_blind_transfer_to_a_queue_pops_the_same_call_for_its_agent(
        rig: Rig, pops: ScreenPopListener) -> None:
    other, other_id = await logged_in_agent(rig, OTHER, "hotline",
                                            Agent(name="Agent 1002", answer_after=1.0))
    theirs = await rig.bus.subscribe(f"queues.screen_pop.{other_id}").open()
    user, agent_id, call, live = await answered_call(rig, pops, talk_time=60.0)

    await rig.call(user, "POST", "/agents/me/call/blind-transfer", {"queue": "hotline"})
    offered = await next_pop(theirs, "offered")
    assert (offered["linkedid"], offered["queue"]) == (call.linkedid, "hotline")
    assert offered["caller"]["number"] == CALLER
    answered = await next_pop(theirs, "answered")
    assert answered["linkedid"] == call.linkedid
    assert (await next_pop(live["subscription"], "ended"))["linkedid"] == call.linkedid
    assert (await rig.call(other, "GET", "/agents/me/call"))["call"]["phase"] == "answered"
    joins = rig.events(ev.QueueCallerJoined, linkedid=call.linkedid)
    assert [j.queue for j in joins] == ["hotline-en", "hotline"]


async def test_hang_up_ends_the_agents_call_and_is_audited(
        rig: Rig, pops: ScreenPopListener) -> None:
    user, agent_id, call, live = await answered_call(rig, pops, talk_time=60.0)

    done = await rig.call(user, "POST", "/agents/me/call/hangup")
    assert done == {"linkedid": call.linkedid, "action": "hangup", "target": None}
    await asyncio.wait_for(call.ended, 15)
    await next_pop(live["subscription"], "ended")
    await rig.next_state(agent_id, "after_call_work")
    [completed] = rig.events(ev.AgentCompleted, interface=PHONE)
    assert completed.linkedid == call.linkedid
    assert await audit(rig, "call.hangup") == [(user.id, call.linkedid, [])]


async def test_no_answered_call_or_a_bad_target_is_refused_before_asterisk(
        rig: Rig, pops: ScreenPopListener) -> None:
    user, agent_id = await make_agent(rig.service, extension="1001",
                                      skills=[Skill("hotline-en", 5)])
    refused = await rig.call(user, "POST", "/agents/me/call/hangup", expect=409)
    assert refused["error"]["code"] == "no_call"
    rig.sim.add_agent(OTHER, Agent(name="Agent 1002", answer_after=1.0))
    user, agent_id, call, _ = await answered_call_for(rig, user, agent_id)
    for body, field in (({"queue": "nope"}, "queue"), ({"extension": "1001"}, "extension"),
                        ({"queue": "hotline", "extension": "1002"}, "queue")):
        answer = await rig.call(user, "POST", "/agents/me/call/blind-transfer", body,
                                expect=409)
        assert (answer["error"]["code"], answer["error"]["field"]) == (
            "rule_violation", field)
    control = CallControl(rig.service.sessionmaker, rig.service.clock, rig.service.config)
    with pytest.raises(TelephonyUnavailable):
        await control.hangup(None, principal_for(user), agent_id)
    assert await audit(rig, "call.blind_transfer") == []
    assert await audit(rig, "call.hangup") == []
    assert not call.ended.done()


async def answered_call_for(rig: Rig, user: Any, agent_id: int) -> tuple[Any, int, Any, None]:
    rig.sim.add_agent(PHONE, Agent(name="Agent 1001", answer_after=1.0))
    subscription = await rig.bus.subscribe(f"queues.screen_pop.{agent_id}").open()
    await rig.call(user, "POST", "/agents/me/login", {})
    call = rig.sim.place_call(CALLER, exten="12345001", behaviour=Caller(talk_time=60.0))
    await next_pop(subscription, "answered")
    return user, agent_id, call, None


def test_a_transfer_target_is_a_known_queue_or_another_phone() -> None:
    config = queues_config()
    assert Target(queue="hotline").dialplan(config, "1001") == ("queue-transfer", "hotline")
    assert Target(extension="1002").dialplan(config, "1001") == ("agents", "1002")
