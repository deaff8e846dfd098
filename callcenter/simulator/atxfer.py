"""Attended transfer as Asterisk 22's bridge_basic.c runs it after AMI Atxfer
(captures/attended_transfer, attended_transfer_dtmf_only).

manager.c queues the features.conf atxfer code and the target digits as DTMF frames on the
transferer's channel. The code is a feature only where the transferer may transfer (Queue()
option ``t`` for a member); elsewhere the digits simply pass through the bridge. The feature
holds the transferee (``Hold`` on the transferer, music on hold), takes the target from
``TRANSFER_EXTEN`` (else the ``pbx-transfer`` prompt eats the digits and it gives up), and
calls ``Local/<exten>@<TRANSFER_CONTEXT>`` into a consultation bridge with the transferer.
The transferer hanging up merges the consultation into the transferee's bridge
(``AttendedTransfer``); a target that is busy, does not answer or hangs up brings the
transferer back to the transferee.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from callcenter.simulator import events as ev
from callcenter.simulator.bridges import Bridge
from callcenter.simulator.channels import NORMAL_CLEARING, RINGING

if TYPE_CHECKING:
    from callcenter.simulator.channels import Channel
    from callcenter.simulator.pbx import Outbound, Pbx

DIGIT_GAP = 0.16  # between two queued DTMF frames, as the capture shows them
HOLD_AFTER_CODE = 0.1  # the feature starts once its last digit is read
DIGITS_AFTER_HOLD = 0.06  # the target digits follow the hold
GIVE_UP_AFTER = 20.6  # attended_transfer_dtmf_only: Hold 4.578 s, Unhold 25.183 s
NOANSWER_TIMEOUT = 15.0  # features.conf atxfernoanswertimeout (default 15 s)
OPTIMIZE_AFTER = 0.45  # the Local pair optimises itself away this long after the merge


def transfer_allowed(chan: Channel) -> bool:
    """Whether the bridge gives `chan` the DTMF transfer features (Queue/Dial option t/T)."""
    return chan.may_transfer and chan.bridge is not None


def queue_atxfer(pbx: Pbx, chan: Channel, code: str, exten: str) -> None:
    """manager.c action_atxfer(): the code and the digits become DTMF frames on `chan`."""
    if transfer_allowed(chan) and chan.bridge is not None and chan.bridge.peer_of(chan):
        transfer = AttendedTransfer(pbx, chan, code, exten)
        pbx.spawn(transfer.run(), name=f"atxfer {chan.name}")
        return
    pbx.spawn(_pass_through(pbx, chan, code + exten), name=f"atxfer digits {chan.name}")


async def _pass_through(pbx: Pbx, chan: Channel, digits: str) -> None:
    """No transfer feature: the bridge plays each queued frame to the far side."""
    await _play_frames(pbx, chan, digits, lambda: pbx.dtmf_path(chan)[1:])


def _read_frame(chan: Channel, digit: str) -> None:
    """A queued frame read by `chan`: DTMFEnd with no duration."""
    if not chan.dead:
        chan.emit("DTMFEnd", ev.DTMF, f"Digit: {digit}\r\nDurationMs: 0\r\nDirection: Received\r\n")


async def _play_frames(
    pbx: Pbx, chan: Channel, digits: str, path_of: Callable[[], list[tuple[Channel, str]]]
) -> None:
    """Each queued frame is read by `chan` and played to the channels ``path_of()`` names
    (begin, and the end 100 ms later, as a bridge emulates a digit), DIGIT_GAP apart
    whatever the event loop's delays."""
    clock = pbx.clock
    start = clock.now()
    for i, digit in enumerate(digits):
        if chan.dead:
            return
        _read_frame(chan, digit)
        path = path_of()
        for c, direction in path:
            c.emit("DTMFBegin", ev.DTMF, f"Digit: {digit}\r\nDirection: {direction}\r\n")
        if not await chan.sleep(start + i * DIGIT_GAP + 0.1 - clock.now()):
            return
        for c, direction in path:
            if not c.dead:
                c.emit(
                    "DTMFEnd",
                    ev.DTMF,
                    f"Digit: {digit}\r\nDurationMs: 100\r\nDirection: {direction}\r\n",
                )
        if not await chan.sleep(start + (i + 1) * DIGIT_GAP - clock.now()):
            return


