"""AMI client: one connection at a time, logged in, kept alive, reconnected forever.

Why not panoramisk's ``Manager``: it guesses when a reply is complete from its text, re-sends
queued actions after a reconnect (an ``Originate`` could be dialled twice) and can stop
processing on a stray reply (see PROTOCOL.md). Here every request is completed by its
``Response`` (single replies) or by ``EventList: Complete`` with the echoed ``ActionID``
(lists), each has a timeout, and requests are never re-sent: a lost connection fails them
with ``AmiNotConnected``. ActionIDs carry the connection's epoch, so a reply from a dead
connection can never complete a request made on a new one.

Connection life (PROTOCOL.md, "Restart"): ``Event: Shutdown`` ends the connection at once
(pending requests fail with ``AsteriskShutdown``, not a timeout); after a login the resync
waits for ``FullyBooted`` (Asterisk accepts logins while still booting, with incomplete
state), at most ``fully_booted_timeout``; and the reconnect backoff starts over only after a
connection that stayed resynced for ``stable_after`` seconds, so a server that accepts logins
but fails every resync is not hammered.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
import random
import uuid
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from panoramisk.message import Message

from callcenter.telephony.config import AmiConfig
from callcenter.telephony.errors import (
    AmiActionError,
    AmiLoginError,
    AmiNotConnected,
    AmiTimeout,
    AsteriskShutdown,
)
from callcenter.telephony.protocol import Fields, Framer, encode_action, first, to_message

log = logging.getLogger(__name__)

EventCallback = Callable[[Fields], None]
ConnectedCallback = Callable[[], Awaitable[None]]
DisconnectedCallback = Callable[[int], None]
KeepMessage = Callable[[str], bool]

CONNECTION_EVENTS = frozenset({"FullyBooted", "Shutdown"})
"""Events the client itself acts on: an early event filter must keep them."""


@dataclass(slots=True)
class _Pending:
    """One request waiting for its reply."""

    action: str
    future: asyncio.Future[Any]
    follow_event: str | None = None
    response: Fields | None = None
    items: list[Fields] = field(default_factory=list)
    listing: bool = False


class _AmiProtocol(asyncio.Protocol):
    """Byte stream -> parsed messages, tagged with the connection's epoch."""

    def __init__(self, client: AmiClient, epoch: int, keep: KeepMessage | None) -> None:
        self.client = client
        self.epoch = epoch
        self.transport: asyncio.Transport | None = None
        self.banner: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.booted = asyncio.Event()
        """Set by ``FullyBooted`` on this connection."""
        self.framer = Framer(self._on_message, keep)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        with self.client.receipt:
            try:
                self.framer.feed(data)
            except Exception:  # a parser bug must not kill the connection
                log.exception("ami.parse_failed epoch=%d", self.epoch)
        if not self.banner.done() and self.framer.banner is not None:
            self.banner.set_result(self.framer.banner)

    def _on_message(self, fields: Fields) -> None:
        self.client._on_message(self.epoch, fields)

    def connection_lost(self, exc: Exception | None) -> None:
        self.framer.discard_tail()
        if not self.banner.done():
            self.banner.set_exception(ConnectionError("connection closed before the banner"))
        if not self.lost.done():
            self.lost.set_result(None)


