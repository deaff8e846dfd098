"""Transcription jobs end to end on a real database and the in-process bus: every stored
call recording is transcribed once and announced, a poison job stops after its attempts
with a visible status, a missing model fails clearly while the service stays up, and a
claim is never held twice."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.auth.principal import Role
from callcenter.clock import FrozenClock
from callcenter.recordings.service import STORED_TOPIC
from callcenter.settings import Settings
from callcenter.speech.models import SpeechTranscript
from callcenter.speech.pool import DecoderPool
from callcenter.speech.recognizer import Decoded
from callcenter.speech.service import (
    GROUP,
    QUEUE,
    TRANSCRIPT_FAILED,
    TRANSCRIPT_READY,
)
from callcenter.speech.transcript import Segment, Transcript, Word
from callcenter.tickets.models import TicketEvent
from callcenter.tickets.schemas import CallLinkIn, DraftIn
from callcenter.web.app import create_app
from tests.speech.pipeline_rig import (  # noqa: F401
    Pipeline,
    decoder_pool,
    make_pipeline,
    pipeline,
    sample,
    speech_config,
    stereo_call,
)
from tests.tickets.conftest import quick_user

WAIT = 120.0


@asynccontextmanager
async def running(rig: Pipeline) -> AsyncIterator[asyncio.Task[None]]:
    stop = asyncio.Event()
    task = asyncio.create_task(rig.worker.run(stop))
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def draft_for_call(rig: Pipeline, linkedid: str) -> int:
    agent = await quick_user(rig.sessionmaker, FrozenClock(datetime.now(UTC)), Role.AGENT,
                             None)
    ticket = await rig.tickets.create_draft(agent, DraftIn(
        title="通话", calls=[CallLinkIn(linkedid=linkedid)]))
    return ticket.id


async def transcription_events(sessionmaker: async_sessionmaker[AsyncSession],
                               ticket_id: int) -> list[dict[str, Any]]:
    async with sessionmaker() as session:
        return [e.data for e in (await session.scalars(select(TicketEvent).where(
            TicketEvent.ticket_id == ticket_id, TicketEvent.action == "transcription")
            .order_by(TicketEvent.id))).all()]


async def test_a_stored_call_recording_is_transcribed_once_and_announced(
        pipeline: Pipeline, tmp_path: Path) -> None:  # noqa: F811
    call = stereo_call(tmp_path / "call.wav", caller=[("r01", 6.0)], agent=[("a01", 0.0)],
                       duration=10.5)
    ticket_id = await draft_for_call(pipeline, "1700000000.11")
    recording = await pipeline.stored_recording(call, "1700000000.11")
    async with pipeline.bus.subscribe("speech.*") as events, running(pipeline):
        await pipeline.bus.publish(STORED_TOPIC, {"recording_id": recording.id,
                                                  "linkedid": "1700000000.11"})
        topic, event = await events.get(timeout=WAIT)
    assert topic == TRANSCRIPT_READY
    async with pipeline.sessionmaker() as session:
        rows = (await session.scalars(select(SpeechTranscript))).all()
    assert len(rows) == 1
    row = rows[0]
    assert (row.status, row.attempts, row.error) == ("done", 1, None)
    assert (row.recording_id, row.linkedid, row.purpose) == (recording.id, "1700000000.11",
                                                             "call")
    assert row.audio_ref == recording.store_key and row.audio_seconds == 10.5
    transcript = Transcript.from_json(row.content)
    assert {s.speaker for s in transcript.segments} == {"citizen", "agent"}
    assert event == {"transcript_id": row.id, "recording_id": recording.id,
                     "ticket_id": ticket_id, "ticket_ids": [ticket_id],
                     "linkedid": "1700000000.11", "purpose": "call", "status": "done",
                     "error": None, "language": "zh", "audio_seconds": 10.5}
    assert await transcription_events(pipeline.sessionmaker, ticket_id) == [
        {"status": "done", "transcript_id": row.id}]
    assert await pipeline.service.sweep() == 0  # nothing left to queue, nothing queued twice
    assert await pipeline.bus.fetch(QUEUE, GROUP, "probe", timeout=0.05) is None


async def test_the_sweep_queues_a_stored_recording_whose_event_was_missed(
        pipeline: Pipeline) -> None:  # noqa: F811
    recording = await pipeline.stored_recording(sample("r01"), "1700000000.12")
    assert await pipeline.service.sweep() == 1
    job = await pipeline.bus.fetch(QUEUE, GROUP, "probe", timeout=1.0)
    assert job is not None
    async with pipeline.sessionmaker() as session:
        row = await session.scalar(select(SpeechTranscript))
    assert job.payload == {"transcript_id": row.id}
    assert (row.recording_id, row.status) == (recording.id, "queued")
    assert await pipeline.service.sweep() == 0


async def test_a_poison_job_stops_after_max_attempts_with_its_reason(
        pipeline: Pipeline, tmp_path: Path) -> None:  # noqa: F811
    """An after-hours message whose file is garbage: three attempts, then ``failed``."""
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"RIFF----WAVEjunk")
    ref = pipeline.message("ivr-message-1700000000.13.wav", garbage)
    ticket_id = await draft_for_call(pipeline, "1700000000.13")
    async with pipeline.bus.subscribe(TRANSCRIPT_FAILED) as failed, running(pipeline):
        await pipeline.bus.enqueue(QUEUE, {"ticket_id": ticket_id,
                                           "linkedid": "1700000000.13",
                                           "recording_ref": ref,
                                           "purpose": "after_hours_message"})
        _, event = await failed.get(timeout=WAIT)
    async with pipeline.sessionmaker() as session:
        row = await session.scalar(select(SpeechTranscript))
    assert (row.status, row.attempts, row.ticket_id) == ("failed", 3, ticket_id)
    assert row.purpose == "after_hours_message" and row.content is None
    assert row.error.startswith("transcription failed: ivr-message-1700000000.13.wav: "
                                "not a PCM WAV file")
    assert event["status"] == "failed" and event["error"] == row.error
    assert event["ticket_id"] == ticket_id
    assert await transcription_events(pipeline.sessionmaker, ticket_id) == [
        {"status": "failed", "error": row.error, "transcript_id": row.id}]
    assert await pipeline.bus.fetch(QUEUE, GROUP, "probe", timeout=0.05) is None


async def test_a_missing_model_fails_clearly_and_the_service_stays_up(
        sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path,
        decoder_pool: DecoderPool) -> None:  # noqa: F811
    config = speech_config(models={"zh": tmp_path / "no-model"})
    rig = await make_pipeline(sessionmaker, tmp_path, decoder_pool, config)
    recording = await rig.stored_recording(sample("r01"), "1700000000.14")
    settings = Settings(speech=config)
    app = create_app(settings, sessionmaker, rig.bus, FrozenClock(datetime.now(UTC)))
    async with TestClient(TestServer(app)) as client, \
            rig.bus.subscribe("speech.*") as events, running(rig) as worker:
        await rig.service.request_recording(recording)
        topic, event = await events.get(timeout=WAIT)
        assert topic == TRANSCRIPT_FAILED
        health = await client.get("/healthz")
        assert health.status == 200
        body = await health.json()
        assert body["status"] == "ok"
        assert body["checks"]["speech"] == {
            "ok": False, "required": False, "languages": ["zh"], "missing": ["zh"],
            "problems": {"zh": f"speech model directory {tmp_path / 'no-model'} is missing"}}
        assert not worker.done()
        # the model is installed: transcribing on demand succeeds, nothing was lost
        config.models["zh"] = speech_config().models["zh"]
        await rig.service.request_recording(recording, again=True)
        topic, event = await events.get(timeout=WAIT)
        assert topic == TRANSCRIPT_READY
        assert (await (await client.get("/healthz")).json())["checks"]["speech"]["ok"] is True
    async with sessionmaker() as session:
        row = await session.scalar(select(SpeechTranscript))
    assert (row.status, row.attempts, row.error) == ("done", 1, None)
    await rig.bus.close()


def decoded(text: str) -> Decoded:
    words = tuple(Word(w, float(i), i + 0.5, 0.9) for i, w in enumerate(text.split()))
    segment = Segment("unknown", 0.0, words[-1].end, text, words)
    return Decoded(Transcript("zh", "m", 2.0, (segment,)).to_json(), 2.0, 1.0)


async def test_a_recording_is_claimed_by_one_worker_at_a_time(
        sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path,
        decoder_pool: DecoderPool) -> None:  # noqa: F811
    """Two deliveries of one job: one claim; a claim whose holder died (lease run out) is
    taken over, and the late holder's result is not stored over it."""
    clock = FrozenClock(datetime(2026, 11, 23, 2, 0, tzinfo=UTC))
    rig = await make_pipeline(sessionmaker, tmp_path, decoder_pool,
                              speech_config(lease_seconds=30.0), clock)
    row = await rig.service.request("ivr-message-1.wav", purpose="after_hours_message")
    again = await rig.service.request("ivr-message-1.wav", purpose="after_hours_message")
    assert again.id == row.id
    first = await rig.service.claim(row.id, "a")
    second = await rig.service.claim(row.id, "b")
    assert (first.outcome, second.outcome) == ("claimed", "busy")
    assert first.row.attempts == 1 and first.row.worker == "a"
    clock.advance(timedelta(seconds=20))
    assert await rig.service.heartbeat(first.row)  # the holder is alive: lease extended
    clock.advance(timedelta(seconds=20))
    assert (await rig.service.claim(row.id, "b")).outcome == "busy"
    clock.advance(timedelta(seconds=11))  # no heartbeat for 31 s: the holder is gone
    taken = await rig.service.claim(row.id, "b")
    assert taken.outcome == "claimed" and taken.row.attempts == 2
    assert not await rig.service.store(first.row, decoded("旧 的"))
    assert not await rig.service.heartbeat(first.row)
    assert await rig.service.store(taken.row, decoded("新 的"))
    assert (await rig.service.claim(row.id, "c")).outcome == "settled"
    async with sessionmaker() as session:
        rows = (await session.scalars(select(SpeechTranscript))).all()
        count = await session.scalar(select(func.count()).select_from(SpeechTranscript))
    assert count == 1
    assert rows[0].content["segments"][0]["text"] == "新 的" and rows[0].worker == "b"
    jobs = [await rig.bus.fetch(QUEUE, GROUP, "probe", timeout=0.05) for _ in range(2)]
    assert jobs[0] is not None and jobs[0].payload == {"transcript_id": row.id}
    assert jobs[1] is None  # the second request queued no second job
    await rig.bus.close()


