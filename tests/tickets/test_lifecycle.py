"""Each transition of a work order over HTTP, and the refusals (409) naming the state."""

from __future__ import annotations

from datetime import date

from callcenter.knowledge.models import KnowledgeArticle
from tests.tickets.conftest import Hotline, local

PROOF = {"attachments": [{"kind": "photo", "name": "现场.jpg", "ref": "files/1.jpg"}]}


async def test_time_limited_order_from_intake_to_archive(hotline: Hotline) -> None:
    h = hotline
    draft = await h.call(h.agent, "POST", "/tickets", {
        "ticket_type": "help", "content": "",
        "calls": [{"linkedid": "1700000000.1", "recording_ref": "rec/1700000000.1.wav"}]},
        expect=201)
    assert draft["status"] == "draft"
    assert draft["number"] == "20261123-000001"
    tid = draft["id"]
    await h.call(h.agent, "PATCH", f"/tickets/{tid}",
                 {"content": "路灯不亮", "topic": "municipal_works"}, expect=200)
    registered = await h.call(h.agent, "POST", f"/tickets/{tid}/register", expect=200)
    assert registered["ticket"]["status"] == "registered"
    dispatched = await h.call(h.supervisor, "POST", f"/tickets/{tid}/dispatch",
                              {"lead_unit_id": h.unit_a}, expect=200)
    assert dispatched["status"] == "dispatched"
    # help: 5 working days after Monday 23 Nov 2026 -> Monday 30 Nov, end of day.
    assert dispatched["reply_due_at"].startswith("2026-11-30T15:59:59")
    assert dispatched["acceptance_due_at"].startswith("2026-11-23T04:00:00")
    # First contact: one working hour from the unit's acceptance, not from dispatch.
    assert dispatched["first_contact_due_at"] is None
    for step, status in (("accept", "accepted"), ("start", "in_progress")):
        moved = await h.call(h.handler_a, "POST", f"/tickets/{tid}/{step}", expect=200)
        assert moved["status"] == status
        assert moved["first_contact_due_at"].startswith("2026-11-23T03:00:00")
    await h.call(h.handler_a, "POST", f"/tickets/{tid}/contact",
                 {"call": {"linkedid": "1700000000.42"}}, expect=200)
    replied = await h.call(h.handler_a, "POST", f"/tickets/{tid}/reply",
                           {"content": "已修复路灯", "call": {"linkedid": "1700000000.42"}},
                           expect=200)
    assert replied["status"] == "replied"
    calls = (await h.call(h.supervisor, "GET", f"/tickets/{tid}", expect=200))["calls"]
    assert [(c["linkedid"], c["purpose"]) for c in calls] == [
        ("1700000000.1", "intake"), ("1700000000.42", "contact")]
    revisited = await h.call(h.agent, "POST", f"/tickets/{tid}/revisit",
                             {"result": "satisfied"}, expect=200)
    assert revisited["revisit_result"] == "satisfied"
    archived = await h.call(h.supervisor, "POST", f"/tickets/{tid}/archive", expect=200)
    assert archived["status"] == "archived"
    timeline = await h.call(h.supervisor, "GET", f"/tickets/{tid}/timeline", expect=200)
    actions = [e["action"] for e in timeline["events"]]
    assert actions == ["create", "update", "register", "dispatch", "accept", "start",
                       "contact", "reply", "revisit", "archive"]
    assert timeline["events"][3]["to_status"] == "dispatched"
    assert timeline["events"][3]["actor_id"] == h.supervisor.principal.user_id


async def test_illegal_transitions_answer_409_naming_the_state(hotline: Hotline) -> None:
    h = hotline
    ticket = await h.new_ticket()
    tid = ticket["id"]
    body = await h.call(h.supervisor, "POST", f"/tickets/{tid}/archive", expect=409)
    assert body["error"]["code"] == "illegal_transition"
    assert "registered" in body["error"]["message"]
    await h.call(h.supervisor, "POST", f"/tickets/{tid}/dispatch", {"lead_unit_id": h.unit_a},
                 expect=200)
    body = await h.call(h.handler_a, "POST", f"/tickets/{tid}/reply", {"content": "x"},
                        expect=409)
    assert "dispatched" in body["error"]["message"]
    body = await h.call(h.supervisor, "POST", f"/tickets/{tid}/rework", {"reason": "空"},
                        expect=409)
    assert "dispatched" in body["error"]["message"]
    await h.call(h.agent, "POST", f"/tickets/{tid}/register", expect=409)
    await h.call(h.supervisor, "POST", f"/tickets/{tid}/dispatch", {"lead_unit_id": h.unit_b},
                 expect=409)


