"""Hotspots: ten callers about one matter, or ten complaints against one unit, get a flag."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from callcenter.auth.principal import Role
from callcenter.auth.testing import bearer, make_unit, make_user, test_auth_config, token_for
from callcenter.supervision.hotspots import detect_hotspots
from callcenter.supervision.models import Notification, SupervisionFlag
from callcenter.supervision.scheduler import SupervisionConfig

from .texts import (
    ILLEGAL_CONSTRUCTION,
    NIGHT_CONSTRUCTION,
    OTHER,
    PROPERTY_FEES,
    WATER_OUTAGE,
)

CONFIG = SupervisionConfig()


async def _detect(sessionmaker, clock):
    async with sessionmaker() as session, session.begin():
        return await detect_hotspots(session, now=clock.now(), config=CONFIG)


async def _flags(sessionmaker):
    async with sessionmaker() as session:
        return (await session.scalars(select(SupervisionFlag).order_by(SupervisionFlag.id))).all()


async def _calls(make_ticket, clock, texts, *, phones=None, ticket_type="help", **values):
    made = []
    for n, text in enumerate(texts):
        clock.advance(timedelta(minutes=7))
        extra = {"caller_phone": phones[n]} if phones else {}
        made.append(await make_ticket(content=text, ticket_type=ticket_type,
                                      created_at=clock.now(), **extra, **values))
    return made


async def test_ten_callers_about_one_matter_raise_one_flag_that_grows(sessionmaker, clock,
                                                                      make_ticket):
    noise = await _calls(make_ticket, clock, NIGHT_CONSTRUCTION[:11])
    # One caller calls twice: still 11 distinct callers, 12 orders.
    noise.append(await make_ticket(content=NIGHT_CONSTRUCTION[11], ticket_type="help",
                                   caller_phone=noise[0].caller_phone, created_at=clock.now()))
    await _calls(make_ticket, clock, WATER_OUTAGE + PROPERTY_FEES + ILLEGAL_CONSTRUCTION + OTHER)
    # The same words about another estate are another matter.
    await _calls(make_ticket, clock, ["锦绣家园旁边工地夜间施工，噪音扰民，请处理。"])

    assert await _detect(sessionmaker, clock) == {"matter_raised": 1}
    [flag] = await _flags(sessionmaker)
    assert flag.kind == "matter" and flag.status == "open"
    assert flag.ticket_ids == sorted(t.id for t in noise)
    assert flag.count == 11
    assert flag.places == ["阳光花园"]
    assert flag.summary.startswith("阳光花园：") and "施工" in flag.summary

    # The next scan finds the same hotspot: no second flag, no second notification.
    clock.advance(timedelta(hours=1))
    assert await _detect(sessionmaker, clock) == {}
    more = await _calls(make_ticket, clock,
                        ["阳光花园工地昨晚又施工到凌晨，噪音太大，投诉多次没有效果。",
                         "阳光花园东侧工地夜间施工扰民，希望城管夜查。"])
    assert await _detect(sessionmaker, clock) == {"matter_updated": 1}
    [grown] = await _flags(sessionmaker)
    assert grown.id == flag.id and grown.count == 13
    assert set(grown.ticket_ids) == {t.id for t in noise + more}
    async with sessionmaker() as session:
        notes = (await session.scalars(select(Notification))).all()
    assert [(n.kind, n.recipient_role, n.flag_id) for n in notes] == [
        ("hotspot", "supervisor", flag.id)]
    assert "同一事项来电11件" in notes[0].text


async def test_nine_callers_are_not_a_hotspot(sessionmaker, clock, make_ticket):
    await _calls(make_ticket, clock, NIGHT_CONSTRUCTION[:9])
    assert await _detect(sessionmaker, clock) == {}


async def test_the_window_forgets_old_calls(sessionmaker, clock, make_ticket):
    await _calls(make_ticket, clock, NIGHT_CONSTRUCTION[:6])
    clock.advance(timedelta(days=8))
    await _calls(make_ticket, clock, NIGHT_CONSTRUCTION[6:])
    assert await _detect(sessionmaker, clock) == {}


async def test_ten_complaints_against_one_unit(sessionmaker, clock, make_ticket):
    unit = await make_unit(sessionmaker, name="某街道办")
    other = await make_unit(sessionmaker, name="供水公司")
    texts = PROPERTY_FEES + ILLEGAL_CONSTRUCTION + WATER_OUTAGE + OTHER
    await _calls(make_ticket, clock, texts, ticket_type="complaint", lead_unit_id=unit.id)
    await _calls(make_ticket, clock, texts[:9], ticket_type="complaint", lead_unit_id=other.id)
    await _calls(make_ticket, clock, texts[:5], ticket_type="help", lead_unit_id=other.id)
    assert await _detect(sessionmaker, clock) == {"unit_raised": 1}
    [flag] = await _flags(sessionmaker)
    assert (flag.kind, flag.unit_id, flag.count) == ("unit", unit.id, 10)
    await _calls(make_ticket, clock, texts[:1], ticket_type="complaint", lead_unit_id=unit.id)
    assert await _detect(sessionmaker, clock) == {"unit_updated": 1}
    assert [f.count for f in await _flags(sessionmaker)] == [11]


async def test_supervisors_see_and_close_flags_over_http(client, sessionmaker, clock,
                                                         make_ticket):
    await _calls(make_ticket, clock, NIGHT_CONSTRUCTION)
    await _detect(sessionmaker, clock)
    config = test_auth_config()
    supervisor = await make_user(sessionmaker, clock, role=Role.SUPERVISOR)
    agent = await make_user(sessionmaker, clock, role=Role.AGENT)
    as_supervisor = bearer(token_for(supervisor, config, clock))

    assert (await client.get("/api/v1/supervision/flags")).status == 401
    assert (await client.get("/api/v1/supervision/flags",
                             headers=bearer(token_for(agent, config, clock)))).status == 403
    listed = await (await client.get("/api/v1/supervision/flags?status=open",
                                     headers=as_supervisor)).json()
    [flag] = listed["flags"]
    assert flag["count"] == 12 and flag["places"] == ["阳光花园"]
    assert {"施工", "噪音", "夜间"} <= set(flag["key_terms"])
    closed = await client.patch(f"/api/v1/supervision/flags/{flag['id']}",
                                headers=as_supervisor, json={"status": "closed"})
    assert (await closed.json())["status"] == "closed"
    # A closed hotspot that flares up again is raised anew.
    assert await _detect(sessionmaker, clock) == {"matter_raised": 1}
