"""The Simulator: a PBX in Python with an AMI server, plus the API tests and the demo drive it.

sim = Simulator(SimulatorConfig(port=0, time_scale=0.01, seed=1))
await sim.start()
sim.add_agent("PJSIP/1001", Agent(answer_after=2), queues=["hotline"], login=True)
call = sim.place_call("13800138000", behaviour=Caller(talk_time=60))
await call.ended
await sim.stop()
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from callcenter.simulator import events as ev
from callcenter.simulator.actors import Agent, Caller, Destination
from callcenter.simulator.ami_server import DEFAULT_WRITETIMEOUT_MS, AmiServer, AmiUser
from callcenter.simulator.asterisk_conf import ast_true, parse_conf
from callcenter.simulator.atxfer import queue_atxfer
from callcenter.simulator.channels import RING, Channel
from callcenter.simulator.config import SimulatorConfig
from callcenter.simulator.events import EventHub
from callcenter.simulator.pbx import OriginateParams, Pbx
from callcenter.simulator.simclock import SimClock

log = logging.getLogger(__name__)


class CallHandle:
    """An inbound call placed by the scenario: its trunk channel and how it ended."""

    def __init__(self, sim: Simulator, chan: Channel) -> None:
        self.sim = sim
        self.channel = chan
        self.ended: asyncio.Future[None] = chan.ended

    @property
    def uniqueid(self) -> str:
        return self.channel.uniqueid

    @property
    def linkedid(self) -> str:
        return self.channel.linkedid

    @property
    def name(self) -> str:
        return self.channel.name

    @property
    def variables(self) -> dict[str, str]:
        return self.channel.vars

    def hangup(self) -> None:
        """The caller hangs up now."""
        self.sim.pbx.remote_hangup(self.channel)

    def press(self, digits: str) -> None:
        for i, digit in enumerate(digits):
            self.sim.clock.call_later(i * 0.25, self.sim.pbx.dtmf_received, self.channel, digit)

    async def wait_bridged(self, timeout: float = 10.0) -> None:
        """Wait (wall seconds) until the caller talks to an agent."""
        chan = self.channel
        await self.sim.wait_until(lambda: chan.bridge is not None or chan.dead, timeout)
        if chan.bridge is None:
            raise RuntimeError(f"{self.name} hung up before being connected")

    async def wait_queued(self, timeout: float = 10.0) -> None:
        """Wait (wall seconds) until the caller waits in a queue."""
        chan = self.channel
        await self.sim.wait_until(lambda: chan.queue_entry is not None or chan.dead, timeout)
        if chan.queue_entry is None:
            raise RuntimeError(f"{self.name} hung up before joining a queue")

    async def recording(self, timeout: float = 10.0) -> Path:
        """The MixMonitor file of this call once written."""
        return await self.sim.wait_recording(self.uniqueid, timeout)


class EventLog:
    """In-process copy of every event (name, text) for tests that do not need TCP."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def __call__(self, name: str, flag: int, text: str) -> None:
        self.events.append((name, text))

    def names(self) -> list[str]:
        return [n for n, _ in self.events]


