"""Through the simulator over real TCP (AMI, FastAGI), with the hang-up listener and the
workers' loop that retries files not there yet at the hang-up: an inbound call's recording is
attached to the order created during it; a click-to-call from the order calls the handler, then the
citizen, and leaves a contact record with its outcome and recording; no response to the
handler contains the citizen's number."""

from __future__ import annotations

import asyncio
import hashlib
import json
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.auth.principal import Role
from callcenter.auth.testing import bare_app, make_unit, test_auth_config
from callcenter.bus.memory import MemoryBus
from callcenter.calls.tracker import CallTracker
from callcenter.clock import FrozenClock, SystemClock
from callcenter.recordings.config import RecordingsConfig
from callcenter.recordings.contact import ContactCalls
from callcenter.recordings.http import setup_web as setup_recordings
from callcenter.recordings.listeners import RecordingListener
from callcenter.recordings.service import RecordingService
from callcenter.recordings.store import LocalStore
from callcenter.recordings.workers import RecordingsWorker
from callcenter.simulator.actors import Agent, Caller, Destination
from callcenter.simulator.scenario import Simulator
from callcenter.telephony import events as ev
from callcenter.telephony.agi import AgiSession
from callcenter.telephony.config import AgiConfig, AmiConfig
from callcenter.telephony.service import Telephony
from callcenter.tickets.config import TicketsConfig
from callcenter.tickets.http import TICKETS
from callcenter.tickets.http import setup_web as setup_tickets
from callcenter.web.keys import BUS, TELEPHONY
from tests.recordings.conftest import Actor, Office, in_progress, quick_user

PBX = "sim-rec"
TIME_SCALE = 0.05
CITIZEN = "13800138000"
HANDLER_PHONE = "1003"


async def ivr(session: AgiSession) -> None:
    await session.answer()


