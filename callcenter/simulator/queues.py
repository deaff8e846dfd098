"""app_queue: queues.conf, members (static and QueueAdd), strategies, the Queue application.

Members are rung by a dispatcher that serves callers in order (autofill): each waiting caller
gets the free members its queue's strategy picks among the lowest-penalty tier; paused members,
members in wrap-up, busy/ringing devices (ringinuse=no) and unreachable endpoints are skipped.
Event order follows apps/app_queue.c and the captures queue_call, abandon and sip_call.
Times are app_queue's: differences of whole-second time() values (qe->start, member->starttime,
lastcall), so HoldTime/TalkTime/Wait count second boundaries, not rounded spans. AgentComplete
follows handle_hangup() and what a live Asterisk 22.10.1 showed (PROTOCOL.md): after a Redirect
it waits for the caller's hang-up, after an AMI Hangup of the member it says Reason caller.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from callcenter.simulator import devices as ds
from callcenter.simulator import events as ev
from callcenter.simulator.asterisk_conf import ast_false, ast_true, parse_conf
from callcenter.simulator.channels import CONGESTION, NORMAL_CLEARING, USER_BUSY, Channel

if TYPE_CHECKING:
    from callcenter.simulator.pbx import Outbound, Pbx

STRATEGIES = (
    "ringall",
    "leastrecent",
    "fewestcalls",
    "random",
    "rrmemory",
    "linear",
    "wrandom",
    "rrordered",
)
RES_OKAY, RES_EXISTS, RES_NOSUCHQUEUE, RES_NOT_DYNAMIC = 0, -1, -3, -5


_EMPTY_WORDS = (
    "paused",
    "penalty",
    "inuse",
    "ringing",
    "invalid",
    "wrapup",
    "unavailable",
    "unknown",
)


def empty_conditions(rule: str, *, joining: bool) -> frozenset[str]:
    """parse_empty_options(): the member conditions that count as 'not there'. Note the
    asymmetry: joinempty=yes and leavewhenempty=no mean no check at all, joinempty=no and
    leavewhenempty=yes mean penalty,invalid,paused."""
    conds: set[str] = set()
    for option in (rule or "").split(","):
        word = option.strip().lower()
        if not word:
            continue
        if word in _EMPTY_WORDS:
            conds.add(word)
        elif word == "loose":
            conds = {"penalty", "invalid"}
        elif word == "strict":
            conds = {"penalty", "invalid", "paused", "unavailable"}
        elif (ast_false(word) and joining) or (ast_true(word) and not joining):
            conds = {"penalty", "invalid", "paused"}
        elif ast_false(word) or ast_true(word):
            conds = set()
    return frozenset(conds)


@dataclass(eq=False)
class Member:
    queue: Queue
    interface: str
    membername: str
    state_interface: str
    penalty: int = 0
    paused: bool = False
    reason_paused: str = ""
    dynamic: bool = True
    calls: int = 0
    lastcall: int = 0  # time() of the end of the last call (whole seconds, as app_queue)
    lastpause: float = 0
    logintime: float = 0
    starttime: float = 0
    status: int = ds.NOT_INUSE
    wrapuptime: int = 0
    ringinuse: bool = False

    @property
    def pending(self) -> bool:
        """Being rung or connected for some caller: app_queue's pending_members is keyed by
        interface, so a member of several queues is not rung twice at once."""
        return self.interface in self.queue.manager.pending

    @pending.setter
    def pending(self, value: bool) -> None:
        if value:
            self.queue.manager.pending.add(self.interface)
        else:
            self.queue.manager.pending.discard(self.interface)

    def blob(self) -> str:
        return (
            f"Queue: {self.queue.name}\r\n"
            f"MemberName: {self.membername}\r\n"
            f"Interface: {self.interface}\r\n"
            f"StateInterface: {self.state_interface}\r\n"
            f"Membership: {'dynamic' if self.dynamic else 'static'}\r\n"
            f"Penalty: {self.penalty}\r\n"
            f"CallsTaken: {self.calls}\r\n"
            f"LastCall: {int(self.lastcall)}\r\n"
            f"LastPause: {int(self.lastpause)}\r\n"
            f"LoginTime: {int(self.logintime)}\r\n"
            f"InCall: {1 if self.starttime else 0}\r\n"
            f"Status: {self.status}\r\n"
            f"Paused: {1 if self.paused else 0}\r\n"
            f"PausedReason: {self.reason_paused}\r\n"
            f"Ringinuse: {1 if self.ringinuse else 0}\r\n"
            f"Wrapuptime: {self.wrapuptime}\r\n"
        )


@dataclass(eq=False)
class Ring:
    member: Member
    out: Outbound
    done: bool = False


@dataclass(eq=False)
class QueueCall:
    """A caller bridged to a member: what send_agent_complete() and update_queue() need.
    `holdstart` and `starttime` are time() values (qe->start, member->starttime)."""

    queue: Queue
    member: Member
    caller: Channel
    agent: Channel
    holdstart: int
    starttime: int
    in_sl: bool
    bridged_at: float = 0.0
    transferred: bool = False
    attended: bool = False

    def __post_init__(self) -> None:
        self.bridged_at = self.caller.pbx.clock.now()


@dataclass(eq=False)
class QueueEntry:
    """A caller in a queue. `start` and `expire` are whole seconds (time()), as qe->start and
    qe->expire: every HoldTime/Wait is a difference of such values, never a rounded span."""

    queue: Queue
    chan: Channel
    start: int
    opos: int
    expire: int | None = None
    prio: int = 0
    state: str = "waiting"  # waiting, ringing, retry, done
    assigned: asyncio.Future[list[Ring]] | None = None
    moh: bool = False
    announce: str = ""  # Queue()'s announceoverride, else the queue's announce
    rings: list[Ring] = field(default_factory=list)
    linpos: int = 0  # strategy linear: where this caller's next attempt starts
    attempt_started: float = 0.0  # when the current ring attempt began (wait_for_answer)

    @property
    def pos(self) -> int:
        try:
            return self.queue.entries.index(self) + 1
        except ValueError:
            return 0


class Queue:
    def __init__(self, manager: QueueManager, name: str) -> None:
        self.manager = manager
        self.name = name
        self.strategy = "ringall"
        self.timeout = 15
        self.retry = 5
        self.announce = ""  # played to the member who answered, before connecting
        self.memberdelay = 0
        self.wrapuptime = 0
        self.joinempty = ""
        self.leavewhenempty = ""
        self.ringinuse = True
        self.musicclass = "default"
        self.maxlen = 0
        self.servicelevel = 0
        self.weight = 0
        self.autofill = True
        self.members: dict[str, Member] = {}
        self.entries: list[QueueEntry] = []
        self.holdtime = 0
        self.talktime = 0
        self.completed = 0
        self.abandoned = 0
        self.completed_in_sl = 0
        self.abandoned_in_sl = 0
        self.rrpos = 0
        self._kick: asyncio.Handle | None = None
        self.avail_state: int | None = None
        self._avail_pending: asyncio.Handle | None = None

    # -- member state -----------------------------------------------------------------------
    def usable(self, m: Member) -> bool:
        """A member that could take a call now (not paused, free device, out of wrap-up)."""
        if m.paused or m.pending:
            return False
        status = m.status
        if status in (ds.UNAVAILABLE, ds.INVALID):
            return False
        ringinuse = m.ringinuse
        if not ringinuse and status not in (ds.NOT_INUSE, ds.UNKNOWN):
            return False
        wrap = m.wrapuptime or self.wrapuptime
        if wrap and m.lastcall and self.manager.pbx.clock.now() - m.lastcall < wrap:
            return False
        return True

    def member_available(self, m: Member) -> bool:
        return m.status in (ds.NOT_INUSE, ds.UNKNOWN) and not m.paused

    def empty_by(self, rule: str, *, joining: bool) -> bool:
        """get_member_status() != 0: no member passes the joinempty/leavewhenempty rule."""
        conds = empty_conditions(rule, joining=joining)
        if not conds:
            return False
        now = self.manager.pbx.clock.now()
        for m in self.members.values():
            by_state = {
                ds.INVALID: "invalid",
                ds.UNAVAILABLE: "unavailable",
                ds.INUSE: "inuse",
                ds.RINGING: "ringing",
                ds.UNKNOWN: "unknown",
            }.get(m.status)
            if by_state in conds:
                continue
            if "paused" in conds and m.paused:
                continue
            wrap = m.wrapuptime or self.wrapuptime
            if "wrapup" in conds and wrap and m.lastcall and now - m.lastcall < wrap:
                continue
            return False
        return True

    def update_avail(self) -> None:
        """Queue:<name>_avail, evaluated once per loop turn (device states are async anyway)."""
        if self._avail_pending is None:
            self._avail_pending = asyncio.get_running_loop().call_soon(self._update_avail)

    def _update_avail(self) -> None:
        self._avail_pending = None
        state = (
            ds.NOT_INUSE
            if any(self.usable(m) or m.pending for m in self.members.values())
            else ds.INUSE
        )
        if self.avail_state is None:
            self.avail_state = state
            return
        if state != self.avail_state:
            self.avail_state = state
            self.manager.pbx.devices.emit(f"Queue:{self.name}_avail", state)

    # -- dispatch ---------------------------------------------------------------------------
    def kick(self) -> None:
        if self._kick is None:
            self._kick = asyncio.get_running_loop().call_soon(self._dispatch)

    def _dispatch(self) -> None:
        self._kick = None
        if not self.entries:
            return
        if self.leavewhenempty and self.empty_by(self.leavewhenempty, joining=False):
            self._leave_empty()
            return
        free = [m for m in self.members.values() if self.usable(m)]
        if not free:
            return
        for entry in self.entries:
            if entry.state != "waiting" or entry.chan.hungup:
                continue
            chosen = self.choose(free, entry)
            if not chosen:
                break
            rings = self.manager.start_rings(entry, chosen)
            for m in chosen:
                if m in free:
                    free.remove(m)
            if rings:
                entry.state = "ringing"
                entry.rings = rings
                if entry.assigned is not None and not entry.assigned.done():
                    entry.assigned.set_result(rings)
            if not free:
                break

    def _leave_empty(self) -> None:
        """wait_our_turn()/queue_exec(): waiting callers leave with QUEUESTATUS=LEAVEEMPTY."""
        for entry in self.entries:
            if entry.state == "waiting" and entry.assigned is not None:
                if not entry.assigned.done():
                    entry.state = "leaveempty"
                    entry.assigned.set_result([])

    def choose(self, free: list[Member], entry: QueueEntry | None = None) -> list[Member]:
        """ring_one(): the members with the best calc_metric() among the free ones. The
        penalty tier comes first for every strategy but wrandom, whose random draw only
        grows with the penalty; ties go to the member listed first (find_best())."""
        if not free:
            return []
        pos = {m: i for i, m in enumerate(self.members.values())}
        if self.strategy == "wrandom":
            rng = self.manager.pbx.rng
            return [min(free, key=lambda m: (rng.randrange((1 + m.penalty) * 1000), pos[m]))]
        best = min(m.penalty for m in free)
        tier = sorted((m for m in free if m.penalty == best), key=lambda m: pos[m])
        strategy = self.strategy
        if strategy == "ringall":
            return tier
        if strategy in ("rrmemory", "rrordered"):
            chosen = _rotated(tier, pos, self.rrpos)
            self.rrpos = pos[chosen] + 1  # store_next_rr(): the one after it goes next
            return [chosen]
        if strategy == "linear":
            start = entry.linpos if entry is not None else 0
            chosen = _rotated(tier, pos, start)
            if entry is not None:
                entry.linpos = pos[chosen] + 1  # store_next_lin(): per caller
            return [chosen]
        if strategy == "leastrecent":
            now = self.manager.now()
            return [min(tier, key=lambda m: 1_000_000 - (now - m.lastcall) if m.lastcall else 0)]
        if strategy == "fewestcalls":
            return [min(tier, key=lambda m: m.calls)]
        rng = self.manager.pbx.rng
        return [min(tier, key=lambda m: rng.randrange(1000))]

    # -- statistics -------------------------------------------------------------------------
    def recalc_holdtime(self, holdtime: int) -> None:
        """recalc_holdtime(), when a member answers: an exponential average of hold times."""
        if self.completed + self.abandoned == 0:
            self.holdtime = holdtime
        else:
            self.holdtime = ((self.holdtime << 2) - self.holdtime + holdtime) >> 2

    def record_completed(self, talktime: int, in_sl: bool) -> None:
        """update_queue(), when the call ends (AgentComplete): counters and average talk."""
        self.completed += 1
        if in_sl:
            self.completed_in_sl += 1
        if self.completed == 1:
            self.talktime = talktime
        else:
            self.talktime = ((self.talktime << 2) - self.talktime + talktime) >> 2

    def sl_perf(self) -> tuple[float, float]:
        sl = 100.0 * self.completed_in_sl / self.completed if self.completed else 0.0
        total = self.completed + self.abandoned
        sl2 = 100.0 * (self.abandoned_in_sl + self.completed_in_sl) / total if total else 0.0
        return sl, sl2


def _as_rung(agent: Channel, caller: Channel) -> str:
    """The member's snapshot in AgentCalled. ring_entry() has just given the member's channel
    the caller's number as connected line and the caller's extension, quietly (no events);
    AgentCalled takes a fresh snapshot, DialBegin right after still the cached one (queue_call
    and agent_session captures)."""
    fresh = {
        "DestConnectedLineNum": caller.cid_num or "<unknown>",
        "DestConnectedLineName": caller.cid_name or "<unknown>",
        "DestExten": caller.exten,
    }
    lines = []
    for line in agent.snap("Dest").split("\r\n")[:-1]:
        key = line.split(":", 1)[0]
        lines.append(f"{key}: {fresh[key]}" if key in fresh else line)
    return "\r\n".join(lines) + "\r\n"


def _hung_up_first(chan: Channel, agent: Channel) -> bool:
    """Did the caller's hang-up come first (or together with the member's)?"""
    t_caller = chan.hangup_at if chan.hungup else None
    t_agent = agent.hangup_at if agent.hungup else None
    return t_caller is not None and (t_agent is None or t_caller <= t_agent)


def _rotated(tier: list[Member], pos: dict[Member, int], start: int) -> Member:
    """calc_metric() for rrmemory/linear: members from position `start` on come first (in
    order), the ones before it after them (metric 1000 + pos)."""
    return min(tier, key=lambda m: (pos[m] < start, pos[m]))


_AFTER_BOUNDARY = 1e-6  # timers aimed at a whole second fire just after it, never before


class QueueManager:
    def __init__(self, pbx: Pbx) -> None:
        self.pbx = pbx
        self.queues: dict[str, Queue] = {}
        self._watchers: dict[str, list[Member]] | None = None  # state interface → members
        self.pending: set[str] = set()  # interfaces being rung (pending_members)

    def now(self) -> int:
        """time(): app_queue measures hold, talk and wait times in whole seconds."""
        return int(self.pbx.clock.now())

    def watchers(self, device: str) -> list[Member]:
        """Members whose StateInterface is `device` (an index: device states change a lot)."""
        if self._watchers is None:
            index: dict[str, list[Member]] = {}
            for q in self.queues.values():
                for m in q.members.values():
                    index.setdefault(m.state_interface, []).append(m)
            self._watchers = index
        return self._watchers.get(device, [])

    # -- configuration ----------------------------------------------------------------------
    def load(self, path: Path) -> None:
        if not path.exists():
            return
        now = self.pbx.clock.now()
        for sec in parse_conf(path):
            if sec.name.lower() == "general":
                continue
            q = Queue(self, sec.name)
            for key, value in sec.items:
                k = key.lower()
                if k == "strategy":
                    q.strategy = value.lower() if value.lower() in STRATEGIES else "ringall"
                elif k == "timeout":
                    q.timeout = int(value or 0)
                elif k == "retry":
                    q.retry = max(0, int(value or 0))
                elif k == "wrapuptime":
                    q.wrapuptime = int(value or 0)
                elif k == "joinempty":
                    q.joinempty = value
                elif k == "leavewhenempty":
                    q.leavewhenempty = value
                elif k == "ringinuse":
                    q.ringinuse = ast_true(value)
                elif k in ("musicclass", "musiconhold"):
                    q.musicclass = value
                elif k == "maxlen":
                    q.maxlen = int(value or 0)
                elif k == "servicelevel":
                    q.servicelevel = int(value or 0)
                elif k == "weight":
                    q.weight = int(value or 0)
                elif k == "announce":
                    q.announce = value
                elif k == "memberdelay":
                    q.memberdelay = max(0, int(value or 0))
                elif k == "autofill":
                    q.autofill = ast_true(value)
                elif k == "member":
                    parts = [p.strip() for p in value.split(",")]
                    iface = parts[0]
                    penalty = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
                    name = parts[2] if len(parts) > 2 and parts[2] else iface
                    state_iface = parts[3] if len(parts) > 3 and parts[3] else iface
                    m = Member(
                        q,
                        iface,
                        name,
                        state_iface,
                        penalty,
                        dynamic=False,
                        logintime=now,
                        ringinuse=q.ringinuse,
                    )
                    m.status = self.pbx.devices.state_of(state_iface)
                    q.members[iface] = m
                    self._watchers = None
            self.queues[q.name] = q

    # -- device states ----------------------------------------------------------------------
    def device_changed(self, device: str, state: int) -> None:
        for m in self.watchers(device):
            if m.status != state:
                m.status = state
                self.pbx.hub.emit("QueueMemberStatus", ev.AGENT, m.blob())
                m.queue.update_avail()
                m.queue.kick()

    # -- AMI actions ------------------------------------------------------------------------
    def add_member(
        self,
        queuename: str,
        interface: str,
        membername: str = "",
        penalty: int = 0,
        paused: bool = False,
        state_interface: str = "",
        reason: str = "",
        wrapuptime: int = 0,
    ) -> int:
        q = self.queues.get(queuename)
        if q is None:
            return RES_NOSUCHQUEUE
        if interface in q.members:
            return RES_EXISTS
        now = self.pbx.clock.now()
        state_iface = state_interface or interface
        m = Member(
            q,
            interface,
            membername or interface,
            state_iface,
            penalty,
            paused=paused,
            reason_paused=reason if paused else "",
            dynamic=True,
            logintime=now,
            wrapuptime=wrapuptime,
            ringinuse=q.ringinuse,
        )
        if paused:
            m.lastpause = now
        m.status = self.pbx.devices.state_of(state_iface)
        q.members[interface] = m
        self._watchers = None
        self.pbx.devices.emit(
            f"Queue:{q.name}_pause_{interface}", ds.INUSE if paused else ds.NOT_INUSE
        )
        self.pbx.hub.emit("QueueMemberAdded", ev.AGENT, m.blob())
        q.update_avail()
        q.kick()
        return RES_OKAY

    def remove_member(self, queuename: str, interface: str) -> int:
        q = self.queues.get(queuename)
        if q is None:
            return RES_NOSUCHQUEUE
        m = q.members.get(interface)
        if m is None:
            return RES_EXISTS
        if not m.dynamic:
            return RES_NOT_DYNAMIC
        self.pbx.hub.emit("QueueMemberRemoved", ev.AGENT, m.blob())
        del q.members[interface]
        self._watchers = None
        self.pbx.devices.states.pop(f"Queue:{q.name}_pause_{interface}", None)
        q.update_avail()
        q.kick()
        return RES_OKAY

    def set_paused(self, queuename: str, interface: str, reason: str, paused: bool) -> bool:
        found = False
        now = self.pbx.clock.now()
        for q in self.queues.values():
            if queuename and q.name.lower() != queuename.lower():
                continue
            m = q.members.get(interface)
            if m is None:
                continue
            found = True
            if m.paused != paused:
                m.lastpause = now if paused else m.lastpause
            m.paused = paused
            m.reason_paused = reason if paused else ""
            self.pbx.devices.emit(
                f"Queue:{q.name}_pause_{interface}", ds.INUSE if paused else ds.NOT_INUSE
            )
            self.pbx.hub.emit("QueueMemberPause", ev.AGENT, m.blob())
            q.update_avail()
            q.kick()
        return found

    def set_penalty(self, queuename: str, interface: str, penalty: int) -> bool:
        if penalty < 0:
            return False
        found = False
        for q in self.queues.values():
            if queuename and q.name.lower() != queuename.lower():
                continue
            m = q.members.get(interface)
            if m is None:
                continue
            found = True
            m.penalty = penalty
            self.pbx.hub.emit("QueueMemberPenalty", ev.AGENT, m.blob())
            q.kick()
        return found

    # -- ringing members --------------------------------------------------------------------
    def start_rings(self, entry: QueueEntry, members: list[Member]) -> list[Ring]:
        pbx = self.pbx
        caller = entry.chan
        rings: list[Ring] = []
        for m in members:
            out = pbx.request(
                m.interface,
                requestor=caller,
                appl="AppQueue",
                cid=(caller.cid_num, caller.cid_name),
            )
            if out is None:
                continue
            m.pending = True
            out.answer_exten = caller.exten
            out.before_answer = m  # type: ignore[attr-defined]
            out.announce(None, for_queue=True)
            agent = out.chan
            body = caller.snap() + agent.snap("Dest")
            pbx.hub.emit(
                "AgentCalled",
                ev.AGENT,
                caller.snap()
                + _as_rung(agent, caller)
                + f"Queue: {entry.queue.name}\r\nInterface: {m.interface}\r\n"
                f"MemberName: {m.membername}\r\n",
            )
            pbx.hub.emit("DialBegin", ev.CALL, body + f"DialString: {m.interface}\r\n")
            out.start()
            rings.append(Ring(m, out))
        return rings

    def _ring_over(self, ring: Ring) -> None:
        ring.done = True
        ring.member.pending = False
        ring.member.starttime = 0
        ring.member.queue.kick()

    # -- the Queue application --------------------------------------------------------------
    async def queue_exec(self, chan: Channel, args: list[str]) -> int:
        from callcenter.simulator.pbx import APP_CONTINUE, APP_HANGUP

        pbx = self.pbx
        clock = pbx.clock
        name = args[0] if args else ""
        options = args[1] if len(args) > 1 else ""
        announce = args[3] if len(args) > 3 else ""
        qtimeout = args[4] if len(args) > 4 else ""
        q = self.queues.get(name)
        for var in (
            "ANSWEREDTIME",
            "ANSWEREDTIME_MS",
            "DIALEDTIME",
            "DIALEDTIME_MS",
            "QUEUEWAIT",
            "QUEUEWAIT_MS",
        ):
            chan.set_var(var, "")
        if q is None:
            chan.set_var("QUEUESTATUS", "UNKNOWN")
            return APP_CONTINUE
        if q.empty_by(q.joinempty, joining=True):
            chan.set_var("QUEUESTATUS", "JOINEMPTY")
            return APP_CONTINUE
        if q.maxlen and len(q.entries) >= q.maxlen:
            chan.set_var("QUEUESTATUS", "FULL")
            return APP_CONTINUE
        start = self.now()
        expire = start + int(qtimeout) if qtimeout.strip().isdigit() and int(qtimeout) else None
        entry = QueueEntry(
            q,
            chan,
            start,
            opos=len(q.entries) + 1,
            expire=expire,
            announce=announce or q.announce,
        )
        q.entries.append(entry)
        chan.queue_entry = entry
        if len(q.entries) == 1:
            pbx.devices.emit(f"Queue:{q.name}", ds.RINGING)
        chan.emit(
            "QueueCallerJoin",
            ev.AGENT,
            f"Queue: {q.name}\r\nPosition: {entry.pos}\r\nCount: {len(q.entries)}\r\n",
        )
        chan.emit("MusicOnHoldStart", ev.CALL, f"Class: {q.musicclass}\r\n")
        entry.moh = True
        pbx.actor_queued(chan)
        try:
            while True:
                if self._expired(entry):  # queue_exec(): checked at the top of each round
                    return self._abandon(entry, hungup=False, status="TIMEOUT")
                # wait for members to be rung, for the caller to hang up, or for the timeout
                entry.state = "waiting"
                entry.assigned = asyncio.get_running_loop().create_future()
                q.kick()
                outcome = await self._wait(entry, entry.assigned, until_expire=True)
                if outcome == "hangup":
                    return self._abandon(entry, hungup=True)
                if outcome == "expire":
                    return self._abandon(entry, hungup=False, status="TIMEOUT")
                if entry.state == "leaveempty":
                    return self._abandon(entry, hungup=False, status="LEAVEEMPTY")
                result = await self._ring_attempt(entry)
                if result == "hangup":
                    return self._abandon(entry, hungup=True)
                if isinstance(result, Ring):
                    self._answered(entry, result)
                    gone = await self._announce_to_member(entry, result)
                    if gone == "caller":
                        return self._caller_gone_before_connect(entry, result)
                    if gone == "agent":
                        self._agent_dump(entry, result)
                        result = None
                if isinstance(result, Ring):
                    return await self._connected(entry, result, options)
                # nobody answered: leave if empty, time out, or wait `retry` seconds
                if q.empty_by(q.leavewhenempty, joining=False):
                    return self._abandon(entry, hungup=False, status="LEAVEEMPTY")
                if self._expired(entry):
                    return self._abandon(entry, hungup=False, status="TIMEOUT")
                # wait_a_bit(): the whole `retry`, the timeout is looked at afterwards
                entry.state = "retry"
                retry_done = asyncio.ensure_future(asyncio.sleep(clock.wall(q.retry)))
                if await self._wait(entry, retry_done, until_expire=False) == "hangup":
                    return self._abandon(entry, hungup=True)
        finally:
            if entry in q.entries:
                self._leave(entry)
            chan.queue_entry = None
            entry.state = "done"
            for ring in entry.rings:
                if not ring.done:
                    ring.out.finish("CANCEL", cause=0)
                    self._ring_over(ring)
        return APP_HANGUP  # pragma: no cover

    def _expired(self, entry: QueueEntry) -> bool:
        """qe->expire && time(NULL) >= qe->expire."""
        return entry.expire is not None and self.now() >= entry.expire

    def _until(self, second: int) -> float:
        """Wall seconds until time() reaches `second` (a hair after the boundary)."""
        return self.pbx.clock.wall(max(0.0, second - self.pbx.clock.now() + _AFTER_BOUNDARY))

    async def _wait(
        self, entry: QueueEntry, fut: asyncio.Future[Any], *, until_expire: bool
    ) -> str:
        """'ok' when `fut` is done, 'hangup' when the caller left, 'expire' at the timeout."""
        chan = entry.chan
        if chan.hungup:
            fut.cancel()
            return "hangup"
        hang = asyncio.ensure_future(chan.hangup_event.wait())
        timeout = None
        if until_expire and entry.expire is not None:
            timeout = self._until(entry.expire)
        try:
            done, _ = await asyncio.wait(
                {fut, hang}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            hang.cancel()
        if hang in done or chan.hungup:
            fut.cancel()
            return "hangup"
        if fut in done:
            return "ok"
        fut.cancel()
        return "expire"

    def _ring_timeout(self, entry: QueueEntry) -> int | None:
        """try_calling(): the member timeout, or what is left of Queue()'s timeout when that
        is shorter, both in whole seconds (to = (qe->expire - now) * 1000)."""
        q = entry.queue
        timeout = q.timeout if q.timeout > 0 else None
        if entry.expire is not None:
            left = max(0, entry.expire - self.now())
            if timeout is None or left <= timeout:
                timeout = left
        return timeout

    async def _ring_attempt(self, entry: QueueEntry) -> Ring | str | None:
        """wait_for_answer(): the first member to answer wins; busy ones drop out."""
        pbx = self.pbx
        q = entry.queue
        chan = entry.chan
        rings = entry.rings
        started = entry.attempt_started = pbx.clock.now()
        timeout = self._ring_timeout(entry)
        deadline = None if timeout is None else started + timeout
        pending = {ring.out.result: ring for ring in rings if not ring.done}
        tried: set[Member] = set()
        while pending:
            hang = asyncio.ensure_future(chan.hangup_event.wait())
            wall = (
                None if deadline is None else pbx.clock.wall(max(0.0, deadline - pbx.clock.now()))
            )
            try:
                done, _ = await asyncio.wait(
                    set(pending) | {hang}, timeout=wall, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                hang.cancel()
            if chan.hungup or hang in done:
                if entry.moh:
                    chan.emit("MusicOnHoldStop", ev.CALL)
                    entry.moh = False
                live = [r for r in rings if not r.done]
                for ring in live:
                    ring.out.publish_end("CANCEL")
                for ring in live:
                    ring.out.finish("CANCEL", cause=0)
                    self._ring_over(ring)
                    if ring.out.chan.local_half == 1:
                        # core_unreal updates the connected line of the dead ;1 (seen in abandon)
                        ring.out.chan.emit("NewConnectedLine", ev.CALL)
                return "hangup"
            if not done:
                # ring timeout: AgentRingNoAnswer + DialEnd NOANSWER, then hangupcalls()
                live = [r for r in rings if not r.done]
                ms = timeout * 1000 if timeout else 0
                for ring in live:
                    self._rna(entry, ring, ms)
                for ring in live:
                    ring.out.publish_end("NOANSWER")
                for ring in live:
                    ring.out.finish("CANCEL", cause=0)
                    self._ring_over(ring)
                return None
            for fut in done:
                ring = pending.pop(fut)
                res = fut.result()
                if res.status == "ANSWER":
                    return ring
                # busy / congestion / far end gone
                status = {"HANGUP": "NOANSWER"}.get(res.status, res.status)
                ring.out.publish_end(status)
                # rna(endtime * 1000): time() now minus time() when this member was rung
                self._rna(entry, ring, (self.now() - int(ring.out.ring_started)) * 1000)
                ring.out.finish(status, publish=False)
                self._ring_over(ring)
                tried.add(ring.member)
                if q.strategy != "ringall" and (
                    deadline is None or deadline - pbx.clock.now() > 0.5
                ):
                    for nxt in self._ring_next(entry, tried):
                        pending[nxt.out.result] = nxt
        return None

    def _ring_next(self, entry: QueueEntry, tried: set[Member]) -> list[Ring]:
        """ring_one() after a busy, congested or vanished member: the next one at once, in the
        same attempt (same ring timeout), for strategies that ring one member at a time."""
        q = entry.queue
        free = [m for m in q.members.values() if m not in tried and q.usable(m)]
        rings = self.start_rings(entry, q.choose(free, entry))
        entry.rings.extend(rings)
        return rings

    def _rna(self, entry: QueueEntry, ring: Ring, ms: int) -> None:
        body = entry.chan.snap() + ring.out.chan.snap("Dest")
        self.pbx.hub.emit(
            "AgentRingNoAnswer",
            ev.AGENT,
            body + f"Queue: {entry.queue.name}\r\nInterface: {ring.member.interface}\r\n"
            f"MemberName: {ring.member.membername}\r\nRingTime: {ms}\r\n",
        )

    def _leave(self, entry: QueueEntry) -> None:
        q = entry.queue
        pos = entry.pos
        if entry in q.entries:
            q.entries.remove(entry)
        if not q.entries:
            self.pbx.devices.emit(f"Queue:{q.name}", ds.NOT_INUSE)
        entry.chan.emit(
            "QueueCallerLeave",
            ev.AGENT,
            f"Queue: {q.name}\r\nPosition: {pos}\r\nCount: {len(q.entries)}\r\n",
        )
        entry.chan.set_var("QUEUEPOSITION", str(pos))
        q.kick()

    def _duration_var(self, chan: Channel, name: str, ms: int) -> None:
        chan.set_var(name, str(ms // 1000))
        chan.set_var(f"{name}_MS", str(ms))

    def _abandon(
        self,
        entry: QueueEntry,
        *,
        hungup: bool,
        status: str = "",
        before_leave: Callable[[], None] | None = None,
    ) -> int:
        from callcenter.simulator.pbx import APP_CONTINUE, APP_HANGUP

        pbx = self.pbx
        chan = entry.chan
        q = entry.queue
        now = pbx.clock.now()
        held = self.now() - entry.start

        def record_abandoned() -> None:
            chan.set_var("ABANDONED", "TRUE")
            q.abandoned += 1
            if held <= q.servicelevel:
                q.abandoned_in_sl += 1
            chan.emit(
                "QueueCallerAbandon",
                ev.AGENT,
                f"Queue: {q.name}\r\nPosition: {entry.pos}\r\nOriginalPosition: {entry.opos}\r\n"
                f"HoldTime: {held}\r\n",
            )

        if not hungup:
            record_abandoned()
        if not chan.vars.get("QUEUEWAIT"):
            self._duration_var(chan, "QUEUEWAIT", held * 1000)
        if not chan.vars.get("DIALEDTIME"):
            self._duration_var(chan, "DIALEDTIME", int((now - chan.created) * 1000))
        if not chan.vars.get("ANSWEREDTIME"):
            self._duration_var(chan, "ANSWEREDTIME", 0)
        if hungup:
            record_abandoned()
        if before_leave is not None:
            before_leave()
        if entry.moh:
            chan.emit("MusicOnHoldStop", ev.CALL)
            entry.moh = False
        self._leave(entry)
        if hungup:
            return APP_HANGUP
        chan.set_var("QUEUESTATUS", status)
        return APP_CONTINUE

    def _answered(self, entry: QueueEntry, winner: Ring) -> None:
        """wait_for_answer() saw the answer: connected lines, DialEnd ANSWER, hangupcalls()."""
        chan = entry.chan
        agent = winner.out.chan
        agent.set_connected(chan.cid_num, chan.cid_name)
        if agent.tech == "PJSIP":
            chan.set_connected(agent.device.split("/", 1)[1], winner.member.membername)
        winner.out.publish_end("ANSWER")
        for ring in entry.rings:
            if ring is not winner and not ring.done:
                ring.out.finish("CANCEL", cause=26)
                self._ring_over(ring)
        winner.done = True

    async def _announce_to_member(self, entry: QueueEntry, winner: Ring) -> str | None:
        """memberdelay, then the queue's announce played to the member while the caller waits
        on hold; 'agent' or 'caller' when that side hung up meanwhile (try_calling())."""
        q = entry.queue
        if not entry.announce and not q.memberdelay:
            return None
        pbx = self.pbx
        chan, agent = entry.chan, winner.out.chan
        files = [f for f in entry.announce.split("&") if f.strip()]
        seconds = q.memberdelay + sum(pbx.prompt_length(f.strip()) for f in files)
        if not chan.hungup and not agent.hungup:
            waits = {
                asyncio.ensure_future(chan.hangup_event.wait()),
                asyncio.ensure_future(agent.hangup_event.wait()),
            }
            try:
                await asyncio.wait(
                    waits, timeout=pbx.clock.wall(seconds), return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                for waiter in waits:
                    waiter.cancel()
        if agent.hungup:
            return "agent"
        if chan.hungup:
            return "caller"
        return None

    def _hang_up_member(self, entry: QueueEntry, ring: Ring) -> None:
        """ast_channel_publish_dial() with the member's hang-up cause, then hang it up."""
        agent = ring.out.chan
        cause = agent.hangup_cause
        status = {USER_BUSY: "BUSY", CONGESTION: "CONGESTION"}.get(cause, "NOANSWER")
        ring.out.publish_end(status)
        self.pbx.destroy(agent, cause)  # ast_hangup(): a cause only if the member set one
        self._ring_over(ring)

    def _agent_dump(self, entry: QueueEntry, ring: Ring) -> None:
        """The member hung up before being connected: AgentDump; the caller stays queued."""
        m = ring.member
        self.pbx.hub.emit(
            "AgentDump",
            ev.AGENT,
            entry.chan.snap()
            + ring.out.chan.snap("Dest")
            + f"Queue: {entry.queue.name}\r\nInterface: {m.interface}\r\n"
            f"MemberName: {m.membername}\r\n",
        )
        self._hang_up_member(entry, ring)

    def _caller_gone_before_connect(self, entry: QueueEntry, ring: Ring) -> int:
        """The caller hung up during the member announcement: abandoned, member hung up."""
        return self._abandon(
            entry, hungup=True, before_leave=lambda: self._hang_up_member(entry, ring)
        )

    async def _connected(self, entry: QueueEntry, winner: Ring, options: str) -> int:
        """try_calling() after the answer: AgentConnect, the bridge, and how the call ends."""
        qcontinue = "c" in options
        pbx = self.pbx
        chan = entry.chan
        q = entry.queue
        agent = winner.out.chan
        member = winner.member
        member.pending = False
        if entry.moh:
            chan.emit("MusicOnHoldStop", ev.CALL)
            entry.moh = False
        now = self.now()
        holdtime = now - entry.start
        self._leave(entry)
        self._duration_var(chan, "QUEUEWAIT", holdtime * 1000)
        # (orig - to) / 1000: whole seconds of this ring attempt, truncated
        ringtime = int((pbx.clock.now() - entry.attempt_started) * 1000) // 1000
        pbx.hub.emit(
            "AgentConnect",
            ev.AGENT,
            chan.snap()
            + agent.snap("Dest")
            + f"Queue: {q.name}\r\nInterface: {member.interface}\r\n"
            f"MemberName: {member.membername}\r\n"
            f"HoldTime: {holdtime}\r\nRingTime: {ringtime}\r\n",
        )
        q.recalc_holdtime(holdtime)
        member.starttime = now
        call = QueueCall(q, member, chan, agent, entry.start, now, holdtime <= q.servicelevel)
        pbx.bridge_pair(agent, chan)
        agent.blind_transferred = lambda: self._transfer_reported(call)
        agent.attended_transferred = lambda: self._attended_reported(call)
        agent.may_transfer = "t" in options  # the member gets the DTMF transfer features
        # the call lasts until one side hangs up or is redirected out of the bridge
        await pbx.hold_bridge(chan, agent)
        agent.blind_transferred = agent.attended_transferred = None
        if call.attended:
            return await self._after_attended_transfer(call, qcontinue)
        if call.transferred:
            return self._blind_transferred(call, qcontinue)
        if chan.after_goto is not None or agent.after_goto is not None:
            return self._redirected(call, qcontinue)
        if _hung_up_first(chan, agent):
            return self._caller_hung_up(call)
        if agent.hangup_requested:
            return self._agent_hung_up(call, qcontinue)
        return self._agent_hung_up_by_ami(call, qcontinue)

    def _answered_vars(self, call: QueueCall) -> None:
        """end_bridge_callback(): ANSWEREDTIME and DIALEDTIME of the caller (real spans)."""
        end = self.pbx.clock.now()
        chan = call.caller
        self._duration_var(chan, "ANSWEREDTIME", int((end - call.bridged_at) * 1000))
        self._duration_var(chan, "DIALEDTIME", int((end - chan.created) * 1000))

    def _caller_hung_up(self, call: QueueCall) -> int:
        """handle_hangup() for the caller: Reason caller. After an AMI Hangup of the caller the
        member's snapshot is gone by the time app_queue reports, so no Dest* fields."""
        from callcenter.simulator.pbx import APP_HANGUP

        pbx = self.pbx
        chan, agent = call.caller, call.agent
        pbx.unbridge_vars(chan, agent)
        pbx.leave_bridge(chan)
        self._answered_vars(call)
        talktime = self.now() - call.starttime
        self._update_queue(call, talktime)
        if agent.atxfer is None or not agent.atxfer.transferee_gone():
            pbx.leave_bridge(agent)  # (a consulting member stays with the target)
            pbx.destroy(agent, NORMAL_CLEARING)
        member_snap = chan.hangup_requested
        self._agent_complete(call, "caller", talktime, caller_snap=True, member_snap=member_snap)
        self._member_settled(call.member)
        return APP_HANGUP

    def _agent_hung_up(self, call: QueueCall, qcontinue: bool) -> int:
        """handle_hangup() for the member who hung up by himself: Reason agent, both
        snapshots; the caller goes on after Queue() with the `c` option."""
        pbx = self.pbx
        chan, agent = call.caller, call.agent
        pbx.unbridge_vars(agent, chan)
        pbx.leave_bridge(agent)
        pbx.leave_bridge(chan)
        talktime = self.now() - call.starttime
        self._update_queue(call, talktime)
        pbx.destroy(agent, NORMAL_CLEARING)
        self._answered_vars(call)
        self._agent_complete(call, "agent", talktime, caller_snap=True, member_snap=True)
        self._member_settled(call.member)
        return self._queue_return(chan, qcontinue)

    def _agent_hung_up_by_ami(self, call: QueueCall, qcontinue: bool) -> int:
        """AMI Hangup of the member's channel (PROTOCOL.md, seen on Asterisk 22.10.1): the
        caller is hung up too (cause 16) unless Queue() has `c`; AgentComplete says Reason
        caller, comes after both channels are gone and lacks the caller's snapshot."""
        pbx = self.pbx
        chan, agent = call.caller, call.agent
        pbx.unbridge_vars(agent, chan)
        pbx.leave_bridge(agent)
        pbx.leave_bridge(chan)
        talktime = self.now() - call.starttime
        pbx.destroy(agent, NORMAL_CLEARING)
        self._answered_vars(call)
        self._member_settled(call.member)
        # seen on 22.10.1: the member's (last) snapshot is there, mostly
        self._complete_when_caller_gone(call, talktime, caller_snap=False, member_snap=True)
        return self._queue_return(chan, qcontinue)

    def _transfer_reported(self, call: QueueCall) -> None:
        """handle_blind_transfer() in app_queue.c: on the BlindTransfer message, at once,
        AgentComplete with Reason transfer (talk time up to the transfer, both snapshots);
        the caller's later hang-up reports nothing more (captures/blind_transfer)."""
        call.transferred = True
        talktime = self.now() - call.starttime
        self._update_queue(call, talktime)
        self._agent_complete(call, "transfer", talktime, caller_snap=True, member_snap=True)

    def _attended_reported(self, call: QueueCall) -> None:
        """handle_attended_transfer() in app_queue.c: AgentComplete, Reason transfer, as the
        bridges merge (captures/attended_transfer)."""
        call.attended = True
        self._transfer_reported(call)

    async def _after_attended_transfer(self, call: QueueCall, qcontinue: bool) -> int:
        """The caller stays in the queue's bridge, now with the transfer target (the Local
        channel, then the target's own channel after optimisation), until one side hangs
        up; the member's channel is gone already."""
        pbx = self.pbx
        chan = call.caller
        self._member_settled(call.member)
        while not chan.hungup and chan.bridge is not None:
            peer = chan.bridge.peer_of(chan)
            if peer is None:
                break
            waits = {
                asyncio.ensure_future(chan.hangup_event.wait()),
                asyncio.ensure_future(peer.hangup_event.wait()),
            }
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waits:
                    waiter.cancel()
            if not peer.dead:
                break  # the far side hung up: the two-party bridge ends
            # (a Local half optimised away is dead already, its successor bridged)
        bridge = chan.bridge
        peer = bridge.peer_of(chan) if bridge is not None else None
        if peer is not None:
            pbx.unbridge_vars(chan, peer)
        if bridge is not None:
            bridge.leave(chan)
        self._answered_vars(call)
        if peer is not None:
            pbx.leave_bridge(peer)
            pbx.destroy(peer, NORMAL_CLEARING)
        elif bridge is not None and not bridge.channels:
            bridge.destroy()
        return self._queue_return(chan, qcontinue)

    def _blind_transferred(self, call: QueueCall, qcontinue: bool) -> int:
        """The member blind-transferred the caller: the member's leg is hung up (cause 16),
        the caller goes on at the transfer's target (after-bridge goto)."""
        pbx = self.pbx
        chan, agent = call.caller, call.agent
        self._answered_vars(call)
        pbx.destroy(agent, NORMAL_CLEARING)
        self._member_settled(call.member)
        pbx.after_bridge(chan)  # raises Jump: the caller continues at the target
        return self._queue_return(chan, qcontinue)

    def _queue_return(self, chan: Channel, qcontinue: bool) -> int:
        """What Queue() returns once the call is over: go on in the dialplan (option c)
        while the caller is still there, else hang up."""
        from callcenter.simulator.pbx import APP_CONTINUE, APP_HANGUP

        if qcontinue and not chan.hungup:
            chan.set_var("QUEUESTATUS", "CONTINUE")
            return APP_CONTINUE
        return APP_HANGUP

    def _redirected(self, call: QueueCall, qcontinue: bool) -> int:
        """Redirect dissolved the queue's bridge. The redirected side goes on in the dialplan,
        the member's leg otherwise is hung up at once (cause 16). app_queue still watches the
        caller: AgentComplete (Reason caller, talk time up to then) comes when the caller
        hangs up, wherever it is by then; an async goto alone is neither a hang-up nor a
        transfer (handle_hangup() in app_queue.c; PROTOCOL.md)."""
        pbx = self.pbx
        chan, agent = call.caller, call.agent
        if agent.after_goto is not None:
            pbx.after_bridge(agent)
        else:
            pbx.destroy(agent, NORMAL_CLEARING)
        self._member_settled(call.member)
        self._complete_when_caller_gone(call, None, caller_snap=True, member_snap=False)
        pbx.after_bridge(chan)  # raises Jump when the caller was the one redirected
        return self._queue_return(chan, qcontinue)

    def _complete_when_caller_gone(
        self, call: QueueCall, talktime: int | None, *, caller_snap: bool, member_snap: bool
    ) -> None:
        """AgentComplete (Reason caller) once the caller's channel is gone; `talktime` None
        counts the talk up to then. member_snap False: Dest* only if the member's channel is
        still there by then."""

        async def report() -> None:
            await asyncio.shield(call.caller.ended)
            talk = self.now() - call.starttime if talktime is None else talktime
            self._update_queue(call, talk)
            self._agent_complete(
                call,
                "caller",
                talk,
                caller_snap=caller_snap,
                member_snap=member_snap or not call.agent.dead,
            )

        self.pbx.spawn(report(), name=f"agentcomplete {call.caller.name}")

    def _update_queue(self, call: QueueCall, talktime: int) -> None:
        """update_queue(): only for the call the member is still in (its starttime)."""
        member = call.member
        if member.starttime != call.starttime:
            return
        member.starttime = 0
        member.calls += 1
        member.lastcall = self.now()
        call.queue.record_completed(talktime, call.in_sl)
        wrap = member.wrapuptime or call.queue.wrapuptime
        if wrap:  # free again once time() - lastcall reaches the wrap-up time
            loop = asyncio.get_running_loop()
            loop.call_later(self._until(member.lastcall + wrap), call.queue.kick)

    def _agent_complete(
        self, call: QueueCall, reason: str, talktime: int, *, caller_snap: bool, member_snap: bool
    ) -> None:
        """send_agent_complete(): snapshots of the channels still around, then the blob."""
        body = (call.caller.snap() if caller_snap else "") + (
            call.agent.snap("Dest") if member_snap else ""
        )
        m = call.member
        self.pbx.hub.emit(
            "AgentComplete",
            ev.AGENT,
            body + f"Queue: {call.queue.name}\r\nInterface: {m.interface}\r\n"
            f"MemberName: {m.membername}\r\nHoldTime: {call.starttime - call.holdstart}\r\n"
            f"TalkTime: {talktime}\r\nReason: {reason}\r\n",
        )

    def _member_settled(self, member: Member) -> None:
        """After a call the member's device went idle; make sure observers see the new counters."""
        q = member.queue
        state = self.pbx.devices.state_of(member.state_interface)
        if member.status != state:
            member.status = state
            self.pbx.hub.emit("QueueMemberStatus", ev.AGENT, member.blob())
        q.update_avail()
        q.kick()
