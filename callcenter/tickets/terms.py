"""Each order's text as a stored term vector (``ticket_terms``), computed once.

Duplicate proposals and hotspot detection both compare orders by these vectors; jieba
segmentation is the slow part, so a vector is written at registration and only orders
without one are segmented when they are first compared.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.tickets.models import TicketTerms
from callcenter.tickets.similarity import TextFeatures, features

log = logging.getLogger(__name__)


def ticket_text(title: str | None, content: str | None) -> str:
    return f"{title or ''} {content or ''}".strip()


async def terms_of(session: AsyncSession,
                   rows: list[tuple[int, str]]) -> dict[int, TextFeatures]:
    """Features of ``(ticket_id, text)``: stored ones, computing and storing the rest."""
    ids = [ticket_id for ticket_id, _ in rows]
    stored: dict[int, TextFeatures] = {}
    for start in range(0, len(ids), 5000):
        result = await session.execute(
            select(TicketTerms.ticket_id, TicketTerms.terms, TicketTerms.places)
            .where(TicketTerms.ticket_id.in_(ids[start:start + 5000])))
        for ticket_id, terms, places in result:
            stored[ticket_id] = TextFeatures(terms, frozenset(places or ()))
    missing = [(ticket_id, text) for ticket_id, text in rows if ticket_id not in stored]
    stored.update(await store_missing_terms(session, missing))
    return stored


async def store_missing_terms(session: AsyncSession,
                         missing: list[tuple[int, str]]) -> dict[int, TextFeatures]:
    """Segment and store the features of orders that have none (registered before terms
    were stored at registration); the next scan reads them."""
    if len(missing) > 50:  # segmentation is CPU work: keep the event loop responsive
        computed = await asyncio.to_thread(lambda: [features(text) for _, text in missing])
    else:
        computed = [features(text) for _, text in missing]
    found: dict[int, TextFeatures] = {}
    for (ticket_id, _), features_of in zip(missing, computed, strict=True):
        found[ticket_id] = features_of
        session.add(TicketTerms(ticket_id=ticket_id, terms=features_of.vector,
                                places=sorted(features_of.places)))
    if missing:
        log.info("tickets.terms_computed count=%d", len(missing))
    return found
