"""Login rate limit: a sliding window over failed attempts, per username and per IP.

Attempts are rows in ``login_attempts`` rather than Redis counters: the limit then holds
across every process sharing the database, on the embedded SQLite setup as well as on
PostgreSQL, without depending on the bus backend; and the rows double as a security trace.
Login is rare next to other traffic, so two indexed counts per attempt cost nothing.
Check-then-insert is not atomic: a burst of concurrent guesses may overshoot the limit by
the number of concurrent requests, which does not matter for a limit of a few per window.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.auth.config import AuthConfig
from callcenter.auth.models import LoginAttempt

KEEP_ATTEMPTS = timedelta(days=7)


class LoginRateLimiter:
    def __init__(self, config: AuthConfig) -> None:
        self._window = timedelta(seconds=config.login_window_seconds)
        self._per_user = config.login_max_attempts
        self._per_ip = config.login_max_attempts_per_ip
        self._last_prune: datetime | None = None

    async def retry_after(self, session: AsyncSession, *, username: str, ip: str,
                          now: datetime) -> int:
        """Seconds until a new attempt is allowed; 0 when allowed now."""
        since = now - self._window
        user_wait = await self._wait(session, LoginAttempt.username == username,
                                     self._per_user, since, await self._last_success(
                                         session, username, since))
        ip_wait = await self._wait(session, LoginAttempt.ip == ip, self._per_ip, since, since)
        waits = [w for w in (user_wait, ip_wait) if w is not None]
        return max(1, int((max(waits) - now).total_seconds()) + 1) if waits else 0

    async def _last_success(self, session: AsyncSession, username: str,
                            since: datetime) -> datetime:
        last = await session.scalar(
            select(func.max(LoginAttempt.at)).where(
                LoginAttempt.username == username, LoginAttempt.succeeded.is_(True),
                LoginAttempt.at > since))
        return last or since

    async def _wait(self, session: AsyncSession, who, limit: int, since: datetime,
                    after: datetime) -> datetime | None:
        """When the window frees a slot, or None when below ``limit`` failures."""
        rows = (await session.scalars(
            select(LoginAttempt.at).where(who, LoginAttempt.succeeded.is_(False),
                                          LoginAttempt.at > after)
            .order_by(LoginAttempt.at.desc()).limit(limit))).all()
        if len(rows) < limit:
            return None
        return rows[-1] + self._window

    async def record(self, session: AsyncSession, *, username: str, ip: str, now: datetime,
                     succeeded: bool) -> None:
        session.add(LoginAttempt(at=now, username=username[:64], ip=ip[:45],
                                 succeeded=succeeded))
        if self._last_prune is None or now - self._last_prune > timedelta(hours=1):
            self._last_prune = now
            await session.execute(delete(LoginAttempt).where(LoginAttempt.at < now - KEEP_ATTEMPTS))
