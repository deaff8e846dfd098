"""A revisit's spoken comment (the citizen's words after the tone, left in the monitor folder
by ``RECORD FILE``) is transcribed by the speech jobs once the revisit is done, with the real
model, and its words are written on the order's timeline next to the revisit's result."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from callcenter.auth.principal import Role
from callcenter.clock import FrozenClock
from callcenter.revisit.models import Revisit, RevisitAttempt, RevisitCampaign
from callcenter.speech.models import SpeechTranscript
from callcenter.speech.service import REVISIT_COMMENT, TRANSCRIPT_READY
from callcenter.tickets.schemas import DraftIn
from tests.speech.pipeline_rig import Pipeline, decoder_pool, pipeline, sample  # noqa: F401
from tests.speech.test_jobs import running, transcription_events
from tests.tickets.conftest import quick_user

WAIT = 120.0


async def revisit(rig: Pipeline, ticket_id: int, campaign_id: int, *, state: str,
                  channel_id: str, comment_file: str | None) -> int:
    """A revisit of the order with one answered attempt on ``channel_id``."""
    now = datetime.now(UTC)
    async with rig.sessionmaker() as session, session.begin():
        row = Revisit(campaign_id=campaign_id, ticket_id=ticket_id, source="reply",
                      state=state, due_at=now, attempts=1, score="3", solved=False,
                      comment_file=comment_file, created_at=now,
                      finished_at=now if state == "done" else None,
                      result="unsatisfied" if state == "done" else None)
        session.add(row)
        await session.flush()
        session.add(RevisitAttempt(revisit_id=row.id, number=1, channel_id=channel_id,
                                   outcome="answered", started_at=now))
        return row.id


async def setting(rig: Pipeline) -> tuple[int, int]:
    """An order and a revisit campaign."""
    now = datetime.now(UTC)
    agent = await quick_user(rig.sessionmaker, FrozenClock(now), Role.AGENT, None)
    ticket = await rig.tickets.create_draft(agent, DraftIn(title="占道经营"))
    async with rig.sessionmaker() as session, session.begin():
        campaign = RevisitCampaign(name="default", settings={}, paused=False, claim_seq=0,
                                   created_at=now, updated_at=now)
        session.add(campaign)
        await session.flush()
        return ticket.id, campaign.id


async def comment_rows(rig: Pipeline) -> list[tuple[Any, ...]]:
    async with rig.sessionmaker() as session:
        return [(t.audio_ref, t.purpose, t.ticket_id, t.linkedid, t.status) for t in (
            await session.scalars(select(SpeechTranscript).order_by(SpeechTranscript.id)))]


async def test_a_done_revisits_spoken_comment_is_transcribed_onto_the_timeline(
        pipeline: Pipeline) -> None:  # noqa: F811
    ticket_id, campaign_id = await setting(pipeline)
    pipeline.message("revisit-comment-rv-7.wav", sample("c01"))
    await revisit(pipeline, ticket_id, campaign_id, state="done", channel_id="rv-7",
                  comment_file="revisit-comment-rv-7.wav")

    assert await pipeline.service.sweep() == 1
    assert await comment_rows(pipeline) == [
        ("revisit-comment-rv-7.wav", REVISIT_COMMENT, ticket_id, "rv-7", "queued")]
    async with pipeline.bus.subscribe(TRANSCRIPT_READY) as ready, running(pipeline):
        _, event = await ready.get(timeout=WAIT)
    assert (event["purpose"], event["ticket_id"], event["status"]) == (
        REVISIT_COMMENT, ticket_id, "done")
    [written] = await transcription_events(pipeline.sessionmaker, ticket_id)
    assert set(written) == {"status", "transcript_id", "purpose", "text"}
    assert (written["status"], written["transcript_id"], written["purpose"]) == (
        "done", event["transcript_id"], REVISIT_COMMENT)
    # c01: "你好，我要投诉，菜市场门口每天早上有人占道经营，...，地址是解放路二十号，..."
    assert written["text"].startswith("你好我要投诉菜市场门口")
    assert "占道经营" in written["text"]
    assert await pipeline.service.sweep() == 0  # transcribed once


async def test_only_a_done_revisit_with_a_comment_is_queued(
        pipeline: Pipeline) -> None:  # noqa: F811
    ticket_id, campaign_id = await setting(pipeline)
    await revisit(pipeline, ticket_id, campaign_id, state="answered", channel_id="rv-8",
                  comment_file="revisit-comment-rv-8.wav")  # the survey is still on
    await revisit(pipeline, ticket_id, campaign_id, state="done", channel_id="rv-9",
                  comment_file=None)  # the citizen left no comment
    assert await pipeline.service.sweep() == 0
    assert await comment_rows(pipeline) == []
    async with pipeline.sessionmaker() as session, session.begin():
        row = await session.scalar(select(Revisit).where(Revisit.state == "answered"))
        row.state = "done"
    assert await pipeline.service.sweep() == 1
    assert await comment_rows(pipeline) == [
        ("revisit-comment-rv-8.wav", REVISIT_COMMENT, ticket_id, "rv-8", "queued")]
