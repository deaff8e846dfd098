"""Telephony + CallTracker against the Asterisk simulator over real TCP (AMI and FastAGI).

Durations are simulated seconds from the simulator's ``Timestamp`` headers. The ground truth
is the simulator's own record of each call (its event hub, read beside the AMI socket, so it
also covers the time our connection is cut): bridge and queue times per Linkedid. Under load a
caller's configured talk time is only a lower bound (the simulator's timers fire late when the
shared event loop is busy), so rows are compared with what the simulator really did.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.calls.models import CallLog
from callcenter.calls.tracker import CallTracker
from callcenter.clock import SystemClock
from callcenter.simulator.actors import Agent, Caller
from callcenter.simulator.scenario import CallHandle, Simulator
from callcenter.telephony import events as ev
from callcenter.telephony.agi import AgiSession
from callcenter.telephony.config import AgiConfig, AmiConfig
from callcenter.telephony.service import Telephony

TIME_SCALE = 0.1  # wall seconds per simulated second
PBX = "sim-a"
EXACT = 0.01  # simulated seconds (Timestamps have microseconds; rows keep milliseconds)


class Truth:
    """What the simulator did, per Linkedid, from its own event hub."""

    def __init__(self) -> None:
        self.talk_start: dict[str, float] = {}
        self.talk_end: dict[str, float] = {}
        self.joined: dict[str, float] = {}
        self.abandoned: dict[str, float] = {}
        self.rung: dict[str, float] = {}

    def __call__(self, name: str, flag: int, text: str) -> None:
        if name not in ("BridgeEnter", "BridgeLeave", "QueueCallerJoin", "QueueCallerAbandon",
                        "AgentCalled"):
            return
        f = dict(line.split(": ", 1) for line in text.split("\r\n") if ": " in line)
        linkedid, at = f["Linkedid"], float(f["Timestamp"])
        if name == "BridgeEnter" and f["BridgeNumChannels"] == "2":
            self.talk_start.setdefault(linkedid, at)
        elif name == "BridgeLeave":
            self.talk_end.setdefault(linkedid, at)
        elif name == "QueueCallerJoin":
            self.joined[linkedid] = at
        elif name == "AgentCalled":
            self.rung[linkedid] = at  # the last ring before the bridge is the answered one
        else:
            self.abandoned[linkedid] = at

    def talk(self, linkedid: str) -> float:
        return self.talk_end[linkedid] - self.talk_start[linkedid]

    def ring(self, linkedid: str) -> float:
        """How long the answering agent's channel rang before the bridge (simulated s)."""
        return self.talk_start[linkedid] - self.rung[linkedid]

    def wait(self, linkedid: str) -> float:
        return self.abandoned[linkedid] - self.joined[linkedid]


