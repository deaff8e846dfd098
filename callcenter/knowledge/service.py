"""知识库: standard answers agents search during a call, and their upkeep.

Search is a portable inverted index: each article's title, tags and body are segmented with
jieba (same normalisation as duplicates: synonyms, numerals) into ``knowledge_terms`` rows
(term, weight). A query is segmented the same way and ranked by Σ weight × idf in one SQL
statement. Why not FTS5 / tsvector: neither segments Chinese (FTS5's tokenizers and
PostgreSQL's parsers split on spaces; zhparser is an extension few hosts have), so both would
need pre-segmented text anyway; one term table gives the same results on SQLite and
PostgreSQL, with the hotline's synonyms, and stays small (a knowledge base has thousands of
articles, not millions).
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from sqlalchemy import case, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.auth.principal import Principal
from callcenter.clock import Clock
from callcenter.knowledge.models import KnowledgeArticle, KnowledgeTerm
from callcenter.tickets.similarity import tokenize

TITLE_WEIGHT, TAG_WEIGHT, BODY_WEIGHT = 3.0, 2.0, 1.0
MAX_TERM_LENGTH = 64


def article_terms(title: str, body: str, tags: list[str]) -> dict[str, float]:
    """Term → weight: title and tag words count more than body words; tf is sub-linear."""
    weights: Counter[str] = Counter()
    for text, field_weight in ((title, TITLE_WEIGHT), (" ".join(tags), TAG_WEIGHT),
                               (body, BODY_WEIGHT)):
        for term, n in Counter(tokenize(text)).items():
            weights[term[:MAX_TERM_LENGTH]] += field_weight * (1.0 + math.log(n))
    for tag in tags:  # a tag is also a term as a whole, even when jieba would split it
        weights[tag.strip().lower()[:MAX_TERM_LENGTH]] += TAG_WEIGHT
    return dict(weights)


async def index_article(session: AsyncSession, article: KnowledgeArticle) -> None:
    """(Re)write the article's terms; call after every change to its text."""
    await session.execute(delete(KnowledgeTerm).where(KnowledgeTerm.article_id == article.id))
    session.add_all(KnowledgeTerm(article_id=article.id, term=term, weight=weight)
                    for term, weight in article_terms(article.title, article.body,
                                                      list(article.tags or [])).items())


async def save_article(session: AsyncSession, clock: Clock, principal: Principal | None, *,
                       article: KnowledgeArticle | None = None, **values: Any
                       ) -> KnowledgeArticle:
    """Create (``article`` None) or update an article and re-index it."""
    now = clock.now()
    if article is None:
        article = KnowledgeArticle(created_at=now, active=True, tags=[])
        session.add(article)
    for key, value in values.items():
        setattr(article, key, value)
    article.updated_at = now
    article.updated_by = principal.user_id if principal else None
    await session.flush()
    await index_article(session, article)
    return article


async def search(session: AsyncSession, query: str, *, topic: str | None = None,
                 limit: int = 10) -> list[tuple[KnowledgeArticle, float]]:
    """Active articles matching ``query``, best first, with their scores."""
    terms = sorted({t[:MAX_TERM_LENGTH] for t in tokenize(query)} | {query.strip().lower()})
    terms = [t for t in terms if t][:50]
    if not terms:
        return []
    total = await session.scalar(select(func.count()).select_from(KnowledgeArticle)
                                 .where(KnowledgeArticle.active.is_(True))) or 0
    df = dict((await session.execute(
        select(KnowledgeTerm.term, func.count()).where(KnowledgeTerm.term.in_(terms))
        .group_by(KnowledgeTerm.term))).all())
    if not df:
        return []
    idf = {t: math.log(1.0 + (total + 1) / (n + 0.5)) for t, n in df.items()}
    score = sum_of(idf)
    stmt = (select(KnowledgeArticle, score.label("score"))
            .join(KnowledgeTerm, KnowledgeTerm.article_id == KnowledgeArticle.id)
            .where(KnowledgeTerm.term.in_(list(idf)), KnowledgeArticle.active.is_(True))
            .group_by(KnowledgeArticle.id)
            .order_by(score.desc(), KnowledgeArticle.updated_at.desc(), KnowledgeArticle.id)
            .limit(limit))
    if topic:
        stmt = stmt.where(KnowledgeArticle.topic == topic)
    return [(article, round(float(s), 4)) for article, s in (await session.execute(stmt)).all()]


def sum_of(idf: dict[str, float]) -> Any:
    """SUM(weight × idf(term)) as SQL: the idf values are bound as a CASE expression."""
    return func.sum(KnowledgeTerm.weight * case(idf, value=KnowledgeTerm.term, else_=0.0))
