"""Who sees what: roles, unit isolation, masked caller data, the audit trail, payload errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from callcenter.auth.models import AuditLog
from tests.tickets.conftest import Hotline

ONE_ENGINE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # no data read


@ONE_ENGINE
async def test_every_route_needs_a_token(hotline: Hotline) -> None:
    response = await hotline.client.get("/api/v1/tickets")
    assert response.status == 401
    response = await hotline.client.post("/api/v1/tickets/1/dispatch", json={})
    assert response.status == 401


async def test_roles_are_enforced(hotline: Hotline) -> None:
    h = hotline
    await h.call(h.handler_a, "POST", "/tickets", {"content": "x"}, expect=403)
    ticket = await h.new_ticket()
    await h.call(h.agent, "POST", f"/tickets/{ticket['id']}/dispatch",
                 {"lead_unit_id": h.unit_a}, expect=403)
    await h.call(h.agent, "POST", f"/tickets/{ticket['id']}/archive", expect=403)
    await h.call(h.supervisor, "POST", f"/tickets/{ticket['id']}/accept", expect=403)


async def test_a_unit_never_sees_another_units_orders(hotline: Hotline) -> None:
    h = hotline
    mine = (await h.dispatched(unit=h.unit_a))["id"]
    theirs = (await h.dispatched(unit=h.unit_b))["id"]
    undispatched = (await h.new_ticket())["id"]
    for tid in (theirs, undispatched):
        body = await h.call(h.handler_a, "GET", f"/tickets/{tid}", expect=404)
        assert body["error"]["code"] == "not_found"
        await h.call(h.handler_a, "GET", f"/tickets/{tid}/timeline", expect=404)
        await h.call(h.handler_a, "POST", f"/tickets/{tid}/accept", expect=404)
    await h.call(h.handler_a, "GET", "/tickets/999999", expect=404)
    page = await h.call(h.handler_a, "GET", "/tickets", expect=200)
    assert [t["id"] for t in page["items"]] == [mine]
    page = await h.call(h.handler_a, "GET", "/tickets", expect=200, unit_id=h.unit_b)
    assert page["items"] == []
    page = await h.call(h.supervisor, "GET", "/tickets", expect=200, unit_id=h.unit_b)
    assert [t["id"] for t in page["items"]] == [theirs]
    page = await h.call(h.supervisor, "GET", "/tickets", expect=200)
    assert {t["id"] for t in page["items"]} == {mine, theirs, undispatched}


async def test_search_filters_and_keyset_pages(hotline: Hotline) -> None:
    h = hotline
    ids = [(await h.new_ticket(ticket_type="report" if i % 2 else "help",
                               topic="health" if i < 3 else "transport",
                               content=f"第{i}号 诉求 {'漏水' if i == 4 else '噪音'}"))["id"]
           for i in range(5)]
    reports = await h.call(h.agent, "GET", "/tickets", expect=200, ticket_type="report")
    assert [t["id"] for t in reports["items"]] == [ids[3], ids[1]]
    first = await h.call(h.agent, "GET", "/tickets", expect=200, limit="2")
    assert [t["id"] for t in first["items"]] == [ids[4], ids[3]]
    second = await h.call(h.agent, "GET", "/tickets", expect=200, limit="2",
                          cursor=str(first["next_cursor"]))
    assert [t["id"] for t in second["items"]] == [ids[2], ids[1]]
    third = await h.call(h.agent, "GET", "/tickets", expect=200, limit="2",
                         cursor=str(second["next_cursor"]))
    assert [t["id"] for t in third["items"]] == [ids[0]] and third["next_cursor"] is None
    text = await h.call(h.agent, "GET", "/tickets", expect=200, text="漏水")
    assert [t["id"] for t in text["items"]] == [ids[4]]
    health = await h.call(h.agent, "GET", "/tickets", expect=200, topic="health",
                          status="registered,draft")
    assert [t["id"] for t in health["items"]] == [ids[2], ids[1], ids[0]]
    window = await h.call(h.agent, "GET", "/tickets", expect=200,
                          created_from="2026-11-23T00:00:00+08:00",
                          created_to="2026-11-24T00:00:00+08:00")
    assert len(window["items"]) == 5
    body = await h.call(h.agent, "GET", "/tickets", expect=422, created_from="2026-11-23")
    assert body["error"]["field"] == "created_from"
    body = await h.call(h.agent, "GET", "/tickets", expect=422, status="lost")
    assert body["error"]["field"].startswith("status")


async def test_caller_data_is_masked_in_lists_and_for_units(hotline: Hotline) -> None:
    h = hotline
    tid = (await h.dispatched())["id"]
    page = await h.call(h.supervisor, "GET", "/tickets", expect=200)
    assert page["items"][0]["caller_phone"] == "138****5678"
    seen = await h.call(h.handler_a, "GET", f"/tickets/{tid}", expect=200)
    assert seen["caller"] == {"name": "张**", "phone": "138****5678",
                              "address": "乌鲁木齐市天山区****", "anonymous": False,
                              "masked": True}
    # To call the citizen back the unit sees the name (audited), never the number: the
    # service dials it (click-to-call).
    contact = await h.call(h.handler_a, "GET", f"/tickets/{tid}", expect=200, need="contact")
    assert contact["caller"]["name"] == "张三丰"
    assert contact["caller"]["phone"] == "138****5678"
    assert contact["caller"]["address"] == "乌鲁木齐市天山区****"
    action_response = await h.call(h.handler_a, "POST", f"/tickets/{tid}/accept", expect=200)
    assert action_response["caller"]["phone"] == "138****5678"
    async with h.sessionmaker() as session:
        rows = (await session.scalars(select(AuditLog).where(
            AuditLog.object_type == "ticket"))).all()
    assert [(r.user_id, r.action, r.object_id, sorted(r.fields)) for r in rows] == [
        (h.handler_a.principal.user_id, "ticket.contact", str(tid), ["name"])]


async def test_anonymous_callers_are_withheld_from_units(hotline: Hotline) -> None:
    h = hotline
    tid = (await h.dispatched(anonymous=True))["id"]
    seen = await h.call(h.handler_a, "GET", f"/tickets/{tid}", expect=200, need="contact")
    assert seen["caller"]["masked"] is True
    assert [seen["caller"][f] for f in ("name", "phone", "address")] == [None, None, None]
    page = await h.call(h.handler_a, "GET", "/tickets", expect=200)
    assert page["items"][0]["caller_phone"] is None


async def test_unmasked_reads_by_the_office_are_audited(hotline: Hotline) -> None:
    h = hotline
    tid = (await h.new_ticket())["id"]
    full = await h.call(h.supervisor, "GET", f"/tickets/{tid}", expect=200)
    assert full["caller"]["phone"] == "13812345678" and full["caller"]["masked"] is False
    audit = await h.call(h.supervisor, "GET", "/audit", expect=200, object_type="ticket")
    assert [(e["username"], e["action"], e["object_id"], sorted(e["fields"]))
            for e in audit["entries"]] == [
        (h.supervisor.principal.username, "ticket.view", str(tid),
         ["address", "name", "phone"])]


async def test_payload_errors_name_the_field(hotline: Hotline) -> None:
    h = hotline
    body = await h.call(h.agent, "POST", "/tickets", {"ticket_type": "gossip"}, expect=422)
    assert body["error"]["code"] == "invalid" and body["error"]["field"] == "ticket_type"
    body = await h.call(h.agent, "POST", "/tickets", {"caller": {"phone": "call me"}},
                        expect=422)
    assert body["error"]["field"] == "caller.phone"
    body = await h.call(h.agent, "POST", "/tickets", {"topic": "astrology"}, expect=422)
    assert body["error"]["field"] == "topic" and "astrology" in body["error"]["message"]
    body = await h.call(h.agent, "POST", "/tickets", {"colour": "red"}, expect=422)
    assert body["error"]["field"] == "colour"
    draft = await h.call(h.agent, "POST", "/tickets", {"ticket_type": "help"}, expect=201)
    body = await h.call(h.agent, "PATCH", f"/tickets/{draft['id']}", {"ticket_type": None},
                        expect=422)
    assert body["error"]["field"] == "ticket_type"
    body = await h.call(h.agent, "POST", f"/tickets/{draft['id']}/register", expect=422)
    assert body["error"]["field"] == "content"
    response = await h.client.post("/api/v1/tickets", data=b"{not json",
                                   headers={**h.agent.headers,
                                            "Content-Type": "application/json"})
    assert response.status == 422
    assert (await response.json())["error"]["field"] == "body"
    body = await h.call(h.supervisor, "POST", f"/tickets/{draft['id']}/dispatch",
                        {"lead_unit_id": "A"}, expect=422)
    assert body["error"]["field"] == "lead_unit_id"


async def test_dispatch_to_an_unknown_unit_is_refused(hotline: Hotline) -> None:
    h = hotline
    tid = (await h.new_ticket())["id"]
    body = await h.call(h.supervisor, "POST", f"/tickets/{tid}/dispatch",
                        {"lead_unit_id": 987654}, expect=422)
    assert body["error"]["field"] == "lead_unit_id"


@ONE_ENGINE
async def test_openapi_document_lists_every_route(hotline: Hotline) -> None:
    response = await hotline.client.get("/api/v1/openapi.json")  # public
    assert response.status == 200
    doc = json.loads(await response.text())
    assert doc["openapi"] == "3.1.0"
    app = hotline.client.server.app
    for route in app.router.routes():
        info = route.resource.get_info()
        path = info.get("path") or info.get("formatter")
        if route.method == "HEAD":
            continue
        assert route.method.lower() in doc["paths"][path], (route.method, path)
    dispatch = doc["paths"]["/api/v1/tickets/{ticket_id}/dispatch"]["post"]
    assert dispatch["x-roles"] == ["supervisor", "admin"]
    assert dispatch["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/DispatchIn"}
    search = doc["paths"]["/api/v1/tickets"]["get"]
    assert {p["name"] for p in search["parameters"]} >= {"status", "unit_id", "overdue",
                                                          "cursor", "text"}
    _assert_refs_resolve(doc, doc)


def _assert_refs_resolve(node: object, doc: dict) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            name = ref.removeprefix("#/components/schemas/")
            assert name in doc["components"]["schemas"], ref
        for value in node.values():
            _assert_refs_resolve(value, doc)
    elif isinstance(node, list):
        for value in node:
            _assert_refs_resolve(value, doc)


async def test_text_search_finds_chinese_words_through_the_word_index(hotline: Hotline
                                                                      ) -> None:
    """Search by words of realistic orders (jieba, indexed at registration), on both
    engines; a unit handler's search stays inside its unit."""
    h = hotline
    lamp = (await h.dispatched(unit=h.unit_a, title="路灯不亮",
                               content="幸福路与建设路交叉口的路灯已经三天不亮了，晚上行人看不清。"))
    wages = (await h.dispatched(unit=h.unit_b, title="拖欠工资",
                                content="某建筑公司拖欠农民工工资两个月，多次讨要未果。"))
    noise = await h.new_ticket(title="噪音扰民",
                               content="阳光花园旁边工地半夜施工，噪声很大，影响休息。")
    draft = await h.call(h.agent, "POST", "/tickets", {"content": "路灯坏了"}, expect=201)

    async def found(who: Any, text: str, **params: Any) -> list[int]:
        page = await h.call(who, "GET", "/tickets", expect=200, text=text, **params)
        return [t["id"] for t in page["items"]]

    assert await found(h.agent, "路灯") == [lamp["id"]]  # not the draft: text fixed at register
    assert await found(h.agent, "灯不亮") == [lamp["id"]]
    assert await found(h.agent, "建设路 路灯") == [lamp["id"]]
    assert await found(h.agent, "农民工 工资") == [wages["id"]]
    assert await found(h.agent, "噪音") == [noise["id"]]  # 噪声 in the text: a synonym
    assert await found(h.agent, "夜间施工") == [noise["id"]]  # 半夜 → 夜间
    assert await found(h.agent, "路灯 工资") == []  # every word must occur
    assert await found(h.agent, "工资", status="dispatched") == [wages["id"]]
    assert await found(h.agent, draft["number"]) == [draft["id"]]  # a number: exact match
    assert await found(h.handler_a, "路灯") == [lamp["id"]]
    assert await found(h.handler_a, "工资") == []  # unit B's order stays invisible to A
    assert await found(h.handler_b, "拖欠") == [wages["id"]]
    body = await h.call(h.agent, "GET", "/tickets", expect=422, text="小区")
    assert body["error"]["field"] == "text"
