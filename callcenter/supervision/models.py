"""Supervision's tables (migration 0004): the notifications outbox, hotspot flags and the
daily runs."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.auth.models import UtcDateTime
from callcenter.store.base import Base


class NotificationKind(StrEnum):
    DUE_SOON = "due_soon"  # 临期提醒: reply due within N working days
    OVERDUE = "overdue"  # 超期: to the unit, every working day until it replies
    OVERDUE_ESCALATION = "overdue_escalation"  # 超期督办: to supervisors
    ACCEPTANCE_MISSED = "acceptance_missed"  # 未及时接收
    FIRST_CONTACT_MISSED = "first_contact_missed"  # 未在时限内联系市民
    HOTSPOT = "hotspot"  # 10+ callers / complaints: platform-level supervision
    RECORDING_LOST = "recording_lost"  # an order's call recording could not be kept


class FlagKind(StrEnum):
    MATTER = "matter"  # many distinct callers about the same matter
    UNIT = "unit"  # many complaints against the same unit


class FlagStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    CLOSED = "closed"


class Notification(Base):
    """One reminder in the outbox: stored before it is pushed, pushed at most once live.

    Addressed to a unit (its handlers) or to a role (e.g. all supervisors). ``dedupe_key``
    (kind, ticket, recipient, day) makes a second scan on the same day insert nothing.
    """

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_unit_read", "recipient_unit_id", "read_at", "id"),
        Index("ix_notifications_role_read", "recipient_role", "read_at", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(120), unique=True)
    recipient_unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    recipient_role: Mapped[str | None] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(32))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    flag_id: Mapped[int | None] = mapped_column(ForeignKey("supervision_flags.id"))
    day: Mapped[date] = mapped_column(Date)
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), index=True)
    read_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    read_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class SupervisionFlag(Base):
    """A hotspot raised for platform-level supervision; updated, never duplicated."""

    __tablename__ = "supervision_flags"
    __table_args__ = (Index("ix_supervision_flags_kind_status", "kind", "status", "unit_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=FlagStatus.OPEN)
    summary: Mapped[str] = mapped_column(String(300))
    terms: Mapped[Any] = mapped_column(JSON, default=dict)  # the matter's term vector
    places: Mapped[Any] = mapped_column(JSON, default=list)  # estates/roads it names
    ticket_ids: Mapped[Any] = mapped_column(JSON, default=list)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    count: Mapped[int] = mapped_column(Integer)
    window_days: Mapped[int] = mapped_column(Integer)
    raised_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    status_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class SupervisionRun(Base):
    """One daily scan: claimed by the first process to insert the day, finished once."""

    __tablename__ = "supervision_runs"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    counts: Mapped[Any] = mapped_column(JSON, default=dict)