async def ivr_message_draft(rig: Pipeline, linkedid: str) -> int:
    """The draft the IVR writes for an after-hours message (as its system account)."""
    from callcenter.auth.users import create_user, principal_for
    from callcenter.ivr.service import IVR_USER, MESSAGE_TITLE

    clock = FrozenClock(datetime.now(UTC))
    async with rig.sessionmaker() as session, session.begin():
        user = await create_user(session, username=IVR_USER, password=secrets.token_urlsafe(32),
                                 role=Role.AGENT, clock=clock, display_name="IVR (system)",
                                 active=False)
    ticket = await rig.tickets.create_draft(principal_for(user), DraftIn(
        title=MESSAGE_TITLE, content="", calls=[CallLinkIn(linkedid=linkedid)]))
    return ticket.id


async def test_an_after_hours_message_becomes_a_complete_draft_with_suggestions(
        pipeline: Pipeline) -> None:  # noqa: F811
    """c01: a complaint about street vendors on 解放路, phone 13611223344 spoken in digits
    (how well the words are read is the draft tests' concern; here: that the draft lands)."""
    from callcenter.speech.models import DraftSuggestion
    from callcenter.speech.service import DRAFT_READY
    from callcenter.tickets.models import Ticket

    ticket_id = await ivr_message_draft(pipeline, "1700000000.15")
    ref = pipeline.message("ivr-message-1700000000.15.wav", sample("c01"))
    async with pipeline.bus.subscribe(DRAFT_READY) as drafts, running(pipeline):
        await pipeline.bus.enqueue(QUEUE, {"ticket_id": ticket_id, "linkedid": "1700000000.15",
                                           "recording_ref": ref,
                                           "purpose": "after_hours_message"})
        _, event = await drafts.get(timeout=WAIT)
    async with pipeline.sessionmaker() as session:
        ticket = await session.get(Ticket, ticket_id)
        suggestions = (await session.scalars(select(DraftSuggestion).order_by(
            DraftSuggestion.id))).all()
    assert event["ticket_id"] == ticket_id and event["linkedid"] == "1700000000.15"
    assert [s["id"] for s in event["suggestions"]] == [s.id for s in suggestions]
    fields = {s.field for s in suggestions}
    assert {"summary", "type", "topic", "phone"} <= fields
    assert all(s.state == "suggested" and s.ticket_id == ticket_id for s in suggestions)
    assert ticket.status == "draft" and ticket.ticket_type == "complaint"
    assert ticket.title != "非工作时间留言 (after-hours message)" and ticket.title
    assert "留言转写：" in ticket.content and "投诉" in ticket.content
    addresses = [s for s in suggestions if s.field == "address"]
    best = max(addresses, key=lambda s: s.confidence).value if addresses else None
    assert ticket.location == best  # the most confident address, if one was heard
    phones = [s for s in suggestions if s.field == "phone"]
    assert ticket.caller_phone == max(phones, key=lambda s: s.confidence).value
    assert len(ticket.caller_phone) == 11
    assert ticket.topic is not None
