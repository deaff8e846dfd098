"""Work orders as hotlines run them: each test reproduces one hole of the earlier lifecycle."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from callcenter.supervision.config import SupervisionConfig
from callcenter.supervision.scheduler import scan_deadlines
from callcenter.tickets.models import (
    Ticket,
    TicketRevisit,
    TicketRework,
    TicketStatePeriod,
)
from tests.tickets.conftest import Hotline, local

PROOF = {"attachments": [{"kind": "photo", "name": "现场.jpg", "ref": "files/1.jpg"}]}


async def working(h: Hotline, **overrides: Any) -> int:
    """A complaint dispatched to unit A on Mon 23 Nov 10:00 (due Mon 30 Nov), in progress."""
    tid = (await h.dispatched(**overrides))["id"]
    for step in ("accept", "start"):
        await h.call(h.handler_a, "POST", f"/tickets/{tid}/{step}", expect=200)
    return tid


async def replied(h: Hotline, **overrides: Any) -> int:
    tid = await working(h, **overrides)
    await h.call(h.handler_a, "POST", f"/tickets/{tid}/reply", {"content": "已办", **PROOF},
                 expect=200)
    return tid


async def test_an_extension_after_the_deadline_is_refused_and_lateness_stays(
        hotline: Hotline) -> None:
    h = hotline
    late = await working(h)
    h.clock.set(local(2026, 12, 1, 10))  # the deadline was Mon 30 Nov, end of day
    body = await h.call(h.handler_a, "POST", f"/tickets/{late}/extensions",
                        {"days": 3, "reason": "情况复杂"}, expect=409)
    assert "before the deadline" in body["error"]["message"]
    await h.call(h.handler_a, "POST", f"/tickets/{late}/reply", {"content": "已办", **PROOF},
                 expect=200)
    ticket = await h.call(h.supervisor, "GET", f"/tickets/{late}", expect=200)
    assert ticket["overdue"] is True
    assert ticket["overdue_since"].startswith("2026-11-30T15:59:59.999999")
    assert ticket["assignments"][0]["replied_on_time"] is False


async def test_an_extension_asked_in_time_and_granted_later_is_not_lateness(
        hotline: Hotline) -> None:
    h = hotline
    h.clock.set(local(2026, 11, 23, 10))
    tid = await working(h)
    h.clock.set(local(2026, 11, 30, 23, 59))  # the last minute before the deadline
    ext = await h.call(h.handler_a, "POST", f"/tickets/{tid}/extensions",
                       {"days": 3, "reason": "情况复杂"}, expect=201)
    h.clock.set(local(2026, 12, 1, 9))
    await h.call(h.supervisor, "POST", f"/tickets/{tid}/extensions/{ext['id']}/decision",
                 {"approve": True}, expect=200)
    ticket = await h.call(h.supervisor, "GET", f"/tickets/{tid}", expect=200)
    assert ticket["overdue"] is False and ticket["overdue_since"] is None
    assert ticket["reply_due_at"].startswith("2026-12-03T15:59:59")
    assert ticket["assignments"][0]["extension_days"] == 3


async def test_a_promised_plan_is_bounded_and_its_timeliness_recorded(hotline: Hotline
                                                                      ) -> None:
    h = hotline
    tid = await working(h)
    ticket = await h.call(h.supervisor, "GET", f"/tickets/{tid}", expect=200)
    assert ticket["plan_due_at"] is None  # a time-limited order has no plan
    promised = (await h.call(h.supervisor, "POST",
                             f"/tickets/{(await h.new_ticket())['id']}/dispatch",
                             {"lead_unit_id": h.unit_a, "mode": "promised"}, expect=200))
    pid = promised["id"]
    assert promised["plan_due_at"].startswith("2026-11-30T15:59:59")
    for step in ("accept", "start"):
        await h.call(h.handler_a, "POST", f"/tickets/{pid}/{step}", expect=200)
    # 23 Nov 2026 + 90 days = 21 Feb 2027 is the last date a plan may promise.
    for day in ("9999-12-31", "2031-01-01", "2027-02-22", "2026-11-22"):
        body = await h.call(h.handler_a, "POST", f"/tickets/{pid}/reply",
                            {"kind": "plan", "content": "计划", "promised_date": day},
                            expect=422)
        assert body["error"]["field"] == "promised_date"
    h.clock.set(local(2026, 12, 1, 10))  # after the plan's (normal) deadline
    planned = await h.call(h.handler_a, "POST", f"/tickets/{pid}/reply",
                           {"kind": "plan", "content": "计划", "promised_date": "2027-02-21"},
                           expect=200)
    assert planned["plan_on_time"] is False
    assert planned["overdue"] is True
    assert planned["overdue_since"].startswith("2026-11-30T15:59:59")


async def test_a_plan_on_time_is_recorded_on_time(hotline: Hotline) -> None:
    h = hotline
    ticket = await h.new_ticket()
    pid = (await h.call(h.supervisor, "POST", f"/tickets/{ticket['id']}/dispatch",
                        {"lead_unit_id": h.unit_a, "mode": "promised"}, expect=200))["id"]
    for step in ("accept", "start"):
        await h.call(h.handler_a, "POST", f"/tickets/{pid}/{step}", expect=200)
    planned = await h.call(h.handler_a, "POST", f"/tickets/{pid}/reply",
                           {"kind": "plan", "content": "计划", "promised_date": "2026-11-23"},
                           expect=200)
    assert planned["plan_on_time"] is True and planned["overdue"] is False


async def test_unsatisfied_revisit_review_then_rework_at_the_same_unit(hotline: Hotline
                                                                      ) -> None:
    h = hotline
    tid = await replied(h)
    await h.call(h.agent, "POST", f"/tickets/{tid}/revisit", {"result": "unsatisfied"},
                 expect=200)
    h.clock.set(local(2026, 11, 25, 10))
    back = await h.call(h.supervisor, "POST", f"/tickets/{tid}/rework",
                        {"reason": "复核：噪音仍在，退回重办"}, expect=200)
    assert back["status"] == "in_progress" and back["rework_count"] == 1
    assert back["lead_unit_id"] == h.unit_a and back["review_conclusion"] == "rework"
    assert back["reply_due_at"].startswith("2026-12-02T15:59:59")  # 5 working days again
    async with h.sessionmaker() as session:
        rework = (await session.scalars(select(TicketRework))).one()
    assert (rework.unit_id, rework.basis) == (h.unit_a, "unsatisfied_revisit")
    await h.call(h.handler_a, "POST", f"/tickets/{tid}/reply", {"content": "已停工", **PROOF},
                 expect=200)
    await h.call(h.agent, "POST", f"/tickets/{tid}/revisit", {"result": "unsatisfied"},
                 expect=200)
    body = await h.call(h.supervisor, "POST", f"/tickets/{tid}/archive", expect=409)
    assert "review conclusion" in body["error"]["message"]
    reviewed = await h.call(h.supervisor, "POST", f"/tickets/{tid}/review",
                            {"reason": "已依法处理并向市民解释"}, expect=200)
    assert reviewed["review_conclusion"] == "explained"
    await h.call(h.supervisor, "POST", f"/tickets/{tid}/archive", expect=200)
    async with h.sessionmaker() as session:
        results = (await session.scalars(select(TicketRevisit.result).where(
            TicketRevisit.ticket_id == tid).order_by(TicketRevisit.id))).all()
    assert results == ["unsatisfied", "unsatisfied"]


async def test_an_unsatisfied_order_is_not_archived_without_a_conclusion(hotline: Hotline
                                                                        ) -> None:
    h = hotline
    tid = await replied(h)
    await h.call(h.agent, "POST", f"/tickets/{tid}/revisit", {"result": "unsatisfied"},
                 expect=200)
    await h.call(h.supervisor, "POST", f"/tickets/{tid}/archive", expect=409)
    other = await replied(h)
    await h.call(h.agent, "POST", f"/tickets/{other}/revisit",
                 {"result": "basically_satisfied"}, expect=200)
    await h.call(h.supervisor, "POST", f"/tickets/{other}/archive", expect=200)


async def test_unreachable_after_the_attempts_and_declining_callers_are_archived(
        hotline: Hotline) -> None:
    h = hotline
    tid = await replied(h)
    body = await h.call(h.agent, "POST", f"/tickets/{tid}/revisit",
                        {"result": "unreachable", "attempts": 2}, expect=422)
    assert body["error"]["field"] == "attempts"
    await h.call(h.agent, "POST", f"/tickets/{tid}/revisit",
                 {"result": "unreachable", "attempts": 3}, expect=200)
    assert (await h.call(h.supervisor, "POST", f"/tickets/{tid}/archive",
                         expect=200))["revisit_result"] == "unreachable"
    declined = await replied(h)
    await h.call(h.agent, "POST", f"/tickets/{declined}/revisit", {"result": "declined"},
                 expect=200)
    await h.call(h.supervisor, "POST", f"/tickets/{declined}/archive", expect=200)


async def test_anonymous_orders_have_no_contact_deadline_alert_or_revisit(hotline: Hotline
                                                                         ) -> None:
    h = hotline
    tid = await working(h, anonymous=True, caller={})
    ticket = await h.call(h.supervisor, "GET", f"/tickets/{tid}", expect=200)
    assert ticket["first_contact_due_at"] is None
    named = await working(h)
    # A legacy anonymous row with a contact deadline must not raise an alert either.
    async with h.sessionmaker() as session, session.begin():
        row = await session.get(Ticket, tid)
        assert row is not None
        row.first_contact_due_at = h.clock.now()
    async with h.sessionmaker() as session:
        out = await scan_deadlines(session, h.service.calendar,
                                   h.clock.now() + timedelta(days=1), SupervisionConfig())
    flagged = {r["ticket_id"] for r in out.rows if r["kind"] == "first_contact_missed"}
    assert flagged == {named}
    await h.call(h.handler_a, "POST", f"/tickets/{tid}/reply", {"content": "已处理"},
                 expect=200)
    archived = await h.call(h.supervisor, "POST", f"/tickets/{tid}/archive", expect=200)
    assert archived["status"] == "archived"


async def test_redispatch_to_the_returning_unit_needs_a_reason_and_keeps_history(
        hotline: Hotline) -> None:
    h = hotline
    tid = (await h.dispatched())["id"]
    await h.call(h.handler_a, "POST", f"/tickets/{tid}/return", {"reason": "非本单位"},
                 expect=200)
    h.clock.advance(timedelta(hours=1))
    body = await h.call(h.supervisor, "POST", f"/tickets/{tid}/dispatch",
                        {"lead_unit_id": h.unit_a}, expect=422)
    assert body["error"]["field"] == "note"
    await h.call(h.supervisor, "POST", f"/tickets/{tid}/dispatch",
                 {"lead_unit_id": h.unit_a, "note": "经核实属该单位职责"}, expect=200)
    ticket = await h.call(h.supervisor, "GET", f"/tickets/{tid}", expect=200)
    first, second = ticket["assignments"]
    assert first["end_reason"] == "returned" and first["active"] is False
    assert first["acceptance_due_at"].startswith("2026-11-23T04:00:00")
    assert second["acceptance_due_at"].startswith("2026-11-23T05:00:00")


async def test_a_new_unit_does_not_inherit_the_old_units_extension(hotline: Hotline) -> None:
    h = hotline
    tid = (await h.dispatched())["id"]
    await h.call(h.handler_a, "POST", f"/tickets/{tid}/accept", expect=200)
    ext = await h.call(h.handler_a, "POST", f"/tickets/{tid}/extensions",
                       {"days": 3, "reason": "复杂"}, expect=201)
    await h.call(h.supervisor, "POST", f"/tickets/{tid}/extensions/{ext['id']}/decision",
                 {"approve": True}, expect=200)
    await h.call(h.handler_a, "POST", f"/tickets/{tid}/return", {"reason": "非本单位"},
                 expect=200)
    moved = await h.call(h.supervisor, "POST", f"/tickets/{tid}/dispatch",
                         {"lead_unit_id": h.unit_b}, expect=200)
    assert moved["extension_days"] == 0
    assert moved["reply_due_at"].startswith("2026-11-30T15:59:59")
    ticket = await h.call(h.supervisor, "GET", f"/tickets/{tid}", expect=200)
    assert [a["extension_days"] for a in ticket["assignments"]] == [3, 0]


async def test_rework_after_a_satisfied_revisit_needs_its_basis(hotline: Hotline) -> None:
    h = hotline
    tid = await replied(h)
    await h.call(h.agent, "POST", f"/tickets/{tid}/revisit", {"result": "satisfied"},
                 expect=200)
    body = await h.call(h.supervisor, "POST", f"/tickets/{tid}/rework",
                        {"reason": "抽查发现未整改"}, expect=422)
    assert body["error"]["field"] == "basis"
    again = await h.call(h.supervisor, "POST", f"/tickets/{tid}/rework",
                         {"reason": "省平台退回重办", "basis": "upper_platform"}, expect=200)
    assert again["status"] == "in_progress" and again["rework_count"] == 1
    async with h.sessionmaker() as session:
        assert (await session.scalars(select(TicketRework.basis))).all() == ["upper_platform"]


async def test_a_silent_assisting_unit_is_released_with_the_offices_approval(
        hotline: Hotline) -> None:
    h = hotline
    ticket = await h.new_ticket()
    tid = ticket["id"]
    await h.call(h.supervisor, "POST", f"/tickets/{tid}/dispatch",
                 {"mode": "co_handled", "lead_unit_id": h.unit_a,
                  "assisting_unit_ids": [h.unit_b]}, expect=200)
    for step in ("accept", "start"):
        await h.call(h.handler_a, "POST", f"/tickets/{tid}/{step}", expect=200)
    await h.call(h.handler_a, "POST", f"/tickets/{tid}/reply", {"content": "已办", **PROOF},
                 expect=409)
    release = {"unit_id": h.unit_b, "reason": "协办单位逾期未反馈"}
    await h.call(h.supervisor, "POST", f"/tickets/{tid}/assisting/release", release,
                 expect=409)  # the lead unit has not reported it
    await h.call(h.handler_a, "POST", f"/tickets/{tid}/assisting/silent", release, expect=200)
    await h.call(h.supervisor, "POST", f"/tickets/{tid}/assisting/release", release,
                 expect=200)
    await h.call(h.handler_b, "GET", f"/tickets/{tid}", expect=404)
    done = await h.call(h.handler_a, "POST", f"/tickets/{tid}/reply",
                        {"content": "已办", **PROOF}, expect=200)
    assert done["status"] == "replied"


async def test_direct_answers_to_complaints_need_an_article_or_a_supervisor(
        hotline: Hotline) -> None:
    h = hotline
    complaint = await h.new_ticket()
    body = await h.call(h.agent, "POST", f"/tickets/{complaint['id']}/direct-answer",
                        {"answer": "已解释"}, expect=422)
    assert body["error"]["field"] == "article_id"
    closed = await h.call(h.supervisor, "POST", f"/tickets/{complaint['id']}/direct-answer",
                          {"answer": "已解释"}, expect=200)
    assert closed["direct_answer_approved_by"] == h.supervisor.principal.user_id
    report = await h.new_ticket(ticket_type="report")
    body = await h.call(h.agent, "POST", f"/tickets/{report['id']}/direct-answer",
                        {"answer": "已解释", "approved_by": h.agent.principal.user_id},
                        expect=422)
    assert body["error"]["field"] == "approved_by"
    approved = await h.call(h.agent, "POST", f"/tickets/{report['id']}/direct-answer",
                            {"answer": "已解释", "approved_by": h.supervisor.principal.user_id},
                            expect=200)
    assert approved["direct_answer_approved_by"] == h.supervisor.principal.user_id
    question = await h.new_ticket(ticket_type="consultation")
    await h.call(h.agent, "POST", f"/tickets/{question['id']}/direct-answer",
                 {"answer": "可在网点办理"}, expect=200)


async def test_first_contact_counts_working_hours_from_acceptance(hotline: Hotline) -> None:
    h = hotline
    h.clock.set(local(2026, 9, 30, 17, 30))  # the eve of National Day (1-7 Oct 2026 off)
    tid = (await h.dispatched())["id"]
    h.clock.set(local(2026, 9, 30, 17, 45))
    accepted = await h.call(h.handler_a, "POST", f"/tickets/{tid}/accept", expect=200)
    # 15 minutes left on 30 Sep, 45 more from 09:00 on Thu 8 Oct, the next working day.
    assert accepted["first_contact_due_at"].startswith("2026-10-08T01:45:00")
    h.clock.set(local(2026, 10, 8, 9, 45))
    await h.call(h.handler_a, "POST", f"/tickets/{tid}/contact", {"note": "电话", **PROOF},
                 expect=200)
    ticket = await h.call(h.supervisor, "GET", f"/tickets/{tid}", expect=200)
    assert ticket["assignments"][0]["first_contact_on_time"] is True


async def test_state_periods_follow_the_order(hotline: Hotline) -> None:
    h = hotline
    tid = await working(h)
    h.clock.advance(timedelta(hours=2))
    await h.call(h.handler_a, "POST", f"/tickets/{tid}/reply", {"content": "已办", **PROOF},
                 expect=200)
    async with h.sessionmaker() as session:
        periods = (await session.scalars(select(TicketStatePeriod).where(
            TicketStatePeriod.ticket_id == tid).order_by(TicketStatePeriod.id))).all()
    assert [p.status for p in periods] == ["draft", "registered", "dispatched", "accepted",
                                           "in_progress", "replied"]
    assert [p.ended_at is None for p in periods] == [False] * 5 + [True]
    work = periods[4]
    assert work.unit_id == h.unit_a
    assert work.ended_at - work.started_at == timedelta(hours=2)
    # The unit's facts, as the monthly figures read them: accepted at once, contacted only
    # with the reply two hours later (due one office hour after acceptance), replied in time.
    share = (await h.call(h.supervisor, "GET", f"/tickets/{tid}"))["assignments"][0]
    assert (share["accepted_on_time"], share["first_contact_on_time"],
            share["replied_on_time"]) == (True, False, True)


async def test_sources_and_the_complained_party_are_recorded(hotline: Hotline) -> None:
    h = hotline
    draft = await h.call(h.agent, "POST", "/tickets",
                         {"channel": "provincial_platform", "content": "投诉某物业",
                          "order_level": "lower", "complained_party": "某物业公司"},
                         expect=201)
    body = await h.call(h.agent, "POST", f"/tickets/{draft['id']}/register", expect=422)
    assert body["error"]["field"] == "external_number"
    await h.call(h.agent, "PATCH", f"/tickets/{draft['id']}",
                 {"external_number": "HN-2026-000123"}, expect=200)
    ticket = (await h.call(h.agent, "POST", f"/tickets/{draft['id']}/register",
                           expect=200))["ticket"]
    assert (ticket["channel"], ticket["external_number"], ticket["order_level"],
            ticket["complained_party"]) == ("provincial_platform", "HN-2026-000123", "lower",
                                            "某物业公司")
    await h.new_ticket(channel="wechat")
    found = await h.call(h.supervisor, "GET", "/tickets", channel="provincial_platform")
    assert [t["id"] for t in found["items"]] == [draft["id"]]


async def test_units_have_a_kind_and_a_parent(hotline: Hotline) -> None:
    h = hotline
    county = await h.call(h.admin, "POST", "/units",
                          {"code": "county_gov", "name": "县政府"}, expect=201)
    assert (county["kind"], county["parent_id"]) == ("department", None)
    town = await h.call(h.admin, "POST", "/units",
                        {"code": "xx_town", "name": "XX镇", "kind": "town",
                         "parent_id": county["id"]}, expect=201)
    assert (town["kind"], town["parent_id"]) == ("town", county["id"])
    await h.call(h.admin, "PATCH", f"/units/{county['id']}", {"parent_id": town["id"]},
                 expect=409)  # a cycle
    await h.call(h.admin, "POST", "/units", {"code": "x", "name": "x", "kind": "village"},
                 expect=422)


async def test_a_rejected_plan_gets_a_new_plan_deadline(hotline: Hotline) -> None:
    h = hotline
    ticket = await h.new_ticket()
    pid = (await h.call(h.supervisor, "POST", f"/tickets/{ticket['id']}/dispatch",
                        {"lead_unit_id": h.unit_a, "mode": "promised"}, expect=200))["id"]
    for step in ("accept", "start"):
        await h.call(h.handler_a, "POST", f"/tickets/{pid}/{step}", expect=200)
    await h.call(h.handler_a, "POST", f"/tickets/{pid}/reply",
                 {"kind": "plan", "content": "计划", "promised_date": "2027-01-15"}, expect=200)
    h.clock.set(local(2026, 11, 25, 10))
    back = await h.call(h.supervisor, "POST", f"/tickets/{pid}/rework",
                        {"reason": "计划不具体"}, expect=200)
    assert back["plan_due_at"].startswith("2026-12-02T15:59:59")  # 5 working days again
    assert back["plan_on_time"] is None and back["promised_completion_date"] is None
    again = await h.call(h.handler_a, "POST", f"/tickets/{pid}/reply",
                         {"kind": "plan", "content": "分三步实施", "promised_date": "2027-01-15"},
                         expect=200)
    assert again["plan_on_time"] is True
