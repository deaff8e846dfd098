"""Ticket progress by phone through the simulator: the calling number is the ticket's, or it
is not (then a PIN), failed checks limited and logged, and nothing personal is spoken."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from callcenter.auth.principal import Role
from callcenter.auth.testing import make_user
from callcenter.auth.users import principal_for
from callcenter.ivr.models import IvrVerification
from callcenter.ivr.spoken import progress_sentence
from callcenter.simulator.actors import Agent
from callcenter.tickets.models import Ticket
from callcenter.tickets.schemas import CallerIn, DraftIn
from tests.ivr.rig import Rig

CITIZEN = "13800138000"
STRANGER = "13911112222"
ASK = ["zh/hotline-welcome", "zh/english-option", "zh/main-menu", "zh/progress-ask-number"]
DUE = datetime(2026, 12, 9, 15, 59, 59, tzinfo=UTC)  # 23:59:59 on 9 December in Shanghai


@pytest.fixture(autouse=True)
async def agents(rig: Rig) -> None:
    rig.sim.add_agent("PJSIP/1001", Agent(answer_after=0.5), queues=["hotline"], login=True)
    rig.use("menu")


async def dispatched_ticket(rig: Rig) -> Ticket:
    """A citizen's ticket, dispatched, due on 9 December 2026."""
    agent = await make_user(rig.sessionmaker, rig.clock, role=Role.AGENT)
    draft = await rig.tickets.create_draft(
        principal_for(agent), DraftIn(caller=CallerIn(name="张三", phone=CITIZEN),
                                      content="小区路灯不亮", location="人民路12号"))
    async with rig.sessionmaker() as session, session.begin():
        ticket = await session.get(Ticket, draft.id)
        assert ticket is not None
        ticket.status, ticket.reply_due_at = "dispatched", DUE
    return ticket


def digits(ticket: Ticket) -> str:
    return ticket.number.replace("-", "")


async def outcomes(rig: Rig) -> list[str]:
    async with rig.sessionmaker() as session:
        rows = (await session.scalars(select(IvrVerification).order_by(IvrVerification.id)))
        return [row.outcome for row in rows]


async def spoken(rig: Rig, ticket: Ticket) -> str:
    """The prompt the status sentence became (synthesized once, cached)."""
    text = progress_sentence("zh", ticket.number, "dispatched", date(2026, 12, 9))
    return await rig.app.library.sentence(text, "zh")


async def test_the_tickets_own_number_hears_status_and_deadline(rig: Rig) -> None:
    ticket = await dispatched_ticket(rig)
    call = rig.call(CITIZEN, keys="2" + digits(ticket))
    rows = await rig.ended(call)
    sentence = await spoken(rig, ticket)
    assert rig.watch.played(call) == [*ASK, sentence, "zh/more-menu", "zh/goodbye"]
    assert progress_sentence("zh", ticket.number, "dispatched", date(2026, 12, 9)) == (
        f"您查询的工单二零二六{_zh(digits(ticket)[4:])}，已交办承办单位。"
        "办理期限是二零二六年十二月九日。")
    assert "张三" not in sentence and "路灯" not in sentence
    assert rig.watch.var(call, "IVR_VERIFIED") == "caller"
    assert rig.watch.var(call, "IVR_TICKET") == ticket.number
    assert rows[call.linkedid].disposition == "ivr_hangup"
    assert await outcomes(rig) == ["caller"]


def _zh(text: str) -> str:
    return "".join("零幺二三四五六七八九"[int(c)] for c in text)


async def test_another_number_without_a_pin_is_not_told_and_goes_to_an_agent(rig: Rig) -> None:
    ticket = await dispatched_ticket(rig)
    call = rig.call(STRANGER, keys="2" + digits(ticket))
    rows = await rig.ended(call)
    assert rig.watch.played(call) == [*ASK, "zh/progress-not-found", "zh/progress-ask-number",
                                      "zh/progress-ask-number", "zh/connecting"]
    assert rig.watch.var(call, "IVR_VERIFIED") == "mismatch"
    assert rig.watch.var(call, "IVR_TICKET") is None
    assert rows[call.linkedid].queue == "hotline"
    assert await outcomes(rig) == ["mismatch"]


async def test_another_number_with_the_tickets_pin_hears_the_status(rig: Rig) -> None:
    ticket = await dispatched_ticket(rig)
    async with rig.sessionmaker() as session, session.begin():
        pin = await rig.app.service.issue_pin(session, ticket.id)
    call = rig.call(STRANGER, keys="2" + digits(ticket) + pin)
    await rig.ended(call)
    sentence = await spoken(rig, ticket)
    assert rig.watch.played(call) == [*ASK, "zh/progress-ask-pin", sentence, "zh/more-menu",
                                      "zh/goodbye"]
    assert rig.watch.var(call, "IVR_VERIFIED") == "pin"
    assert await outcomes(rig) == ["pin"]


async def test_a_wrong_pin_is_refused_and_logged(rig: Rig) -> None:
    ticket = await dispatched_ticket(rig)
    async with rig.sessionmaker() as session, session.begin():
        pin = await rig.app.service.issue_pin(session, ticket.id)
    wrong = f"{(int(pin) + 1) % 10**6:06d}"
    call = rig.call(STRANGER, keys="2" + digits(ticket) + wrong)
    await rig.ended(call)
    assert rig.watch.played(call)[4:6] == ["zh/progress-ask-pin", "zh/progress-not-found"]
    assert rig.watch.var(call, "IVR_VERIFIED") == "bad_pin"
    assert await outcomes(rig) == ["bad_pin"]


async def test_failed_checks_over_the_limit_refuse_even_the_right_caller(rig: Rig) -> None:
    ticket = await dispatched_ticket(rig)
    rig.use("menu", verification_limit=1)
    first = rig.call(CITIZEN, keys="2" + "20990101000001")  # no such ticket: one failure
    await rig.ended(first)
    second = rig.call(CITIZEN, keys="2" + digits(ticket))
    rows = await rig.ended(second)
    assert rig.watch.played(second) == [*ASK, "zh/progress-refused", "zh/connecting"]
    assert rig.watch.var(second, "IVR_VERIFIED") == "refused"
    assert rows[second.linkedid].queue == "hotline"
    assert await outcomes(rig) == ["not_found", "refused"]
