"""Tables of the reports feature.

``ReportSnapshot`` keeps a closed month's figures as they were frozen; a later correction is
a new version that names what changed, so a published figure never changes silently.
``RevisitAppeal`` is a unit's appeal of a low revisit rating (seed 000: unsatisfied or two
stars or fewer, with evidence, by month end); an upheld appeal takes the rating out of the
unit's satisfaction figures.
``TypicalCase`` is an order a supervisor picks for the monthly report's typical cases.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.auth.models import UtcDateTime
from callcenter.store.base import Base
from callcenter.tickets.models import Ticket, TicketAssignment, TicketRevisit


class ReportSnapshot(Base):
    """One frozen version of one month's figures (``month`` is ``YYYY-MM``)."""

    __tablename__ = "report_snapshots"
    __table_args__ = (UniqueConstraint("month", "version", name="uq_report_snapshots_month"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    month: Mapped[str] = mapped_column(String(7), index=True)
    version: Mapped[int] = mapped_column(Integer)
    frozen_at: Mapped[datetime] = mapped_column(UtcDateTime())
    frozen_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    figures: Mapped[Any] = mapped_column(JSON)
    # For a correction (version > 1): [{"path": ..., "was": ..., "now": ...}, ...].
    changes: Mapped[Any] = mapped_column(JSON, default=list)
    reason: Mapped[str | None] = mapped_column(Text)


class RevisitAppeal(Base):
    """申诉: a unit contests one revisit result; the office upholds or rejects it.

    ``upheld`` is None while pending. ``attachments`` are references to stored files, in the
    shape of the tickets feature's reply attachments.
    """

    __tablename__ = "revisit_appeals"
    __table_args__ = (Index("ix_revisit_appeals_unit_filed", "unit_id", "filed_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    revisit_id: Mapped[int] = mapped_column(ForeignKey("ticket_revisits.id"), unique=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    reason: Mapped[str] = mapped_column(Text)
    evidence: Mapped[str | None] = mapped_column(Text)
    attachments: Mapped[Any] = mapped_column(JSON, default=list)
    filed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    filed_at: Mapped[datetime] = mapped_column(UtcDateTime())
    upheld: Mapped[bool | None] = mapped_column(Boolean)
    decision_note: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    @property
    def status(self) -> str:
        return "pending" if self.upheld is None else "upheld" if self.upheld else "rejected"


class TypicalCase(Base):
    """典型案例: an order a supervisor picked for a month's report, with a short note."""

    __tablename__ = "report_typical_cases"
    __table_args__ = (UniqueConstraint("month", "ticket_id", name="uq_typical_cases_month"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    month: Mapped[str] = mapped_column(String(7), index=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    kind: Mapped[str] = mapped_column(String(16), default="good")  # good | problem
    note: Mapped[str] = mapped_column(Text)
    chosen_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    chosen_at: Mapped[datetime] = mapped_column(UtcDateTime())


# The monthly figures' access paths on the tickets feature's tables (created by migration
# 0009): a month's dispatched holds, registered orders and revisits are read by time range.
REPORT_INDEXES = (
    Index("ix_ticket_assignments_dispatched_at", TicketAssignment.dispatched_at),
    Index("ix_tickets_registered_at", Ticket.registered_at),
    Index("ix_ticket_revisits_at", TicketRevisit.at),
)
