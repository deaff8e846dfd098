"""The claim's count of busy lines: claims about to dial and calls not hung up, found from
the live attempts alone. A campaign keeps every revisit it ever made, so a count that read
them all would slow every claim as the hotline ages (it serialises the claimers)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.auth.models import Unit
from callcenter.revisit.models import Revisit, RevisitAttempt, RevisitCampaign
from callcenter.revisit.service import busy_lines
from callcenter.tickets.models import Ticket

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


async def campaign_with(sessionmaker: async_sessionmaker[AsyncSession], *, done: int,
                        calling: int, claimed: int) -> int:
    """A campaign with ``done`` finished revisits (one ended attempt each), ``calling``
    revisits on a call (an attempt not ended) and ``claimed`` claims (an older version's
    rows). Returns the campaign's id."""
    async with sessionmaker() as session, session.begin():
        unit = Unit(code="u1", name="unit", active=True)
        campaign = RevisitCampaign(name="c", settings={}, paused=False, claim_seq=0,
                                   created_at=NOW, updated_at=NOW)
        session.add_all([unit, campaign])
        await session.flush()
        ticket = Ticket(number="T1", status="replied", channel="phone",
                        caller_phone="13800138000", anonymous=False, ticket_type="complaint",
                        topic="urban_management", title="t", content="t",
                        lead_unit_id=unit.id, created_at=NOW, updated_at=NOW, replied_at=NOW)
        session.add(ticket)
        await session.flush()
        states = ["done"] * done + ["answered"] * calling + ["claimed"] * claimed
        ids = (await session.scalars(insert(Revisit).returning(Revisit.id), [
            {"campaign_id": campaign.id, "ticket_id": ticket.id, "source": "reply",
             "state": state, "due_at": NOW, "attempts": 1, "created_at": NOW}
            for state in states])).all()
        await session.execute(insert(RevisitAttempt), [
            {"revisit_id": rid, "number": 1, "channel_id": f"c-{rid}", "outcome": "answered",
             "started_at": NOW, "ended_at": NOW if state == "done" else None}
            for rid, state in zip(ids, states, strict=True) if state != "claimed"])
        return campaign.id


async def test_busy_lines_are_the_claims_and_the_calls_not_hung_up(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    campaign_id = await campaign_with(sessionmaker, done=5, calling=3, claimed=2)
    async with sessionmaker() as session:
        assert await session.scalar(busy_lines(campaign_id)) == 5
        assert await session.scalar(busy_lines(campaign_id + 1)) == 0


async def test_the_count_reads_the_live_attempts_not_the_campaigns_history(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    campaign_id = await campaign_with(sessionmaker, done=3000, calling=4, claimed=0)
    async with sessionmaker() as session, session.begin():
        dialect = session.bind.dialect
        query = busy_lines(campaign_id).compile(dialect=dialect,
                                                compile_kwargs={"literal_binds": True})
        await session.execute(text("ANALYZE"))
        if dialect.name == "sqlite":
            rows = (await session.execute(text(f"EXPLAIN QUERY PLAN {query}"))).all()
            plan = "\n".join(row[-1] for row in rows)
            full_scan = "SCAN revisits"
        else:
            plan = "\n".join((await session.scalars(text(f"EXPLAIN {query}"))).all())
            full_scan = "Seq Scan"
        assert await session.scalar(busy_lines(campaign_id)) == 4
    assert "ix_revisit_attempts_live" in plan, plan
    assert full_scan not in plan, plan
