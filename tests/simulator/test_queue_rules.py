"""Queue rules without a capture: AgentDump, joinempty/leavewhenempty, Redirect out of a
queue bridge. Expected behaviour is read from apps/app_queue.c (Asterisk 22): try_calling()
for AgentDump, parse_empty_options()/get_member_status() for the empty rules, and
ast_async_goto() + the basic bridge's dissolve-on-leave for Redirect."""

from __future__ import annotations

from callcenter.simulator import Agent, Caller, Simulator
from callcenter.simulator.captures import AmiMessage, parse_raw
from callcenter.simulator.queues import empty_conditions

from .support import CAPTURES, SNAPSHOT, FastAgiServer, RawAmiClient, ami_login, role


async def ended(client: RawAmiClient, channel: str) -> None:
    """The caller's Cdr is the last event of a call on its channel."""
    await client.wait_for(lambda m: m.get("Event") == "Cdr" and m.get("Channel") == channel)


def events(client: RawAmiClient) -> list[AmiMessage]:
    return [m for m in parse_raw(client.raw) if m.is_event]


def capture_fields(event: str) -> list[str]:
    """The fields of `event` as the real Asterisk sent them (queue_call capture)."""
    for m in parse_raw(CAPTURES / "queue_call.raw"):
        if m.get("Event") == event:
            return [k for k in m.keys() if k not in ("Timestamp",)]
    raise AssertionError(f"{event} not in the capture")


async def test_member_hanging_up_during_announcement_is_agent_dump(
    hotline_sim: Simulator, ivr: FastAgiServer
) -> None:
    sim = hotline_sim
    queue = sim.queues["hotline"]
    queue.memberdelay = 3  # queues.conf memberdelay: the member waits 3 s before connecting
    client = await ami_login(sim)
    sim.add_agent(
        "PJSIP/1001", Agent(answer_after=1, hangup_after_answer=1), queues=["hotline"], login=True
    )
    sim.add_agent("PJSIP/1002", Agent(answer_after=1), queues=["hotline"], login=True)
    call = sim.place_call("13900000010", behaviour=Caller(talk_time=4))
    await call.ended
    await ended(client, call.name)
    msgs = events(client)
    seq = [
        (m.name, m.get("Interface") or m.get("DialStatus") or "")
        for m in msgs
        if m.name
        in ("AgentCalled", "DialEnd", "AgentDump", "AgentConnect", "QueueCallerJoin")
        + ("QueueCallerLeave",)
    ]
    assert seq == [
        ("QueueCallerJoin", ""),
        ("AgentCalled", "PJSIP/1001"),
        ("DialEnd", "ANSWER"),
        ("AgentDump", "PJSIP/1001"),
        ("DialEnd", "NOANSWER"),  # ast_hangup_cause_to_dial_status(16)
        ("AgentCalled", "PJSIP/1002"),  # the caller stayed in the queue: next member
        ("DialEnd", "ANSWER"),
        ("QueueCallerLeave", ""),
        ("AgentConnect", "PJSIP/1002"),
    ]
    dump = next(m for m in msgs if m.name == "AgentDump")
    # same blob keys as AgentCalled: caller snapshot, member snapshot, Queue/Interface/MemberName
    fields = [k for k in dump.keys() if k != "Timestamp"]
    assert fields == capture_fields("AgentCalled")
    assert fields[2:16] == SNAPSHOT
    assert dump.get("Channel") == call.name and role(dump.get("DestChannel") or "") == "PJSIP/1001"
    assert dump.get("Queue") == "hotline" and dump.get("MemberName") == "PJSIP/1001"
    # the dumping member's channel is hung up right after
    agent_hangup = next(
        m for m in msgs if m.name == "Hangup" and role(m.get("Channel") or "") == "PJSIP/1001"
    )
    assert msgs.index(agent_hangup) > msgs.index(dump)
    assert call.variables.get("ABANDONED") is None
    await client.close()


