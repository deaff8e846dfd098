"""The revisit service killed (SIGKILL: no clean-up at all) again and again mid-campaign and
restarted each time, against one simulated Asterisk that outlives it: no revisit is dialed
twice at once, every dial is a stored attempt (one stored but never dialed is ``lost``),
nothing is dialed once a key is stored, and every citizen's answer ends up as the result
on the ticket. (A call does not outlive its service here: its FastAGI connection breaks
and the ``[revisit]`` context hangs up, as on Asterisk; the call surviving its dialer is
test_exactly_once's case.)

The service here is a process of its own running the production parts (the dialer's
``run`` loop, the FastAGI survey, the telephony door); this file is also its entry point
(``python -m tests.revisit.test_kill_repeatedly``, settings in the environment). Every
process is started at the beginning and waits, imports done, for a line on its standard
input: the restart right after a kill does not wait for Python's imports."""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import socket
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.auth.models import Unit
from callcenter.clock import SystemClock
from callcenter.ivr.config import IvrConfig
from callcenter.ivr.prompts import PromptCatalog, PromptLibrary
from callcenter.revisit.agi import PROMPTS, Survey
from callcenter.revisit.config import WEEKDAYS, CampaignSettings, RevisitConfig
from callcenter.revisit.dialer import Dialer
from callcenter.revisit.models import Revisit, RevisitAttempt
from callcenter.revisit.service import RevisitService
from callcenter.simulator.actors import Destination
from callcenter.simulator.scenario import Simulator
from callcenter.store.engine import create_engine, create_sessionmaker
from callcenter.telephony.config import AgiConfig, AmiConfig
from callcenter.telephony.service import Telephony
from callcenter.tickets.config import TicketsConfig
from callcenter.tickets.models import Ticket
from callcenter.tickets.service import TicketService
from tests.conftest import REPO

LINES = 3
ANSWERING = 10
BUSY = 2
MAX_ATTEMPTS = 8  # more than the kills: a revisit hit by every kill still gets its answer
TIME_SCALE = 0.02
TRIGGER_TIMEOUT = 30.0
FIELD = re.compile(r"^(\w+): (.*)$", re.M)


def service_config() -> RevisitConfig:
    """Always inside the window; retries at once; a dead service's claims are over soon."""
    campaign = CampaignSettings(
        windows={day: (0, 24) for day in WEEKDAYS}, working_days_only=False,
        max_lines=LINES, calls_per_second=20, max_attempts=MAX_ATTEMPTS,
        retry_busy_seconds=0, retry_no_answer_seconds=0, retry_failed_seconds=0,
        delay_after_reply_hours=0)
    return RevisitConfig(campaign=campaign, poll_seconds=0.1, housekeeping_seconds=0.3,
                         lease_seconds=3, comment_max_seconds=3, key_timeout_ms=20000,
                         key_retries=1)


async def serve(db_url: str, ami_port: int, agi_port: int, sounds: Path) -> None:
    """The revisit service as ``callcenter serve`` wires it, until it is killed."""
    engine = create_engine(db_url)
    sessionmaker = create_sessionmaker(engine)
    clock = SystemClock()
    config = service_config()
    tickets = TicketService.from_config(sessionmaker, clock, TicketsConfig())
    service = RevisitService(sessionmaker, clock, config, tickets)
    library = PromptLibrary(PromptCatalog(config.prompts_dir), IvrConfig(sounds_dir=sounds))
    door = Telephony(AmiConfig(port=ami_port, username="callcenter",
                               secret=SecretStr("CHANGE_ME"), reconnect_min=0.05,
                               reconnect_max=0.2, action_timeout=5, pbx="sim-killed"),
                     AgiConfig(host="127.0.0.1", port=agi_port), None, clock)
    door.agi.route("revisit", Survey(service, library, config).run)
    dialer = Dialer(service, door.commands, config)
    door.add_listener(dialer.on_event)
    await door.start()
    await dialer.run(asyncio.Event())