async def test_direct_answer_closes_at_once(hotline: Hotline) -> None:
    h = hotline
    async with h.sessionmaker() as session, session.begin():
        session.add(KnowledgeArticle(id=7, title="社保卡补办", body="任一网点可补办",
                                     topic="human_resources_social_security", tags=[],
                                     active=True, created_at=h.clock.now(),
                                     updated_at=h.clock.now()))
    ticket = await h.new_ticket(ticket_type="consultation")
    body = await h.call(h.agent, "POST", f"/tickets/{ticket['id']}/direct-answer",
                        {"answer": "社保卡可在任一网点补办", "article_id": 8}, expect=422)
    assert body["error"]["field"] == "article_id"
    closed = await h.call(h.agent, "POST", f"/tickets/{ticket['id']}/direct-answer",
                          {"answer": "社保卡可在任一网点补办", "article_id": 7}, expect=200)
    assert closed["status"] == "closed"
    assert closed["handling_mode"] == "direct"
    assert closed["knowledge_article_id"] == 7
    await h.call(h.supervisor, "POST", f"/tickets/{ticket['id']}/archive", expect=200)


async def test_not_accepted_with_a_regulation_reason(hotline: Hotline) -> None:
    h = hotline
    ticket = await h.new_ticket()
    body = await h.call(h.agent, "POST", f"/tickets/{ticket['id']}/not-accept",
                        {"reason": "rumour"}, expect=422)
    assert body["error"]["field"] == "reason"
    refused = await h.call(h.agent, "POST", f"/tickets/{ticket['id']}/not-accept",
                           {"reason": "advertising"}, expect=200)
    assert refused["status"] == "not_accepted"
    assert refused["not_accepted_reason"] == "advertising"
    await h.call(h.supervisor, "POST", f"/tickets/{ticket['id']}/dispatch",
                 {"lead_unit_id": h.unit_a}, expect=409)


async def test_escalation_then_the_leader_names_the_unit(hotline: Hotline) -> None:
    h = hotline
    ticket = await h.new_ticket()
    tid = ticket["id"]
    escalated = await h.call(h.agent, "POST", f"/tickets/{tid}/escalate",
                             {"reason": "职责不清"}, expect=200)
    assert escalated["status"] == "escalated"
    await h.call(h.agent, "POST", f"/tickets/{tid}/dispatch", {"lead_unit_id": h.unit_b},
                 expect=403)
    decided = await h.call(h.supervisor, "POST", f"/tickets/{tid}/dispatch",
                           {"lead_unit_id": h.unit_b}, expect=200)
    assert decided["status"] == "dispatched" and decided["lead_unit_id"] == h.unit_b
    timeline = await h.call(h.supervisor, "GET", f"/tickets/{tid}/timeline", expect=200)
    assert timeline["events"][-1]["data"]["escalation_decision"] is True


async def test_promised_order_needs_a_plan_then_a_final_reply(hotline: Hotline) -> None:
    h = hotline
    ticket = await h.new_ticket()
    tid = ticket["id"]
    await h.call(h.supervisor, "POST", f"/tickets/{tid}/dispatch",
                 {"lead_unit_id": h.unit_a, "mode": "promised"}, expect=200)
    await h.call(h.handler_a, "POST", f"/tickets/{tid}/accept", expect=200)
    await h.call(h.handler_a, "POST", f"/tickets/{tid}/start", expect=200)
    body = await h.call(h.handler_a, "POST", f"/tickets/{tid}/reply",
                        {"content": "已处理", **PROOF}, expect=409)
    assert "plan" in body["error"]["message"]
    body = await h.call(h.handler_a, "POST", f"/tickets/{tid}/reply",
                        {"kind": "plan", "content": "春节后施工"}, expect=422)
    assert body["error"]["field"] == "promised_date"
    planned = await h.call(h.handler_a, "POST", f"/tickets/{tid}/reply",
                           {"kind": "plan", "content": "三月底前完成改造",
                            "promised_date": "2027-01-29"}, expect=200)
    assert planned["status"] == "promised"
    assert planned["promised_completion_date"] == "2027-01-29"
    assert planned["reply_due_at"].startswith("2027-01-29T15:59:59")
    final = await h.call(h.handler_a, "POST", f"/tickets/{tid}/reply",
                         {"content": "改造完成", **PROOF}, expect=200)
    assert final["status"] == "replied"


