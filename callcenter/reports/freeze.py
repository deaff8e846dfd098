"""Frozen months: a closed month's figures are stored once; recomputing them later stores a
new version only if something changed, with the list of changes, so a published figure is
never silently rewritten (a late revisit, an upheld appeal, a corrected record)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.reports.context import ReportContext
from callcenter.reports.models import ReportSnapshot
from callcenter.reports.service import Period

log = logging.getLogger(__name__)

KEYS = ("unit_id", "key", "place", "agent", "number")
"""Fields that name a row of a list of figures, so a change names its row, not a position."""


@dataclass(frozen=True)
class FrozenMonth:
    month: str
    version: int
    frozen_at: datetime
    figures: dict[str, Any]
    corrections: list[dict[str, Any]]
    """Every later version's changes, oldest first: {version, at, reason, changes}."""


def month_closed(month: str, today: date, config_days: int) -> bool:
    """A month may be frozen ``config_days`` days after its last day."""
    return today >= Period.month(month).end + timedelta(days=config_days)


def previous_month(today: date) -> str:
    first = today.replace(day=1) - timedelta(days=1)
    return f"{first:%Y-%m}"


def differences(old: Any, new: Any, path: str = "") -> list[dict[str, Any]]:
    """Leaf-by-leaf changes between two JSON figures; list rows are matched by their key."""
    if isinstance(old, dict) and isinstance(new, dict):
        changes = []
        for key in sorted(set(old) | set(new), key=str):
            changes += differences(old.get(key), new.get(key), f"{path}.{key}".lstrip("."))
        return changes
    if isinstance(old, list) and isinstance(new, list):
        before, after = _keyed(old), _keyed(new)
        if before is not None and after is not None:
            changes = []
            for key in list(before) + [k for k in after if k not in before]:
                changes += differences(before.get(key), after.get(key), f"{path}[{key}]")
            return changes
    return [] if old == new else [{"path": path, "was": old, "now": new}]


def _keyed(rows: list[Any]) -> dict[str, Any] | None:
    if not rows or not all(isinstance(r, dict) for r in rows):
        return None if rows else {}
    name = next((k for k in KEYS if all(k in r for r in rows)), None)
    return None if name is None else {str(r[name]): r for r in rows}


async def freeze_month(session: AsyncSession, context: ReportContext, month: str,
                       now: datetime, *, by: int | None = None, reason: str | None = None
                       ) -> ReportSnapshot:
    """Store the month's figures: version 1, or a correction if they changed since."""
    period = context.month(month)
    figures = await context.figures(session, period, as_of=period.bounds()[1])
    latest = await latest_snapshot(session, month)
    if latest is not None:
        changes = differences(latest.figures, figures)
        if not changes:
            return latest
    else:
        changes = []
    version = 1 if latest is None else latest.version + 1
    snapshot = ReportSnapshot(month=month, version=version, frozen_at=now, frozen_by=by,
                              figures=figures, changes=changes, reason=reason)
    session.add(snapshot)
    await session.flush()
    log.info("reports.frozen month=%s version=%s changes=%s", month, version, len(changes))
    return snapshot


async def latest_snapshot(session: AsyncSession, month: str) -> ReportSnapshot | None:
    return await session.scalar(select(ReportSnapshot).where(ReportSnapshot.month == month)
                                .order_by(ReportSnapshot.version.desc()).limit(1))


async def frozen_month(session: AsyncSession, month: str) -> FrozenMonth | None:
    """The month as last frozen, with the corrections made after its first version."""
    rows = (await session.scalars(select(ReportSnapshot).where(ReportSnapshot.month == month)
                                  .order_by(ReportSnapshot.version))).all()
    if not rows:
        return None
    latest = rows[-1]
    corrections = [{"version": r.version, "at": r.frozen_at.isoformat(), "reason": r.reason,
                    "changes": r.changes} for r in rows[1:]]
    return FrozenMonth(month, latest.version, latest.frozen_at, latest.figures, corrections)
