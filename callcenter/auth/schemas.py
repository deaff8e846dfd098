"""Auth's API payloads: what comes in (``*In``, ``*Patch``, ``*Query``) and goes out."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from callcenter.auth.models import AuditLog, Unit, User
from callcenter.auth.principal import Role


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginIn(_Payload):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


# Towns (乡镇 / 街道) and departments are ranked separately in the monthly report.
UnitKind = Literal["town", "department", "utility", "other"]


class UnitIn(_Payload):
    code: str = Field(min_length=1, max_length=32)
    name: str = Field(min_length=1, max_length=200)
    active: bool = True
    kind: UnitKind = "department"
    parent_id: int | None = None


class UnitPatch(_Payload):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    active: bool | None = None
    kind: UnitKind | None = None
    parent_id: int | None = None


class UserIn(_Payload):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(max_length=1024)
    role: Role
    display_name: str | None = Field(default=None, max_length=200)
    unit_id: int | None = None
    active: bool = True


class UserPatch(_Payload):
    display_name: str | None = Field(default=None, max_length=200)
    role: Role | None = None
    unit_id: int | None = None
    active: bool | None = None
    password: str | None = Field(default=None, max_length=1024)


class UsersQuery(_Payload):
    unit_id: int | None = Field(default=None, ge=0)
    role: Role | None = None


class AuditQuery(_Payload):
    """Filters of the audit log; ``from``/``to`` are dates (whole days, UTC, ``to``
    included) or ISO datetimes with a zone."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    user_id: int | None = Field(default=None, ge=0)
    username: str | None = Field(default=None, max_length=64)
    action: str | None = Field(default=None, max_length=64)
    object_type: str | None = Field(default=None, max_length=32)
    object_id: str | None = Field(default=None, max_length=64)
    since: str | None = Field(default=None, alias="from", max_length=40)
    until: str | None = Field(default=None, alias="to", max_length=40)
    limit: int = Field(default=100, ge=0)  # at most 1000 are returned
    offset: int = Field(default=0, ge=0)


class UnitOut(BaseModel):
    id: int
    code: str
    name: str
    active: bool
    kind: str = "department"
    parent_id: int | None = None

    @classmethod
    def of(cls, unit: Unit) -> UnitOut:
        return cls(id=unit.id, code=unit.code, name=unit.name, active=unit.active,
                   kind=unit.kind or "department", parent_id=unit.parent_id)


class UnitList(BaseModel):
    units: list[UnitOut]


class UserOut(BaseModel):
    id: int
    username: str
    display_name: str | None
    role: Role
    unit_id: int | None
    active: bool
    created_at: datetime
    password_changed_at: datetime

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(id=user.id, username=user.username, display_name=user.display_name,
                   role=Role(user.role), unit_id=user.unit_id, active=user.active,
                   created_at=user.created_at, password_changed_at=user.password_changed_at)


class UserList(BaseModel):
    users: list[UserOut]


class MeOut(UserOut):
    unit: UnitOut | None


class LoginUser(BaseModel):
    id: int
    username: str
    role: Role
    unit_id: int | None


class MediaSessionOut(BaseModel):
    expires_at: datetime


class LoginOut(BaseModel):
    token: str
    token_type: str = "Bearer"
    expires_at: datetime
    user: LoginUser


class AuditEntry(BaseModel):
    id: int
    at: datetime
    user_id: int | None
    username: str
    role: str
    action: str
    object_type: str
    object_id: str | None
    fields: list[str]
    ip: str | None

    @classmethod
    def of(cls, row: AuditLog) -> AuditEntry:
        return cls(id=row.id, at=row.at, user_id=row.user_id, username=row.username,
                   role=row.role, action=row.action, object_type=row.object_type,
                   object_id=None if row.object_id is None else str(row.object_id),
                   fields=list(row.fields or []), ip=row.ip)


class AuditPage(BaseModel):
    entries: list[AuditEntry]
    limit: int
    offset: int