async def test_co_handled_order_waits_for_assisting_units(hotline: Hotline) -> None:
    h = hotline
    ticket = await h.new_ticket()
    tid = ticket["id"]
    body = await h.call(h.supervisor, "POST", f"/tickets/{tid}/dispatch",
                        {"lead_unit_id": h.unit_a, "mode": "co_handled"}, expect=422)
    assert body["error"]["field"] == "assisting_unit_ids"
    await h.call(h.supervisor, "POST", f"/tickets/{tid}/dispatch",
                 {"lead_unit_id": h.unit_a, "mode": "co_handled",
                  "assisting_unit_ids": [h.unit_b, h.unit_c]}, expect=200)
    for who in (h.handler_a, h.handler_b, h.handler_c):
        await h.call(who, "POST", f"/tickets/{tid}/accept", expect=200)
    seen = await h.call(h.handler_b, "GET", f"/tickets/{tid}", expect=200)
    assert seen["status"] == "accepted"  # the lead's acceptance moves the order
    await h.call(h.handler_b, "POST", f"/tickets/{tid}/start", expect=409)
    await h.call(h.handler_a, "POST", f"/tickets/{tid}/start", expect=200)
    await h.call(h.handler_b, "POST", f"/tickets/{tid}/reply", {"content": "B 已查", **PROOF},
                 expect=200)
    body = await h.call(h.handler_a, "POST", f"/tickets/{tid}/reply",
                        {"content": "牵头答复", **PROOF}, expect=409)
    assert str(h.unit_c) in body["error"]["message"]
    await h.call(h.handler_c, "POST", f"/tickets/{tid}/reply", {"content": "C 已查", **PROOF},
                 expect=200)
    replied = await h.call(h.handler_a, "POST", f"/tickets/{tid}/reply",
                           {"content": "牵头答复", **PROOF}, expect=200)
    assert replied["status"] == "replied"
    full = await h.call(h.supervisor, "GET", f"/tickets/{tid}", expect=200)
    assert {(a["unit_id"], a["role"], a["state"]) for a in full["assignments"]} == {
        (h.unit_a, "lead", "replied"), (h.unit_b, "assisting", "replied"),
        (h.unit_c, "assisting", "replied")}


async def test_reply_needs_proof_of_contact(hotline: Hotline) -> None:
    h = hotline
    tid = (await h.dispatched())["id"]
    await h.call(h.handler_a, "POST", f"/tickets/{tid}/accept", expect=200)
    await h.call(h.handler_a, "POST", f"/tickets/{tid}/start", expect=200)
    body = await h.call(h.handler_a, "POST", f"/tickets/{tid}/reply", {"content": "已办"},
                        expect=422)
    assert body["error"]["field"] == "attachments"
    await h.call(h.handler_a, "POST", f"/tickets/{tid}/reply",
                 {"content": "已办", "call": {"linkedid": "1700000001.7"}}, expect=200)
    full = await h.call(h.supervisor, "GET", f"/tickets/{tid}", expect=200)
    assert full["calls"][0]["linkedid"] == "1700000001.7"
    assert full["first_contact_at"] is not None


