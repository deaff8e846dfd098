"""Unit handlers receive reminders live over a websocket and list / mark them read."""

from __future__ import annotations

from datetime import date

from callcenter.auth.principal import Role
from callcenter.auth.testing import bearer, make_unit, make_user, test_auth_config, token_for
from callcenter.supervision.scheduler import SupervisionConfig, SupervisionScheduler


async def test_live_push_list_and_mark_read(client, sessionmaker, bus, clock, calendar,
                                            make_ticket):
    config = test_auth_config()
    unit = await make_unit(sessionmaker, name="城管局")
    other_unit = await make_unit(sessionmaker, name="教育局")
    handler = await make_user(sessionmaker, clock, role=Role.UNIT_HANDLER, unit_id=unit.id)
    stranger = await make_user(sessionmaker, clock, role=Role.UNIT_HANDLER,
                               unit_id=other_unit.id)
    supervisor = await make_user(sessionmaker, clock, role=Role.SUPERVISOR)
    mine = await make_ticket(status="accepted", lead_unit_id=unit.id,
                             reply_due_at=calendar.end_of_day(date(2026, 10, 8)))
    late = await make_ticket(status="accepted", lead_unit_id=unit.id,
                             reply_due_at=calendar.end_of_day(date(2026, 9, 29)))
    await make_ticket(status="accepted", lead_unit_id=other_unit.id,
                      reply_due_at=calendar.end_of_day(date(2026, 10, 8)))
    as_handler = bearer(token_for(handler, config, clock))
    token = token_for(handler, config, clock)

    assert (await client.get("/api/v1/notifications/ws")).status == 401
    async with client.ws_connect(f"/api/v1/notifications/ws?access_token={token}") as ws:
        assert await ws.receive_json(timeout=5) == {"type": "ready", "unread": 0}
        scheduler = SupervisionScheduler(sessionmaker, bus, clock, calendar,
                                         SupervisionConfig())
        await scheduler.run_once()
        message = await ws.receive_json(timeout=5)
    assert message["type"] == "notifications"
    received = message["notifications"]
    assert sorted((n["kind"], n["ticket_id"]) for n in received) == sorted(
        [("due_soon", mine.id), ("overdue", late.id)])
    assert all(n["recipient_unit_id"] == unit.id for n in received)

    listed = await (await client.get("/api/v1/notifications", headers=as_handler)).json()
    assert listed["unread"] == 2 and len(listed["notifications"]) == 2
    first = listed["notifications"][0]["id"]
    # Another unit cannot mark (or see) them.
    as_stranger = bearer(token_for(stranger, config, clock))
    marked = await client.post("/api/v1/notifications/read", headers=as_stranger,
                               json={"ids": [first]})
    assert (await marked.json())["marked"] == 0
    marked = await client.post("/api/v1/notifications/read", headers=as_handler,
                               json={"ids": [first]})
    assert (await marked.json())["marked"] == 1
    unread = await (await client.get("/api/v1/notifications?unread=1",
                                     headers=as_handler)).json()
    assert unread["unread"] == 1 and [n["id"] for n in unread["notifications"]] != [first]

    escalations = await (await client.get(
        "/api/v1/notifications", headers=bearer(token_for(supervisor, config, clock)))).json()
    assert [n["kind"] for n in escalations["notifications"]] == ["overdue_escalation"]


async def test_a_handler_without_a_unit_reads_no_notifications(client, sessionmaker, bus,
                                                               clock, calendar, make_ticket):
    """A unit handler left without a unit (data edited by hand) must not fall through to
    the role-addressed notifications (``recipient_unit_id = NULL`` are the supervisors')."""
    from callcenter.auth.models import User

    config = test_auth_config()
    unit = await make_unit(sessionmaker)
    orphan = await make_user(sessionmaker, clock, role=Role.UNIT_HANDLER, unit_id=unit.id)
    async with sessionmaker() as session, session.begin():
        (await session.get(User, orphan.id)).unit_id = None
    await make_ticket(status="accepted", lead_unit_id=unit.id,
                      reply_due_at=calendar.end_of_day(date(2026, 9, 29)))
    await SupervisionScheduler(sessionmaker, bus, clock, calendar,
                               SupervisionConfig()).run_once()  # an overdue escalation
    orphan.unit_id = None
    token = token_for(orphan, config, clock)
    listed = await (await client.get("/api/v1/notifications", headers=bearer(token))).json()
    assert listed == {"notifications": [], "unread": 0}
    refused = await client.get(f"/api/v1/notifications/ws?access_token={token}",
                               headers={"Upgrade": "websocket", "Connection": "Upgrade",
                                        "Sec-WebSocket-Version": "13",
                                        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    assert refused.status == 403
