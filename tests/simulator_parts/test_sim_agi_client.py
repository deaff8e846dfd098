"""FastAGI client (Asterisk's side) against real servers over TCP.

The channel below is a scripted stand-in for the simulator core's channel: it implements
the AgiChannel protocol and records what the AGI script asked for.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from panoramisk.fast_agi import Application

from callcenter.simulator.agi_client import (
    AgiChannel,
    build_agi_env,
    parse_agi_args,
    parse_agi_url,
    run_fastagi,
)
from callcenter.simulator.captures import parse_agi_session

CAPTURE = "fastagi_session.txt"


class ScriptedChannel:
    """An AgiChannel whose media operations follow a small script set by each test."""

    def __init__(self) -> None:
        self.hangup_event = asyncio.Event()
        self.variables: dict[str, str] = {"UNIQUEID": "1795239927.16"}
        self.calls: list[tuple] = []
        self.verbose_lines: list[tuple[str, int]] = []
        self.digits: list[str] = ["1"]
        self.block_media = False
        self.media_started = asyncio.Event()
        self.answered = False

    @property
    def hung_up(self) -> bool:
        return self.hangup_event.is_set()

    async def _media(self) -> None:
        self.media_started.set()
        if self.block_media:
            await asyncio.Event().wait()  # a prompt that lasts until the caller hangs up

    async def answer(self) -> int:
        self.calls.append(("answer",))
        self.answered = True
        return 0

    async def stream_file(self, name: str, escape_digits: str) -> tuple[int, int]:
        self.calls.append(("stream_file", name, escape_digits))
        await self._media()
        if name == "missing":
            return -1, 0
        return 0, 11234

    async def wait_for_digit(self, timeout_ms: int) -> int:
        self.calls.append(("wait_for_digit", timeout_ms))
        await self._media()
        return ord(self.digits.pop(0)) if self.digits else 0

    async def get_data(self, name: str, timeout_ms: int, max_digits: int) -> tuple[str, bool]:
        self.calls.append(("get_data", name, timeout_ms, max_digits))
        await self._media()
        if not self.digits:
            return "", True
        digits, self.digits = "".join(self.digits)[:max_digits], []
        return digits, False

    async def say_digits(self, digits: str, escape: str) -> int:
        self.calls.append(("say_digits", digits, escape))
        await self._media()
        return 0

    async def record_file(
        self, path: str, fmt: str, escape: str, timeout_ms: int
    ) -> tuple[int, int]:
        self.calls.append(("record_file", path, fmt, escape, timeout_ms))
        await self._media()
        return ord("#"), 16000

    def set_variable(self, name: str, value: str) -> None:
        self.variables[name] = value

    def get_variable(self, name: str) -> str | None:
        return self.variables.get(name)

    async def exec_app(self, app: str, args: str) -> int:
        self.calls.append(("exec", app, args))
        return -2 if app.lower() == "nosuchapp" else 0

    async def hangup(self) -> None:
        self.calls.append(("hangup",))
        self.hangup_event.set()

    def verbose(self, message: str, level: int) -> None:
        self.verbose_lines.append((message, level))


def capture_env_keys(captures_dir: Path) -> list[str]:
    """The agi_* keys, in order, that real Asterisk 22 sent in fastagi_session.txt."""
    keys = []
    for line in (captures_dir / CAPTURE).read_text().splitlines():
        if "<<< agi_" in line:
            keys.append(line.split("<<< ", 1)[1].split(":", 1)[0])
    return keys


def session_env(url: str) -> dict[str, str]:
    return build_agi_env(
        "Local/s@caller-sim-00000008;1",
        "1795239927.16",
        "5551000",
        "Sim Caller",
        "agi-test",
        "s",
        2,
        type="Local",
        url=url,
    )


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture
async def raw_server() -> AsyncIterator[Callable[[Handler], Awaitable[int]]]:
    """Start a raw FastAGI server on port 0 running the given connection handler."""
    servers: list[asyncio.Server] = []

    async def start(handler: Handler) -> int:
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        servers.append(server)
        return server.sockets[0].getsockname()[1]

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


async def read_env(reader: asyncio.StreamReader) -> list[bytes]:
    lines = []
    while (line := await reader.readline()) != b"\n":
        assert line.endswith(b"\n") and not line.endswith(b"\r\n")
        lines.append(line)
    return lines


async def ask(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, command: str) -> str:
    writer.write(command.encode() + b"\n")
    await writer.drain()
    return (await reader.readline()).decode()


def test_channel_satisfies_protocol() -> None:
    assert isinstance(ScriptedChannel(), AgiChannel)


def test_environment_order_matches_capture(captures_dir: Path) -> None:
    env = session_env("agi://127.0.0.1:4573/test")
    assert ["agi_network", "agi_network_script", *env] == capture_env_keys(captures_dir)
    assert env["agi_version"] == "22.10.1"
    assert env["agi_enhanced"] == "0.0" and env["agi_rdnis"] == "unknown"
    with_args = build_agi_env("c", "u", "", "", "ctx", "s", 1, args=("a", "b"))
    assert list(with_args)[-2:] == ["agi_arg_1", "agi_arg_2"]
    assert with_args["agi_callerid"] == "unknown" and with_args["agi_calleridname"] == "unknown"


def test_parse_args_like_res_agi() -> None:
    assert parse_agi_args('STREAM FILE hello-world ""') == ["STREAM", "FILE", "hello-world", ""]
    assert parse_agi_args('VERBOSE "FastAGI test got digit 1" 1') == [
        "VERBOSE",
        "FastAGI test got digit 1",
        "1",
    ]
    assert parse_agi_args(r"SET VARIABLE A b\ c") == ["SET", "VARIABLE", "A", "b c"]
    assert parse_agi_args(r'SET VARIABLE A "say \"hi\""') == ["SET", "VARIABLE", "A", 'say "hi"']
    assert parse_agi_args('EXEC Dial "PJSIP/6001,20"') == ["EXEC", "Dial", "PJSIP/6001,20"]
    assert parse_agi_args("   ") == []


def test_parse_url() -> None:
    target = parse_agi_url("agi://127.0.0.1/ivr?lang=zh")
    assert (target.host, target.port, target.script) == ("127.0.0.1", 4573, "ivr?lang=zh")
    assert parse_agi_url("agi://localhost:4600").script == ""
    with pytest.raises(ValueError):
        parse_agi_url("http://x/")


async def test_panoramisk_server_sees_capture_results(captures_dir: Path) -> None:
    """The conversation of fastagi_session.txt, with panoramisk's real FastAGI server."""
    results: dict[str, dict] = {}
    headers: dict[str, str] = {}
    done = asyncio.Event()

    async def route(request) -> None:  # panoramisk 1.4: only async routes work on 3.11
        headers.update(request.headers)
        results["answer"] = await request.send_command("ANSWER")
        results["stream"] = await request.send_command('STREAM FILE hello-world ""')
        results["get_data"] = await request.send_command("GET DATA beep 6000 1")
        results["set"] = await request.send_command('SET VARIABLE IVR_CHOICE "1"')
        results["verbose"] = await request.send_command('VERBOSE "FastAGI test got digit 1" 1')
        done.set()

    app = Application()
    app.add_route("test", route)
    server = await asyncio.start_server(app.handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    channel = ScriptedChannel()
    url = f"agi://127.0.0.1:{port}/test"
    try:
        status = await asyncio.wait_for(run_fastagi(url, session_env(url), channel), 10)
    finally:
        server.close()
        await server.wait_closed()
    assert done.is_set() and status == "SUCCESS"
    assert len(headers) == 22  # "route "test": AGI environment headers = 22" in the capture
    assert list(headers) == capture_env_keys(captures_dir)
    assert headers["agi_network_script"] == "test"
    assert results["answer"] == {"status_code": 200, "result": ("0", ""), "msg": ""}
    assert results["stream"]["endpos"] == ("11234", "")
    assert results["get_data"]["result"] == ("1", "")
    assert results["set"]["result"] == ("1", "") and results["verbose"]["result"] == ("1", "")
    assert channel.variables["IVR_CHOICE"] == "1"
    assert channel.variables["PLAYBACKSTATUS"] == "SUCCESS"
    assert channel.verbose_lines == [("FastAGI test got digit 1", 1)]


async def test_exact_bytes_and_replies(raw_server) -> None:
    seen: dict[str, object] = {}

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen["env"] = await read_env(reader)
        seen["answer"] = await ask(reader, writer, "ANSWER")
        seen["stream"] = await ask(reader, writer, 'STREAM FILE hello-world ""')
        seen["missing"] = await ask(reader, writer, 'STREAM FILE missing ""')
        seen["get_data"] = await ask(reader, writer, "GET DATA beep 6000 1")
        seen["get_data_timeout"] = await ask(reader, writer, "GET DATA beep 3000 4")
        seen["wait"] = await ask(reader, writer, "WAIT FOR DIGIT 1000")
        seen["say"] = await ask(reader, writer, "SAY DIGITS 12345 #")
        seen["number"] = await ask(reader, writer, "SAY NUMBER 42 #")
        seen["record"] = await ask(reader, writer, "RECORD FILE /tmp/msg wav # 5000")
        seen["set"] = await ask(reader, writer, 'SET VARIABLE CHOICE "2 3"')
        seen["get"] = await ask(reader, writer, "GET VARIABLE CHOICE")
        seen["get_unset"] = await ask(reader, writer, "GET VARIABLE NOPE")
        seen["full"] = await ask(reader, writer, 'GET FULL VARIABLE "${CHOICE:0:1}-${UNIQUEID}"')
        seen["exec"] = await ask(reader, writer, "EXEC Playback hello-world")
        seen["exec_missing"] = await ask(reader, writer, "EXEC NoSuchApp")
        seen["status"] = await ask(reader, writer, "CHANNEL STATUS")
        seen["noop"] = await ask(reader, writer, "noop")
        seen["unknown"] = await ask(reader, writer, "FROBNICATE now")
        seen["crlf"] = await ask(reader, writer, "ANSWER\r")
        writer.write(b"WAIT FOR DIGIT\n")
        await writer.drain()
        seen["usage"] = [await reader.readline() for _ in range(3)]
        writer.close()

    port = await raw_server(handler)
    channel = ScriptedChannel()
    channel.digits = ["1"]
    url = f"agi://127.0.0.1:{port}/test"
    status = await asyncio.wait_for(run_fastagi(url, session_env(url), channel), 10)
    assert status == "FAILURE"  # the missing prompt: res_agi's RESULT_FAILURE, not a hang-up
    env = seen["env"]
    assert env[:3] == [
        b"agi_network: yes\n",
        b"agi_network_script: test\n",
        f"agi_request: {url}\n".encode(),
    ]
    assert env[3:7] == [
        b"agi_channel: Local/s@caller-sim-00000008;1\n",
        b"agi_language: en\n",
        b"agi_type: Local\n",
        b"agi_uniqueid: 1795239927.16\n",
    ]
    assert b"agi_accountcode: \n" in env
    assert seen["answer"] == "200 result=0\n"
    assert seen["stream"] == "200 result=0 endpos=11234\n"
    assert seen["missing"] == "200 result=-1 endpos=0\n"
    assert seen["get_data"] == "200 result=1\n"
    assert seen["get_data_timeout"] == "200 result= (timeout)\n"
    assert seen["wait"] == "200 result=0\n"
    assert seen["say"] == "200 result=0\n" and seen["number"] == "200 result=0\n"
    assert seen["record"] == "200 result=35 (dtmf) endpos=16000\n"
    assert seen["set"] == "200 result=1\n"
    assert seen["get"] == "200 result=1 (2 3)\n"
    assert seen["get_unset"] == "200 result=0\n"
    assert seen["full"] == "200 result=1 (2-1795239927.16)\n"
    assert seen["exec"] == "200 result=0\n"
    assert seen["exec_missing"] == "200 result=-2\n"
    assert seen["status"] == "200 result=6\n"
    assert seen["noop"] == "200 result=0\n"
    assert seen["unknown"] == "510 Invalid or unknown command\n"
    assert seen["crlf"] == "510 Invalid or unknown command\n"
    usage = seen["usage"]
    assert usage[0] == b"520-Invalid command syntax.  Proper usage follows:\n"
    assert usage[2] == b"520 End of proper usage.\n"
    assert ("get_data", "beep", 3000, 4) in channel.calls
    assert ("say_digits", "42", "#") in channel.calls
    assert ("record_file", "/tmp/msg", "wav", "#", 5000) in channel.calls


async def test_hangup_during_stream_file(raw_server) -> None:
    """PROTOCOL.md: result=-1 with endpos, one bare HANGUP, then dead-channel answers."""
    channel = ScriptedChannel()
    channel.block_media = True
    seen: dict[str, object] = {}
    closing = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_env(reader)
        writer.write(b'STREAM FILE welcome ""\n')
        await writer.drain()
        await channel.media_started.wait()
        channel.hangup_event.set()  # the caller hangs up during the prompt
        seen["reply"] = await reader.readline()
        seen["notice"] = await reader.readline()
        seen["stream"] = await ask(reader, writer, 'STREAM FILE welcome ""')
        seen["answer"] = await ask(reader, writer, "ANSWER")
        seen["get_data"] = await ask(reader, writer, "GET DATA beep 1000 1")
        seen["wait"] = await ask(reader, writer, "WAIT FOR DIGIT 100")
        seen["say"] = await ask(reader, writer, "SAY DIGITS 1 #")
        seen["record"] = await ask(reader, writer, "RECORD FILE x wav # 100")
        seen["hangup"] = await ask(reader, writer, "HANGUP")
        seen["set"] = await ask(reader, writer, "SET VARIABLE RESULT done")
        seen["get"] = await ask(reader, writer, "GET VARIABLE RESULT")
        seen["exec"] = await ask(reader, writer, "EXEC NoOp bye")
        seen["verbose"] = await ask(reader, writer, "VERBOSE bye 1")
        seen["unknown"] = await ask(reader, writer, "FROBNICATE")
        # Asterisk never closes first: the server half-closes and still gets the final notice.
        writer.write_eof()
        seen["after_close"] = await reader.read()
        closing.set()
        writer.close()

    port = await raw_server(handler)
    url = f"agi://127.0.0.1:{port}/ivr"
    status = await asyncio.wait_for(run_fastagi(url, session_env(url), channel), 10)
    assert closing.is_set()
    assert status == "HANGUP"
    reply = seen["reply"]
    assert isinstance(reply, bytes) and reply.startswith(b"200 result=-1 endpos=")
    assert seen["notice"] == b"HANGUP\n"
    dead = "511 Command Not Permitted on a dead channel or intercept routine\n"
    for key in ("stream", "answer", "get_data", "wait", "say", "record", "hangup"):
        assert seen[key] == dead, key
    assert seen["set"] == "200 result=1\n"
    assert seen["get"] == "200 result=1 (done)\n"
    assert seen["exec"] == "200 result=0\n"
    assert seen["verbose"] == "200 result=1\n"
    assert seen["unknown"] == "510 Invalid or unknown command\n"
    assert seen["after_close"] == b"HANGUP\n"


async def test_hangup_between_commands_sends_notice(raw_server) -> None:
    channel = ScriptedChannel()
    seen: dict[str, object] = {}

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_env(reader)
        seen["answer"] = await ask(reader, writer, "ANSWER")
        channel.hangup_event.set()  # the caller hangs up while the script is thinking
        seen["notice"] = await reader.readline()
        seen["noop"] = await ask(reader, writer, "NOOP")
        writer.close()

    port = await raw_server(handler)
    url = f"agi://127.0.0.1:{port}/ivr"
    status = await asyncio.wait_for(run_fastagi(url, session_env(url), channel), 10)
    assert status == "HANGUP"
    assert seen == {"answer": "200 result=0\n", "notice": b"HANGUP\n", "noop": "200 result=0\n"}


async def test_hangup_command_then_notice(raw_server) -> None:
    channel = ScriptedChannel()
    seen: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_env(reader)
        writer.write(b"HANGUP\n")
        await writer.drain()
        seen.append(await reader.readline())
        seen.append(await reader.readline())
        writer.close()

    port = await raw_server(handler)
    url = f"agi://127.0.0.1:{port}/ivr"
    assert await asyncio.wait_for(run_fastagi(url, session_env(url), channel), 10) == "HANGUP"
    assert seen == [b"200 result=1\n", b"HANGUP\n"]
    assert ("hangup",) in channel.calls


async def test_agi_args_and_no_script(raw_server) -> None:
    seen: list[list[bytes]] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await read_env(reader))
        writer.close()

    port = await raw_server(handler)
    url = f"agi://127.0.0.1:{port}"
    env = build_agi_env(
        "PJSIP/6001-00000001", "1.1", "6001", "", "in", "12345", 3, args=("zh", "vip"), url=url
    )
    assert await asyncio.wait_for(run_fastagi(url, env, ScriptedChannel()), 10) == "SUCCESS"
    lines = seen[0]
    assert lines[0] == b"agi_network: yes\n"
    assert not any(line.startswith(b"agi_network_script") for line in lines)
    assert lines[-2:] == [b"agi_arg_1: zh\n", b"agi_arg_2: vip\n"]


