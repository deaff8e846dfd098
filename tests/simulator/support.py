"""Helpers for the simulator tests: a raw AMI client, a tiny FastAGI server, capture roles."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

from callcenter.simulator.captures import AmiMessage, parse_raw

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
CAPTURES = SHARED / "asterisk" / "captures"
CAPTURE_DIALPLAN = CAPTURES / "dialplan"


class RawAmiClient:
    """Speaks AMI over TCP and keeps every byte received, for strict parsing afterwards."""

    def __init__(self) -> None:
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.raw = b""
        self.messages: list[AmiMessage] = []
        self._buf = b""
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self._next_id = 0
        self.banner = b""

    async def connect(self, port: int, host: str = "127.0.0.1") -> None:
        self.reader, self.writer = await asyncio.open_connection(host, port)
        self.banner = await self.reader.readline()
        self.raw = self.banner
        self._task = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        assert self.reader is not None
        while True:
            data = await self.reader.read(65536)
            if not data:
                self._changed.set()
                return
            self.raw += data
            self._buf += data
            while b"\r\n\r\n" in self._buf:
                block, self._buf = self._buf.split(b"\r\n\r\n", 1)
                self.messages.extend(parse_raw(block + b"\r\n\r\n"))
            self._changed.set()

    def send(self, action: str, **fields: str | list[str]) -> str:
        assert self.writer is not None
        self._next_id += 1
        action_id = fields.pop("ActionID", None) or f"test-{self._next_id}"  # type: ignore[assignment]
        lines = [f"Action: {action}", f"ActionID: {action_id}"]
        for key, value in fields.items():
            for v in value if isinstance(value, list) else [value]:
                lines.append(f"{key}: {v}")
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        return str(action_id)

    def send_raw(self, text: str) -> None:
        assert self.writer is not None
        self.writer.write(text.encode())

    async def wait_for(
        self, pred: Callable[[AmiMessage], bool], timeout: float = 10.0
    ) -> AmiMessage:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        seen = 0
        while True:
            for m in self.messages[seen:]:
                if pred(m):
                    return m
            seen = len(self.messages)
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError("AMI message not received")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                pass
            if (
                self._task is not None
                and self._task.done()
                and not any(pred(m) for m in self.messages[seen:])
            ):
                raise ConnectionError("AMI connection closed")

    async def response(self, action_id: str, timeout: float = 10.0) -> AmiMessage:
        return await self.wait_for(
            lambda m: m.get("Response") is not None and m.get("ActionID") == action_id, timeout
        )

    async def action(self, action: str, **fields: str | list[str]) -> AmiMessage:
        return await self.response(self.send(action, **fields))

    async def list_action(self, action: str, **fields: str) -> list[AmiMessage]:
        aid = self.send(action, **fields)
        await self.wait_for(lambda m: m.get("ActionID") == aid and m.get("EventList") == "Complete")
        return [m for m in self.messages if m.get("ActionID") == aid]

    async def login(self, username: str = "cc", secret: str = "CHANGE_ME") -> AmiMessage:
        return await self.action("Login", Username=username, Secret=secret, Events="on")

    async def closed(self, timeout: float = 5.0) -> None:
        assert self._task is not None
        await asyncio.wait_for(asyncio.shield(self._task), timeout)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except (ConnectionError, OSError):
                pass
        if self._task is not None:
            self._task.cancel()


Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter, dict[str, str]], Awaitable[None]]


class FastAgiServer:
    """A minimal FastAGI server: reads the environment, runs a script of commands."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.server: asyncio.base_events.Server | None = None
        self.port = 0
        self.envs: list[dict[str, str]] = []
        self.replies: list[tuple[str, str]] = []

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        env: dict[str, str] = {}
        while True:
            line = (await reader.readline()).decode().rstrip("\n")
            if not line:
                break
            key, _, value = line.partition(": ")
            env[key] = value
        self.envs.append(env)
        try:
            await self.script(reader, writer, env)
        finally:
            writer.close()

    async def command(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, cmd: str
    ) -> str:
        writer.write((cmd + "\n").encode())
        await writer.drain()
        while True:
            reply = (await reader.readline()).decode().rstrip("\n")
            if reply != "HANGUP":
                break
        self.replies.append((cmd, reply))
        return reply


_COUNTER = re.compile(r"-[0-9a-f]{8}(;[12])?$")


def role(channel: str) -> str:
    """Local/s@caller-sim-00000000;1 → Local/s@caller-sim;1 (counters differ between runs)."""
    m = _COUNTER.search(channel)
    if not m:
        return channel
    return channel[: m.start()] + (m.group(1) or "")


def channel_of(msg: AmiMessage) -> str:
    for key in ("Channel", "DestChannel", "LocalOneChannel"):
        value = msg.get(key)
        if value:
            return role(value)
    return ""


def by_channel(
    messages: Iterable[AmiMessage], ignore: Iterable[str] = ()
) -> dict[str, list[AmiMessage]]:
    skip = {e.lower() for e in ignore}
    out: dict[str, list[AmiMessage]] = {}
    for m in messages:
        name = m.get("Event")
        if not name or name.lower() in skip:
            continue
        out.setdefault(channel_of(m), []).append(m)
    return out


def after_login(messages: list[AmiMessage]) -> list[AmiMessage]:
    """Events of the capture after the login response and the login events."""
    return [m for m in messages if m.get("Event") not in ("FullyBooted", "SuccessfulAuth")]


SNAPSHOT = [
    "Channel",
    "ChannelState",
    "ChannelStateDesc",
    "CallerIDNum",
    "CallerIDName",
    "ConnectedLineNum",
    "ConnectedLineName",
    "Language",
    "AccountCode",
    "Context",
    "Exten",
    "Priority",
    "Uniqueid",
    "Linkedid",
]
"""The channel snapshot block, in Asterisk's order (manager_channels.c)."""


async def answer_only(reader, writer, env) -> None:
    """A FastAGI script that answers and returns: the dialplan goes on to the queue."""
    writer.write(b"ANSWER\n")
    await writer.drain()
    await reader.readline()


async def ami_login(sim, username: str = "callcenter") -> RawAmiClient:
    client = RawAmiClient()
    await client.connect(sim.ami_port)
    assert (await client.login(username, "CHANGE_ME")).get("Response") == "Success"
    return client
