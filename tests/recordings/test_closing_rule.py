"""The closing rule: a unit's final reply on an order that requires contact needs a contact
record (an answered call of at least ``min_talk_seconds``); a supervisor may override with a
reason kept in the timeline; anonymous orders and callers who asked not to be contacted are
exempt and marked."""

from __future__ import annotations

from datetime import timedelta

from callcenter.recordings.models import ContactAttempt
from tests.recordings.conftest import Office, in_progress

# photos of the work are proof of handling, not of contact: they do not satisfy the rule
REPLY = {"content": "已现场核查并整改，施工时间已调整。",
         "attachments": [{"kind": "photo", "name": "现场.jpg", "ref": "files/1.jpg"}]}


async def contact_record(office: Office, tid: int, outcome: str, talk: float) -> int:
    """A finished click-to-call as the listener leaves it."""
    now = office.clock.now()
    async with office.sessionmaker() as session, session.begin():
        attempt = ContactAttempt(ticket_id=tid, unit_id=office.unit_a,
                                 user_id=office.handler_a.principal.user_id, pbx="sim",
                                 linkedid=f"c2c-test-{tid}-{outcome}-{talk}", outcome=outcome,
                                 talk_seconds=talk, requested_at=now,
                                 answered_at=now if outcome == "answered" else None,
                                 ended_at=now + timedelta(seconds=talk))
        session.add(attempt)
        await session.flush()
        return attempt.id


async def reply(office: Office, tid: int, expect: int) -> dict:
    return await office.call(office.handler_a, "POST", f"/tickets/{tid}/reply", REPLY,
                             expect=expect)


async def test_a_reply_without_a_contact_record_is_refused(office: Office) -> None:
    tid = (await in_progress(office))["id"]
    body = await reply(office, tid, 409)
    assert body["error"]["code"] == "rule_violation"
    assert "contact record" in body["error"]["message"]


async def test_unanswered_or_too_short_calls_do_not_qualify(office: Office) -> None:
    tid = (await in_progress(office))["id"]
    await contact_record(office, tid, "busy", 0.0)
    await contact_record(office, tid, "no_answer", 0.0)
    await contact_record(office, tid, "answered", 9.9)  # the default minimum is 10 s
    await reply(office, tid, 409)


async def test_an_answered_call_long_enough_lets_the_reply_pass(office: Office) -> None:
    tid = (await in_progress(office))["id"]
    record = await contact_record(office, tid, "answered", 10.0)
    assert (await reply(office, tid, 200))["status"] == "replied"
    events = (await office.call(office.supervisor, "GET", f"/tickets/{tid}/timeline",
                                expect=200))["events"]
    replied = [e for e in events if e["action"] == "reply"][-1]
    assert replied["data"]["contact"] == {"rule": "contact_record", "contact_call_id": record}


async def test_a_supervisors_override_needs_a_reason_and_is_kept(office: Office) -> None:
    tid = (await in_progress(office))["id"]
    await office.call(office.supervisor, "POST", f"/tickets/{tid}/contact-override",
                      {"reason": ""}, expect=422)
    await office.call(office.handler_a, "POST", f"/tickets/{tid}/contact-override",
                      {"reason": "市民电话停机，已上门核实"}, expect=403)
    await reply(office, tid, 409)
    await office.call(office.supervisor, "POST", f"/tickets/{tid}/contact-override",
                      {"reason": "市民电话停机，已上门核实"}, expect=200)
    assert (await reply(office, tid, 200))["status"] == "replied"
    events = (await office.call(office.supervisor, "GET", f"/tickets/{tid}/timeline",
                                expect=200))["events"]
    override = [e for e in events if e["action"] == "contact_override"]
    assert [e["reason"] for e in override] == ["市民电话停机，已上门核实"]
    replied = [e for e in events if e["action"] == "reply"][-1]
    assert replied["data"]["contact"] == {"rule": "override", "event_id": override[0]["id"]}


async def test_an_override_is_refused_when_the_order_is_not_at_a_unit(office: Office) -> None:
    ticket = await office.new_ticket()
    await office.call(office.supervisor, "POST", f"/tickets/{ticket['id']}/contact-override",
                      {"reason": "市民电话停机，已上门核实"}, expect=409)


async def test_anonymous_orders_and_no_contact_callers_are_exempt_and_marked(
        office: Office) -> None:
    anonymous = (await in_progress(office, anonymous=True))["id"]
    await reply(office, anonymous, 200)
    quiet = (await in_progress(office, no_contact=True))["id"]
    assert (await office.call(office.supervisor, "GET", f"/tickets/{quiet}",
                              expect=200))["no_contact"] is True
    await reply(office, quiet, 200)
    for tid, why in ((anonymous, "anonymous"), (quiet, "caller_asked_not_to_be_contacted")):
        events = (await office.call(office.supervisor, "GET", f"/tickets/{tid}/timeline",
                                    expect=200))["events"]
        replied = [e for e in events if e["action"] == "reply"][-1]
        assert replied["data"]["contact"] == {"rule": "exempt", "why": why}


async def test_types_outside_the_rule_reply_without_a_record(office: Office) -> None:
    tid = (await in_progress(office, ticket_type="consultation"))["id"]
    await reply(office, tid, 200)
