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
    """With the planner's statistics as the inserts left them (autovacuum may be off or
    late) and after ``ANALYZE``."""
    campaign_id = await campaign_with(sessionmaker, done=3000, calling=4, claimed=0)
    for analyze in (False, True):
        async with sessionmaker() as session, session.begin():
            if analyze:
                await session.execute(text("ANALYZE"))
            plan, history_scans = await plan_of(session, campaign_id)
            assert await session.scalar(busy_lines(campaign_id)) == 4
        assert "ix_revisit_attempts_live" in plan, plan
        assert not any(scan in plan for scan in history_scans), plan


async def plan_of(session: AsyncSession, campaign_id: int) -> tuple[str, tuple[str, ...]]:
    """The count's query plan, and what a plan reading the campaign's history would say:
    scanning the revisits, or joining all of them (each revisit is to be read by its key,
    from a live attempt)."""
    dialect = session.bind.dialect
    query = busy_lines(campaign_id).compile(dialect=dialect,
                                            compile_kwargs={"literal_binds": True})
    if dialect.name == "sqlite":
        rows = (await session.execute(text(f"EXPLAIN QUERY PLAN {query}"))).all()
        return "\n".join(row[-1] for row in rows), (
            "SCAN revisits", "SEARCH revisits USING COVERING INDEX ix_revisits_campaign_state_"
            "due (campaign_id=?)\n")
    rows = (await session.scalars(text(f"EXPLAIN {query}"))).all()
    return "\n".join(rows), ("Seq Scan on revisits", "Heap Scan on revisits", "Hash")