class Simulator:
    def __init__(self, config: SimulatorConfig | None = None, **overrides: Any) -> None:
        if config is None:
            config = SimulatorConfig(**overrides)
        elif overrides:
            config = config.model_copy(update=overrides)
        self.config = config
        self.clock = SimClock(config.time_scale, config.start_time)
        self.rng = random.Random(config.seed)
        self.hub = EventHub(self.clock)
        self.pbx: Pbx | None = None  # type: ignore[assignment]
        self.ami: AmiServer | None = None
        self.ami_port = 0
        self.uptime_offset = 8.0
        self.started = False
        self.fully_booted = False  # ast_fully_booted: FullyBooted is sent at login only then
        self.ami_listening = asyncio.Event()  # set while the AMI port accepts connections

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        cfg = self.config
        users, timestampevents = self._load_manager(cfg.asterisk_config_dir / "manager.conf")
        if cfg.timestampevents is not None:
            timestampevents = cfg.timestampevents
        self.hub.timestampevents = timestampevents
        self._boot_pbx()
        for agent in cfg.agents:
            self.add_agent(
                agent.interface,
                Agent(
                    name=agent.name,
                    mode=agent.mode,
                    answer_after=agent.answer_after,
                    talk_time=agent.talk_time,
                    hangup_after_answer=agent.hangup_after_answer,
                    voice=agent.voice or "a01.wav",
                ),
                queues=agent.queues,
                login=agent.login,
                penalty=agent.penalty,
            )
        self.ami = AmiServer(self, users)
        self.ami_port = await self.ami.start(cfg.host, cfg.port)
        self.ami_listening.set()
        self.fully_booted = True
        self.started = True
        log.info(
            "simulator listening ami=%s:%s time_scale=%s", cfg.host, self.ami_port, cfg.time_scale
        )

    def _boot_pbx(self) -> None:
        """Load the dialplan, endpoints, queues and prompts from the config folder."""
        from callcenter.simulator.dialplan import load_dialplan

        cfg = self.config
        confdir = cfg.asterisk_config_dir
        dialplan = load_dialplan(confdir / "extensions.conf")
        self.pbx = Pbx(cfg, self.clock, self.hub, self.rng, dialplan)
        if cfg.system_name is None:
            self.pbx.system_name = _system_name(confdir / "asterisk.conf")
        self.pbx.cdr_events = _cdr_manager_enabled(confdir / "cdr_manager.conf")
        if _cdr_csv_enabled(confdir / "cdr.conf"):
            self.pbx.cdr.csv_path = self.cdr_csv_path
        self.pbx.atxfer_code = _atxfer_code(confdir / "features.conf")
        self.pbx.load_pjsip(confdir / "pjsip.conf")
        self.pbx.queues.load(confdir / "queues.conf")
        self._load_prompts()

    async def stop(self) -> None:
        self.ami_listening.clear()
        if self.ami is not None:
            await self.ami.stop()
        if self.pbx is not None:
            await self.pbx.shutdown()
        self.started = False

    async def restart(self, down_for: float = 0.5, boot_for: float = 0.1) -> None:
        """`core restart now`, as a client of Asterisk 22.10.1 sees it (simulated seconds).

        Every AMI client gets `Event: Shutdown` (Shutdown: Cleanly, Restart: True) and its
        socket is closed 20 ms later; connections are refused for `down_for`. Then the port
        accepts logins while Asterisk is still booting (no FullyBooted at login, the
        [globals] VarSets arrive), and `boot_for` later every client gets FullyBooted with
        Uptime 0. State is rebuilt from the config folder: calls that were up are gone,
        queues come from queues.conf, dynamic members are lost. Softphones stay registered
        (they register again) but agents must log in again. Returns once fully booted.
        """
        assert self.ami is not None and self.pbx is not None
        self.hub.emit("Shutdown", ev.SYSTEM, "Shutdown: Cleanly\r\nRestart: True\r\n")
        await self.clock.sleep(0.02)
        self.fully_booted = False
        self.ami_listening.clear()
        await self.ami.close_all()
        old = self.pbx
        await old.power_off()
        log.info("simulator restarting down_for=%s", down_for)
        await self.clock.sleep(down_for)
        self._boot_pbx()
        self.pbx.agents = old.agents
        self.pbx.destinations = old.destinations
        self.pbx.default_destination = old.default_destination
        for device in old.devices.registered:
            self.pbx.devices.set_registered(device, True)
        self.uptime_offset = 0.0
        await self.ami.start(self.config.host, self.ami_port)
        self.ami_listening.set()
        await self.clock.sleep(boot_for / 2)  # the manager is up before the modules load
        for name, value in self.pbx.globals.items():
            # pbx_config sets [globals] while loading: VarSet on no channel
            body = f"Channel: none\r\nUniqueid: none\r\nVariable: {name}\r\nValue: {value}\r\n"
            self.hub.emit("VarSet", ev.DIALPLAN, body)
        await self.clock.sleep(boot_for / 2)
        self.pbx.started_at = self.clock.now()
        self.fully_booted = True
        # asterisk.c at the end of startup: Status first, then Uptime/LastReload
        self.hub.emit(
            "FullyBooted", ev.SYSTEM, "Status: Fully Booted\r\nUptime: 0\r\nLastReload: 0\r\n"
        )
        log.info("simulator fully booted after restart port=%s", self.ami_port)

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _load_manager(self, path: Path) -> tuple[dict[str, AmiUser], bool]:
        users: dict[str, AmiUser] = {}
        timestampevents = False
        if path.exists():
            for sec in parse_conf(path):
                if sec.name.lower() == "general":
                    timestampevents = ast_true(sec.get("timestampevents"))
                    continue
                secret = sec.get("secret")
                if secret is None:
                    continue
                users[sec.name] = AmiUser(
                    sec.name,
                    secret,
                    ev.perms_from_string(",".join(sec.getall("read"))),
                    ev.perms_from_string(",".join(sec.getall("write"))),
                    _writetimeout(sec.get("writetimeout")),
                )
        for user in self.config.users:
            users[user.username] = AmiUser(
                user.username,
                user.secret.get_secret_value(),
                ev.perms_from_string(user.read),
                ev.perms_from_string(user.write),
                user.writetimeout,
            )
        return users, timestampevents

    def _load_prompts(self) -> None:
        """The sounds folder gets the stock prompts it lacks (see sounds.py)."""
        assert self.pbx is not None
        self.pbx.sounds.ensure_stock()

    # -- scenario API -----------------------------------------------------------------------
    def _require(self) -> Pbx:
        if self.pbx is None:
            raise RuntimeError("Simulator.start() first")
        return self.pbx

    def place_call(
        self,
        caller_number: str,
        exten: str = "12345",
        context: str = "from-pstn",
        behaviour: Caller | None = None,
        *,
        endpoint: str | None = None,
    ) -> CallHandle:
        """A call arrives on the trunk (PJSIP/trunk-xxxxxxxx) and enters the dialplan."""
        pbx = self._require()
        behaviour = behaviour or Caller()
        ep = endpoint or self.config.trunk
        chan = pbx.new_channel(
            "PJSIP",
            ep,
            state=RING,
            context=context,
            exten=exten,
            cid=(caller_number, behaviour.name),
        )
        chan.actor = behaviour
        chan.dnid = exten  # type: ignore[attr-defined]
        chan.set_var("SIPDOMAIN", self.config.sip_domain)
        pbx.start_pbx(chan, context, exten, 1)
        return CallHandle(self, chan)

    def place_calls(
        self,
        count: int,
        *,
        first_number: int = 13800000000,
        behaviour: Callable[[int], Caller] | None = None,
        exten: str = "12345",
        context: str = "from-pstn",
    ) -> list[CallHandle]:
        """`count` calls at once from consecutive numbers; behaviour(i) makes the i-th caller."""
        return [
            self.place_call(
                str(first_number + i),
                exten,
                context,
                behaviour(i) if behaviour is not None else None,
            )
            for i in range(count)
        ]

    async def advance(self, seconds: float) -> None:
        """Let `seconds` of simulated time pass (time_scale * seconds of wall time)."""
        await self.clock.sleep(seconds)

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait (wall seconds) until predicate() holds; checked again after every event, so
        nothing polls. TimeoutError when it does not happen in time."""
        if predicate():
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def check(name: str, flag: int, text: str) -> None:
            if not fut.done() and predicate():
                fut.set_result(None)

        self.hub.listeners.append(check)
        try:
            await asyncio.wait_for(fut, timeout)
        finally:
            self.hub.listeners.remove(check)

    def add_agent(
        self,
        interface: str,
        behaviour: Agent | None = None,
        *,
        queues: list[str] | None = None,
        login: bool = False,
        penalty: int = 0,
        name: str | None = None,
    ) -> Agent:
        """Register a softphone on `interface`; with login=True also QueueAdd it to `queues`."""
        pbx = self._require()
        behaviour = behaviour or Agent()
        if name:
            behaviour.name = name
        device = interface if "/" in interface else f"PJSIP/{interface}"
        pbx.agents[device] = behaviour
        pbx.devices.set_registered(device, True)
        if login:
            for queue in queues or ["hotline"]:
                pbx.queues.add_member(queue, device, behaviour.name or device, penalty)
        return behaviour

    def remove_agent(self, interface: str) -> None:
        pbx = self._require()
        device = interface if "/" in interface else f"PJSIP/{interface}"
        pbx.agents.pop(device, None)
        pbx.devices.set_registered(device, False)

    def set_agent(self, interface: str, behaviour: Agent) -> None:
        pbx = self._require()
        device = interface if "/" in interface else f"PJSIP/{interface}"
        pbx.agents[device] = behaviour

    def add_destination(self, number: str, behaviour: Destination) -> None:
        """How the far end of an outbound call to `number` behaves."""
        self._require().destinations[number] = behaviour

    def set_default_destination(self, behaviour: Destination) -> None:
        self._require().default_destination = behaviour

    def record_events(self) -> EventLog:
        log_ = EventLog()
        self.hub.listeners.append(log_)
        return log_

    def add_listener(self, callback: Callable[[str, int, str], None]) -> None:
        self.hub.listeners.append(callback)

    async def wait_idle(self, timeout: float = 30.0) -> None:
        """Wait (wall seconds) until no channel is left."""
        pbx = self._require()
        await asyncio.wait_for(pbx.idle.wait(), timeout)
        await asyncio.sleep(0)
        await pbx.recorder.flush()

    async def wait_recording(self, uniqueid: str, timeout: float = 10.0) -> Path:
        pbx = self._require()
        if uniqueid in pbx.recorder.finished:
            return pbx.recorder.finished[uniqueid]
        fut = pbx.recorder.waiters.get(uniqueid)
        if fut is None:
            fut = asyncio.get_running_loop().create_future()
            pbx.recorder.waiters[uniqueid] = fut
        return await asyncio.wait_for(asyncio.shield(fut), timeout)

    def drop_ami_connections(self) -> None:
        """Cut every AMI connection at once (as if Asterisk restarted the manager)."""
        if self.ami is not None:
            self.ami.drop_all()

    def refuse_logins(self, refuse: bool = True) -> None:
        if self.ami is not None:
            self.ami.refuse_logins = refuse

    @property
    def cdr_csv_path(self) -> Path:
        """Where cdr_csv writes (Asterisk: /var/log/asterisk/cdr-csv/Master.csv): the
        service back-fills calls made during an AMI outage from it. Columns: cdr.CSV_COLUMNS.
        Written only when cdr.conf has a [csv] section."""
        return self.config.cdr_dir / "Master.csv"

    @property
    def channels(self) -> list[Channel]:
        return list(self._require().channels.values())

    @property
    def queues(self) -> Any:
        return self._require().queues.queues

    # -- used by the AMI server -------------------------------------------------------------
    async def originate_async(self, params: OriginateParams, actionid: str) -> None:
        pbx = self._require()
        ok, reason, chan = await pbx.originate(params)
        body = f"ActionID: {actionid}\r\n" if actionid else ""
        body += f"Response: {'Success' if ok else 'Failure'}\r\n"
        # fast_originate(): a failed attempt leaves no channel, so the dial string and the
        # assigned ChannelId stand in for the name and Uniqueid
        body += f"Channel: {chan.name if ok and chan is not None else params.channel}\r\n"
        if params.application:
            body += f"Application: {params.application}\r\nData: {params.data}\r\n"
        else:
            body += f"Context: {params.context}\r\nExten: {params.exten}\r\n"
        uid = chan.uniqueid if ok and chan is not None else (params.channelid or "<unknown>")
        body += (
            f"Reason: {reason}\r\nUniqueid: {uid}\r\n"
            f"CallerIDNum: {params.cid[0] or '<unknown>'}\r\n"
            f"CallerIDName: {params.cid[1] or '<unknown>'}\r\n"
        )
        self.hub.emit("OriginateResponse", ev.CALL, body)
        if ok and chan is not None:
            pbx.after_originate(chan, params)

    def can_redirect(self, chan: Channel) -> bool:
        """Whether redirect() can move the channel (bridged, or running the dialplan)."""
        if chan.bridge is not None:
            return True
        return chan.in_pbx and chan.after_goto is None

    async def redirect(self, chan: Channel, context: str, exten: str, priority: int) -> bool:
        pbx = self._require()
        # ast_async_goto() does not look the extension up: a wrong target is "successful" and
        # the channel then hangs up in the PBX for want of an extension, as in Asterisk
        if chan.bridge is not None:
            pbx.redirect_bridged(chan, (context, exten, priority))
            return True
        if not chan.in_pbx or chan.after_goto is not None:
            # Asterisk would masquerade a channel without a PBX into a new one; not modelled
            return False
        pbx.async_goto(chan, (context, exten, priority))
        return True

    def reload(self, module: str | None) -> int:
        """ast_module_reload(): 0 (reloaded) or 2 (no such module among those modules.conf
        loads); ``res_pjsip.so`` reads pjsip.conf (and its includes) again. The ``Reload``
        event is published either way (main/loader.c)."""
        pbx = self._require()
        confdir = self.config.asterisk_config_dir
        name = (module or "").strip()
        base = name.removesuffix(".so")
        status = 0
        if name and base not in _loaded_modules(confdir / "modules.conf"):
            status = 2
        elif not name or base == "res_pjsip":
            pbx.reload_pjsip(confdir / "pjsip.conf")
        self.hub.emit("Reload", ev.SYSTEM, f"Module: {name or 'All'}\r\nStatus: {status}\r\n")
        return status

    def blind_transfer(self, chan: Channel, context: str, exten: str) -> str:
        """ast_bridge_transfer_blind() for a two-party bridge: ``Success``, ``Invalid``
        (not bridged) or ``Fail``; the ``BlindTransfer`` event is published either way.

        As captures/blind_transfer shows: ``Unhold`` on the transferer, ``BLINDTRANSFER`` on
        both, the event, app_queue's ``AgentComplete`` (Reason transfer); then the transferee
        leaves the bridge for the target, the transferer is hung up (cause 16)."""
        pbx = self._require()
        bridge = chan.bridge
        peer = bridge.peer_of(chan) if bridge is not None else None
        result = "Success" if peer is not None else ("Invalid" if bridge is None else "Fail")
        if result == "Success":
            assert bridge is not None and peer is not None
            chan.emit("Unhold", ev.CALL)
            chan.set_var("BLINDTRANSFER", peer.name)
            peer.set_var("BLINDTRANSFER", chan.name)
            chan.set_var("BRIDGEPEER", "")
        body = f"Result: {result}\r\n" + chan.snap("Transferer")
        if peer is not None:
            body += peer.snap("Transferee")
        if bridge is not None:
            body += bridge.block()
        pbx.hub.emit("BlindTransfer", ev.CALL,
                     body + f"IsExternal: Yes\r\nContext: {context}\r\nExtension: {exten}\r\n")
        if result != "Success":
            return result
        assert peer is not None
        if chan.blind_transferred is not None:
            chan.blind_transferred()
        pbx.redirect_bridged(peer, (context, exten, 1))
        return result

    def attended_transfer(self, chan: Channel, exten: str, context: str | None) -> None:
        """manager.c action_atxfer() once the checks passed: TRANSFER_CONTEXT (when given),
        then the atxfer code and the digits queued as DTMF on the transferer (atxfer.py)."""
        pbx = self._require()
        if context:
            chan.set_var("TRANSFER_CONTEXT", context)
        queue_atxfer(pbx, chan, pbx.atxfer_code, exten)

    async def redirect_pair(
        self,
        chan: Channel,
        target: tuple[str, str, int],
        chan2: Channel,
        target2: tuple[str, str, int],
    ) -> tuple[bool, bool]:
        """Dual Redirect: two channels bridged together leave the bridge together (both get
        an after-bridge goto, AST_FLAG_BRIDGE_DUAL_REDIRECT_WAIT); otherwise one by one."""
        pbx = self._require()
        if chan.bridge is not None and chan.bridge is chan2.bridge:
            chan2.after_goto = target2
            pbx.redirect_bridged(chan, target)
            return True, True
        if not await self.redirect(chan, *target):
            return False, False
        return True, await self.redirect(chan2, *target2)


def _system_name(path: Path) -> str:
    """asterisk.conf [options] systemname: it prefixes every Uniqueid when set."""
    if not path.exists():
        return ""
    for sec in parse_conf(path):
        if sec.name.lower() == "options":
            return (sec.get("systemname") or "").strip()
    return ""


def _atxfer_code(path: Path) -> str:
    """features.conf [featuremap] atxfer: the DTMF code of attended transfer. Asterisk's
    default is none (features_config.c), and AMI Atxfer then fails."""
    if not path.exists():
        return ""
    for sec in parse_conf(path):
        if sec.name.lower() == "featuremap":
            return (sec.get("atxfer") or "").strip()
    return ""


def _loaded_modules(path: Path) -> set[str]:
    """Module names (without ``.so``) modules.conf loads (``load``, ``preload``,
    ``require``, ``preload-require``)."""
    names: set[str] = set()
    if not path.exists():
        return names
    for section in parse_conf(path):
        for key, value in section.items:
            if key.lower() in ("load", "preload", "require", "preload-require"):
                names.add(value.strip().removesuffix(".so"))
    return names


def _cdr_manager_enabled(path: Path) -> bool:
    """cdr_manager.conf [general] enabled: without it Asterisk sends no Cdr events. A config
    folder without the file (an older rig) keeps them on."""
    if not path.exists():
        return True
    for sec in parse_conf(path):
        if sec.name.lower() == "general":
            return ast_true(sec.get("enabled"))
    return False


def _cdr_csv_enabled(path: Path) -> bool:
    """cdr_csv writes Master.csv when cdr.conf has its [csv] section."""
    return path.exists() and any(sec.name.lower() == "csv" for sec in parse_conf(path))


def _writetimeout(value: str | None) -> int:
    """manager.conf writetimeout (ms); like manager.c, values under 100 keep the default."""
    text = (value or "").strip()
    if not text.isdigit() or int(text) < DEFAULT_WRITETIMEOUT_MS:
        return DEFAULT_WRITETIMEOUT_MS
    return int(text)


async def run_simulator(config: SimulatorConfig, stop_event: asyncio.Event) -> None:
    """`callcenter simulate`: run the PBX until stop_event is set."""
    sim = Simulator(config)
    await sim.start()
    try:
        await stop_event.wait()
    finally:
        await sim.stop()
