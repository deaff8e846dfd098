"""Asterisk's side of FastAGI: connect to an AGI server and run its commands on a channel.

The simulator core implements `AgiChannel`; this module speaks the wire protocol as
Asterisk 22's res_agi.c does, so that the project's FastAGI server meets the real behaviour:

- the environment (`agi_network`, `agi_network_script`, then `setup_env()`'s order), `\\n` endings;
- command lines split by res_agi's `parse_args()` (quotes, backslash escapes; only `\\n` is
  stripped, so a server sending CRLF gets `510` just as from Asterisk);
- replies `200 result=N [(data)] [endpos=N]`, `510`, `511`, `520-...`/`520 End of proper usage.`;
- hang-up: the command in progress is answered `200 result=-1`, then one unrequested bare
  `HANGUP` line; afterwards the channel is dead (511 for media commands, 200 for variables,
  EXEC, VERBOSE) and the socket stays open until the server closes it. After the server
  closes, Asterisk writes one more `HANGUP` line (run_agi's "notify process"), ignored here
  if the socket is gone.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar, runtime_checkable
from urllib.parse import urlsplit

from callcenter.simulator.dialplan import substitute

log = logging.getLogger(__name__)

DEFAULT_PORT = 4573
AGI_VERSION = "22.10.1"
SAMPLES_PER_SECOND = 8000  # endpos is a sample offset at 8 kHz
MAX_ARGS = 128
LINE_LIMIT = 1 << 20  # longest command line accepted (Asterisk reads 8 KiB chunks)
# ast_app_getdata_full(): timeout 0 means 6 s for the first digit; negative means "forever".
GET_DATA_DEFAULT_TIMEOUT_MS = 6000
GET_DATA_FOREVER_MS = 1_000_000_000

SUCCESS = "SUCCESS"
FAILURE = "FAILURE"
HANGUP = "HANGUP"

T = TypeVar("T")


@runtime_checkable
class AgiChannel(Protocol):
    """The channel an AGI script drives; implemented by the simulator core.

    Results follow Asterisk: digits are ASCII codes (0 = none), -1 = hang-up or error.
    `hangup_event` is set when the caller hangs up so a pending command is answered at once.
    Optional extras used when present: `state: int` (AST_STATE_*, for CHANNEL STATUS),
    `async say_number(number: int, escape: str) -> int`, `set_music(on: bool, cls: str|None)`.
    """

    hangup_event: asyncio.Event

    @property
    def hung_up(self) -> bool: ...

    async def answer(self) -> int: ...

    async def stream_file(self, name: str, escape_digits: str) -> tuple[int, int]: ...

    async def wait_for_digit(self, timeout_ms: int) -> int: ...

    async def get_data(self, name: str, timeout_ms: int, max_digits: int) -> tuple[str, bool]: ...

    async def say_digits(self, digits: str, escape: str) -> int: ...

    async def record_file(
        self, path: str, fmt: str, escape: str, timeout_ms: int
    ) -> tuple[int, int]: ...

    def set_variable(self, name: str, value: str) -> None: ...

    def get_variable(self, name: str) -> str | None: ...

    async def exec_app(self, app: str, args: str) -> int: ...

    async def hangup(self) -> None: ...

    def verbose(self, message: str, level: int) -> None: ...


def build_agi_env(
    channel_name: str,
    uniqueid: str,
    callerid_num: str,
    callerid_name: str,
    context: str,
    extension: str,
    priority: int | str,
    language: str = "en",
    type: str = "PJSIP",  # noqa: A002 - Asterisk's own name for the field
    dnid: str = "unknown",
    accountcode: str = "",
    args: Sequence[str] = (),
    url: str = "agi://127.0.0.1/",
) -> dict[str, str]:
    """The variables of res_agi's setup_env(), in its order (see fastagi_session.txt).

    `agi_network`/`agi_network_script` are not included: run_fastagi() sends them first,
    derived from the URL, as launch_netscript() does. Empty caller ID becomes `unknown`.
    """
    env = {
        "agi_request": url,
        "agi_channel": channel_name,
        "agi_language": language,
        "agi_type": type,
        "agi_uniqueid": uniqueid,
        "agi_version": AGI_VERSION,
        "agi_callerid": callerid_num or "unknown",
        "agi_calleridname": callerid_name or "unknown",
        "agi_callingpres": "0",
        "agi_callingani2": "0",
        "agi_callington": "0",
        "agi_callingtns": "0",
        "agi_dnid": dnid or "unknown",
        "agi_rdnis": "unknown",
        "agi_context": context,
        "agi_extension": extension,
        "agi_priority": str(priority),
        "agi_enhanced": "0.0",
        "agi_accountcode": accountcode,
        "agi_threadid": str(threading.get_ident()),
    }
    for number, value in enumerate(args, start=1):
        env[f"agi_arg_{number}"] = value
    return env


@dataclass(frozen=True)
class AgiTarget:
    """Where a FastAGI URL points: launch_netscript() splits host[:port] from the script."""

    host: str
    port: int
    script: str


def parse_agi_url(url: str) -> AgiTarget:
    """Split `agi://host[:port][/script?args]`; the script keeps its query string."""
    if not url.lower().startswith("agi://"):
        raise ValueError(f"not a FastAGI URL (agi://host[:port]/script): {url!r}")
    rest = url[len("agi://") :]
    hostport, _, script = rest.partition("/")
    parts = urlsplit(f"//{hostport}")
    if not parts.hostname:
        raise ValueError(f"FastAGI URL without a host: {url!r}")
    return AgiTarget(parts.hostname, parts.port or DEFAULT_PORT, script)


def parse_agi_args(line: str) -> list[str]:
    """Split a command line exactly like res_agi's parse_args().

    Whitespace separates words unless quoted or escaped; `"` toggles quoting (and starts a
    word, so `""` is an empty argument); `\\` makes the next character literal.
    """
    words: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    in_word = False
    for char in line:
        if char == '"' and not escaped:
            quoted = not quoted
            if quoted and not in_word:
                in_word = True
            escaped = False
        elif char in " \t" and not quoted and not escaped:
            if in_word:
                words.append("".join(current))
                current = []
            in_word = False
        elif char == "\\" and not escaped:
            escaped = True
        else:
            in_word = True
            current.append(char)
            escaped = False
    if in_word:
        words.append("".join(current))
    return words[: MAX_ARGS - 1]


def _scan_int(text: str | None) -> int | None:
    """C's sscanf("%d"): leading integer or None."""
    match = re.match(r"\s*([+-]?\d+)", text or "")
    return int(match.group(1)) if match else None


