"""Finer rules: assisting units' shares, a rejected plan, timeliness facts, draft edits."""

from __future__ import annotations

from datetime import timedelta

from tests.tickets.conftest import Hotline

PROOF = {"attachments": [{"kind": "call_record", "name": "通话.wav", "ref": "rec/1.wav"}]}


async def test_an_assisting_unit_returns_only_its_share(hotline: Hotline) -> None:
    h = hotline
    tid = (await h.new_ticket())["id"]
    await h.call(h.supervisor, "POST", f"/tickets/{tid}/dispatch",
                 {"lead_unit_id": h.unit_a, "mode": "co_handled",
                  "assisting_unit_ids": [h.unit_b]}, expect=200)
    ticket = await h.call(h.handler_b, "POST", f"/tickets/{tid}/return",
                          {"reason": "本单位不涉及"}, expect=200)
    assert ticket["status"] == "dispatched" and ticket["lead_unit_id"] == h.unit_a
    await h.call(h.handler_b, "GET", f"/tickets/{tid}", expect=404)
    await h.call(h.handler_a, "POST", f"/tickets/{tid}/accept", expect=200)
    await h.call(h.handler_a, "POST", f"/tickets/{tid}/start", expect=200)
    replied = await h.call(h.handler_a, "POST", f"/tickets/{tid}/reply",
                           {"content": "牵头单位已办结", **PROOF}, expect=200)
    assert replied["status"] == "replied"  # the returned assistant is no longer awaited
    counts = await h.call(h.supervisor, "GET", "/ticket-counts/units", expect=200)
    assert counts["units"] == [{"unit_id": h.unit_b, "returns": 1, "reworks": 0}]


async def test_a_rejected_plan_goes_back_without_its_date(hotline: Hotline) -> None:
    h = hotline
    tid = (await h.new_ticket())["id"]
    await h.call(h.supervisor, "POST", f"/tickets/{tid}/dispatch",
                 {"lead_unit_id": h.unit_a, "mode": "promised"}, expect=200)
    await h.call(h.handler_a, "POST", f"/tickets/{tid}/accept", expect=200)
    await h.call(h.handler_a, "POST", f"/tickets/{tid}/start", expect=200)
    await h.call(h.handler_a, "POST", f"/tickets/{tid}/reply",
                 {"kind": "plan", "content": "明年再说", "promised_date": "2027-02-20"},
                 expect=200)
    back = await h.call(h.supervisor, "POST", f"/tickets/{tid}/rework",
                        {"reason": "承诺期限过长"}, expect=200)
    assert back["status"] == "in_progress" and back["promised_completion_date"] is None
    assert back["reply_due_at"].startswith("2026-11-30T15:59:59")  # the complaint's 5 days
    assert back["rework_count"] == 1


async def test_timeliness_of_acceptance_and_contact_is_recorded(hotline: Hotline) -> None:
    h = hotline
    tid = (await h.dispatched())["id"]
    h.clock.advance(timedelta(hours=3))  # acceptance was due within 2 office hours
    await h.call(h.handler_a, "POST", f"/tickets/{tid}/accept", expect=200)
    h.clock.advance(timedelta(hours=2))  # contact was due one office hour after acceptance
    await h.call(h.handler_a, "POST", f"/tickets/{tid}/contact",
                 {"note": "已电话联系", **PROOF}, expect=200)
    timeline = await h.call(h.handler_a, "GET", f"/tickets/{tid}/timeline", expect=200)
    facts = {e["action"]: e for e in timeline["events"]}
    assert facts["accept"]["data"]["on_time"] is False
    assert facts["contact"]["data"]["on_time"] is False
    assert facts["contact"]["attachments"][0]["ref"] == "rec/1.wav"
    assert facts["accept"]["unit_id"] == h.unit_a


async def test_only_drafts_can_be_edited_and_admins_act_as_the_office(hotline: Hotline) -> None:
    h = hotline
    tid = (await h.new_ticket())["id"]
    body = await h.call(h.agent, "PATCH", f"/tickets/{tid}", {"content": "改"}, expect=409)
    assert "registered" in body["error"]["message"]
    await h.call(h.admin, "POST", f"/tickets/{tid}/dispatch", {"lead_unit_id": h.unit_c},
                 expect=200)


async def test_merging_into_a_merged_order_follows_to_the_original(hotline: Hotline) -> None:
    h = hotline
    original = (await h.new_ticket())["id"]
    second = (await h.new_ticket())["id"]
    await h.call(h.agent, "POST", f"/tickets/{second}/link-duplicate",
                 {"duplicate_of": original}, expect=200)
    third = (await h.new_ticket())["id"]
    linked = await h.call(h.agent, "POST", f"/tickets/{third}/link-duplicate",
                          {"duplicate_of": second}, expect=200)
    assert linked["duplicate_of_id"] == original
    body = await h.call(h.agent, "POST", f"/tickets/{original}/link-duplicate",
                        {"duplicate_of": original}, expect=422)
    assert body["error"]["field"] == "duplicate_of"
