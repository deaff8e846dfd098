"""Duplicate requests (重复件): the same caller about the same matter within a window.

The State Council asks offices to merge duplicate requests; the agent confirms the link
(the tickets API), this module only proposes candidates: earlier orders from the same phone
within ``window_days``, ranked by text similarity (jieba words, see ``similarity.py``), the
same topic counting a little extra.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.tickets.models import Ticket, TicketStatus
from callcenter.tickets.similarity import TextFeatures, cosine, features, same_place
from callcenter.tickets.terms import terms_of, ticket_text

MIN_SIMILARITY = 0.3
SAME_TOPIC_BONUS = 0.1
MAX_CANDIDATES = 10
# A draft is not an order yet; a refused one is not a matter to merge into.
NOT_CANDIDATES = (TicketStatus.DRAFT, TicketStatus.NOT_ACCEPTED)


@dataclass(frozen=True)
class DuplicateCandidate:
    ticket: Ticket
    score: float


async def rank_duplicate_candidates(
        session: AsyncSession, *, caller_phone: str | None, content: str, topic: str | None,
        at: datetime, window_days: int, min_similarity: float = MIN_SIMILARITY,
        limit: int = MAX_CANDIDATES, features_of_content: TextFeatures | None = None,
        ) -> list[DuplicateCandidate]:
    """Earlier orders of ``caller_phone`` like ``content``, best first, with their scores.

    ``features_of_content``: the content's features when the caller already has them
    (registration segments the text once).
    """
    if not caller_phone or not content.strip():
        return []
    rows = (await session.scalars(
        select(Ticket).where(Ticket.caller_phone == caller_phone,
                             Ticket.created_at >= at - timedelta(days=window_days),
                             Ticket.created_at <= at,
                             Ticket.status.not_in([str(s) for s in NOT_CANDIDATES]))
        .order_by(Ticket.created_at.desc()).limit(200))).all()
    if not rows:
        return []
    known = await terms_of(session, [(t.id, ticket_text(t.title, t.content)) for t in rows])
    query = features_of_content or features(content)
    ranked = []
    for ticket in rows:
        if not same_place(query.places, known[ticket.id].places):
            continue
        score = cosine(query.vector, known[ticket.id].vector)
        if score < min_similarity:
            continue
        if topic and ticket.topic == topic:
            score += SAME_TOPIC_BONUS
        ranked.append(DuplicateCandidate(ticket, round(min(score, 1.0), 4)))
    ranked.sort(key=lambda c: (-c.score, -c.ticket.id))
    return ranked[:limit]


async def find_duplicate_candidates(
        session: AsyncSession, *, caller_phone: str | None, content: str, topic: str | None,
        at: datetime, window_days: int, min_similarity: float = MIN_SIMILARITY) -> list[Ticket]:
    """The orders an agent may link the new one to, most similar first."""
    ranked = await rank_duplicate_candidates(
        session, caller_phone=caller_phone, content=content, topic=topic, at=at,
        window_days=window_days, min_similarity=min_similarity)
    return [c.ticket for c in ranked]
