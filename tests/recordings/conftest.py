"""The recordings feature over real HTTP (auth + tickets + recordings routes) on SQLite and
PostgreSQL, with a frozen clock, a local store and a monitor folder in a temporary dir."""

from __future__ import annotations

import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.auth.principal import Role
from callcenter.auth.testing import bare_app, make_unit, test_auth_config
from callcenter.clock import FrozenClock
from callcenter.recordings.config import RecordingsConfig
from callcenter.recordings.http import setup_web as setup_recordings
from callcenter.recordings.service import RecordingService
from callcenter.recordings.store import LocalStore
from callcenter.tickets.config import TicketsConfig
from callcenter.tickets.http import TICKETS
from callcenter.tickets.http import setup_web as setup_tickets
from callcenter.web.openapi import setup_openapi
from callcenter.web.pages import setup_pages
from tests.tickets.conftest import Actor, Hotline, clock, quick_user  # noqa: F401

CITIZEN = "13812345678"


def write_wav(path: Path, seconds: float, *, rate: int = 8000, channels: int = 2) -> Path:
    """A PCM WAV of exactly ``seconds`` (a quiet tone, so files differ by length)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = int(seconds * rate)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(bytes((i * 7) % 256 for i in range(frames * channels * 2)))
    return path


@pytest.fixture
def rec_config(tmp_path: Path) -> RecordingsConfig:
    return RecordingsConfig(store_dir=tmp_path / "store", monitor_dir=tmp_path / "monitor",
                            retry_delays=[0.05, 0.05])


@dataclass
class Office(Hotline):
    recordings: RecordingService | None = None
    config: RecordingsConfig | None = None


@pytest.fixture
async def office(sessionmaker: async_sessionmaker[AsyncSession], clock: FrozenClock,  # noqa: F811
                 rec_config: RecordingsConfig) -> AsyncIterator[Office]:
    """The ticket API with the closing rule at its defaults, and the recordings routes."""
    rec_config.monitor_dir.mkdir(parents=True, exist_ok=True)
    config = test_auth_config()
    app = bare_app(sessionmaker, clock, config=config)
    setup_tickets(app, TicketsConfig())
    setup_recordings(app, rec_config, pbx="sim")
    setup_openapi(app)
    setup_pages(app)
    units = [(await make_unit(sessionmaker)).id for _ in range(3)]

    async def actor(role: Role, unit_id: int | None = None) -> Actor:
        return Actor(await quick_user(sessionmaker, clock, role, unit_id), config, clock)

    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield Office(
            client=client, clock=clock, service=app[TICKETS], sessionmaker=sessionmaker,
            agent=await actor(Role.AGENT), supervisor=await actor(Role.SUPERVISOR),
            unit_a=units[0], unit_b=units[1], unit_c=units[2],
            handler_a=await actor(Role.UNIT_HANDLER, units[0]),
            handler_b=await actor(Role.UNIT_HANDLER, units[1]),
            handler_c=await actor(Role.UNIT_HANDLER, units[2]),
            admin=await actor(Role.ADMIN),
            recordings=RecordingService(sessionmaker, clock, rec_config,
                                        LocalStore(rec_config.store_dir)),
            config=rec_config)
    finally:
        await client.close()


async def in_progress(office: Office, **overrides: Any) -> dict[str, Any]:
    """A complaint dispatched to unit A, accepted and started, with an intake call."""
    ticket = await office.dispatched(**overrides)
    tid = ticket["id"]
    await office.call(office.handler_a, "POST", f"/tickets/{tid}/accept", expect=200)
    return await office.call(office.handler_a, "POST", f"/tickets/{tid}/start", expect=200)

