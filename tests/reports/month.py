"""A synthetic October 2026 (National Day holiday) with figures known by hand.

Units: U1 湘滨镇 and U2 三塘镇 (towns), U3 交通运输局 and U4 环卫中心 (departments; U4 has no
orders). Each order's facts are written as the tickets feature stores them; the expected
figures in the tests are counted from the comments here, not from the code under test.

  t1  U1  accepted on time, contacted on time, replied on time; revisit satisfied
  t2  U1  accepted late, contacted on time, replied late, overdue; revisit basically
          satisfied; an extension asked and refused
  t3  U1  on time but contacted late; revisit unsatisfied, rework, replied on time,
          revisit unsatisfied again → appealed, upheld (only the last revisit counts)
  t4  U1  accepted on time, contact deadline 20 Oct passed without contact, no reply
  t5  U1  dispatched 28 Sep (September's order), revisit satisfied in October
  t6  U2 returned it the same day → U3 accepted, contacted, replied on time; satisfied
  t7  U2  all on time; revisit unsatisfied (no appeal)
  t8  U2  anonymous (no first contact, no revisit), accepted and replied on time
  t9  U3 → re-dispatched to U1 → re-dispatched back to U3 (U3's order once), on time
  t10 U3  on time, an extension approved; revisit unreachable
  t11 U3  dispatched 1 Nov 00:10 local (November)
  t12 U3  dispatched 31 Oct 23:30 local (October), acceptance due 1 Nov: not yet due
  t13     direct answer (no unit), registered in October
  t14     a draft (not an order)
  t15/16  registered October 2025 (phone, wechat): last year's figures
  t17 U2  dispatched 29 Sep, returned that day, sent back to U2 on 2 Oct: September's order
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.auth.models import Unit, User
from callcenter.calls.models import CallAgentAttempt, CallLog
from callcenter.queues.models import Agent, AgentStatePeriod
from callcenter.reports.models import RevisitAppeal
from callcenter.tickets.models import (
    Ticket,
    TicketAssignment,
    TicketExtension,
    TicketRevisit,
    TicketRework,
)

TZ = ZoneInfo("Asia/Shanghai")
U1, U2, U3, U4 = 1, 2, 3, 4


def at(month: int, day: int, hour: int = 10, minute: int = 0, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=TZ)


class Month:
    """Writes the synthetic month through one session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.ids = 0

    def ticket(self, n: int, registered: datetime, *, unit: int | None, status: str,
               channel: str = "phone", topic: str | None = "transport",
               anonymous: bool = False, ticket_type: str = "complaint",
               overdue: datetime | None = None, plan: datetime | None = None) -> int:
        self.session.add(Ticket(
            id=n, number=f"T{n:04d}", status=status, channel=channel, ticket_type=ticket_type,
            topic=topic, content="...", created_at=registered, updated_at=registered,
            registered_at=None if status == "draft" else registered, lead_unit_id=unit,
            anonymous=anonymous, location=f"place-{n % 3}", overdue_since=overdue,
            plan_replied_at=plan))
        return n

    def hold(self, ticket: int, unit: int, dispatched: datetime, *,
             accepted: bool | None = True, contact: bool | None = True,
             replied: bool | None = True, end: str | None = None,
             contact_due: datetime | None = None, hold_id: int | None = None) -> int:
        """One lead hold; ``accepted``/``contact``/``replied`` give the on-time flag (None:
        not done yet)."""
        self.ids += 1
        hid = hold_id or self.ids
        self.session.add(TicketAssignment(
            id=hid, ticket_id=ticket, unit_id=unit, ticket_created_at=dispatched, role="lead",
            state="replied" if replied is not None else "accepted", active=end is None,
            dispatched_at=dispatched,
            acceptance_due_at=dispatched + timedelta(hours=2),
            accepted_at=dispatched + timedelta(hours=1) if accepted is not None else None,
            accepted_on_time=accepted,
            first_contact_due_at=contact_due or dispatched + timedelta(days=1),
            first_contact_at=dispatched + timedelta(hours=5) if contact is not None else None,
            first_contact_on_time=contact,
            replied_at=dispatched + timedelta(days=3) if replied is not None else None,
            replied_on_time=replied,
            ended_at=dispatched + timedelta(hours=3) if end else None, end_reason=end))
        return hid