class AmiClient:
    """Keeps one logged-in AMI connection and correlates actions with their replies.

    ``keep`` (see ``EventFilter.keeps``) sees each raw message before it is parsed; what it
    refuses is dropped unparsed. It must keep ``CONNECTION_EVENTS``. ``receipt`` is entered
    around each socket read (``EventTranslator.receipt``: one receipt time per read).
    """

    def __init__(self, config: AmiConfig, on_event: EventCallback,
                 on_connected: ConnectedCallback | None = None,
                 on_disconnected: DisconnectedCallback | None = None,
                 rng: random.Random | None = None, keep: KeepMessage | None = None,
                 receipt: AbstractContextManager[Any] | None = None) -> None:
        self.config = config
        self._keep = keep
        self.receipt = receipt if receipt is not None else contextlib.nullcontext()
        self._on_event = on_event
        self._on_connected = on_connected
        self._on_disconnected = on_disconnected
        self._rng = rng or random.Random()
        self._prefix = uuid.uuid4().hex[:8]
        self._ids = itertools.count(1)
        self._pending: dict[str, _Pending] = {}
        self._protocol: _AmiProtocol | None = None
        self._logged_in = False
        self._epoch = 0
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._state_changed = asyncio.Event()
        self._ready_at: float | None = None
        self._failures = 0
        self.banner: str | None = None
        self.connects = 0

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True while logged in on a live connection."""
        return self._logged_in

    @property
    def epoch(self) -> int:
        """Number of the current (or last) connection; grows with every connect."""
        return self._epoch

    async def start(self) -> None:
        if self._task is None:
            self._stopping.clear()
            self._task = asyncio.create_task(self._run(), name="ami-connect-loop")

    async def stop(self) -> None:
        self._stopping.set()
        if self._logged_in:
            with contextlib.suppress(Exception):
                await self.action("Logoff", timeout=1.0)
        self._close_transport()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Wait until logged in (tests, start-up ordering)."""
        async with asyncio.timeout(timeout):
            while not self._logged_in:
                self._state_changed.clear()
                await self._state_changed.wait()

    async def wait_disconnected(self, timeout: float | None = None) -> None:
        async with asyncio.timeout(timeout):
            while self._logged_in:
                self._state_changed.clear()
                await self._state_changed.wait()

    def drop_connection(self) -> None:
        """Abort the current connection (keepalive failure, tests); the loop reconnects."""
        self._close_transport()

    # -- connect loop ----------------------------------------------------------------------

    @property
    def failures(self) -> int:
        """Connections in a row that did not stay healthy (the backoff exponent)."""
        return self._failures

    async def _run(self) -> None:
        while not self._stopping.is_set():
            self._ready_at = None
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except AmiLoginError as exc:
                log.error("ami.login_refused host=%s user=%s reason=%s",
                          self.config.host, self.config.username, exc)
            except (OSError, TimeoutError, AmiTimeout, AmiNotConnected, ConnectionError) as exc:
                log.warning("ami.connect_failed host=%s port=%d error=%r",
                            self.config.host, self.config.port, exc)
            except Exception:  # whatever happens, keep reconnecting
                log.exception("ami.session_failed host=%s port=%d", self.config.host,
                              self.config.port)
            finally:
                self._teardown()
            if self._was_healthy():
                self._failures = 0
            if self._stopping.is_set():
                break
            delay = self.backoff_delay(self._failures)
            self._failures += 1
            log.info("ami.reconnect_in seconds=%.2f attempt=%d", delay, self._failures)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)

    def _was_healthy(self) -> bool:
        """The ended connection was resynced and stayed up ``stable_after`` seconds after:
        only then does the backoff start over (a login alone proves nothing)."""
        if self._ready_at is None:
            return False
        return asyncio.get_running_loop().time() - self._ready_at >= self.config.stable_after

    def backoff_delay(self, attempt: int) -> float:
        """Exponential backoff, capped, with jitter so many clients do not reconnect at once."""
        base = min(self.config.reconnect_max, self.config.reconnect_min * (2 ** min(attempt, 30)))
        return base * self._rng.uniform(0.5, 1.0)

    async def _session(self) -> None:
        """Connect, log in, resync (``on_connected``), run until the connection ends."""
        loop = asyncio.get_running_loop()
        self._epoch += 1
        epoch = self._epoch
        _, protocol = await asyncio.wait_for(
            loop.create_connection(lambda: _AmiProtocol(self, epoch, self._keep),
                                   self.config.host, self.config.port),
            self.config.connect_timeout)
        self._protocol = protocol
        self.banner = await asyncio.wait_for(asyncio.shield(protocol.banner),
                                             self.config.connect_timeout)
        await self._login()
        self._logged_in = True
        self.connects += 1
        self._state_changed.set()
        log.info("ami.connected host=%s port=%d epoch=%d banner=%r",
                 self.config.host, self.config.port, epoch, self.banner)
        tasks = [asyncio.create_task(self._keepalive(protocol), name="ami-keepalive"),
                 asyncio.create_task(self._run_on_connected(protocol), name="ami-resync")]
        try:
            await protocol.lost
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        log.warning("ami.disconnected epoch=%d", epoch)

    async def _login(self) -> None:
        cfg = self.config
        secret = cfg.secret.get_secret_value()
        headers: dict[str, Any] = {"Username": cfg.username, "Events": "on"}
        try:
            if cfg.auth == "md5":
                reply = await self._request("Challenge", {"AuthType": "MD5"}, None,
                                            before_login=True)
                challenge = first(reply, "Challenge")
                headers["AuthType"] = "MD5"
                headers["Key"] = hashlib.md5((challenge + secret).encode()).hexdigest()
            else:
                headers["Secret"] = secret
            await self._request("Login", headers, None, before_login=True)
        except AmiActionError as exc:
            raise AmiLoginError(exc.message) from None

    async def _run_on_connected(self, protocol: _AmiProtocol) -> None:
        """Wait for ``FullyBooted``, then resync; the connection is ready once it is done."""
        try:
            await self._wait_fully_booted(protocol)
            if self._on_connected is not None:
                await self._on_connected()
            self._ready_at = asyncio.get_running_loop().time()
        except AmiNotConnected as exc:
            log.warning("ami.on_connected_failed error=%r", exc)
        except (AmiTimeout, AmiActionError) as exc:
            # state not rebuilt: reconnect (with backoff) and resync again
            log.warning("ami.resync_failed error=%r action=reconnect", exc)
            self.drop_connection()
        except Exception:
            log.exception("ami.on_connected_crashed")

    async def _wait_fully_booted(self, protocol: _AmiProtocol) -> None:
        """A restarting Asterisk accepts logins before it has loaded its queues and
        channels; ``FullyBooted`` says it is done (sent at login to users with the
        ``system`` read class). Without it, resync anyway after ``fully_booted_timeout``."""
        limit = self.config.fully_booted_timeout
        try:
            await asyncio.wait_for(protocol.booted.wait(), limit)
        except TimeoutError:
            log.warning("ami.fully_booted_missing epoch=%d seconds=%g action=resync "
                        "hint=the AMI user needs the system read class", protocol.epoch, limit)

    async def _keepalive(self, protocol: _AmiProtocol) -> None:
        """Ping periodically; a connection that does not answer is dropped and re-made."""
        while True:
            await asyncio.sleep(self.config.ping_interval)
            try:
                await self.action("Ping")
            except (AmiTimeout, AmiNotConnected) as exc:
                log.warning("ami.keepalive_failed epoch=%d error=%r", protocol.epoch, exc)
                if protocol.transport is not None:
                    protocol.transport.abort()
                return

    def _close_transport(self) -> None:
        protocol = self._protocol
        if protocol is not None and protocol.transport is not None:
            protocol.transport.abort()

    def _teardown(self) -> None:
        """Fail every request of the ended connection: they are never re-sent."""
        self._close_transport()
        self._protocol = None
        was = self._logged_in
        self._logged_in = False
        if was:
            self._state_changed.set()
            if self._on_disconnected is not None:
                try:
                    self._on_disconnected(self._epoch)
                except Exception:
                    log.exception("ami.on_disconnected_failed")
        self._fail_pending(lambda action: AmiNotConnected(
            f"{action}: connection lost before the reply"))

    def _fail_pending(self, error: Callable[[str], AmiNotConnected]) -> None:
        pending, self._pending = self._pending, {}
        for request in pending.values():
            if not request.future.done():
                request.future.set_exception(error(request.action))

    # -- requests --------------------------------------------------------------------------

    async def action(self, action: str, headers: Mapping[str, Any] | None = None, *,
                     timeout: float | None = None) -> Message:
        """Send an action answered by a single ``Response``; returns it (success only)."""
        fields = await self._request(action, headers or {}, timeout)
        return to_message(fields)

    async def list_action(self, action: str, headers: Mapping[str, Any] | None = None, *,
                          timeout: float | None = None) -> list[Message]:
        """Send a list action; returns its items (always a list, possibly empty)."""
        items = await self._request(action, headers or {}, timeout, listing=True)
        return [to_message(item) for item in items]

    async def action_with_event(self, action: str, headers: Mapping[str, Any], event: str, *,
                                timeout: float | None = None) -> tuple[Message, Message]:
        """Send an action whose outcome arrives later as ``event`` with the same ActionID
        (async ``Originate`` -> ``OriginateResponse``)."""
        response, final = await self._request(action, headers, timeout, follow_event=event)
        return to_message(response), to_message(final)

    async def _request(self, action: str, headers: Mapping[str, Any], timeout: float | None,
                       *, listing: bool = False, follow_event: str | None = None,
                       before_login: bool = False) -> Any:
        protocol = self._protocol
        if protocol is None or protocol.transport is None or protocol.transport.is_closing():
            raise AmiNotConnected(f"{action}: not connected to Asterisk")
        if not (self._logged_in or before_login):
            raise AmiNotConnected(f"{action}: not logged in to Asterisk")
        action_id = f"cc-{self._prefix}-{protocol.epoch}-{next(self._ids)}"
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[action_id] = _Pending(action, future, follow_event, listing=listing)
        protocol.transport.write(encode_action(action, action_id, headers))
        limit = self.config.action_timeout if timeout is None else timeout
        try:
            return await asyncio.wait_for(future, limit)
        except TimeoutError:
            raise AmiTimeout(f"{action}: no reply within {limit:g} s") from None
        finally:
            self._pending.pop(action_id, None)

    # -- incoming --------------------------------------------------------------------------

    def _on_message(self, epoch: int, fields: Fields) -> None:
        if epoch != self._epoch:
            return  # late bytes of a dead connection
        name = fields.get("Event")
        if name is None:
            self._on_response(fields)
            return
        if name in CONNECTION_EVENTS:
            self._on_connection_event(name, fields)
        action_id = fields.get("ActionID")
        if action_id is not None and self._on_reply_event(action_id, fields):
            return
        try:
            self._on_event(fields)
        except Exception:
            log.exception("ami.event_handler_failed event=%s", fields.get("Event"))

    def _on_connection_event(self, name: str, fields: Fields) -> None:
        protocol = self._protocol
        if protocol is None:
            return
        if name == "FullyBooted":
            log.info("ami.fully_booted epoch=%d uptime=%s status=%r", protocol.epoch,
                     first(fields, "Uptime"), first(fields, "Status"))
            protocol.booted.set()
            return
        log.warning("ami.asterisk_shutdown epoch=%d shutdown=%s restart=%s action=reconnect",
                    protocol.epoch, first(fields, "Shutdown"), first(fields, "Restart"))
        self._fail_pending(lambda action: AsteriskShutdown(
            f"{action}: Asterisk is shutting down, no reply will come"))
        self._close_transport()

    def _on_response(self, fields: Fields) -> None:
        action_id = first(fields, "ActionID")
        request = self._pending.get(action_id)
        if request is None or request.future.done():
            log.warning("ami.stray_response action_id=%r response=%r message=%r",
                        action_id, fields.get("Response"), fields.get("Message"))
            return
        if fields.get("Response") not in ("Success", "Goodbye", "Follows"):
            request.future.set_exception(
                AmiActionError(request.action, first(fields, "Message", "error")))
            return
        request.response = fields
        if request.follow_event is not None:
            return
        if request.listing:
            if str(fields.get("EventList", "")).lower() == "start":
                return
            request.future.set_result([])
            return
        request.future.set_result(fields)

    def _on_reply_event(self, action_id: Any, fields: Fields) -> bool:
        """Route an event carrying one of our ActionIDs; True if it belonged to a request."""
        request = self._pending.get(action_id) if type(action_id) is str else None
        if request is None or request.future.done():
            return False
        if request.follow_event is not None:
            if fields.get("Event") == request.follow_event:
                request.future.set_result((request.response or {}, fields))
            return False  # OriginateResponse is also a normal event for listeners
        if not request.listing:
            return False
        if str(fields.get("EventList", "")).lower() == "complete":
            request.future.set_result(request.items)
        else:
            request.items.append(fields)
        return True