def _atoi(text: str | None) -> int:
    value = _scan_int(text)
    return value if value is not None else 0


def _ast_true(value: str | None) -> bool:
    return (value or "").lower() in {"yes", "true", "y", "t", "1", "on"}


def _ast_false(value: str | None) -> bool:
    return (value or "").lower() in {"no", "false", "n", "f", "0", "off"}


class ShowUsage(Exception):
    """A handler's RESULT_SHOWUSAGE: the syntax was wrong."""


@dataclass
class Outcome:
    """A handler's reply lines and whether it is res_agi's RESULT_FAILURE."""

    lines: list[str]
    failure: bool = False


Handler = Callable[["AgiSession", list[str]], Awaitable[Outcome]]
# before a command: called with its line; returns what to call when it is done, with
# agi_handle_command()'s ResultCode and Result for AGIExecEnd (200 Success, -1 Failure,
# 520 Usage, 510/511 with the reply's text)
CommandHook = Callable[[str], Callable[[int, str], None]]

UNKNOWN = (510, "Invalid or unknown command")
DEAD = (511, "Command Not Permitted on a dead channel or intercept routine")


@dataclass(frozen=True)
class AgiCommand:
    words: tuple[str, ...]
    dead_ok: bool  # res_agi's `dead` column: may run on a hung-up channel
    usage: str
    handler: Handler | None


