"""Appeals of low revisit ratings (申诉), as units file them and the office decides them,
over real HTTP on both databases: eligibility, the month-end deadline, evidence, listings,
the timeline and audit log, and the effect on the monthly figures.

The month is tests/reports/month.py's October 2026; revisit 7 is U2's unsatisfied revisit of
t7 (19 Oct), and appeal 1 is U1's appeal of revisit 4, upheld on 25 Oct.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from callcenter.auth.models import AuditLog
from callcenter.auth.principal import Role
from callcenter.auth.testing import bare_app, bearer, make_principal, test_auth_config, token_for
from callcenter.clock import FrozenClock
from callcenter.reports.http import setup_web
from callcenter.settings import load_settings
from callcenter.tickets.models import TicketEvent, TicketRevisit
from callcenter.web.keys import SETTINGS
from tests.reports.month import TZ, U1, U2, U3, at, write_month

APPEALS = "/api/v1/reports/appeals"
OCTOBER_END = datetime(2026, 11, 1, tzinfo=TZ)  # 31 Oct 16:00 UTC
PHOTO = {"kind": "photo", "name": "site.jpg", "ref": "attachments/2026/10/site.jpg",
         "sha256": "a" * 64}


class People:
    """Fresh tokens at the clock's time, so tests may move the clock across days."""

    def __init__(self, clock: FrozenClock) -> None:
        self.clock, self.config, self.principals = clock, test_auth_config(), {}

    def __getitem__(self, who: str) -> dict[str, str]:
        return bearer(token_for(self.principals[who], self.config, self.clock))


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 10, 28, 2, tzinfo=UTC))


@pytest.fixture
async def client(sessionmaker, clock) -> AsyncIterator[TestClient]:
    """The synthetic October, plus revisits 9 (t1, two stars), 10 (t2, three stars) and 11
    (t11, U3, unsatisfied on 2 Nov)."""
    async with sessionmaker() as session, session.begin():
        await write_month(session)
        session.add_all([
            TicketRevisit(id=9, ticket_id=1, unit_id=U1, result="basically_satisfied",
                          stars=2, at=at(10, 21)),
            TicketRevisit(id=10, ticket_id=2, unit_id=U1, result="basically_satisfied",
                          stars=3, at=at(10, 21)),
            TicketRevisit(id=11, ticket_id=11, unit_id=U3, result="unsatisfied",
                          at=at(11, 2)),
        ])
    people = People(clock)
    app = bare_app(sessionmaker, clock, config=people.config)
    app[SETTINGS] = load_settings(None, env={"CALLCENTER_REPORTS__RANKING_MIN_ORDERS": "3",
                                             "CALLCENTER_AUTH__TOKEN_SECRET": "t" * 48})
    setup_web(app)
    async with TestClient(TestServer(app)) as test_client:
        for name, role, unit in (("supervisor", Role.SUPERVISOR, None),
                                 ("u1", Role.UNIT_HANDLER, U1), ("u2", Role.UNIT_HANDLER, U2),
                                 ("u3", Role.UNIT_HANDLER, U3)):
            people.principals[name] = (await make_principal(
                sessionmaker, clock, people.config, role=role, unit_id=unit))[0]
        test_client.people = people  # type: ignore[attr-defined]
        yield test_client


async def appeal(client, who: str, revisit_id: int, status: int = 201, **extra):
    body = {"revisit_id": revisit_id, "reason": "the citizen asked for what the law forbids",
            "evidence": "called twice, explained the regulation", **extra}
    response = await client.post(APPEALS, json=body, headers=client.people[who])
    assert response.status == status, await response.text()
    return await response.json()


async def decide(client, appeal_id: int, upheld: bool, who: str = "supervisor",
                 status: int = 200, note: str | None = "checked the call record"):
    body = {"upheld": upheld} if note is None else {"upheld": upheld, "note": note}
    response = await client.post(f"{APPEALS}/{appeal_id}/decision", json=body,
                                 headers=client.people[who])
    assert response.status == status, await response.text()
    return await response.json()


