"""Simulated channels: names, Uniqueid/Linkedid, state, caller ID, the snapshot block.

Events follow main/manager_channels.c: a channel publishes a new snapshot after each change
and the differences become Newchannel/Newstate/Hangup, Newexten (context/exten/priority
changed, or the first application set), NewCallerid and NewConnectedLine.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from callcenter.simulator import events as ev

if TYPE_CHECKING:
    from callcenter.simulator.bridges import Bridge
    from callcenter.simulator.pbx import Pbx

STATE_DESC = {
    0: "Down",
    1: "Rsrvd",
    2: "OffHook",
    3: "Dialing",
    4: "Ring",
    5: "Ringing",
    6: "Up",
    7: "Busy",
    8: "Dialing Offhook",
    9: "Pre-ring",
    10: "Unknown",
}
DOWN, RING, RINGING, UP, BUSY = 0, 4, 5, 6, 7

CAUSE_TEXT = {
    0: "Unknown",
    1: "Unallocated (unassigned) number",
    16: "Normal Clearing",
    17: "User busy",
    18: "No user responding",
    19: "User alerting, no answer",
    20: "Subscriber absent",
    21: "Call Rejected",
    26: "Answered elsewhere",
    31: "Normal, unspecified",
    34: "Circuit/channel congestion",
}
NORMAL_CLEARING, USER_BUSY, NO_ANSWER, ANSWERED_ELSEWHERE, CONGESTION = 16, 17, 19, 26, 34
# AST_SOFTHANGUP_* flags (include/asterisk/channel.h), the Cause of SoftHangupRequest
APPUNLOAD, EXPLICIT = 1 << 4, 1 << 5


def cause_text(cause: int) -> str:
    return CAUSE_TEXT.get(cause, "Unknown")


def _cid(value: str | None) -> str:
    return value if value else "<unknown>"


class Channel:
    """One Asterisk channel (PJSIP/... or one half of a Local/... pair)."""

    def __init__(
        self,
        pbx: Pbx,
        name: str,
        uniqueid: str,
        linkedid: str,
        *,
        tech: str,
        device: str,
        state: int,
        context: str,
        exten: str,
        priority: int = 1,
        cid_num: str = "",
        cid_name: str = "",
    ) -> None:
        self.pbx = pbx
        self.name = name
        self.uniqueid = uniqueid
        self.linkedid = linkedid
        self.tech = tech
        self.device = device
        self.state = state
        self.cid_num = cid_num
        self.cid_name = cid_name
        self.conn_num = ""
        self.conn_name = ""
        self.language = "en"
        self.accountcode = ""
        self.context = context
        self.exten = exten
        self.priority = priority
        self.appl = ""
        self.data = ""
        self.vars: dict[str, str] = {}
        self.created = pbx.clock.now()
        self.answered_at: float | None = None
        self.bridge: Bridge | None = None
        self.dead = False
        self.hangup_cause = 0
        self.cause_set = False
        self.softhangup = False
        self.hangup_requested = False  # a HangupRequest came (far end, Local peer), not AMI
        self.hangup_at: float | None = None
        self.hangup_event = asyncio.Event()
        self.dtmf: asyncio.Queue[str] = asyncio.Queue()
        self.local_peer: Channel | None = None  # the other half of a Local pair
        self.local_half = 0  # 1 or 2 for Local channels
        self.actor: Any = None  # behaviour of the far end (actors.py)
        self.in_pbx = False
        self.task: asyncio.Task[Any] | None = None
        self.mixmonitors: list[Any] = []
        self.cdr_disposition: str | None = None
        self.queue_entry: Any = None
        self.after_goto: tuple[str, str, int] | None = None  # set by Redirect of a bridged channel
        self.blind_transferred: Any = None  # app_queue's report of its member's blind transfer
        self.attended_transferred: Any = None  # the same for an attended transfer
        self.may_transfer = False  # the bridge gives it the DTMF transfer features (Queue t)
        self.atxfer: Any = None  # the attended transfer this channel is making (atxfer.py)
        self.on_hangup: Any = None  # called first when a hang-up is requested (atxfer.py)
        self.on_dial_ringing: Any = None  # told when a channel it dials rings (atxfer.py)
        self.talking: Any = None  # audio spoken into this channel (for MixMonitor)
        self.ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._snaps: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"<Channel {self.name} {self.uniqueid} state={self.state}>"

    # -- snapshot ---------------------------------------------------------------------------
    def snap(self, prefix: str = "") -> str:
        text = self._snaps.get(prefix)
        if text is None:
            p = prefix
            text = (
                f"{p}Channel: {self.name}\r\n"
                f"{p}ChannelState: {self.state}\r\n"
                f"{p}ChannelStateDesc: {STATE_DESC.get(self.state, 'Unknown')}\r\n"
                f"{p}CallerIDNum: {_cid(self.cid_num)}\r\n"
                f"{p}CallerIDName: {_cid(self.cid_name)}\r\n"
                f"{p}ConnectedLineNum: {_cid(self.conn_num)}\r\n"
                f"{p}ConnectedLineName: {_cid(self.conn_name)}\r\n"
                f"{p}Language: {self.language}\r\n"
                f"{p}AccountCode: {self.accountcode}\r\n"
                f"{p}Context: {self.context}\r\n"
                f"{p}Exten: {self.exten}\r\n"
                f"{p}Priority: {self.priority}\r\n"
                f"{p}Uniqueid: {self.uniqueid}\r\n"
                f"{p}Linkedid: {self.linkedid}\r\n"
            )
            self._snaps[prefix] = text
        return text

    def touch(self) -> None:
        self._snaps.clear()

    def emit(self, name: str, flag: int, extra: str = "") -> None:
        self.pbx.hub.emit(name, flag, self.snap() + extra)

    # -- changes that publish events --------------------------------------------------------
    def set_state(self, state: int) -> None:
        if state == self.state or self.dead:
            return
        old, self.state = self.state, state
        self.pbx.devices.moved(self, old)
        self.touch()
        self.emit("Newstate", ev.CALL)
        if state == UP and self.answered_at is None:
            self.answered_at = self.pbx.clock.now()
        self.pbx.devices.channel_changed(self)

    def set_caller(self, num: str, name: str) -> None:
        if (num, name) == (self.cid_num, self.cid_name):
            return
        self.cid_num, self.cid_name = num, name
        self.touch()
        if not self.dead:
            self.emit(
                "NewCallerid",
                ev.CALL,
                "CID-CallingPres: 0 (Presentation Allowed, Not Screened)\r\n",
            )

    def set_connected(self, num: str, name: str) -> None:
        if (num, name) == (self.conn_num, self.conn_name):
            return
        self.conn_num, self.conn_name = num, name
        self.touch()
        if not self.dead:
            self.emit("NewConnectedLine", ev.CALL)

    def set_dialplan(self, context: str, exten: str, priority: int, appl: str, data: str) -> None:
        """Move to (context, exten, priority) running appl(data); Newexten if the CEP moved."""
        cep_changed = (
            (not self.appl and appl)
            or priority != self.priority
            or context != self.context
            or exten != self.exten
        )
        if cep_changed:
            self.context, self.exten, self.priority = context, exten, priority
            self.touch()
        self.appl, self.data = appl, data
        if cep_changed and appl and not self.dead:
            self.emit(
                "Newexten",
                ev.DIALPLAN,
                f"Extension: {exten}\r\nApplication: {appl}\r\nAppData: {data}\r\n",
            )

    def set_app(self, appl: str, data: str) -> None:
        """Change the running application without moving in the dialplan (no Newexten)."""
        if not self.appl and appl:
            self.set_dialplan(self.context, self.exten, self.priority, appl, data)
            return
        self.appl, self.data = appl, data

    def set_var(self, name: str, value: str) -> None:
        self.vars[name] = value
        if not self.dead:
            self.emit("VarSet", ev.DIALPLAN, f"Variable: {name}\r\nValue: {value}\r\n")

    def set_linkedid(self, linkedid: str) -> None:
        if linkedid != self.linkedid:
            self.linkedid = linkedid
            self.touch()

    # -- hang-up requests -------------------------------------------------------------------
    def request_hangup(self, cause: int | None = None) -> None:
        """A hang-up coming from outside (far end BYE, Local peer, AMI Hangup)."""
        if self.dead or self.softhangup:
            return
        self.softhangup = True
        self.hangup_requested = True
        self.hangup_at = self.pbx.clock.now()
        if cause is not None and not self.cause_set:
            self.hangup_cause = cause
            self.cause_set = True
        extra = f"Cause: {cause}\r\n" if cause is not None else ""
        self.emit("HangupRequest", ev.CALL, extra)
        self._hangup_hook()
        self.hangup_event.set()

    def _hangup_hook(self) -> None:
        hook, self.on_hangup = self.on_hangup, None
        if hook is not None:
            hook()

    def soft_hangup(self, cause: int = NORMAL_CLEARING, *, flag: int | None = APPUNLOAD) -> None:
        """ast_softhangup(chan, flag): SoftHangupRequest's Cause is the AST_SOFTHANGUP_* bit
        (16 when the PBX ends, 32 for AGI HANGUP), not a hang-up cause. flag=None is
        ast_softhangup_nolock() (Hangup(), the AMI Hangup action), which publishes nothing.
        `cause` becomes the hang-up cause unless the channel already has one."""
        if self.dead:
            return
        if not self.softhangup:
            self.hangup_at = self.pbx.clock.now()
        self.softhangup = True
        if cause and not self.cause_set:
            self.hangup_cause = cause
            self.cause_set = True
        if flag is not None:
            self.emit("SoftHangupRequest", ev.CALL, f"Cause: {flag}\r\n")
        self._hangup_hook()
        self.hangup_event.set()

    @property
    def hungup(self) -> bool:
        """ast_check_hangup(): also true while a Redirect (AST_SOFTHANGUP_ASYNCGOTO) is
        pending, so the running application unwinds as it would on a hang-up."""
        return self.softhangup or self.dead or self.after_goto is not None

    async def sleep(self, seconds: float) -> bool:
        """Wait simulated seconds; False if the channel was hung up meanwhile."""
        if self.hungup:
            return False
        if seconds <= 0:
            return True
        try:
            await asyncio.wait_for(self.hangup_event.wait(), self.pbx.clock.wall(seconds))
            return False
        except TimeoutError:
            return not self.hungup
