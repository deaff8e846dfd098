"""The IVR against the simulated Asterisk over real TCP: AMI for the call log, FastAGI for
the flow, the project's dialplan and the shipped flows, prompts really synthesized once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import callcenter
from callcenter.bus.memory import MemoryBus
from callcenter.calls.models import CallLog
from callcenter.calls.tracker import CallTracker
from callcenter.clock import Clock, FrozenClock
from callcenter.ivr.agi import script_for
from callcenter.ivr.app import IvrApp
from callcenter.ivr.config import IvrConfig
from callcenter.ivr.service import IvrService
from callcenter.simulator.scenario import CallHandle, Simulator
from callcenter.telephony import events as ev
from callcenter.telephony.agi import AgiSession
from callcenter.telephony.config import AgiConfig, AmiConfig
from callcenter.telephony.service import Telephony
from callcenter.tickets.calendar import WorkingCalendar
from callcenter.tickets.config import TicketsConfig, load_taxonomy
from callcenter.tickets.service import TicketService

REPO = Path(callcenter.__file__).resolve().parents[1]
FLOWS = REPO / "ivr"
TIME_SCALE = 0.02  # wall seconds per simulated second
SHANGHAI = ZoneInfo("Asia/Shanghai")
WORKING_MORNING = datetime(2026, 12, 2, 10, 0, tzinfo=SHANGHAI)  # a Wednesday, a working day


def fields(text: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in text.split("\r\n") if ": " in line)


class Watch:
    """What Asterisk (the simulator) saw per channel: AGI commands and variables, read from
    its own event hub; hangs a caller up the moment the IVR enters a chosen node."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.commands: dict[str, list[str]] = {}
        self.variables: dict[str, dict[str, str]] = {}
        self.hang_up_at: dict[str, str] = {}

    def __call__(self, name: str, flag: int, text: str) -> None:
        if name not in ("AGIExecStart", "VarSet"):
            return
        f = fields(text)
        uniqueid = f.get("Uniqueid", "")
        if name == "AGIExecStart":
            self.commands.setdefault(uniqueid, []).append(f.get("Command", ""))
            return
        self.variables.setdefault(uniqueid, {})[f.get("Variable", "")] = f.get("Value", "")
        if f.get("Variable") == "IVR_NODE" and self.hang_up_at.get(uniqueid) == f.get("Value"):
            chan = next((c for c in self.sim.channels if c.uniqueid == uniqueid), None)
            if chan is not None:
                self.sim.pbx.remote_hangup(chan)

    def played(self, call: CallHandle) -> list[str]:
        """The prompts the IVR asked Asterisk to play, in order."""
        out = []
        for command in self.commands.get(call.uniqueid, []):
            words = command.split()
            if words[:2] in (["STREAM", "FILE"], ["GET", "DATA"]):
                out.append(words[2])
        return out

    def var(self, call: CallHandle, name: str) -> str | None:
        return self.variables.get(call.uniqueid, {}).get(name)


class Seen:
    """Domain events as delivered by the telephony door; wait on conditions, never sleep."""

    def __init__(self) -> None:
        self.changed = asyncio.Event()

    def __call__(self, event: ev.DomainEvent) -> None:
        self.changed.set()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 20.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()


@dataclass
class Rig:
    sim: Simulator
    telephony: Telephony
    tracker: CallTracker
    sessionmaker: async_sessionmaker[AsyncSession]
    clock: Clock
    config: IvrConfig
    watch: Watch
    seen: Seen
    tickets: TicketService
    bus: MemoryBus
    apps: list[IvrApp] = field(default_factory=list)

    def use(self, flow: str = "hotline", at: datetime = WORKING_MORNING,
            **overrides: Any) -> IvrApp:
        """Serve ``flow`` (with config overrides) from now on, the IVR's clock at ``at``."""
        config = self.config.model_copy(update={"flow": flow, **overrides})
        clock = FrozenClock(at)
        service = IvrService(self.sessionmaker, clock, config, self.tickets.calendar,
                             self.tickets, self.bus)
        app = IvrApp.load(config, service, clock)
        self.apps.append(app)
        return app

    @property
    def app(self) -> IvrApp:
        return self.apps[-1]

    def call(self, number: str = "13800138000", **caller: Any) -> CallHandle:
        from callcenter.simulator.actors import Caller

        caller.setdefault("talk_time", 1.0)
        caller.setdefault("key_delay", 0.5)
        return self.sim.place_call(number, behaviour=Caller(**caller))

    async def ended(self, *calls: CallHandle) -> dict[str, CallLog]:
        """Wait until the calls ended and their rows are written; the rows by Linkedid."""
        await asyncio.wait_for(asyncio.gather(*(c.ended for c in calls)), 30)
        await self.seen.wait_for(lambda: self.tracker.live_calls == 0)
        await self.tracker.flush()
        async with self.sessionmaker() as session:
            rows = (await session.scalars(select(CallLog))).all()
        return {row.linkedid: row for row in rows}


async def build_rig(sessionmaker: async_sessionmaker[AsyncSession], clock: Clock,
                    tmp: Path, sounds: Path, cache: Path) -> Rig:
    tickets_config = TicketsConfig()
    calendar = WorkingCalendar(tickets_config.timezone, tickets_config.calendar_dir)
    tickets = TicketService(sessionmaker, clock, tickets_config,
                            load_taxonomy(tickets_config.taxonomy_path), calendar)
    sim = Simulator(port=0, time_scale=TIME_SCALE, seed=3, agi_host="127.0.0.1",
                    bad_login_delay=0.05, sounds_dir=sounds, recordings_dir=tmp / "rec",
                    cdr_dir=tmp / "cdr")
    await sim.start()
    watch = Watch(sim)
    sim.add_listener(watch)
    tracker = CallTracker(sessionmaker, clock, pbx="ivr-test", flush_interval=0.05)
    await tracker.start()
    telephony = Telephony(
        AmiConfig(port=sim.ami_port, username="callcenter", secret=SecretStr("CHANGE_ME"),
                  reconnect_min=0.05, reconnect_max=0.2, action_timeout=5),
        AgiConfig(port=0), None, clock)
    seen = Seen()
    config = IvrConfig(flows_dir=FLOWS, sounds_dir=sounds, cache_dir=cache,
                       announcement_cache_seconds=0, build_missing_prompts=False,
                       message_dir="/var/spool/asterisk/monitor")
    bus = MemoryBus()
    await bus.start()
    rig = Rig(sim, telephony, tracker, sessionmaker, clock, config, watch, seen, tickets, bus)

    async def ivr(session: AgiSession) -> None:
        await script_for(rig.app)(session)

    telephony.agi.route("ivr", ivr)
    telephony.add_listener(tracker)
    telephony.add_listener(seen)
    await telephony.start()
    await seen.wait_for(lambda: telephony.connected)
    sim.config.agi_port = telephony.agi.port
    rig.use()
    return rig


async def close_rig(rig: Rig) -> None:
    await rig.telephony.stop()
    await rig.tracker.stop()
    await rig.sim.stop()
    await rig.bus.close()
    for app in rig.apps:
        app.library.close()
