"""AMI as Asterisk 22 speaks it: login (plain and MD5), permissions, every supported action
through a real client (panoramisk over TCP), and Asterisk's own error texts."""

from __future__ import annotations

import asyncio
import hashlib
import time

from panoramisk import Manager

from callcenter.simulator import Agent, Caller, Destination, Simulator
from callcenter.simulator.config import AmiUserConfig

from .support import FastAgiServer, RawAmiClient


async def _panoramisk(sim: Simulator) -> tuple[Manager, list]:
    events: list = []
    manager = Manager(
        host="127.0.0.1",
        port=sim.ami_port,
        username="callcenter",
        secret="CHANGE_ME",
        ping_delay=3600,
        loop=asyncio.get_running_loop(),
        reconnect_timeout=3600,
    )
    booted = asyncio.get_running_loop().create_future()

    def on_event(mgr, event):
        events.append(event)
        if event.event == "FullyBooted" and not booted.done():
            booted.set_result(event)

    manager.register_event("*", on_event)
    await manager.connect()
    await asyncio.wait_for(booted, 5)
    assert manager.authenticated
    return manager, events


async def test_panoramisk_runs_every_action(hotline_sim: Simulator) -> None:
    sim = hotline_sim
    agi = FastAgiServer(lambda r, w, e: asyncio.sleep(0))
    sim.config.agi_port = await agi.start()
    manager, events = await _panoramisk(sim)

    def send(action, **kw):
        return asyncio.wait_for(manager.send_action(action, **kw), 5)

    try:
        pong = await send({"Action": "Ping"})
        assert pong.ping == "Pong" and float(pong.timestamp) > 1e9
        assert (await send({"Action": "Events", "EventMask": "on"})).events == "On"
        add = await send(
            {
                "Action": "QueueAdd",
                "Queue": "hotline",
                "Interface": "PJSIP/1001",
                "MemberName": "Agent 1001",
                "Penalty": "1",
            },
            as_list=False,
        )
        assert add.message == "Added interface to queue"
        assert (
            await send(
                {
                    "Action": "QueuePenalty",
                    "Interface": "PJSIP/1001",
                    "Penalty": "0",
                    "Queue": "hotline",
                }
            )
        ).message == "Interface penalty set successfully"
        pause = await send(
            {
                "Action": "QueuePause",
                "Interface": "PJSIP/1001",
                "Paused": "true",
                "Reason": "lunch",
            },
            as_list=False,
        )
        assert pause.message == "Interface paused successfully"
        status = await send({"Action": "QueueStatus", "Queue": "hotline"})
        assert [m.event for m in status[1:]] == [
            "QueueParams",
            "QueueMember",
            "QueueStatusComplete",
        ]
        assert status[2].pausedreason == "lunch" and status[2].status == "5"  # not registered yet
        summary = await send({"Action": "QueueSummary"})
        assert [m.queue for m in summary[1:-1]] == ["hotline-en", "hotline"]
        await send(
            {"Action": "QueuePause", "Interface": "PJSIP/1001", "Paused": "false"}, as_list=False
        )
        sim.add_agent("PJSIP/1001", Agent(answer_after=1))
        # a callback: Originate the agent first, then the citizen (two legs, bridged)
        sim.add_destination("13800000000", Destination(answer_after=2, talk_time=30))
        orig = await send(
            {
                "Action": "Originate",
                "Channel": "PJSIP/1001",
                "Context": "callback",
                "Exten": "13800000000",
                "Priority": "1",
                "CallerID": "12345 <12345>",
                "Timeout": "20000",
                "Variable": ["TICKET=42", "UNIT=7"],
                "Async": "false",
            }
        )  # panoramisk 1.4 needs the header (PROTOCOL.md)
        assert orig.response == "Success" and orig.message == "Originate successfully queued"
        chans = await send({"Action": "CoreShowChannels"})
        assert chans[0].message == "Channels will follow"
        names = [m.channel for m in chans[1:-1]]
        assert any(n.startswith("PJSIP/1001-") for n in names)
        agent_chan = next(n for n in names if n.startswith("PJSIP/1001-"))
        getvar = await send({"Action": "Getvar", "Channel": agent_chan, "Variable": "TICKET"})
        assert getvar.value == "42"
        assert (
            await send({"Action": "Setvar", "Channel": agent_chan, "Variable": "X", "Value": "1"})
        ).message == "Variable Set"
        st = await send({"Action": "Status", "Channel": agent_chan})
        assert [m.event for m in st[1:]] == ["Status", "StatusComplete"]
        dtmf = await send(
            {"Action": "PlayDTMF", "Channel": agent_chan, "Digit": "5", "Async": "false"},
            as_list=False,
        )
        assert dtmf.message == "DTMF successfully queued"
        mix = await send({"Action": "MixMonitor", "Channel": agent_chan, "File": "cb.wav"})
        assert mix.response == "Success"
        assert (
            await send({"Action": "StopMixMonitor", "Channel": agent_chan})
        ).response == "Success"
        ue = await send({"Action": "UserEvent", "UserEvent": "TicketOpened", "Ticket": "42"})
        assert ue.message == "Event Sent"
        core = await send({"Action": "CoreStatus"})
        assert int(core.corecurrentcalls) == 1
        cmds = await send({"Action": "ListCommands"})
        assert "Originate" in cmds and "QueueAdd" in cmds
        # Redirect of the bridged agent leg (a transfer): it leaves the bridge, the citizen's
        # leg is hung up by Dial, the agent's leg dials again from the new place
        moved = await send(
            {
                "Action": "Redirect",
                "Channel": agent_chan,
                "Context": "callback",
                "Exten": "13800000000",
                "Priority": "1",
            }
        )
        assert moved.response == "Success" and moved.message == "Redirect successful"
        nofile = await send({"Action": "MixMonitor", "Channel": agent_chan})
        assert nofile.message == "Could not start monitoring channel"
        hang = await send({"Action": "Hangup", "Channel": agent_chan})
        assert hang.message == "Channel Hungup"
        await sim.wait_idle(10)
        # an async Originate answered and one to a busy number
        sim.add_destination("13900000000", Destination(mode="busy"))
        queued = await send(
            {
                "Action": "Originate",
                "Channel": "PJSIP/trunk/13900000000",
                "Context": "revisit",
                "Exten": "s",
                "Priority": "1",
                "Async": "true",
            }
        )
        assert isinstance(queued, list) and queued[0].message == "Originate successfully queued"
        assert queued[-1].event == "OriginateResponse" and queued[-1].reason == "5"
        rm = await send(
            {"Action": "QueueRemove", "Queue": "hotline", "Interface": "PJSIP/1001"}, as_list=False
        )
        assert rm.message == "Removed interface from queue"
        assert any(e.event == "UserEvent" and e.userevent == "TicketOpened" for e in events)
        assert any(e.event == "QueueMemberPenalty" for e in events)
    finally:
        manager.close()
        await agi.stop()


