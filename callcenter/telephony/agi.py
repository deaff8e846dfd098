"""FastAGI server: named scripts (IVR, revisit survey) with a typed session API.

Built on panoramisk's ``fast_agi`` (route table, ``Request``, AGI result parsing) with two
fixes from PROTOCOL.md: after the caller hangs up Asterisk sends an unrequested bare
``HANGUP`` line, which panoramisk would take as the reply to the next command (its replies then
lag one behind); here a reader task reads every line, treats ``HANGUP`` as a notification and
queues only replies. And the socket is closed as soon as the script ends, because Asterisk
continues the dialplan only then. An unknown script is logged and its socket closed without
any command: the dialplan goes on (``AGISTATUS=SUCCESS``) to the queue, so a typo in a script
name costs the caller the IVR, never the call.

Every command has a reply timeout (``agi.command_timeout``; for commands that play or wait,
their own timeout argument plus ``agi.media_margin``): a peer that stops answering raises
``AgiTimeout`` and its socket is closed, so it never holds a script (and its task) forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from panoramisk.fast_agi import Application, Request
from panoramisk.utils import parse_agi_result

from callcenter.telephony.config import AgiConfig
from callcenter.telephony.errors import AgiError, AgiTimeout, ChannelHungUp

log = logging.getLogger(__name__)

Handler = Callable[["AgiSession"], Awaitable[None]]
HEADER_TIMEOUT = 5.0
HANGUP_GRACE = 0.2
"""After ``result=-1`` Asterisk sends ``HANGUP`` right behind if the caller is gone."""


@dataclass(frozen=True, slots=True)
class AgiResult:
    code: int
    result: str
    data: str
    endpos: str | None = None

    @property
    def value(self) -> int:
        try:
            return int(self.result)
        except ValueError:
            return 0


WAITING_COMMANDS: dict[str, tuple[int | None, int | None]] = {
    "STREAM FILE": (None, None), "CONTROL STREAM": (None, None), "EXEC": (None, None),
    "SAY": (None, None), "GET DATA": (3, 4), "GET OPTION": (4, None),
    "WAIT FOR": (3, None), "RECORD FILE": (5, None), "SPEECH RECOGNIZE": (3, None),
}
"""Commands whose reply comes only after audio played or input awaited: the position of their
own timeout argument (milliseconds) and of their digit count (GET DATA waits per digit)."""


def reply_timeout(command: str, config: AgiConfig) -> float:
    """Seconds to wait for the reply to ``command``: ``command_timeout`` for a command that
    answers at once; for one that plays or waits, ``media_margin`` (the prompt's unknown
    length) plus its own timeout argument. A "no limit" argument (0, -1) adds nothing: pass
    ``timeout=`` to ``AgiSession.command`` for a longer wait (an ``EXEC Dial``)."""
    words = command.split()
    key = " ".join(words[:2]).upper()
    spec = WAITING_COMMANDS.get(key) or WAITING_COMMANDS.get(key.split(" ", 1)[0])
    if spec is None:
        return config.command_timeout
    timeout_at, digits_at = spec
    own = max(0, _int_arg(words, timeout_at)) / 1000
    digits = max(1, _int_arg(words, digits_at))
    return config.media_margin + own * digits


def _int_arg(words: list[str], position: int | None) -> int:
    if position is None or position >= len(words):
        return 0
    try:
        return int(words[position])
    except ValueError:
        return 0


def _quote(text: str) -> str:
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


class _AgiRequest(Request):
    """panoramisk's Request fed by a line reader that filters ``HANGUP`` notifications."""

    def __init__(self, app: Application, headers: dict[str, str],
                 reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        super().__init__(app, headers, reader, writer, encoding=app.default_encoding)
        self.lines: asyncio.Queue[str | None] = asyncio.Queue()
        self.hung_up = asyncio.Event()
        self.closed = False
        self._reader_task = asyncio.create_task(self._read_lines(), name="agi-reader")

    async def _read_lines(self) -> None:
        try:
            while True:
                raw = await self.reader.readline()
                if not raw:
                    break
                line = raw.decode(self.encoding, "replace").rstrip("\r\n")
                if line == "HANGUP":
                    log.info("agi.hangup_notification channel=%s",
                             self.headers.get("agi_channel"))
                    self.hung_up.set()
                    continue
                self.lines.put_nowait(line)
        except (ConnectionError, OSError):
            pass
        finally:
            self.closed = True
            self.lines.put_nowait(None)

    async def _read_result(self) -> dict[str, Any]:
        line = await self.lines.get()
        if line is None:
            raise ChannelHungUp("AGI connection closed by Asterisk")
        if line.startswith("520-"):
            usage = [line]
            while True:
                more = await self.lines.get()
                if more is None or more.startswith("520 "):
                    break
                usage.append(more)
            return {"status_code": 520, "error": "AGIUsageError", "msg": "\n".join(usage)}
        result = parse_agi_result(line)
        result["line"] = line
        code = line[:3]
        result.setdefault("status_code", int(code) if code.isdigit() else 0)
        return result

    async def send_command(self, command: str,
                           timeout: float | None = None) -> dict[str, Any]:
        """Send ``command`` and return its final reply (after any ``100 Trying``)."""
        if self.closed:
            raise ChannelHungUp("AGI connection closed")
        limit = reply_timeout(command, self.app.config) if timeout is None else timeout
        try:
            async with asyncio.timeout(limit):
                self.writer.write((command + "\n").encode(self.encoding))
                await self.writer.drain()
                result = await self._read_result()
                while result.get("status_code") == 100:
                    result = await self._read_result()
        except TimeoutError:
            self.closed = True
            self.writer.transport.abort()  # a late reply must not answer the next command
            log.warning("agi.command_timeout command=%r seconds=%g channel=%s", command,
                        limit, self.headers.get("agi_channel"))
            raise AgiTimeout(f"{command}: no reply within {limit:g} s") from None
        return result

    async def close(self) -> None:
        self._reader_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader_task
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()


class AgiSession:
    """One FastAGI call: the AGI environment and typed commands."""

    def __init__(self, request: _AgiRequest) -> None:
        self._request = request
        self.headers: dict[str, str] = dict(request.headers)

    @property
    def script(self) -> str:
        return self.headers.get("agi_network_script", "")

    @property
    def channel(self) -> str:
        return self.headers.get("agi_channel", "")

    @property
    def uniqueid(self) -> str:
        return self.headers.get("agi_uniqueid", "")

    @property
    def caller_id(self) -> str:
        return self.headers.get("agi_callerid", "")

    @property
    def args(self) -> list[str]:
        found = []
        n = 1
        while f"agi_arg_{n}" in self.headers:
            found.append(self.headers[f"agi_arg_{n}"])
            n += 1
        return found

    @property
    def hung_up(self) -> bool:
        """True once Asterisk told us the caller hung up: only cleanup commands make sense."""
        return self._request.hung_up.is_set()

    async def command(self, text: str, timeout: float | None = None) -> AgiResult:
        """Send a raw AGI command; raises ChannelHungUp / AgiError on failure, AgiTimeout
        (socket closed) without a reply within ``timeout`` (default: ``reply_timeout``)."""
        raw = await self._request.send_command(text, timeout)
        code = int(raw.get("status_code", 0))
        if code == 511:
            raise ChannelHungUp(f"{text}: channel is dead")
        if code != 200:
            raise AgiError(f"{text}: {raw.get('msg') or raw.get('line') or raw.get('error')}")
        if raw.get("error") == "AGIResultHangup":
            raise ChannelHungUp(f"{text}: caller hung up")
        line = raw.get("line", "")
        result, data, endpos = _fields(line)
        if result == "-1":
            if await self._hangup_follows():
                raise ChannelHungUp(f"{text}: caller hung up")
            raise AgiError(f"{text}: failed (result=-1)")
        return AgiResult(code, result, data, endpos)

    async def _hangup_follows(self) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._request.hung_up.wait(), HANGUP_GRACE)
        return self.hung_up

    async def answer(self) -> None:
        await self.command("ANSWER")

    async def stream_file(self, file: str, escape_digits: str = "") -> str | None:
        """Play a prompt; the digit that interrupted it, or None."""
        result = await self.command(f"STREAM FILE {file} {_quote(escape_digits)}")
        return chr(result.value) if result.value > 0 else None

    async def get_data(self, file: str, timeout_ms: int = 5000,
                       max_digits: int = 1) -> str | None:
        """Play a prompt and collect digits; None when the caller entered nothing."""
        result = await self.command(f"GET DATA {file} {timeout_ms} {max_digits}")
        return result.result or None

    async def wait_for_digit(self, timeout_ms: int = 5000) -> str | None:
        result = await self.command(f"WAIT FOR DIGIT {timeout_ms}")
        return chr(result.value) if result.value > 0 else None

    async def set_variable(self, name: str, value: str) -> None:
        await self.command(f"SET VARIABLE {name} {_quote(value)}")

    async def get_variable(self, name: str) -> str | None:
        result = await self.command(f"GET VARIABLE {name}")
        return result.data if result.result == "1" else None

    async def exec(self, application: str, *args: str, timeout: float | None = None) -> int:
        """Run a dialplan application; its return code (-2 means not found). Applications
        that can run long (Dial, Queue) need a ``timeout`` beyond ``agi.media_margin``."""
        options = ",".join(args)
        text = f"EXEC {application} {_quote(options)}" if args else f"EXEC {application}"
        return (await self.command(text, timeout)).value

    async def hangup(self, channel: str | None = None) -> None:
        await self.command(f"HANGUP {channel}" if channel else "HANGUP")

    async def verbose(self, message: str, level: int = 1) -> None:
        await self.command(f"VERBOSE {_quote(message)} {level}")