async def listed(client, who: str = "supervisor", **params) -> list[int]:
    response = await client.get(APPEALS, params=params, headers=client.people[who])
    assert response.status == 200, await response.text()
    return [a["id"] for a in (await response.json())["appeals"]]


async def test_a_unit_appeals_with_evidence_and_the_office_sees_it(client) -> None:
    filed = await appeal(client, "u2", 7, attachments=[PHOTO])
    assert (filed["status"], filed["ticket_id"], filed["unit_id"]) == ("pending", 7, U2)
    response = await client.get(APPEALS, params={"status": "pending"},
                                headers=client.people["supervisor"])
    [seen] = (await response.json())["appeals"]
    assert seen["id"] == filed["id"]
    assert seen["reason"] == "the citizen asked for what the law forbids"
    assert seen["evidence"] == "called twice, explained the regulation"
    assert seen["attachments"] == [PHOTO]
    assert seen["filed_at"] == "2026-10-28T02:00:00Z"


async def test_evidence_is_required_and_attachments_are_references(client) -> None:
    await appeal(client, "u2", 7, status=422, evidence="")
    await appeal(client, "u2", 7, status=422, attachments=[{**PHOTO, "ref": "../etc/passwd"}])
    await appeal(client, "u2", 7, status=201)


async def test_only_the_unit_whose_order_it_is_may_appeal(client) -> None:
    await appeal(client, "u1", 7, status=404)  # U2's revisit: U1 cannot see it
    await appeal(client, "supervisor", 7, status=403)  # the office decides, it does not file
    await appeal(client, "u2", 999, status=404)
    await appeal(client, "u2", 7)
    await appeal(client, "u2", 7, status=409)  # once per revisit


async def test_unsatisfied_or_two_stars_or_fewer_may_be_appealed(client) -> None:
    await appeal(client, "u1", 9)  # basically satisfied, but two stars
    await appeal(client, "u1", 10, status=409)  # three stars
    await appeal(client, "u1", 1, status=409)  # satisfied, no stars
    await appeal(client, "u2", 7)  # unsatisfied, no stars


async def test_an_appeal_is_filed_by_the_end_of_the_revisits_local_month(client,
                                                                        clock) -> None:
    # Midnight in the hotline's zone ends October, though it is still 31 Oct in UTC.
    clock.set(OCTOBER_END)
    refused = await appeal(client, "u2", 7, status=409)
    assert refused["error"]["field"] == "revisit_id"
    clock.set(OCTOBER_END - timedelta(seconds=1))
    await appeal(client, "u2", 7)


async def test_the_office_lists_by_status_unit_and_month_and_a_unit_its_own(client,
                                                                           clock) -> None:
    a7 = (await appeal(client, "u2", 7))["id"]
    a9 = (await appeal(client, "u1", 9))["id"]
    await decide(client, a9, False)
    clock.set(datetime(2026, 11, 3, 2, tzinfo=UTC))
    a11 = (await appeal(client, "u3", 11))["id"]
    assert await listed(client) == [a11, a9, a7, 1]
    assert await listed(client, status="pending") == [a11, a7]
    assert await listed(client, status="rejected") == [a9]
    assert await listed(client, status="upheld") == [1]
    assert await listed(client, unit_id=U1) == [a9, 1]
    assert await listed(client, month="2026-10") == [a9, a7, 1]
    assert await listed(client, month="2026-11", status="pending") == [a11]
    assert await listed(client, "u1") == [a9, 1]
    assert await listed(client, "u1", unit_id=U2) == []  # a unit sees only its own
    assert await listed(client, "u3") == [a11]
    response = await client.get(APPEALS, params={"limit": 2},
                                headers=client.people["supervisor"])
    page = await response.json()
    assert [a["id"] for a in page["appeals"]] == [a11, a9]
    assert await listed(client, limit=2, before=page["next_before"]) == [a7, 1]
    response = await client.get(APPEALS, params={"status": "open"},
                                headers=client.people["supervisor"])
    assert response.status == 422


