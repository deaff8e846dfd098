"""The live websocket (``GET /api/v1/queues/live``) against the simulator over real AMI: a
supervisor's snapshot then live queue and agent messages, an agent's own messages only,
catch-up after a reconnect equal to what a socket that stayed saw, and who may connect."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import ClientWebSocketResponse, WSMsgType

from callcenter.auth.models import User
from callcenter.auth.principal import Role
from callcenter.auth.testing import make_user
from callcenter.clock import SystemClock
from callcenter.queues.service import Skill
from callcenter.simulator.actors import Caller
from tests.queues.conftest import Rig, make_agent

LIVE = "/api/v1/queues/live"


async def connect(rig: Rig, user: User, **params: Any) -> ClientWebSocketResponse:
    token = rig.headers(user)["Authorization"].split(" ", 1)[1]
    query = {"access_token": token, **{k: str(v) for k, v in params.items()}}
    return await rig.client.ws_connect(LIVE, params=query)


async def receive(ws: ClientWebSocketResponse, seen: list[dict[str, Any]] | None = None,
                  timeout: float = 15.0, **match: Any) -> dict[str, Any]:
    """The next message whose fields equal ``match`` (every message read goes to ``seen``)."""
    async with asyncio.timeout(timeout):
        while True:
            message = await ws.receive_json()
            if seen is not None:
                seen.append(message)
            if all(message.get(k) == v for k, v in match.items()):
                return message


async def receive_each(ws: ClientWebSocketResponse, seen: list[dict[str, Any]],
                       *matches: dict[str, Any], timeout: float = 15.0) -> list[dict[str, Any]]:
    """The next message matching each of ``matches``, in whichever order they come: a queue
    record and an agent state travel in lanes of their own."""
    found: list[dict[str, Any] | None] = [None] * len(matches)
    async with asyncio.timeout(timeout):
        while None in found:
            message = await ws.receive_json()
            seen.append(message)
            for i, match in enumerate(matches):
                if found[i] is None and all(message.get(k) == v for k, v in match.items()):
                    found[i] = message
                    break
    return found  # type: ignore[return-value]


async def supervisor(rig: Rig) -> User:
    return await make_user(rig.service.sessionmaker, SystemClock(), role=Role.SUPERVISOR)


async def test_a_supervisor_gets_a_snapshot_then_agent_states_and_waiting_callers_live(
        rig: Rig) -> None:
    boss = await supervisor(rig)
    user, agent_id = await make_agent(rig.service, extension="1001",
                                      skills=[Skill("hotline-en", 5)])
    ws = await connect(rig, boss)
    seen: list[dict[str, Any]] = []
    snapshot = await receive(ws, seen)
    assert snapshot["type"] == "snapshot" and seen == [snapshot]
    assert [q["queue"] for q in snapshot["wallboard"]["queues"]] == ["hotline", "hotline-en"]
    assert [(q["queue"], q["waiting"], q["available_agents"]) for q in snapshot["queues"]] == [
        ("hotline", 0, 0), ("hotline-en", 0, 0)]
    assert [(a["agent_id"], a["state"]) for a in snapshot["agents"]] == []

    await rig.call(user, "POST", "/agents/me/login", {})
    state, queue = await receive_each(ws, seen, {"type": "agent_state", "agent_id": agent_id},
                                      {"type": "queue", "queue": "hotline-en"})
    assert (state["state"], state["previous"], state["interface"]) == (
        "available", "logged_out", "PJSIP/1001")
    assert (queue["waiting"], queue["available_agents"]) == (0, 1)

    await rig.call(user, "POST", "/agents/me/pause", {"reason": "break"})
    state, queue = await receive_each(ws, seen, {"type": "agent_state", "agent_id": agent_id},
                                      {"type": "queue", "queue": "hotline-en"})
    assert (state["state"], state["reason"]) == ("paused", "break")
    assert queue["available_agents"] == 0

    call = rig.sim.place_call("13800138002", exten="12345001", behaviour=Caller(patience=3.0))
    joined = await receive(ws, seen, type="queue", queue="hotline-en", waiting=1)
    assert joined["oldest_joined_at"] is not None and joined["available_agents"] == 0
    left = await receive(ws, seen, type="queue", queue="hotline-en", waiting=0)
    assert left["oldest_joined_at"] is None
    await asyncio.wait_for(call.ended, 15)
    numbers = [m["seq"] for m in seen]
    assert numbers == sorted(set(numbers)) and {m["feed"] for m in seen} == {snapshot["feed"]}
    assert not [m for m in seen if m["type"] == "screen_pop"]
    await ws.close()


async def test_an_agent_gets_only_its_own_states_and_screen_pops(rig: Rig) -> None:
    me, my_id = await make_agent(rig.service, extension="1001", skills=[Skill("hotline", 5)])
    other, other_id = await make_agent(rig.service, extension="1002",
                                       skills=[Skill("hotline", 5)])
    ws = await connect(rig, me)
    snapshot = await receive(ws)
    assert snapshot["type"] == "snapshot"
    assert (snapshot["wallboard"], snapshot["queues"]) == (None, [])
    assert [(a["agent_id"], a["state"]) for a in snapshot["agents"]] == [(my_id, "logged_out")]

    await rig.call(other, "POST", "/agents/me/login", {})
    await rig.next_state(other_id, "available")
    await rig.bus.publish(f"queues.screen_pop.{other_id}", {"caller": "not for me"})
    await rig.call(me, "POST", "/agents/me/login", {})
    await rig.next_state(my_id, "available")
    await rig.bus.publish(f"queues.screen_pop.{my_id}", {"caller": "138****8002"})
    seen: list[dict[str, Any]] = []
    pop = await receive(ws, seen, type="screen_pop")
    assert pop["agent_id"] == my_id and pop["screen_pop"] == {"caller": "138****8002"}
    assert [(m["type"], m["agent_id"], m.get("state")) for m in seen] == [
        ("agent_state", my_id, "available"), ("screen_pop", my_id, None)]
    await ws.close()


async def test_a_reconnect_with_since_gets_exactly_what_a_socket_that_stayed_got(
        rig: Rig) -> None:
    boss = await supervisor(rig)
    user, agent_id = await make_agent(rig.service, extension="1001",
                                      skills=[Skill("hotline", 5)])
    stayed = await connect(rig, boss)
    stayed_seen: list[dict[str, Any]] = []
    await receive(stayed, stayed_seen, type="snapshot")
    first = await connect(rig, boss)
    snapshot = await receive(first, type="snapshot")
    await first.close()

    await rig.call(user, "POST", "/agents/me/login", {})
    await rig.call(user, "POST", "/agents/me/pause", {"reason": "meal"})
    await receive_each(stayed, stayed_seen, {"type": "agent_state", "state": "paused"},
                       {"type": "queue", "queue": "hotline", "available_agents": 0})

    again = await connect(rig, boss, since=snapshot["seq"], feed=snapshot["feed"])
    resumed = await receive(again)
    assert resumed["type"] == "resumed" and resumed["feed"] == snapshot["feed"]
    missed = [await receive(again) for _ in range(resumed["missed"])]
    expected = [m for m in stayed_seen
                if snapshot["seq"] < m.get("seq", 0) <= resumed["seq"] and m["type"] != "snapshot"]
    assert resumed["missed"] >= 4  # available, queue, paused, queue
    assert missed == expected

    stale = await connect(rig, boss, since=snapshot["seq"], feed="0123456789ab")
    assert (await receive(stale))["type"] == "snapshot"  # another feed's numbers
    for ws in (stayed, again, stale):
        await ws.close()


async def test_who_may_open_the_live_socket(rig: Rig) -> None:
    anonymous = await rig.client.get(LIVE, headers={"Upgrade": "websocket",
                                                    "Connection": "Upgrade"})
    assert anonymous.status == 401
    handler = await make_user(rig.service.sessionmaker, SystemClock(), role=Role.UNIT_HANDLER)
    no_profile = await make_user(rig.service.sessionmaker, SystemClock(), role=Role.AGENT)
    for user, status in ((handler, 403), (no_profile, 404)):
        token = rig.headers(user)["Authorization"].split(" ", 1)[1]
        response = await rig.client.get(LIVE, params={"access_token": token},
                                        headers={"Upgrade": "websocket",
                                                 "Connection": "Upgrade"})
        assert response.status == status, await response.text()
    boss = await supervisor(rig)
    token = rig.headers(boss)["Authorization"].split(" ", 1)[1]
    bad = await rig.client.get(LIVE, params={"access_token": token, "since": "-1"},
                               headers={"Upgrade": "websocket", "Connection": "Upgrade"})
    assert bad.status == 422


async def test_the_socket_closes_once_its_user_is_deactivated(rig: Rig, monkeypatch) -> None:
    import callcenter.queues.http as queues_http

    monkeypatch.setattr(queues_http, "RECHECK_SECONDS", 0.0)
    boss = await supervisor(rig)
    user, agent_id = await make_agent(rig.service, extension="1001",
                                      skills=[Skill("hotline", 5)])
    ws = await connect(rig, boss)
    await receive(ws, type="snapshot")
    async with rig.service.sessionmaker() as session, session.begin():
        (await session.get(User, boss.id)).active = False
    await rig.call(user, "POST", "/agents/me/login", {})
    async with asyncio.timeout(15):
        message = await ws.receive()
        while message.type not in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING):
            message = await ws.receive()
    # the code the service sent (the client's own close_code turns 1006 when the service
    # drops the connection before the client's reply is written)
    assert (message.type, message.data) == (WSMsgType.CLOSE, 1008)