class Seen:
    """Domain events as the service delivers them; wait on conditions, never sleep."""

    def __init__(self) -> None:
        self.items: list[ev.DomainEvent] = []
        self._changed = asyncio.Event()

    def __call__(self, event: ev.DomainEvent) -> None:
        self.items.append(event)
        self._changed.set()

    def count(self, kind: type) -> int:
        return sum(1 for e in self.items if isinstance(e, kind))

    async def wait_for(self, predicate, timeout: float = 30.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()


@dataclass
class Rig:
    sim: Simulator
    telephony: Telephony
    tracker: CallTracker
    sessionmaker: async_sessionmaker[AsyncSession]
    seen: Seen
    truth: Truth

    async def rows(self) -> dict[str, CallLog]:
        await self.tracker.flush()
        async with self.sessionmaker() as session:
            rows = list((await session.execute(select(CallLog))).scalars())
        return {row.linkedid: row for row in rows}


def ami_config(port: int) -> AmiConfig:
    return AmiConfig(port=port, username="callcenter", secret=SecretStr("CHANGE_ME"),
                     reconnect_min=0.05, reconnect_max=0.2, action_timeout=5, pbx=PBX)


async def ivr(session: AgiSession) -> None:
    """The hotline's IVR script as the dialplan calls it: greet, take one key."""
    await session.answer()
    choice = await session.get_data("beep", 3000, 1)
    await session.set_variable("IVR_CHOICE", choice or "")
    await session.set_variable("IVR_PATH", f"menu:{choice}")


async def survey(session: AgiSession) -> None:
    """A survey question nobody answers: three seconds of waiting for a key."""
    await session.get_data("beep", 3000, 1)


async def build_rig(sessionmaker: async_sessionmaker[AsyncSession], folder: Path,
                    pbx: str = PBX) -> Rig:
    """A simulated Asterisk (named ``pbx``) with its own telephony service and tracker."""
    clock = SystemClock()
    tracker = CallTracker(sessionmaker, clock, pbx=pbx, flush_interval=0.1)
    await tracker.start()
    seen = Seen()
    # the AGI server must listen before the simulator learns its port
    telephony = Telephony(AmiConfig(port=1), AgiConfig(port=0), None, clock)
    telephony.agi.route("ivr", ivr)
    await telephony.agi.start()
    sim = Simulator(port=0, time_scale=TIME_SCALE, seed=7, agi_host="127.0.0.1",
                    agi_port=telephony.agi.port, bad_login_delay=0.05,
                    recordings_dir=folder / "recordings", cdr_dir=folder / "cdr")
    await sim.start()
    truth = Truth()
    sim.add_listener(truth)
    await telephony.agi.stop()
    telephony = Telephony(
        ami_config(sim.ami_port).model_copy(update={"pbx": pbx}),
        AgiConfig(port=telephony.agi.config.port), None, clock)
    return Rig(sim, telephony, tracker, sessionmaker, seen, truth)


async def close_rig(rig: Rig) -> None:
    await rig.telephony.stop()  # the test may have replaced them (a restart)
    await rig.tracker.stop()
    await rig.sim.stop()


@pytest.fixture
async def rig(sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path
              ) -> AsyncIterator[Rig]:
    built = await build_rig(sessionmaker, tmp_path)
    try:
        yield built
    finally:
        await close_rig(built)


async def start_service(rig: Rig, agi_port: int) -> None:
    rig.telephony.agi.config = AgiConfig(host="127.0.0.1", port=agi_port)
    rig.telephony.agi.route("ivr", ivr)
    rig.telephony.add_listener(rig.tracker)
    rig.telephony.add_listener(rig.seen)
    await rig.telephony.start()
    await rig.seen.wait_for(lambda: rig.seen.count(ev.QueuesSnapshot) >= 1)


def add_agents(sim: Simulator, count: int, first: int = 2000) -> None:
    for n in range(count):
        sim.add_agent(f"PJSIP/{first + n}", Agent(name=f"Agent {first + n}", answer_after=1.0),
                      queues=["hotline"], login=True)


def place(sim: Simulator, count: int, start: int, **caller: object) -> list[CallHandle]:
    return [sim.place_call(f"1380000{start + n:04d}", behaviour=Caller(keys="1", **caller))
            for n in range(count)]


async def ended(calls: list[CallHandle], timeout: float = 60.0) -> None:
    await asyncio.wait_for(asyncio.gather(*(c.ended for c in calls)), timeout)


async def test_hundred_concurrent_calls_give_hundred_rows(rig: Rig) -> None:
    await start_service(rig, rig.sim.config.agi_port)
    add_agents(rig.sim, 70)
    talkers = place(rig.sim, 70, 0, talk_time=10.0)
    await asyncio.wait_for(asyncio.gather(*(c.wait_bridged(30) for c in talkers)), 30)
    # every agent is busy now: these callers give up after 3 s in the queue
    quitters = place(rig.sim, 30, 100, patience=3.0, talk_time=10.0)
    await ended(talkers + quitters)
    await rig.sim.wait_idle(30)
    await rig.seen.wait_for(lambda: rig.tracker.live_calls == 0)
    rows = await rig.rows()
    assert len(rows) == 100
    for call in talkers:
        row = rows[call.linkedid]
        assert row.disposition == "answered", row.linkedid
        assert row.talk_seconds == pytest.approx(rig.truth.talk(call.linkedid), abs=EXACT)
        assert row.talk_seconds >= 10.0 - EXACT
        assert row.agent_name is not None and row.agent_name.startswith("Agent ")
        assert row.queue == "hotline" and row.direction == "inbound"
        assert row.caller_number == call.channel.cid_num
        assert row.ivr_path == "agi:ivr>keys:1>menu:1"
        assert row.recording_file and row.recording_file.endswith(".wav")
    for call in quitters:
        row = rows[call.linkedid]
        assert row.disposition == "abandoned", row.linkedid
        assert row.wait_seconds == pytest.approx(rig.truth.wait(call.linkedid), abs=EXACT)
        assert row.wait_seconds >= 3.0 - EXACT
        assert row.talk_seconds == 0 and row.agent_name is None and row.answered_at is None
    assert all(row.end_estimated is False for row in rows.values())


async def test_ami_cut_mid_calls_reconnects_without_duplicates_or_losses(rig: Rig) -> None:
    await start_service(rig, rig.sim.config.agi_port)
    add_agents(rig.sim, 60)
    short = place(rig.sim, 20, 0, talk_time=4.0)
    long = place(rig.sim, 20, 100, talk_time=20.0)
    await asyncio.wait_for(asyncio.gather(*(c.wait_bridged(30) for c in short + long)), 30)
    # Asterisk's manager goes away and refuses logins for a while
    rig.sim.refuse_logins(True)
    rig.sim.drop_ami_connections()
    await rig.seen.wait_for(lambda: rig.seen.count(ev.AmiDisconnected) == 1)
    await ended(short)  # these calls end while we are blind
    newcomers = place(rig.sim, 10, 200, talk_time=20.0)  # and these start meanwhile
    await asyncio.wait_for(asyncio.gather(*(c.wait_bridged(30) for c in newcomers)), 30)
    rig.sim.refuse_logins(False)
    await rig.seen.wait_for(lambda: rig.seen.count(ev.QueuesSnapshot) >= 2)
    assert rig.tracker.live_calls == 30  # 20 long + 10 picked up; the short ones closed
    await ended(long + newcomers)
    await rig.sim.wait_idle(30)
    await rig.seen.wait_for(lambda: rig.tracker.live_calls == 0)
    rows = await rig.rows()
    assert len(rows) == 50
    assert set(rows) == {c.linkedid for c in short + long + newcomers}
    for call in short:
        row = rows[call.linkedid]
        assert row.disposition == "answered" and row.end_estimated is True
        # the end is only known at the resync, after the real end
        assert row.talk_seconds >= rig.truth.talk(call.linkedid) - EXACT
    for call in long:
        row = rows[call.linkedid]
        assert row.disposition == "answered" and row.end_estimated is False
        # bridged before the cut, hung up after the reconnect: exact across the outage
        assert row.talk_seconds == pytest.approx(rig.truth.talk(call.linkedid), abs=EXACT)
        assert row.ivr_path == "agi:ivr>keys:1>menu:1"
    for call in newcomers:
        row = rows[call.linkedid]
        assert row.disposition == "answered" and row.end_estimated is False
        assert row.caller_number is not None and row.caller_number.startswith("1380000")
        # picked up by the resync while talking: the answer is estimated from the youngest
        # bridged channel's age, in whole seconds (so up to 1 s short), and that channel,
        # the agent's, also lived through its ringing (so up to its ring time long)
        assert row.answer_estimated is True and row.start_estimated is True
        truth, ring = rig.truth.talk(call.linkedid), rig.truth.ring(call.linkedid)
        assert truth + ring - 1.0 - EXACT <= row.talk_seconds <= truth + ring + EXACT


async def test_originate_outcomes_and_outbound_rows(rig: Rig) -> None:
    from callcenter.simulator.actors import Destination

    await start_service(rig, rig.sim.config.agi_port)
    rig.sim.add_destination("13800138001", Destination(mode="answer", answer_after=1.0,
                                                       talk_time=5.0))
    rig.sim.add_destination("13800138002", Destination(mode="busy"))
    commands = rig.telephony.commands
    answered = await commands.originate("PJSIP/trunk/13800138001", application="Playback",
                                        data="hello-world", caller_id="12345 <12345>")
    busy = await commands.originate("PJSIP/trunk/13800138002", application="Playback",
                                    data="hello-world", caller_id="12345 <12345>")
    assert (answered.outcome, busy.outcome) == ("answered", "busy")
    await rig.sim.wait_idle(30)
    await rig.seen.wait_for(lambda: rig.tracker.live_calls == 0)
    rows = await rig.rows()
    assert {row.disposition for row in rows.values()} == {"answered", "busy"}
    assert all(row.direction == "outbound" for row in rows.values())
    assert {row.called_number for row in rows.values()} == {"13800138001", "13800138002"}


async def _foreign_open_row(rig: Rig) -> None:
    """An open row of another Asterisk sharing the database: never ours to close."""
    async with rig.sessionmaker() as session, session.begin():
        session.add(CallLog(linkedid="other-pbx-1.1", pbx="sim-b", direction="inbound",
                            started_at=datetime.now(UTC), wait_seconds=0, talk_seconds=0,
                            end_estimated=False))


async def test_restart_closes_calls_that_ended_meanwhile_and_adopts_live_ones(
        rig: Rig) -> None:
    await _foreign_open_row(rig)
    await start_service(rig, rig.sim.config.agi_port)
    add_agents(rig.sim, 20)
    short = place(rig.sim, 10, 0, talk_time=3.0)
    long = place(rig.sim, 10, 100, talk_time=25.0)
    await asyncio.wait_for(asyncio.gather(*(c.wait_bridged(30) for c in short + long)), 30)
    quitters = place(rig.sim, 5, 200, patience=4.0)  # every agent is busy: they wait
    await asyncio.wait_for(asyncio.gather(*(c.wait_queued(30) for c in quitters)), 30)
    # the service stops mid-calls (a deploy): the live calls are saved as open rows
    await rig.telephony.stop()
    await rig.tracker.stop()
    stopped_at = max(e.at for e in rig.seen.items if isinstance(e, ev.ChannelEvent))
    await ended(short + quitters)  # these end while no service listens
    # a fresh process: new Telephony and CallTracker on the same database
    rig.tracker = CallTracker(rig.sessionmaker, SystemClock(), pbx=PBX, flush_interval=0.1)
    await rig.tracker.start()
    assert rig.tracker.open_rows_pending == 25
    rig.telephony = Telephony(ami_config(rig.sim.ami_port), AgiConfig(port=0), None,
                              SystemClock())
    rig.seen = Seen()
    await start_service(rig, rig.sim.config.agi_port)
    resync = next(e for e in rig.seen.items if isinstance(e, ev.ChannelsSnapshot))
    assert rig.tracker.live_calls == 10 and rig.tracker.open_rows_pending == 0
    rows = await rig.rows()
    assert len(rows) == 26
    for call in short:
        row = rows[call.linkedid]
        assert row.disposition == "answered" and row.end_estimated is True, row.linkedid
        assert row.ended_at is not None and row.agent_name is not None
        assert 0 < row.talk_seconds <= rig.truth.talk(call.linkedid) + EXACT
    for call in quitters:
        row = rows[call.linkedid]
        assert row.disposition == "abandoned" and row.end_estimated is True, row.linkedid
        assert row.answered_at is None and row.queue == "hotline"
    for call in long:
        assert rows[call.linkedid].ended_at is None  # live: adopted, still open
    # the live calls go on in the same rows
    await ended(long)
    await rig.sim.wait_idle(30)
    await rig.seen.wait_for(lambda: rig.tracker.live_calls == 0)
    rows = await rig.rows()
    assert len(rows) == 26
    gap = (resync.at - stopped_at).total_seconds()  # talk nobody saw
    for call in long:
        row = rows[call.linkedid]
        assert row.disposition == "answered" and row.end_estimated is False, row.linkedid
        assert row.ivr_path == "agi:ivr>keys:1>menu:1" and row.agent_name is not None
        truth = rig.truth.talk(call.linkedid)
        assert truth - gap - EXACT <= row.talk_seconds <= truth + EXACT
    other = rows["other-pbx-1.1"]
    assert other.ended_at is None and other.disposition is None  # sim-b's row untouched


async def test_calls_made_while_ami_was_down_are_backfilled_from_the_cdr_file(
        rig: Rig) -> None:
    """Needs the simulator's Master.csv (callcenter/simulator/cdr.py)."""
    from callcenter.calls.backfill import CdrBackfill, backfill_from_cdr
    from callcenter.calls.config import CallsConfig

    config = CallsConfig(cdr_csv=rig.sim.cdr_csv_path)
    backfill = CdrBackfill(rig.sessionmaker, config, pbx=PBX)
    rig.telephony.add_listener(backfill)
    await start_service(rig, rig.sim.config.agi_port)
    add_agents(rig.sim, 3)
    before = place(rig.sim, 2, 0, talk_time=3.0)  # seen live
    await ended(before)
    rig.sim.refuse_logins(True)
    rig.sim.drop_ami_connections()
    await rig.seen.wait_for(lambda: rig.seen.count(ev.AmiDisconnected) == 1)
    blind = place(rig.sim, 3, 100, talk_time=4.0)  # begin and end while we are blind
    await ended(blind)
    rig.sim.refuse_logins(False)
    await rig.seen.wait_for(lambda: rig.seen.count(ev.QueuesSnapshot) >= 2)
    await backfill.wait_idle()
    rows = await rig.rows()
    assert set(rows) == {c.linkedid for c in before + blind}
    assert backfill.added == 3
    for call in blind:
        row = rows[call.linkedid]
        assert row.backfilled is True and row.disposition == "answered", row.linkedid
        assert (row.direction, row.queue) == ("inbound", "hotline")
        assert row.caller_number == call.channel.cid_num
        # CDR billsec runs from the dialplan's Answer: it covers the IVR and the queue too
        assert row.answer_estimated is True
        span = (row.ended_at - row.started_at).total_seconds()
        assert rig.truth.talk(call.linkedid) - 1.0 <= row.talk_seconds <= span
    for call in before:
        assert rows[call.linkedid].backfilled is False  # seen live: never replaced
    # a second run (another reconnect, a restart) adds nothing
    assert await backfill_from_cdr(rig.sessionmaker, rig.sim.cdr_csv_path, pbx=PBX,
                                   config=config) == 0


async def test_two_servers_share_one_database_and_keep_their_own_calls(
        rig: Rig, tmp_path: Path) -> None:
    """Two simulated Asterisks share one database: each row carries its server, and neither
    tracker closes the other's calls. (Servers started in the same second number their
    calls alike; that a reused Linkedid stays two rows is pinned in tests/calls/test_truth.)"""
    other = await build_rig(rig.sessionmaker, tmp_path / "b", pbx="sim-b")
    try:
        for each in (rig, other):
            await start_service(each, each.sim.config.agi_port)
            add_agents(each.sim, 2)
        mine = place(rig.sim, 2, 0, talk_time=2.0)
        theirs = place(other.sim, 2, 0, talk_time=30.0)  # still talking at the check
        await ended(mine)
        await asyncio.wait_for(asyncio.gather(*(c.wait_bridged(30) for c in theirs)), 30)
        await rig.seen.wait_for(lambda: rig.tracker.live_calls == 0)
        # this server reconnects: its resync sees none of sim-b's live calls
        rig.sim.drop_ami_connections()
        await rig.seen.wait_for(lambda: rig.seen.count(ev.QueuesSnapshot) >= 2)
        await other.tracker.flush()
        await rig.tracker.flush()
        async with rig.sessionmaker() as session:
            rows = list((await session.execute(select(CallLog))).scalars())
        by_server = {(row.pbx, row.linkedid): row for row in rows}
        assert len(rows) == 4
        assert {lid for pbx, lid in by_server if pbx == PBX} == {c.linkedid for c in mine}
        assert {lid for pbx, lid in by_server if pbx == "sim-b"} == \
            {c.linkedid for c in theirs}
        for call in theirs:
            row = by_server[("sim-b", call.linkedid)]
            assert row.ended_at is None and row.disposition is None  # not closed by sim-a
        for call in mine:
            assert by_server[(PBX, call.linkedid)].disposition == "answered"
    finally:
        await close_rig(other)


async def test_asterisk_restart_mid_call_leaves_one_closed_row_per_call(rig: Rig) -> None:
    """``core restart now`` while two calls talk: the service hears ``Shutdown``, logs in
    again once Asterisk has booted, and its resync finds the calls gone. Each call keeps
    exactly one row, closed at the restart (estimated: its hang-up was never sent); a call
    after the restart gets a row of its own."""
    await start_service(rig, rig.sim.config.agi_port)
    add_agents(rig.sim, 2)
    talking = place(rig.sim, 2, 0, talk_time=120.0)
    await asyncio.wait_for(asyncio.gather(*(c.wait_bridged(30) for c in talking)), 30)
    before = rig.tracker.live_calls
    await rig.sim.restart(down_for=0.5, boot_for=0.1)
    await rig.seen.wait_for(lambda: rig.seen.count(ev.QueuesSnapshot) >= 2)
    await rig.seen.wait_for(lambda: rig.tracker.live_calls == 0)
    rows = await rig.rows()
    assert before == 2 and set(rows) == {c.linkedid for c in talking}
    shutdown_at = next(e.at for e in rig.seen.items if isinstance(e, ev.AmiDisconnected))
    resync_at = [e.at for e in rig.seen.items if isinstance(e, ev.ChannelsSnapshot)][-1]
    for call in talking:
        row = rows[call.linkedid]
        assert row.disposition == "answered" and row.end_estimated is True, row.linkedid
        assert row.agent_name is not None and row.answered_at is not None
        ended_at = row.ended_at.replace(tzinfo=row.ended_at.tzinfo or UTC)  # SQLite: naive
        assert shutdown_at - timedelta(seconds=1) <= ended_at <= resync_at
    # agents log in again after the restart (dynamic members are lost), calls go on
    add_agents(rig.sim, 1, first=3000)
    (after,) = place(rig.sim, 1, 300, talk_time=1.0)
    await ended([after])
    await rig.seen.wait_for(lambda: rig.tracker.live_calls == 0)
    rows = await rig.rows()
    assert len(rows) == 3 and rows[after.linkedid].disposition == "answered"
    assert rows[after.linkedid].end_estimated is False


async def test_a_redirect_and_an_ami_hangup_of_the_agent_keep_one_answered_row_each(
        rig: Rig) -> None:
    """A supervisor redirects one caller out of the conversation (to the survey context) and
    hangs up another call's agent over AMI: both calls stay answered by their agent, with the
    talk the bridge had (the redirected caller's time in the survey is not talk with an
    agent), in exactly one row each."""
    await start_service(rig, rig.sim.config.agi_port)
    add_agents(rig.sim, 2)
    redirected, dropped = place(rig.sim, 2, 0, talk_time=60.0)
    await asyncio.wait_for(asyncio.gather(redirected.wait_bridged(30),
                                          dropped.wait_bridged(30)), 30)
    agent_leg = next(e.channel for e in rig.seen.items if isinstance(e, ev.BridgeEntered)
                     and e.linkedid == dropped.linkedid and e.uniqueid != dropped.uniqueid)
    rig.telephony.agi.route("revisit", survey)  # the redirected caller spends 3 s there
    await rig.telephony.commands.redirect(redirected.name, "revisit", "s")
    await rig.telephony.commands.hangup(agent_leg)
    await ended([redirected, dropped])
    await rig.seen.wait_for(lambda: rig.tracker.live_calls == 0)
    rows = await rig.rows()
    assert set(rows) == {redirected.linkedid, dropped.linkedid}
    for call in (redirected, dropped):
        row = rows[call.linkedid]
        assert row.disposition == "answered" and row.agent_name is not None, row.linkedid
        assert row.queue_outcome == "answered" and row.end_estimated is False
        assert abs(row.talk_seconds - rig.truth.talk(call.linkedid)) <= EXACT
    assert rows[dropped.linkedid].hangup_cause == 16  # Asterisk hangs the caller up too
