"""Migration 0007 keeps the orders already stored: defaults for the new columns, the lead
unit's deadlines on its assignment, one open state period per order."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text

from callcenter.store import migrations
from callcenter.store.engine import create_engine

T0 = "2026-11-23 02:00:00+00:00"
DUE = "2026-11-30 15:59:59+00:00"


async def test_existing_orders_migrate_with_their_facts(db_url: str) -> None:
    await migrations.upgrade(db_url, "0006_token_generation")
    engine = create_engine(db_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(
                "INSERT INTO units (id, code, name, active) VALUES (1, 'u1', '城管局', :t)"),
                {"t": True})
            await conn.execute(text(
                "INSERT INTO tickets (id, number, status, channel, anonymous, requester_kind,"
                " public, ticket_type, content, created_at, updated_at, extension_days,"
                " dispatch_count, return_count, rework_count, duplicate_count, version,"
                " lead_unit_id, acceptance_due_at, reply_due_at) VALUES (1, '20261123-000001',"
                " 'accepted', 'phone', :f, 'individual', :f, 'complaint', '噪音', :t0, :t0, 2,"
                " 1, 0, 0, 0, 1, 1, :t0, :due)"),
                {"f": False, "t0": _at(T0), "due": _at(DUE)})
            await conn.execute(text(
                "INSERT INTO ticket_assignments (ticket_id, unit_id, ticket_created_at, role,"
                " state, active, dispatched_at) VALUES (1, 1, :t0, 'lead', 'accepted', :t,"
                " :t0)"), {"t0": _at(T0), "t": True})
        await migrations.upgrade(db_url)
        async with engine.connect() as conn:
            ticket = (await conn.execute(text(
                "SELECT order_level, urgency, deadline_provisional, overdue_since"
                " FROM tickets"))).one()
            assignment = (await conn.execute(text(
                "SELECT reply_due_at, extension_days, rework_count FROM ticket_assignments"
            ))).one()
            period = (await conn.execute(text(
                "SELECT status, unit_id, ended_at FROM ticket_state_periods"))).one()
            unit = (await conn.execute(text("SELECT kind, parent_id FROM units"))).one()
    finally:
        await engine.dispose()
    assert (ticket[0], ticket[1], bool(ticket[2]), ticket[3]) == ("own", "normal", False, None)
    assert str(assignment[0]).startswith("2026-11-30 15:59:59")
    assert (assignment[1], assignment[2]) == (2, 0)
    assert tuple(period) == ("accepted", 1, None)
    assert tuple(unit) == ("department", None)


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)
