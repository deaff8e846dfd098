"""Click-to-call with number privacy: the contact record of a unit's call to the citizen.

The service Originates the handler's phone into the ``[callback]`` context with the
citizen's number as the extension and the hotline's number as caller ID; Asterisk dials the
citizen once the handler answers and bridges the two. The handler only ever sees the
attempt's id and outcome: the number stays between the database and Asterisk.

``OriginateResponse`` reports only the handler's leg; the citizen's outcome is the second
``DialEnd`` (the one dialled from the handler's channel), its talk time runs from that
``DialEnd: ANSWER`` to the hang-up (``RecordingListener`` in ``listeners.py``).
"""

from __future__ import annotations

import logging
import re
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.auth.principal import Principal
from callcenter.clock import Clock
from callcenter.recordings.config import ClickToCallConfig
from callcenter.recordings.errors import NoOneToCall
from callcenter.recordings.models import ContactAttempt
from callcenter.tickets.models import Ticket, TicketAssignment, TicketCall, TicketEvent

log = logging.getLogger(__name__)

LINKEDID_PREFIX = "c2c-"
ENDED_TOPIC = "contact_call.ended"
DIAL_OUTCOMES = {"ANSWER": "answered", "BUSY": "busy", "NOANSWER": "no_answer",
                 "CONGESTION": "congestion", "CANCEL": "canceled", "CHANUNAVAIL": "failed"}


def dialable(phone: str | None) -> str | None:
    """The citizen's number as digits for the dialplan's ``_X.`` pattern, or None."""
    digits = re.sub(r"\D", "", phone or "")
    return digits if len(digits) >= 3 else None