def test_empty_options_follow_parse_empty_options() -> None:
    # the asymmetry of app_queue: yes/no mean opposite things for join and leave
    assert empty_conditions("yes", joining=True) == frozenset()
    assert empty_conditions("no", joining=False) == frozenset()
    assert empty_conditions("no", joining=True) == {"penalty", "invalid", "paused"}
    assert empty_conditions("yes", joining=False) == {"penalty", "invalid", "paused"}
    assert empty_conditions("strict", joining=True) == {
        "penalty",
        "invalid",
        "paused",
        "unavailable",
    }
    assert empty_conditions("loose", joining=False) == {"penalty", "invalid"}
    assert empty_conditions("paused,unavailable", joining=True) == {"paused", "unavailable"}


async def test_joinempty_refuses_a_caller_without_events(
    hotline_sim: Simulator, ivr: FastAgiServer
) -> None:
    sim = hotline_sim
    queue = sim.queues["hotline"]
    queue.joinempty = "unavailable,paused"
    client = await ami_login(sim)
    sim.add_agent("PJSIP/1001", Agent(), queues=["hotline"], login=True)
    sim.pbx.queues.set_paused("hotline", "PJSIP/1001", "lunch", True)
    call = sim.place_call("13900000011", behaviour=Caller(talk_time=3))
    await call.ended
    await ended(client, call.name)
    names = [m.name for m in events(client) if m.get("Channel") == call.name]
    assert "QueueCallerJoin" not in names and "QueueCallerLeave" not in names
    status = [
        m.get("Value")
        for m in events(client)
        if m.name == "VarSet" and m.get("Variable") == "QUEUESTATUS"
    ]
    assert status == ["JOINEMPTY"]
    # the hotline's own rule (joinempty = yes) lets the caller wait for a paused agent
    queue.joinempty = "yes"
    sim.pbx.queues.set_paused("hotline", "PJSIP/1001", "", False)
    second = sim.place_call("13900000012", behaviour=Caller(talk_time=2))
    await second.ended
    await ended(client, second.name)
    assert any(m.name == "AgentConnect" and m.get("Channel") == second.name for m in events(client))
    await client.close()


async def test_leavewhenempty_takes_waiting_callers_out(
    hotline_sim: Simulator, ivr: FastAgiServer
) -> None:
    sim = hotline_sim
    queue = sim.queues["hotline"]
    queue.leavewhenempty = "unavailable"
    client = await ami_login(sim)
    sim.add_agent("PJSIP/1001", Agent(mode="never"), queues=["hotline"], login=True)
    call = sim.place_call("13900000013", behaviour=Caller(talk_time=3))
    await client.wait_for(
        lambda m: m.get("Event") == "AgentCalled" and m.get("Channel") == call.name
    )
    sim.remove_agent("PJSIP/1001")  # the softphone unregisters: UNAVAILABLE, queue empty
    await call.ended
    await ended(client, call.name)
    mine = [m for m in events(client) if m.get("Channel") == call.name]
    names = [m.name for m in mine]
    assert names.index("QueueCallerAbandon") < names.index("QueueCallerLeave")
    status = [m.get("Value") for m in mine if m.get("Variable") == "QUEUESTATUS"]
    assert status == ["LEAVEEMPTY"]
    # leavewhenempty = no (the hotline's setting) never takes a caller out
    assert empty_conditions("no", joining=False) == frozenset()
    assert not queue.empty_by("no", joining=False)
    await client.close()