async def _raw(sim: Simulator, login: bool = True) -> RawAmiClient:
    client = RawAmiClient()
    await client.connect(sim.ami_port)
    if login:
        assert (await client.login("callcenter", "CHANGE_ME")).get("Response") == "Success"
    return client


async def test_error_texts_are_asterisks(hotline_sim: Simulator) -> None:
    client = await _raw(hotline_sim)
    cases = [
        (
            ("Frobnicate", {}),
            "Invalid/unknown command: Frobnicate."
            " Use Action: ListCommands to show available commands.",
        ),
        (("Originate", {}), "Channel not specified"),
        (("Originate", {"Channel": "nodash"}), "Invalid channel"),
        (("Originate", {"Channel": "PJSIP/1001", "Timeout": "abc"}), "Invalid timeout"),
        (
            (
                "Originate",
                {"Channel": "PJSIP/1001", "Exten": "9", "Context": "nowhere", "Priority": "1"},
            ),
            "Extension does not exist.",
        ),
        (
            ("Originate", {"Channel": "PJSIP/1001", "Exten": "s"}),
            "Originate with 'Exten' requires 'Context' and 'Priority'",
        ),
        (
            ("Originate", {"Channel": "PJSIP/nobody", "Application": "Wait", "Data": "1"}),
            "Originate failed",
        ),
        (("Hangup", {}), "No channel specified"),
        (("Hangup", {"Channel": "PJSIP/1001-00000099"}), "No such channel"),
        (("Getvar", {}), "No variable specified"),
        (("Setvar", {"Variable": "X", "Channel": "nope"}), "No such channel"),
        (("Redirect", {}), "Channel not specified"),
        (("Redirect", {"Channel": "x"}), "Context not specified"),
        (("Redirect", {"Channel": "x", "Context": "c"}), "Exten not specified"),
        (("Redirect", {"Channel": "x", "Context": "c", "Exten": "e"}), "Priority not specified"),
        (
            ("Redirect", {"Channel": "x", "Context": "c", "Exten": "e", "Priority": "1"}),
            "Channel does not exist: x",
        ),
        (("QueueAdd", {}), "'Queue' not specified."),
        (("QueueAdd", {"Queue": "hotline"}), "'Interface' not specified."),
        (
            ("QueueAdd", {"Queue": "nosuch", "Interface": "PJSIP/1001"}),
            "Unable to add interface to queue: No such queue",
        ),
        (("QueueRemove", {"Queue": "hotline"}), "Need 'Queue' and 'Interface' parameters."),
        (
            ("QueueRemove", {"Queue": "hotline", "Interface": "PJSIP/1009"}),
            "Unable to remove interface: Not there",
        ),
        (("QueuePause", {"Interface": "PJSIP/1001"}), "Need 'Interface' and 'Paused' parameters."),
        (("QueuePause", {"Interface": "PJSIP/1009", "Paused": "1"}), "Interface not found"),
        (
            ("QueuePenalty", {"Interface": "PJSIP/1001"}),
            "Need 'Interface' and 'Penalty' parameters.",
        ),
        (
            ("QueuePenalty", {"Interface": "PJSIP/1009", "Penalty": "2"}),
            "Invalid interface, queuename or penalty",
        ),
        (("MixMonitor", {}), "No channel specified"),
        (("StopMixMonitor", {"Channel": "x"}), "No such channel"),
        (("PlayDTMF", {"Channel": "x", "Digit": "1"}), "Channel not found"),
        (("Status", {"Channel": "x"}), "No such channel"),
        (("Challenge", {}), "Must specify AuthType"),
        (("Events", {"EventMask": "bogus"}), "Invalid event mask"),
    ]
    for (action, fields), message in cases:
        resp = await client.action(action, **fields)
        assert (resp.get("Response"), resp.get("Message")) == ("Error", message), (action, fields)
    aid = "no-action"
    client.send_raw(f"ActionID: {aid}\r\nFoo: bar\r\n\r\n")
    resp = await client.response(aid)
    assert resp.fields == [
        ("Response", "Error"),
        ("ActionID", aid),
        ("Message", "Missing action in request"),
    ]
    again = await client.action("Login", Username="callcenter", Secret="CHANGE_ME")
    assert again.get("Message") == "Already authenticated"
    await client.close()


