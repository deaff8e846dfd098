"""Who is asking: the authenticated user as the rest of the service sees them.

A ``Principal`` is built from a verified token (and the user's current row), never from
request fields, so domain code can trust ``role`` and ``unit_id``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    """The four roles of a hotline office."""

    AGENT = "agent"  # 话务员: takes calls, writes orders, answers from the knowledge base
    UNIT_HANDLER = "unit_handler"  # 承办单位经办人: handles the orders of exactly one unit
    SUPERVISOR = "supervisor"  # 督办/质检: supervises units, reads the audit log
    ADMIN = "admin"  # 系统管理员: manages units and users


@dataclass(frozen=True)
class Principal:
    user_id: int
    username: str
    role: Role
    unit_id: int | None  # set for unit handlers only
    token_generation: int = 0  # the user's when the principal was read; tokens carry it

    def is_unit_member(self, unit_id: int | None) -> bool:
        """True when this principal handles orders of ``unit_id``."""
        return self.role is Role.UNIT_HANDLER and unit_id is not None and self.unit_id == unit_id
