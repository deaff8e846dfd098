"""Transcripts and drafts over real HTTP on SQLite and PostgreSQL: who may read them, what
is masked for whom, the audit trail, the agent's confirmations and corrections (and the
accuracy measured from them), and transcription on demand."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.auth.models import AuditLog
from callcenter.auth.principal import Role
from callcenter.auth.testing import bare_app, make_unit, test_auth_config
from callcenter.bus.memory import MemoryBus
from callcenter.clock import FrozenClock
from callcenter.recordings.config import RecordingsConfig
from callcenter.speech.config import SpeechConfig
from callcenter.speech.http import setup_web as setup_speech
from callcenter.speech.models import DraftSuggestion, SpeechTranscript
from callcenter.speech.service import GROUP, QUEUE, SpeechService
from callcenter.speech.transcript import Segment, Transcript, Word
from callcenter.tickets.config import TicketsConfig
from callcenter.tickets.http import TICKETS
from callcenter.tickets.http import setup_web as setup_tickets
from callcenter.web.openapi import setup_openapi
from tests.tickets.conftest import Actor, Hotline, clock, quick_user  # noqa: F401

LINKEDID = "1700000000.31"
SAID = "我 的 电话 是 13812345678 在 解放路"


@dataclass
class Desk(Hotline):
    bus: MemoryBus | None = None


@pytest.fixture
async def desk(sessionmaker: async_sessionmaker[AsyncSession], clock: FrozenClock,  # noqa: F811
               tmp_path: Path) -> AsyncIterator[Desk]:
    config = test_auth_config()
    bus = MemoryBus()
    await bus.start()
    app = bare_app(sessionmaker, clock, config=config, bus=bus)
    setup_tickets(app, TicketsConfig())
    service = SpeechService(sessionmaker, clock, SpeechConfig(),
                            RecordingsConfig(store_dir=tmp_path / "store"), bus)
    setup_speech(app, service)
    setup_openapi(app)
    units = [(await make_unit(sessionmaker)).id for _ in range(3)]

    async def actor(role: Role, unit_id: int | None = None) -> Actor:
        return Actor(await quick_user(sessionmaker, clock, role, unit_id), config, clock)

    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield Desk(client=client, clock=clock, service=app[TICKETS], sessionmaker=sessionmaker,
                   agent=await actor(Role.AGENT), supervisor=await actor(Role.SUPERVISOR),
                   unit_a=units[0], unit_b=units[1], unit_c=units[2],
                   handler_a=await actor(Role.UNIT_HANDLER, units[0]),
                   handler_b=await actor(Role.UNIT_HANDLER, units[1]),
                   handler_c=await actor(Role.UNIT_HANDLER, units[2]),
                   admin=await actor(Role.ADMIN), bus=bus)
    finally:
        await client.close()
        await bus.close()


def transcript() -> dict[str, Any]:
    words = tuple(Word(w, i * 0.5, i * 0.5 + 0.4, 0.8) for i, w in enumerate(SAID.split()))
    return Transcript("zh", "vosk-model-small-cn-0.22", 5.0, (
        Segment("citizen", 0.0, words[-1].end, SAID, words),)).to_json()


async def transcribed_ticket(desk: Desk, **row: Any) -> tuple[int, int, list[int]]:
    """An order whose intake call was transcribed, with a phone and an address suggested."""
    ticket = await desk.call(desk.agent, "POST", "/tickets", {
        "title": "占道", "calls": [{"linkedid": LINKEDID}]}, expect=201)
    values: dict[str, Any] = dict(
        audio_ref="recordings/2026/11/23/1.wav", linkedid=LINKEDID, purpose="call",
        language="zh", status="done", attempts=1, content=transcript(), model="m",
        audio_seconds=5.0, decode_seconds=2.0, queued_at=desk.clock.now(),
        finished_at=desk.clock.now())
    values.update(row)
    async with desk.sessionmaker(expire_on_commit=False) as session, session.begin():
        stored = SpeechTranscript(**values)
        session.add(stored)
        await session.flush()
        suggestions = [DraftSuggestion(
            transcript_id=stored.id, ticket_id=ticket["id"], field=field, value=value,
            confidence=confidence, span_start=1.0, span_end=2.5, evidence=SAID,
            needs_confirmation=field == "phone", state="suggested",
            created_at=desk.clock.now())
            for field, value, confidence in (("phone", "13812345678", 0.7),
                                             ("address", "解放路", 0.9))]
        session.add_all(suggestions)
    return ticket["id"], stored.id, [s.id for s in suggestions]


async def test_an_agent_reads_an_orders_transcript_and_draft_and_the_read_is_audited(
        desk: Desk) -> None:
    ticket_id, transcript_id, (phone, address) = await transcribed_ticket(desk)
    body = await desk.call(desk.agent, "GET", f"/tickets/{ticket_id}/transcripts", expect=200)
    [got] = body["transcripts"]
    assert (got["id"], got["status"], got["linkedid"], got["error"]) == (
        transcript_id, "done", LINKEDID, None)
    assert got["segments"][0]["speaker"] == "citizen"
    assert got["segments"][0]["text"] == SAID
    assert [(s["id"], s["field"], s["value"], s["state"], s["needs_confirmation"])
            for s in got["suggestions"]] == [(phone, "phone", "13812345678", "suggested", True),
                                             (address, "address", "解放路", "suggested", False)]
    assert got["suggestions"][0]["start"] == 1.0 and got["suggestions"][0]["end"] == 2.5
    async with desk.sessionmaker() as session:
        audit = (await session.scalars(select(AuditLog).where(
            AuditLog.action == "speech.transcript.view"))).all()
    assert [(a.user_id, a.object_type, a.object_id, a.fields) for a in audit] == [
        (desk.agent.principal.user_id, "ticket", str(ticket_id), ["transcript"])]


async def test_numbers_are_masked_for_a_role_that_may_not_read_the_callers_phone(
        desk: Desk) -> None:
    ticket_id, _, _ = await transcribed_ticket(desk)
    body = await desk.call(desk.admin, "GET", f"/tickets/{ticket_id}/transcripts", expect=200)
    [got] = body["transcripts"]
    assert got["segments"][0]["text"] == "我 的 电话 是 138****5678 在 解放路"
    assert "13812345678" not in str(got)
    assert got["suggestions"][0]["value"] == "138****5678"
    calls = await desk.call(desk.admin, "GET", f"/calls/{LINKEDID}/transcripts", expect=200)
    assert "13812345678" not in str(calls) and len(calls["transcripts"]) == 1


async def test_roles_outside_speech_view_roles_are_refused(desk: Desk) -> None:
    ticket_id, _, (phone, _) = await transcribed_ticket(desk)
    await desk.call(desk.handler_a, "GET", f"/tickets/{ticket_id}/transcripts", expect=403)
    await desk.call(desk.handler_a, "GET", f"/calls/{LINKEDID}/transcripts", expect=403)
    await desk.call(desk.agent, "GET", "/calls/a%00b/transcripts", expect=404)
    await desk.call(desk.handler_a, "POST", f"/speech/suggestions/{phone}/confirm",
                    expect=403)
    await desk.call(desk.agent, "GET", "/speech/accuracy", expect=403)
    await desk.call(desk.supervisor, "GET", f"/tickets/{ticket_id}/transcripts", expect=200)
    response = await desk.client.get(f"/api/v1/tickets/{ticket_id}/transcripts")
    assert response.status == 401


async def test_confirmations_and_corrections_are_kept_and_measure_accuracy(
        desk: Desk) -> None:
    _, _, (phone, address) = await transcribed_ticket(desk)
    confirmed = await desk.call(desk.agent, "POST", f"/speech/suggestions/{address}/confirm",
                                expect=200)
    assert (confirmed["state"], confirmed["corrected_value"], confirmed["decided_by"]) == (
        "confirmed", None, desk.agent.principal.user_id)
    corrected = await desk.call(desk.agent, "POST", f"/speech/suggestions/{phone}/correct",
                                {"value": " 13812345679 "}, expect=200)
    assert (corrected["state"], corrected["value"], corrected["corrected_value"]) == (
        "corrected", "13812345678", "13812345679")
    assert corrected["decided_at"] is not None
    for blank in ("", "   "):
        await desk.call(desk.agent, "POST", f"/speech/suggestions/{phone}/correct",
                        {"value": blank}, expect=422)
    await desk.call(desk.agent, "POST", "/speech/suggestions/999999/confirm", expect=404)
    accuracy = await desk.call(desk.supervisor, "GET", "/speech/accuracy", expect=200)
    assert accuracy == {"fields": [
        {"field": "address", "suggested": 0, "confirmed": 1, "corrected": 0, "accuracy": 1.0},
        {"field": "phone", "suggested": 0, "confirmed": 0, "corrected": 1, "accuracy": 0.0}]}


async def test_transcribing_on_demand_queues_a_failed_transcript_again(desk: Desk) -> None:
    plain = await desk.call(desk.agent, "POST", "/tickets", {"title": "无录音"}, expect=201)
    refused = await desk.call(desk.agent, "POST", f"/tickets/{plain['id']}/transcribe",
                              expect=409)
    assert refused["error"]["code"] == "nothing_to_transcribe"
    ticket_id, transcript_id, _ = await transcribed_ticket(
        desk, audio_ref="ivr-message-1.wav", purpose="after_hours_message", status="failed",
        attempts=3, content=None, error="transcription failed: the decoding process died")
    async with desk.sessionmaker() as session, session.begin():
        row = await session.get(SpeechTranscript, transcript_id)
        row.ticket_id = ticket_id
    body = await desk.call(desk.agent, "POST", f"/tickets/{ticket_id}/transcribe", expect=202)
    [got] = body["transcripts"]
    assert (got["id"], got["status"], got["attempts"], got["error"]) == (
        transcript_id, "queued", 0, None)
    job = await desk.bus.fetch(QUEUE, GROUP, "probe", timeout=1.0)
    assert job is not None and job.payload == {"transcript_id": transcript_id}
