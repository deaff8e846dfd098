"""Device states (DeviceStateChange) of endpoints and queues, feeding queue member status."""

from __future__ import annotations

from typing import TYPE_CHECKING

from callcenter.simulator import events as ev

if TYPE_CHECKING:
    from callcenter.simulator.channels import Channel
    from callcenter.simulator.pbx import Pbx

# include/asterisk/devicestate.h
UNKNOWN, NOT_INUSE, INUSE, BUSY, INVALID, UNAVAILABLE, RINGING, RINGINUSE, ONHOLD = range(9)
STATE_NAMES = {
    UNKNOWN: "UNKNOWN",
    NOT_INUSE: "NOT_INUSE",
    INUSE: "INUSE",
    BUSY: "BUSY",
    INVALID: "INVALID",
    UNAVAILABLE: "UNAVAILABLE",
    RINGING: "RINGING",
    RINGINUSE: "RINGINUSE",
    ONHOLD: "ONHOLD",
}


class Devices:
    def __init__(self, pbx: Pbx) -> None:
        self.pbx = pbx
        self.states: dict[str, int] = {}
        self.counts: dict[str, list[int]] = {}  # device → live channels per channel state
        self.registered: set[str] = set()  # PJSIP endpoints with a contact (an actor)

    def emit(self, device: str, state: int) -> None:
        if self.states.get(device) == state:
            return
        self.states[device] = state
        self.pbx.hub.emit(
            "DeviceStateChange", ev.CALL, f"Device: {device}\r\nState: {STATE_NAMES[state]}\r\n"
        )
        self.pbx.queues.device_changed(device, state)

    def state_of(self, device: str) -> int:
        if device in self.states:
            return self.states[device]
        return self.compute(device)

    def compute(self, device: str) -> int:
        counts = self.counts.get(device) or [0] * 11
        live = sum(counts)
        if device.startswith("PJSIP/") and device not in self.registered and not live:
            return UNAVAILABLE
        if device.startswith("Local/"):
            return INUSE if counts[6] else NOT_INUSE
        ringing = counts[5] > 0
        inuse = any(counts[s] for s in (1, 2, 3, 4, 6, 7))
        if ringing and inuse:
            return RINGINUSE
        if ringing:
            return RINGING
        if inuse:
            return INUSE
        if device.startswith("PJSIP/") and device not in self.registered:
            return UNAVAILABLE
        return NOT_INUSE

    def add_channel(self, chan: Channel) -> None:
        counts = self.counts.get(chan.device)
        if counts is None:
            counts = self.counts[chan.device] = [0] * 11
        counts[chan.state] += 1

    def moved(self, chan: Channel, old: int) -> None:
        counts = self.counts[chan.device]
        counts[old] -= 1
        counts[chan.state] += 1

    def remove_channel(self, chan: Channel) -> None:
        counts = self.counts.get(chan.device)
        if counts is not None:
            counts[chan.state] -= 1
        self.channel_changed(chan)

    def channel_changed(self, chan: Channel) -> None:
        if chan.state == 4 and chan.local_half == 0 and chan.answered_at is None and chan.in_pbx:
            return  # inbound channel still ringing into the dialplan: no device change yet
        self.emit(chan.device, self.compute(chan.device))

    def set_registered(self, device: str, registered: bool) -> None:
        if registered:
            self.registered.add(device)
        else:
            self.registered.discard(device)
        self.emit(device, self.compute(device))
