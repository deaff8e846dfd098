"""The revisit feature's background loops: the dialer, where the telephony door is, and the
postman that sends the text-message surveys (any process with workers; senders claim each
message, so several processes never send one twice).

A workers-only process (no Asterisk connection) schedules revisits but does not dial: the
dialer needs the command port and hears hang-ups from the telephony listener."""

from __future__ import annotations

import asyncio
import logging

from callcenter.feature import Runtime, Worker
from callcenter.revisit.config import MessageConfig
from callcenter.revisit.dialer import Dialer
from callcenter.revisit.messages import OutboxSender, Postman, Sender
from callcenter.revisit.service import RevisitService
from callcenter.tickets.service import TicketService

log = logging.getLogger(__name__)


def build_service(runtime: Runtime) -> RevisitService:
    tickets = TicketService.from_config(runtime.sessionmaker, runtime.clock,
                                        runtime.settings.tickets)
    return RevisitService(runtime.sessionmaker, runtime.clock, runtime.settings.revisit,
                          tickets)


def workers(runtime: Runtime) -> list[Worker]:
    config = runtime.settings.revisit
    service = build_service(runtime)
    texts = [Worker("revisit-messages", Postman(service, build_sender(config.messages),
                                                 config.messages).run)
             ] if config.messages.enabled else []
    if runtime.telephony is None or not config.enabled:
        return [Worker("revisit-scheduler", _scheduler(service, config.poll_seconds)), *texts]
    dialer = Dialer(service, runtime.telephony.commands, config)
    runtime.telephony.add_listener(dialer.on_event)
    return [Worker("revisit-dialer", dialer.run), *texts]


def build_sender(config: MessageConfig) -> Sender:
    if config.sender == "webhook":
        from callcenter.revisit.http import WebhookSender  # the feature's HTTP module

        return WebhookSender(config)
    return OutboxSender(config.outbox_dir)


def _scheduler(service: RevisitService, poll: float):  # type: ignore[no-untyped-def]
    async def run(stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await service.schedule_replied()
            except Exception:  # noqa: BLE001 - the next round tries again
                log.exception("revisit.schedule_failed")
            try:
                await asyncio.wait_for(stop.wait(), poll)
            except TimeoutError:
                pass
    return run
