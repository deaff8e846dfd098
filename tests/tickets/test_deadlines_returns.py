"""Deadlines set at dispatch, same-working-day returns, and per-unit return/rework counts."""

from __future__ import annotations

from datetime import timedelta

from tests.tickets.conftest import Hotline, local

PROOF = {"attachments": [{"kind": "photo", "name": "现场.jpg", "ref": "files/1.jpg"}]}
# Dispatched Friday 13 Feb 2026 (eve of Spring Festival week, Saturday 14th worked).
EXPECTED = {"consultation": "2026-02-25", "praise": "2026-02-25", "other": "2026-02-25",
            "help": "2026-02-27", "complaint": "2026-02-27", "suggestion": "2026-02-27",
            "report": "2026-03-05"}


async def test_dispatch_sets_the_reply_deadline_of_each_type(hotline: Hotline) -> None:
    h = hotline
    h.clock.set(local(2026, 2, 13, 10))
    for ticket_type, day in EXPECTED.items():
        ticket = await h.dispatched(ticket_type=ticket_type)
        due = ticket["reply_due_at"]
        assert due == f"{day}T15:59:59.999999Z" or due == f"{day}T15:59:59.999999+00:00", (
            ticket_type, due)
    # A company's complaint: 15 working days (seed 003); its question: 3, like anyone's.
    company = await h.dispatched(ticket_type="complaint", requester_kind="company",
                                 company_name="某某有限公司")
    assert company["reply_due_at"].startswith("2026-03-12T15:59:59")
    question = await h.dispatched(ticket_type="consultation", requester_kind="company",
                                  company_name="某某有限公司")
    assert question["reply_due_at"].startswith("2026-02-25T15:59:59")


async def test_a_unit_returns_an_order_on_the_working_day_of_dispatch(hotline: Hotline) -> None:
    h = hotline
    h.clock.set(local(2026, 11, 20, 17, 50))  # Friday evening
    tid = (await h.dispatched())["id"]
    body = await h.call(h.handler_a, "POST", f"/tickets/{tid}/return", {"reason": ""},
                        expect=422)
    assert body["error"]["field"] == "reason"
    h.clock.set(local(2026, 11, 21, 9))  # Saturday: belongs to Monday's working day
    body = await h.call(h.handler_a, "POST", f"/tickets/{tid}/return",
                        {"reason": "不属本单位职责"}, expect=409)
    assert "2026-11-20" in body["error"]["message"]

    h.clock.set(local(2026, 11, 20, 23, 30))
    tid2 = (await h.dispatched())["id"]
    returned = await h.call(h.handler_a, "POST", f"/tickets/{tid2}/return",
                            {"reason": "应由住建部门办理"}, expect=200)
    assert returned["status"] == "returned" and returned["lead_unit_id"] is None
    await h.call(h.handler_a, "GET", f"/tickets/{tid2}", expect=404)  # no longer theirs
    again = await h.call(h.supervisor, "POST", f"/tickets/{tid2}/dispatch",
                         {"lead_unit_id": h.unit_b}, expect=200)
    assert again["status"] == "dispatched" and again["return_count"] == 1


async def test_an_order_dispatched_on_a_day_off_can_be_returned_next_working_day(
        hotline: Hotline) -> None:
    h = hotline
    h.clock.set(local(2026, 11, 22, 15))  # Sunday
    tid = (await h.dispatched())["id"]
    h.clock.set(local(2026, 11, 23, 16))  # Monday
    await h.call(h.handler_a, "POST", f"/tickets/{tid}/return", {"reason": "非本单位"},
                 expect=200)


async def test_returns_and_reworks_are_counted_per_unit(hotline: Hotline) -> None:
    h = hotline
    # Unit A returns two orders, unit B one; unit B gets one rework, unit C two.
    for unit_handler in (h.handler_a, h.handler_a, h.handler_b):
        tid = (await h.dispatched(unit=unit_handler.principal.unit_id))["id"]
        await h.call(unit_handler, "POST", f"/tickets/{tid}/return", {"reason": "非本单位"},
                     expect=200)
    tid = (await h.dispatched(unit=h.unit_b))["id"]
    await _reply(h, h.handler_b, tid)
    reworked = await h.call(h.supervisor, "POST", f"/tickets/{tid}/rework",
                            {"reason": "答复空泛"}, expect=200)
    assert reworked["status"] == "in_progress" and reworked["rework_count"] == 1
    tid = (await h.dispatched(unit=h.unit_c))["id"]
    for _ in range(2):
        await _reply(h, h.handler_c, tid, fresh=False)
        await h.call(h.supervisor, "POST", f"/tickets/{tid}/rework", {"reason": "未联系群众"},
                     expect=200)
        h.clock.advance(timedelta(hours=1))
    counts = await h.call(h.supervisor, "GET", "/ticket-counts/units", expect=200)
    assert counts["units"] == [
        {"unit_id": h.unit_a, "returns": 2, "reworks": 0},
        {"unit_id": h.unit_b, "returns": 1, "reworks": 1},
        {"unit_id": h.unit_c, "returns": 0, "reworks": 2},
    ]
    own = await h.call(h.handler_b, "GET", "/ticket-counts/units", expect=200)
    assert own["units"] == [{"unit_id": h.unit_b, "returns": 1, "reworks": 1}]
    later = await h.call(h.supervisor, "GET", "/ticket-counts/units", expect=200,
                         since=(h.clock.now() + timedelta(days=1)).isoformat())
    assert later["units"] == []