class Switchboard:
    """What the simulated Asterisk saw, from its AMI events, and the trigger of the next
    kill (run inside the event's delivery, so nothing happens in between)."""

    def __init__(self) -> None:
        self.originated: Counter[str] = Counter()
        """channel id -> Originates (Newchannel) with it."""
        self.live: dict[int, set[str]] = defaultdict(set)
        self.most_at_once: Counter[int] = Counter()
        """revisit -> most calls up at once."""
        self.peak = 0
        self.stored_at: dict[int, int] = {}
        """revisit -> how many dials there were when the survey had stored its key."""
        self.dials: list[tuple[int, str]] = []
        self.armed: tuple[str, subprocess.Popen[bytes], asyncio.Event] | None = None

    def on_event(self, name: str, _flag: int, text: str) -> None:
        fields = dict(FIELD.findall(text.replace("\r", "")))
        channel_id = fields.get("Uniqueid", "")
        if not channel_id.startswith("rv-"):
            return
        revisit = int(channel_id.split("-")[1])
        if name == "Newchannel":
            self.originated[channel_id] += 1
            self.dials.append((revisit, channel_id))
            self.live[revisit].add(channel_id)
            self.most_at_once[revisit] = max(self.most_at_once[revisit],
                                             len(self.live[revisit]))
            self.peak = max(self.peak, sum(len(c) for c in self.live.values()))
        elif name == "Hangup":
            self.live[revisit].discard(channel_id)
        elif name == "VarSet" and fields.get("Variable") == "REVISIT_SCORE":
            self.stored_at.setdefault(revisit, len(self.dials))  # set after the store
        self._fire(name, fields)

    def arm(self, kind: str, process: subprocess.Popen[bytes]) -> asyncio.Event:
        killed = asyncio.Event()
        self.armed = (kind, process, killed)
        return killed

    def _fire(self, name: str, fields: dict[str, str]) -> None:
        if self.armed is None:
            return
        kind, process, killed = self.armed
        if (kind == "key_stored" and name == "VarSet" and fields.get("Variable") ==
                "REVISIT_SCORE") or (kind == "key_pressed" and name == "DTMFEnd"):
            kill(process)
            self.armed = None
            killed.set()


def kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def services() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        kill(process)
        process.wait(10)


async def seed(sessionmaker: async_sessionmaker[AsyncSession], sim: Simulator) -> list[str]:
    """Replied orders, one citizen each: most answer and press 1 then 1, two are busy."""
    replied = datetime.now(UTC) - timedelta(days=1)
    phones = [f"1390000{i:04d}" for i in range(ANSWERING + BUSY)]
    async with sessionmaker() as session, session.begin():
        unit = Unit(code="kill-u1", name="unit", active=True)
        session.add(unit)
        await session.flush()
        for i, phone in enumerate(phones):
            answers = i < ANSWERING
            sim.add_destination(phone, Destination(
                mode="answer", answer_after=1, keys="11", first_key_after=20, key_delay=10,
                talk_time=None) if answers else Destination(mode="busy", answer_after=1))
            session.add(Ticket(number=f"K{i:05d}", status="replied", channel="phone",
                               caller_phone=phone, anonymous=False, ticket_type="complaint",
                               topic=None, title="kill", content="kill", lead_unit_id=unit.id,
                               created_at=replied, updated_at=replied, replied_at=replied))
    return phones