async def write_month(session: AsyncSession) -> None:
    session.add_all([
        Unit(id=U1, code="xiangbin", name="湘滨镇", kind="town"),
        Unit(id=U2, code="santang", name="三塘镇", kind="town"),
        Unit(id=U3, code="transport_bureau", name="交通运输局", kind="department"),
        Unit(id=U4, code="sanitation", name="环卫中心", kind="department"),
    ])
    await session.flush()
    m = Month(session)
    oct_ = 10
    # U1
    m.ticket(1, at(oct_, 9, 9), unit=U1, status="archived", topic="city_appearance")
    m.hold(1, U1, at(oct_, 9))
    m.ticket(2, at(oct_, 12, 9), unit=U1, status="archived", topic="city_appearance",
             overdue=at(oct_, 15))
    m.hold(2, U1, at(oct_, 12), accepted=False, replied=False)
    m.ticket(3, at(oct_, 8, 9), unit=U1, status="archived", topic="noise_nuisance")
    h3 = m.hold(3, U1, at(oct_, 8), contact=False)
    m.ticket(4, at(oct_, 16, 9), unit=U1, status="accepted")
    m.hold(4, U1, at(oct_, 16), contact=None, replied=None, contact_due=at(oct_, 20))
    m.ticket(5, at(9, 28, 9), unit=U1, status="archived")
    m.hold(5, U1, at(9, 28))
    # U2 → U3
    m.ticket(6, at(oct_, 2, 8), unit=U3, status="archived", channel="wechat")
    m.hold(6, U2, at(oct_, 2, 9), accepted=None, contact=None, replied=None, end="returned")
    m.hold(6, U3, at(oct_, 2, 15))
    m.ticket(7, at(oct_, 13, 9), unit=U2, status="revisited", channel="wechat")
    m.hold(7, U2, at(oct_, 13))
    m.ticket(8, at(oct_, 14, 9), unit=U2, status="replied", channel="mayor_mailbox",
             anonymous=True, topic="city_appearance")
    m.hold(8, U2, at(oct_, 14), contact=None)
    # U3
    m.ticket(9, at(oct_, 3, 9), unit=U3, status="replied")
    m.hold(9, U3, at(oct_, 3), contact=None, replied=None, end="redispatched")
    m.hold(9, U1, at(oct_, 4), contact=None, replied=None, end="redispatched")
    m.hold(9, U3, at(oct_, 5))
    m.ticket(10, at(oct_, 8, 9), unit=U3, status="archived")
    m.hold(10, U3, at(oct_, 8))
    m.ticket(11, at(11, 1, 0, 5), unit=U3, status="accepted")
    m.hold(11, U3, at(11, 1, 0, 10), contact=None, replied=None)
    m.ticket(12, at(oct_, 31, 22, 30), unit=U3, status="dispatched")
    m.hold(12, U3, at(oct_, 31, 23, 30), accepted=None, contact=None, replied=None)
    m.ticket(17, at(9, 29, 8), unit=U2, status="replied", channel="app")
    m.hold(17, U2, at(9, 29), accepted=None, contact=None, replied=None, end="returned")
    m.hold(17, U2, at(oct_, 2))
    # No unit, not an order, last year
    m.ticket(13, at(oct_, 20), unit=None, status="closed", ticket_type="consultation")
    m.ticket(14, at(oct_, 21), unit=None, status="draft")
    m.ticket(15, at(oct_, 10, year=2025), unit=None, status="closed")
    m.ticket(16, at(oct_, 10, year=2025), unit=None, status="closed", channel="wechat")
    await session.flush()

    session.add_all([
        TicketExtension(ticket_id=2, unit_id=U1, days=3, reason="r", requested_at=at(oct_, 13),
                        decision="refused"),
        TicketExtension(ticket_id=10, unit_id=U3, days=3, reason="r",
                        requested_at=at(oct_, 9), decision="approved"),
        TicketRework(ticket_id=3, assignment_id=h3, unit_id=U1, basis="unsatisfied_revisit",
                     reason="r", reply_due_at=at(oct_, 18), at=at(oct_, 11)),
    ])
    revisits = [
        (1, U1, "satisfied", at(oct_, 14)),
        (2, U1, "basically_satisfied", at(oct_, 19)),
        (3, U1, "unsatisfied", at(oct_, 10)),
        (3, U1, "unsatisfied", at(oct_, 20)),
        (5, U1, "satisfied", at(oct_, 2)),
        (6, U3, "satisfied", at(oct_, 8)),
        (7, U2, "unsatisfied", at(oct_, 19)),
        (10, U3, "unreachable", at(oct_, 13)),
    ]
    for index, (ticket, unit, result, when) in enumerate(revisits, start=1):
        session.add(TicketRevisit(id=index, ticket_id=ticket, unit_id=unit, result=result,
                                  at=when))
    await session.flush()
    session.add(RevisitAppeal(revisit_id=4, ticket_id=3, unit_id=U1, reason="evidence",
                              filed_at=at(oct_, 22), upheld=True, decided_at=at(oct_, 25)))
    write_calls(session)
    write_agent_periods(session)
    await session.flush()