async def _reply(h: Hotline, who: object, tid: int, fresh: bool = True) -> None:
    ticket = await h.call(h.supervisor, "GET", f"/tickets/{tid}", expect=200)
    if ticket["status"] == "dispatched":
        await h.call(who, "POST", f"/tickets/{tid}/accept", expect=200)
        await h.call(who, "POST", f"/tickets/{tid}/start", expect=200)
    await h.call(who, "POST", f"/tickets/{tid}/reply", {"content": "已办", **PROOF},
                 expect=200)


async def test_overdue_and_due_soon_filters(hotline: Hotline) -> None:
    h = hotline
    h.clock.set(local(2026, 11, 23, 10))
    late = (await h.dispatched(ticket_type="consultation"))["id"]  # due Thu 26 Nov
    h.clock.set(local(2026, 11, 26, 10))
    soon = (await h.dispatched(ticket_type="consultation"))["id"]  # due Tue 1 Dec
    h.clock.set(local(2026, 11, 27, 9))
    overdue = await h.call(h.supervisor, "GET", "/tickets", expect=200, overdue="true")
    assert [t["id"] for t in overdue["items"]] == [late]
    assert overdue["items"][0]["overdue"] is True
    due_soon = await h.call(h.supervisor, "GET", "/tickets", expect=200, due_soon="true")
    assert [t["id"] for t in due_soon["items"]] == [soon]  # within 2 working days (Tue)


async def test_acceptance_same_day_mode(hotline: Hotline) -> None:
    h = hotline
    h.service.config = h.service.config.model_copy(
        update={"acceptance": h.service.config.acceptance.model_copy(
            update={"mode": "same_day"})})
    h.clock.set(local(2026, 11, 21, 10))  # Saturday: accept by the end of Monday
    ticket = await h.dispatched()
    assert ticket["acceptance_due_at"].startswith("2026-11-23T15:59:59")


async def test_a_deadline_in_an_unknown_year_uses_the_provisional_calendar(
        hotline: Hotline) -> None:
    """chinesecalendar stops at 2026 and there is no 2027.toml: orders are still dispatched,
    over weekends and 元旦 only, and the timeline says the deadline is provisional."""
    h = hotline
    h.clock.set(local(2026, 12, 28, 10))  # a report's 10 working days run into 2027
    ticket = await h.new_ticket(ticket_type="report")
    dispatched = await h.call(h.supervisor, "POST", f"/tickets/{ticket['id']}/dispatch",
                              {"lead_unit_id": h.unit_a}, expect=200)
    # 29, 30, 31 Dec; 1 Jan is 元旦; 4-8 Jan; 11, 12 Jan.
    assert dispatched["reply_due_at"].startswith("2027-01-12T15:59:59")
    timeline = await h.call(h.supervisor, "GET", f"/tickets/{ticket['id']}/timeline",
                            expect=200)
    dispatch = [e for e in timeline["events"] if e["action"] == "dispatch"][0]
    assert dispatch["data"]["provisional_calendar"] == [2027]
    # A deadline inside a year the library knows carries no marker.
    h.clock.set(local(2026, 11, 23, 10))
    sure = await h.dispatched(ticket_type="consultation")
    sure_timeline = await h.call(h.supervisor, "GET", f"/tickets/{sure['id']}/timeline",
                                 expect=200)
    assert all("provisional_calendar" not in e["data"] for e in sure_timeline["events"])


async def test_rework_starts_a_fresh_handling_period(hotline: Hotline) -> None:
    """退回重办: the unit gets the type's working days again, counted from the rework."""
    h = hotline
    h.clock.set(local(2026, 11, 23, 10))  # Monday: a complaint is due Monday 30 Nov
    tid = (await h.dispatched())["id"]
    assert (await h.call(h.supervisor, "GET", f"/tickets/{tid}", expect=200))[
        "reply_due_at"].startswith("2026-11-30T15:59:59")
    await h.call(h.handler_a, "POST", f"/tickets/{tid}/accept", expect=200)
    await h.call(h.handler_a, "POST", f"/tickets/{tid}/start", expect=200)
    h.clock.set(local(2026, 11, 27, 16))  # Friday: replied, sent back the same day
    await h.call(h.handler_a, "POST", f"/tickets/{tid}/reply", {"content": "已处理", **PROOF},
                 expect=200)
    back = await h.call(h.supervisor, "POST", f"/tickets/{tid}/rework",
                        {"reason": "答复空泛，未说明处理结果"}, expect=200)
    assert back["status"] == "in_progress" and back["overdue"] is False
    assert back["reply_due_at"].startswith("2026-12-04T15:59:59")  # 5 working days from Fri
    timeline = await h.call(h.supervisor, "GET", f"/tickets/{tid}/timeline", expect=200)
    rework = timeline["events"][-1]
    assert rework["action"] == "rework" and rework["reason"] == "答复空泛，未说明处理结果"
    assert rework["data"]["reply_due_at"].startswith("2026-12-04T15:59:59")
