"""Hotspots (热点): platform-level supervision when many people raise one matter.

Two triggers (seed 003): ``hotspot_min_callers`` distinct callers about the same matter, or
``hotspot_min_unit_complaints`` complaints handled by the same unit, within
``hotspot_window_days``. "Same matter" is a cluster of orders whose term vectors are close
(cosine ≥ ``hotspot_similarity``), built greedily in arrival order; candidate clusters are
found through their key terms, so the cost grows with the window, not with its square.
A hotspot is flagged once: later scans update the open flag (tickets, count) instead of
raising a second one; a closed flag lets a new one be raised.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.auth.principal import Role
from callcenter.supervision.models import (
    FlagKind,
    FlagStatus,
    NotificationKind,
    SupervisionFlag,
)
from callcenter.supervision.notifications import dedupe_key, store_notifications
from callcenter.tickets.models import Ticket, TicketStatus, TicketTerms, TicketType
from callcenter.tickets.similarity import (
    TermVector,
    TextFeatures,
    centroid,
    cosine,
    key_terms,
    same_place,
)
from callcenter.tickets.terms import store_missing_terms, ticket_text

log = logging.getLogger(__name__)

NOT_COUNTED = (TicketStatus.DRAFT, TicketStatus.NOT_ACCEPTED)
CANDIDATE_TERMS = 5
CENTROID_TERMS = 30
EXACT_CENTROID_UP_TO = 20
CENTROID_EVERY = 10


async def window_features(session: AsyncSession, since: datetime, now: datetime
                          ) -> list[tuple[int, str | None, TextFeatures]]:
    """``(ticket id, caller phone, features)`` of the window's orders, oldest first.

    One query joins the stored term vectors (written at registration); only an order
    without them sends its text, to be segmented now.
    """
    no_terms = TicketTerms.ticket_id.is_(None)
    rows = (await session.execute(
        select(Ticket.id, Ticket.caller_phone, TicketTerms.terms, TicketTerms.places,
               case((no_terms, Ticket.title)), case((no_terms, Ticket.content)))
        .outerjoin(TicketTerms, TicketTerms.ticket_id == Ticket.id)
        .where(Ticket.created_at >= since, Ticket.created_at <= now,
               Ticket.status.not_in([str(s) for s in NOT_COUNTED]))
        .order_by(Ticket.created_at, Ticket.id))).all()
    computed = await store_missing_terms(session, [(i, ticket_text(title, content))
                                              for i, _, terms, _, title, content in rows
                                              if terms is None])
    return [(i, phone, computed[i] if terms is None
             else TextFeatures(terms, frozenset(places or ())))
            for i, phone, terms, places, _, _ in rows]


@dataclass
class Cluster:
    ids: list[int] = field(default_factory=list)
    phones: set[str] = field(default_factory=set)
    places: Counter[str] = field(default_factory=Counter)
    total: Counter[str] = field(default_factory=Counter)
    vector: TermVector = field(default_factory=dict)

    def add(self, ticket_id: int, phone: str | None, found: TextFeatures) -> bool:
        """Add an order; True when the centroid was recomputed.

        A large cluster's centroid hardly moves with one more order, so past
        ``EXACT_CENTROID_UP_TO`` orders it is recomputed every ``CENTROID_EVERY`` orders
        (sorting the cluster's terms on every add was most of the clustering time).
        """
        self.ids.append(ticket_id)
        if phone:
            self.phones.add(phone)
        self.places.update(found.places)
        self.total.update(found.vector)
        size = len(self.ids)
        if size > EXACT_CENTROID_UP_TO and size % CENTROID_EVERY:
            return False
        self.vector = centroid([dict(self.total.most_common(CENTROID_TERMS))])
        return True

    def summary(self) -> str:
        where = "、".join(p for p, _ in self.places.most_common(2))
        what = "、".join(key_terms(self.vector, 6))
        return f"{where}：{what}" if where else what


def cluster_matters(items: list[tuple[int, str | None, TextFeatures]],
                    threshold: float) -> list[Cluster]:
    """Greedy leader clustering of ``(ticket_id, phone, features)`` in the given order.

    An order joins the closest cluster (cosine to its centroid ≥ ``threshold``) that does
    not name other places than the order does.
    """
    clusters: list[Cluster] = []
    by_term: dict[str, set[int]] = {}
    for ticket_id, phone, found in items:
        if not found.vector:
            continue
        candidates: set[int] = set()
        for term in key_terms(found.vector, CANDIDATE_TERMS):
            candidates |= by_term.get(term, set())
        best, best_score = None, threshold
        for index in sorted(candidates):
            cluster = clusters[index]
            if not same_place(found.places, cluster.places.keys()):
                continue
            score = cosine(found.vector, cluster.vector)
            if score >= best_score:
                best, best_score = index, score
        if best is None:
            best = len(clusters)
            clusters.append(Cluster())
        if clusters[best].add(ticket_id, phone, found):
            for term in key_terms(clusters[best].vector, CANDIDATE_TERMS):
                by_term.setdefault(term, set()).add(best)
    return clusters


async def detect_hotspots(session: AsyncSession, *, now: datetime, config: Any,
                          day: date | None = None) -> dict[str, int]:
    """Raise or update flags for the window ending at ``now``; returns counts by outcome.

    ``config`` is a ``SupervisionConfig``; ``day`` (the office's local date) dates the
    supervisors' notification of a new flag.
    """
    day = day or now.date()
    since = now - timedelta(days=config.hotspot_window_days)
    counts: Counter[str] = Counter()
    await _matter_hotspots(session, now, day, since, config, counts)
    await _unit_hotspots(session, now, day, since, config, counts)
    return dict(counts)


async def _matter_hotspots(session: AsyncSession, now: datetime, day: date, since: datetime,
                           config: Any,
                           counts: Counter[str]) -> None:
    items = await window_features(session, since, now)
    clusters = await asyncio.to_thread(cluster_matters, items, config.hotspot_similarity)
    open_flags = await _open_flags(session, FlagKind.MATTER)
    for cluster in clusters:
        if len(cluster.phones) < config.hotspot_min_callers:
            continue
        flag = _matching_flag(open_flags, cluster, config.hotspot_similarity)
        ticket_ids = sorted(set(cluster.ids) | set(flag.ticket_ids if flag else []))
        callers = await session.scalar(select(func.count(func.distinct(Ticket.caller_phone)))
                                       .where(Ticket.id.in_(ticket_ids)))
        summary = cluster.summary()
        if flag is None:
            flag = await _raise(session, FlagKind.MATTER, now, day, config, summary=summary,
                                terms=cluster.vector, ticket_ids=ticket_ids, count=callers,
                                places=sorted(cluster.places))
            open_flags.append(flag)
            counts["matter_raised"] += 1
        elif _update(flag, now, ticket_ids, callers, cluster.vector):
            counts["matter_updated"] += 1


def _matching_flag(flags: list[SupervisionFlag], cluster: Cluster,
                   threshold: float) -> SupervisionFlag | None:
    ids = set(cluster.ids)
    for flag in flags:
        if ids & set(flag.ticket_ids):
            return flag
    for flag in flags:
        if (same_place(set(cluster.places), set(flag.places or ()))
                and cosine(cluster.vector, flag.terms) >= threshold):
            return flag
    return None


async def _unit_hotspots(session: AsyncSession, now: datetime, day: date, since: datetime,
                         config: Any,
                         counts: Counter[str]) -> None:
    complaints = (await session.execute(
        select(Ticket.lead_unit_id, Ticket.id)
        .where(Ticket.created_at >= since, Ticket.created_at <= now,
               Ticket.ticket_type == str(TicketType.COMPLAINT),
               Ticket.lead_unit_id.is_not(None),
               Ticket.status.not_in([str(s) for s in NOT_COUNTED])))).all()
    by_unit: dict[int, list[int]] = {}
    for unit_id, ticket_id in complaints:
        by_unit.setdefault(unit_id, []).append(ticket_id)
    open_flags = {f.unit_id: f for f in await _open_flags(session, FlagKind.UNIT)}
    for unit_id, ids in sorted(by_unit.items()):
        if len(ids) < config.hotspot_min_unit_complaints:
            continue
        flag = open_flags.get(unit_id)
        ticket_ids = sorted(set(ids) | set(flag.ticket_ids if flag else []))
        if flag is None:
            await _raise(session, FlagKind.UNIT, now, day, config, unit_id=unit_id,
                         summary=f"{config.hotspot_window_days}日内投诉{len(ids)}件",
                         terms={}, ticket_ids=ticket_ids, count=len(ticket_ids))
            counts["unit_raised"] += 1
        elif _update(flag, now, ticket_ids, len(ticket_ids), None):
            counts["unit_updated"] += 1


async def _open_flags(session: AsyncSession, kind: FlagKind) -> list[SupervisionFlag]:
    return list((await session.scalars(select(SupervisionFlag).where(
        SupervisionFlag.kind == str(kind),
        SupervisionFlag.status != str(FlagStatus.CLOSED)).order_by(SupervisionFlag.id))).all())


async def _raise(session: AsyncSession, kind: FlagKind, now: datetime, day: date,
                 config: Any, *,
                 summary: str, terms: TermVector, ticket_ids: list[int], count: int,
                 unit_id: int | None = None, places: list[str] | None = None
                 ) -> SupervisionFlag:
    flag = SupervisionFlag(kind=str(kind), status=str(FlagStatus.OPEN), summary=summary[:300],
                           terms=terms, places=places or [], ticket_ids=ticket_ids,
                           unit_id=unit_id, count=count,
                           window_days=config.hotspot_window_days, raised_at=now,
                           updated_at=now)
    session.add(flag)
    await session.flush()
    what = "同一事项来电" if kind is FlagKind.MATTER else "同一单位被投诉"
    await store_notifications(session, [{
        "dedupe_key": dedupe_key(NotificationKind.HOTSPOT, f"flag{flag.id}", role="supervisor",
                                 day=day),
        "recipient_unit_id": None, "recipient_role": str(Role.SUPERVISOR),
        "kind": str(NotificationKind.HOTSPOT), "ticket_id": None, "flag_id": flag.id,
        "day": day, "created_at": now, "delivered_at": None, "read_at": None,
        "read_by": None, "text": f"热点督办：{what}{count}件（{summary}）",
    }])
    log.info("hotspot_raised flag=%s kind=%s count=%d summary=%s", flag.id, kind, count, summary)
    return flag


def _update(flag: SupervisionFlag, now: datetime, ticket_ids: list[int], count: int,
            terms: TermVector | None) -> bool:
    if ticket_ids == list(flag.ticket_ids) and count == flag.count:
        return False
    flag.ticket_ids, flag.count, flag.updated_at = ticket_ids, max(count, flag.count), now
    if terms:
        flag.terms = terms
    return True