def _fields(line: str) -> tuple[str, str, str | None]:
    """``200 result=1 (data) endpos=123`` -> ("1", "data", "123")."""
    result, data, endpos = "", "", None
    rest = line[4:] if line.startswith("200 ") else line
    if rest.startswith("result="):
        rest = rest[7:]
        value, _, rest = rest.partition(" ")
        result = value
        rest = rest.strip()
        if rest.startswith("("):
            close = rest.rfind(")")
            data = rest[1:close] if close > 0 else rest[1:]
            rest = rest[close + 1:].strip() if close > 0 else ""
        if rest.startswith("endpos="):
            endpos = rest[7:].split(" ", 1)[0]
    return result, data, endpos


class AgiServer(Application):
    """panoramisk's FastAGI ``Application`` with a safe connection handler."""

    def __init__(self, config: AgiConfig) -> None:
        # panoramisk only stores ``loop``; passing one avoids get_event_loop() outside a loop.
        super().__init__(loop=False)
        self.config = config
        self._server: asyncio.Server | None = None
        self._sessions: set[asyncio.Task[None]] = set()

    def route(self, name: str, handler: Handler) -> None:
        """Host ``handler`` as script ``name`` (``AGI(agi://host:port/name)``)."""
        if not asyncio.iscoroutinefunction(handler):
            raise TypeError("FastAGI handlers must be 'async def' functions")
        self.add_route(name, handler)

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            raise RuntimeError("FastAGI server is not listening")
        return self._server.sockets[0].getsockname()[1]

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.config.host,
                                                  self.config.port)
        log.info("agi.listening host=%s port=%d", self.config.host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._sessions):
                task.cancel()
            await asyncio.gather(*self._sessions, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None

    async def _accept(self, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        try:
            await self.handler(reader, writer)
        except asyncio.CancelledError:  # stop() ended the session: the server is going away
            log.info("agi.session_stopped peer=%r", writer.get_extra_info("peername"))
            writer.close()
        finally:
            self._sessions.discard(task)

    async def handler(self, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        try:
            headers = await asyncio.wait_for(_read_environment(reader), HEADER_TIMEOUT)
        except (TimeoutError, ConnectionError, ValueError) as exc:
            log.warning("agi.bad_environment peer=%r error=%r",
                        writer.get_extra_info("peername"), exc)
            writer.close()
            return
        request = _AgiRequest(self, headers, reader, writer)
        script = _script_name(headers)
        route = self._route.get(script)
        try:
            if route is None:
                log.error("agi.unknown_script script=%r channel=%s action=close",
                          script, headers.get("agi_channel"))
                return
            log.info("agi.session_start script=%s channel=%s", script,
                     headers.get("agi_channel"))
            await route(AgiSession(request))
        except ChannelHungUp as exc:
            log.info("agi.session_hung_up script=%s reason=%s", script, exc)
        except AgiTimeout as exc:
            log.warning("agi.session_timed_out script=%s reason=%s", script, exc)
        except Exception:
            log.exception("agi.script_failed script=%s", script)
        finally:
            await request.close()
            log.info("agi.session_end script=%s", script)


def _script_name(headers: dict[str, str]) -> str:
    """``agi_network_script`` without AGI arguments or query."""
    script = headers.get("agi_network_script", "")
    return script.split("?", 1)[0].strip("/")


async def _read_environment(reader: asyncio.StreamReader) -> dict[str, str]:
    headers: dict[str, str] = {}
    while True:
        raw = await reader.readline()
        if not raw:
            raise ConnectionError("connection closed inside the AGI environment")
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if not line:
            return headers
        key, sep, value = line.partition(": ")
        if sep:
            headers[key] = value
        elif line.endswith(":"):
            headers[line[:-1]] = ""