@dataclass
class Rig:
    office: Office
    sim: Simulator
    telephony: Telephony
    listener: RecordingListener
    stored: Any  # bus subscription to recording.stored
    ended: Any  # bus subscription to contact_call.ended

    async def wait_stored_any(self, timeout: float = 20.0) -> None:
        await asyncio.wait_for(self.stored.get(), timeout)

    async def wait_stored(self, linkedid: str, timeout: float = 20.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                _, event = await self.stored.get()
                if event["linkedid"] == linkedid:
                    return event


@pytest.fixture
async def rig(sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path,
              clock: FrozenClock) -> AsyncIterator[Rig]:
    system = SystemClock()
    monitor = tmp_path / "monitor"
    config = RecordingsConfig(store_dir=tmp_path / "store", monitor_dir=monitor,
                              retry_delays=[0.1, 0.2, 0.5, 1.0, 2.0])
    agi = Telephony(AmiConfig(port=1), AgiConfig(port=0), None, system)
    agi.agi.route("ivr", ivr)
    await agi.agi.start()
    agi_port = agi.agi.port
    await agi.agi.stop()
    sim = Simulator(port=0, time_scale=TIME_SCALE, seed=11, agi_host="127.0.0.1",
                    agi_port=agi_port, bad_login_delay=0.05, recordings_dir=monitor,
                    cdr_dir=tmp_path / "cdr")
    await sim.start()
    bus = MemoryBus()
    stored = await bus.subscribe("recording.stored").open()
    ended = await bus.subscribe("contact_call.ended").open()
    telephony = Telephony(AmiConfig(port=sim.ami_port, username="callcenter",
                                    secret=SecretStr("CHANGE_ME"), reconnect_min=0.05,
                                    reconnect_max=0.2, action_timeout=5, pbx=PBX),
                          AgiConfig(host="127.0.0.1", port=agi_port), None, system)
    telephony.agi.route("ivr", ivr)
    tracker = CallTracker(sessionmaker, system, pbx=PBX, flush_interval=0.05)
    service = RecordingService(sessionmaker, system, config, LocalStore(config.store_dir), bus)
    listener = RecordingListener(service, ContactCalls(sessionmaker, system,
                                                       config.click_to_call, PBX, bus), PBX)
    for part in (tracker, listener):
        await part.start()
        telephony.add_listener(part)
    stop_worker = asyncio.Event()
    worker = asyncio.create_task(RecordingsWorker(service).run(stop_worker))
    seen = asyncio.Event()
    telephony.add_listener(lambda e: isinstance(e, ev.QueuesSnapshot) and seen.set())
    await telephony.start()
    await asyncio.wait_for(seen.wait(), 10)

    auth = test_auth_config()
    app = bare_app(sessionmaker, clock, config=auth)
    app[TELEPHONY] = telephony
    app[BUS] = bus
    setup_tickets(app, TicketsConfig())
    setup_recordings(app, config, pbx=PBX)
    units = [(await make_unit(sessionmaker)).id for _ in range(2)]

    async def actor(role: Role, unit_id: int | None = None) -> Actor:
        return Actor(await quick_user(sessionmaker, clock, role, unit_id), auth, clock)

    client = TestClient(TestServer(app))
    await client.start_server()
    office = Office(
        client=client, clock=clock, service=app[TICKETS], sessionmaker=sessionmaker,
        agent=await actor(Role.AGENT), supervisor=await actor(Role.SUPERVISOR),
        unit_a=units[0], unit_b=units[1], unit_c=units[1],
        handler_a=await actor(Role.UNIT_HANDLER, units[0]),
        handler_b=await actor(Role.UNIT_HANDLER, units[1]),
        handler_c=await actor(Role.UNIT_HANDLER, units[1]),
        admin=await actor(Role.ADMIN), recordings=service, config=config)
    try:
        yield Rig(office, sim, telephony, listener, stored, ended)
    finally:
        await client.close()
        await telephony.stop()
        await listener.stop()
        stop_worker.set()
        await worker
        await tracker.stop()
        await sim.stop()


def wav_truth(path: Path) -> tuple[str, float]:
    with wave.open(str(path), "rb") as audio:
        duration = audio.getnframes() / audio.getframerate()
    return hashlib.sha256(path.read_bytes()).hexdigest(), round(duration, 3)


async def test_an_inbound_call_is_recorded_and_attached_to_its_new_order(rig: Rig) -> None:
    h = rig.office
    rig.sim.add_agent("PJSIP/2001", Agent(name="Agent 2001", answer_after=1.0),
                      queues=["hotline"], login=True)
    call = rig.sim.place_call(CITIZEN, behaviour=Caller(keys="1", talk_time=8.0))
    await call.wait_bridged(20)
    # the agent writes the order during the call, linking it
    ticket = await h.new_ticket(calls=[{"linkedid": call.linkedid}])
    await asyncio.wait_for(call.ended, 30)
    event = await rig.wait_stored(call.linkedid)
    written = await rig.sim.wait_recording(call.uniqueid)
    sha, duration = wav_truth(written)
    assert event["sha256"] == sha and event["duration_seconds"] == duration
    assert duration > 8.0
    listed = await h.call(h.supervisor, "GET", f"/tickets/{ticket['id']}/recordings",
                          expect=200)
    assert [(r["id"], r["purpose"], r["sha256"]) for r in listed["recordings"]] == [
        (event["recording_id"], "intake", sha)]
    day = listed["recordings"][0]["ended_at"][:10].replace("-", "/")
    stored = h.config.store_dir / "recordings" / day / f"{event['recording_id']}.wav"
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == sha
    timeline = (await h.call(h.supervisor, "GET", f"/tickets/{ticket['id']}/timeline",
                             expect=200))["events"]
    entry = [e for e in timeline if e["action"] == "recording"]
    assert len(entry) == 1 and entry[0]["data"]["duration_seconds"] == duration


async def click(rig: Rig, tid: int) -> dict[str, Any]:
    h = rig.office
    return await h.call(h.handler_a, "POST", f"/tickets/{tid}/contact-calls",
                        {"extension": HANDLER_PHONE}, expect=202)


async def test_click_to_call_records_and_attaches_a_contact_record(rig: Rig) -> None:
    h = rig.office
    rig.sim.add_agent(f"PJSIP/{HANDLER_PHONE}", Agent(name="handler", answer_after=1.0))
    rig.sim.add_destination(CITIZEN, Destination(mode="answer", answer_after=2.0,
                                                 talk_time=15.0))
    ticket = await in_progress(h, caller={"name": "张三丰", "phone": CITIZEN})
    tid = ticket["id"]
    responses = [ticket, await click(rig, tid)]
    attempt = responses[-1]
    assert attempt["outcome"] == "dialling"
    contact_calls = await wait_contact_ended(rig, tid)
    answered = contact_calls[-1]
    assert answered["outcome"] == "answered" and answered["handler_outcome"] == "answered"
    assert answered["talk_seconds"] == pytest.approx(15.0, abs=0.5)
    listed = await wait_recordings(rig, tid, 1)
    assert listed[0]["purpose"] == "contact" and listed[0]["duration_seconds"] > 15.0
    responses.append(await h.call(h.handler_a, "GET", f"/tickets/{tid}/timeline", expect=200))
    responses.append(await h.call(h.handler_a, "GET", f"/tickets/{tid}", expect=200))
    responses.append(await h.call(h.handler_a, "GET", f"/tickets/{tid}/contact-calls",
                                  expect=200))
    responses.append(await h.call(h.handler_a, "GET", f"/tickets/{tid}/recordings",
                                  expect=200))
    entries = [e for e in responses[2]["events"] if e["action"] in ("contact_call",
                                                                    "recording")]
    assert [e["action"] for e in entries] == ["contact_call", "recording"]
    assert entries[1]["data"]["outcome"] == "answered"
    # the closing rule is met by this contact record
    reply = await h.call(h.handler_a, "POST", f"/tickets/{tid}/reply",
                         {"content": "已电话联系市民并处理完毕。"}, expect=200)
    responses.append(reply)
    for body in responses:
        assert CITIZEN not in json.dumps(body, ensure_ascii=False)
        assert "138001" not in json.dumps(body, ensure_ascii=False)


@pytest.mark.parametrize("mode,outcome", [("busy", "busy"), ("noanswer", "no_answer")])
async def test_unanswered_click_to_calls_are_kept_with_their_outcome(
        rig: Rig, mode: str, outcome: str) -> None:
    h = rig.office
    rig.sim.add_agent(f"PJSIP/{HANDLER_PHONE}", Agent(name="handler", answer_after=1.0))
    rig.sim.add_destination(CITIZEN, Destination(mode=mode))
    tid = (await in_progress(h, caller={"name": "李四", "phone": CITIZEN}))["id"]
    await click(rig, tid)
    calls = await wait_contact_ended(rig, tid)
    assert [(c["outcome"], c["talk_seconds"]) for c in calls] == [(outcome, 0.0)]
    await h.call(h.handler_a, "POST", f"/tickets/{tid}/reply",
                 {"content": "已联系。", "attachments": [
                     {"kind": "photo", "name": "现场.jpg", "ref": "files/1.jpg"}]}, expect=409)


async def test_a_handler_who_does_not_answer_never_dials_the_citizen(rig: Rig) -> None:
    h = rig.office
    rig.sim.add_agent(f"PJSIP/{HANDLER_PHONE}", Agent(name="handler", mode="never"))
    rig.sim.add_destination(CITIZEN, Destination(mode="answer"))
    tid = (await in_progress(h, caller={"name": "王五", "phone": CITIZEN}))["id"]
    await click(rig, tid)
    calls = await wait_contact_ended(rig, tid, timeout=40)
    assert calls[0]["outcome"] == "handler_unreached"
    assert calls[0]["handler_outcome"] == "no_answer"


async def test_click_to_call_is_only_for_the_unit_holding_the_order(rig: Rig) -> None:
    h = rig.office
    tid = (await in_progress(h, caller={"name": "赵六", "phone": CITIZEN}))["id"]
    body = await h.call(h.handler_b, "POST", f"/tickets/{tid}/contact-calls",
                        {"extension": HANDLER_PHONE}, expect=404)
    assert CITIZEN not in json.dumps(body)
    await h.call(h.handler_a, "POST", f"/tickets/{tid}/contact-calls",
                 {"extension": "PJSIP/trunk/1"}, expect=422)
    anonymous = (await in_progress(h, anonymous=True))["id"]
    await h.call(h.handler_a, "POST", f"/tickets/{anonymous}/contact-calls",
                 {"extension": HANDLER_PHONE}, expect=409)


async def wait_contact_ended(rig: Rig, tid: int, timeout: float = 30.0) -> list[dict]:
    """The order's contact records once its attempt has ended (announced after commit)."""
    async with asyncio.timeout(timeout):
        while True:
            _, event = await rig.ended.get()
            if event["ticket_id"] == tid:
                break
    h = rig.office
    return (await h.call(h.handler_a, "GET", f"/tickets/{tid}/contact-calls",
                         expect=200))["contact_calls"]


async def wait_recordings(rig: Rig, tid: int, count: int) -> list[dict]:
    """The order's recordings once ``count`` have been stored (announced after commit)."""
    h = rig.office
    while True:
        listed = (await h.call(h.handler_a, "GET", f"/tickets/{tid}/recordings",
                               expect=200))["recordings"]
        if len(listed) >= count:
            return listed
        await rig.wait_stored_any()
