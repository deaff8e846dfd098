"""The text-message survey: queued with the last unanswered call (not before), written to
the outbox or POSTed to a real local webhook once, failures kept and retried, and the
citizen's reply recorded through the API as the order's new revisit result."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import select

from callcenter.recordings.contact import dialable
from callcenter.revisit.config import MessageConfig, RevisitConfig
from callcenter.revisit.http import WebhookSender
from callcenter.revisit.messages import OutboxSender, Postman
from callcenter.revisit.models import RevisitMessage
from callcenter.revisit.service import TEXT_QUEUED, TEXT_REPLY
from callcenter.simulator.actors import Destination
from callcenter.tickets.models import TicketEvent
from tests.revisit.conftest import CITIZEN, Rig
from tests.tickets.conftest import Hotline

BUSY = Destination(mode="busy", answer_after=1)
TEXT = ("【12345政务服务便民热线】您好，我们就您反映的城市管理方面的问题进行回访，多次致电未能"
        "接通。请回复数字评价办理结果：1满意，2基本满意，3不满意；回复0不参加回访。")


@pytest.fixture
def revisit_config(revisit_config: RevisitConfig, tmp_path: Path) -> RevisitConfig:
    messages = MessageConfig(outbox_dir=tmp_path / "outbox", retry_seconds=60,
                             retry_max_seconds=3600, max_tries=3, lease_seconds=30)
    return revisit_config.model_copy(update={"messages": messages})


async def unreachable(rig: Rig, phone: str = CITIZEN) -> int:
    """A replied order whose citizen is busy for every one of the three calls."""
    rig.sim.add_destination(dialable(phone), BUSY)
    tid = await rig.replied(phone=phone)
    await rig.service.schedule_replied()
    for _ in range(3):
        assert await rig.round() == 1
        rig.h.clock.advance(timedelta(seconds=600))
    assert (await rig.revisit_of(tid)).result == "unreachable"
    return tid


async def messages_of(rig: Rig, tid: int) -> list[RevisitMessage]:
    async with rig.h.sessionmaker() as session:
        return list((await session.scalars(select(RevisitMessage).where(
            RevisitMessage.ticket_id == tid).order_by(RevisitMessage.id))).all())


async def revisit_events(h: Hotline, tid: int) -> list[tuple[Any, str | None]]:
    async with h.sessionmaker() as session:
        rows = (await session.scalars(select(TicketEvent).where(
            TicketEvent.ticket_id == tid, TicketEvent.action == "revisit")
            .order_by(TicketEvent.id))).all()
    return [(e.data["result"], e.reason) for e in rows]


async def test_the_text_is_queued_with_the_last_unanswered_call_not_before(rig: Rig) -> None:
    rig.sim.add_destination(CITIZEN, BUSY)
    tid = await rig.replied()
    await rig.service.schedule_replied()
    for _ in range(2):
        assert await rig.round() == 1
        assert await messages_of(rig, tid) == []
        rig.h.clock.advance(timedelta(seconds=600))
    queued_at = rig.h.clock.now()
    assert await rig.round() == 1  # the third and last attempt
    revisit = await rig.revisit_of(tid)
    assert (revisit.state, revisit.result, revisit.attempts) == ("done", "unreachable", 3)
    [message] = await messages_of(rig, tid)
    assert (message.revisit_id, message.state, message.tries, message.phone, message.scale,
            message.next_at) == (revisit.id, "queued", 0, CITIZEN, "three", queued_at)
    assert message.body == TEXT  # hotline, topic, how to reply; no name, address or number
    # the order shows the unreachable result, and that a text survey is on its way
    ticket = await rig.h.call(rig.h.supervisor, "GET", f"/tickets/{tid}", expect=200)
    assert (ticket["status"], ticket["revisit_result"]) == ("revisited", "unreachable")
    assert await revisit_events(rig.h, tid) == [("unreachable", TEXT_QUEUED)]


async def test_a_number_that_takes_no_texts_gets_none(rig: Rig) -> None:
    landline = await unreachable(rig, phone="01062345678")
    mobile = await unreachable(rig, phone="+8613900000002")
    assert await messages_of(rig, landline) == []
    assert [m.phone for m in await messages_of(rig, mobile)] == ["8613900000002"]
    assert await revisit_events(rig.h, landline) == [("unreachable", None)]


async def test_the_outbox_file_is_written_once(rig: Rig) -> None:
    tid = await unreachable(rig)
    [message] = await messages_of(rig, tid)
    outbox = rig.config.messages.outbox_dir
    postman = Postman(rig.service, OutboxSender(outbox), rig.config.messages)
    assert await postman.round() == 1
    [file] = list(outbox.iterdir())
    assert file.name == f"revisit-message-{message.id}.json"
    assert json.loads(file.read_text(encoding="utf-8")) == {
        "message_id": message.id, "to": CITIZEN, "text": TEXT}
    written = file.stat().st_mtime_ns
    assert await postman.round() == 0
    rig.h.clock.advance(timedelta(days=1))
    assert await postman.round() == 0
    assert list(outbox.iterdir()) == [file] and file.stat().st_mtime_ns == written
    [message] = await messages_of(rig, tid)
    assert (message.state, message.tries, message.last_error) == ("sent", 1, None)


class Gateway:
    """A local HTTP endpoint standing in for an SMS gateway: it answers the statuses it is
    given (then 200), or never answers while ``hang`` is set."""

    def __init__(self) -> None:
        self.received: list[tuple[Any, str | None]] = []
        self.statuses: list[int] = []
        self.hang = False
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((await request.json(), request.headers.get("Idempotency-Key")))
        if self.hang:
            await asyncio.Event().wait()
        status = self.statuses.pop(0) if self.statuses else 200
        return web.json_response({"accepted": status == 200}, status=status)


@pytest.fixture
async def gateway() -> AsyncIterator[Gateway]:
    gateway = Gateway()
    app = web.Application()
    app.router.add_post("/sms", gateway.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    gateway.url = f"http://{host}:{port}/sms"
    try:
        yield gateway
    finally:
        await runner.cleanup()


def webhook_postman(rig: Rig, gateway: Gateway, timeout: float = 5) -> Postman:
    config = MessageConfig(sender="webhook", webhook_url=gateway.url,
                           webhook_timeout_seconds=timeout)
    return Postman(rig.service, WebhookSender(config), rig.config.messages)


async def test_the_webhook_gets_each_message_once_from_two_senders(rig: Rig,
                                                                   gateway: Gateway) -> None:
    tid = await unreachable(rig)
    [message] = await messages_of(rig, tid)
    first, second = webhook_postman(rig, gateway), webhook_postman(rig, gateway)
    try:
        assert sorted(await asyncio.gather(first.round(), second.round())) == [0, 1]
        assert await first.round() == 0 and await second.round() == 0
    finally:
        await first.sender.close()
        await second.sender.close()
    assert gateway.received == [({"message_id": message.id, "to": CITIZEN, "text": TEXT},
                                 f"revisit-message-{message.id}")]
    [message] = await messages_of(rig, tid)
    assert (message.state, message.tries, message.sent_at) == ("sent", 1, rig.h.clock.now())


async def test_concurrent_claims_take_each_message_once(rig: Rig) -> None:
    await unreachable(rig)
    claims = await asyncio.gather(*(rig.service.claim_messages(20) for _ in range(4)))
    assert sorted(len(c) for c in claims) == [0, 0, 0, 1]


async def test_a_stalled_sender_loses_its_message_to_the_next(rig: Rig) -> None:
    tid = await unreachable(rig)
    [stalled] = await rig.service.claim_messages(20)
    rig.h.clock.advance(timedelta(seconds=29))
    assert await rig.service.claim_messages(20) == []  # still held
    rig.h.clock.advance(timedelta(seconds=2))  # lease_seconds = 30 is over
    [taken] = await rig.service.claim_messages(20)
    assert (taken.message_id, taken.tries) == (stalled.message_id, 2)
    assert taken.token != stalled.token
    assert await rig.service.message_sent(stalled) is False  # its token is stale
    await rig.service.message_failed(stalled, "late failure")
    [message] = await messages_of(rig, tid)
    assert (message.state, message.last_error) == ("sending", None)
    assert await rig.service.message_sent(taken) is True
    [message] = await messages_of(rig, tid)
    assert message.state == "sent"


async def test_a_failed_send_is_kept_and_retried_after_a_doubling_wait(
        rig: Rig, gateway: Gateway) -> None:
    tid = await unreachable(rig)
    clock = rig.h.clock
    gateway.statuses = [503, 500]
    postman = webhook_postman(rig, gateway)
    try:
        assert await postman.round() == 0
        [message] = await messages_of(rig, tid)
        assert (message.state, message.tries, message.next_at) == \
            ("queued", 1, clock.now() + timedelta(seconds=60))
        assert message.last_error.startswith("webhook answered 503")
        clock.advance(timedelta(seconds=59))
        assert await postman.round() == 0 and len(gateway.received) == 1  # not yet
        clock.advance(timedelta(seconds=1))
        assert await postman.round() == 0 and len(gateway.received) == 2
        [message] = await messages_of(rig, tid)
        assert (message.tries, message.next_at) == (2, clock.now() + timedelta(seconds=120))
        assert message.last_error.startswith("webhook answered 500")
        clock.advance(timedelta(seconds=119))
        assert await postman.round() == 0 and len(gateway.received) == 2
        clock.advance(timedelta(seconds=1))
        assert await postman.round() == 1
    finally:
        await postman.sender.close()
    [message] = await messages_of(rig, tid)
    assert (message.state, message.tries, message.last_error) == ("sent", 3, None)
    assert len(gateway.received) == 3


async def test_after_the_last_try_the_failure_stays_visible(
        rig: Rig, gateway: Gateway, revisit_api: Hotline) -> None:
    tid = await unreachable(rig)
    gateway.hang = True  # never answers: each try ends at the timeout
    postman = webhook_postman(rig, gateway, timeout=0.2)
    try:
        for _ in range(3):
            assert await postman.round() == 0
            rig.h.clock.advance(timedelta(hours=1))
        assert await postman.round() == 0
    finally:
        await postman.sender.close()
    assert len(gateway.received) == 3  # max_tries, then no more
    api = revisit_api
    failed = await api.call(api.supervisor, "GET", "/revisit/messages", expect=200,
                            state="failed")
    [shown] = failed["messages"]
    assert (shown["ticket_id"], shown["state"], shown["tries"], shown["reply"]) == \
        (tid, "failed", 3, None)
    assert shown["last_error"].startswith("webhook: TimeoutError")
    assert "phone" not in shown and CITIZEN not in json.dumps(shown)
    assert (await api.call(api.supervisor, "GET", "/revisit/messages", expect=200,
                           state="queued"))["messages"] == []


async def test_a_reply_becomes_the_orders_new_revisit_result(rig: Rig,
                                                            revisit_api: Hotline) -> None:
    api = revisit_api
    happy = await unreachable(rig)
    unhappy = await unreachable(rig, phone="13900000003")
    [to_happy], [to_unhappy] = await messages_of(rig, happy), await messages_of(rig, unhappy)

    answer = await api.call(api.agent, "POST", f"/revisit/messages/{to_happy.id}/reply",
                            {"reply": "1"}, expect=200)
    assert (answer["reply"], answer["replied_at"] is not None,
            answer["recorded_at"] is not None) == ("1", True, True)
    ticket = await api.call(api.supervisor, "GET", f"/tickets/{happy}", expect=200)
    assert (ticket["status"], ticket["revisit_result"]) == ("archived", "satisfied")
    assert await revisit_events(api, happy) == [("unreachable", TEXT_QUEUED),
                                                ("satisfied", TEXT_REPLY)]
    revisit = await rig.revisit_of(happy)
    assert (revisit.state, revisit.score, revisit.result) == ("done", "1", "satisfied")

    # a gateway repeating the same reply changes nothing; another reply is refused
    again = await api.call(api.agent, "POST", f"/revisit/messages/{to_happy.id}/reply",
                           {"reply": "1"}, expect=200)
    assert again["recorded_at"] == answer["recorded_at"]
    refused = await api.call(api.agent, "POST", f"/revisit/messages/{to_happy.id}/reply",
                             {"reply": "3"}, expect=409)
    assert refused["error"]["code"] == "message_already_replied"
    assert len(await revisit_events(api, happy)) == 2

    await api.call(api.agent, "POST", f"/revisit/messages/{to_unhappy.id}/reply",
                   {"reply": " ３ "}, expect=200)  # full-width, with spaces
    ticket = await api.call(api.supervisor, "GET", f"/tickets/{unhappy}", expect=200)
    assert (ticket["status"], ticket["revisit_result"], ticket["review_conclusion"]) == \
        ("revisited", "unsatisfied", None)  # the office's review queue
    reworked = await api.call(api.supervisor, "POST", f"/tickets/{unhappy}/rework",
                              {"reason": "市民短信回复不满意"}, expect=200)
    assert reworked["status"] == "in_progress"


BAD_REPLIES = [({"reply": "4"}, "reply"), ({"reply": "12"}, "reply"), ({"reply": "好"}, "reply"),
               ({"reply": ""}, "reply"), ({"reply": "   "}, "reply"), ({"reply": 1}, "reply"),
               ({"reply": None}, "reply"), ({}, "reply"), ({"reply": "1" * 17}, "reply"),
               ({"reply": "1", "phone": "1"}, "phone"), (["1"], None), ("1", None)]


async def test_a_bad_reply_is_refused_naming_the_field(rig: Rig, revisit_api: Hotline) -> None:
    api = revisit_api
    tid = await unreachable(rig)
    [message] = await messages_of(rig, tid)
    for body, field in BAD_REPLIES:
        answer = await api.call(api.agent, "POST", f"/revisit/messages/{message.id}/reply",
                                body, expect=422)
        assert answer["error"].get("field") == field, (body, answer)
    [message] = await messages_of(rig, tid)
    assert (message.reply, message.replied_at) == (None, None)
    ticket = await api.call(api.supervisor, "GET", f"/tickets/{tid}", expect=200)
    assert ticket["revisit_result"] == "unreachable"


async def test_replies_need_staff_and_a_known_message(rig: Rig, revisit_api: Hotline) -> None:
    api = revisit_api
    tid = await unreachable(rig)
    [message] = await messages_of(rig, tid)
    path = f"/revisit/messages/{message.id}/reply"
    await api.call(api.handler_a, "POST", path, {"reply": "1"}, expect=403)
    await api.call(api.handler_a, "GET", "/revisit/messages", expect=403)
    response = await api.client.post(f"/api/v1{path}", json={"reply": "1"})
    assert response.status == 401
    missing = await api.call(api.agent, "POST", f"/revisit/messages/{message.id + 1000}/reply",
                             {"reply": "1"}, expect=404)
    assert missing["error"]["code"] == "message_not_found"
    assert (await messages_of(rig, tid))[0].reply is None
