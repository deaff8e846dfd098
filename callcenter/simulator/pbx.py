"""The simulated PBX: channels, dialplan execution, dialing, Originate, DTMF, MixMonitor, CDRs.

Event order per channel follows the real captures in shared/asterisk/captures (Asterisk
22.10.1); where no capture exists it follows the Asterisk 22 source (main/pbx.c, apps/*.c).
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from callcenter.simulator import events as ev
from callcenter.simulator.actors import Agent, Caller, Destination
from callcenter.simulator.asterisk_conf import ConfError, ConfSection, parse_conf
from callcenter.simulator.bridges import Bridge
from callcenter.simulator.cdr import CdrEngine
from callcenter.simulator.channels import (
    ANSWERED_ELSEWHERE,
    CONGESTION,
    DOWN,
    NO_ANSWER,
    NORMAL_CLEARING,
    RING,
    RINGING,
    UP,
    USER_BUSY,
    Channel,
    cause_text,
)
from callcenter.simulator.config import SimulatorConfig
from callcenter.simulator.devices import Devices
from callcenter.simulator.events import EventHub
from callcenter.simulator.recording import Recorder
from callcenter.simulator.simclock import SimClock
from callcenter.simulator.sounds import Sounds

log = logging.getLogger(__name__)

APP_CONTINUE = 0
APP_HANGUP = -1


class Jump(Exception):
    """Raised by Goto-like applications: continue at (context, exten, priority)."""

    def __init__(self, context: str, exten: str, priority: int) -> None:
        super().__init__(context, exten, priority)
        self.target = (context, exten, priority)


@dataclass
class DialResult:
    status: str  # ANSWER BUSY CONGESTION NOANSWER CANCEL CHANUNAVAIL HANGUP
    ringing: bool = False


class ChannelVars(Mapping[str, str]):
    """Variables as ${...} sees them: channel variables, built-ins, then [globals]."""

    def __init__(self, pbx: Pbx, chan: Channel) -> None:
        self.pbx = pbx
        self.chan = chan

    def __getitem__(self, key: str) -> str:
        c = self.chan
        if key in c.vars:
            return c.vars[key]
        builtin = {
            "EXTEN": lambda: c.exten,
            "CONTEXT": lambda: c.context,
            "PRIORITY": lambda: str(c.priority),
            "UNIQUEID": lambda: c.uniqueid,
            "CHANNEL": lambda: c.name,
            "LINKEDID": lambda: c.linkedid,
            "CALLERID(num)": lambda: c.cid_num,
            "CALLERIDNUM": lambda: c.cid_num,
            "CALLERIDNAME": lambda: c.cid_name,
            "EPOCH": lambda: str(int(self.pbx.clock.now())),
            "LANGUAGE": lambda: c.language,
        }.get(key)
        if builtin is not None:
            return builtin()
        if key in self.pbx.globals:
            return self.pbx.globals[key]
        raise KeyError(key)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.chan.vars)

    def __len__(self) -> int:
        return len(self.chan.vars)


def parse_callerid(text: str) -> tuple[str, str]:
    """ast_callerid_parse(): '"Name" <num>' / 'Name <num>' / 'num' → (num, name)."""
    text = (text or "").strip()
    if not text:
        return "", ""
    m = re.match(r'^\s*"?([^"<]*?)"?\s*<([^>]*)>\s*$', text)
    if m:
        return m.group(2).strip(), m.group(1).strip()
    if re.fullmatch(r"[0-9+*#()\- .]+", text):
        return re.sub(r"[()\- .]", "", text), ""
    return "", text


@dataclass
class Endpoint:
    name: str
    context: str


class Pbx:
    def __init__(
        self,
        config: SimulatorConfig,
        clock: SimClock,
        hub: EventHub,
        rng: random.Random,
        dialplan: Any,
    ) -> None:
        self.config = config
        self.clock = clock
        self.hub = hub
        self.rng = rng
        self.dialplan = dialplan
        self.globals: dict[str, str] = dict(getattr(dialplan, "globals", {}) or {})
        self.channels: dict[str, Channel] = {}
        self.by_uniqueid: dict[str, Channel] = {}
        self.bridges: dict[str, Bridge] = {}
        self.devices = Devices(self)
        from callcenter.simulator.queues import QueueManager

        self.queues = QueueManager(self)
        self.recorder = Recorder(self)
        self.endpoints: dict[str, Endpoint] = {}
        self.agents: dict[str, Agent] = {}  # device (PJSIP/1001) → behaviour
        self.destinations: dict[str, Destination] = {}
        self.default_destination = Destination()
        self.system_name = config.system_name or ""  # asterisk.conf [options] systemname
        self.cdr_events = True  # cdr_manager.conf [general] enabled
        self.cdr = CdrEngine(self, None)  # Master.csv path set by the loader (cdr.conf [csv])
        hub.tap = self.cdr.observe
        self._uniq = 0
        self.processed_calls = 0  # ast_processed_calls(): PBX runs started since boot
        self.local_optimizations = 0  # the Id of LocalOptimizationBegin/End
        self.atxfer_code = ""  # features.conf [featuremap] atxfer (Asterisk's default: none)
        self._tech_counters: dict[str, int] = {}
        self.tasks: set[asyncio.Task[Any]] = set()
        self.started_at = clock.now()
        self.idle = asyncio.Event()
        self.idle.set()
        self.sounds = Sounds(config.sounds_dir)
        self.functions: dict[str, Callable[[str], str]] = {}

    # -- configuration ----------------------------------------------------------------------
    def load_pjsip(self, path: Path) -> None:
        if not path.exists():
            return
        sections: list[ConfSection] = parse_conf(path)
        for sec in sections:
            if (sec.get("type") or "").strip() == "endpoint":
                self.endpoints[sec.name] = Endpoint(sec.name, sec.get("context") or "default")

    def reload_pjsip(self, path: Path) -> None:
        """``pjsip reload``: the endpoints as the files say now; a file that does not parse
        leaves the loaded ones in place, as res_pjsip keeps its objects."""
        old = self.endpoints
        self.endpoints = {}
        try:
            self.load_pjsip(path)
        except ConfError as exc:
            log.error("sim.pjsip_reload_failed error=%s", exc)
            self.endpoints = old

    # -- ids --------------------------------------------------------------------------------
    def new_uniqueid(self) -> str:
        uid = f"{int(self.clock.now())}.{self._uniq}"
        self._uniq += 1
        if self.system_name:
            uid = f"{self.system_name}-{uid}"
        return uid

    def _next(self, tech: str) -> int:
        n = self._tech_counters.get(tech, 0)
        self._tech_counters[tech] = n + 1
        return n

    # -- channel lifecycle ------------------------------------------------------------------
    def _register(self, chan: Channel) -> None:
        self.channels[chan.name] = chan
        self.by_uniqueid[chan.uniqueid] = chan
        self.devices.add_channel(chan)
        self.idle.clear()

    def new_channel(
        self,
        tech: str,
        resource: str,
        *,
        state: int,
        context: str,
        exten: str,
        linkedid: str | None = None,
        uniqueid: str | None = None,
        cid: tuple[str, str] = ("", ""),
        emit: bool = True,
    ) -> Channel:
        n = self._next(tech)
        name = f"{tech}/{resource}-{n:08x}"
        uid = uniqueid or self.new_uniqueid()
        device = f"{tech}/{resource.split('/')[0]}"
        chan = Channel(
            self,
            name,
            uid,
            linkedid or uid,
            tech=tech,
            device=device,
            state=state,
            context=context,
            exten=exten,
            cid_num=cid[0],
            cid_name=cid[1],
        )
        self._register(chan)
        if emit:
            chan.emit("Newchannel", ev.CALL)
        return chan

    def new_local_pair(
        self,
        exten: str,
        context: str,
        *,
        linkedid: str | None = None,
        uniqueid: str | None = None,
        uniqueid2: str | None = None,
    ) -> tuple[Channel, Channel]:
        n = self._next("Local")
        base = f"Local/{exten}@{context}-{n:08x}"
        uid1 = uniqueid or self.new_uniqueid()
        # core_unreal: a caller-assigned Uniqueid without a second one gives ";2" its own
        uid2 = uniqueid2 or (f"{uniqueid};2" if uniqueid else self.new_uniqueid())
        link = linkedid or uid1
        device = f"Local/{exten}@{context}"
        one = Channel(
            self,
            base + ";1",
            uid1,
            link,
            tech="Local",
            device=device,
            state=DOWN,
            context=context,
            exten=exten,
        )
        two = Channel(
            self,
            base + ";2",
            uid2,
            link,
            tech="Local",
            device=device,
            state=RING,
            context=context,
            exten=exten,
        )
        one.local_half, two.local_half = 1, 2
        one.local_peer, two.local_peer = two, one
        self._register(one)
        self._register(two)
        one.emit("Newchannel", ev.CALL)
        two.emit("Newchannel", ev.CALL)
        return one, two

    def local_bridge_event(self, one: Channel, two: Channel) -> None:
        body = (
            one.snap("LocalOne")
            + two.snap("LocalTwo")
            + f"Context: {two.context}\r\nExten: {two.exten}\r\nLocalOptimization: Yes\r\n"
        )
        self.hub.emit("LocalBridge", ev.CALL, body)

    def destroy(self, chan: Channel, cause: int | None = None) -> None:
        """ast_hangup(): the Hangup event, the CDR, device state; Local peers get a request."""
        if chan.dead:
            return
        if cause is not None and not chan.cause_set:
            chan.hangup_cause = cause
            chan.cause_set = True
        if chan.bridge is not None:
            self.leave_bridge(chan)
        self.recorder.channel_gone(chan)
        chan.softhangup = True
        chan.hangup_event.set()
        # the CDR engine (cdr.py) posts the channel's records on this Hangup
        chan.emit(
            "Hangup",
            ev.CALL,
            f"Cause: {chan.hangup_cause}\r\nCause-txt: {cause_text(chan.hangup_cause)}\r\n",
        )
        chan.dead = True
        chan.touch()
        self.channels.pop(chan.name, None)
        self.by_uniqueid.pop(chan.uniqueid, None)
        self.devices.remove_channel(chan)
        if chan.local_peer is not None and not chan.local_peer.dead:
            chan.local_peer.request_hangup(chan.hangup_cause)
        if not chan.ended.done():
            chan.ended.set_result(None)
        if not self.channels:
            self.idle.set()

    def spawn(self, coro: Any, name: str | None = None) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("simulator task failed: %r", task.exception(), exc_info=task.exception())

    # -- answer / state ---------------------------------------------------------------------
    def answer(self, chan: Channel) -> None:
        if chan.state == UP or chan.dead:
            return
        if chan.local_half == 2:
            chan.set_state(UP)
            peer = chan.local_peer
            if peer is not None and not peer.dead and peer.state != UP:
                out = getattr(peer, "outbound", None)
                if out is not None:
                    out.remote_answered()
                else:
                    peer.set_state(UP)
            return
        chan.set_state(UP)
        if chan.actor is not None:
            self.actor_answered(chan)

    # -- bridges ----------------------------------------------------------------------------
    def bridge_pair(self, first: Channel, second: Channel) -> Bridge:
        """BridgeCreate, BridgeEnter(first), BridgeEnter(second), BRIDGEPEER on both."""
        bridge = Bridge(self)
        bridge.enter(first)
        bridge.enter(second)
        first.set_var("BRIDGEPEER", second.name)
        second.set_var("BRIDGEPEER", first.name)
        now = self.clock.now()
        for chan in (first, second):
            self.recorder.bridged(chan, bridge.peer_of(chan), now)
            if chan.actor is not None:
                self.actor_bridged(chan)
        return bridge

    async def hold_bridge(self, first: Channel, second: Channel) -> None:
        """Wait while the two talk: until one hangs up or the bridge dissolves (Redirect)."""
        bridge = first.bridge
        while not first.hungup and not second.hungup and bridge is not None:
            waits = {
                asyncio.ensure_future(first.hangup_event.wait()),
                asyncio.ensure_future(second.hangup_event.wait()),
                asyncio.ensure_future(bridge.dissolved.wait()),
            }
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waits:
                    waiter.cancel()
            if bridge.destroyed:
                return

    def redirect_bridged(self, chan: Channel, target: tuple[str, str, int]) -> None:
        """ast_async_goto() on a bridged channel: it leaves with an after-bridge goto and the
        basic bridge dissolves; whoever holds the bridge (Queue, Dial) sees it and moves on."""
        bridge = chan.bridge
        assert bridge is not None
        chan.after_goto = target
        for c in bridge.channels:
            if c.vars.get("BRIDGEPEER"):
                c.set_var("BRIDGEPEER", "")
        bridge.dissolve(chan)

    def async_goto(self, chan: Channel, target: tuple[str, str, int]) -> None:
        """ast_async_goto() on a channel running the dialplan: the application sees a hang-up
        (Dial cancels, Queue records an abandon, AGI gets HANGUP), then the PBX continues at
        `target` without HangupRequest events (ast_softhangup_nolock() publishes none)."""
        chan.after_goto = target
        chan.hangup_event.set()

    def after_bridge(self, chan: Channel) -> None:
        """The bridge is over; a channel redirected out of it continues in the dialplan, where
        a channel without its own PBX (an agent's leg) gets one, like an after-bridge goto."""
        target, chan.after_goto = chan.after_goto, None
        if target is None or chan.hungup:
            return
        if chan.in_pbx:
            raise Jump(*target)
        self.start_pbx(chan, *target)

    def unbridge_vars(self, first: Channel, second: Channel) -> None:
        for chan in (first, second):
            if not chan.dead and chan.vars.get("BRIDGEPEER"):
                chan.set_var("BRIDGEPEER", "")

    def leave_bridge(self, chan: Channel) -> None:
        bridge = chan.bridge
        if bridge is None:
            return
        bridge.leave(chan)
        if not bridge.channels:
            bridge.destroy()

    # -- DTMF -------------------------------------------------------------------------------
    def dtmf_received(self, chan: Channel, digit: str, duration_ms: int = 100) -> None:
        """A digit arriving on `chan` from its far end, passed on through bridges."""
        if chan.dead:
            return
        path = self.dtmf_path(chan)
        for c, direction in path:
            c.emit("DTMFBegin", ev.DTMF, f"Digit: {digit}\r\nDirection: {direction}\r\n")

        def end() -> None:
            for c, direction in path:
                if not c.dead:
                    c.emit(
                        "DTMFEnd",
                        ev.DTMF,
                        f"Digit: {digit}\r\nDurationMs: {duration_ms}\r\n"
                        f"Direction: {direction}\r\n",
                    )
            for c, direction in path:
                if direction == "Received" and not c.dead:
                    c.dtmf.put_nowait(digit)

        self.clock.call_later(duration_ms / 1000.0, end)

    def dtmf_path(self, chan: Channel) -> list[tuple[Channel, str]]:
        path = [(chan, "Received")]
        if chan.bridge is not None:
            peer = chan.bridge.peer_of(chan)
            if peer is not None:
                path.append((peer, "Sent"))
                if peer.local_half == 1 and peer.local_peer is not None:
                    path.append((peer.local_peer, "Received"))
        return path

    def send_dtmf(self, chan: Channel, digit: str, duration_ms: int = 100) -> None:
        """SendDTMF/PlayDTMF on `chan`: the digit goes to its far end."""
        if chan.local_half and chan.local_peer is not None:
            self.dtmf_received(chan.local_peer, digit, duration_ms)
        elif chan.actor is not None:
            pass  # a simulated phone hears it; nothing to publish

    # -- actors -----------------------------------------------------------------------------
    def actor_answered(self, chan: Channel) -> None:
        actor = chan.actor
        if isinstance(actor, Caller):
            for delay, digits in actor.dtmf_script:
                self.clock.call_later(delay, self._press, chan, digits)
            if actor.max_duration is not None:
                self.clock.call_later(actor.max_duration, self.remote_hangup, chan)
        elif isinstance(actor, Destination):
            self.recorder.answered(chan, self.clock.now())
            if actor.keys:
                for i, digit in enumerate(actor.keys):
                    self.clock.call_later(
                        actor.first_key_after + i * actor.key_delay, self._press, chan, digit
                    )
            if actor.talk_time is not None:
                self.clock.call_later(actor.talk_time, self.remote_hangup, chan)
        elif isinstance(actor, Agent) and actor.hangup_after_answer is not None:
            self.clock.call_later(actor.hangup_after_answer, self.remote_hangup, chan)

    def actor_bridged(self, chan: Channel) -> None:
        actor = chan.actor
        if isinstance(actor, Caller) and actor.talk_time is not None:
            self.clock.call_later(actor.talk_time, self.remote_hangup, chan)
        elif isinstance(actor, Agent):
            if actor.talk_time is not None:
                self.clock.call_later(actor.talk_time, self.remote_hangup, chan)
            if actor.hold_after is not None:
                self.clock.call_later(actor.hold_after, self._phone_hold, chan, True)
                self.clock.call_later(actor.hold_after + actor.hold_for, self._phone_hold,
                                      chan, False)

    def _phone_hold(self, chan: Channel, hold: bool) -> None:
        """A SIP phone's hold (re-INVITE sendonly) or resume (sendrecv): ``Hold`` /
        ``Unhold`` on its channel, music on hold for the other party in the bridge."""
        if chan.dead or chan.bridge is None:
            return
        peers = [c for c in chan.bridge.channels if c is not chan and not c.dead]
        if hold:
            chan.emit("Hold", ev.CALL, "MusicClass: default\r\n")
            for peer in peers:
                peer.emit("MusicOnHoldStart", ev.CALL, "Class: default\r\n")
        else:
            chan.emit("Unhold", ev.CALL)
            for peer in peers:
                peer.emit("MusicOnHoldStop", ev.CALL)

    def actor_queued(self, chan: Channel) -> None:
        actor = chan.actor
        if isinstance(actor, Caller) and actor.patience is not None:

            def give_up() -> None:
                if not chan.dead and chan.bridge is None and chan.queue_entry is not None:
                    self.remote_hangup(chan)

            self.clock.call_later(actor.patience, give_up)

    def _press(self, chan: Channel, digits: str) -> None:
        if chan.dead or chan.softhangup:
            return
        for i, digit in enumerate(digits):
            self.clock.call_later(i * 0.25, self.dtmf_received, chan, digit)

    def prompt_keys(self, chan: Channel, allowed: str | None = None) -> None:
        """The channel waits for input: a Caller with keys left presses the next one."""
        actor = chan.actor
        if not isinstance(actor, Caller) or not actor.keys or chan.dtmf.qsize():
            return
        if getattr(chan, "_key_pending", False):
            return
        digit = actor.keys[0]
        if allowed is not None and digit not in allowed:
            return
        actor.keys = actor.keys[1:]
        chan._key_pending = True  # type: ignore[attr-defined]

        def press() -> None:
            chan._key_pending = False  # type: ignore[attr-defined]
            self.dtmf_received(chan, digit)

        self.clock.call_later(actor.key_delay, press)

    def remote_hangup(self, chan: Channel) -> None:
        """The far end hangs up (BYE): HangupRequest without a cause."""
        if chan.dead or chan.softhangup:
            return
        chan.request_hangup(None)

    async def read_digit(
        self, chan: Channel, timeout: float | None, allowed: str | None = None
    ) -> str | None:
        """Next digit within `timeout` simulated seconds; None on timeout; '' on hang-up."""
        self.prompt_keys(chan, allowed)
        if chan.hungup:
            return ""
        get = asyncio.ensure_future(chan.dtmf.get())
        hang = asyncio.ensure_future(chan.hangup_event.wait())
        try:
            done, _ = await asyncio.wait(
                {get, hang},
                timeout=None if timeout is None else self.clock.wall(timeout),
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            hang.cancel()
            if not get.done():
                get.cancel()
        if get in done:
            return get.result()
        if hang in done or chan.hungup:
            return ""
        return None

    def prompt_length(self, name: str, language: str = "en") -> float:
        """Seconds `name` plays from the sounds folder; 0 when it does not exist."""
        return self.sounds.length(name, language) or 0.0

    def prompt_exists(self, chan: Channel, name: str) -> bool:
        """ast_openstream() for the channel's language; logs Asterisk's warning if missing."""
        if self.sounds.find(name, chan.language) is not None:
            return True
        log.warning(
            "File %s does not exist in any format channel=%s sounds=%s",
            name,
            chan.name,
            self.sounds.folder,
        )
        return False

    async def play(self, chan: Channel, name: str, escape: str = "") -> tuple[str | None, float]:
        """Play a prompt; returns (digit that interrupted it or None or '' on hang-up, seconds).
        A prompt that does not exist plays for 0 s."""
        length = self.sounds.length(name, chan.language) or 0.0
        start = self.clock.now()
        if escape:
            digit = await self.read_digit(chan, length, escape)
            while digit and digit not in escape:
                remaining = length - (self.clock.now() - start)
                if remaining <= 0:
                    return None, length
                digit = await self.read_digit(chan, remaining, escape)
            if digit is None:
                return None, length
            return digit, self.clock.now() - start
        ok = await chan.sleep(length)
        return (None if ok else ""), (length if ok else self.clock.now() - start)

    # -- dialplan ---------------------------------------------------------------------------
    def substitute(self, chan: Channel, text: str) -> str:
        if "$" not in text:
            return text
        from callcenter.simulator.dialplan import substitute

        return substitute(text, ChannelVars(self, chan), self._functions_for(chan))

    def _functions_for(self, chan: Channel) -> dict[str, Callable[[str], str]]:
        def callerid(arg: str) -> str:
            part = arg.strip().lower()
            if part in ("num", "number"):
                return chan.cid_num
            if part == "name":
                return chan.cid_name
            if part == "all":
                return f'"{chan.cid_name}" <{chan.cid_num}>'
            return chan.cid_num

        def connected(arg: str) -> str:
            return chan.conn_num if arg.strip().lower() in ("num", "number") else chan.conn_name

        funcs: dict[str, Callable[[str], str]] = {
            "CALLERID": callerid,
            "CONNECTEDLINE": connected,
            "CHANNEL": lambda arg: {
                "name": chan.name,
                "uniqueid": chan.uniqueid,
                "linkedid": chan.linkedid,
                "language": chan.language,
            }.get(arg.strip(), ""),
            "LEN": lambda arg: str(len(arg)),
        }
        funcs.update(self.functions)
        return funcs

    async def run_pbx(self, chan: Channel, context: str, exten: str, priority: int = 1) -> None:
        """__ast_pbx_run(): run the dialplan until an application ends it, then hang up."""
        from callcenter.simulator import apps

        chan.in_pbx = True
        ctx, ext, prio = context, exten, priority
        try:
            while not chan.softhangup and not chan.dead:
                if chan.after_goto is not None:
                    # Redirect: the softhangup flag is cleared and the PBX goes on there
                    (ctx, ext, prio), chan.after_goto = chan.after_goto, None
                    chan.hangup_event.clear()
                step = self.dialplan.step(ctx, ext, prio)
                if step is None:
                    break
                data = self.substitute(chan, step.data)
                chan.set_dialplan(ctx, ext, prio, step.app, data)
                try:
                    res = await apps.execute(self, chan, step.app, data)
                except Jump as jump:
                    ctx, ext, prio = jump.target
                    continue
                if chan.after_goto is not None:
                    continue
                if res != APP_CONTINUE:
                    break
                prio += 1
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("dialplan failed on %s", chan.name)
        finally:
            chan.in_pbx = False
        if not chan.dead:
            chan.soft_hangup(chan.hangup_cause or NORMAL_CLEARING)  # AST_SOFTHANGUP_APPUNLOAD
            self.destroy(chan, NORMAL_CLEARING)

    def start_pbx(
        self, chan: Channel, context: str, exten: str, priority: int = 1
    ) -> asyncio.Task[Any]:
        self.processed_calls += 1
        task = self.spawn(self.run_pbx(chan, context, exten, priority), name=f"pbx {chan.name}")
        chan.task = task
        return task

    # -- dialing ----------------------------------------------------------------------------
    def request(
        self,
        interface: str,
        *,
        requestor: Channel | None,
        appl: str,
        cid: tuple[str, str] = ("", ""),
        uniqueid: str | None = None,
        uniqueid2: str | None = None,
    ) -> Outbound | None:
        """ast_request() + setting up the outgoing channel; None if it cannot be created."""
        tech, _, rest = interface.partition("/")
        linkedid = requestor.linkedid if requestor is not None else None
        if tech.upper() == "LOCAL":
            target, _, _opts = rest.partition("/")
            exten, _, context = target.partition("@")
            context = context or "default"
            one, two = self.new_local_pair(
                exten, context, linkedid=linkedid, uniqueid=uniqueid, uniqueid2=uniqueid2
            )
            return Outbound(self, interface, one, two, appl=appl, cid=cid, requestor=requestor)
        if tech.upper() != "PJSIP":
            return None
        endpoint, number = _split_pjsip(rest)
        ep = self.endpoints.get(endpoint)
        device = f"PJSIP/{endpoint}"
        actor: Any
        if device in self.agents:
            if device not in self.devices.registered:
                return None
            actor = self.agents[device]
        elif ep is not None or endpoint == self.config.trunk:
            actor = self.destinations.get(number or endpoint, self.default_destination)
        else:
            return None
        context = ep.context if ep is not None else "default"
        chan = self.new_channel(
            "PJSIP",
            endpoint,
            state=DOWN,
            context=context,
            exten="s",
            linkedid=linkedid,
            uniqueid=uniqueid,
        )
        chan.actor = actor
        return Outbound(self, interface, chan, None, appl=appl, cid=cid, requestor=requestor)

    def dialed_by(self, chan: Channel | None) -> list[Channel]:
        """The live outgoing channels `chan` requested (what its Dial rings or talks to)."""
        if chan is None:
            return []
        return [
            c
            for c in self.channels.values()
            if not c.dead and getattr(getattr(c, "outbound", None), "requestor", None) is chan
        ]

    def caller_id_of(self, chan: Channel) -> tuple[str, str]:
        """The caller ID a phone presents: its endpoint number and its agent's name."""
        if chan.cid_num or chan.cid_name:
            return chan.cid_num, chan.cid_name
        endpoint = chan.device.split("/", 1)[-1]
        agent = self.agents.get(chan.device)
        return endpoint, (agent.name or "") if agent is not None else ""

    def interface_available(self, interface: str) -> bool:
        tech, _, rest = interface.partition("/")
        if tech.upper() == "LOCAL":
            return True
        endpoint, _ = _split_pjsip(rest)
        device = f"PJSIP/{endpoint}"
        if device in self.agents:
            return device in self.devices.registered
        return endpoint in self.endpoints or endpoint == self.config.trunk

    # -- Originate --------------------------------------------------------------------------
    async def originate(self, params: OriginateParams) -> tuple[bool, int, Channel | None]:
        """ast_pbx_outgoing_exten/app with AST_OUTGOING_WAIT: returns (success, reason, chan)."""
        out = self.request(
            params.channel,
            requestor=None,
            appl="AppDial2",
            cid=params.cid,
            uniqueid=params.channelid or None,
            uniqueid2=params.otherchannelid or None,
        )
        if out is None:
            return False, 0, None
        chan = out.chan
        for key, value in params.variables:
            chan.set_var(key, value)
        if out.local2 is not None:
            # local_call() copies the ;1 variables to ;2 (a list copy: no VarSet events)
            out.local2.vars.update(chan.vars)
        if params.account:
            chan.accountcode = params.account
            chan.touch()
        out.announce(dialstring=out.dialstring())
        out.start()
        result = await out.wait(params.timeout_ms / 1000.0)
        # pbx_dial_reason(): AST_CONTROL_* from the dial's cause; a far end that hangs up before
        # answering leaves no cause in main/dial.c (ast_read() NULL), hence 0 like a failure
        reason = {"ANSWER": 4, "BUSY": 5, "CONGESTION": 8, "NOANSWER": 3}.get(result.status, 0)
        if result.status == "NOANSWER":
            # handle_timeout_trip(): hang-up cause 19 and no DialEnd for the timed-out channel
            out.finish("NOANSWER", cause=NO_ANSWER, publish=False)
            return False, reason, chan
        if out.local2 is not None and result.status != "ANSWER":
            # the ;2 half gave up (Busy(), Congestion(), Hangup()): the dialer hangs the ;1
            # half up without a cause of its own, so its Hangup says 0
            chan.hangup_cause, chan.cause_set = 0, True
        if result.status == "HANGUP":
            # monitor_dial(): DialEnd with ast_hangup_cause_to_dial_status(cause)
            cause = chan.hangup_cause
            out.finish({USER_BUSY: "BUSY", CONGESTION: "CONGESTION"}.get(cause, "NOANSWER"))
            return False, reason, chan
        if result.status != "ANSWER":
            out.finish(result.status)
            return False, reason, chan
        out.publish_end("ANSWER")
        return True, 4, chan

    def after_originate(self, chan: Channel, params: OriginateParams) -> None:
        """The answered channel goes on into the dialplan or runs the application."""
        if params.application:
            self.spawn(self._run_app_then_hangup(chan, params.application, params.data))
        else:
            self.start_pbx(chan, params.context, params.exten, params.priority)

    async def _run_app_then_hangup(self, chan: Channel, app: str, data: str) -> None:
        from callcenter.simulator import apps

        chan.set_app(app, data)
        try:
            await apps.execute(self, chan, app, data)
        except Jump:
            pass
        if not chan.dead:
            self.destroy(chan, NORMAL_CLEARING)

    # -- housekeeping -----------------------------------------------------------------------
    def find_channel(self, name: str) -> Channel | None:
        chan = self.channels.get(name)
        if chan is None:
            for c in self.channels.values():
                if c.name.lower() == name.lower():
                    return c
        return chan

    async def power_off(self) -> None:
        """Asterisk exits: every task stops where it is, no events; calls simply end."""
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        for chan in list(self.channels.values()):
            chan.dead = True
            chan.hangup_event.set()
            if not chan.ended.done():
                chan.ended.set_result(None)
        self.channels.clear()
        self.by_uniqueid.clear()
        self.idle.set()
        await self.recorder.flush()
        self.recorder.close()

    async def shutdown(self) -> None:
        for chan in list(self.channels.values()):
            if not chan.dead:
                chan.request_hangup(NORMAL_CLEARING)
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        await self.recorder.flush()
        self.recorder.close()


@dataclass
class OriginateParams:
    channel: str
    context: str = ""
    exten: str = ""
    priority: int = 0
    application: str = ""
    data: str = ""
    timeout_ms: int = 30000
    cid: tuple[str, str] = ("", "")
    variables: list[tuple[str, str]] = field(default_factory=list)
    account: str = ""
    channelid: str = ""
    otherchannelid: str = ""


def _split_pjsip(rest: str) -> tuple[str, str]:
    """PJSIP/1001, PJSIP/trunk/13800138000, PJSIP/13800138000@trunk → (endpoint, number)."""
    if "/" in rest:
        endpoint, _, number = rest.partition("/")
        number = number.split("@")[0].replace("sip:", "")
        return endpoint, number
    if "@" in rest:
        number, _, endpoint = rest.partition("@")
        return endpoint, number
    return rest, ""


class Outbound:
    """One outgoing call attempt: the channel (and the Local ;2), ringing, the far end's answer."""

    def __init__(
        self,
        pbx: Pbx,
        interface: str,
        chan: Channel,
        local2: Channel | None,
        *,
        appl: str,
        cid: tuple[str, str],
        requestor: Channel | None,
    ) -> None:
        self.pbx = pbx
        self.interface = interface
        self.chan = chan
        self.local2 = local2
        self.appl = appl
        self.cid = cid
        self.requestor = requestor
        self.result: asyncio.Future[DialResult] = asyncio.get_running_loop().create_future()
        self.ringing = False
        self.answer_exten: str | None = None
        self.timers: list[asyncio.TimerHandle] = []
        self.ring_started = pbx.clock.now()
        chan.outbound = self  # type: ignore[attr-defined]
        if requestor is not None:
            chan.no_cdr = True  # type: ignore[attr-defined]
        chan.set_app(appl, "(Outgoing Line)")
        if local2 is not None:
            # core_unreal: the ;2 half gets the caller ID and connected line of the request
            pass

    def dialstring(self) -> str:
        tech, _, rest = self.interface.partition("/")
        return rest

    def announce(self, dialstring: str | None = None, *, for_queue: bool = False) -> None:
        """Caller ID, connected line, LocalBridge and (for Originate/Dial) DialBegin."""
        chan, two = self.chan, self.local2
        num, name = self.cid
        if num or name:
            chan.set_caller(num, name)
            if not for_queue:
                chan.set_connected(num, name)
        if two is not None:
            if for_queue:
                iface = self.interface.split("/", 1)[1]
                chan.set_var("DIALEDPEERNUMBER", iface)
                two.set_var("DIALEDPEERNUMBER", iface)
            if num or name:
                two.set_caller(num, name)
                two.set_connected(num, name)
            self.pbx.local_bridge_event(chan, two)
        elif for_queue:
            chan.set_var("DIALEDPEERNUMBER", self.interface.split("/", 1)[1])
        if dialstring is not None:
            req = self.requestor.snap() if self.requestor is not None else ""
            self.pbx.hub.emit(
                "DialBegin", ev.CALL, req + chan.snap("Dest") + f"DialString: {dialstring}\r\n"
            )

    def start(self) -> None:
        """Start ringing the far end (or the Local ;2 dialplan)."""
        pbx = self.pbx
        if self.local2 is not None:
            two = self.local2
            pbx.start_pbx(two, two.context, two.exten, 1)
            self.pbx.spawn(self._watch_local())
            return
        actor = self.chan.actor
        ring_delay = 0.05
        self.timers.append(pbx.clock.call_later(ring_delay, self._ring))
        if isinstance(actor, Agent):
            mode, after = actor.mode, actor.answer_after
        elif isinstance(actor, Destination):
            mode, after = actor.mode, actor.answer_after
        else:
            mode, after = "answer", 1.0
        if mode == "answer":
            self.timers.append(
                pbx.clock.call_later(max(after, ring_delay + 0.01), self._far_answer)
            )
        elif mode == "busy":
            self.timers.append(
                pbx.clock.call_later(
                    max(0.5, ring_delay + 0.01), self._far_reject, "BUSY", USER_BUSY
                )
            )
        elif mode == "congestion":
            self.timers.append(
                pbx.clock.call_later(
                    max(0.2, ring_delay + 0.01), self._far_reject, "CONGESTION", CONGESTION
                )
            )
        elif mode == "hangup":
            self.timers.append(
                pbx.clock.call_later(
                    max(after, ring_delay + 0.01), self._far_reject, "HANGUP", NORMAL_CLEARING
                )
            )

    async def _watch_local(self) -> None:
        two = self.local2
        assert two is not None
        await two.ended
        if not self.result.done():
            cause = two.hangup_cause
            status = (
                "BUSY" if cause == USER_BUSY else "CONGESTION" if cause == CONGESTION else "HANGUP"
            )
            self.result.set_result(DialResult(status, self.ringing))

    def _ring(self) -> None:
        """180 Ringing: chan_pjsip sets the state, then the dialing side (app_queue, app_dial,
        the dialer of Originate) publishes the non-final dial status as DialState."""
        if self.result.done() or self.chan.dead:
            return
        self.ringing = True
        self.chan.set_state(RINGING)
        req = self.requestor.snap() if self.requestor is not None else ""
        self.pbx.hub.emit(
            "DialState", ev.CALL, req + self.chan.snap("Dest") + "DialStatus: RINGING\r\n"
        )
        if self.requestor is not None and self.requestor.on_dial_ringing is not None:
            self.requestor.on_dial_ringing(self.chan)

    def _far_answer(self) -> None:
        if self.result.done() or self.chan.dead:
            return
        self.remote_answered()

    def remote_answered(self) -> None:
        chan = self.chan
        if self.result.done() or chan.dead:
            return
        member = getattr(self, "before_answer", None)
        if member is not None and not member.starttime:
            member.starttime = self.pbx.clock.now()
        moved = False
        if self.answer_exten is not None and self.answer_exten != chan.exten:
            chan.exten = self.answer_exten
            chan.touch()
            moved = True
        chan.set_state(UP)
        if moved:
            chan.emit(
                "Newexten",
                ev.DIALPLAN,
                f"Extension: {chan.exten}\r\nApplication: {chan.appl}\r\nAppData: {chan.data}\r\n",
            )
        self.result.set_result(DialResult("ANSWER", self.ringing))
        if chan.actor is not None:
            self.pbx.actor_answered(chan)

    def _far_reject(self, status: str, cause: int) -> None:
        if self.result.done() or self.chan.dead:
            return
        self.chan.hangup_cause = cause
        self.chan.cause_set = True
        if status == "HANGUP":
            self.chan.request_hangup(None)
        self.result.set_result(DialResult(status, self.ringing))

    async def wait(self, timeout: float | None, cancel_on: Channel | None = None) -> DialResult:
        """Wait for the outcome; NOANSWER after `timeout`, CANCEL if `cancel_on` hangs up."""
        waits: set[asyncio.Future[Any]] = {self.result}
        hang = None
        if cancel_on is not None:
            hang = asyncio.ensure_future(cancel_on.hangup_event.wait())
            waits.add(hang)
        try:
            done, _ = await asyncio.wait(
                waits,
                timeout=None if timeout is None else self.pbx.clock.wall(timeout),
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            if hang is not None:
                hang.cancel()
        if self.result in done:
            return self.result.result()
        if hang is not None and hang in done:
            return DialResult("CANCEL", self.ringing)
        return DialResult("NOANSWER", self.ringing)

    def cancel_timers(self) -> None:
        for timer in self.timers:
            timer.cancel()
        self.timers.clear()

    def publish_end(self, status: str) -> None:
        req = self.requestor.snap() if self.requestor is not None else ""
        self.pbx.hub.emit(
            "DialEnd", ev.CALL, req + self.chan.snap("Dest") + f"DialStatus: {status}\r\n"
        )

    def finish(self, status: str, *, cause: int | None = None, publish: bool = True) -> None:
        """The attempt failed or was cancelled: DialEnd and hang up the outgoing channel."""
        self.cancel_timers()
        if not self.result.done():
            self.result.set_result(DialResult(status, self.ringing))
        if publish:
            self.publish_end(status)
        chan = self.chan
        if not chan.dead:
            if cause is None:
                cause = chan.hangup_cause or {
                    "BUSY": USER_BUSY,
                    "CONGESTION": CONGESTION,
                    "ANSWERED_ELSEWHERE": ANSWERED_ELSEWHERE,
                }.get(status, 0)
            if status == "NOANSWER" and self.requestor is None:
                chan.cdr_disposition = "NO ANSWER"
            elif status == "BUSY" and self.requestor is None:
                chan.cdr_disposition = "BUSY"
            elif status == "CONGESTION" and self.requestor is None:
                chan.cdr_disposition = "CONGESTION"
            if not chan.cause_set:
                chan.hangup_cause = cause
                chan.cause_set = True
            self.pbx.destroy(chan, cause)