async def test_extensions_add_at_most_ten_working_days(hotline: Hotline) -> None:
    h = hotline
    tid = (await h.dispatched())["id"]  # complaint: due Monday 30 Nov 2026
    await h.call(h.handler_a, "POST", f"/tickets/{tid}/accept", expect=200)
    await h.call(h.supervisor, "POST", f"/tickets/{tid}/extensions",
                 {"days": 3, "reason": "x"}, expect=403)
    first = await h.call(h.handler_a, "POST", f"/tickets/{tid}/extensions",
                         {"days": 6, "reason": "需要协调多个部门"}, expect=201)
    assert first["decision"] == "pending"
    await h.call(h.handler_a, "POST", f"/tickets/{tid}/extensions",
                 {"days": 1, "reason": "再等"}, expect=409)
    approved = await h.call(h.supervisor, "POST",
                            f"/tickets/{tid}/extensions/{first['id']}/decision",
                            {"approve": True}, expect=200)
    assert approved["decision"] == "approved"
    ticket = await h.call(h.supervisor, "GET", f"/tickets/{tid}", expect=200)
    assert ticket["extension_days"] == 6
    assert ticket["reply_due_at"].startswith("2026-12-08T15:59:59")  # 30 Nov + 6 working days
    body = await h.call(h.handler_a, "POST", f"/tickets/{tid}/extensions",
                        {"days": 5, "reason": "还要更久"}, expect=409)
    assert "at most 10" in body["error"]["message"]
    second = await h.call(h.handler_a, "POST", f"/tickets/{tid}/extensions",
                          {"days": 4, "reason": "等待检测"}, expect=201)
    refused = await h.call(h.supervisor, "POST",
                           f"/tickets/{tid}/extensions/{second['id']}/decision",
                           {"approve": False, "reason": "理由不足"}, expect=200)
    assert refused["decision"] == "refused"
    await h.call(h.supervisor, "POST", f"/tickets/{tid}/extensions/{second['id']}/decision",
                 {"approve": True}, expect=409)
    ticket = await h.call(h.supervisor, "GET", f"/tickets/{tid}", expect=200)
    assert ticket["extension_days"] == 6 and len(ticket["extensions"]) == 2


async def test_unsatisfied_revisit_can_send_the_order_to_another_unit(hotline: Hotline
                                                                     ) -> None:
    h = hotline
    tid = (await h.dispatched())["id"]
    for step in ("accept", "start"):
        await h.call(h.handler_a, "POST", f"/tickets/{tid}/{step}", expect=200)
    await h.call(h.handler_a, "POST", f"/tickets/{tid}/reply", {"content": "已办", **PROOF},
                 expect=200)
    await h.call(h.agent, "POST", f"/tickets/{tid}/revisit", {"result": "unsatisfied",
                                                              "comment": "噪音仍在"}, expect=200)
    again = await h.call(h.supervisor, "POST", f"/tickets/{tid}/dispatch",
                         {"lead_unit_id": h.unit_b}, expect=200)
    assert again["status"] == "dispatched" and again["dispatch_count"] == 2
    assert again["review_conclusion"] == "redispatch"
    assert again["revisit_result"] is None


async def test_satisfied_revisit_cannot_be_redispatched(hotline: Hotline) -> None:
    h = hotline
    tid = (await h.dispatched())["id"]
    for step in ("accept", "start"):
        await h.call(h.handler_a, "POST", f"/tickets/{tid}/{step}", expect=200)
    await h.call(h.handler_a, "POST", f"/tickets/{tid}/reply", {"content": "已办", **PROOF},
                 expect=200)
    await h.call(h.agent, "POST", f"/tickets/{tid}/revisit",
                 {"result": "basically_satisfied"}, expect=200)
    body = await h.call(h.supervisor, "POST", f"/tickets/{tid}/dispatch",
                        {"lead_unit_id": h.unit_b}, expect=409)
    assert "unsatisfied" in body["error"]["message"]


async def test_duplicate_is_linked_to_the_earlier_order(hotline: Hotline) -> None:
    h = hotline
    first = await h.new_ticket()
    draft = await h.call(h.agent, "POST", "/tickets", {
        "ticket_type": "complaint", "content": "小区旁边工地夜间施工噪音很大，影响休息。",
        "caller": {"phone": "13812345678"}}, expect=201)
    registered = await h.call(h.agent, "POST", f"/tickets/{draft['id']}/register", expect=200)
    assert [c["id"] for c in registered["duplicate_candidates"]] == [first["id"]]
    linked = await h.call(h.agent, "POST", f"/tickets/{draft['id']}/link-duplicate",
                          {"duplicate_of": first["id"]}, expect=200)
    assert linked["status"] == "merged" and linked["duplicate_of_id"] == first["id"]
    original = await h.call(h.supervisor, "GET", f"/tickets/{first['id']}", expect=200)
    assert original["duplicate_count"] == 1
    body = await h.call(h.agent, "POST", f"/tickets/{draft['id']}/link-duplicate",
                        {"duplicate_of": first["id"]}, expect=409)
    assert "merged" in body["error"]["message"]


def test_local_helper_is_shanghai() -> None:
    assert local(2026, 1, 1).utcoffset().total_seconds() == 8 * 3600
    assert date(2026, 11, 23).weekday() == 0
