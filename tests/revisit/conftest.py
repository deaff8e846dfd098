"""A revisit rig over real TCP: the simulator (AMI + FastAGI into the shipped ``[revisit]``
context), the telephony door with the ``revisit`` survey routed, the dialer driven round by
round, and the ticket API on SQLite and PostgreSQL under a frozen clock (Monday 10:00 in
Shanghai, inside the default window)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr
from sqlalchemy import select

from callcenter.auth.testing import bare_app
from callcenter.clock import SystemClock
from callcenter.ivr.config import IvrConfig
from callcenter.ivr.prompts import PromptCatalog, PromptLibrary
from callcenter.revisit.agi import PROMPTS, Survey
from callcenter.revisit.config import CampaignSettings, RevisitConfig
from callcenter.revisit.dialer import Dialer
from callcenter.revisit.http import setup_web as setup_revisit
from callcenter.revisit.models import Revisit, RevisitAttempt
from callcenter.revisit.service import RevisitService
from callcenter.simulator.scenario import Simulator
from callcenter.telephony import events as ev
from callcenter.telephony.config import AgiConfig, AmiConfig
from callcenter.telephony.service import Telephony
from callcenter.tickets.config import TicketsConfig
from callcenter.tickets.http import TICKETS
from callcenter.tickets.http import setup_web as setup_tickets
from tests.tickets.conftest import (  # noqa: F401
    Hotline,
    clock,
    hotline,
    local,
    tickets_config,
)

TIME_SCALE = 0.02
PROOF = {"attachments": [{"kind": "photo", "name": "现场.jpg", "ref": "files/1.jpg"}]}
CITIZEN = "13812345678"  # the hotline fixture's caller


@dataclass
class Rig:
    h: Hotline
    sim: Simulator
    telephony: Telephony
    service: RevisitService
    dialer: Dialer
    config: RevisitConfig
    monitor: Path

    async def replied(self, phone: str = CITIZEN, **overrides: Any) -> int:
        """A complaint replied by unit A (the reply the office keeps)."""
        h = self.h
        ticket = await h.dispatched(caller={"name": "张三丰", "phone": phone,
                                            "address": "幸福路8号"}, **overrides)
        tid = ticket["id"]
        for step in ("accept", "start"):
            await h.call(h.handler_a, "POST", f"/tickets/{tid}/{step}", expect=200)
        await h.call(h.handler_a, "POST", f"/tickets/{tid}/reply",
                     {"content": "已处理", **PROOF}, expect=200)
        return tid

    async def round(self) -> int:
        """One dialer round; waits until every call it started is over. Returns how many
        calls were started."""
        before = self.dialer.dials
        await self.dialer.round()
        tasks = [task for _, task in self.dialer.calls.values()]
        if tasks:
            await asyncio.wait_for(asyncio.gather(*tasks), 60)
        return self.dialer.dials - before

    async def revisit_of(self, tid: int) -> Revisit:
        async with self.h.sessionmaker() as session:
            return (await session.scalars(select(Revisit).where(
                Revisit.ticket_id == tid).order_by(Revisit.id.desc()))).first()

    async def attempts_of(self, revisit_id: int) -> list[RevisitAttempt]:
        async with self.h.sessionmaker() as session:
            return list((await session.scalars(select(RevisitAttempt).where(
                RevisitAttempt.revisit_id == revisit_id).order_by(RevisitAttempt.id))).all())


def telephony_for(sim: Simulator, pbx: str = "sim-revisit") -> Telephony:
    return Telephony(AmiConfig(port=sim.ami_port, username="callcenter",
                               secret=SecretStr("CHANGE_ME"), reconnect_min=0.05,
                               reconnect_max=0.2, action_timeout=5, pbx=pbx),
                     AgiConfig(host="127.0.0.1", port=0), None, SystemClock())


async def start_door(telephony: Telephony, sim: Simulator | None = None) -> None:
    """Connect; the simulator's ``agi://`` URLs go to this door's FastAGI port (bound now,
    so no port is guessed)."""
    seen = asyncio.Event()
    telephony.add_listener(lambda e: isinstance(e, ev.QueuesSnapshot) and seen.set())
    await telephony.start()
    await asyncio.wait_for(seen.wait(), 10)
    if sim is not None:
        sim.pbx.config.agi_port = telephony.agi.port


@pytest.fixture
def revisit_config() -> RevisitConfig:
    settings = CampaignSettings(max_lines=4, calls_per_second=50, max_attempts=3,
                                retry_busy_seconds=600, retry_no_answer_seconds=7200,
                                retry_failed_seconds=1800, delay_after_reply_hours=0)
    return RevisitConfig(campaign=settings, poll_seconds=0.05, housekeeping_seconds=0,
                         lease_seconds=60, comment_max_seconds=3, key_timeout_ms=20000,
                         key_retries=1)


@pytest.fixture
async def rig(hotline: Hotline, tmp_path: Path, revisit_config: RevisitConfig  # noqa: F811
              ) -> AsyncIterator[Rig]:
    h = hotline
    monitor = tmp_path / "monitor"
    sounds = tmp_path / "sounds"
    sim = Simulator(port=0, time_scale=TIME_SCALE, seed=15, agi_host="127.0.0.1",
                    bad_login_delay=0.05, recordings_dir=monitor, sounds_dir=sounds,
                    cdr_dir=tmp_path / "cdr")
    await sim.start()
    service = RevisitService(h.sessionmaker, h.clock, revisit_config, h.service)
    library = PromptLibrary(PromptCatalog(revisit_config.prompts_dir),
                            IvrConfig(sounds_dir=sounds))
    await library.in_worker(library.ensure, [(p, "zh") for p in PROMPTS], True)
    telephony = telephony_for(sim)
    telephony.agi.route("revisit", Survey(service, library, revisit_config).run)
    dialer = Dialer(service, telephony.commands, revisit_config)
    telephony.add_listener(dialer.on_event)
    await start_door(telephony, sim)
    try:
        yield Rig(h, sim, telephony, service, dialer, revisit_config, monitor)
    finally:
        await dialer.close()
        await telephony.stop()
        await sim.stop()
        library.close()


@pytest.fixture
async def revisit_api(rig: Rig, tickets_config: TicketsConfig  # noqa: F811
                      ) -> AsyncIterator[Hotline]:
    """The rig's hotline served again with the revisit routes too: the same database, clock
    and people, as the office or an inbound-SMS integration reach them."""
    app = bare_app(rig.h.sessionmaker, rig.h.clock)
    setup_tickets(app, tickets_config)
    setup_revisit(app)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield replace(rig.h, client=client, service=app[TICKETS])
    finally:
        await client.close()
