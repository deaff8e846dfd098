"""The call log: exactly one row per call (an Asterisk ``Linkedid``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.store.base import Base

DIRECTIONS = ("inbound", "outbound", "internal")
DISPOSITIONS = ("answered", "abandoned", "no_answer", "busy", "failed")


class CallLog(Base):
    """One finished (or, while it lasts, ongoing) call, keyed by its Linkedid.

    ``end_estimated`` is true when the call's end was not seen (AMI connection down, service
    stopped, ``Hangup`` lost): its end time is the time of the resync that noticed it, and
    its durations count only what was observed.

    ``pbx`` names the Asterisk server the call went through (``ami.pbx``): each telephony
    process reconciles only its own server's open rows; the index serves that query.
    """

    __tablename__ = "call_log"
    __table_args__ = (Index("ix_call_log_pbx_ended_at", "pbx", "ended_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    linkedid: Mapped[str] = mapped_column(String(64), unique=True)
    pbx: Mapped[str] = mapped_column(String(64), default="default")
    direction: Mapped[str] = mapped_column(String(16))
    caller_number: Mapped[str | None] = mapped_column(String(64))
    called_number: Mapped[str | None] = mapped_column(String(64))
    queue: Mapped[str | None] = mapped_column(String(64), index=True)
    agent_name: Mapped[str | None] = mapped_column(String(128))
    agent_interface: Mapped[str | None] = mapped_column(String(128))
    ivr_path: Mapped[str | None] = mapped_column(String(255))
    recording_file: Mapped[str | None] = mapped_column(String(255))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    wait_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    talk_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    disposition: Mapped[str | None] = mapped_column(String(16))
    hangup_cause: Mapped[int | None] = mapped_column(Integer)
    end_estimated: Mapped[bool] = mapped_column(Boolean, default=False)
