"""The text-message survey (短信回访) for a citizen no revisit call reached.

A message is queued with the revisit's "unreachable" result, in the same transaction
(``RevisitService._queue_text``), and sent once by the ``Postman``: it claims due messages
(a compare-and-set on the row with a new token, so two service instances never both hold
one), hands each to the configured sender and marks it sent, or queued again after a
doubling wait, or failed after ``max_tries`` (kept with its error for the office to see).
No real SMS gateway is spoken to: the outbox sender writes one JSON file per message for a
gateway to pick up, the webhook sender (``http.WebhookSender``) POSTs the same JSON.

The text names the hotline, the order's topic and how to reply; never a name, an address
or a number. The reply comes back through the API (``RevisitService.record_text_reply``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from callcenter.revisit.config import CampaignSettings, MessageConfig

if TYPE_CHECKING:
    from callcenter.revisit.service import RevisitService

log = logging.getLogger(__name__)

TEXTS = {
    "zh": {
        "lead": "【{hotline}】您好，我们就您反映的{subject}进行回访，多次致电未能接通。",
        "three": "请回复数字评价办理结果：1满意，2基本满意，3不满意；回复0不参加回访。",
        "stars": "请回复1至5的数字为办理结果打分（5分最满意，1分最不满意）；回复0不参加回访。",
        "topic": "{topic}方面的问题", "no_topic": "问题",
    },
    "en": {
        "lead": "[{hotline}] We called several times about {subject} but could not reach "
                "you. ",
        "three": "Please reply 1 satisfied, 2 basically satisfied, 3 unsatisfied; reply 0 to "
                 "decline.",
        "stars": "Please rate how it was handled from 1 to 5 (5 best, 1 worst); reply 0 to "
                 "decline.",
        "topic": "the {topic} matter you reported", "no_topic": "the matter you reported",
    },
}
REPLIES = {"three": "0123", "stars": "012345"}
"""The replies each scale's text asks for (0 declines, as on the keypad)."""


def compose(hotline: str, topic: str, settings: CampaignSettings) -> str:
    """The survey text in the campaign's language: hotline, topic, how to reply."""
    texts = TEXTS.get(settings.language, TEXTS["zh"])
    subject = texts["topic"].format(topic=topic) if topic else texts["no_topic"]
    return texts["lead"].format(hotline=hotline, subject=subject) + texts[settings.scale]


class SendFailed(Exception):
    """The sender could not hand the message over; it is tried again later."""


@dataclass(frozen=True)
class OutboundText:
    message_id: int
    phone: str
    text: str

    def payload(self) -> dict[str, Any]:
        """What a gateway gets; it sends the reply back with ``message_id``."""
        return {"message_id": self.message_id, "to": self.phone, "text": self.text}


class Sender(Protocol):
    async def send(self, message: OutboundText) -> None:
        """Hand the message over, or raise ``SendFailed``."""

    async def close(self) -> None: ...


class OutboxSender:
    """One JSON file per message in ``folder``, written whole (temporary file, then
    rename): a gateway reading ``*.json`` never sees half a message, and a message sent
    again after a crash replaces its own file."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def send(self, message: OutboundText) -> None:
        try:
            await asyncio.to_thread(self._write, message)
        except OSError as exc:
            raise SendFailed(f"outbox {self.folder}: {exc}") from exc

    def _write(self, message: OutboundText) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        final = self.folder / f"revisit-message-{message.message_id}.json"
        temporary = self.folder / f".{final.name}.{uuid.uuid4().hex}.tmp"
        try:
            with temporary.open("w", encoding="utf-8") as out:
                json.dump(message.payload(), out, ensure_ascii=False)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, final)
        finally:
            temporary.unlink(missing_ok=True)

    async def close(self) -> None:
        return None


class Postman:
    """The sender loop: claims due messages, sends them, records how it went; and writes
    on the ticket any reply stored before a crash kept it off."""

    BATCH = 20

    def __init__(self, service: RevisitService, sender: Sender, config: MessageConfig
                 ) -> None:
        self.service = service
        self.sender = sender
        self.config = config

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                try:
                    await self.round()
                except Exception:  # noqa: BLE001 - the next round tries again
                    log.exception("revisit.messages_round_failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.config.poll_seconds)
        finally:
            await self.sender.close()

    async def round(self) -> int:
        """Send what is due now; returns how many were handed over."""
        await self.service.record_pending_replies()
        sent = 0
        for claim in await self.service.claim_messages(self.BATCH):
            try:
                await self.sender.send(OutboundText(claim.message_id, claim.phone, claim.text))
            except SendFailed as exc:
                await self.service.message_failed(claim, str(exc))
                continue
            await self.service.message_sent(claim)
            sent += 1
        return sent