class ContactCalls:
    """Contact attempts in the database: started by a click, finished by the listener."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], clock: Clock,
                 config: ClickToCallConfig, pbx: str, bus: Any = None) -> None:
        self.sessionmaker = sessionmaker
        self.clock = clock
        self.config = config
        self.pbx = pbx
        self.bus = bus

    async def open(self, session: AsyncSession, principal: Principal, ticket: Ticket,
                   assignment: TicketAssignment | None) -> tuple[ContactAttempt, str]:
        """A new attempt and the citizen's number to dial (never returned to a client)."""
        if ticket.anonymous:
            raise NoOneToCall("an anonymous order has nobody to call back")
        if getattr(ticket, "no_contact", False):
            raise NoOneToCall("the caller asked not to be contacted")
        number = dialable(ticket.caller_phone)
        if number is None:
            raise NoOneToCall("the order has no number to call")
        now = self.clock.now()
        attempt = ContactAttempt(
            ticket_id=ticket.id, unit_id=assignment.unit_id if assignment else None,
            user_id=principal.user_id, pbx=self.pbx,
            linkedid=LINKEDID_PREFIX + uuid.uuid4().hex, outcome="dialling",
            talk_seconds=0.0, requested_at=now)
        session.add(attempt)
        session.add(TicketCall(ticket_id=ticket.id, linkedid=attempt.linkedid,
                               purpose="contact", linked_at=now))
        await session.flush()
        log.info("recordings.click_to_call attempt=%s ticket=%s user=%s", attempt.id,
                 ticket.id, principal.user_id)
        return attempt, number

    def originate_args(self, extension: str, number: str, linkedid: str) -> dict[str, Any]:
        return dict(channel=self.config.handler_channel.format(extension=extension),
                    context=self.config.context, exten=number, priority=1,
                    caller_id=self.config.caller_id, channel_id=linkedid,
                    timeout_ms=self.config.ring_timeout_ms)

    async def handler_leg(self, linkedid: str, outcome: str, error: str | None = None) -> None:
        """The Originate's own result: only the handler's phone. If it was not answered the
        citizen was never dialled, and the attempt ends here (whichever of this result and
        the hang-up arrives first)."""
        async with self.sessionmaker() as session, session.begin():
            attempt = await self._get(session, linkedid)
            if attempt is None:
                return
            attempt.handler_outcome = outcome
            if attempt.outcome != "dialling":
                return
            if outcome != "answered":
                attempt.error = error
                self._end(session, attempt, "handler_unreached",
                          attempt.ended_at or self.clock.now())
            elif attempt.ended_at is not None:  # hung up before the citizen was dialled
                self._end(session, attempt, "canceled", attempt.ended_at)
            else:
                return
        await self._announce(attempt)

    async def finished(self, linkedid: str, *, dial_status: str | None,
                       answered_at: datetime | None, ended_at: datetime) -> None:
        """The handler's channel hung up: the citizen's outcome (the second ``DialEnd``) and
        talk time are known; without a dial, the Originate's result decides."""
        async with self.sessionmaker() as session, session.begin():
            attempt = await self._get(session, linkedid)
            if attempt is None or attempt.outcome != "dialling":
                return
            attempt.ended_at = ended_at
            if dial_status is None:
                if attempt.handler_outcome is None:
                    return  # the Originate's result ends it (handler_leg)
                outcome = "canceled" if attempt.handler_outcome == "answered" \
                    else "handler_unreached"
            else:
                outcome = DIAL_OUTCOMES.get(dial_status, "failed")
            if outcome == "answered" and answered_at is not None:
                attempt.answered_at = answered_at
                attempt.talk_seconds = round(max(0.0, (ended_at - answered_at)
                                                 .total_seconds()), 3)
                await self._first_contact(session, attempt)
            self._end(session, attempt, outcome, ended_at)
        await self._announce(attempt)

    def _end(self, session: AsyncSession, attempt: ContactAttempt, outcome: str,
             ended_at: datetime) -> None:
        attempt.outcome, attempt.ended_at = outcome, ended_at
        self._timeline(session, attempt)
        log.info("recordings.contact_call_ended attempt=%s outcome=%s talk=%.1f",
                 attempt.id, outcome, attempt.talk_seconds)

    async def _announce(self, attempt: ContactAttempt) -> None:
        """After commit: the contact record is durable before anyone hears of it."""
        if self.bus is None:
            return
        try:
            await self.bus.publish(ENDED_TOPIC, {
                "attempt_id": attempt.id, "ticket_id": attempt.ticket_id,
                "outcome": attempt.outcome, "talk_seconds": attempt.talk_seconds})
        except Exception as exc:  # noqa: BLE001 - the row is durable; the event is live only
            log.warning("recordings.announce_failed topic=%s error=%r", ENDED_TOPIC, exc)

    async def _first_contact(self, session: AsyncSession, attempt: ContactAttempt) -> None:
        """An answered contact call is the unit's first contact, if none was recorded."""
        ticket = await session.get(Ticket, attempt.ticket_id)
        if ticket is not None and ticket.first_contact_at is None:
            ticket.first_contact_at = attempt.answered_at
        if attempt.unit_id is None:
            return
        assignment = await session.scalar(select(TicketAssignment).where(
            TicketAssignment.ticket_id == attempt.ticket_id,
            TicketAssignment.unit_id == attempt.unit_id, TicketAssignment.active.is_(True)))
        if assignment is not None and assignment.first_contact_at is None:
            assignment.first_contact_at = attempt.answered_at
            due = assignment.first_contact_due_at
            assignment.first_contact_on_time = due is None or attempt.answered_at <= due

    @staticmethod
    def _timeline(session: AsyncSession, attempt: ContactAttempt) -> None:
        session.add(TicketEvent(
            ticket_id=attempt.ticket_id, at=attempt.ended_at, actor_id=attempt.user_id,
            actor_role="unit_handler" if attempt.unit_id else None, action="contact_call",
            unit_id=attempt.unit_id, attachments=[],
            data={"attempt_id": attempt.id, "outcome": attempt.outcome,
                  "talk_seconds": attempt.talk_seconds,
                  "answered_at": attempt.answered_at.isoformat() if attempt.answered_at
                  else None}))

    async def _get(self, session: AsyncSession, linkedid: str) -> ContactAttempt | None:
        return await session.scalar(select(ContactAttempt).where(
            ContactAttempt.pbx == self.pbx, ContactAttempt.linkedid == linkedid)
            .with_for_update())