async def test_connection_refused_is_failure() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"agi://127.0.0.1:{port}/x"
    status = await run_fastagi(url, session_env(url), ScriptedChannel(), connect_timeout=2)
    assert status == "FAILURE"


async def test_replay_of_capture_session(raw_server, captures_dir: Path) -> None:
    """Replay the server's commands of fastagi_session.txt; replies must match byte for byte."""
    session = parse_agi_session(captures_dir / CAPTURE)
    from_asterisk = [line.text for line in session if line.direction == "asterisk"]
    commands = [line.text for line in session if line.direction == "server"]
    captured_env, captured_replies = from_asterisk[:22], from_asterisk[23:]
    seen: dict[str, list[str]] = {"env": [], "replies": []}

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen["env"] = [line.decode()[:-1] for line in await read_env(reader)]
        for command in commands:
            seen["replies"].append((await ask(reader, writer, command))[:-1])
        writer.close()

    port = await raw_server(handler)
    url = f"agi://127.0.0.1:{port}/test"
    env = session_env(url)
    env["agi_request"] = "agi://127.0.0.1:4573/test"  # as in the capture
    channel = ScriptedChannel()
    assert await asyncio.wait_for(run_fastagi(url, env, channel), 10) == "SUCCESS"
    volatile = ("agi_threadid",)
    assert [e for e in seen["env"] if not e.startswith(volatile)] == [
        e for e in captured_env if not e.startswith(volatile)
    ]
    assert seen["replies"] == captured_replies
    assert channel.variables["IVR_CHOICE"] == "1"