async def test_killed_again_and_again_no_revisit_is_dialed_twice_and_no_answer_is_lost(
        db_url: str, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path,
        services: list[subprocess.Popen[bytes]]) -> None:
    sounds = tmp_path / "sounds"
    sim = Simulator(port=0, time_scale=TIME_SCALE, seed=15, agi_host="127.0.0.1",
                    bad_login_delay=0.05, recordings_dir=tmp_path / "monitor",
                    sounds_dir=sounds, cdr_dir=tmp_path / "cdr")
    await sim.start()
    library = PromptLibrary(PromptCatalog(service_config().prompts_dir),
                            IvrConfig(sounds_dir=sounds))
    await library.in_worker(library.ensure, [(p, "zh") for p in PROMPTS], True)
    library.close()
    board = Switchboard()
    sim.add_listener(board.on_event)
    agi_port = free_port()
    sim.pbx.config.agi_port = agi_port
    env = {**os.environ, "KILL_TEST_DB": db_url, "KILL_TEST_AMI": str(sim.ami_port),
           "KILL_TEST_AGI": str(agi_port), "KILL_TEST_SOUNDS": str(sounds)}

    def spare() -> subprocess.Popen[bytes]:
        process = subprocess.Popen([sys.executable, "-m", "tests.revisit.test_kill_repeatedly"],
                                   cwd=REPO, env=env, start_new_session=True,
                                   stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        services.append(process)
        return process

    def go(process: subprocess.Popen[bytes]) -> subprocess.Popen[bytes]:
        assert process.stdin is not None and process.poll() is None
        process.stdin.write(b"go\n")
        process.stdin.flush()
        return process

    rng = random.Random(15)
    try:
        phones = await seed(sessionmaker, sim)
        kills = ["key_stored", "at_random", "key_pressed", "at_random", "at_random"]
        standby = [spare() for _ in range(len(kills) + 1)]
        process = go(standby.pop())
        for kind in kills:  # each kill is followed at once by a restart
            dialed = len(board.dials)
            await sim.wait_until(lambda n=dialed: len(board.dials) > n, TRIGGER_TIMEOUT)
            if kind == "at_random":  # claiming, dialing, ringing, surveying or writing
                await asyncio.sleep(rng.uniform(0.05, 1.5))
                kill(process)
            else:
                await asyncio.wait_for(board.arm(kind, process).wait(), TRIGGER_TIMEOUT)
            assert process.wait(10) == -signal.SIGKILL, kind
            process = go(standby.pop())
        results = await finished(sessionmaker, len(phones))
        kill(process)
        await sim.wait_idle(30)
    finally:
        await sim.stop()

    async with sessionmaker() as session:
        stored = (await session.execute(select(
            RevisitAttempt.revisit_id, RevisitAttempt.channel_id, RevisitAttempt.outcome))).all()
        tickets = dict((await session.execute(select(Ticket.caller_phone, Ticket.status))).all())
    attempts = [(revisit, channel) for revisit, channel, _ in stored]
    assert sorted(board.originated.values()) == [1] * len(board.originated)
    # every dial is a stored attempt; one stored by a claim whose service was killed before
    # its Originate is counted lost (nobody can tell whether the phone rang)
    assert set(board.originated) <= {channel for _, channel in attempts}
    assert {outcome for _, channel, outcome in stored if channel not in board.originated} <= {
        "lost"}
    assert set(board.most_at_once.values()) == {1}  # never two calls of one revisit
    assert board.peak <= LINES
    assert board.stored_at, "no kill came right after a stored key"
    for revisit, at in board.stored_at.items():  # an answer stored: never dialed again
        assert [d for d in board.dials[at:] if d[0] == revisit] == [], revisit
    assert {phone: result for _, phone, result in results} == {
        phone: "satisfied" if i < ANSWERING else "unreachable" for i, phone in enumerate(phones)}
    assert [tickets[p] for p in phones[:ANSWERING]] == ["archived"] * ANSWERING
    per_revisit = Counter(revisit for revisit, _ in attempts)
    assert max(per_revisit.values()) <= MAX_ATTEMPTS
    busy = [revisit for revisit, phone, _ in results if phone in phones[ANSWERING:]]
    assert [per_revisit[r] for r in busy] == [MAX_ATTEMPTS] * BUSY


async def finished(sessionmaker: async_sessionmaker[AsyncSession], count: int,
                   within: float = 60.0) -> list[tuple[int, str, str]]:
    """(revisit, phone, result) once every revisit is done. The database has no event to
    wait for, so it is polled."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + within
    while True:
        async with sessionmaker() as session:
            rows = (await session.execute(select(
                Revisit.id, Ticket.caller_phone, Revisit.state, Revisit.result).join(
                Ticket, Ticket.id == Revisit.ticket_id))).all()
        if len(rows) == count and all(state == "done" for _, _, state, _ in rows):
            return [(revisit, phone, result) for revisit, phone, _, result in rows]
        assert loop.time() < give_up, f"not finished: {rows}"
        await asyncio.sleep(0.2)


if __name__ == "__main__":
    sys.stdin.readline()  # the test's go
    asyncio.run(serve(os.environ["KILL_TEST_DB"], int(os.environ["KILL_TEST_AMI"]),
                      int(os.environ["KILL_TEST_AGI"]), Path(os.environ["KILL_TEST_SOUNDS"])))
