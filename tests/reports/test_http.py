"""The reports API as supervisors and units use it, over real HTTP, on both databases."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from aiohttp.test_utils import TestClient, TestServer
from openpyxl import load_workbook

from callcenter.auth.principal import Role
from callcenter.auth.testing import bare_app, make_principal, test_auth_config
from callcenter.clock import FrozenClock
from callcenter.reports.http import setup_web
from callcenter.settings import load_settings
from callcenter.web.keys import SETTINGS
from tests.reports.month import U1, U2, U3, write_month

OCTOBER = {"start": "2026-10-01", "end": "2026-10-31"}


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 11, 10, 2, tzinfo=UTC))


@pytest.fixture
async def client(sessionmaker, clock) -> AsyncIterator[TestClient]:
    async with sessionmaker() as session, session.begin():
        await write_month(session)
    config = test_auth_config()
    app = bare_app(sessionmaker, clock, config=config)
    app[SETTINGS] = load_settings(None, env={"CALLCENTER_REPORTS__RANKING_MIN_ORDERS": "3",
                                             "CALLCENTER_AUTH__TOKEN_SECRET": "t" * 48})
    setup_web(app)
    async with TestClient(TestServer(app)) as test_client:
        people = {}
        for name, role, unit in (("supervisor", Role.SUPERVISOR, None),
                                 ("u1", Role.UNIT_HANDLER, U1), ("u2", Role.UNIT_HANDLER, U2)):
            people[name] = (await make_principal(sessionmaker, clock, config, role=role,
                                                 unit_id=unit))[1]
        test_client.people = people  # type: ignore[attr-defined]
        yield test_client


async def get_json(client, path, who="supervisor", status=200, **params):
    response = await client.get(path, params=params, headers=client.people[who])
    assert response.status == status, await response.text()
    return await response.json()


async def test_figures_of_a_range_filtered_by_unit_and_topic(client) -> None:
    body = await get_json(client, "/api/v1/reports/figures", **OCTOBER)
    assert body["figures"]["office"]["received"] == 10
    units = {u["unit_id"]: u for u in body["figures"]["units"]}
    assert (units[U3]["score"], units[U3]["grade"], units[U3]["rank"]) == (95.0, "A", 1)
    only = await get_json(client, "/api/v1/reports/figures", unit_id=U1, **OCTOBER)
    assert [u["unit_id"] for u in only["figures"]["units"]] == [U1]
    urban = await get_json(client, "/api/v1/reports/figures", topic="urban_management",
                           **OCTOBER)
    assert {u["unit_id"]: u["received"] for u in urban["figures"]["units"]}[U1] == 3


async def test_units_may_not_read_the_office_figures(client) -> None:
    await get_json(client, "/api/v1/reports/figures", who="u1", status=403, **OCTOBER)


async def test_a_range_backwards_or_over_a_year_is_refused(client) -> None:
    await get_json(client, "/api/v1/reports/figures", status=422,
                   start="2026-10-31", end="2026-10-01")
    await get_json(client, "/api/v1/reports/figures", status=200,
                   start="2025-10-01", end="2026-10-01")  # 366 days: allowed
    await get_json(client, "/api/v1/reports/figures", status=422,
                   start="2025-10-01", end="2026-10-02")  # 367 days


async def test_export_as_csv_and_excel(client) -> None:
    response = await client.get("/api/v1/reports/export", params={**OCTOBER, "format": "csv"},
                                headers=client.people["supervisor"])
    assert response.status == 200 and response.content_type == "text/csv"
    rows = list(csv.DictReader(io.StringIO((await response.read()).decode("utf-8-sig"))))
    by_unit = {r["unit_id"]: r for r in rows}
    assert by_unit[str(U3)]["score"] == "95.0" and by_unit[str(U1)]["received"] == "5"
    assert by_unit[""]["received"] == "10"  # the office's row
    response = await client.get("/api/v1/reports/export",
                                params={**OCTOBER, "format": "xlsx"},
                                headers=client.people["supervisor"])
    assert response.status == 200
    sheet = load_workbook(io.BytesIO(await response.read())).active
    header = [c.value for c in sheet[1]]
    rows = [dict(zip(header, [c.value for c in row], strict=True))
            for row in sheet.iter_rows(min_row=2)]
    assert {r["unit_name"]: r["score"] for r in rows}["湘滨镇"] == 75.8


async def test_an_appeal_upheld_after_freezing_shows_as_a_correction(client, clock) -> None:
    post = client.post
    sup, u1, u2 = (client.people[k] for k in ("supervisor", "u1", "u2"))
    november = clock.now()
    clock.set(datetime(2026, 10, 31, 2, tzinfo=UTC))  # appeals are filed by month end
    # t7's unsatisfied revisit (id 7) is U2's: U1 cannot see it, a satisfied one cannot be
    # appealed
    filing = {"reason": "x", "evidence": "y"}
    assert (await post("/api/v1/reports/appeals", json={"revisit_id": 7, **filing},
                       headers=u1)).status == 404
    assert (await post("/api/v1/reports/appeals", json={"revisit_id": 1, **filing},
                       headers=u1)).status == 409
    appeal = await post("/api/v1/reports/appeals",
                        json={"revisit_id": 7, "reason": "proof", "evidence": "call record"},
                        headers=u2)
    assert appeal.status == 201, await appeal.text()
    appeal_id = (await appeal.json())["id"]
    clock.set(november)
    frozen = await post("/api/v1/reports/monthly/2026-10/freeze", json={}, headers=sup)
    assert frozen.status == 200 and (await frozen.json())["version"] == 1
    decided = await post(f"/api/v1/reports/appeals/{appeal_id}/decision",
                         json={"upheld": True, "note": "the record shows the work"},
                         headers=sup)
    assert decided.status == 200 and (await decided.json())["upheld"] is True
    again = await post(f"/api/v1/reports/appeals/{appeal_id}/decision",
                       json={"upheld": False, "note": "no"}, headers=sup)
    assert again.status == 409
    # Decided after October was frozen: freezing again stores a correction.
    corrected = await post("/api/v1/reports/monthly/2026-10/freeze",
                           json={"reason": "appeal upheld"}, headers=sup)
    assert (await corrected.json())["version"] == 2
    body = await get_json(client, "/api/v1/reports/monthly/2026-10")
    assert body["frozen_version"] == 2
    [correction] = body["corrections"]
    assert correction["reason"] == "appeal upheld"
    changed = {c["path"]: (c["was"], c["now"]) for c in correction["changes"]}
    # U2 had one reached revisit, now voided: no satisfaction figure, score 100 (the other
    # rates are all 1); the office: 4 satisfied of 4 rated, score 83.1 + 20·0.2 = 87.1.
    assert changed == {
        f"units[{U2}].unsatisfied": (1, 0), f"units[{U2}].voided": (0, 1),
        f"units[{U2}].rates.unsatisfied_rate": (1.0, None),
        f"units[{U2}].rates.satisfaction_rate": (0.0, None),
        f"units[{U2}].score": (80.0, 100.0), f"units[{U2}].grade": ("C", "A"),
        "office.unsatisfied": (1, 0), "office.voided": (1, 2),
        "office.rates.satisfaction_rate": (0.8, 1.0), "office.rates.unsatisfied_rate": (0.2, 0.0),
        "office.score": (83.1, 87.1), "office.grade": ("C", "B"),
        "grades.A": (1, 2), "grades.C": (2, 1)}
    figures = body["figures"]
    assert next(u for u in figures["units"] if u["unit_id"] == U2)["unsatisfied"] == 0


async def test_a_month_not_over_cannot_be_frozen(client) -> None:
    response = await client.post("/api/v1/reports/monthly/2026-11/freeze", json={},
                                 headers=client.people["supervisor"])
    assert response.status == 409
    response = await client.post("/api/v1/reports/monthly/2026-13/freeze", json={},
                                 headers=client.people["supervisor"])
    assert response.status == 422


async def test_typical_cases_appear_in_the_months_figures(client) -> None:
    sup = client.people["supervisor"]
    case = {"month": "2026-10", "ticket_id": 3, "kind": "problem", "note": "推诿扯皮"}
    assert (await client.post("/api/v1/reports/typical-cases", json=case,
                              headers=sup)).status == 201
    assert (await client.post("/api/v1/reports/typical-cases", json=case,
                              headers=sup)).status == 409
    missing = {**case, "ticket_id": 999}
    assert (await client.post("/api/v1/reports/typical-cases", json=missing,
                              headers=sup)).status == 404
    body = await get_json(client, "/api/v1/reports/monthly/2026-10")
    assert body["frozen_version"] is None
    assert body["figures"]["typical_cases"] == [
        {"kind": "problem", "note": "推诿扯皮", "number": "T0003", "title": None,
         "unit": "湘滨镇"}]
