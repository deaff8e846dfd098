"""Every KPI of the synthetic October (tests/reports/month.py) against figures counted by
hand from that module's table, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date

import pytest

from callcenter.reports.config import ReportsConfig
from callcenter.reports.service import (
    Filters,
    Period,
    agent_table,
    breakdown,
    call_stats,
    composite_score,
    office_kpis,
    topic_groups,
    unit_kpis,
    working_days,
)
from callcenter.tickets.calendar import WorkingCalendar
from callcenter.tickets.config import TicketsConfig, load_taxonomy
from callcenter.tickets.models import Ticket
from tests.reports.month import U1, U2, U3, U4, at, write_month

OCTOBER = Period.month("2026-10")
CONFIG = ReportsConfig(ranking_min_orders=3, self_service_nodes=["selfservice_water"])


@pytest.fixture
async def month(sessionmaker):
    async with sessionmaker() as session, session.begin():
        await write_month(session)
    return sessionmaker


async def units_of(sessionmaker, config=CONFIG, **kwargs):
    async with sessionmaker() as session:
        return {u.unit_id: u for u in await unit_kpis(session, OCTOBER, config, **kwargs)}


async def test_a_town_with_late_acceptance_contact_and_reply(month) -> None:
    u1 = (await units_of(month))[U1]
    # t1 t2 t3 t4 t9 (t9 re-dispatched away); t5 is September's
    assert (u1.received, u1.acceptance_base, u1.accepted_on_time) == (5, 5, 4)
    # t9 left the unit: not handled; t4's contact deadline passed without contact
    assert (u1.handled, u1.first_contact_base, u1.first_contact_on_time) == (4, 4, 2)
    assert (u1.fed_back, u1.completed, u1.completed_on_time) == (3, 3, 2)
    assert (u1.reworks, u1.reworked_orders, u1.returns, u1.overdue) == (1, 1, 0, 1)
    assert (u1.extension_requests, u1.extensions_approved, u1.appeals_upheld) == (1, 0, 1)
    # t1 t2 t3 (last of two) t5; t3's rating voided by the upheld appeal
    assert (u1.revisited, u1.reached, u1.voided, u1.satisfied, u1.unsatisfied) == \
        (4, 4, 1, 3, 0)
    assert u1.rates["timely_acceptance_rate"] == 4 / 5
    assert u1.rates["timely_first_contact_rate"] == 2 / 4
    assert u1.rates["completion_rate"] == 3 / 4
    assert u1.rates["on_time_completion_rate"] == 2 / 3
    assert u1.rates["rework_rate"] == 1 / 5
    assert u1.rates["satisfaction_rate"] == 3 / 3
    assert u1.rates["unsatisfied_rate"] == 0
    # 100 × (15·0.8 + 15·0.5 + 20·0.75 + 20·2/3 + 20·1 + 10·0.8) / 100 = 75.83
    assert (u1.score, u1.grade) == (75.8, "C")


async def test_a_return_is_counted_but_not_held_against_acceptance(month) -> None:
    u2 = (await units_of(month))[U2]
    assert (u2.received, u2.returns, u2.acceptance_base, u2.accepted_on_time) == (3, 1, 2, 2)
    # t8 is anonymous: no first-contact deadline
    assert (u2.handled, u2.first_contact_base, u2.completed) == (2, 1, 2)
    assert (u2.revisited, u2.reached, u2.unsatisfied) == (1, 1, 1)
    assert u2.rates["satisfaction_rate"] == 0 and u2.rates["unsatisfied_rate"] == 1
    assert (u2.score, u2.grade) == (80.0, "C")


async def test_a_redispatched_order_is_the_units_order_once(month) -> None:
    u3 = (await units_of(month))[U3]
    # t6 (after U2's return), t9 (two holds), t10, t12 (31 Oct 23:30 local); not t11
    assert u3.received == 4
    # t12's acceptance is due on 1 November: not yet part of October's rate
    assert (u3.acceptance_base, u3.accepted_on_time) == (3, 3)
    assert (u3.handled, u3.completed, u3.completed_on_time) == (4, 3, 3)
    assert (u3.revisited, u3.reached, u3.satisfied) == (2, 1, 1)
    assert u3.rates["revisit_reach_rate"] == 1 / 2
    assert (u3.extension_requests, u3.extensions_approved) == (1, 1)
    # 15 + 15 + 20·0.75 + 20 + 20 + 10 = 95: exactly grade A's threshold
    assert (u3.score, u3.grade) == (95.0, "A")


async def test_the_grade_threshold_on_both_sides(month) -> None:
    stricter = CONFIG.model_copy(update={"grade_a": 95.1})
    assert (await units_of(month, stricter))[U3].grade == "B"
    assert (await units_of(month, CONFIG))[U3].grade == "A"


async def test_a_unit_with_no_orders_has_no_rates_grade_or_rank(month) -> None:
    u4 = (await units_of(month))[U4]
    assert u4.received == 0
    assert set(u4.rates.values()) == {None}
    assert (u4.score, u4.grade, u4.rank) == (None, None, None)


async def test_towns_and_departments_are_ranked_apart_above_the_minimum(month) -> None:
    at3 = await units_of(month)  # minimum 3 orders
    assert [(at3[u].rank) for u in (U1, U2, U3, U4)] == [2, 1, 1, None]
    at4 = await units_of(month, CONFIG.model_copy(update={"ranking_min_orders": 4}))
    assert [(at4[u].rank) for u in (U1, U2, U3, U4)] == [1, None, 1, None]
    at5 = await units_of(month, CONFIG.model_copy(update={"ranking_min_orders": 5}))
    assert [(at5[u].rank) for u in (U1, U2, U3, U4)] == [1, None, None, None]
    assert ReportsConfig().ranking_min_orders == 20


async def test_the_office_counts_each_order_once(month) -> None:
    async with month() as session:
        office = await office_kpis(session, OCTOBER, CONFIG)
    # t1-t4, t6-t10, t12: ten orders although t6 and t9 passed through several units
    assert (office.received, office.acceptance_base, office.accepted_on_time) == (10, 9, 8)
    assert (office.first_contact_base, office.first_contact_on_time) == (8, 6)
    assert (office.handled, office.completed, office.completed_on_time) == (10, 8, 7)
    assert (office.revisited, office.reached, office.voided) == (7, 6, 1)
    assert (office.satisfied, office.unsatisfied) == (4, 1)
    assert office.rates["satisfaction_rate"] == 4 / 5
    assert (office.returns, office.reworks, office.extension_requests) == (1, 1, 2)
    assert office.rates["rework_rate"] == 1 / 10


async def test_the_month_boundary_is_local_midnight(month) -> None:
    november = Period.month("2026-11")
    async with month() as session:
        units = {u.unit_id: u for u in await unit_kpis(session, november, CONFIG)}
    assert units[U3].received == 1  # t11, 1 Nov 00:10 local (31 Oct 16:10 UTC)


async def test_an_order_sent_back_to_its_unit_stays_in_its_first_month(month) -> None:
    september = Period.month("2026-09")
    async with month() as session:
        before = {u.unit_id: u for u in await unit_kpis(session, september, CONFIG)}
    assert (before[U2].received, before[U2].returns) == (1, 1)  # t17, returned 29 Sep
    assert before[U2].completed == 1  # its last hold (2 Oct) replied
    assert (await units_of(month))[U2].received == 3  # not again in October


async def test_a_topic_filter_keeps_the_topics_family(month) -> None:
    taxonomy = load_taxonomy(TicketsConfig().taxonomy_path)
    urban = tuple(taxonomy.topic_family("urban_management"))
    units = await units_of(month, filters=Filters(topics=urban))
    assert units[U1].received == 3  # t1 t2 (city_appearance), t3 (noise_nuisance)
    assert units[U3].received == 0
    only_u1 = await units_of(month, filters=Filters(unit_id=U1))
    assert set(only_u1) == {U1} and only_u1[U1].received == 5


async def test_breakdowns_with_share_month_on_month_and_year_on_year(month) -> None:
    taxonomy = load_taxonomy(TicketsConfig().taxonomy_path)
    async with month() as session:
        channels = await breakdown(session, Ticket.channel, OCTOBER)
        topics = await breakdown(session, Ticket.topic, OCTOBER,
                                 group=topic_groups(taxonomy))
        types = await breakdown(session, Ticket.ticket_type, OCTOBER)
    phone, wechat, mailbox = channels
    # 11 orders in October (t14 is a draft; t11 is November's); September: t5
    assert (phone.key, phone.count, phone.previous, phone.year_before) == ("phone", 8, 1, 1)
    assert phone.share == 8 / 11 and phone.mom == 7.0 and phone.yoy == 7.0
    assert (wechat.count, wechat.mom, wechat.yoy) == (2, None, 1.0)
    assert (mailbox.key, mailbox.count, mailbox.yoy) == ("mayor_mailbox", 1, None)
    assert [(t.key, t.count) for t in topics] == [("交通运输", 7), ("城市管理", 4)]
    assert [(t.key, t.count) for t in types] == [("complaint", 10), ("consultation", 1)]


async def test_call_center_statistics_tell_timeouts_from_abandons(month) -> None:
    async with month() as session:
        stats = await call_stats(session, OCTOBER, CONFIG)
    assert (stats.inbound, stats.offered, stats.answered) == (8, 6, 3)
    assert (stats.abandoned, stats.timeouts, stats.other_queue_exits) == (1, 1, 1)
    assert stats.rates["abandon_rate"] == 1 / 6
    assert stats.rates["abandon_rate_with_timeouts"] == 2 / 6
    # waits 10 and 15 s are within 15 s; 16 s is not
    assert stats.answered_in_target == 2 and stats.rates["service_level"] == 2 / 6
    assert stats.rates["average_speed_of_answer"] == pytest.approx(41 / 3)
    assert stats.rates["average_handle_time"] == pytest.approx(380 / 3)
    assert stats.rates["ivr_self_service_rate"] == 1 / 8
    assert (stats.agent_rings, stats.agent_missed) == (4, 1)
    assert stats.pending == []


async def test_agent_time_clips_periods_to_the_month_and_splits_pauses_by_reason(
        month) -> None:
    """Counted from ``write_agent_periods``: handling 120 + 30 + 30 = 180 s of 5,400 s
    staffed (available 600 + 1,015 + 3,600, ringing 5, handling 180)."""
    async with month() as session:
        stats = await call_stats(session, OCTOBER, CONFIG)
        agents = {a["agent"]: a for a in await agent_table(session, OCTOBER)}
    time = stats.agent_time
    assert time["seconds"] == {"available": 5215.0, "ringing": 5.0, "on_call": 120.0,
                               "on_hold": 30.0, "after_call_work": 30.0,
                               "paused": 1800.0 + 600.0 + 1_000_800.0}
    assert time["pause_by_reason"] == {"break": 600.0, "meal": 1800.0,
                                       "training": 1_000_800.0}
    assert time["logged_in_seconds"] == 5400.0 + 1_003_200.0
    assert stats.rates["agent_occupancy"] == pytest.approx(180 / 5400)
    assert (agents["1001"]["logged_in_seconds"], agents["1001"]["paused_seconds"]) == (
        3600.0, 1800.0)
    assert agents["1001"]["occupancy"] == pytest.approx(180 / 1800)
    assert agents["1001"]["rings"] == 2  # from the call log's agent attempts
    assert (agents["1002"]["occupancy"], agents["1002"]["rings"]) == (0.0, 2)


async def test_agent_time_as_of_a_moment_counts_an_open_period_until_then(month) -> None:
    async with month() as session:
        stats = await call_stats(session, OCTOBER, CONFIG, as_of=at(10, 20, 11))
    assert stats.agent_time["pause_by_reason"]["training"] == 3600.0


def test_a_holiday_month_has_fewer_working_days() -> None:
    calendar = WorkingCalendar("Asia/Shanghai")
    # October 2026: 22 weekdays, 1-2 and 5-7 Oct off (National Day), Sat 10 Oct worked
    assert working_days(OCTOBER, calendar) == 22 - 5 + 1
    # November 2026: 21 weekdays, no holiday
    assert working_days(Period.month("2026-11"), calendar) == 21


def test_periods_before_and_a_year_before() -> None:
    assert OCTOBER.previous() == Period(date(2026, 9, 1), date(2026, 10, 1))
    assert OCTOBER.year_before() == Period(date(2025, 10, 1), date(2025, 11, 1))
    week = Period(date(2026, 10, 12), date(2026, 10, 19))
    assert week.previous() == Period(date(2026, 10, 5), date(2026, 10, 12))
    assert Period.month("2026-01").previous() == Period.month("2025-12")


def test_the_score_reweights_when_a_rate_is_missing() -> None:
    rates = {"timely_acceptance_rate": 1.0, "completion_rate": 0.5}
    weights = {"timely_acceptance_rate": 10.0, "completion_rate": 30.0}
    assert composite_score(rates, weights) == round(100 * (10 + 15) / 40, 1)
    assert composite_score({}, weights) is None
