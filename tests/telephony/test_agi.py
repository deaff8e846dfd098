"""FastAGI server against a raw-socket Asterisk side (the captured session and hang-ups)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from callcenter.simulator.scenario import Simulator
from callcenter.telephony.agi import AgiServer, AgiSession, reply_timeout
from callcenter.telephony.config import AgiConfig
from callcenter.telephony.errors import AgiTimeout, ChannelHungUp


def _environment(captures_dir: Path, script: str = "test") -> bytes:
    """The AGI environment exactly as Asterisk 22 sent it in fastagi_session.txt."""
    lines = []
    for line in (captures_dir / "fastagi_session.txt").read_text().splitlines():
        if "<<< " not in line:
            continue
        text = line.split("<<< ", 1)[1]
        if text.startswith("agi_network_script:"):
            text = f"agi_network_script: {script}"
        lines.append(text)
        if not text:
            break
    if lines[-1] != "":
        lines.append("")
    return ("\n".join(lines) + "\n").encode()


class AsteriskSide:
    """The Asterisk end of one FastAGI connection: reads commands, writes replies."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, port: int, environment: bytes) -> AsteriskSide:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(environment)
        return cls(reader, writer)

    async def command(self) -> str:
        line = await asyncio.wait_for(self.reader.readline(), 5)
        return line.decode().rstrip("\n")

    def reply(self, *lines: str) -> None:
        self.writer.write("".join(f"{line}\n" for line in lines).encode())

    async def closed_by_server(self) -> bool:
        return await asyncio.wait_for(self.reader.read(), 5) == b""


@pytest.fixture
async def agi() -> AgiServer:
    server = AgiServer(AgiConfig(host="127.0.0.1", port=0))
    await server.start()
    yield server
    await server.stop()


async def test_captured_session(agi: AgiServer, captures_dir: Path) -> None:
    done: asyncio.Future[dict] = asyncio.get_running_loop().create_future()

    async def ivr(session: AgiSession) -> None:
        await session.answer()
        assert await session.stream_file("hello-world") is None
        choice = await session.get_data("beep", 6000, 1)
        await session.set_variable("IVR_CHOICE", choice)
        await session.verbose(f"FastAGI test got digit {choice}", 1)
        done.set_result({"choice": choice, "channel": session.channel,
                         "uniqueid": session.uniqueid, "caller": session.caller_id})

    agi.route("test", ivr)
    side = await AsteriskSide.connect(agi.port, _environment(captures_dir))
    script = [("ANSWER", "200 result=0"),
              ('STREAM FILE hello-world ""', "200 result=0 endpos=11234"),
              ("GET DATA beep 6000 1", "200 result=1"),
              ('SET VARIABLE IVR_CHOICE "1"', "200 result=1"),
              ('VERBOSE "FastAGI test got digit 1" 1', "200 result=1")]
    for expected, reply in script:
        assert await side.command() == expected
        side.reply(reply)
    assert await side.closed_by_server()  # the dialplan continues only then
    assert await done == {"choice": "1", "channel": "Local/s@caller-sim-00000008;1",
                          "uniqueid": "1795239927.16", "caller": "5551000"}


async def test_hangup_notification_keeps_replies_in_step(agi: AgiServer,
                                                         captures_dir: Path) -> None:
    outcome: asyncio.Future[tuple] = asyncio.get_running_loop().create_future()

    async def ivr(session: AgiSession) -> None:
        await session.answer()
        try:
            await session.stream_file("hello-world", "0123456789")
        except ChannelHungUp:
            pass
        # cleanup on the dead channel: Asterisk still answers variable commands
        value = await session.get_variable("IVR_CHOICE")
        await session.set_variable("SURVEY", "hung-up")
        outcome.set_result((session.hung_up, value))

    agi.route("test", ivr)
    side = await AsteriskSide.connect(agi.port, _environment(captures_dir))
    assert await side.command() == "ANSWER"
    side.reply("200 result=0")
    assert await side.command() == 'STREAM FILE hello-world "0123456789"'
    side.reply("200 result=-1 endpos=4000", "HANGUP")  # caller hung up mid-prompt
    assert await side.command() == "GET VARIABLE IVR_CHOICE"
    side.reply("200 result=1 (3)")
    assert await side.command() == 'SET VARIABLE SURVEY "hung-up"'
    side.reply("200 result=1")
    assert await outcome == (True, "3")
    assert await side.closed_by_server()