async def test_redirect_takes_the_caller_out_of_the_queue_bridge(
    hotline_sim: Simulator, ivr: FastAgiServer
) -> None:
    sim = hotline_sim
    client = await ami_login(sim)
    sim.add_agent("PJSIP/1001", Agent(answer_after=1), queues=["hotline"], login=True)
    sim.add_agent("PJSIP/1002", Agent(answer_after=1), queues=["hotline-en"], login=True)
    call = sim.place_call("13900000014", behaviour=Caller(talk_time=None, max_duration=60))
    await call.wait_bridged()
    # a blind transfer by the service: the caller goes to the English queue
    resp = await client.action(
        "Redirect", Channel=call.name, Context="from-pstn", Exten="12345001", Priority="1"
    )
    assert (resp.get("Response"), resp.get("Message")) == ("Success", "Redirect successful")
    connect2 = await client.wait_for(
        lambda m: m.get("Event") == "AgentConnect" and m.get("Queue") == "hotline-en"
    )
    assert connect2.get("Channel") == call.name
    msgs = events(client)
    first_bridge = [
        (m.name, role(m.get("Channel") or ""))
        for m in msgs
        if m.name in ("BridgeLeave", "BridgeDestroy", "Hangup")
    ][:4]
    assert first_bridge == [
        ("BridgeLeave", "PJSIP/trunk"),  # the redirected channel leaves first
        ("BridgeLeave", "PJSIP/1001"),  # the basic bridge dissolves
        ("BridgeDestroy", ""),
        ("Hangup", "PJSIP/1001"),  # the member's leg has nowhere to go
    ]
    mine = [m for m in msgs if m.get("Channel") == call.name]
    after = mine[[m.name for m in mine].index("BridgeLeave") :]
    newexten = next(m for m in after if m.name == "Newexten")
    assert (newexten.get("Exten"), newexten.get("Application")) == ("12345001", "Answer")
    # no AgentComplete at the redirect: app_queue sends it when the caller hangs up
    assert not any(m.name == "AgentComplete" and m.get("Queue") == "hotline" for m in msgs)
    call.hangup()
    await call.ended
    await ended(client, call.name)
    first = await client.wait_for(
        lambda m: m.get("Event") == "AgentComplete" and m.get("Queue") == "hotline"
    )
    assert (first.get("Reason"), first.get("DestChannel")) == ("caller", None)
    await client.close()


async def test_redirect_of_a_waiting_caller_and_of_a_ringing_member(
    hotline_sim: Simulator, ivr: FastAgiServer
) -> None:
    sim = hotline_sim
    client = await ami_login(sim)
    sim.add_agent("PJSIP/1001", Agent(mode="never"), queues=["hotline"], login=True)
    sim.add_agent("PJSIP/1002", Agent(answer_after=1), queues=["hotline-en"], login=True)
    call = sim.place_call("13900000015", behaviour=Caller(talk_time=3))
    called = await client.wait_for(
        lambda m: m.get("Event") == "AgentCalled" and m.get("Channel") == call.name
    )
    # the ringing member's leg runs no dialplan: Asterisk would masquerade it (not modelled)
    member = called.get("DestChannel") or ""
    resp = await client.action(
        "Redirect", Channel=member, Context="agents", Exten="1002", Priority="1"
    )
    assert (resp.get("Response"), resp.get("Message")) == ("Error", "Redirect failed")
    # the waiting caller: Queue sees the async goto as a hang-up (abandon, CANCEL to the
    # member), then the PBX goes on at the new place without any hang-up request event
    resp = await client.action(
        "Redirect", Channel=call.name, Context="from-pstn", Exten="12345001", Priority="1"
    )
    assert resp.get("Message") == "Redirect successful"
    await call.ended
    await ended(client, call.name)
    mine = [m for m in events(client) if m.get("Channel") == call.name]
    names = [m.name for m in mine]
    moved = names.index("QueueCallerAbandon")
    assert names[moved + 1] == "QueueCallerLeave"
    assert "HangupRequest" not in names[:moved] and "SoftHangupRequest" not in names[:moved]
    dial_end = next(
        m for m in events(client) if m.name == "DialEnd" and m.get("DestChannel") == member
    )
    assert dial_end.get("DialStatus") == "CANCEL"
    after = [(m.name, m.get("Queue") or m.get("Exten")) for m in mine[moved:]]
    assert ("QueueCallerJoin", "hotline-en") in after
    assert ("AgentConnect", "hotline-en") in after
    await client.close()