async def test_md5_login_and_bad_login(hotline_sim: Simulator) -> None:
    client = await _raw(hotline_sim, login=False)
    pre = await client.action("CoreShowChannels")
    assert pre.get("Message") == "Permission denied"
    challenge = await client.action("Challenge", AuthType="MD5")
    assert challenge.keys() == ["Response", "ActionID", "Challenge"]
    key = hashlib.md5((challenge.get("Challenge", "") + "CHANGE_ME").encode()).hexdigest()
    ok = await client.action("Login", AuthType="md5", Username="callcenter", Key=key)
    assert ok.get("Message") == "Authentication accepted"
    booted = await client.wait_for(lambda m: m.get("Event") == "FullyBooted")
    assert booted.keys() == ["Event", "Privilege", "Uptime", "LastReload", "Status"]
    # manager.conf gives the service no 'security' read class: no SuccessfulAuth for it
    await client.action("Ping")
    assert not any(m.get("Event") == "SuccessfulAuth" for m in client.messages)
    await client.close()

    bad = await _raw(hotline_sim, login=False)
    started = time.monotonic()
    resp = await bad.action("Login", Username="callcenter", Secret="wrong")
    assert resp.get("Message") == "Authentication failed"
    assert time.monotonic() - started >= hotline_sim.config.bad_login_delay
    await bad.closed()

    hotline_sim.refuse_logins(True)
    refused = await _raw(hotline_sim, login=False)
    assert (await refused.action("Login", Username="callcenter", Secret="CHANGE_ME")).get(
        "Message"
    ) == "Authentication failed"
    hotline_sim.refuse_logins(False)


async def test_permissions_filter_events_and_actions(tmp_path) -> None:
    sim = Simulator(
        port=0,
        time_scale=0.01,
        seed=3,
        recordings_dir=tmp_path,
        bad_login_delay=0.01,
        users=[AmiUserConfig(username="wall", secret="s3cret", read="call", write="reporting")],
    )
    await sim.start()
    try:
        client = RawAmiClient()
        await client.connect(sim.ami_port)
        await client.action("Login", Username="wall", Secret="s3cret")
        denied = await client.action("QueueAdd", Queue="hotline", Interface="PJSIP/1001")
        assert denied.get("Message") == "Permission denied"
        chans = await client.list_action("CoreShowChannels")
        assert chans[-1].get("ListItems") == "0"
        sim.add_agent("PJSIP/1001", Agent(), queues=["hotline"], login=True)  # agent-class events
        sim.place_call("1", behaviour=Caller(talk_time=1))  # call-class events
        await client.wait_for(lambda m: m.get("Event") == "Newchannel")
        await sim.wait_idle(5)
        names = {m.get("Event") for m in client.messages}
        assert "QueueMemberAdded" not in names and "FullyBooted" not in names
        assert "VarSet" not in names  # dialplan class
        off = await client.action("Events", EventMask="off")
        assert off.get("Events") == "Off"
        await client.close()
    finally:
        await sim.stop()


async def test_drop_connections_and_logoff(hotline_sim: Simulator) -> None:
    client = await _raw(hotline_sim)
    hotline_sim.drop_ami_connections()
    await client.closed()
    client = await _raw(hotline_sim)
    bye = await client.action("Logoff")
    assert bye.fields[0] == ("Response", "Goodbye")
    await client.closed()
