"""Revisit tables: campaigns, one revisit per ticket and round, every dial attempt, and the
do-not-call list.

A revisit moves ``pending`` → ``claimed`` (a dialer holds it, fenced by ``lease_token``) →
``dialing`` (the attempt row with its ``ChannelId`` is stored *before* the Originate) →
``answered`` (the survey runs; each key is stored when pressed) → ``done``; an unanswered
attempt goes back to ``pending`` with a later ``due_at`` until ``max_attempts``.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.auth.models import UtcDateTime
from callcenter.store.base import Base


class RevisitState(StrEnum):
    PENDING = "pending"
    CLAIMED = "claimed"
    DIALING = "dialing"
    ANSWERED = "answered"
    FINISHING = "finishing"  # the result is being written on the ticket
    DONE = "done"
    CANCELED = "canceled"


LIVE_STATES = (RevisitState.CLAIMED, RevisitState.DIALING, RevisitState.ANSWERED)
"""A revisit in one of these holds a line of its campaign."""


class RevisitCampaign(Base):
    __tablename__ = "revisit_campaigns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    settings: Mapped[Any] = mapped_column(JSON, default=dict)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    claim_seq: Mapped[int] = mapped_column(Integer, default=0)
    """Bumped by every claim: it serialises claimers on the row and is the fencing token."""
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class Revisit(Base):
    __tablename__ = "revisits"
    __table_args__ = (Index("ix_revisits_campaign_state_due", "campaign_id", "state", "due_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("revisit_campaigns.id"))
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    source: Mapped[str] = mapped_column(String(16))  # reply | on_demand
    state: Mapped[str] = mapped_column(String(16))
    due_at: Mapped[datetime] = mapped_column(UtcDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_outcome: Mapped[str | None] = mapped_column(String(16))
    lease_token: Mapped[int | None] = mapped_column(Integer)
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    score: Mapped[str | None] = mapped_column(String(4))
    solved: Mapped[bool | None] = mapped_column(Boolean)
    comment_file: Mapped[str | None] = mapped_column(String(300))
    result: Mapped[str | None] = mapped_column(String(32))
    stars: Mapped[int | None] = mapped_column(Integer)
    """1-5 on a ``stars`` campaign (``score`` then holds the result's 1/2/3 code)."""
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class RevisitAttempt(Base):
    __tablename__ = "revisit_attempts"
    # the calls holding a line: every claim counts them, and attempts pile up for ever
    __table_args__ = (Index("ix_revisit_attempts_live", "revisit_id",
                            postgresql_where=text("ended_at IS NULL"),
                            sqlite_where=text("ended_at IS NULL")),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    revisit_id: Mapped[int] = mapped_column(ForeignKey("revisits.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    channel_id: Mapped[str] = mapped_column(String(64), unique=True)
    outcome: Mapped[str] = mapped_column(String(16))  # dialing | answered | busy | ...
    reason: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class DoNotCall(Base):
    __tablename__ = "revisit_do_not_call"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    phone: Mapped[str] = mapped_column(String(32), unique=True)
    note: Mapped[str | None] = mapped_column(Text)
    added_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(UtcDateTime())


class RevisitOptOut(Base):
    """A citizen asked not to be surveyed about this order (or pressed 0 in the survey)."""

    __tablename__ = "revisit_opt_outs"

    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), primary_key=True)
    by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(UtcDateTime())


class MessageState(StrEnum):
    QUEUED = "queued"  # waiting for a sender (again after a failed try, from ``next_at``)
    SENDING = "sending"  # a sender holds it until ``lease_until``
    SENT = "sent"
    FAILED = "failed"  # every try failed: kept, with ``last_error``, for the office


class RevisitMessage(Base):
    """The text-message survey queued when every call of a revisit went unanswered.

    Queued in the transaction that makes the revisit unreachable; sent once by a sender that
    claims it (fenced by ``lease_token``); the citizen's reply becomes a new revisit result
    (``recorded_at`` once it is on the ticket)."""

    __tablename__ = "revisit_messages"
    __table_args__ = (Index("ix_revisit_messages_state_next", "state", "next_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    revisit_id: Mapped[int] = mapped_column(ForeignKey("revisits.id"), unique=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    phone: Mapped[str] = mapped_column(String(32))
    scale: Mapped[str] = mapped_column(String(8))  # three | stars: what the text asked
    body: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16))
    tries: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[datetime] = mapped_column(UtcDateTime())
    lease_token: Mapped[int | None] = mapped_column(Integer)
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    reply: Mapped[str | None] = mapped_column(String(16))
    replied_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    recorded_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