async def test_caller_hanging_up_during_member_announcement_is_abandon(
    hotline_sim: Simulator, ivr: FastAgiServer
) -> None:
    sim = hotline_sim
    sim.queues["hotline"].memberdelay = 5
    client = await ami_login(sim)
    sim.add_agent("PJSIP/1001", Agent(answer_after=1), queues=["hotline"], login=True)
    call = sim.place_call("13900000016", behaviour=Caller(talk_time=10))
    await client.wait_for(lambda m: m.get("Event") == "DialEnd" and m.get("DialStatus") == "ANSWER")
    call.hangup()  # "Caller was about to talk to agent ... but the caller hungup"
    await call.ended
    await ended(client, call.name)
    seq = [
        (m.name, m.get("DialStatus") or role(m.get("Channel") or ""))
        for m in events(client)
        if m.name in ("QueueCallerAbandon", "DialEnd", "Hangup", "QueueCallerLeave", "AgentDump")
        and (m.get("Channel") == call.name or m.name == "Hangup")
    ]
    assert seq == [
        ("DialEnd", "ANSWER"),
        ("QueueCallerAbandon", "PJSIP/trunk"),  # record_abandoned()
        ("DialEnd", "NOANSWER"),  # ast_channel_publish_dial() with the member's cause
        ("Hangup", "PJSIP/1001"),
        ("QueueCallerLeave", "PJSIP/trunk"),
        ("Hangup", "PJSIP/trunk"),
    ]
    assert not any(m.name == "AgentConnect" for m in events(client))
    await client.close()


async def test_member_of_two_queues_is_rung_for_one_caller_at_a_time(
    capture_sim: Simulator,
) -> None:
    """Two callers reach two queues in the same instant; their only member is rung for one
    of them, the other waits (app_queue's pending_members is keyed by interface)."""
    sim = capture_sim
    for name in ("support", "support-slow"):
        for member in list(sim.queues[name].members):
            sim.pbx.queues.set_paused(name, member, "test", True)  # the rig's Local members
    client = await ami_login(sim, "cc")
    sim.add_agent(
        "PJSIP/1001", Agent(answer_after=1), queues=["support", "support-slow"], login=True
    )
    first = sim.place_call("13900000017", "s", "queue-test", Caller(talk_time=3))
    second = sim.place_call("13900000018", "slow", "queue-test", Caller(talk_time=3))
    await first.ended
    await second.ended
    await client.wait_for(lambda m: m.get("Event") == "Cdr" and m.get("Channel") == second.name)
    rings = [
        m.name
        for m in events(client)
        if m.name in ("AgentCalled", "DialEnd")
        and (m.get("DestChannel") or "").startswith("PJSIP/1001-")
    ]
    assert rings == ["AgentCalled", "DialEnd", "AgentCalled", "DialEnd"]
    connects = [m.get("Queue") for m in events(client) if m.name == "AgentConnect"]
    assert sorted(connects) == ["support", "support-slow"]
    await client.close()


async def test_busy_member_then_the_next_one_at_once(
    hotline_sim: Simulator, ivr: FastAgiServer
) -> None:
    """rrmemory (one member at a time): a busy member is followed by the next one in the same
    attempt, without waiting `retry` seconds (ring_one() in wait_for_answer())."""
    sim = hotline_sim
    sim.queues["hotline"].retry = 1000  # waiting `retry` would show as a hold time of ~1000 s
    client = await ami_login(sim)
    sim.add_agent("PJSIP/1001", Agent(mode="busy"), queues=["hotline"], login=True)
    sim.add_agent("PJSIP/1002", Agent(answer_after=2), queues=["hotline"], login=True)
    call = sim.place_call("13900000019", behaviour=Caller(talk_time=3))
    await call.ended
    await ended(client, call.name)
    msgs = events(client)
    seq = [
        (m.name, m.get("Interface") or m.get("DialStatus") or "")
        for m in msgs
        if m.name in ("AgentCalled", "AgentRingNoAnswer", "DialEnd", "AgentConnect")
    ]
    assert seq == [
        ("AgentCalled", "PJSIP/1001"),
        ("DialEnd", "BUSY"),
        ("AgentRingNoAnswer", "PJSIP/1001"),
        ("AgentCalled", "PJSIP/1002"),
        ("DialEnd", "ANSWER"),
        ("AgentConnect", "PJSIP/1002"),
    ]
    connect = next(m for m in msgs if m.name == "AgentConnect")
    assert int(connect.get("HoldTime") or 0) < 100  # no retry pause in between
    await client.close()


