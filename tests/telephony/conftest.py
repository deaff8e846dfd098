"""Fixtures: a replaying Asterisk on an ephemeral port and AMI clients pointed at it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from callcenter.telephony.ami import AmiClient
from callcenter.telephony.config import AmiConfig
from tests.telephony.asterisk_double import ReplayAsterisk

CAPTURES = ["queue_call", "queue_status", "queue_members", "abandon", "fastagi"]


class Collector:
    """Collects callback values; lets a test wait for a condition instead of sleeping."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._changed = asyncio.Event()

    def __call__(self, item: Any) -> None:
        self.items.append(item)
        self._changed.set()

    async def wait_for(self, predicate: Callable[[list[Any]], bool],
                       timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate(self.items):
                self._changed.clear()
                await self._changed.wait()


@pytest.fixture
async def asterisk(captures_dir: Path) -> AsyncIterator[ReplayAsterisk]:
    server = ReplayAsterisk([captures_dir / f"{name}.txt" for name in CAPTURES])
    await server.start()
    yield server
    await server.stop()


def ami_config(port: int, **overrides: Any) -> AmiConfig:
    values: dict[str, Any] = {
        "host": "127.0.0.1", "port": port, "username": "cc",
        "secret": SecretStr("CHANGE_ME"), "action_timeout": 2.0, "connect_timeout": 2.0,
        "reconnect_min": 0.01, "reconnect_max": 0.05, "ping_interval": 30.0,
    }
    values.update(overrides)
    return AmiConfig(**values)


@pytest.fixture
async def make_client(asterisk: ReplayAsterisk) -> AsyncIterator[Callable[..., AmiClient]]:
    clients: list[AmiClient] = []

    def make(on_event: Callable[[dict], None] | None = None, **overrides: Any) -> AmiClient:
        client = AmiClient(ami_config(asterisk.port, **overrides), on_event or (lambda f: None))
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.stop()
