"""The IVR's tables: the run-time announcement switches, ticket PINs, lookup attempts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.auth.models import UtcDateTime
from callcenter.store.base import Base

ANNOUNCEMENTS = ("holiday", "emergency")
"""Announcements a supervisor switches on and off while the service runs."""


class IvrAnnouncement(Base):
    """One switch (``holiday``, ``emergency``): on, it sends callers down its branch of the
    flow (the announcement's prompt) without a restart."""

    __tablename__ = "ivr_announcements"

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class IvrTicketPin(Base):
    """The PIN a caller gets when the ticket is opened: it proves who asks when the calling
    number is not the ticket's (a neighbour's phone, a withheld number). Stored hashed."""

    __tablename__ = "ivr_ticket_pins"

    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), primary_key=True)
    pin_hash: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class IvrVerification(Base):
    """One progress lookup by phone and its outcome: failed checks are counted per calling
    number and day (the limit), and kept for the office to review."""

    __tablename__ = "ivr_verifications"
    __table_args__ = (Index("ix_ivr_verifications_caller_at", "caller_number", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    caller_number: Mapped[str] = mapped_column(String(32))
    ticket_number: Mapped[str] = mapped_column(String(32))
    linkedid: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    """``caller`` (calling number matches), ``pin``, ``not_found``, ``mismatch``,
    ``bad_pin``, ``refused`` (over the day's limit)."""
