"""A supervisor listens to, whispers to or barges into an agent's call: the supervisor's
phone is rung by Originate into ``ChanSpy`` on the agent's phone with the mode's options;
the simulator spies as Asterisk 22 reports it (captures/chanspy); every use is audited."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from callcenter.auth.models import AuditLog
from callcenter.auth.principal import Role
from callcenter.auth.testing import make_user
from callcenter.queues.config import QueuesConfig
from callcenter.queues.service import Skill
from callcenter.simulator.actors import Agent, Caller
from callcenter.telephony.protocol import parse_stream
from tests.queues.conftest import Rig, make_agent, queues_config

PHONE = "PJSIP/1001"
SUPERVISOR_PHONE = "PJSIP/1010"


@pytest.fixture
def config() -> QueuesConfig:
    return queues_config(spy_modes={"listen": "q", "whisper": "qw"})  # no barging here


def fields(text: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in text.strip().splitlines() if ": " in line)


def captured_names(captures_dir: Path, name: str) -> list[str]:
    for f in parse_stream((captures_dir / "chanspy.raw").read_bytes()):
        if f.get("Event") == name:
            return list(f)
    raise AssertionError(name)


async def test_a_supervisor_whispers_from_their_phone_and_it_is_audited(
        rig: Rig, captures_dir: Path) -> None:
    log = rig.sim.record_events()
    rig.sim.add_agent(PHONE, Agent(name="softphone", answer_after=1.0))
    rig.sim.add_agent(SUPERVISOR_PHONE, Agent(name="supervisor", answer_after=1.0,
                                              hangup_after_answer=4.0))
    user, agent_id = await make_agent(rig.service, extension="1001",
                                      skills=[Skill("hotline-en", 5)])
    supervisor = await make_user(rig.service.sessionmaker, rig.service.clock,
                                 role=Role.SUPERVISOR)
    await rig.call(user, "POST", "/agents/me/login", {})
    rig.sim.place_call("13800138000", exten="12345001", behaviour=Caller(talk_time=20.0))
    await rig.next_state(agent_id, "on_call")

    out = await rig.call(supervisor, "POST", f"/agents/{agent_id}/spy",
                         {"mode": "whisper", "extension": "1010"}, expect=202)
    assert out == {"agent_id": agent_id, "mode": "whisper", "extension": "1010",
                   "status": "dialling"}
    await rig.sim.wait_until(lambda: "ChanSpyStop" in log.names(), timeout=10)
    spied = [(name, fields(text)) for name, text in log.events
             if name in ("ChanSpyStart", "ChanSpyStop")]
    assert [name for name, _ in spied] == ["ChanSpyStart", "ChanSpyStop"]
    start = spied[0][1]
    assert start["SpyerChannel"].startswith(SUPERVISOR_PHONE + "-")
    assert start["SpyeeChannel"].startswith(PHONE + "-")
    assert list(start) == captured_names(captures_dir, "ChanSpyStart")
    async with rig.service.sessionmaker() as session:
        audit = (await session.scalars(select(AuditLog).where(
            AuditLog.object_type == "agent"))).all()
    assert [(a.action, a.username, a.fields) for a in audit] == [
        ("agent.whisper", supervisor.username, ["extension:1010"])]


async def test_a_mode_not_configured_or_an_agent_not_logged_in_rings_nobody(rig: Rig) -> None:
    log = rig.sim.record_events()
    _, agent_id = await make_agent(rig.service, extension="1001",
                                   skills=[Skill("hotline-en", 5)])
    supervisor = await make_user(rig.service.sessionmaker, rig.service.clock,
                                 role=Role.SUPERVISOR)
    barge = await rig.call(supervisor, "POST", f"/agents/{agent_id}/spy",
                           {"mode": "barge", "extension": "1010"}, expect=409)
    assert barge["error"]["field"] == "mode"
    out = await rig.call(supervisor, "POST", f"/agents/{agent_id}/spy",
                         {"mode": "listen", "extension": "1010"}, expect=409)
    assert out["error"]["message"] == "not logged in"
    assert "Newchannel" not in log.names()
