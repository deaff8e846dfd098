"""The call log: exactly one row per call (an Asterisk ``Linkedid`` on one server), and one
row per queue attempt to ring an agent."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Float, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.store.base import Base

DIRECTIONS = ("inbound", "outbound", "internal")
DISPOSITIONS = ("answered", "abandoned", "no_answer", "busy", "failed", "ivr_hangup")
"""``answered``: a person answered (an agent, a dialled party, a citizen reached by an
Originate). ``abandoned``: the caller hung up while waiting in a queue. ``no_answer``: nobody
answered (a queue timeout or other queue exit without an agent is one: see ``queue_outcome``).
``ivr_hangup``: the call ended in the IVR (self-service or the caller gave up there; the node is
``ivr_node``), whatever answered the channel in the dialplan."""
QUEUE_OUTCOMES = ("answered", "abandoned", "timeout", "joinempty", "leaveempty", "joinunavail",
                  "leaveunavail", "full", "continue", "unknown")
"""How the call left its (last) queue: Asterisk's ``QUEUESTATUS`` lower-cased, else
``answered`` (an agent connected) or ``abandoned`` (the caller hung up while waiting)."""
ATTEMPT_OUTCOMES = ("ringing", "answered", "missed", "canceled")
"""``missed``: the agent let it ring until the member timeout (``AgentRingNoAnswer``);
``canceled``: the ringing stopped because someone else answered or the caller left."""


class CallLog(Base):
    """One finished (or, while it lasts, ongoing) call, keyed by server and Linkedid.

    ``end_estimated`` is true when the call's end was not seen (AMI connection down, service
    stopped, ``Hangup`` lost): its end time is the time of the resync that noticed it, and
    its durations count only what was observed. ``start_estimated`` / ``answer_estimated``
    mark a start or answer time derived from a channel's age in a resync snapshot rather than
    seen as an event. ``backfilled`` rows were written after an outage from Asterisk's CDR
    file (``calls.backfill``): only what a CDR holds is known.

    ``talk_seconds`` excludes ``hold_seconds``. ``transferred_to`` names the party a
    transfer handed the call to (``agent_name`` is the agent who answered first).

    ``pbx`` names the Asterisk server the call went through (``ami.pbx``): each telephony
    process reconciles only its own server's open rows; the index serves that query.
    """

    __tablename__ = "call_log"
    __table_args__ = (
        UniqueConstraint("pbx", "linkedid", name="uq_call_log_pbx_linkedid"),
        Index("ix_call_log_pbx_ended_at", "pbx", "ended_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    linkedid: Mapped[str] = mapped_column(String(64))
    pbx: Mapped[str] = mapped_column(String(64), default="default")
    direction: Mapped[str] = mapped_column(String(16))
    caller_number: Mapped[str | None] = mapped_column(String(64))
    called_number: Mapped[str | None] = mapped_column(String(64))
    queue: Mapped[str | None] = mapped_column(String(64), index=True)
    queue_outcome: Mapped[str | None] = mapped_column(String(16))
    agent_name: Mapped[str | None] = mapped_column(String(128))
    agent_interface: Mapped[str | None] = mapped_column(String(128))
    transfer_type: Mapped[str | None] = mapped_column(String(16))
    transferred_to: Mapped[str | None] = mapped_column(String(128))
    ivr_path: Mapped[str | None] = mapped_column(String(255))
    ivr_node: Mapped[str | None] = mapped_column(String(64))
    recording_file: Mapped[str | None] = mapped_column(String(255))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    wait_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    talk_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    hold_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    disposition: Mapped[str | None] = mapped_column(String(16))
    hangup_cause: Mapped[int | None] = mapped_column(Integer)
    end_estimated: Mapped[bool] = mapped_column(Boolean, default=False)
    start_estimated: Mapped[bool] = mapped_column(Boolean, default=False)
    answer_estimated: Mapped[bool] = mapped_column(Boolean, default=False)
    backfilled: Mapped[bool] = mapped_column(Boolean, default=False)


class CallAgentAttempt(Base):
    """One time a queue rang one agent for one call: what a wallboard counts per agent
    (offered = rows, missed / answered by ``outcome``), keyed by when the ringing began."""

    __tablename__ = "call_agent_attempt"
    __table_args__ = (
        UniqueConstraint("pbx", "linkedid", "interface", "called_at",
                         name="uq_call_agent_attempt_key"),
        Index("ix_call_agent_attempt_agent_called_at", "agent_name", "called_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    pbx: Mapped[str] = mapped_column(String(64))
    linkedid: Mapped[str] = mapped_column(String(64))
    queue: Mapped[str] = mapped_column(String(64))
    agent_name: Mapped[str] = mapped_column(String(128))
    interface: Mapped[str] = mapped_column(String(128))
    called_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str] = mapped_column(String(16))
    ring_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    talk_seconds: Mapped[float | None] = mapped_column(Float)
    complete_reason: Mapped[str | None] = mapped_column(String(16))