async def test_hangup_between_commands_and_dead_channel_media(agi: AgiServer,
                                                              captures_dir: Path) -> None:
    outcome: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    hung_up_seen = asyncio.Event()

    async def ivr(session: AgiSession) -> None:
        await session.answer()
        await hung_up_seen.wait()
        await session.verbose("caller left")
        try:
            await session.stream_file("goodbye")
        except ChannelHungUp as exc:
            outcome.set_result(str(exc))
            raise

    agi.route("test", ivr)
    side = await AsteriskSide.connect(agi.port, _environment(captures_dir))
    assert await side.command() == "ANSWER"
    side.reply("200 result=0", "HANGUP")
    hung_up_seen.set()
    assert await side.command() == 'VERBOSE "caller left" 1'
    side.reply("200 result=1")
    assert await side.command() == 'STREAM FILE goodbye ""'
    side.reply("511 Command Not Permitted on a dead channel or intercept routine")
    assert "dead" in await outcome
    assert await side.closed_by_server()


async def test_unknown_script_is_closed_without_any_command(
        agi: AgiServer, captures_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    """No ``HANGUP``: Asterisk goes on with the dialplan (the queue) once the socket closes."""
    side = await AsteriskSide.connect(agi.port, _environment(captures_dir, "nosuchscript"))
    assert await asyncio.wait_for(side.reader.read(), 5) == b""  # closed, nothing sent
    assert "agi.unknown_script" in caplog.text and "nosuchscript" in caplog.text


async def test_unknown_script_lets_the_caller_reach_the_queue(agi: AgiServer) -> None:
    """The hotline's dialplan runs ``AGI(agi://.../ivr)`` then ``Queue(hotline)``: with no
    ``ivr`` script hosted the caller still reaches the queue, the AGI a success."""
    sim = Simulator(port=0, time_scale=0.02, seed=3, agi_host="127.0.0.1", agi_port=agi.port)
    await sim.start()
    try:
        log = sim.record_events()
        call = sim.place_call("13800000001")
        await call.wait_queued(10)
        assert call.variables["AGISTATUS"] == "SUCCESS"
        assert "AGIExecStart" not in log.names()  # no command at all, no HANGUP
        assert not call.channel.dead
    finally:
        await sim.stop()


async def test_a_known_script_still_gets_its_commands(agi: AgiServer,
                                                      captures_dir: Path) -> None:
    async def ivr(session: AgiSession) -> None:
        await session.verbose("hello", 1)

    agi.route("ivr", ivr)
    side = await AsteriskSide.connect(agi.port, _environment(captures_dir, "ivr"))
    assert await side.command() == 'VERBOSE "hello" 1'
    side.reply("200 result=1")
    assert await side.closed_by_server()


async def test_asterisk_closing_the_socket_ends_the_script(agi: AgiServer,
                                                           captures_dir: Path) -> None:
    outcome: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def ivr(session: AgiSession) -> None:
        try:
            await session.get_data("menu", 5000, 2)
        except ChannelHungUp:
            outcome.set_result("hung up")

    agi.route("test", ivr)
    side = await AsteriskSide.connect(agi.port, _environment(captures_dir))
    assert await side.command() == "GET DATA menu 5000 2"
    side.writer.close()
    assert await asyncio.wait_for(outcome, 5) == "hung up"


async def test_get_data_timeout_and_exec_and_wait_for_digit(agi: AgiServer,
                                                            captures_dir: Path) -> None:
    outcome: asyncio.Future[tuple] = asyncio.get_running_loop().create_future()

    async def ivr(session: AgiSession) -> None:
        nothing = await session.get_data("menu", 3000, 4)
        digit = await session.wait_for_digit(2000)
        code = await session.exec("Playback", "hello-world", "noanswer")
        await session.hangup()
        outcome.set_result((nothing, digit, code))

    agi.route("test", ivr)
    side = await AsteriskSide.connect(agi.port, _environment(captures_dir))
    assert await side.command() == "GET DATA menu 3000 4"
    side.reply("200 result= (timeout)")
    assert await side.command() == "WAIT FOR DIGIT 2000"
    side.reply("200 result=50")
    assert await side.command() == 'EXEC Playback "hello-world,noanswer"'
    side.reply("100 result=0 Trying...", "200 result=0")
    assert await side.command() == "HANGUP"
    side.reply("200 result=1")
    assert await outcome == (None, "2", 0)
    assert await side.closed_by_server()


def test_only_async_handlers_are_accepted() -> None:
    server = AgiServer(AgiConfig(port=0))

    def sync_handler(session: AgiSession) -> None: ...

    with pytest.raises(TypeError):
        server.route("sync", sync_handler)  # type: ignore[arg-type]


def test_reply_timeout_follows_the_commands_own_timeout() -> None:
    config = AgiConfig(command_timeout=30, media_margin=120)
    assert reply_timeout("ANSWER", config) == 30
    assert reply_timeout('SET VARIABLE IVR_CHOICE "1"', config) == 30
    assert reply_timeout("GET DATA menu 5000 4", config) == 120 + 5 * 4  # per digit
    assert reply_timeout("GET DATA menu", config) == 120
    assert reply_timeout('RECORD FILE /tmp/msg wav "#" 60000 BEEP s=3', config) == 180
    assert reply_timeout('RECORD FILE /tmp/msg wav "#" -1', config) == 120
    assert reply_timeout("WAIT FOR DIGIT 8000", config) == 128
    assert reply_timeout('STREAM FILE welcome ""', config) == 120
    assert reply_timeout("SAY DIGITS 12345 \"\"", config) == 120
    assert reply_timeout('EXEC Playback "hello-world"', config) == 120


@pytest.fixture
async def strict_agi() -> AgiServer:
    server = AgiServer(AgiConfig(host="127.0.0.1", port=0, command_timeout=0.2,
                                 media_margin=0.2))
    await server.start()
    yield server
    await server.stop()


async def test_a_peer_that_never_answers_times_out_and_is_closed(
        strict_agi: AgiServer, captures_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    outcome: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()

    async def ivr(session: AgiSession) -> None:
        try:
            await session.answer()
        except AgiTimeout as exc:
            outcome.set_result(exc)
            raise

    strict_agi.route("test", ivr)
    side = await AsteriskSide.connect(strict_agi.port, _environment(captures_dir))
    assert await side.command() == "ANSWER"  # ... and Asterisk never answers
    error = await asyncio.wait_for(outcome, 5)
    assert "ANSWER: no reply within 0.2 s" in str(error)
    assert await side.closed_by_server()
    assert "agi.command_timeout" in caplog.text and "agi.session_timed_out" in caplog.text


async def test_a_slow_prompt_within_its_own_timeout_is_not_cut(
        strict_agi: AgiServer, captures_dir: Path) -> None:
    outcome: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()

    async def ivr(session: AgiSession) -> None:
        outcome.set_result(await session.get_data("menu", 2000, 1))

    strict_agi.route("test", ivr)
    side = await AsteriskSide.connect(strict_agi.port, _environment(captures_dir))
    assert await side.command() == "GET DATA menu 2000 1"
    await asyncio.sleep(0.5)  # the caller thinks: longer than a plain command may take
    side.reply("200 result=7")
    assert await asyncio.wait_for(outcome, 5) == "7"
    assert await side.closed_by_server()
