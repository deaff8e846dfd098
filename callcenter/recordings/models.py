"""Recordings (one row per MixMonitor file) and contact attempts (one row per click-to-call)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.auth.models import UtcDateTime
from callcenter.store.base import Base

STATUSES = ("pending", "stored", "missing", "failed", "lost", "changed", "gone", "deleted")
"""``pending``: the call ended, the file is being taken over. ``stored``: hashed and filed.
``missing``: the file is missing or empty (retried). ``failed``: the store refused it
(retried). ``lost``: still missing or unstorable after every retry (flagged, alerted).
``changed`` / ``gone``: the integrity sweep found the stored file altered or deleted.
``deleted``: removed by retention (the row stays, with when)."""
RETRYING = ("pending", "missing", "failed")
OUTCOMES = ("dialling", "answered", "busy", "no_answer", "congestion", "canceled", "failed",
            "handler_unreached")
"""A contact attempt's outcome for the citizen's leg (the second ``DialEnd``);
``handler_unreached``: the handler's own phone did not answer, the citizen was not dialled."""


class Recording(Base):
    """One recorded channel of one call: Asterisk's file, and what the service filed."""

    __tablename__ = "recordings"
    __table_args__ = (
        UniqueConstraint("pbx", "uniqueid", name="uq_recordings_pbx_uniqueid"),
        Index("ix_recordings_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pbx: Mapped[str] = mapped_column(String(64))
    linkedid: Mapped[str] = mapped_column(String(150), index=True)
    uniqueid: Mapped[str] = mapped_column(String(150))
    source: Mapped[str] = mapped_column(String(255))
    store_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    status: Mapped[str] = mapped_column(String(16))
    sha256: Mapped[str | None] = mapped_column(String(64))
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    channels: Mapped[int | None] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    ended_at: Mapped[datetime] = mapped_column(UtcDateTime())
    stored_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    checked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class ContactAttempt(Base):
    """A unit's click-to-call to the citizen of an order: the contact record.

    ``linkedid`` is the ``ChannelId`` given to the Originate, so the call, its recording and
    this attempt share one key. Unanswered attempts are kept: they show the unit tried.
    """

    __tablename__ = "contact_attempts"
    __table_args__ = (UniqueConstraint("pbx", "linkedid", name="uq_contact_attempts_call"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    pbx: Mapped[str] = mapped_column(String(64))
    linkedid: Mapped[str] = mapped_column(String(150))
    outcome: Mapped[str] = mapped_column(String(20))
    handler_outcome: Mapped[str | None] = mapped_column(String(20))
    talk_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime())
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    error: Mapped[str | None] = mapped_column(Text)


class RecordingAttachment(Base):
    """A recording attached to an order (through its call): written once per pair, with the
    timeline entry, so attaching again (a sweep, a retry) adds nothing."""

    __tablename__ = "recording_attachments"
    __table_args__ = (
        UniqueConstraint("recording_id", "ticket_id", name="uq_recording_attachments_pair"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recording_id: Mapped[int] = mapped_column(ForeignKey("recordings.id"), index=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(16))
    attached_at: Mapped[datetime] = mapped_column(UtcDateTime())
