"""An agent's SIP phone holds the caller: the simulator reports it as Asterisk 22 does
(captures/hold: the same headers on ``Hold``, ``Unhold`` and the caller's music on hold), and
the agent's periods show the hold between two stretches of talk."""

from __future__ import annotations

import asyncio
from pathlib import Path

from callcenter.queues.service import Skill
from callcenter.simulator.actors import Agent, Caller
from callcenter.telephony import events as ev
from callcenter.telephony.protocol import parse_stream
from tests.queues.conftest import Rig, make_agent

PHONE = "PJSIP/1001"
HOLD_EVENTS = ("Hold", "Unhold", "MusicOnHoldStart", "MusicOnHoldStop")


def headers(text: str) -> list[str]:
    return [line.split(":", 1)[0] for line in text.strip().splitlines() if ":" in line]


def captured(captures_dir: Path) -> dict[str, list[str]]:
    """Header names of the hold events once connected (the first MusicOnHoldStart/Stop are
    the queue's own music while waiting)."""
    out: dict[str, list[str]] = {}
    for fields in parse_stream((captures_dir / "hold.raw").read_bytes()):
        name = fields.get("Event")
        if name in HOLD_EVENTS:
            out[name] = list(fields)  # the last one of each name: the phone's hold
    return out


async def test_the_phone_holds_and_resumes_as_asterisk_reports_it(rig: Rig,
                                                                   captures_dir: Path) -> None:
    log = rig.sim.record_events()
    rig.sim.add_agent(PHONE, Agent(name="softphone", answer_after=1.0, hold_after=3.0,
                                   hold_for=4.0))
    user, agent_id = await make_agent(rig.service, extension="1001",
                                      skills=[Skill("hotline-en", 5)])
    await rig.call(user, "POST", "/agents/me/login", {})
    await rig.next_state(agent_id, "available")
    call = rig.sim.place_call("13800138000", exten="12345001",
                              behaviour=Caller(talk_time=10.0))
    await rig.next_state(agent_id, "after_call_work")
    await asyncio.wait_for(call.ended, 10)
    await rig.listener.flush()

    ours = {name: headers(text) for name, text in log.events
            if name in HOLD_EVENTS}
    assert ours == captured(captures_dir)
    held = rig.events(ev.HoldStarted)
    resumed = rig.events(ev.HoldEnded)
    assert len(held) == len(resumed) == 1 and held[0].channel.startswith(PHONE + "-")
    assert round((resumed[0].at - held[0].at).total_seconds()) == 4
    periods = [(p.state, p.started_at, p.ended_at) for p in await rig.periods(agent_id)]
    connected = rig.events(ev.AgentConnected, interface=PHONE)[0].at
    assert periods[2:5] == [("on_call", connected, held[0].at),
                            ("on_hold", held[0].at, resumed[0].at),
                            ("on_call", resumed[0].at, periods[4][2])]
    assert periods[5][0] == "after_call_work"
