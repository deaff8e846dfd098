"""A replaying Asterisk for tests: a real TCP AMI server speaking the captured bytes.

It answers ``Challenge``/``Login`` like Asterisk (MD5 or plain secret, ``Authentication
failed`` then disconnect), answers other actions with the replies captured from the real
Asterisk 22 (ActionID rewritten), and can push captured event bytes, drop connections,
ignore chosen actions (timeouts) or inject arbitrary bytes (stray replies, garbage).
Like a restarting Asterisk 22 (PROTOCOL.md, "Restart") it can announce ``Event: Shutdown``
and close ~20 ms later, and accept logins while still booting (``booting``: ``SuccessfulAuth``
at login, ``FullyBooted`` with ``Uptime: 0`` only when ``boot()`` is called).
It is a test double of Asterisk, not of the project's code.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from pathlib import Path

from tests.telephony.capture_tools import replies_by_action

BANNER = b"Asterisk Call Manager/11.0.0\r\n"
FULLY_BOOTED = (b"Event: FullyBooted\r\nPrivilege: system,all\r\nUptime: 8\r\n"
                b"LastReload: 8\r\nStatus: Fully Booted\r\n\r\n")
BOOTED_NOW = (b"Event: FullyBooted\r\nPrivilege: system,all\r\nStatus: Fully Booted\r\n"
              b"Uptime: 0\r\nLastReload: 0\r\n\r\n")
SUCCESSFUL_AUTH = (b"Event: SuccessfulAuth\r\nPrivilege: security,all\r\nEventTV: "
                   b"2026-12-02T07:00:00.000+0000\r\nSeverity: Informational\r\n"
                   b"Service: AMI\r\nEventVersion: 1\r\nAccountID: cc\r\n"
                   b"SessionID: 0x7f0000000000\r\nUsingPassword: 0\r\n\r\n")
SHUTDOWN = (b"Event: Shutdown\r\nPrivilege: system,all\r\nShutdown: Cleanly\r\n"
            b"Restart: True\r\n\r\n")
Override = Callable[[dict[str, list[str]]], list[bytes]]


def _fields(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.split("\r\n"):
        key, sep, value = line.partition(": ")
        if sep:
            out.setdefault(key.lower(), []).append(value)
    return out


class ReplayAsterisk:
    def __init__(self, captures: list[Path], *, username: str = "cc",
                 secret: str = "CHANGE_ME", login_fail_delay: float = 0.05) -> None:
        self.username = username
        self.secret = secret
        self.login_fail_delay = login_fail_delay
        self.replies: dict[str, list[list[bytes]]] = {}
        for path in captures:
            for action, variants in replies_by_action(path).items():
                self.replies.setdefault(action, []).extend(variants)
        self.variant: dict[str, int] = {}
        self.overrides: dict[str, Override] = {}
        self.silent: set[str] = set()
        self.refuse_logins = False
        self.refuse_challenges = False
        self.booting = False
        self.booted_at: int | None = None
        """Number of actions received when ``boot()`` sent ``FullyBooted``."""
        self.actions: list[dict[str, list[str]]] = []
        self.logins = 0
        self.connections_made = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._logged_in: set[asyncio.StreamWriter] = set()
        self._changed = asyncio.Condition()
        self._server: asyncio.Server | None = None

    # -- control ---------------------------------------------------------------------------

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self.port

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.drop()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def drop(self) -> None:
        """Close every connection, as when Asterisk restarts."""
        for writer in list(self._writers):
            writer.transport.abort()

    def shutdown(self, close_after: float | None = 0.02) -> None:
        """``core restart now``: ``Event: Shutdown`` to every session, sockets closed
        ``close_after`` seconds later (None: left open, to see what the client does)."""
        self.send(SHUTDOWN)
        if close_after is not None:
            asyncio.get_running_loop().call_later(close_after, self.drop)

    def boot(self) -> None:
        """End of a boot: ``FullyBooted`` to the sessions that logged in meanwhile."""
        self.booting = False
        self.booted_at = len(self.actions)
        self.send(BOOTED_NOW)

    def send(self, data: bytes) -> None:
        """Push raw bytes to every logged-in connection."""
        for writer in list(self._logged_in):
            writer.write(data)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            async with self._changed:
                await self._changed.wait_for(predicate)

    def count(self, action: str) -> int:
        return sum(1 for a in self.actions if a["action"][0].lower() == action.lower())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # -- serving ---------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        self.connections_made += 1
        await self._notify()
        writer.write(BANNER)
        challenge = ""
        try:
            while True:
                try:
                    raw = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    break
                fields = _fields(raw.decode()[:-4])
                self.actions.append(fields)
                name = fields.get("action", [""])[0].lower()
                action_id = fields.get("actionid", [""])[0]
                if name == "challenge" and self.refuse_challenges:
                    writer.write(self._reply(action_id, "Error",
                                             Message="Must specify AuthType"))
                elif name == "challenge":
                    challenge = "840115127"
                    writer.write(self._reply(action_id, "Success", Challenge=challenge))
                elif name == "login":
                    if not await self._login(fields, challenge, action_id, writer):
                        break
                elif writer not in self._logged_in:
                    writer.write(self._reply(action_id, "Error", Message="Permission denied"))
                elif name in self.silent:
                    pass
                elif name in self.overrides:
                    for message in self.overrides[name](fields):
                        writer.write(message.replace(b"{ActionID}", action_id.encode()))
                elif name == "ping":
                    writer.write(self._reply(action_id, "Success", Ping="Pong",
                                             Timestamp="1795239874.000000"))
                elif name in self.replies:
                    self._replay(name, action_id, writer)
                else:
                    writer.write(self._reply(
                        action_id, "Error",
                        Message=f"Invalid/unknown command: {name}. Use Action: ListCommands "
                                "to show available commands."))
                await self._notify()
        finally:
            self._writers.discard(writer)
            self._logged_in.discard(writer)
            writer.close()
            await self._notify()

    async def _login(self, fields: dict[str, list[str]], challenge: str, action_id: str,
                     writer: asyncio.StreamWriter) -> bool:
        user = fields.get("username", [""])[0]
        if "key" in fields:
            expected = hashlib.md5((challenge + self.secret).encode()).hexdigest()
            good = bool(challenge) and fields["key"][0] == expected
        else:
            good = fields.get("secret", [""])[0] == self.secret
        if self.refuse_logins or user != self.username or not good:
            await asyncio.sleep(self.login_fail_delay)
            writer.write(self._reply(action_id, "Error", Message="Authentication failed"))
            await writer.drain()
            return False
        writer.write(self._reply(action_id, "Success", Message="Authentication accepted"))
        writer.write(SUCCESSFUL_AUTH if self.booting else FULLY_BOOTED)
        self._logged_in.add(writer)
        self.logins += 1
        return True

    def _replay(self, name: str, action_id: str, writer: asyncio.StreamWriter) -> None:
        variants = self.replies[name]
        messages = variants[min(self.variant.get(name, 0), len(variants) - 1)]
        captured = _fields(messages[0].decode())["actionid"][0]
        for message in messages:
            writer.write(message.replace(f"ActionID: {captured}\r\n".encode(),
                                         f"ActionID: {action_id}\r\n".encode()))

    @staticmethod
    def _reply(action_id: str, response: str, **headers: str) -> bytes:
        lines = [f"Response: {response}"]
        if action_id:
            lines.append(f"ActionID: {action_id}")
        lines += [f"{k}: {v}" for k, v in headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()
