"""A call's transcript and draft handed to the desk of the agents who talked on the call: only
to them, shaped as the API shows a call's transcripts, numbers masked for a role that may not
read the caller's phone, each hand-over audited like a read; and, with the real model, the
worker hands over what it just transcribed."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.auth.config import AuthConfig, MaskingRule
from callcenter.auth.models import AuditLog
from callcenter.auth.principal import Role
from callcenter.auth.privacy import PiiPolicy
from callcenter.bus.memory import MemoryBus
from callcenter.clock import SystemClock
from callcenter.recordings.config import RecordingsConfig
from callcenter.recordings.service import STORED_TOPIC
from callcenter.speech.config import SpeechConfig
from callcenter.speech.drafting import DeskDrafts
from callcenter.speech.http import SuggestionOut, TranscriptOut
from callcenter.speech.models import DraftSuggestion, SpeechTranscript
from tests.speech.desk_rig import desk_agent, drafted_call, talked
from tests.speech.pipeline_rig import (  # noqa: F401
    Pipeline,
    decoder_pool,
    pipeline,
    stereo_call,
)
from tests.speech.test_jobs import running

WAIT = 120.0


def desk(sessionmaker: async_sessionmaker[AsyncSession], bus: MemoryBus,
         auth: AuthConfig | None = None) -> DeskDrafts:
    from callcenter.speech.service import SpeechService

    service = SpeechService(sessionmaker, SystemClock(), SpeechConfig(), RecordingsConfig(),
                            bus)
    return DeskDrafts(service, PiiPolicy(auth or AuthConfig()))


async def published(subscription: Any) -> dict[str, dict[str, Any]]:
    """Everything published so far on the subscription, by topic."""
    found = {}
    while True:
        try:
            topic, event = await subscription.get(timeout=0.2)
        except TimeoutError:
            return found
        found[topic] = event


async def audits(sessionmaker: async_sessionmaker[AsyncSession]) -> list[tuple[Any, ...]]:
    async with sessionmaker() as session:
        return [(a.user_id, a.action, a.object_type, a.object_id, a.fields)
                for a in (await session.scalars(select(AuditLog).where(
                    AuditLog.action == "speech.transcript.view").order_by(AuditLog.id))).all()]


def as_api(row: SpeechTranscript, suggestions: list[DraftSuggestion], masked: bool
           ) -> dict[str, Any]:
    return TranscriptOut.of(row, suggestions, masked).model_dump(mode="json")


def same_times(payload: dict[str, Any]) -> dict[str, Any]:
    """Times as datetimes (the API writes ``Z``, isoformat ``+00:00``: the same instant)."""
    def parsed(value: Any) -> Any:
        return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else value
    return {**payload, "queued_at": parsed(payload["queued_at"]),
            "finished_at": parsed(payload["finished_at"]),
            "suggestions": [{**s, "decided_at": parsed(s["decided_at"])}
                            for s in payload["suggestions"]]}


async def test_the_draft_goes_to_each_agent_who_talked_on_the_call_and_no_other(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    bus = MemoryBus()
    first, first_id = await desk_agent(sessionmaker, "1001")
    taker, taker_id = await desk_agent(sessionmaker, "1002")
    _, other_id = await desk_agent(sessionmaker, "1003")
    await talked(sessionmaker, first_id, "1700000100.5", minutes_ago=6)
    await talked(sessionmaker, taker_id, "1700000100.5", minutes_ago=4)  # transferred to
    await talked(sessionmaker, other_id, "1700000200.9")
    transcript_id, _ = await drafted_call(sessionmaker, "1700000100.5")
    async with bus.subscribe("speech.desk.*") as events:
        sent = await desk(sessionmaker, bus).hand_over(transcript_id)
        found = await published(events)
    assert sent == sorted([first_id, taker_id])
    assert set(found) == {f"speech.desk.{first_id}", f"speech.desk.{taker_id}"}
    payload = found[f"speech.desk.{first_id}"]
    assert (payload["linkedid"], payload["ticket_id"], payload["ticket_ids"]) == (
        "1700000100.5", None, [])
    async with sessionmaker() as session:
        row = await session.get(SpeechTranscript, transcript_id)
        suggestions = list((await session.scalars(select(DraftSuggestion).order_by(
            DraftSuggestion.id))).all())
    api = as_api(row, suggestions, False)
    api["segments"] = [{k: v for k, v in s.items() if k != "words"} for s in api["segments"]]
    assert same_times(payload["transcript"]) == same_times(api)
    assert [s["speaker"] for s in payload["transcript"]["segments"]] == ["agent", "citizen"]
    assert payload["transcript"]["segments"][1]["text"].endswith("电话 13611223344")
    assert await audits(sessionmaker) == [
        (first.id, "speech.transcript.view", "call", "1700000100.5", ["transcript"]),
        (taker.id, "speech.transcript.view", "call", "1700000100.5", ["transcript"])]


async def test_an_agent_who_may_not_read_numbers_gets_them_masked(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    bus = MemoryBus()
    auth = AuthConfig(masking=[MaskingRule(role=Role.AGENT, fields=["name"])])
    _, agent_id = await desk_agent(sessionmaker, "1001")
    await talked(sessionmaker, agent_id, "1700000300.1")
    transcript_id, _ = await drafted_call(sessionmaker, "1700000300.1")
    async with bus.subscribe("speech.desk.*") as events:
        await desk(sessionmaker, bus, auth).hand_over(transcript_id)
        (payload,) = (await published(events)).values()
    transcript = payload["transcript"]
    said = transcript["segments"][1]
    assert said["text"] == "我要 投诉 解放路 二十号 占道 经营 电话 136****3344"
    assert "13611223344" not in str(payload)
    phone = next(s for s in transcript["suggestions"] if s["field"] == "phone")
    assert (phone["value"], phone["evidence"]) == ("136****3344", "电话 136****3344")
    async with sessionmaker() as session:
        stored = await session.get(DraftSuggestion, phone["id"])
    assert phone == {**SuggestionOut.of(stored, True).model_dump(mode="json"),
                     "decided_at": None}


async def test_a_call_no_agent_talked_on_and_a_message_go_to_no_desk(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    bus = MemoryBus()
    _, agent_id = await desk_agent(sessionmaker, "1001")
    async with sessionmaker() as session, session.begin():
        from callcenter.queues.models import AgentStatePeriod

        session.add(AgentStatePeriod(agent_id=agent_id, state="ringing", queue="hotline",
                                     linkedid="1700000400.1",
                                     started_at=datetime.fromisoformat(
                                         "2026-12-02T02:00:00+00:00")))
    unanswered, _ = await drafted_call(sessionmaker, "1700000400.1")  # it only rang
    message, _ = await drafted_call(sessionmaker, "1700000500.1")
    await talked(sessionmaker, agent_id, "1700000500.1")
    async with sessionmaker() as session, session.begin():
        row = await session.get(SpeechTranscript, message)
        row.purpose = "after_hours_message"
    service = desk(sessionmaker, bus)
    async with bus.subscribe("speech.desk.*") as events:
        assert await service.hand_over(unanswered) == []
        assert await service.hand_over(message) == []
        assert await service.hand_over(10_000) == []
        assert await published(events) == {}
    assert await audits(sessionmaker) == []


async def test_the_worker_hands_what_it_transcribed_to_the_agent_of_the_call(
        pipeline: Pipeline, tmp_path: Path) -> None:  # noqa: F811
    linkedid = "1700000600.3"
    user, agent_id = await desk_agent(pipeline.sessionmaker, "1001")
    await talked(pipeline.sessionmaker, agent_id, linkedid)
    pipeline.worker.desk = DeskDrafts(pipeline.service, PiiPolicy(AuthConfig()))
    call = stereo_call(tmp_path / "call.wav", caller=[("c01", 4.0)], agent=[("a01", 0.0)],
                       duration=16.0)
    recording = await pipeline.stored_recording(call, linkedid)
    async with pipeline.bus.subscribe(f"speech.desk.{agent_id}") as desk_events, \
            running(pipeline):
        await pipeline.bus.publish(STORED_TOPIC, {"recording_id": recording.id,
                                                  "linkedid": linkedid})
        _, payload = await desk_events.get(timeout=WAIT)
    transcript = payload["transcript"]
    assert (payload["linkedid"], transcript["status"], transcript["purpose"]) == (
        linkedid, "done", "call")
    assert {s["speaker"] for s in transcript["segments"]} == {"citizen", "agent"}
    said = "".join(s["text"].replace(" ", "") for s in transcript["segments"]
                   if s["speaker"] == "citizen")
    assert "投诉" in said
    by_field = {s["field"]: s for s in transcript["suggestions"]}
    assert by_field["type"]["value"] == "complaint"
    assert by_field["type"]["state"] == "suggested" and 0 < by_field["type"]["confidence"] <= 1
    assert 4.0 <= by_field["type"]["start"] < by_field["type"]["end"] <= 16.0
    assert await audits(pipeline.sessionmaker) == [
        (user.id, "speech.transcript.view", "call", linkedid, ["transcript"])]

