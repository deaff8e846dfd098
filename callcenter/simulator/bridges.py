"""Basic two-party bridges (BridgeCreate/Enter/Leave/Destroy) and Linkedid adoption."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING

from callcenter.simulator import events as ev

if TYPE_CHECKING:
    from callcenter.simulator.channels import Channel
    from callcenter.simulator.pbx import Pbx


class Bridge:
    def __init__(self, pbx: Pbx) -> None:
        self.pbx = pbx
        self.uniqueid = str(uuid.UUID(int=pbx.rng.getrandbits(128), version=4))
        self.channels: list[Channel] = []
        self.destroyed = False
        self.dissolved = asyncio.Event()  # set when the bridge is destroyed
        self.pbx.bridges[self.uniqueid] = self
        self._emit("BridgeCreate")

    def block(self, prefix: str = "") -> str:
        """The bridge snapshot; `prefix` names it in merge/transfer events (To, Orig...)."""
        p = prefix
        return (
            f"{p}BridgeUniqueid: {self.uniqueid}\r\n"
            f"{p}BridgeType: basic\r\n"
            f"{p}BridgeTechnology: simple_bridge\r\n"
            f"{p}BridgeCreator: <unknown>\r\n"
            f"{p}BridgeName: <unknown>\r\n"
            f"{p}BridgeNumChannels: {len(self.channels)}\r\n"
            f"{p}BridgeVideoSourceMode: none\r\n"
        )

    def _emit(self, name: str, chan: Channel | None = None) -> None:
        body = self.block() + (chan.snap() if chan is not None else "")
        self.pbx.hub.emit(name, ev.CALL, body)

    def enter(self, chan: Channel, swap: Channel | None = None) -> None:
        """BridgeEnter; `swap` is the channel `chan` replaces (Local optimisation)."""
        self.channels.append(chan)
        chan.bridge = self
        # ast_bridge_channel_update_linkedids(): everybody adopts the oldest Linkedid
        oldest = min((c.linkedid for c in self.channels), key=_linkedid_key)
        for c in self.channels:
            c.set_linkedid(oldest)
        extra = f"SwapUniqueid: {swap.uniqueid}\r\n" if swap is not None else ""
        self.pbx.hub.emit("BridgeEnter", ev.CALL, self.block() + chan.snap() + extra)
        if chan.vars.get("ATTENDEDTRANSFER"):
            # bridge_basic.c: entering a basic bridge ends the transfer the channel came from
            chan.set_var("ATTENDEDTRANSFER", "")

    def leave(self, chan: Channel) -> None:
        if chan not in self.channels:
            return
        self.channels.remove(chan)
        chan.bridge = None
        self._emit("BridgeLeave", chan)

    def destroy(self) -> None:
        if self.destroyed:
            return
        self.destroyed = True
        self.pbx.bridges.pop(self.uniqueid, None)
        self._emit("BridgeDestroy")
        self.dissolved.set()

    def dissolve(self, first: Channel) -> None:
        """bridge_dissolve(): `first` leaves, the others are pushed out, the bridge goes."""
        self.leave(first)
        for chan in list(self.channels):
            self.leave(chan)
        self.destroy()

    def peer_of(self, chan: Channel) -> Channel | None:
        for c in self.channels:
            if c is not chan:
                return c
        return None


def _linkedid_key(linkedid: str) -> tuple[float, int]:
    stamp = linkedid.rsplit("-", 1)[-1]
    sec, _, counter = stamp.partition(".")
    try:
        return (float(sec), int(counter or 0))
    except ValueError:
        return (float("inf"), 0)
