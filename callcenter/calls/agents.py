"""Per-agent counts for a wallboard ("per agent, today"), from ``call_agent_attempt``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.calls.models import CallAgentAttempt


@dataclass(frozen=True, slots=True)
class AgentCounts:
    """Calls a queue offered an agent (each ringing), missed (rang out), answered; and the
    talk Asterisk reported for the answered ones (``AgentComplete``, whole seconds)."""

    agent_name: str
    offered: int
    missed: int
    answered: int
    talk_seconds: float


async def agent_counts(session: AsyncSession, since: datetime, until: datetime, *,
                       pbx: str | None = None, queue: str | None = None
                       ) -> list[AgentCounts]:
    """Counts per agent for attempts that began in ``[since, until)`` (the hotline's day in
    its own zone is the caller's to compute), by agent name."""
    a = CallAgentAttempt
    query = (select(a.agent_name, func.count(),
                    func.sum(case((a.outcome == "missed", 1), else_=0)),
                    func.sum(case((a.outcome == "answered", 1), else_=0)),
                    func.coalesce(func.sum(a.talk_seconds), 0.0))
             .where(a.called_at >= since, a.called_at < until)
             .group_by(a.agent_name).order_by(a.agent_name))
    if pbx is not None:
        query = query.where(a.pbx == pbx)
    if queue is not None:
        query = query.where(a.queue == queue)
    rows = (await session.execute(query)).all()
    return [AgentCounts(name, int(offered), int(missed or 0), int(answered or 0), float(talk))
            for name, offered, missed, answered, talk in rows]
