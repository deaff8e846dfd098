"""After-hours messages, the run-time announcement switch, hang-ups at every node, and a
FastAGI command that times out, through the simulator over real TCP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, time
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from callcenter.auth.principal import Role
from callcenter.auth.testing import bare_app, make_principal, test_auth_config
from callcenter.ivr.http import setup_web
from callcenter.simulator.actors import Agent
from callcenter.tickets.models import Ticket, TicketCall
from tests.ivr.rig import FLOWS, SHANGHAI, Rig

WELCOME = ["zh/hotline-welcome", "zh/english-option"]
HOURS = {"open_from": time(8, 0), "open_until": time(20, 0)}
CLOSED = {"at": datetime(2026, 12, 2, 21, 0, tzinfo=SHANGHAI), **HOURS}


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


@pytest.fixture(autouse=True)
async def agents(rig: Rig) -> None:
    rig.sim.add_agent("PJSIP/1001", Agent(answer_after=0.5), queues=["hotline"], login=True)


@pytest.fixture
async def api(rig: Rig) -> AsyncIterator[tuple[TestClient, dict[str, str]]]:
    config = test_auth_config()
    app = bare_app(rig.sessionmaker, rig.clock, config=config)
    setup_web(app)
    _, headers = await make_principal(rig.sessionmaker, rig.clock, config,
                                      role=Role.SUPERVISOR)
    async with TestClient(TestServer(app)) as client:
        yield client, headers


async def test_after_hours_message_becomes_a_draft_with_its_recording(rig: Rig) -> None:
    rig.use("hotline", at=local(2026, 12, 2, 20, 0), **HOURS)  # closing time on a Wednesday
    call = rig.call("13700001111", keys="#")
    rows = await rig.ended(call)
    assert rig.watch.played(call) == [*WELCOME, "zh/after-hours", "zh/message-thanks"]
    recording = f"ivr-message-{call.uniqueid}"
    assert any(c.startswith(f"RECORD FILE /var/spool/asterisk/monitor/{recording} wav")
               for c in rig.watch.commands[call.uniqueid])
    async with rig.sessionmaker() as session:
        ticket = await session.scalar(select(Ticket))
        link = await session.scalar(select(TicketCall))
    assert ticket is not None and link is not None
    assert (ticket.status, ticket.channel, ticket.caller_phone) == (
        "draft", "phone", "13700001111")
    assert ticket.title == "非工作时间留言 (after-hours message)"
    assert (link.ticket_id, link.linkedid, link.recording_ref) == (
        ticket.id, call.linkedid, f"{recording}.wav")
    assert rig.watch.var(call, "IVR_TICKET") == ticket.number
    job = await rig.bus.fetch("speech.transcribe", "speech", "test", timeout=1)
    assert job is not None and job.payload == {
        "ticket_id": ticket.id, "linkedid": call.linkedid, "recording_ref": f"{recording}.wav",
        "purpose": "after_hours_message"}
    row = rows[call.linkedid]
    assert row.queue is None and row.disposition == "ivr_hangup"
    assert row.ivr_path == "agi:ivr>keys:#>welcome>english_offer>check>after_hours>goodbye"


@pytest.mark.parametrize(("at", "working_days_only", "is_open"), [
    (local(2026, 12, 2, 19, 59, 59), False, True),  # a second before closing
    (local(2026, 12, 2, 8, 0), False, True),  # opening time
    (local(2026, 12, 2, 7, 59, 59), False, False),
    (local(2026, 12, 5, 10, 0), False, True),  # a Saturday, the hotline open every day
    (local(2026, 12, 5, 10, 0), True, False),  # a Saturday, open on working days only
    (local(2026, 10, 1, 10, 0), True, False),  # National Day, a Thursday
])
async def test_the_staffed_hours_decide_between_agent_and_message(
        rig: Rig, at: datetime, working_days_only: bool, is_open: bool) -> None:
    rig.use("hotline", at=at, working_days_only=working_days_only,
            holidays_from_calendar=False, **HOURS)
    call = rig.call(keys="#")
    rows = await rig.ended(call)
    if is_open:
        assert rig.watch.played(call) == WELCOME
        assert rows[call.linkedid].queue == "hotline"
    else:
        assert rig.watch.played(call) == [*WELCOME, "zh/after-hours", "zh/message-thanks"]
        assert rows[call.linkedid].disposition == "ivr_hangup"


async def test_a_public_holiday_of_the_calendar_plays_the_holiday_notice(rig: Rig) -> None:
    rig.use("hotline", at=local(2026, 10, 1, 10, 0))  # National Day, a Thursday
    holiday = rig.call()
    await rig.ended(holiday)
    rig.use("hotline", at=local(2026, 10, 9, 10, 0))  # the Friday after: a working day
    working = rig.call("13800138001")
    await rig.ended(working)
    assert rig.watch.played(holiday) == [*WELCOME, "zh/holiday-notice"]
    assert rig.watch.played(working) == WELCOME


async def test_switching_the_holiday_announcement_on_changes_the_next_call(
        rig: Rig, api: tuple[TestClient, dict[str, str]]) -> None:
    client, headers = api
    before = rig.call()
    await rig.ended(before)
    response = await client.put("/api/v1/ivr/announcements/holiday", headers=headers,
                                json={"active": True, "note": "国庆"})
    assert response.status == 200, await response.text()
    assert (await response.json())["active"] is True
    after = rig.call("13800138001")
    rows = await rig.ended(after)
    assert rig.watch.played(before) == WELCOME
    assert rig.watch.played(after) == [*WELCOME, "zh/holiday-notice"]
    assert rows[after.linkedid].ivr_path == "agi:ivr>welcome>english_offer>check>holiday>agent"
    listed = await (await client.get("/api/v1/ivr/announcements", headers=headers)).json()
    assert {a["kind"]: a["active"] for a in listed["announcements"]} == {
        "holiday": True, "emergency": False}


async def test_only_the_office_switches_announcements(
        rig: Rig, api: tuple[TestClient, dict[str, str]]) -> None:
    client, _ = api
    _, agent = await make_principal(rig.sessionmaker, rig.clock, test_auth_config(),
                                    role=Role.AGENT)
    response = await client.put("/api/v1/ivr/announcements/emergency", headers=agent,
                                json={"active": True})
    assert response.status == 403
    _, headers = api
    response = await client.put("/api/v1/ivr/announcements/fire", headers=headers,
                                json={"active": True})
    assert response.status == 404


# node -> (flow, config, switch, caller keys) that bring a caller there
REACH: dict[str, tuple[str, dict, str | None, str]] = {
    "welcome": ("menu", {}, None, ""),
    "english_offer": ("menu", {}, None, ""),
    "emergency": ("menu", {}, "emergency", ""),
    "holiday": ("menu", {}, "holiday", ""),
    "after_hours": ("menu", CLOSED, None, ""),
    "goodbye": ("menu", CLOSED, None, "#"),
    "main": ("menu", {}, None, ""),
    "progress": ("menu", {}, None, "2"),
    "office_hours": ("menu", {}, None, "3"),
    "more": ("menu", {}, None, "3"),
    "bye": ("menu", {}, None, "3"),
    "new_request": ("menu", {}, None, "1"),
    "agent": ("menu", {}, None, "0"),
}
"""Every node that plays or waits (branch and language nodes take no caller time)."""


@pytest.mark.parametrize("node", sorted(REACH))
async def test_a_hang_up_at_a_node_ends_the_session_and_the_log_shows_where(
        rig: Rig, node: str, api: tuple[TestClient, dict[str, str]]) -> None:
    flow, config, switch, keys = REACH[node]
    if switch:
        client, headers = api
        response = await client.put(f"/api/v1/ivr/announcements/{switch}", headers=headers,
                                    json={"active": True})
        assert response.status == 200
    rig.use(flow, **config)
    call = rig.call(keys=keys)
    rig.watch.hang_up_at[call.uniqueid] = node
    rows = await rig.ended(call)
    row = rows[call.linkedid]
    assert (row.disposition, row.ivr_node, row.queue) == ("ivr_hangup", node, None)
    assert rig.watch.var(call, "IVR_NODE") == node
    entered = [c for c in rig.watch.commands[call.uniqueid] if c.startswith(
        "SET VARIABLE IVR_NODE")]
    assert entered[-1] == f'SET VARIABLE IVR_NODE "{node}"'  # no node after the hang-up


async def test_a_command_that_times_out_ends_the_session_and_the_caller_is_queued(
        rig: Rig) -> None:
    agi = rig.telephony.agi
    agi.config = agi.config.model_copy(update={"media_margin": 0.02})  # the welcome is longer
    call = rig.call()
    rows = await rig.ended(call)
    assert rig.watch.commands[call.uniqueid][-1].startswith("STREAM FILE zh/hotline-welcome")
    assert rig.watch.var(call, "IVR_NODE") == "welcome"
    assert rows[call.linkedid].queue == "hotline"  # the dialplan went on without the IVR


async def test_a_prompt_asterisk_cannot_play_is_logged_as_not_played(
        rig: Rig, tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    texts = (FLOWS / "prompts.toml").read_text(encoding="utf-8")
    (flows / "prompts.toml").write_text(texts + '\n[not-installed]\nzh = "无"\nen = "None."\n',
                                        encoding="utf-8")
    hotline = (FLOWS / "hotline.toml").read_text(encoding="utf-8")
    (flows / "hotline.toml").write_text(
        hotline.replace('prompt = "english-option"', 'prompt = "not-installed"'),
        encoding="utf-8")
    rig.use("hotline", flows_dir=flows)
    call = rig.call()
    rows = await rig.ended(call)
    assert rig.watch.played(call) == ["zh/hotline-welcome", "zh/not-installed"]
    assert rig.watch.var(call, "IVR_PROMPTS") == "zh/hotline-welcome,zh/not-installed!"
    assert rows[call.linkedid].queue == "hotline"  # the caller still reaches an agent


async def test_staff_issue_a_ticket_pin_that_the_ivr_accepts(
        rig: Rig, api: tuple[TestClient, dict[str, str]]) -> None:
    client, headers = api
    from tests.ivr.test_progress import dispatched_ticket

    ticket = await dispatched_ticket(rig)
    response = await client.post(f"/api/v1/ivr/tickets/{ticket.id}/pin", headers=headers)
    assert response.status == 201, await response.text()
    pin = (await response.json())["pin"]
    assert len(pin) == 6 and pin.isdigit()
    checked = await rig.app.service.check_pin(ticket.number.replace("-", ""), pin,
                                              "13911112222", None)
    assert checked.outcome == "pin" and checked.progress is not None
    assert checked.progress.status == "dispatched"
    missing = await client.post("/api/v1/ivr/tickets/999999/pin", headers=headers)
    assert missing.status == 404
