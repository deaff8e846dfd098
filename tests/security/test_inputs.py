"""Every input is checked before it reaches the database, and free text hides numbers.

One test per defect found by the attack on ``callcenter serve`` (each request below gave a
500, or leaked, before): integers beyond the column, NUL and control characters, impossible
dates, nesting without bound, bodies that are missing or not UTF-8, file references that are
paths, and phone or ID numbers typed into free text shown to
units that may not see the caller's phone. Run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import pytest

from tests.tickets.conftest import Hotline

BIG = 2**31  # one past PostgreSQL's INTEGER
PHONE, ID_CARD = "13912345678", "110101199003071234"


async def test_integers_beyond_the_column_are_422_naming_the_field(hotline: Hotline) -> None:
    h = hotline
    tid = (await h.new_ticket())["id"]
    body = await h.call(h.supervisor, "POST", f"/tickets/{tid}/dispatch",
                        {"lead_unit_id": BIG}, expect=422)
    assert body["error"]["field"] == "lead_unit_id"
    body = await h.call(h.supervisor, "GET", "/audit", expect=422, user_id=str(BIG))
    assert body["error"]["field"] == "user_id"
    await h.call(h.supervisor, "GET", "/audit", expect=200, user_id=str(BIG - 1))
    await h.call(h.agent, "GET", f"/tickets/{BIG}", expect=404)
    await h.call(h.agent, "GET", f"/tickets/{BIG - 1}", expect=404)


@pytest.mark.parametrize("bad", ["停水\x00", "停\x07水", "\x1b[31m停水"])
async def test_nul_and_control_characters_in_text_are_422(hotline: Hotline, bad: str) -> None:
    h = hotline
    body = await h.call(h.agent, "POST", "/tickets", {"content": bad, "title": "标题"},
                        expect=422)
    assert body["error"]["field"] == "content"
    body = await h.call(h.agent, "POST", "/tickets",
                        {"content": "x", "caller": {"name": bad}}, expect=422)
    assert body["error"]["field"] == "caller.name"


async def test_tabs_and_line_breaks_stay_allowed_in_text(hotline: Hotline) -> None:
    h = hotline
    created = await h.call(h.agent, "POST", "/tickets",
                           {"content": "第一行\n第二行\r\n\t缩进"}, expect=201)
    assert created["content"] == "第一行\n第二行\r\n\t缩进"


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+08:00", "9999-12-31T23:59:59-08:00",
                                    "1899-12-31T23:59:59+00:00", "2200-01-01T00:00:00+00:00"])
async def test_impossible_dates_are_422(hotline: Hotline, moment: str) -> None:
    h = hotline
    body = await h.call(h.supervisor, "GET", "/ticket-counts/units", expect=422, since=moment)
    assert body["error"]["field"] == "since"
    body = await h.call(h.supervisor, "GET", "/audit", expect=422, **{"from": moment})
    assert body["error"]["field"] == "from"


@pytest.mark.parametrize("moment", ["1900-01-01T00:00:00+00:00", "2199-12-31T12:00:00+08:00"])
async def test_dates_at_the_edges_of_the_range_are_taken(hotline: Hotline, moment: str) -> None:
    h = hotline
    await h.call(h.supervisor, "GET", "/ticket-counts/units", expect=200, since=moment)


@pytest.mark.parametrize("depth", [33, 100_000])
async def test_deep_json_is_422_even_before_login(hotline: Hotline, depth: int) -> None:
    nested = "[" * depth + "]" * depth
    response = await hotline.client.post("/api/v1/auth/login", data=nested,
                                         headers={"Content-Type": "application/json"})
    assert response.status == 422
    assert (await response.json())["error"]["field"] == "body"


async def test_json_nested_32_levels_is_read(hotline: Hotline) -> None:
    nested = '{"username": "x", "password": "y", "z": ' + "[" * 30 + "]" * 30 + "}"
    response = await hotline.client.post("/api/v1/auth/login", data=nested,
                                         headers={"Content-Type": "application/json"})
    assert (await response.json())["error"]["field"] == "z"  # parsed; the model refuses z


async def test_missing_and_non_utf8_bodies_are_4xx(hotline: Hotline) -> None:
    h = hotline
    tid = (await h.new_ticket())["id"]
    url = f"/api/v1/tickets/{tid}/dispatch"
    response = await h.client.post(url, headers=h.supervisor.headers)
    assert response.status == 422
    assert (await response.json())["error"]["field"] == "lead_unit_id"
    response = await h.client.post(url, data=b"\xff\xfe{", headers={
        **h.supervisor.headers, "Content-Type": "application/json"})
    assert response.status == 422
    response = await h.client.post("/api/v1/auth/login", data=b"\xc3\x28",
                                   headers={"Content-Type": "application/json"})
    assert response.status == 422


async def test_every_write_route_declares_its_body(hotline: Hotline) -> None:
    document = await (await hotline.client.get("/api/v1/openapi.json")).json()
    writes = [(method, path, operation) for path, operations in document["paths"].items()
              for method, operation in operations.items() if method in ("post", "put", "patch")]
    assert len(writes) >= 20
    assert [(m, p) for m, p, op in writes if "requestBody" not in op] == []


async def test_a_bodiless_write_route_takes_no_body_or_an_empty_object(hotline: Hotline) -> None:
    h = hotline
    created = await h.call(h.agent, "POST", "/tickets", {"content": "停水三天"}, expect=201)
    await h.call(h.agent, "POST", f"/tickets/{created['id']}/register", {"x": 1}, expect=422)
    await h.call(h.agent, "POST", f"/tickets/{created['id']}/register", {}, expect=200)


@pytest.mark.parametrize("ref", ["../../etc/passwd", "/etc/passwd", "a/../b", "C:\\x",
                                 "file:///etc/passwd", ".env"])
async def test_file_references_are_names_never_paths(hotline: Hotline, ref: str) -> None:
    h = hotline
    body = await h.call(h.agent, "POST", "/tickets",
                        {"content": "x", "calls": [{"linkedid": "1.1", "recording_ref": ref}]},
                        expect=422)
    assert body["error"]["field"] == "calls.0.recording_ref"
    ticket = await h.dispatched()
    tid = ticket["id"]
    await h.call(h.handler_a, "POST", f"/tickets/{tid}/accept", expect=200)
    proof = {"content": "已办", "attachments": [{"kind": "photo", "name": "x", "ref": ref}]}
    body = await h.call(h.handler_a, "POST", f"/tickets/{tid}/reply", proof, expect=422)
    assert body["error"]["field"] == "attachments.0.ref"


async def test_a_stored_file_key_is_accepted(hotline: Hotline) -> None:
    h = hotline
    await h.call(h.agent, "POST", "/tickets", {"content": "x", "calls": [
        {"linkedid": "1.1", "recording_ref": "2026/12/02/1733130000.12.wav"}]}, expect=201)


async def test_numbers_in_free_text_are_masked_for_units_as_the_caller_is(
        hotline: Hotline) -> None:
    h = hotline
    text = f"市民电话{PHONE}，身份证{ID_CARD}，要求回电"
    ticket = await h.dispatched(title=f"回电{PHONE}", content=text)
    tid = ticket["id"]
    await h.call(h.handler_a, "POST", f"/tickets/{tid}/accept", expect=200)
    await h.call(h.handler_a, "POST", f"/tickets/{tid}/contact",
                 {"note": f"已拨打{PHONE}联系"}, expect=200)
    as_unit = await h.call(h.handler_a, "GET", f"/tickets/{tid}", expect=200)
    assert PHONE not in str(as_unit) and ID_CARD not in str(as_unit)
    assert "139****5678" in as_unit["content"] and "110***********1234" in as_unit["content"]
    timeline = await h.call(h.handler_a, "GET", f"/tickets/{tid}/timeline", expect=200)
    assert PHONE not in str(timeline) and "139****5678" in str(timeline)
    as_agent = await h.call(h.agent, "GET", f"/tickets/{tid}", expect=200)
    assert as_agent["content"] == text
    agent_timeline = await h.call(h.agent, "GET", f"/tickets/{tid}/timeline", expect=200)
    assert f"已拨打{PHONE}联系" in str(agent_timeline)
    listed = await h.call(h.agent, "GET", "/tickets", expect=200)
    assert [t["title"] for t in listed["items"] if t["id"] == tid] == ["回电139****5678"]
