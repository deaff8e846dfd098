"""The service on the store: daily numbers under concurrency, racing transitions, timeline."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from callcenter.auth.principal import Principal, Role
from callcenter.tickets.errors import ConcurrentUpdate, IllegalTransition
from callcenter.tickets.models import TicketCall, TicketEvent
from callcenter.tickets.schemas import DispatchIn, DraftIn
from callcenter.tickets.service import TicketService
from tests.tickets.conftest import Hotline, local


async def test_daily_numbers_are_unique_under_concurrency(hotline: Hotline) -> None:
    h = hotline
    h.clock.set(local(2026, 11, 23, 23, 59, 59))
    service, agent = h.service, h.agent.principal
    drafts = await asyncio.gather(*(service.create_draft(agent, DraftIn(content=f"第{i}件"))
                                    for i in range(25)))
    assert sorted(t.number for t in drafts) == [f"20261123-{i:06d}" for i in range(1, 26)]
    h.clock.set(local(2026, 11, 24, 0, 0, 1))  # a new local day starts a new counter
    first = await service.create_draft(agent, DraftIn(content="次日"))
    assert first.number == "20261124-000001"


async def test_numbers_stay_unique_across_processes(hotline: Hotline) -> None:
    """Two service instances (as in two processes) reserve disjoint blocks of numbers."""
    h = hotline
    other = TicketService(h.sessionmaker, h.clock, h.service.config.model_copy(
        update={"number_block": 3}), h.service.taxonomy, h.service.calendar)
    agent = h.agent.principal
    drafts = await asyncio.gather(*(
        (h.service if i % 2 else other).create_draft(agent, DraftIn(content=f"第{i}件"))
        for i in range(30)))
    numbers = [t.number for t in drafts]
    assert len(set(numbers)) == 30
    assert all(n.startswith("20261123-") for n in numbers)


async def test_racing_transitions_let_exactly_one_win(hotline: Hotline) -> None:
    h = hotline
    ticket = await h.new_ticket()
    await h.service.dispatch(h.supervisor.principal, ticket["id"],
                             DispatchIn(lead_unit_id=h.unit_a))
    results = await asyncio.gather(
        *(h.service.accept(h.handler_a.principal, ticket["id"]) for _ in range(4)),
        return_exceptions=True)
    winners = [r for r in results if not isinstance(r, Exception)]
    losers = [r for r in results if isinstance(r, Exception)]
    assert len(winners) == 1
    assert all(isinstance(e, IllegalTransition | ConcurrentUpdate) for e in losers), losers
    timeline = await h.service.timeline(h.supervisor.principal, ticket["id"])
    assert [e.action for e in timeline].count("accept") == 1


async def test_the_timeline_is_append_only(hotline: Hotline) -> None:
    h = hotline
    ticket = await h.new_ticket()
    async with h.sessionmaker() as session:
        event = await session.scalar(select(TicketEvent).where(
            TicketEvent.ticket_id == ticket["id"]))
        assert event is not None
        event_id = event.id
        event.reason = "rewritten history"
        with pytest.raises(RuntimeError, match="append-only"):
            await session.flush()
        await session.rollback()
        await session.delete(await session.get(TicketEvent, event_id))
        with pytest.raises(RuntimeError, match="append-only"):
            await session.flush()


async def test_a_draft_and_its_create_event_are_written_together(hotline: Hotline) -> None:
    """Intake writes the ticket and its first timeline entry in one statement (PostgreSQL)
    or one transaction (SQLite); both read back the same."""
    h = hotline
    draft = await h.service.create_draft(h.agent.principal, DraftIn(
        content="路灯不亮", ticket_type="help", caller={"phone": "13900001111"}))
    events = await h.service.timeline(h.supervisor.principal, draft.id)
    assert [(e.action, e.from_status, e.to_status, e.actor_id, e.data, e.attachments)
            for e in events] == [("create", None, "draft", h.agent.principal.user_id, {}, [])]
    assert events[0].at == draft.created_at
    stored = await h.call(h.supervisor, "GET", f"/tickets/{draft.id}", expect=200)
    assert stored["number"] == draft.number and stored["status"] == "draft"
    assert stored["ticket_type"] == "help" and stored["dispatch_count"] == 0
    assert stored["caller"]["phone"] == "13900001111"  # supervisors see it (and it is audited)


async def test_concurrent_drafts_are_written_together_each_complete(hotline: Hotline) -> None:
    """Group commit: 30 agents at once; every draft has its own event and its calls."""
    h = hotline
    agent = h.agent.principal
    drafts = await asyncio.gather(*(h.service.create_draft(agent, DraftIn(
        content=f"第{i}件", calls=[{"linkedid": f"1700.{i}", "recording_ref": f"r/{i}.wav"},
                                    {"linkedid": f"1700.{i}"}]))  # the same call twice
        for i in range(30)))
    assert len({d.id for d in drafts}) == 30
    async with h.sessionmaker() as session:
        events = (await session.execute(select(TicketEvent.ticket_id, TicketEvent.action))).all()
        calls = (await session.execute(select(TicketCall.ticket_id, TicketCall.linkedid,
                                              TicketCall.recording_ref))).all()
    assert sorted(events) == sorted((d.id, "create") for d in drafts)
    assert sorted(calls) == sorted((d.id, f"1700.{i}", f"r/{i}.wav")
                                   for i, d in enumerate(drafts))


async def test_a_bad_draft_in_a_batch_fails_alone(hotline: Hotline) -> None:
    h = hotline
    ghost = Principal(987654, "ghost", Role.AGENT, None)  # no such user: the row cannot be
    results = await asyncio.gather(*(
        h.service.create_draft(ghost if i == 3 else h.agent.principal, DraftIn(content=f"{i}"))
        for i in range(6)), return_exceptions=True)
    failed = [r for r in results if isinstance(r, Exception)]
    assert len(failed) == 1 and results[3] is failed[0]
    async with h.sessionmaker() as session:
        events = (await session.execute(select(TicketEvent.ticket_id))).scalars().all()
    assert sorted(events) == sorted(r.id for r in results if not isinstance(r, Exception))
