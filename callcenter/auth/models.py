"""Tables of the auth package: units, users, the audit log and login attempts.

The audit log is append-only: rows are inserted, never updated or deleted by the service.
Failed and successful logins are stored in ``login_attempts`` so the rate limit is shared by
every process that uses the same database (see ``ratelimit.py``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from callcenter.store.base import Base


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime stored as UTC on every engine.

    SQLite has no zone support: without this, aware datetimes would be stored in whatever
    zone they carry and come back naive. Naive values are rejected, not guessed.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UtcDateTime column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Unit(Base):
    """承办单位: a department, town or utility that handles dispatched orders."""

    __tablename__ = "units"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Towns and departments are ranked separately; a parent groups units (a bureau's
    # branch, a town's villages).
    kind: Mapped[str] = mapped_column(String(16), default="department")
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))


class User(Base):
    """A person who logs in; a unit handler belongs to exactly one unit."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(32))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    password_changed_at: Mapped[datetime] = mapped_column(UtcDateTime())
    token_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Bumped when the user is deactivated or their password, role or unit changes: tokens
    carry the generation they were issued in and die with it (see ``tokens.py``)."""


class AuditLog(Base):
    """One access to personal data or one administrative change (append-only).

    ``user_id``/``username``/``role`` are copied, not joined, so the trace survives later
    changes to the user.
    """

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_user_at", "user_id", "at"),
        Index("ix_audit_log_object", "object_type", "object_id", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    user_id: Mapped[int | None] = mapped_column(Integer)
    username: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(64))
    object_id: Mapped[str | None] = mapped_column(String(64))
    fields: Mapped[Any] = mapped_column(JSON, default=list)
    ip: Mapped[str | None] = mapped_column(String(45))


class LoginAttempt(Base):
    """One login attempt; the sliding-window rate limit counts recent failures."""

    __tablename__ = "login_attempts"
    __table_args__ = (
        Index("ix_login_attempts_username_at", "username", "at"),
        Index("ix_login_attempts_ip_at", "ip", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    username: Mapped[str] = mapped_column(String(64))
    ip: Mapped[str] = mapped_column(String(45))
    succeeded: Mapped[bool] = mapped_column(Boolean)
