"""The Dial application (app_dial.c), enough for agents' extensions and two-leg callbacks."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from callcenter.simulator.channels import NORMAL_CLEARING, UP, Channel

if TYPE_CHECKING:
    from callcenter.simulator.pbx import Outbound, Pbx


async def dial_exec(pbx: Pbx, chan: Channel, args: list[str]) -> int:
    from callcenter.simulator.pbx import APP_CONTINUE, APP_HANGUP

    targets = [t for t in (args[0] if args else "").split("&") if t]
    timeout = (
        float(args[1]) if len(args) > 1 and args[1].strip().replace(".", "").isdigit() else None
    )
    options = args[2] if len(args) > 2 else ""
    outs: list[Outbound] = []
    for target in targets:
        out = pbx.request(target, requestor=chan, appl="AppDial", cid=(chan.cid_num, chan.cid_name))
        if out is None:
            continue
        out.announce(target.split("/", 1)[1] if "/" in target else target)
        outs.append(out)
    if not outs:
        chan.set_var("DIALSTATUS", "CHANUNAVAIL")
        return APP_CONTINUE
    for out in outs:
        out.start()
    winner: Outbound | None = None
    statuses: list[str] = []
    pending = {out.result: out for out in outs}
    loop_deadline = None if timeout is None else pbx.clock.now() + timeout
    while pending and winner is None:
        hang = asyncio.ensure_future(chan.hangup_event.wait())
        wall = (
            None
            if loop_deadline is None
            else pbx.clock.wall(max(0.0, loop_deadline - pbx.clock.now()))
        )
        try:
            done, _ = await asyncio.wait(
                set(pending) | {hang}, timeout=wall, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            hang.cancel()
        if chan.hungup:
            for out in pending.values():
                out.finish("CANCEL", cause=0)
            chan.set_var("DIALSTATUS", "CANCEL")
            return APP_HANGUP
        if not done:
            for out in pending.values():
                out.finish("NOANSWER", cause=0)
            statuses.append("NOANSWER")
            pending.clear()
            break
        for fut in done:
            out = pending.pop(fut)
            res = fut.result()
            if res.status == "ANSWER" and winner is None:
                winner = out
            else:
                status = {"HANGUP": "NOANSWER"}.get(res.status, res.status)
                out.finish(status)
                statuses.append(status)
    if winner is None:
        final = (
            "BUSY"
            if "BUSY" in statuses
            else "CONGESTION"
            if "CONGESTION" in statuses
            else "NOANSWER"
        )
        chan.set_var("DIALSTATUS", final)
        return APP_CONTINUE
    peer = winner.chan
    if peer.tech == "PJSIP":
        chan.set_connected(peer.device.split("/", 1)[1], "")
    peer.set_connected(chan.cid_num, chan.cid_name)
    chan.set_var("DIALSTATUS", "ANSWER")
    winner.publish_end("ANSWER")
    if chan.state != UP:  # the caller is answered after DialEnd (captures/attended_transfer)
        pbx.answer(chan)
    for out in pending.values():
        out.finish("CANCEL", cause=26)
    bridge = pbx.bridge_pair(peer, chan)
    await pbx.hold_bridge(peer, chan)
    if peer.bridge is not None and peer.bridge is not bridge:
        # a Local channel optimisation moved the callee into another bridge: it lives on
        pbx.leave_bridge(chan)
        if not bridge.channels:
            bridge.destroy()
        pbx.after_bridge(chan)
        return APP_HANGUP
    pbx.unbridge_vars(chan, peer)
    pbx.leave_bridge(chan)
    pbx.leave_bridge(peer)
    if peer.after_goto is not None:
        pbx.after_bridge(peer)  # the callee was redirected: it lives on elsewhere
    else:
        pbx.destroy(peer, NORMAL_CLEARING)
    pbx.after_bridge(chan)  # raises Jump when the caller was redirected
    if "g" in options and not chan.hungup:
        return APP_CONTINUE
    return APP_HANGUP
