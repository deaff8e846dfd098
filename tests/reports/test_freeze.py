"""A closed month is stored once; a later change to its facts becomes a correction that
names what changed, and the worker freezes the previous month only once it is closed."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import update

from callcenter.clock import FrozenClock
from callcenter.reports.config import ReportsConfig
from callcenter.reports.context import ReportContext
from callcenter.reports.freeze import (
    differences,
    freeze_month,
    frozen_month,
    month_closed,
    previous_month,
)
from callcenter.reports.models import RevisitAppeal
from callcenter.reports.workers import MonthFreezer
from callcenter.settings import load_settings
from tests.reports.month import U1, write_month

NOW = datetime(2026, 11, 10, 2, tzinfo=UTC)


def context(**config) -> ReportContext:
    settings = load_settings(None, env={})
    settings.reports = ReportsConfig(ranking_min_orders=3, **config)
    return ReportContext.from_settings(settings)


def unit(figures, unit_id):
    return next(u for u in figures["units"] if u["unit_id"] == unit_id)


async def test_a_later_correction_is_a_new_version_naming_its_changes(sessionmaker) -> None:
    ctx = context()
    async with sessionmaker() as session, session.begin():
        await write_month(session)
        first = await freeze_month(session, ctx, "2026-10", NOW)
        again = await freeze_month(session, ctx, "2026-10", NOW)
    assert first.version == 1 and again.id == first.id  # nothing changed: no new version
    assert unit(first.figures, U1)["satisfied"] == 3
    # The appeal on t3 is overturned after the month was frozen.
    async with sessionmaker() as session, session.begin():
        await session.execute(update(RevisitAppeal).values(upheld=False))
        second = await freeze_month(session, ctx, "2026-10", NOW, reason="appeal overturned")
    async with sessionmaker() as session:
        month = await frozen_month(session, "2026-10")
    assert month is not None and month.version == second.version == 2
    assert unit(month.figures, U1)["unsatisfied"] == 1
    [correction] = month.corrections
    assert correction["reason"] == "appeal overturned"
    changed = {c["path"]: (c["was"], c["now"]) for c in correction["changes"]}
    assert changed[f"units[{U1}].unsatisfied"] == (0, 1)
    assert changed[f"units[{U1}].voided"] == (1, 0)
    assert changed[f"units[{U1}].appeals_upheld"] == (1, 0)
    assert changed["office.unsatisfied"] == (1, 2)


def test_differences_match_rows_by_key_not_position() -> None:
    old = {"units": [{"unit_id": 1, "n": 1}, {"unit_id": 2, "n": 2}]}
    new = {"units": [{"unit_id": 2, "n": 3}, {"unit_id": 1, "n": 1}]}
    assert differences(old, new) == [{"path": "units[2].n", "was": 2, "now": 3}]
    assert differences(old, old) == []


def test_a_month_is_closed_only_after_the_grace_days() -> None:
    assert previous_month(date(2026, 11, 5)) == "2026-10"
    assert previous_month(date(2026, 1, 3)) == "2025-12"
    assert not month_closed("2026-10", date(2026, 11, 5), 5)
    assert month_closed("2026-10", date(2026, 11, 6), 5)


async def test_the_worker_freezes_the_previous_month_once_closed(sessionmaker) -> None:
    async with sessionmaker() as session, session.begin():
        await write_month(session)
    clock = FrozenClock(datetime(2026, 11, 5, 15, 59, tzinfo=UTC))  # 5 Nov 23:59 local
    freezer = MonthFreezer(sessionmaker, clock, context(freeze_after_days=5))
    assert await freezer.freeze_if_due() is None
    clock.set(datetime(2026, 11, 5, 16, 0, tzinfo=UTC))  # 6 Nov 00:00 local
    assert await freezer.freeze_if_due() == "2026-10"
    assert await freezer.freeze_if_due() is None  # frozen already
    async with sessionmaker() as session:
        month = await frozen_month(session, "2026-10")
    assert month is not None and month.version == 1 and month.corrections == []
