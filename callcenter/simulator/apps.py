"""Dialplan applications: Answer, AGI, Queue, MixMonitor, Playback, Dial, Hangup, Set, Wait,
Goto, GotoIf, NoOp, SendDTMF, Background, StopMixMonitor, UserEvent, Ringing, Busy, Congestion,
ChanSpy.

Each returns 0 to go on to the next priority, -1 to end the PBX (hang up), or raises Jump.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from callcenter.simulator import events as ev
from callcenter.simulator.channels import (
    CONGESTION,
    NORMAL_CLEARING,
    RINGING,
    UP,
    USER_BUSY,
    Channel,
)
from callcenter.simulator.pbx import APP_CONTINUE, APP_HANGUP, Jump

if TYPE_CHECKING:
    from callcenter.simulator.pbx import Pbx

log = logging.getLogger(__name__)


def _args(data: str) -> list[str]:
    from callcenter.simulator.dialplan import split_app_args

    return split_app_args(data) if data else []


async def execute(pbx: Pbx, chan: Channel, app: str, data: str) -> int:
    handler = APPS.get(app.lower())
    if handler is None:
        log.warning(
            "No application '%s' for extension (%s, %s, %s)",
            app,
            chan.context,
            chan.exten,
            chan.priority,
        )
        return APP_HANGUP
    return await handler(pbx, chan, data)


async def app_answer(pbx: Pbx, chan: Channel, data: str) -> int:
    pbx.answer(chan)
    return APP_CONTINUE


async def app_noop(pbx: Pbx, chan: Channel, data: str) -> int:
    return APP_CONTINUE


async def app_hangup(pbx: Pbx, chan: Channel, data: str) -> int:
    # pbx_builtin_hangup(): the given cause, else the channel's, else 16; no event here (the
    # SoftHangupRequest comes when the PBX ends)
    cause = int(data.strip()) if data.strip().isdigit() else 0
    chan.soft_hangup(cause or chan.hangup_cause or NORMAL_CLEARING, flag=None)
    return APP_HANGUP


async def app_set(pbx: Pbx, chan: Channel, data: str) -> int:
    name, sep, value = data.partition("=")
    if not sep:
        return APP_CONTINUE
    name = name.strip().lstrip("_")
    if name.upper().startswith("CALLERID(") and name.endswith(")"):
        part = name[9:-1].lower()
        if part in ("num", "number"):
            chan.set_caller(value, chan.cid_name)
        elif part == "name":
            chan.set_caller(chan.cid_num, value)
        return APP_CONTINUE
    if name.upper().startswith("CDR("):
        chan.vars[name] = value
        return APP_CONTINUE
    chan.set_var(name, value)
    return APP_CONTINUE


async def app_wait(pbx: Pbx, chan: Channel, data: str) -> int:
    try:
        seconds = float(data.strip() or 0)
    except ValueError:
        seconds = 0.0
    return APP_CONTINUE if await chan.sleep(seconds) else APP_HANGUP


def _goto_target(pbx: Pbx, chan: Channel, spec: str) -> tuple[str, str, int]:
    parts = [p.strip() for p in spec.split(",")]
    if len(parts) == 1:
        ctx, ext, pri = chan.context, chan.exten, parts[0]
    elif len(parts) == 2:
        ctx, ext, pri = chan.context, parts[0], parts[1]
    else:
        ctx, ext, pri = parts[0], parts[1], parts[2]
    if pri.isdigit():
        return ctx, ext, int(pri)
    return ctx, ext, pbx.dialplan.priority_of_label(ctx, ext, pri)


async def app_goto(pbx: Pbx, chan: Channel, data: str) -> int:
    raise Jump(*_goto_target(pbx, chan, data))


async def app_gotoif(pbx: Pbx, chan: Channel, data: str) -> int:
    cond, _, rest = data.partition("?")
    if_true, _, if_false = rest.partition(":")
    truth = cond.strip() not in ("", "0")
    target = if_true if truth else if_false
    if not target.strip():
        return APP_CONTINUE
    raise Jump(*_goto_target(pbx, chan, target))


async def app_playback(pbx: Pbx, chan: Channel, data: str) -> int:
    args = _args(data)
    files = (args[0] if args else "").split("&")
    failed = False
    for name in files:
        if not name:
            continue
        if not pbx.prompt_exists(chan, name):
            # playback_exec(): "Playback failed", PLAYBACKSTATUS=FAILED, the dialplan goes on
            log.warning("Playback failed on %s for %s", chan.name, name)
            failed = True
            break
        _, _ = await pbx.play(chan, name)
        if chan.hungup:
            chan.set_var("PLAYBACKSTATUS", "FAILED")
            return APP_HANGUP
    chan.set_var("PLAYBACKSTATUS", "FAILED" if failed else "SUCCESS")
    return APP_CONTINUE


async def app_background(pbx: Pbx, chan: Channel, data: str) -> int:
    args = _args(data)
    if chan.state != UP:
        pbx.answer(chan)
    for name in (args[0] if args else "").split("&"):
        if not name:
            continue
        if not pbx.prompt_exists(chan, name):
            # background_detect_exec(): "ast_streamfile failed", BACKGROUNDSTATUS=FAILED
            chan.set_var("BACKGROUNDSTATUS", "FAILED")
            return APP_CONTINUE
        digit, _ = await pbx.play(chan, name, escape="0123456789*#")
        if digit == "":
            return APP_HANGUP
        if digit:
            if pbx.dialplan.match(chan.context, digit):
                raise Jump(chan.context, digit, 1)
            return APP_CONTINUE
    return APP_CONTINUE


async def app_senddtmf(pbx: Pbx, chan: Channel, data: str) -> int:
    args = _args(data)
    digits = args[0] if args else ""
    duration = int(args[2]) if len(args) > 2 and args[2].isdigit() else 100
    for digit in digits:
        if digit == "w":
            if not await chan.sleep(0.5):
                return APP_HANGUP
            continue
        pbx.send_dtmf(chan, digit, duration)
        if not await chan.sleep(duration / 1000.0 + 0.25):
            return APP_HANGUP
    return APP_CONTINUE


async def app_mixmonitor(pbx: Pbx, chan: Channel, data: str) -> int:
    args = _args(data)
    filename = args[0] if args else ""
    options = args[1] if len(args) > 1 else ""
    if not filename:
        return APP_CONTINUE
    if not filename.startswith("/"):
        filename = f"{pbx.config.monitor_dir.rstrip('/')}/{filename}"
    chan.set_var("MIXMONITOR_FILENAME", filename)
    pbx.recorder.start(chan, filename, options)
    chan.emit("MixMonitorStart", ev.CALL)
    return APP_CONTINUE


async def app_stopmixmonitor(pbx: Pbx, chan: Channel, data: str) -> int:
    pbx.recorder.stop(chan, explicit=True)
    return APP_CONTINUE


async def app_userevent(pbx: Pbx, chan: Channel, data: str) -> int:
    args = _args(data)
    name = args[0] if args else ""
    body = "".join(f"{a}\r\n" for a in args[1:])
    pbx.hub.emit("UserEvent", ev.USER, chan.snap() + f"UserEvent: {name}\r\n" + body)
    return APP_CONTINUE


async def app_ringing(pbx: Pbx, chan: Channel, data: str) -> int:
    if chan.state != UP:
        chan.set_state(RINGING)
    return APP_CONTINUE


async def app_busy(pbx: Pbx, chan: Channel, data: str) -> int:
    chan.hangup_cause = USER_BUSY
    await chan.sleep(float(data) if data.strip().replace(".", "").isdigit() else 0)
    return APP_HANGUP


async def app_congestion(pbx: Pbx, chan: Channel, data: str) -> int:
    chan.hangup_cause = CONGESTION
    await chan.sleep(float(data) if data.strip().replace(".", "").isdigit() else 0)
    return APP_HANGUP


async def app_agi(pbx: Pbx, chan: Channel, data: str) -> int:
    from callcenter.simulator.agi import run_agi

    status = await run_agi(pbx, chan, data)
    chan.set_var("AGISTATUS", status)
    if status == "HANGUP" or chan.hungup:
        return APP_HANGUP
    return APP_CONTINUE


async def app_queue(pbx: Pbx, chan: Channel, data: str) -> int:
    return await pbx.queues.queue_exec(chan, _args(data))


async def app_dial(pbx: Pbx, chan: Channel, data: str) -> int:
    from callcenter.simulator.dial import dial_exec

    return await dial_exec(pbx, chan, _args(data))


async def app_chanspy(pbx: Pbx, chan: Channel, data: str) -> int:
    """ChanSpy(prefix,options): spy on a channel whose name starts with ``prefix-`` (not
    the spyer itself); ``ChanSpyStart`` / ``ChanSpyStop`` carry the Spyer and Spyee snapshots
    (captures/chanspy: the q, qw and qB variants look the same on AMI). When the spyee goes,
    ChanSpy looks for the next one until the spyer hangs up."""
    args = _args(data)
    prefix = (args[0] if args else "").strip()
    while not chan.hungup:
        spyee = next((c for name, c in pbx.channels.items()
                      if c is not chan and not c.dead and c.bridge is not None
                      and (not prefix or name.startswith(prefix + "-"))), None)
        if spyee is None:
            if not await chan.sleep(1.0):
                break
            continue
        pbx.hub.emit("ChanSpyStart", ev.CALL, chan.snap("Spyer") + spyee.snap("Spyee"))
        while not chan.hungup and not spyee.dead:
            if not await chan.sleep(0.2):
                break
        pbx.hub.emit("ChanSpyStop", ev.CALL, chan.snap("Spyer") + spyee.snap("Spyee"))
    return APP_HANGUP


APPS = {
    "answer": app_answer,
    "noop": app_noop,
    "hangup": app_hangup,
    "set": app_set,
    "wait": app_wait,
    "goto": app_goto,
    "gotoif": app_gotoif,
    "playback": app_playback,
    "background": app_background,
    "senddtmf": app_senddtmf,
    "mixmonitor": app_mixmonitor,
    "stopmixmonitor": app_stopmixmonitor,
    "userevent": app_userevent,
    "ringing": app_ringing,
    "busy": app_busy,
    "congestion": app_congestion,
    "agi": app_agi,
    "queue": app_queue,
    "dial": app_dial,
    "chanspy": app_chanspy,
}