def call(n: int, started: datetime, disposition: str, *, queue: str | None = "hotline",
         wait: float = 0, talk: float = 0, hold: float = 0, outcome: str | None = None,
         node: str | None = None, direction: str = "inbound") -> CallLog:
    return CallLog(linkedid=f"c{n}", pbx="default", direction=direction, queue=queue,
                   queue_outcome=outcome, started_at=started, ended_at=started,
                   wait_seconds=wait, talk_seconds=talk, hold_seconds=hold,
                   disposition=disposition, ivr_node=node)


def write_calls(session: AsyncSession) -> None:
    """c1-c3 answered (waits 10, 15, 16 s), c4 abandoned, c5 queue timeout, c6 left an
    empty queue, c7 self-served in the IVR, c8 hung up in the menu; c9 outbound and c10
    (1 Nov local) are not October's inbound calls."""
    day = at(10, 10)
    session.add_all([
        call(1, day, "answered", wait=10, talk=100, hold=20, outcome="answered"),
        call(2, day, "answered", wait=15, talk=200, outcome="answered"),
        call(3, day, "answered", wait=16, talk=60, outcome="answered"),
        call(4, day, "abandoned", wait=30, outcome="abandoned"),
        call(5, day, "no_answer", wait=60, outcome="timeout"),
        call(6, day, "no_answer", wait=1, outcome="leaveempty"),
        call(7, day, "ivr_hangup", queue=None, node="selfservice_water"),
        call(8, day, "ivr_hangup", queue=None, node="menu_main"),
        call(9, day, "answered", queue=None, talk=50, direction="outbound"),
        call(10, at(11, 1, 0, 1), "answered", wait=5, talk=10, outcome="answered"),
    ])
    for n, (linkedid, agent, outcome) in enumerate([("c1", "1001", "answered"),
                                                    ("c2", "1002", "missed"),
                                                    ("c2", "1002", "answered"),
                                                    ("c3", "1001", "answered")]):
        session.add(CallAgentAttempt(pbx="default", linkedid=linkedid, queue="hotline",
                                     agent_name=agent, interface=f"PJSIP/{agent}",
                                     called_at=day + timedelta(seconds=n), outcome=outcome,
                                     talk_seconds=10.0 if outcome == "answered" else None))


def write_agent_periods(session: AsyncSession) -> None:
    """Agent 1001 on 10 Oct: available 600 s, ringing 5, talk 120, hold 30, wrap-up 30,
    meal 1,800, available 1,015. Agent 1002: a break from 30 Sep 23:50 to 1 Oct 00:10 (600 s
    in October), available 31 Oct 23:00 to 1 Nov 01:00 (3,600 s in October), and training
    since 20 Oct 10:00, still open (until 1 Nov 00:00: 11 days 14 h, 1,000,800 s)."""
    since = at(9, 1)
    for n, name in ((901, "1001"), (902, "1002")):
        session.add(User(id=n, username=f"agent{name}", display_name=name, password_hash="!",
                         role="agent", active=True, created_at=since,
                         password_changed_at=since))
        session.add(Agent(id=n, user_id=n, member_name=name, extension=name,
                          interface=f"PJSIP/{name}", logged_in=True, state="available"))
    t = at(10, 10, 9)
    steps = [("available", None, 600), ("ringing", None, 5), ("on_call", None, 120),
             ("on_hold", None, 30), ("after_call_work", None, 30), ("paused", "meal", 1800),
             ("available", None, 1015)]
    for state, reason, seconds in steps:
        session.add(AgentStatePeriod(agent_id=901, state=state, reason=reason, started_at=t,
                                     ended_at=t + timedelta(seconds=seconds)))
        t += timedelta(seconds=seconds)
    session.add_all([
        AgentStatePeriod(agent_id=902, state="paused", reason="break",
                         started_at=at(9, 30, 23, 50), ended_at=at(10, 1, 0, 10)),
        AgentStatePeriod(agent_id=902, state="available", started_at=at(10, 31, 23),
                         ended_at=at(11, 1, 1)),
        AgentStatePeriod(agent_id=902, state="paused", reason="training",
                         started_at=at(10, 20, 10), ended_at=None),
    ])
