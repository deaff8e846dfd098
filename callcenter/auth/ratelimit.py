"""Login rate limit: a sliding window over failed attempts, per username and per IP.

Attempts are rows in ``login_attempts`` rather than Redis counters: the limit then holds
across every process sharing the database, on the embedded SQLite setup as well as on
PostgreSQL, without depending on the bus backend; and the rows double as a security trace.

Check and count are one atomic step: ``retry_after`` counts the attempt as a failure
*before* the password is checked, in a short transaction of its own that is serialised
per username and IP (PostgreSQL: transaction-scoped advisory locks; SQLite:
``BEGIN IMMEDIATE``, the database's single write lock), and commits it at once. So 40
parallel guesses get exactly ``login_max_attempts`` password checks, and a failure is
counted even if the login request dies afterwards; ``record(succeeded=True)`` turns the
reserved row into a success inside the login's own transaction.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from callcenter.auth.config import AuthConfig
from callcenter.auth.models import LoginAttempt

log = logging.getLogger(__name__)

KEEP_ATTEMPTS = timedelta(days=7)
_RESERVED = "login_attempt_id"  # key in ``session.info``: the row retry_after counted
_LOCKED_RETRIES = 3  # SQLite: times to retry after the busy timeout ran out


class LoginRateLimiter:
    def __init__(self, config: AuthConfig) -> None:
        self._window = timedelta(seconds=config.login_window_seconds)
        self._per_user = config.login_max_attempts
        self._per_ip = config.login_max_attempts_per_ip
        self._last_prune: datetime | None = None
        self._lock = asyncio.Lock()  # this process's reservations wait here, not in the DB

    async def retry_after(self, session: AsyncSession, *, username: str, ip: str,
                          now: datetime) -> int:
        """Seconds until a new attempt is allowed; 0 when allowed now.

        When allowed, the attempt is already counted (as a failure until ``record`` with
        the same ``session`` says it succeeded).
        """
        username, ip = username[:64], ip[:45]
        for attempt in range(_LOCKED_RETRIES + 1):
            try:
                async with self._lock:
                    wait, attempt_id = await self._reserve(_engine_of(session), username, ip,
                                                           now)
                break
            except OperationalError as exc:
                if "locked" not in str(exc) or attempt == _LOCKED_RETRIES:
                    raise
                log.warning("login_limit.database_locked retry=%d", attempt + 1)
        if attempt_id is not None:
            session.info[_RESERVED] = attempt_id
        return wait

    async def record(self, session: AsyncSession, *, username: str, ip: str, now: datetime,
                     succeeded: bool) -> None:
        """The outcome of the attempt ``retry_after`` allowed (in ``session``'s transaction)."""
        attempt_id = session.info.pop(_RESERVED, None)
        if attempt_id is None:  # no reservation (a caller that skipped retry_after)
            session.add(LoginAttempt(at=now, username=username[:64], ip=ip[:45],
                                     succeeded=succeeded))
        elif succeeded:
            await session.execute(update(LoginAttempt).where(LoginAttempt.id == attempt_id)
                                  .values(succeeded=True))

    # --- one serialised transaction: count, then reserve ---

    async def _reserve(self, engine: AsyncEngine, username: str, ip: str,
                       now: datetime) -> tuple[int, int | None]:
        async with engine.connect() as conn:
            await _serialise(conn, username, ip)
            wait = await self._seconds_to_wait(conn, username, ip, now)
            attempt_id = None
            if not wait:
                attempt_id = (await conn.execute(
                    insert(LoginAttempt).values(at=now, username=username, ip=ip,
                                                succeeded=False)
                    .returning(LoginAttempt.id))).scalar_one()
                await self._prune(conn, now)
            await conn.commit()
        return wait, attempt_id

    async def _seconds_to_wait(self, conn: AsyncConnection, username: str, ip: str,
                               now: datetime) -> int:
        since = now - self._window
        last_success = await conn.scalar(
            select(func.max(LoginAttempt.at)).where(
                LoginAttempt.username == username, LoginAttempt.succeeded.is_(True),
                LoginAttempt.at > since))
        user_wait = await self._frees_at(conn, LoginAttempt.username == username,
                                         self._per_user, last_success or since)
        ip_wait = await self._frees_at(conn, LoginAttempt.ip == ip, self._per_ip, since)
        waits = [w for w in (user_wait, ip_wait) if w is not None]
        return max(1, int((max(waits) - now).total_seconds()) + 1) if waits else 0

    async def _frees_at(self, conn: AsyncConnection, who: Any, limit: int,
                        after: datetime) -> datetime | None:
        """When the window frees a slot, or None when below ``limit`` failures."""
        rows = (await conn.execute(
            select(LoginAttempt.at).where(who, LoginAttempt.succeeded.is_(False),
                                          LoginAttempt.at > after)
            .order_by(LoginAttempt.at.desc()).limit(limit))).scalars().all()
        if len(rows) < limit:
            return None
        return rows[-1] + self._window

    async def _prune(self, conn: AsyncConnection, now: datetime) -> None:
        """Forget attempts older than a week, at most once an hour per process."""
        if self._last_prune is not None and now - self._last_prune <= timedelta(hours=1):
            return
        self._last_prune = now
        await conn.execute(delete(LoginAttempt).where(LoginAttempt.at < now - KEEP_ATTEMPTS))


async def _serialise(conn: AsyncConnection, username: str, ip: str) -> None:
    """Start a transaction that no other attempt for this username or IP runs beside."""
    if conn.dialect.name == "sqlite":
        await conn.exec_driver_sql("BEGIN IMMEDIATE")  # takes the write lock now
        return
    # Always user before IP: one order everywhere, so no two transactions deadlock.
    for key in (f"login:user:{username}", f"login:ip:{ip}"):
        await conn.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                           {"key": key})


def _engine_of(session: AsyncSession) -> AsyncEngine:
    engine = session.bind
    if not isinstance(engine, AsyncEngine):
        raise TypeError("LoginRateLimiter needs a session bound to an AsyncEngine")
    return engine
