"""Agents (a user of role agent with a softphone and skills) and their state periods."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.auth.models import UtcDateTime
from callcenter.store.base import Base

STATES = ("logged_out", "available", "ringing", "on_call", "on_hold", "after_call_work",
          "paused")
"""``ringing`` / ``on_call`` / ``on_hold``: a queue call (``queue`` set) or, from the phone's
device state alone, another call (``queue`` empty). ``paused`` carries the reason."""


class Agent(Base):
    """A person who takes queue calls: the user, their softphone and the current state.

    ``logged_in`` is what the service wants (it re-adds the member after an Asterisk
    restart); ``state*`` is what Asterisk last reported, since ``state_since``.
    ``interface`` is the phone used at the last login (kept after logout so the periods
    still open then can be closed by the events that follow).
    """

    __tablename__ = "queue_agents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), unique=True)
    member_name: Mapped[str] = mapped_column(String(128))
    extension: Mapped[str] = mapped_column(String(16))
    interface: Mapped[str | None] = mapped_column(String(128), unique=True)
    logged_in: Mapped[bool] = mapped_column(Boolean, default=False)
    paused_reason: Mapped[str | None] = mapped_column(String(64))
    """The pause the agent or a supervisor asked for (re-applied after a restart)."""
    state: Mapped[str] = mapped_column(String(16), default="logged_out")
    state_reason: Mapped[str | None] = mapped_column(String(64))
    state_queue: Mapped[str | None] = mapped_column(String(64))
    state_linkedid: Mapped[str | None] = mapped_column(String(64))
    state_since: Mapped[datetime | None] = mapped_column(UtcDateTime())
    after_call_work_until: Mapped[datetime | None] = mapped_column(UtcDateTime())


class AgentSkill(Base):
    """An agent's level in one queue: membership and, through the level, the penalty."""

    __tablename__ = "queue_agent_skills"
    __table_args__ = (UniqueConstraint("agent_id", "queue", name="uq_queue_agent_skills"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("queue_agents.id", ondelete="CASCADE"))
    queue: Mapped[str] = mapped_column(String(64))
    level: Mapped[int] = mapped_column(Integer)


class AgentStatePeriod(Base):
    """One stretch of one state (logged out is the absence of periods): what reports sum
    into login, talk, hold, wrap-up and pause time. ``ended_at`` is empty while it lasts."""

    __tablename__ = "queue_agent_periods"
    __table_args__ = (
        Index("ix_queue_agent_periods_agent_started", "agent_id", "started_at"),
        Index("ix_queue_agent_periods_started", "started_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("queue_agents.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(64))
    queue: Mapped[str | None] = mapped_column(String(64))
    linkedid: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class ScreenPop(Base):
    """The queue call an agent was last offered (one row per agent, replaced by the next):
    what the screen-pop shows and the channels call control acts on. The calling number is
    kept clear, as the call log keeps it; each reader sees it as the privacy policy allows.
    ``phase``: offered, answered, ended. ``transferred_by``: the agent who passed the call
    on to this agent's phone (a transfer or a consultation), None for a queue's offer."""

    __tablename__ = "queue_screen_pops"

    agent_id: Mapped[int] = mapped_column(ForeignKey("queue_agents.id", ondelete="CASCADE"),
                                          primary_key=True)
    linkedid: Mapped[str] = mapped_column(String(64))
    queue: Mapped[str] = mapped_column(String(64))
    phase: Mapped[str] = mapped_column(String(16))
    caller_channel: Mapped[str] = mapped_column(String(128))
    agent_channel: Mapped[str] = mapped_column(String(128))
    caller_number: Mapped[str | None] = mapped_column(String(64))
    caller_name: Mapped[str | None] = mapped_column(String(128))
    offered_at: Mapped[datetime] = mapped_column(UtcDateTime())
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    ivr_path: Mapped[str | None] = mapped_column(String(255))
    ivr_language: Mapped[str | None] = mapped_column(String(16))
    ivr_ticket: Mapped[str | None] = mapped_column(String(32))
    ivr_verified: Mapped[str | None] = mapped_column(String(16))
    transferred_by: Mapped[str | None] = mapped_column(String(128))


class Softphone(Base):
    """An agent's SIP credentials: only ``md5_cred`` (MD5 of ``user:realm:password``, what
    PJSIP's ``auth_type = md5`` needs) is kept; the password is shown once, when generated."""

    __tablename__ = "queue_softphones"

    agent_id: Mapped[int] = mapped_column(ForeignKey("queue_agents.id", ondelete="CASCADE"),
                                          primary_key=True)
    username: Mapped[str] = mapped_column(String(16))
    realm: Mapped[str] = mapped_column(String(64))
    md5_cred: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class QueueVisit(Base):
    """One stay of a caller in one queue, as Asterisk counts ``QueueParams``: a call moved
    from one queue into another is offered (and answered or not) in both, while the call
    log keeps one row per call. ``outcome`` is None while the visit is not over (or was
    cut by a service restart); then answered, abandoned, timeout, or another ``QUEUESTATUS``
    in lower case. ``talk_seconds`` excludes ``hold_seconds``; both for answered visits."""

    __tablename__ = "queue_visits"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    """``<caller's Uniqueid>@<joined_at ISO>``: written again as the visit goes on."""
    linkedid: Mapped[str] = mapped_column(String(150), index=True)
    queue: Mapped[str] = mapped_column(String(64))
    joined_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    outcome: Mapped[str | None] = mapped_column(String(16))
    wait_seconds: Mapped[float | None] = mapped_column(Float)
    agent_interface: Mapped[str | None] = mapped_column(String(128))
    talk_seconds: Mapped[float | None] = mapped_column(Float)
    hold_seconds: Mapped[float | None] = mapped_column(Float)


class QueueInterval(Base):
    """One queue's calls that started in one 15-minute interval."""

    __tablename__ = "queue_intervals"
    __table_args__ = (UniqueConstraint("queue", "interval_start", name="uq_queue_intervals"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    queue: Mapped[str] = mapped_column(String(64))
    interval_start: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    offered: Mapped[int] = mapped_column(Integer, default=0)
    answered: Mapped[int] = mapped_column(Integer, default=0)
    abandoned: Mapped[int] = mapped_column(Integer, default=0)
    timeouts: Mapped[int] = mapped_column(Integer, default=0)
    other_exits: Mapped[int] = mapped_column(Integer, default=0)
    answered_within_target: Mapped[int] = mapped_column(Integer, default=0)
    wait_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    talk_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    hold_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    wrap_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    computed_at: Mapped[datetime] = mapped_column(UtcDateTime())


class AgentInterval(Base):
    """One agent's time per state and calls in one 15-minute interval."""

    __tablename__ = "queue_agent_intervals"
    __table_args__ = (UniqueConstraint("agent_id", "interval_start",
                                       name="uq_queue_agent_intervals"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("queue_agents.id", ondelete="CASCADE"))
    interval_start: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    login_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    available_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    ringing_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    on_call_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    on_hold_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    after_call_work_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    paused_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    paused_by_reason: Mapped[dict[str, float]] = mapped_column(JSON, default=dict)
    calls_offered: Mapped[int] = mapped_column(Integer, default=0)
    calls_answered: Mapped[int] = mapped_column(Integer, default=0)
    computed_at: Mapped[datetime] = mapped_column(UtcDateTime())
