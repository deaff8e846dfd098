"""The IVR's domain errors."""

from __future__ import annotations

from callcenter.errors import DomainError


class UnknownAnnouncement(DomainError):
    status = 404
    code = "unknown_announcement"

    def __init__(self, kind: str) -> None:
        super().__init__(f"no announcement {kind!r} (holiday, emergency)")