async def test_control_stream_and_get_option(raw_server) -> None:
    channel = ScriptedChannel()
    channel.digits = ["5"]
    seen: dict[str, str] = {}

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_env(reader)
        seen["control"] = await ask(reader, writer, 'CONTROL STREAM FILE menu "#"')
        seen["option"] = await ask(reader, writer, "GET OPTION menu 5 2000")
        seen["option_other"] = await ask(reader, writer, "GET OPTION menu 12 2000")
        seen["music"] = await ask(reader, writer, "SET MUSIC on default")
        writer.close()

    port = await raw_server(handler)
    url = f"agi://127.0.0.1:{port}/ivr"
    assert await asyncio.wait_for(run_fastagi(url, session_env(url), channel), 10) == "SUCCESS"
    assert seen["control"] == "200 result=0 endpos=1404\n"  # endpos in ms for CONTROL
    assert channel.variables["CPLAYBACKSTATUS"] == "SUCCESS"
    assert channel.variables["CPLAYBACKOFFSET"] == "1404"
    assert seen["option"] == "200 result=53 endpos=11234\n"
    assert seen["option_other"] == "200 result=0 endpos=11234\n"  # timeout, no digit left
    assert seen["music"] == "200 result=0\n"


async def test_agisighup_no_suppresses_notice(raw_server) -> None:
    channel = ScriptedChannel()
    channel.variables["AGISIGHUP"] = "no"
    seen: list[str] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_env(reader)
        seen.append(await ask(reader, writer, "ANSWER"))
        channel.hangup_event.set()
        seen.append(await ask(reader, writer, "NOOP"))  # no HANGUP line in between
        seen.append(await ask(reader, writer, "ANSWER"))
        writer.write_eof()
        seen.append((await reader.read()).decode())
        writer.close()

    port = await raw_server(handler)
    url = f"agi://127.0.0.1:{port}/ivr"
    status = await asyncio.wait_for(run_fastagi(url, session_env(url), channel), 10)
    assert status == "HANGUP"
    assert seen[0] == "200 result=0\n" and seen[1] == "200 result=0\n"
    assert seen[2] == "511 Command Not Permitted on a dead channel or intercept routine\n"
    assert seen[3] == ""
