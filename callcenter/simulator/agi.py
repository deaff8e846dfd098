"""The AGI application: a simulated channel driven by a FastAGI server (agi_client.py speaks
the wire protocol). Each command is published as AGIExecStart/AGIExecEnd like res_agi.c."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from callcenter.simulator import events as ev
from callcenter.simulator.channels import EXPLICIT, UP, Channel

if TYPE_CHECKING:
    from callcenter.simulator.pbx import Pbx

log = logging.getLogger(__name__)


class SimAgiChannel:
    """AgiChannel (see agi_client.py) over a simulated channel."""

    def __init__(self, pbx: Pbx, chan: Channel) -> None:
        self.pbx = pbx
        self.chan = chan
        self.hangup_event = chan.hangup_event

    @property
    def hung_up(self) -> bool:
        return self.chan.hungup

    @property
    def state(self) -> int:
        return self.chan.state

    def command_events(self, command: str) -> Callable[[int, str], None]:
        """res_agi's AGIExecStart now and AGIExecEnd (ResultCode, Result) when it is done;
        both also on a hung-up channel, which lives until the FastAGI server closes."""
        cid = self.pbx.rng.randrange(1, 2**31)
        if not self.chan.dead:
            self.chan.emit("AGIExecStart", ev.AGI, f"CommandId: {cid}\r\nCommand: {command}\r\n")

        def finished(code: int, result: str) -> None:
            if not self.chan.dead:
                self.chan.emit(
                    "AGIExecEnd",
                    ev.AGI,
                    f"CommandId: {cid}\r\nCommand: {command}\r\nResultCode: {code}\r\n"
                    f"Result: {result}\r\n",
                )

        return finished

    async def answer(self) -> int:
        if self.chan.state != UP and not self.chan.hungup:
            self.pbx.answer(self.chan)
        return -1 if self.chan.hungup else 0

    async def stream_file(self, name: str, escape_digits: str) -> tuple[int, int]:
        if not self.pbx.prompt_exists(self.chan, name):
            return -1, 0  # handle_streamfile(): ast_openstream() failed
        digit, played = await self.pbx.play(self.chan, name, escape_digits)
        endpos = int(played * 8000)
        if digit == "":
            return -1, endpos
        return (ord(digit) if digit else 0), endpos

    async def wait_for_digit(self, timeout_ms: int) -> int:
        timeout = None if timeout_ms < 0 else timeout_ms / 1000.0
        digit = await self.pbx.read_digit(self.chan, timeout)
        if digit == "":
            return -1
        return ord(digit) if digit else 0

    async def get_data(self, name: str, timeout_ms: int, max_digits: int) -> tuple[str, bool]:
        digits = ""
        timed_out = False
        first, _ = await self.pbx.play(self.chan, name, "0123456789*#") if name else (None, 0.0)
        if first == "":
            return digits, False
        if first:
            if first == "#":
                return digits, False
            digits += first
        timeout = (timeout_ms if timeout_ms > 0 else 6000) / 1000.0
        while (max_digits <= 0 or len(digits) < max_digits) and not self.chan.hungup:
            digit = await self.pbx.read_digit(self.chan, timeout)
            if digit is None:
                timed_out = True
                break
            if digit == "" or digit == "#":
                break
            digits += digit
        return digits, timed_out

    async def say_digits(self, digits: str, escape: str) -> int:
        result = 0
        for _ in digits:
            if escape:
                digit = await self.pbx.read_digit(self.chan, 0.6, escape)
                if digit:
                    result = ord(digit)
                    break
                if digit == "":
                    result = -1
                    break
            elif not await self.chan.sleep(0.6):
                result = -1
                break
        return result

    async def say_number(self, number: int, escape: str) -> int:
        return await self.say_digits(str(number), escape)

    async def record_file(
        self, path: str, fmt: str, escape: str, timeout_ms: int
    ) -> tuple[int, int]:
        seconds = (timeout_ms if timeout_ms > 0 else 10000) / 1000.0
        start = self.pbx.clock.now()
        digit = await self.pbx.read_digit(self.chan, seconds, escape or None) if escape else None
        if not escape:
            await self.chan.sleep(seconds)
        endpos = int((self.pbx.clock.now() - start) * 8000)
        if self.chan.hungup:
            return -1, endpos
        return (ord(digit) if digit else 0), endpos

    def set_variable(self, name: str, value: str) -> None:
        self.chan.set_var(name, value)

    def get_variable(self, name: str) -> str | None:
        from callcenter.simulator.pbx import ChannelVars

        try:
            value: str | None = ChannelVars(self.pbx, self.chan)[name]
        except KeyError:
            value = None
            m = re.fullmatch(r"(\w+)\((.*)\)", name)
            if m and m.group(1).upper() in self.pbx._functions_for(self.chan):
                value = self.pbx._functions_for(self.chan)[m.group(1).upper()](m.group(2))
        return value

    async def exec_app(self, app: str, args: str) -> int:
        from callcenter.simulator import apps
        from callcenter.simulator.pbx import Jump

        previous = (self.chan.appl, self.chan.data)
        self.chan.set_app(app, args)
        try:
            res = await apps.execute(self.pbx, self.chan, app, args)
        except Jump:
            res = 0
        self.chan.set_app(*previous)
        return res

    async def hangup(self) -> None:
        self.chan.soft_hangup(flag=EXPLICIT)  # handle_hangup(): ast_softhangup(EXPLICIT)

    def verbose(self, message: str, level: int) -> None:
        log.info("agi verbose channel=%s level=%s message=%s", self.chan.name, level, message)

    def set_music(self, on: bool, cls: str | None = None) -> None:
        if on:
            self.chan.emit("MusicOnHoldStart", ev.CALL, f"Class: {cls or 'default'}\r\n")
        else:
            self.chan.emit("MusicOnHoldStop", ev.CALL)


def rewrite_url(url: str, host: str | None, port: int | None) -> str:
    if not host and not port:
        return url
    m = re.match(r"^(agi://)([^/:]+)(?::(\d+))?(/.*)?$", url)
    if not m:
        return url
    new_host = host or m.group(2)
    new_port = port or (int(m.group(3)) if m.group(3) else None)
    hostport = f"{new_host}:{new_port}" if new_port else new_host
    return f"{m.group(1)}{hostport}{m.group(4) or ''}"


async def run_agi(pbx: Pbx, chan: Channel, data: str) -> str:
    from callcenter.simulator.agi_client import build_agi_env, run_fastagi
    from callcenter.simulator.dialplan import split_app_args

    args = split_app_args(data) if data else []
    url = args[0] if args else ""
    if not url.startswith("agi://"):
        log.warning("only FastAGI (agi://) is simulated, got %r", url)
        return "FAILURE"
    env = build_agi_env(
        chan.name,
        chan.uniqueid,
        chan.cid_num,
        chan.cid_name,
        chan.context,
        chan.exten,
        chan.priority,
        language=chan.language,
        type=chan.tech,
        dnid=getattr(chan, "dnid", "unknown"),
        accountcode=chan.accountcode,
        args=args[1:],
        url=url,
    )
    target = rewrite_url(url, pbx.config.agi_host, pbx.config.agi_port)
    channel = SimAgiChannel(pbx, chan)
    return await run_fastagi(
        target, env, channel, on_command=channel.command_events, script_url=url
    )
