"""Rows for the desk tests: an agent who talked on a call (its ``on_call`` period, as the
queues listener writes it, and its screen-pop), and a call's finished transcript with its
draft suggestions, as a speech worker leaves them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.auth.models import User
from callcenter.auth.principal import Role
from callcenter.auth.testing import make_user
from callcenter.clock import SystemClock
from callcenter.queues.models import Agent, AgentStatePeriod, ScreenPop
from callcenter.speech.models import DraftSuggestion, SpeechTranscript
from callcenter.speech.transcript import Segment, Transcript, Word

CALLER = "13800138000"


async def desk_agent(sessionmaker: async_sessionmaker[AsyncSession], extension: str
                     ) -> tuple[User, int]:
    """An agent (user and ``queue_agents`` row) on ``PJSIP/<extension>``."""
    user = await make_user(sessionmaker, SystemClock(), role=Role.AGENT)
    async with sessionmaker() as session, session.begin():
        agent = Agent(user_id=user.id, member_name=f"agent-{extension}", extension=extension,
                      interface=f"PJSIP/{extension}", logged_in=True, state="on_call")
        session.add(agent)
        await session.flush()
        return user, agent.id


async def talked(sessionmaker: async_sessionmaker[AsyncSession], agent_id: int,
                 linkedid: str, *, minutes_ago: int = 5, pop: bool = True) -> None:
    """``agent_id`` answered ``linkedid`` from the queue and talked on it (and, with
    ``pop``, it is the agent's current call)."""
    started = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    async with sessionmaker() as session, session.begin():
        session.add(AgentStatePeriod(agent_id=agent_id, state="ringing", queue="hotline",
                                     linkedid=linkedid, started_at=started,
                                     ended_at=started + timedelta(seconds=3)))
        session.add(AgentStatePeriod(agent_id=agent_id, state="on_call", queue="hotline",
                                     linkedid=linkedid, started_at=started
                                     + timedelta(seconds=3)))
        if pop:
            await session.merge(ScreenPop(
                agent_id=agent_id, linkedid=linkedid, queue="hotline", phase="answered",
                caller_channel=f"PJSIP/trunk-{linkedid}", agent_channel=f"PJSIP/x-{linkedid}",
                caller_number=CALLER, caller_name=None, offered_at=started,
                answered_at=started + timedelta(seconds=3)))


def transcript_of(linkedid: str) -> Transcript:
    """The agent greets (0-2 s), the citizen complains (3-7.9 s) and gives a phone."""
    words = (Word("我要", 3.0, 3.4, 0.9), Word("投诉", 3.4, 3.9, 0.95),
             Word("解放路", 4.0, 4.8, 0.8), Word("二十号", 4.8, 5.3, 0.8),
             Word("占道", 5.3, 5.8, 0.9), Word("经营", 5.8, 6.2, 0.9),
             Word("电话", 6.3, 6.7, 0.9), Word("13611223344", 6.7, 7.9, 0.85))
    return Transcript("zh", "vosk-model-small-cn-0.22", 9.0, (
        Segment("agent", 0.0, 2.0, "您好 一二三四五 热线", (Word("您好", 0.0, 0.8, 0.9),)),
        Segment("citizen", 3.0, 7.9, " ".join(w.text for w in words), words,
                alternatives=("电话 13611223344", "电话 一三六一一二二三三四四"))))


async def drafted_call(sessionmaker: async_sessionmaker[AsyncSession], linkedid: str, *,
                       ticket_id: int | None = None) -> tuple[int, dict[str, int]]:
    """A done transcript of the call with three suggestions (type, address, phone): its
    id and the suggestions' ids by field."""
    now = datetime.now(UTC)
    async with sessionmaker() as session, session.begin():
        row = SpeechTranscript(
            audio_ref=f"recordings/2026/12/02/{linkedid}.wav", linkedid=linkedid,
            ticket_id=ticket_id, purpose="call", language="zh", status="done", attempts=1,
            model="vosk-model-small-cn-0.22", content=transcript_of(linkedid).to_json(),
            audio_seconds=9.0, decode_seconds=1.5, queued_at=now, finished_at=now)
        session.add(row)
        await session.flush()
        suggestions = [
            DraftSuggestion(transcript_id=row.id, ticket_id=ticket_id, field=field,
                            value=value, confidence=confidence, span_start=start,
                            span_end=end, evidence=evidence, needs_confirmation=False,
                            state="suggested", created_at=now)
            for field, value, confidence, start, end, evidence in (
                ("type", "complaint", 0.87, 3.0, 3.9, "我要 投诉"),
                ("address", "解放路二十号", 0.62, 4.0, 5.3, "解放路 二十号"),
                ("phone", "13611223344", 0.9, 6.3, 7.9, "电话 13611223344"))]
        session.add_all(suggestions)
        await session.flush()
        return row.id, {s.field: s.id for s in suggestions}