async def test_filing_and_decision_are_on_the_timeline_audited_and_decided_once(
        client, sessionmaker) -> None:
    filed = await appeal(client, "u2", 7, attachments=[PHOTO])
    await decide(client, filed["id"], True, who="u2", status=403)
    await decide(client, filed["id"], True, status=422, note=None)  # the note is required
    decided = await decide(client, filed["id"], False, note="the citizen's account stands")
    assert (decided["status"], decided["upheld"]) == ("rejected", False)
    assert decided["decision_note"] == "the citizen's account stands"
    await decide(client, filed["id"], True, status=409)
    await decide(client, 999, True, status=404)
    sup, u2 = (client.people.principals[k] for k in ("supervisor", "u2"))
    async with sessionmaker() as session:
        events = (await session.scalars(select(TicketEvent).where(
            TicketEvent.ticket_id == 7).order_by(TicketEvent.id))).all()
        audit = (await session.execute(select(AuditLog.action, AuditLog.user_id,
                                              AuditLog.object_id)
                                       .where(AuditLog.object_type == "revisit_appeal")
                                       .order_by(AuditLog.id))).all()
    assert [(e.action, e.actor_id, e.unit_id, e.reason) for e in events] == [
        ("appeal_filed", u2.user_id, U2, "the citizen asked for what the law forbids"),
        ("appeal_decided", sup.user_id, U2, "the citizen's account stands")]
    assert events[0].data == {"appeal_id": filed["id"], "revisit_id": 7,
                              "evidence": "called twice, explained the regulation"}
    assert events[0].attachments == [PHOTO]
    assert events[1].data == {"appeal_id": filed["id"], "revisit_id": 7, "upheld": False}
    assert [tuple(row) for row in audit] == [
        ("reports.appeal_filed", u2.user_id, str(filed["id"])),
        ("reports.appeal_decided", sup.user_id, str(filed["id"]))]


async def u2_and_office(client) -> tuple[dict, dict]:
    response = await client.get("/api/v1/reports/monthly/2026-10",
                                headers=client.people["supervisor"])
    assert response.status == 200, await response.text()
    figures = (await response.json())["figures"]
    return next(u for u in figures["units"] if u["unit_id"] == U2), figures["office"]


def satisfaction(kpis: dict) -> tuple:
    rates = kpis["rates"]
    return (kpis["reached"], kpis["voided"], kpis["satisfied"], kpis["unsatisfied"],
            rates["satisfaction_rate"], rates["unsatisfied_rate"], kpis["score"],
            kpis["grade"])


async def test_a_rejected_appeal_leaves_the_units_figures_as_they_were(client) -> None:
    unit_before, office_before = await u2_and_office(client)
    # U2: one reached revisit, unsatisfied; the office: 5 rated (one voided by appeal 1)
    assert satisfaction(unit_before) == (1, 0, 0, 1, 0.0, 1.0, 80.0, "C")
    assert satisfaction(office_before) == (6, 1, 4, 1, 0.8, 0.2, 83.1, "C")
    await decide(client, (await appeal(client, "u2", 7))["id"], False)
    assert await u2_and_office(client) == (unit_before, office_before)


async def test_an_upheld_appeal_voids_the_rating_in_the_units_figures(client) -> None:
    await decide(client, (await appeal(client, "u2", 7))["id"], True)
    unit, office = await u2_and_office(client)
    # U2's only rating is out: no satisfaction figure, every other rate is 1 (score 100)
    assert satisfaction(unit) == (1, 1, 0, 0, None, None, 100.0, "A")
    assert unit["appeals_upheld"] == 1
    assert satisfaction(office) == (6, 2, 4, 0, 1.0, 0.0, 87.1, "B")
    assert office["appeals_upheld"] == 2