async def test_redirect_of_the_member_leg_gives_it_a_dialplan(
    hotline_sim: Simulator, ivr: FastAgiServer
) -> None:
    """The member's leg has no PBX of its own: redirected out of the queue bridge it gets one
    at the target (an after-bridge goto); the caller's Queue() ends and the caller hangs up."""
    sim = hotline_sim
    client = await ami_login(sim)
    sim.add_agent("PJSIP/1001", Agent(answer_after=1), queues=["hotline"], login=True)
    call = sim.place_call("13900000022", behaviour=Caller(talk_time=60))
    await call.wait_bridged()
    agent = next(c.name for c in sim.channels if c.name.startswith("PJSIP/1001-"))
    resp = await client.action(
        "Redirect", Channel=agent, Context="revisit", Exten="s", Priority="1"
    )
    assert resp.get("Message") == "Redirect successful"
    await call.ended
    await client.wait_for(lambda m: m.get("Event") == "Hangup" and m.get("Channel") == agent)
    msgs = events(client)
    mine = [m for m in msgs if m.get("Channel") == agent]
    apps = [m.get("Application") for m in mine if m.name == "Newexten"]
    assert apps[-4:] == ["NoOp", "MixMonitor", "AGI", "Hangup"]  # revisit, on the agent leg
    bridge = [(m.name, role(m.get("Channel") or "")) for m in msgs if m.name.startswith("Bridge")]
    assert bridge[-3:] == [
        ("BridgeLeave", "PJSIP/1001"),
        ("BridgeLeave", "PJSIP/trunk"),
        ("BridgeDestroy", ""),
    ]
    caller_end = [
        m.name for m in msgs if m.get("Channel") == call.name and m.name != "AgentComplete"
    ][-3:]
    assert caller_end == ["SoftHangupRequest", "Hangup", "Cdr"]
    # handle_hangup(): the caller's hang-up ends the queue call for app_queue
    complete = await client.wait_for(lambda m: m.get("Event") == "AgentComplete")
    assert (complete.get("Channel"), complete.get("Reason")) == (call.name, "caller")
    await client.close()


async def test_dual_redirect_moves_both_legs(hotline_sim: Simulator, ivr: FastAgiServer) -> None:
    sim = hotline_sim
    client = await ami_login(sim)
    sim.add_agent("PJSIP/1001", Agent(answer_after=1), queues=["hotline"], login=True)
    sim.add_agent("PJSIP/1002", Agent(answer_after=1), queues=["hotline-en"], login=True)
    call = sim.place_call("13900000023", behaviour=Caller(talk_time=None, max_duration=60))
    await call.wait_bridged()
    agent = next(c.name for c in sim.channels if c.name.startswith("PJSIP/1001-"))
    base = {"Channel": call.name, "Context": "from-pstn", "Exten": "12345001", "Priority": "1"}
    errors = [
        ({"ExtraChannel": "PJSIP/nobody-1", "ExtraContext": "revisit"}, "ExtraExten not specified"),
        (
            {"ExtraChannel": "PJSIP/nobody-1", "ExtraContext": "revisit", "ExtraExten": "s"},
            "ExtraPriority not specified",
        ),
        ({"ExtraChannel": "PJSIP/nobody-1"}, "ExtraChannel does not exist: PJSIP/nobody-1"),
    ]
    for extra, message in errors:
        resp = await client.action("Redirect", **base, **extra)
        assert (resp.get("Response"), resp.get("Message")) == ("Error", message)
    resp = await client.action(
        "Redirect",
        **base,
        ExtraChannel=agent,
        ExtraContext="revisit",
        ExtraExten="s",
        ExtraPriority="1",
    )
    assert (resp.get("Response"), resp.get("Message")) == ("Success", "Dual Redirect successful")
    await client.wait_for(
        lambda m: m.get("Event") == "AgentConnect" and m.get("Queue") == "hotline-en"
    )
    await client.wait_for(
        lambda m: (
            m.get("Event") == "Newexten"
            and m.get("Channel") == agent
            and m.get("Context") == "revisit"
        )
    )
    call.hangup()
    await call.ended
    await ended(client, call.name)
    await client.close()
