"""The daily supervision scan at a frozen clock, across the 2026 National Day holiday.

Wed 2026-09-30 is the last working day before the holiday (10-01..10-07); Sat 10-10 is a
make-up working day. "Due within 2 working days" on 09-30 therefore reaches 10-09.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select

from callcenter.auth.testing import make_unit
from callcenter.supervision.models import Notification, SupervisionRun
from callcenter.supervision.scheduler import SupervisionConfig, SupervisionScheduler

CONFIG = SupervisionConfig()


def end_of(calendar, y, m, d):
    return calendar.end_of_day(date(y, m, d))


def utc(*args):
    return datetime(*args, tzinfo=UTC)


async def _orders(sessionmaker, calendar, make_ticket):
    unit_a = await make_unit(sessionmaker, code="ZJJ", name="住建局")
    unit_b = await make_unit(sessionmaker, code="SWJ", name="水务局")
    far = end_of(calendar, 2026, 10, 20)
    t = {}
    t["due_thu"] = await make_ticket(status="accepted", lead_unit_id=unit_a.id,
                                     reply_due_at=end_of(calendar, 2026, 10, 8))
    t["due_fri"] = await make_ticket(status="in_progress", lead_unit_id=unit_a.id,
                                     reply_due_at=end_of(calendar, 2026, 10, 9))
    t["due_sat_makeup"] = await make_ticket(status="accepted", lead_unit_id=unit_a.id,
                                            reply_due_at=end_of(calendar, 2026, 10, 10))
    t["due_today"] = await make_ticket(status="accepted", lead_unit_id=unit_b.id,
                                       reply_due_at=end_of(calendar, 2026, 9, 30))
    t["overdue"] = await make_ticket(status="in_progress", lead_unit_id=unit_a.id,
                                     reply_due_at=end_of(calendar, 2026, 9, 28))
    t["not_accepted"] = await make_ticket(status="dispatched", lead_unit_id=unit_b.id,
                                          acceptance_due_at=utc(2026, 9, 29, 8, 0),
                                          reply_due_at=far)
    t["not_contacted"] = await make_ticket(status="accepted", lead_unit_id=unit_b.id,
                                           first_contact_due_at=utc(2026, 9, 30, 0, 0),
                                           reply_due_at=far)
    t["contacted"] = await make_ticket(status="accepted", lead_unit_id=unit_b.id,
                                       first_contact_due_at=utc(2026, 9, 30, 0, 0),
                                       first_contact_at=utc(2026, 9, 29, 23, 0),
                                       reply_due_at=far)
    t["replied_late"] = await make_ticket(status="replied", lead_unit_id=unit_a.id,
                                          reply_due_at=end_of(calendar, 2026, 9, 25))
    t["promised"] = await make_ticket(status="promised", lead_unit_id=unit_a.id,
                                      first_contact_at=utc(2026, 9, 20, 2, 0),
                                      reply_due_at=end_of(calendar, 2026, 9, 29))
    t["archived"] = await make_ticket(status="archived", lead_unit_id=unit_a.id,
                                      reply_due_at=end_of(calendar, 2026, 3, 2))
    return unit_a, unit_b, t


async def _notifications(sessionmaker):
    async with sessionmaker() as session:
        rows = (await session.scalars(select(Notification).order_by(Notification.id))).all()
    return rows


def _keyset(rows, t, unit_a, unit_b):
    names = {ticket.id: name for name, ticket in t.items()}
    units = {unit_a.id: "A", unit_b.id: "B"}
    return sorted((r.kind, names[r.ticket_id],
                   units[r.recipient_unit_id] if r.recipient_unit_id else r.recipient_role)
                  for r in rows)


async def test_scan_produces_exactly_the_expected_reminders(sessionmaker, bus, clock, calendar,
                                                            make_ticket):
    unit_a, unit_b, t = await _orders(sessionmaker, calendar, make_ticket)
    scheduler = SupervisionScheduler(sessionmaker, bus, clock, calendar, CONFIG)
    async with bus.subscribe("notification.*") as live:
        result = await scheduler.run_once()
        pushed = []  # one event per recipient, carrying its notifications
        while sum(len(event["notifications"]) for _, event in pushed) < result.pushed:
            pushed.append(await live.get(timeout=1))

    rows = await _notifications(sessionmaker)
    assert _keyset(rows, t, unit_a, unit_b) == sorted([
        ("due_soon", "due_thu", "A"),  # across the holiday: 2 working days reach 10-09
        ("due_soon", "due_fri", "A"),
        ("due_soon", "due_today", "B"),
        ("overdue", "overdue", "A"),
        ("overdue_escalation", "overdue", "supervisor"),
        ("overdue", "promised", "A"),  # the promised completion date has passed
        ("overdue_escalation", "promised", "supervisor"),
        ("acceptance_missed", "not_accepted", "B"),
        ("acceptance_missed", "not_accepted", "supervisor"),
        ("first_contact_missed", "not_contacted", "B"),
        ("first_contact_missed", "not_contacted", "supervisor"),
    ])
    assert result.created == 11 and result.pushed == 11
    assert result.found == {"due_soon": 3, "overdue": 2, "overdue_escalation": 2,
                            "acceptance_missed": 2, "first_contact_missed": 2}
    assert all(r.day == date(2026, 9, 30) and r.delivered_at == clock.now() for r in rows)
    due_thu = next(r for r in rows if r.ticket_id == t["due_thu"].id)
    assert due_thu.text == f"工单{t['due_thu'].number}将于10月08日23:59到期，请按时办结并反馈。"
    escalation = next(r for r in rows if r.kind == "overdue_escalation")
    assert "住建局" in escalation.text

    assert len(pushed) == 3
    topics = sorted(topic for topic, _ in pushed)
    assert topics == sorted([f"notification.unit.{unit_a.id}",
                             f"notification.unit.{unit_b.id}", "notification.role.supervisor"])

    # The same scan again, the same day: nothing new stored, nothing pushed again.
    clock.advance(timedelta(hours=3))
    again = await scheduler.run_once()
    assert again.created == 0 and again.pushed == 0
    assert len(await _notifications(sessionmaker)) == 11

    # First working day after the holiday: the Saturday make-up day is now within reach.
    clock.set(utc(2026, 10, 8, 0, 30))
    after = await scheduler.run_once()
    new = [r for r in await _notifications(sessionmaker) if r.day == date(2026, 10, 8)]
    assert _keyset(new, t, unit_a, unit_b) == sorted([
        ("due_soon", "due_thu", "A"),
        ("due_soon", "due_fri", "A"),
        ("due_soon", "due_sat_makeup", "A"),
        ("overdue", "due_today", "B"),
        ("overdue_escalation", "due_today", "supervisor"),
        ("overdue", "overdue", "A"),
        ("overdue_escalation", "overdue", "supervisor"),
        ("overdue", "promised", "A"),
        ("overdue_escalation", "promised", "supervisor"),
        ("acceptance_missed", "not_accepted", "B"),
        ("acceptance_missed", "not_accepted", "supervisor"),
        ("first_contact_missed", "not_contacted", "B"),
        ("first_contact_missed", "not_contacted", "supervisor"),
    ])
    assert after.created == len(new) == 13


async def test_scheduler_runs_once_per_working_day_and_catches_up(sessionmaker, bus, clock,
                                                                  calendar, make_ticket):
    unit = await make_unit(sessionmaker)
    await make_ticket(status="accepted", lead_unit_id=unit.id,
                      reply_due_at=end_of(calendar, 2026, 10, 9))
    scheduler = SupervisionScheduler(sessionmaker, bus, clock, calendar, CONFIG)

    clock.set(utc(2026, 9, 30, 0, 20))  # 08:20 local: before run time
    assert await scheduler.run_if_due() is None
    assert scheduler.next_run_at(clock.now()) == utc(2026, 9, 30, 0, 30)
    clock.set(utc(2026, 9, 30, 0, 31))
    first = await scheduler.run_if_due()
    assert first is not None and first.created == 1
    assert await scheduler.run_if_due() is None  # done today, even if asked again
    # Next run: after the National Day holiday, not on 10-01.
    assert scheduler.next_run_at(clock.now()) == utc(2026, 10, 8, 0, 30)
    clock.set(utc(2026, 10, 3, 2, 0))  # a holiday
    assert await scheduler.run_if_due() is None
    # The process was down on the morning of 10-08: at 15:00 it catches up at once.
    clock.set(utc(2026, 10, 8, 7, 0))
    caught_up = await scheduler.run_if_due()
    assert caught_up is not None and caught_up.day == date(2026, 10, 8)
    # Sat 10-10 is a make-up working day: the scan runs.
    assert scheduler.next_run_at(utc(2026, 10, 9, 3, 0)) == utc(2026, 10, 10, 0, 30)

    async with sessionmaker() as session:
        runs = (await session.scalars(select(SupervisionRun).order_by(SupervisionRun.day))).all()
        total = await session.scalar(select(func.count()).select_from(Notification))
    assert [(r.day, r.finished_at is not None) for r in runs] == [
        (date(2026, 9, 30), True), (date(2026, 10, 8), True)]
    assert runs[0].counts["created"] == 1
    assert total == 2  # one due_soon reminder per scan day


async def test_a_claimed_run_is_not_repeated_by_a_second_process(sessionmaker, bus, clock,
                                                                 calendar):
    one = SupervisionScheduler(sessionmaker, bus, clock, calendar, CONFIG)
    two = SupervisionScheduler(sessionmaker, bus, clock, calendar, CONFIG)
    clock.set(utc(2026, 9, 30, 1, 0))
    assert await one._claim(date(2026, 9, 30), clock.now()) is True
    assert await two.run_if_due() is None  # claimed, not finished, not stale yet
    clock.advance(timedelta(minutes=61))  # the first process died mid-scan
    assert await two.run_if_due() is not None


async def test_run_forever_catches_up_at_start_and_stops_on_request(sessionmaker, bus, clock,
                                                                   calendar, make_ticket):
    import asyncio

    unit = await make_unit(sessionmaker)
    await make_ticket(status="accepted", lead_unit_id=unit.id,
                      reply_due_at=end_of(calendar, 2026, 10, 8))
    clock.set(utc(2026, 9, 30, 6, 0))  # 14:00 local: the 08:30 run was missed
    scheduler = SupervisionScheduler(sessionmaker, bus, clock, calendar, CONFIG)
    stop = asyncio.Event()
    async with bus.subscribe(f"notification.unit.{unit.id}") as live:
        task = asyncio.create_task(scheduler.run_forever(stop))
        _, event = await live.get(timeout=10)
        stop.set()
        await asyncio.wait_for(task, timeout=10)
    assert [n["kind"] for n in event["notifications"]] == ["due_soon"]
    async with sessionmaker() as session:
        run = await session.get(SupervisionRun, date(2026, 9, 30))
    assert run is not None and run.finished_at is not None


async def test_a_disabled_scheduler_returns_without_scanning(sessionmaker, bus, clock,
                                                            calendar):
    import asyncio

    clock.set(utc(2026, 9, 30, 6, 0))  # a working day, past run time
    scheduler = SupervisionScheduler(sessionmaker, bus, clock, calendar,
                                     SupervisionConfig(enabled=False))
    await asyncio.wait_for(scheduler.run_forever(asyncio.Event()), timeout=5)
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(SupervisionRun)) == 0
