"""Duplicate candidates: the same caller about the same matter within the window."""

from __future__ import annotations

from datetime import timedelta

from callcenter.tickets.duplicates import find_duplicate_candidates, rank_duplicate_candidates

from .texts import NIGHT_CONSTRUCTION, PROPERTY_FEES, WATER_OUTAGE

PHONE = "13899990000"


async def test_same_caller_same_matter_is_proposed_best_first(sessionmaker, clock,
                                                              make_ticket):
    start = clock.now()
    outage = await make_ticket(caller_phone=PHONE, content=WATER_OUTAGE[0], topic="public",
                               created_at=start - timedelta(days=2))
    fees = await make_ticket(caller_phone=PHONE, content=PROPERTY_FEES[0], topic="property",
                             created_at=start - timedelta(days=1))
    outage_again = await make_ticket(caller_phone=PHONE, content=WATER_OUTAGE[2],
                                     topic="other", created_at=start - timedelta(hours=3))
    await make_ticket(caller_phone="13700001111", content=WATER_OUTAGE[1], topic="public",
                      created_at=start - timedelta(hours=1))  # another caller: a hotspot
    await make_ticket(caller_phone=PHONE, content=WATER_OUTAGE[0], topic="public",
                      created_at=start - timedelta(days=40))  # outside the window
    await make_ticket(caller_phone=PHONE, content=WATER_OUTAGE[0], status="draft",
                      created_at=start - timedelta(hours=1))

    async with sessionmaker() as session:
        ranked = await rank_duplicate_candidates(
            session, caller_phone=PHONE, content=WATER_OUTAGE[1], topic="public",
            at=start, window_days=30)
    assert {c.ticket.id for c in ranked} == {outage.id, outage_again.id}
    assert ranked[0].score >= ranked[1].score > 0.3
    assert fees.id not in {c.ticket.id for c in ranked}

    async with sessionmaker() as session:
        found = await find_duplicate_candidates(
            session, caller_phone=PHONE, content=PROPERTY_FEES[1], topic="property",
            at=start, window_days=30)
        nothing = await find_duplicate_candidates(
            session, caller_phone=PHONE, content=NIGHT_CONSTRUCTION[0], topic=None,
            at=start, window_days=30)
        no_phone = await find_duplicate_candidates(
            session, caller_phone=None, content=WATER_OUTAGE[1], topic=None, at=start,
            window_days=30)
    assert [t.id for t in found] == [fees.id]
    assert nothing == [] and no_phone == []


async def test_same_words_about_another_place_are_not_duplicates(sessionmaker, clock,
                                                                 make_ticket):
    await make_ticket(caller_phone=PHONE, content="幸福路3号楼停水一整天了，什么时候来水？",
                      created_at=clock.now() - timedelta(days=1))
    async with sessionmaker() as session:
        found = await find_duplicate_candidates(
            session, caller_phone=PHONE, content="建设路8号楼停水一整天了，什么时候来水？",
            topic=None, at=clock.now(), window_days=30)
    assert found == []