class AttendedTransfer:
    """One attended transfer, from the feature code to the merge or the way back."""

    def __init__(self, pbx: Pbx, transferer: Channel, code: str, exten: str) -> None:
        assert transferer.bridge is not None
        self.pbx = pbx
        self.transferer = transferer
        self.code = code
        self.exten = exten
        self.orig: Bridge = transferer.bridge
        transferee = self.orig.peer_of(transferer)
        assert transferee is not None
        self.transferee: Channel = transferee
        self.consult: Bridge | None = None
        self.out: Outbound | None = None
        self.state = "collecting"  # calling, consulting, alone, done
        self.ringing = asyncio.Event()  # the target's phone rings

    # -- the feature ------------------------------------------------------------------------
    async def run(self) -> None:
        pbx, chan = self.pbx, self.transferer
        for i, digit in enumerate(self.code):
            pbx.clock.call_later(i * DIGIT_GAP, _read_frame, self.transferer, digit)
        if not await chan.sleep((len(self.code) - 1) * DIGIT_GAP + HOLD_AFTER_CODE):
            return
        if chan.bridge is not self.orig or self.transferee.hungup:
            return
        self._hold()
        target = chan.vars.get("TRANSFER_EXTEN", "")
        if not target:
            await self._collect_and_give_up()
            return
        context = chan.vars.get("TRANSFER_CONTEXT") or chan.context
        pbx.spawn(self._leak_digits(), name=f"atxfer digits {chan.name}")
        await self._consult(target, context)

    async def _leak_digits(self) -> None:
        """The target digits nobody collects: each is read by the transferer and passed
        through the consultation to the Local pair and the ringing target (begin, and
        the end 100 ms later, as a bridge emulates a digit)."""
        chan = self.transferer
        if not await chan.sleep(DIGITS_AFTER_HOLD):
            return
        # a simulated phone rings 50 ms after the request, a real one at once: the digits
        # wait for the ringing (at most a second) to meet the channels in the same states
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.ringing.wait(), self.pbx.clock.wall(1.0))
        await _play_frames(self.pbx, chan, self.exten, self._dtmf_path)

    def _dtmf_path(self) -> list[tuple[Channel, str]]:
        if self.out is None or self.transferer.bridge is not self.consult:
            return []
        one, two = self.out.chan, self.out.local2
        assert two is not None
        path = [(one, "Sent"), (two, "Received")]
        path += [(c, "Sent") for c in self.pbx.dialed_by(two)]
        return [(c, d) for c, d in path if not c.dead]

    def _hold(self) -> None:
        self.transferer.emit("Hold", ev.CALL)
        self.transferee.emit("MusicOnHoldStart", ev.CALL, "Class: default\r\n")

    def _unhold(self) -> None:
        if not self.transferer.dead:
            self.transferer.emit("Unhold", ev.CALL)
        if not self.transferee.dead:
            self.transferee.emit("MusicOnHoldStop", ev.CALL)

    async def _collect_and_give_up(self) -> None:
        """No TRANSFER_EXTEN: the prompt swallows the digits (only the first is seen) and
        the feature gives up; the transferee comes back."""
        if self.exten:
            self.pbx.clock.call_later(
                DIGITS_AFTER_HOLD, _read_frame, self.transferer, self.exten[0]
            )
        if await self.transferer.sleep(GIVE_UP_AFTER):
            self._unhold()
        self.state = "done"

    # -- the consultation -------------------------------------------------------------------
    async def _consult(self, target: str, context: str) -> None:
        pbx, chan = self.pbx, self.transferer
        from callcenter.simulator.pbx import Outbound

        one, two = pbx.new_local_pair(target, context, linkedid=chan.linkedid)
        out = Outbound(
            pbx,
            f"Local/{target}@{context}",
            one,
            two,
            appl="",
            cid=(chan.cid_num, chan.cid_name),
            requestor=None,
        )
        self.out = out
        chan.atxfer = self
        for name, half in (("TRANSFERERNAME", one), ("ATTENDEDTRANSFER", one)):
            half.set_var(name, chan.name)
        self.consult = Bridge(pbx)
        two.set_var("ATTENDEDTRANSFER", chan.name)
        two.set_var("TRANSFERERNAME", chan.name)
        two.set_caller(chan.cid_num, chan.cid_name)
        pbx.local_bridge_event(one, two)
        two.on_dial_ringing = self._target_ringing
        out.start()
        one.set_connected(chan.cid_num, chan.cid_name)
        self.consult.enter(one)
        self.orig.leave(chan)
        self.consult.enter(chan)
        one.set_var("BRIDGEPEER", chan.name)
        chan.set_var("BRIDGEPEER", one.name)
        chan.set_connected("", "")  # nobody yet at the far end of the consultation
        self.state = "calling"
        chan.on_hangup = self._transferer_hung_up
        await self._await_answer(out)
        if self.state in ("consulting", "alone"):
            await self._consultation_over(one)
        chan.atxfer = None

    def _target_ringing(self, target: Channel) -> None:
        """The target rings: the indication and its caller ID come back through the Local
        pair to the transferer (the feature's own dial reports ;1 ringing)."""
        assert self.out is not None
        one = self.out.chan
        self.ringing.set()
        if self.state != "calling" or one.dead:
            return
        num, name = self.pbx.caller_id_of(target)
        self.transferer.set_connected(num, name)
        one.set_state(RINGING)
        one.set_caller(num, name)
        self.pbx.hub.emit("DialState", ev.CALL, one.snap("Dest") + "DialStatus: RINGING\r\n")

    def _target_answered(self) -> None:
        """bridge_basic's dial of ;1 ends: DialEnd, the bridge re-announces the peers."""
        assert self.out is not None
        one, chan = self.out.chan, self.transferer
        self.pbx.hub.emit("DialEnd", ev.CALL, one.snap("Dest") + "DialStatus: ANSWER\r\n")
        one.set_var("BRIDGEPEER", chan.name)
        chan.set_var("BRIDGEPEER", one.name)

    async def _await_answer(self, out: Outbound) -> None:
        waits = {out.result, asyncio.ensure_future(self.transferer.hangup_event.wait())}
        try:
            done, _ = await asyncio.wait(
                waits,
                timeout=self.pbx.clock.wall(NOANSWER_TIMEOUT),
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            for w in waits:
                if w is not out.result:
                    w.cancel()
        answered = out.result in done and out.result.result().status == "ANSWER"
        if self.state == "calling" and answered:
            self.state = "consulting"
            self._target_answered()
        elif self.state == "calling":
            self._rebridge()  # busy, gone or no answer in time
        elif self.state == "alone" and not answered:
            self._hang_up_alone()

    async def _consultation_over(self, one: Channel) -> None:
        """Wait for the target's side to hang up (back to the transferee) or for the
        transferer (the hook completes the transfer)."""
        waits = {
            asyncio.ensure_future(one.hangup_event.wait()),
            asyncio.ensure_future(self.transferer.hangup_event.wait()),
        }
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
        if self.state == "consulting" and one.hungup:
            self._rebridge()
        elif self.state == "alone":
            self._hang_up_alone()

    def _hang_up_alone(self) -> None:
        """After the transferee left, the transferer and the target are a normal call: when
        one side hangs up the other is hung up too."""
        self.state = "done"
        self.transferer.on_hangup = None
        self._end_consultation()
        if not self.transferer.dead:
            self.pbx.destroy(self.transferer, NORMAL_CLEARING)

    def _end_consultation(self) -> None:
        """The consultation bridge goes; its Local ;1 is hung up (the target follows)."""
        pbx = self.pbx
        assert self.consult is not None and self.out is not None
        one = self.out.chan
        self.out.cancel_timers()
        for c in list(self.consult.channels):
            if c.vars.get("BRIDGEPEER"):
                c.set_var("BRIDGEPEER", "")
            self.consult.leave(c)
        self.consult.destroy()
        if not one.dead:
            pbx.destroy(one, NORMAL_CLEARING)

    def _rebridge(self) -> None:
        """rebridge_enter(): the transferer goes back to the transferee, hold ends."""
        chan = self.transferer
        self.state = "done"
        chan.on_hangup = None
        self._end_consultation()
        if chan.hungup or self.transferee.hungup or self.orig.destroyed:
            return
        self.orig.enter(chan)
        chan.set_var("BRIDGEPEER", self.transferee.name)
        self.transferee.set_var("BRIDGEPEER", chan.name)
        self._unhold()

    def transferee_gone(self) -> bool:
        """The transferee hung up while the transferer consults: the transferer and the
        target go on talking in a normal bridge (consulting_exit(), TRANSFEREE_HANGUP)."""
        if self.state not in ("calling", "consulting"):
            return False
        self.state = "alone"
        return True

    # -- completion -------------------------------------------------------------------------
    def _transferer_hung_up(self) -> None:
        """The transferer hangs up while calling or consulting: the bridges merge."""
        if self.state not in ("calling", "consulting") or self.transferee.hungup:
            return
        self.state = "done"
        self._complete()

    def _complete(self) -> None:
        pbx, chan, transferee = self.pbx, self.transferer, self.transferee
        assert self.consult is not None and self.out is not None
        one = self.out.chan
        chan.set_var("BRIDGEPEER", "")
        pbx.hub.emit("BridgeMerge", ev.CALL, self.orig.block("To") + self.consult.block("From"))
        self.consult.leave(one)
        self.orig.enter(one)
        transferee.emit("MusicOnHoldStop", ev.CALL)
        self.consult.leave(chan)
        transferee.set_var("BRIDGEPEER", one.name)
        one.set_var("BRIDGEPEER", transferee.name)
        pbx.hub.emit(
            "AttendedTransfer",
            ev.CALL,
            "Result: Success\r\n"
            + chan.snap("OrigTransferer")
            + self.orig.block("Orig")
            + chan.snap("SecondTransferer")
            + self.consult.block("Second")
            + transferee.snap("Transferee")
            + one.snap("TransferTarget")
            + "IsExternal: No\r\nDestType: Bridge\r\n"
            f"DestBridgeUniqueid: {self.orig.uniqueid}\r\n",
        )
        one.set_connected(transferee.cid_num, transferee.cid_name)
        if chan.attended_transferred is not None:
            chan.attended_transferred()
        transferee.set_connected(one.cid_num, one.cid_name)
        self.consult.destroy()
        for target in self.pbx.dialed_by(self.out.local2):
            target.set_connected(transferee.cid_num, transferee.cid_name)
        pbx.destroy(chan, NORMAL_CLEARING)  # the transferer's channel has nowhere to go
        pbx.clock.call_later(OPTIMIZE_AFTER, self._optimize)

    def _optimize(self) -> None:
        """Local channel optimisation: the target's channel replaces the Local pair in the
        transferee's bridge and the pair hangs up."""
        pbx = self.pbx
        assert self.out is not None and self.out.local2 is not None
        one, two = self.out.chan, self.out.local2
        inner = two.bridge
        source = inner.peer_of(two) if inner is not None else None
        outer = one.bridge
        if one.dead or two.dead or inner is None or outer is None or source is None:
            return
        pair = one.snap("LocalOne") + two.snap("LocalTwo")
        n = pbx.local_optimizations
        pbx.local_optimizations += 1
        pbx.hub.emit(
            "LocalOptimizationBegin",
            ev.CALL,
            pair + source.snap("Source") + f"DestUniqueId: {two.uniqueid}\r\nId: {n}\r\n",
        )
        inner.leave(source)
        one.set_var("BRIDGEPEER", "")
        outer.leave(one)
        outer.enter(source, swap=one)
        peer = outer.peer_of(source)
        if peer is not None:
            peer.set_var("BRIDGEPEER", source.name)
            source.set_var("BRIDGEPEER", peer.name)
        two.set_var("BRIDGEPEER", "")
        two.set_caller(one.conn_num, one.conn_name)
        pbx.hub.emit(
            "LocalOptimizationEnd",
            ev.CALL,
            one.snap("LocalOne") + two.snap("LocalTwo") + f"Success: No\r\nId: {n}\r\n",
        )
        inner.leave(two)  # the Dial running on ;2 sees its callee gone elsewhere
        pbx.destroy(one, NORMAL_CLEARING)