class _ChannelVariables(Mapping[str, str]):
    """The channel's variables as a Mapping, for GET FULL VARIABLE and AGIEXECFULL."""

    def __init__(self, channel: AgiChannel) -> None:
        self._channel = channel

    def __getitem__(self, key: str) -> str:
        value = self._channel.get_variable(key)
        if value is None:
            raise KeyError(key)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


class _ChannelFunctions(Mapping[str, Callable[[str], str]]):
    """Dialplan functions read through the channel: get_variable("CALLERID(num)")."""

    def __init__(self, channel: AgiChannel) -> None:
        self._channel = channel

    def __getitem__(self, name: str) -> Callable[[str], str]:
        return lambda args: self._channel.get_variable(f"{name}({args})") or ""

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def _expand(channel: AgiChannel, text: str) -> str:
    """ast_str_substitute_variables() on the channel."""
    return substitute(text, _ChannelVariables(channel), _ChannelFunctions(channel))


class AgiSession:
    """One FastAGI conversation: reads commands, runs them on the channel, writes replies."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        channel: AgiChannel,
        channel_name: str,
        on_command: CommandHook | None = None,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.channel = channel
        self.channel_name = channel_name
        self.dead = channel.hung_up or channel.hangup_event.is_set()
        self.status = SUCCESS
        self.send_sighup = not _ast_false(channel.get_variable("AGISIGHUP"))
        self.exit_on_hangup = _ast_true(channel.get_variable("AGIEXITONHANGUP"))
        self.on_command = on_command

    async def send(self, text: str) -> None:
        """ast_agi_send(): write and ignore a closed socket, as ast_carefulwrite does."""
        try:
            self.writer.write(text.encode("utf-8", "surrogateescape"))
            await self.writer.drain()
        except (ConnectionError, OSError) as exc:
            log.debug("agi write failed error=%s", exc)

    def channel_gone(self) -> bool:
        return self.channel.hung_up or self.channel.hangup_event.is_set()

    async def race_hangup(self, operation: Awaitable[T]) -> tuple[T | None, float]:
        """Run a channel operation; None if the caller hangs up first (result -1 at once)."""
        started = time.monotonic()
        task = asyncio.ensure_future(operation)
        waiter = asyncio.ensure_future(self.channel.hangup_event.wait())
        try:
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        elapsed = time.monotonic() - started
        if task.done():
            return task.result(), elapsed
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        return None, elapsed

    async def run(self) -> str:
        """run_agi()'s loop: until the server closes the socket (or AGIEXITONHANGUP)."""
        pending_line: asyncio.Future[bytes] | None = None
        while True:
            if not self.dead and self.channel_gone():
                await self._enter_dead_mode()
                if self.exit_on_hangup:
                    break
            if pending_line is None:
                pending_line = asyncio.ensure_future(self.reader.readline())
            if not self.dead:
                waiter = asyncio.ensure_future(self.channel.hangup_event.wait())
                await asyncio.wait({pending_line, waiter}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                if not pending_line.done():
                    continue
            try:
                raw = await pending_line
            except (ConnectionError, OSError, ValueError) as exc:  # reset, or a runaway line
                log.warning("agi read failed channel=%s error=%r", self.channel_name, exc)
                raw = b""
            pending_line = None
            if not raw:
                break
            line = raw.decode("utf-8", "surrogateescape")
            if line.endswith("\n"):
                line = line[:-1]
            if line[:7].lower() == "failure":
                self.status = FAILURE
                break
            await self.handle(line)
        if pending_line is not None:
            pending_line.cancel()
        if self.send_sighup:
            await self.send("HANGUP\n")
        return self.status

    async def _enter_dead_mode(self) -> None:
        """The hang-up noticed: AGISTATUS=HANGUP unless already failed, one bare HANGUP line."""
        self.dead = True
        if self.status == SUCCESS:
            self.status = HANGUP
        log.info("agi channel hung up channel=%s", self.channel_name)
        if self.send_sighup:
            await self.send("HANGUP\n")

    async def handle(self, line: str) -> None:
        """One command line; the on_command hook sees it before and its result after."""
        finished = self.on_command(line) if self.on_command is not None else None
        code, text = await self._handle(line)
        if finished is not None:
            finished(code, text)

    async def _handle(self, line: str) -> tuple[int, str]:
        """agi_handle_command(): find, check dead-mode permission, run, send the reply;
        returns the ResultCode and Result that AGIExecEnd reports."""
        argv = parse_agi_args(line)
        command = find_command(argv)
        log.debug("agi command channel=%s line=%r", self.channel_name, line)
        if command is None or command.handler is None:
            await self.send(f"{UNKNOWN[0]} {UNKNOWN[1]}\n")
            return UNKNOWN
        if self.dead and not command.dead_ok:
            await self.send(f"{DEAD[0]} {DEAD[1]}\n")
            return DEAD
        try:
            outcome = await command.handler(self, argv)
        except ShowUsage:
            await self.send(_usage_reply(command))
            return 520, "Usage"
        if outcome.lines:
            await self.send("".join(f"{reply}\n" for reply in outcome.lines))
        if outcome.failure and (self.dead or not self.channel_gone()):
            self.status = FAILURE
        # RESULT_FAILURE ("usually because the channel hung up") is -1, not a reply code
        return (-1, "Failure") if outcome.failure else (200, "Success")


def _usage_reply(command: AgiCommand) -> str:
    if not command.usage:
        return "520 Invalid command syntax.  Proper usage not available.\n"
    return (
        "520-Invalid command syntax.  Proper usage follows:\n"
        f"{command.usage}\n"
        "520 End of proper usage.\n"
    )


def _hung_endpos(elapsed_s: float, offset: int = 0) -> int:
    """Where playback stood when the caller hung up: samples played at 8 kHz."""
    return offset + int(elapsed_s * SAMPLES_PER_SECOND)


async def _answer(session: AgiSession, argv: list[str]) -> Outcome:
    result, _ = await session.race_hangup(session.channel.answer())
    res = -1 if result is None else result
    return Outcome([f"200 result={res}"], failure=res < 0)


async def _asyncagi_break(session: AgiSession, argv: list[str]) -> Outcome:
    return Outcome(["200 result=0"])


async def _channel_status(session: AgiSession, argv: list[str]) -> Outcome:
    if len(argv) not in (2, 3):
        raise ShowUsage
    if len(argv) == 3 and argv[2] != session.channel_name:
        return Outcome(["200 result=-1"])
    state = getattr(session.channel, "state", 6)
    return Outcome([f"200 result={int(state)}"])


async def _exec(session: AgiSession, argv: list[str]) -> Outcome:
    if len(argv) < 2:
        raise ShowUsage
    data = argv[2] if len(argv) > 2 else ""
    if _ast_true(session.channel.get_variable("AGIEXECFULL")):
        data = _expand(session.channel, data)
    if session.dead:
        res = await session.channel.exec_app(argv[1], data)
    else:
        result, _ = await session.race_hangup(session.channel.exec_app(argv[1], data))
        res = -1 if result is None else result
    lines = [f"200 result={res}"]
    # handle_exec returns the application's result as its own status ("users depend on
    # this"): 1 reads as RESULT_SHOWUSAGE and 2 as RESULT_FAILURE.
    if res == 1:
        return Outcome([*lines, _usage_reply(COMMANDS_BY_WORDS[("exec",)]).rstrip("\n")])
    return Outcome(lines, failure=res == 2)


async def _get_data(session: AgiSession, argv: list[str]) -> Outcome:
    if len(argv) < 3:
        raise ShowUsage
    timeout = _atoi(argv[3]) if len(argv) >= 4 else 0
    max_digits = _atoi(argv[4]) if len(argv) >= 5 else 1024
    if timeout == 0:
        timeout = GET_DATA_DEFAULT_TIMEOUT_MS
    elif timeout < 0:
        timeout = GET_DATA_FOREVER_MS
    result, _ = await session.race_hangup(session.channel.get_data(argv[2], timeout, max_digits))
    if result is None:
        return Outcome(["200 result=-1"])
    digits, timed_out = result
    return Outcome([f"200 result={digits} (timeout)" if timed_out else f"200 result={digits}"])


async def _get_full_variable(session: AgiSession, argv: list[str]) -> Outcome:
    if len(argv) not in (4, 5):
        raise ShowUsage
    if len(argv) == 5 and argv[4] != session.channel_name:
        return Outcome(["200 result=0"])
    value = _expand(session.channel, argv[3])
    return Outcome([f"200 result=1 ({value})"])


async def _get_option(session: AgiSession, argv: list[str]) -> Outcome:
    if len(argv) not in (4, 5):
        raise ShowUsage
    escape = argv[3]
    timeout = _atoi(argv[4]) if len(argv) == 5 else 5000
    result, elapsed = await session.race_hangup(session.channel.stream_file(argv[2], escape))
    if result is None:
        return Outcome([f"200 result=-1 endpos={_hung_endpos(elapsed)}"], failure=True)
    res, endpos = result
    if res == 0:
        digit, _ = await session.race_hangup(session.channel.wait_for_digit(timeout))
        res = -1 if digit is None else digit
        if res > 0 and chr(res) not in escape:
            res = 0
    return Outcome([f"200 result={res} endpos={endpos}"], failure=res < 0)


async def _get_variable(session: AgiSession, argv: list[str]) -> Outcome:
    if len(argv) != 3:
        raise ShowUsage
    value = session.channel.get_variable(argv[2])
    return Outcome(["200 result=0" if value is None else f"200 result=1 ({value})"])


async def _hangup(session: AgiSession, argv: list[str]) -> Outcome:
    if len(argv) > 2:
        raise ShowUsage
    if len(argv) == 2 and argv[1] != session.channel_name:
        return Outcome(["200 result=-1"])
    await session.channel.hangup()
    return Outcome(["200 result=1"])


async def _noop(session: AgiSession, argv: list[str]) -> Outcome:
    return Outcome(["200 result=0"])


async def _record_file(session: AgiSession, argv: list[str]) -> Outcome:
    if len(argv) < 6:
        raise ShowUsage
    timeout = _scan_int(argv[5])
    if timeout is None:
        raise ShowUsage
    offset = _scan_int(argv[6]) if len(argv) > 6 else None
    operation = session.channel.record_file(argv[2], argv[3], argv[4], timeout)
    result, elapsed = await session.race_hangup(operation)
    if result is None:
        endpos = _hung_endpos(elapsed, offset or 0)
        return Outcome([f"200 result=-1 (hangup) endpos={endpos}"], failure=True)
    res, endpos = result
    if res < 0:
        return Outcome([f"200 result=-1 (hangup) endpos={endpos}"], failure=True)
    if res > 0:
        return Outcome([f"200 result={res} (dtmf) endpos={endpos}"])
    return Outcome([f"200 result=0 (timeout) endpos={endpos}"])


async def _say(session: AgiSession, operation: Awaitable[int]) -> Outcome:
    result, _ = await session.race_hangup(operation)
    res = -1 if result is None else result
    return Outcome([f"200 result={res}"], failure=res < 0)


async def _say_digits(session: AgiSession, argv: list[str]) -> Outcome:
    if len(argv) != 4 or _scan_int(argv[2]) is None:
        raise ShowUsage
    return await _say(session, session.channel.say_digits(argv[2], argv[3]))


async def _say_number(session: AgiSession, argv: list[str]) -> Outcome:
    number = _scan_int(argv[2]) if len(argv) > 2 else None
    if len(argv) not in (4, 5) or number is None:
        raise ShowUsage
    say_number = getattr(session.channel, "say_number", None)
    if say_number is not None:
        return await _say(session, say_number(number, argv[3]))
    return await _say(session, session.channel.say_digits(str(number), argv[3]))


async def _say_characters(session: AgiSession, argv: list[str]) -> Outcome:
    if len(argv) not in (4, 5):
        raise ShowUsage
    return await _say(session, session.channel.say_digits(argv[2], argv[3]))


async def _set_music(session: AgiSession, argv: list[str]) -> Outcome:
    if len(argv) < 3:
        raise ShowUsage
    set_music = getattr(session.channel, "set_music", None)
    mode = argv[2].lower()
    if set_music is not None and (mode.startswith("on") or mode.startswith("off")):
        set_music(mode.startswith("on"), argv[3] if len(argv) > 3 else None)
    return Outcome(["200 result=0"])


async def _set_variable(session: AgiSession, argv: list[str]) -> Outcome:
    if len(argv) != 4:
        raise ShowUsage
    session.channel.set_variable(argv[2], argv[3])
    return Outcome(["200 result=1"])


async def _stream_file(session: AgiSession, argv: list[str]) -> Outcome:
    if len(argv) not in (4, 5):
        raise ShowUsage
    offset = 0
    if len(argv) == 5:
        scanned = _scan_int(argv[4])
        if scanned is None:
            raise ShowUsage
        offset = scanned
    result, elapsed = await session.race_hangup(session.channel.stream_file(argv[2], argv[3]))
    if result is None:
        session.channel.set_variable("PLAYBACKSTATUS", "FAILED")
        return Outcome([f"200 result=-1 endpos={_hung_endpos(elapsed, offset)}"], failure=True)
    res, endpos = result
    if res < 0 and not session.channel_gone():
        # ast_openstream() failed: the file does not exist; no PLAYBACKSTATUS is set.
        return Outcome([f"200 result=-1 endpos={offset}"], failure=True)
    session.channel.set_variable("PLAYBACKSTATUS", "FAILED" if res else "SUCCESS")
    return Outcome([f"200 result={res} endpos={endpos}"], failure=res < 0)


async def _control_stream_file(session: AgiSession, argv: list[str]) -> Outcome:
    if not 5 <= len(argv) <= 10:
        raise ShowUsage
    if len(argv) > 5 and _scan_int(argv[5]) is None:
        raise ShowUsage
    stop = argv[4]
    result, elapsed = await session.race_hangup(session.channel.stream_file(argv[3], stop))
    res, endpos = (-1, _hung_endpos(elapsed)) if result is None else result
    offset_ms = endpos * 1000 // SAMPLES_PER_SECOND
    channel = session.channel
    if res > 0 and stop and chr(res) in stop:
        channel.set_variable("CPLAYBACKSTATUS", "USERSTOPPED")
        channel.set_variable("CPLAYBACKSTOPKEY", chr(res))
    else:
        channel.set_variable("CPLAYBACKSTATUS", "ERROR" if res < 0 else "SUCCESS")
    channel.set_variable("CPLAYBACKOFFSET", str(offset_ms))
    return Outcome([f"200 result={res} endpos={offset_ms}"], failure=res < 0)


async def _verbose(session: AgiSession, argv: list[str]) -> Outcome:
    if len(argv) < 2:
        raise ShowUsage
    level = _scan_int(argv[2]) if len(argv) > 2 else None
    session.channel.verbose(argv[1], level or 0)
    return Outcome(["200 result=1"])


async def _wait_for_digit(session: AgiSession, argv: list[str]) -> Outcome:
    if len(argv) != 4:
        raise ShowUsage
    timeout = _scan_int(argv[3])
    if timeout is None:
        raise ShowUsage
    result, _ = await session.race_hangup(session.channel.wait_for_digit(timeout))
    res = -1 if result is None else result
    return Outcome([f"200 result={res}"], failure=res < 0)


def _cmd(words: str, dead_ok: bool, usage: str, handler: Handler | None) -> AgiCommand:
    return AgiCommand(tuple(words.split()), dead_ok, usage, handler)


# res_agi's command table, in its order, with its "runs dead" column. Commands without a
# handler answer 510, as Asterisk does when their module is not running.
COMMANDS: tuple[AgiCommand, ...] = (
    _cmd("answer", False, " Usage: ANSWER", _answer),
    _cmd("asyncagi break", True, " Usage: ASYNCAGI BREAK", _asyncagi_break),
    _cmd("channel status", False, " Usage: CHANNEL STATUS [channelname]", _channel_status),
    _cmd("database del", True, " Usage: DATABASE DEL <family> <key>", None),
    _cmd("database deltree", True, " Usage: DATABASE DELTREE <family> [keytree]", None),
    _cmd("database get", True, " Usage: DATABASE GET <family> <key>", None),
    _cmd("database put", True, " Usage: DATABASE PUT <family> <key> <value>", None),
    _cmd("exec", True, " Usage: EXEC <application> <options>", _exec),
    _cmd("get data", False, " Usage: GET DATA <file> [timeout] [maxdigits]", _get_data),
    _cmd(
        "get full variable",
        True,
        " Usage: GET FULL VARIABLE <expression> [channelname]",
        _get_full_variable,
    ),
    _cmd(
        "get option", False, " Usage: GET OPTION <filename> <escape_digits> [timeout]", _get_option
    ),
    _cmd("get variable", True, " Usage: GET VARIABLE <variablename>", _get_variable),
    _cmd("hangup", False, " Usage: HANGUP [channelname]", _hangup),
    _cmd("noop", True, " Usage: NOOP", _noop),
    _cmd("receive char", False, " Usage: RECEIVE CHAR <timeout>", None),
    _cmd("receive text", False, " Usage: RECEIVE TEXT <timeout>", None),
    _cmd(
        "record file",
        False,
        " Usage: RECORD FILE <filename> <format> <escape_digits> <timeout>"
        " [offset samples] [BEEP] [s=silence]",
        _record_file,
    ),
    _cmd("say alpha", False, " Usage: SAY ALPHA <number> <escape_digits>", _say_characters),
    _cmd("say digits", False, " Usage: SAY DIGITS <number> <escape_digits>", _say_digits),
    _cmd("say number", False, " Usage: SAY NUMBER <number> <escape_digits> [gender]", _say_number),
    _cmd("say phonetic", False, " Usage: SAY PHONETIC <string> <escape_digits>", _say_characters),
    _cmd("say date", False, " Usage: SAY DATE <date> <escape_digits>", None),
    _cmd("say time", False, " Usage: SAY TIME <time> <escape_digits>", None),
    _cmd("say datetime", False, " Usage: SAY DATETIME <time> <escape_digits> [format]", None),
    _cmd("send image", False, " Usage: SEND IMAGE <image>", None),
    _cmd("send text", False, " Usage: SEND TEXT <text to send>", None),
    _cmd("set autohangup", False, " Usage: SET AUTOHANGUP <time>", None),
    _cmd("set callerid", False, " Usage: SET CALLERID <number>", None),
    _cmd("set context", False, " Usage: SET CONTEXT <desired context>", None),
    _cmd("set extension", False, " Usage: SET EXTENSION <new extension>", None),
    _cmd("set music", False, " Usage: SET MUSIC <on|off> <class>", _set_music),
    _cmd("set priority", False, " Usage: SET PRIORITY <priority>", None),
    _cmd("set variable", True, " Usage: SET VARIABLE <variablename> <value>", _set_variable),
    _cmd(
        "stream file",
        False,
        " Usage: STREAM FILE <filename> <escape_digits> [sample offset]",
        _stream_file,
    ),
    _cmd(
        "control stream file",
        False,
        " Usage: CONTROL STREAM FILE <filename> <escape_digits> [skipms] [ffchar] [rewchr]"
        " [pausechr] [offsetms]",
        _control_stream_file,
    ),
    _cmd("tdd mode", False, " Usage: TDD MODE <on|off>", None),
    _cmd("verbose", True, " Usage: VERBOSE <message> <level>", _verbose),
    _cmd("wait for digit", False, " Usage: WAIT FOR DIGIT <timeout>", _wait_for_digit),
    _cmd("speech create", False, " Usage: SPEECH CREATE <engine>", None),
    _cmd("speech set", False, " Usage: SPEECH SET <name> <value>", None),
    _cmd("speech destroy", True, " Usage: SPEECH DESTROY", None),
    _cmd("speech load grammar", False, " Usage: SPEECH LOAD GRAMMAR <name> <path>", None),
    _cmd("speech unload grammar", True, " Usage: SPEECH UNLOAD GRAMMAR <name>", None),
    _cmd("speech activate grammar", False, " Usage: SPEECH ACTIVATE GRAMMAR <name>", None),
    _cmd("speech deactivate grammar", False, " Usage: SPEECH DEACTIVATE GRAMMAR <name>", None),
    _cmd("speech recognize", False, " Usage: SPEECH RECOGNIZE <prompt> <timeout> [offset]", None),
)
COMMANDS_BY_WORDS = {command.words: command for command in COMMANDS}


def find_command(argv: Sequence[str]) -> AgiCommand | None:
    """res_agi's find_command(): the first entry whose words all start the line."""
    lowered = [word.lower() for word in argv]
    for command in COMMANDS:
        size = len(command.words)
        if len(lowered) >= size and tuple(lowered[:size]) == command.words:
            return command
    return None


def _handshake(url: str, target: AgiTarget, env: Mapping[str, str]) -> str:
    """launch_netscript()'s two lines, then setup_env()'s lines and the blank line."""
    lines = ["agi_network: yes"]
    if target.script:
        lines.append(f"agi_network_script: {target.script}")
    for key, value in env.items():
        if key not in ("agi_network", "agi_network_script"):
            lines.append(f"{key}: {value}")
    return "".join(f"{line}\n" for line in lines) + "\n"


async def run_fastagi(
    url: str,
    env: dict[str, str],
    channel: AgiChannel,
    *,
    connect_timeout: float = 5.0,
    on_command: CommandHook | None = None,
    script_url: str | None = None,
) -> str:
    """Run one FastAGI session; return AGISTATUS (SUCCESS, FAILURE or HANGUP).

    The caller sets the AGISTATUS channel variable (Asterisk's AGI application does it after
    the session). `env` is normally build_agi_env()'s result. `on_command(line)` is called
    before each command and returns a callable that gets the reply's status code (res_agi's
    AGIExecStart/AGIExecEnd hang on this). `script_url` is the URL the dialplan named, when
    the connection goes elsewhere (a test server on another port): agi_network_script is
    taken from it.
    """
    target = parse_agi_url(url)
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(target.host, target.port, limit=LINE_LIMIT), connect_timeout
        )
    except (TimeoutError, OSError) as exc:
        log.warning("fastagi connect failed url=%s error=%r", url, exc)
        return FAILURE
    channel_name = env.get("agi_channel", "")
    session = AgiSession(reader, writer, channel, channel_name, on_command)
    log.info("fastagi connected url=%s channel=%s", url, channel_name)
    announced = script_url or url
    try:
        await session.send(_handshake(announced, parse_agi_url(announced), env))
        status = await session.run()
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except (ConnectionError, OSError):
            pass
    log.info("fastagi finished url=%s channel=%s status=%s", url, channel_name, status)
    return status
