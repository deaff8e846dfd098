"""The Asterisk Manager Interface over TCP, as Asterisk 22 (AMI 11.0.0) speaks it.

main/manager.c is the reference: banner, CRLF framing, case-insensitive keys, repeated keys,
Login (plain and MD5 challenge), read/write permission classes, ActionID echoed, event lists,
error texts. Actions of one session run in order (a synchronous Originate holds the session
like Asterisk's session thread does); events are batched into one write per loop turn. A
session whose socket stays full for the user's writetimeout (manager.conf, 100 ms by default)
is dropped, as manager.c drops a reader that does not keep up.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from callcenter.simulator import events as ev
from callcenter.simulator.channels import STATE_DESC

if TYPE_CHECKING:
    from callcenter.simulator.scenario import Simulator

log = logging.getLogger(__name__)

BANNER = b"Asterisk Call Manager/11.0.0\r\n"

Message = list[tuple[str, str]]


def get_header(msg: Message, key: str) -> str:
    """astman_get_header(): first match, case-insensitive, '' when absent."""
    low = key.lower()
    for k, v in msg:
        if k.lower() == low:
            return v
    return ""


def get_all(msg: Message, key: str) -> list[str]:
    low = key.lower()
    return [v for k, v in msg if k.lower() == low]


def ast_true(value: str) -> bool:
    return value.strip().lower() in ("yes", "true", "y", "t", "1", "on")


DEFAULT_WRITETIMEOUT_MS = 100  # manager.c: user->writetimeout, values below 100 rejected


class AmiUser:
    def __init__(
        self,
        username: str,
        secret: str,
        read: int,
        write: int,
        writetimeout_ms: int = DEFAULT_WRITETIMEOUT_MS,
    ) -> None:
        self.username = username
        self.secret = secret
        self.readperm = read
        self.writeperm = write
        self.writetimeout_ms = max(DEFAULT_WRITETIMEOUT_MS, writetimeout_ms)


def _ami_addr(sockname: Any) -> str:
    if not sockname:
        return "IPV4/TCP/0.0.0.0/0"
    host, port = sockname[0], sockname[1]
    family = "IPV6" if ":" in host else "IPV4"
    return f"{family}/TCP/{host}/{port}"


def _tv(ts: float) -> str:
    dt = datetime.fromtimestamp(ts, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}+0000"


class AmiSession(asyncio.Protocol):
    def __init__(self, server: AmiServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.buffer = ""
        self.out: list[bytes] = []
        self.flush_scheduled = False
        self.authenticated = False
        self.username = ""
        self.readperm = 0
        self.writeperm = 0
        self.send_events = 0
        self.challenge = ""
        self.closed = False
        self.queue: asyncio.Queue[Message | None] = asyncio.Queue()
        self.worker: asyncio.Task[None] | None = None
        self.session_id = f"0x{id(self):x}"
        self.writetimeout_ms = DEFAULT_WRITETIMEOUT_MS
        self.write_blocked: asyncio.TimerHandle | None = None
        self.gone = asyncio.Event()  # set when the connection is lost (for tests, scenarios)
        self.started = server.sim.clock.now()  # sessionstart_tv, the SessionTV of events

    # -- transport --------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        # Asterisk writes with a blocking write bounded by writetimeout: any byte the kernel
        # does not take at once counts as a blocked write (pause_writing below)
        transport.set_write_buffer_limits(high=0, low=0)
        transport.write(BANNER)
        self.server.sessions.add(self)
        self.worker = asyncio.get_running_loop().create_task(self._work())

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.gone.set()
        self.resume_writing()
        self.server.sessions.discard(self)
        if self in self.server.sim.hub.sinks:
            self.server.sim.hub.sinks.remove(self)
        self.queue.put_nowait(None)

    def data_received(self, data: bytes) -> None:
        self.buffer += data.decode("utf-8", "replace")
        while True:
            idx = self.buffer.find("\r\n\r\n")
            sep = 4
            alt = self.buffer.find("\n\n")
            if alt != -1 and (idx == -1 or alt < idx):
                idx, sep = alt, 2
            if idx == -1:
                break
            raw, self.buffer = self.buffer[:idx], self.buffer[idx + sep :]
            msg: Message = []
            for line in raw.replace("\r\n", "\n").split("\n"):
                if not line.strip():
                    continue
                key, colon, value = line.partition(":")
                if not colon:
                    continue
                msg.append((key.strip(), value.strip()))
            if msg:
                self.queue.put_nowait(msg)
            else:
                # a blank message still gets an answer, like manager.c
                self.queue.put_nowait([])
        if len(self.buffer) > 1_000_000:
            self.close()

    def send(self, text: str) -> None:
        self.write(text.encode("utf-8"))

    def write(self, data: bytes) -> None:
        if self.closed or self.transport is None:
            return
        self.out.append(data)
        if not self.flush_scheduled:
            self.flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self.flush_scheduled = False
        if self.closed or self.transport is None or not self.out:
            self.out.clear()
            return
        data = b"".join(self.out)
        self.out.clear()
        self.transport.write(data)

    def pause_writing(self) -> None:
        """The socket is full: like ast_careful_write(), give the reader writetimeout ms."""
        if self.write_blocked is None and not self.closed:
            self.write_blocked = asyncio.get_running_loop().call_later(
                self.writetimeout_ms / 1000.0, self._write_timed_out
            )

    def resume_writing(self) -> None:
        if self.write_blocked is not None:
            self.write_blocked.cancel()
            self.write_blocked = None

    def _write_timed_out(self) -> None:
        """manager.c drops a session whose write blocked longer than writetimeout."""
        self.write_blocked = None
        if self.closed or self.transport is None:
            return
        log.warning(
            "ami write timed out, dropping session user=%s writetimeout_ms=%s pending_bytes=%s",
            self.username,
            self.writetimeout_ms,
            self.transport.get_write_buffer_size(),
        )
        self.closed = True
        self.transport.abort()

    def deliver(self, flag: int, data: bytes) -> None:
        if self.authenticated and self.send_events & self.readperm & flag:
            self.write(data)

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.flush()
            self.closed = True
            self.transport.close()

    # -- actions ----------------------------------------------------------------------------
    async def _work(self) -> None:
        while True:
            msg = await self.queue.get()
            if msg is None or self.closed:
                return
            try:
                keep = await self.process(msg)
            except Exception:  # noqa: BLE001 - a bad action never kills the session
                log.exception("AMI action failed: %r", msg)
                self.error(msg, "Internal error")
                keep = True
            if not keep:
                self.close()
                return

    def response(
        self, msg: Message, resp: str, message: str | None, listflag: str | None = None
    ) -> None:
        text = f"Response: {resp}\r\n"
        aid = get_header(msg, "ActionID")
        if aid:
            text += f"ActionID: {aid}\r\n"
        if listflag:
            text += f"EventList: {listflag}\r\n"
        if message is not None:
            text += f"Message: {message}\r\n"
        self.send(text + "\r\n")

    def ack(self, msg: Message, message: str) -> None:
        self.response(msg, "Success", message)

    def error(self, msg: Message, message: str) -> None:
        self.response(msg, "Error", message)

    def start_ack(self, msg: Message) -> str:
        text = "Response: Success\r\n"
        aid = get_header(msg, "ActionID")
        if aid:
            text += f"ActionID: {aid}\r\n"
        return text

    def id_text(self, msg: Message) -> str:
        aid = get_header(msg, "ActionID")
        return f"ActionID: {aid}\r\n" if aid else ""

    def list_complete(self, msg: Message, event: str, count: int, extra: str = "") -> None:
        self.send(
            f"Event: {event}\r\n{self.id_text(msg)}EventList: Complete\r\n"
            f"ListItems: {count}\r\n{extra}\r\n"
        )

    async def process(self, msg: Message) -> bool:
        action = ""
        for k, v in msg:
            if k.lower() == "action" and v:
                action = v
                break
        if not action:
            self.error(msg, "Missing action in request")
            return True
        low = action.lower()
        if not self.authenticated and low not in ("login", "logoff", "challenge"):
            self.error(msg, "Permission denied")
            return True
        spec = ACTIONS.get(low)
        if spec is None:
            self.error(
                msg,
                f"Invalid/unknown command: {action}."
                " Use Action: ListCommands to show available commands.",
            )
            # process_message(): report_req_bad_format() goes out through stasis, so the
            # event may trail the next action's reply
            asyncio.get_running_loop().call_soon(
                self.server.security_event,
                "RequestBadFormat",
                self,
                self.username,
                {"RequestType": f"Action: {action}"},
            )
            return True
        authority, handler, _synopsis = spec
        if authority and not (self.writeperm & authority):
            self.error(msg, "Permission denied")
            return True
        result = await handler(self, msg)
        return result is not False


# -- login and session actions --------------------------------------------------------------
async def action_login(s: AmiSession, msg: Message) -> bool:
    if s.authenticated:
        s.ack(msg, "Already authenticated")
        return True
    server = s.server
    username = get_header(msg, "Username")
    user = server.users.get(username) if username else None
    ok, report = _authenticate(s, msg, user)
    if not ok:
        if report is not None:
            server.security_event(report[0], s, username, report[1])
        await asyncio.sleep(server.sim.config.bad_login_delay)  # manager.c: sleep(1)
        s.error(msg, "Authentication failed")
        return False
    assert user is not None
    s.username = username
    s.writetimeout_ms = user.writetimeout_ms
    s.readperm = user.readperm
    s.writeperm = user.writeperm
    events = get_header(msg, "Events")
    if events:
        mask = ev.eventmask_from_string(events)
        s.send_events = (mask & user.readperm) if mask >= 0 else user.readperm
    else:
        s.send_events = user.readperm
    s.authenticated = True
    s.ack(msg, "Authentication accepted")
    if s.send_events & ev.SYSTEM and server.sim.fully_booted:
        sim = server.sim
        uptime = int(sim.clock.now() - sim.pbx.started_at + sim.uptime_offset)
        s.send(
            "Event: FullyBooted\r\nPrivilege: system,all\r\n"
            f"Uptime: {uptime}\r\nLastReload: {uptime}\r\nStatus: Fully Booted\r\n\r\n"
        )
    sim = server.sim
    sim.hub.sinks.append(s)
    server.security_event("SuccessfulAuth", s, username)
    return True


SecurityReport = tuple[str, dict[str, str]]


def _authenticate(
    s: AmiSession, msg: Message, user: AmiUser | None
) -> tuple[bool, SecurityReport | None]:
    """manager.c authenticate(): whether the login is good, and the security event it
    reports when not. An MD5 Key without a prior Challenge fails without any report."""
    if user is None:
        return False, ("InvalidAccountID", {})
    if s.server.refuse_logins:
        return False, None
    if get_header(msg, "AuthType").lower() == "md5":
        key = get_header(msg, "Key")
        if not (key and s.challenge):
            return False, None
        expected = hashlib.md5((s.challenge + user.secret).encode()).hexdigest()
        if key == expected:
            return True, None
        fields = {"Challenge": s.challenge, "Response": key, "ExpectedResponse": expected}
        return False, ("ChallengeResponseFailed", fields)
    if get_header(msg, "Secret") == user.secret:
        return True, None
    return False, ("InvalidPassword", {})


async def action_logoff(s: AmiSession, msg: Message) -> bool:
    s.response(msg, "Goodbye", "Thanks for all the fish.")
    return False


async def action_challenge(s: AmiSession, msg: Message) -> bool:
    if get_header(msg, "AuthType").lower() == "md5":
        if not s.challenge:
            s.challenge = str(s.server.sim.rng.randrange(0, 2**31))
        s.send(s.start_ack(msg) + f"Challenge: {s.challenge}\r\n\r\n")
    else:
        s.error(msg, "Must specify AuthType")
    return True


async def action_ping(s: AmiSession, msg: Message) -> bool:
    now = s.server.sim.clock.now()
    s.send(s.start_ack(msg) + f"Ping: Pong\r\nTimestamp: {now:.6f}\r\n\r\n")
    return True


async def action_events(s: AmiSession, msg: Message) -> bool:
    mask = ev.eventmask_from_string(get_header(msg, "EventMask"))
    if mask < 0:
        s.error(msg, "Invalid event mask")
        return True
    s.send_events = mask & s.readperm
    s.send(s.start_ack(msg) + f"Events: {'On' if mask > 0 else 'Off'}\r\n\r\n")
    return True


async def action_listcommands(s: AmiSession, msg: Message) -> bool:
    text = s.start_ack(msg)
    for name, (authority, _handler, synopsis) in ACTIONS.items():
        if authority == 0 or s.writeperm & authority:
            privs = ",".join(n for n, bit in ev.EVENT_FLAGS.items() if authority & bit) or "<none>"
            text += f"{ACTION_NAMES[name]}: {synopsis}. (Priv: {privs})\r\n"
    s.send(text + "\r\n")
    return True


async def action_userevent(s: AmiSession, msg: Message) -> bool:
    name = get_header(msg, "UserEvent")
    body = "".join(f"{k}: {v}\r\n" for k, v in msg if k.lower() not in ("userevent", "action"))
    s.ack(msg, "Event Sent")
    s.server.sim.hub.emit("UserEvent", ev.USER, f"UserEvent: {name}\r\n{body}")
    return True


async def action_corestatus(s: AmiSession, msg: Message) -> bool:
    sim = s.server.sim
    start = sim.pbx.started_at - sim.uptime_offset
    date = time.strftime("%Y-%m-%d", time.gmtime(start))
    tod = time.strftime("%H:%M:%S", time.gmtime(start))
    calls = len({c.linkedid for c in sim.pbx.channels.values()})
    # action_corestatus(): no Message line; CoreProcessedCalls is ast_processed_calls()
    s.send(
        s.start_ack(msg) + f"CoreStartupDate: {date}\r\nCoreStartupTime: {tod}\r\n"
        f"CoreReloadDate: {date}\r\nCoreReloadTime: {tod}\r\nCoreCurrentCalls: {calls}\r\n"
        f"CoreProcessedCalls: {sim.pbx.processed_calls}\r\n\r\n"
    )
    return True


# -- channel actions ------------------------------------------------------------------------
async def action_hangup(s: AmiSession, msg: Message) -> bool:
    name = get_header(msg, "Channel")
    if not name:
        s.error(msg, "No channel specified")
        return True
    cause_s = get_header(msg, "Cause")
    cause = 0
    if cause_s:
        cause = int(cause_s) if cause_s.isdigit() and 0 <= int(cause_s) <= 127 else 0
    pbx = s.server.sim.pbx
    if name.startswith("/") and name.endswith("/") and len(name) > 1:
        import re

        try:
            rx = re.compile(name[1:-1])
        except re.error:
            s.error(msg, f"Regex compile failed on: {name}")
            return True
        s.response(msg, "Success", "Channels hung up will follow", "start")
        count = 0
        for chan in list(pbx.channels.values()):
            if rx.search(chan.name):
                chan.soft_hangup(cause or 16, flag=None)  # ast_softhangup_nolock()
                count += 1
                s.send(f"Event: ChannelHungup\r\nChannel: {chan.name}\r\n{s.id_text(msg)}\r\n")
        s.list_complete(msg, "ChannelsHungupListComplete", count)
        return True
    chan = pbx.find_channel(name)
    if chan is None:
        s.error(msg, "No such channel")
        return True
    if not cause and chan.local_half and not chan.cause_set:
        # action_hangup() sets a cause only when one is given; a Local channel's driver adds
        # none, so its Hangup says 0 (chan_pjsip's hang-up turns 0 into Normal Clearing)
        chan.hangup_cause, chan.cause_set = 0, True
    chan.soft_hangup(cause or 16, flag=None)  # no event: ast_softhangup_nolock()
    s.ack(msg, "Channel Hungup")
    return True


async def action_setvar(s: AmiSession, msg: Message) -> bool:
    varname = get_header(msg, "Variable")
    if not varname:
        s.error(msg, "No variable specified")
        return True
    name = get_header(msg, "Channel")
    pbx = s.server.sim.pbx
    if name:
        chan = pbx.find_channel(name)
        if chan is None:
            s.error(msg, "No such channel")
            return True
        chan.set_var(varname, get_header(msg, "Value"))
    else:
        pbx.globals[varname] = get_header(msg, "Value")
    s.ack(msg, "Variable Set")
    return True


async def action_getvar(s: AmiSession, msg: Message) -> bool:
    from callcenter.simulator.pbx import ChannelVars

    varname = get_header(msg, "Variable")
    if not varname:
        s.error(msg, "No variable specified")
        return True
    name = get_header(msg, "Channel")
    pbx = s.server.sim.pbx
    value = ""
    if name:
        chan = pbx.find_channel(name)
        if chan is None:
            s.error(msg, "No such channel")
            return True
        if varname.endswith(")") and "(" in varname:
            fname, _, arg = varname[:-1].partition("(")
            func = pbx._functions_for(chan).get(fname.upper())
            value = func(arg) if func else ""
        else:
            try:
                value = ChannelVars(pbx, chan)[varname]
            except KeyError:
                value = ""
    else:
        value = pbx.globals.get(varname, "")
    s.send(s.start_ack(msg) + f"Variable: {varname}\r\nValue: {value}\r\n\r\n")
    return True


def _duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    return f"{seconds // 3600:02d}:{(seconds % 3600) // 60:02d}:{seconds % 60:02d}"


async def action_coreshowchannels(s: AmiSession, msg: Message) -> bool:
    sim = s.server.sim
    s.response(msg, "Success", "Channels will follow", "start")
    now = sim.clock.now()
    aid = s.id_text(msg)
    chans = [c for c in sim.pbx.channels.values() if not c.dead]
    parts = []
    for chan in reversed(chans):
        parts.append(
            f"Event: CoreShowChannel\r\n{aid}{chan.snap()}"
            f"Application: {chan.appl}\r\nApplicationData: {chan.data}\r\n"
            f"Duration: {_duration(now - chan.created)}\r\n"
            f"BridgeId: {chan.bridge.uniqueid if chan.bridge else ''}\r\n\r\n"
        )
    s.send("".join(parts))
    s.list_complete(msg, "CoreShowChannelsComplete", len(chans))
    return True


async def action_status(s: AmiSession, msg: Message) -> bool:
    sim = s.server.sim
    pbx = sim.pbx
    name = get_header(msg, "Channel")
    if name:
        chan = pbx.find_channel(name)
        if chan is None:
            s.error(msg, "No such channel")
            return True
        chans = [chan]
    else:
        chans = [c for c in pbx.channels.values() if not c.dead]
    s.response(msg, "Success", "Channel status will follow", "start")
    wanted = [v.strip() for v in get_header(msg, "Variables").split(",") if v.strip()]
    all_vars = ast_true(get_header(msg, "AllVariables"))
    aid = s.id_text(msg)
    now = sim.clock.now()
    parts = []
    for chan in chans:
        variables = ""
        for var in wanted:
            variables += f"Variable: {var}={chan.vars.get(var, '')}\r\n"
        if all_vars:
            variables += "".join(f"Variable: {k}={v}\r\n" for k, v in chan.vars.items())
        parts.append(
            "Event: Status\r\nPrivilege: Call\r\n"
            + chan.snap()
            + f"Type: {chan.tech}\r\nDNID: \r\n"
            f"EffectiveConnectedLineNum: {chan.conn_num or '<unknown>'}\r\n"
            f"EffectiveConnectedLineName: {chan.conn_name or '<unknown>'}\r\n"
            f"TimeToHangup: 0\r\nBridgeID: {chan.bridge.uniqueid if chan.bridge else ''}\r\n"
            f"Application: {chan.appl}\r\nData: {chan.data}\r\n"
            "Nativeformats: (ulaw)\r\nReadformat: ulaw\r\nReadtrans: \r\n"
            "Writeformat: ulaw\r\nWritetrans: \r\nCallgroup: 0\r\nPickupgroup: 0\r\n"
            f"Seconds: {int(now - chan.created)}\r\n{variables}{aid}\r\n"
        )
    s.send("".join(parts))
    s.list_complete(msg, "StatusComplete", len(chans), f"Items: {len(chans)}\r\n")
    return True


async def action_redirect(s: AmiSession, msg: Message) -> bool:
    """manager.c action_redirect(): one channel, or two with ExtraChannel (Dual Redirect)."""
    name = get_header(msg, "Channel")
    context = get_header(msg, "Context")
    exten = get_header(msg, "Exten")
    priority = get_header(msg, "Priority")
    name2 = get_header(msg, "ExtraChannel")
    context2 = get_header(msg, "ExtraContext")
    exten2 = get_header(msg, "ExtraExten")
    priority2 = get_header(msg, "ExtraPriority")
    for value, missing in (
        (name, "Channel not specified"),
        (context, "Context not specified"),
        (exten, "Exten not specified"),
        (priority, "Priority not specified"),
    ):
        if not value:
            s.error(msg, missing)
            return True
    pbx = s.server.sim.pbx
    pri = _priority(pbx, context, exten, priority)
    if pri < 1:
        s.error(msg, "Priority is invalid")
        return True
    target2 = (context, exten, pri)
    if name2 and context2:
        if not exten2:
            s.error(msg, "ExtraExten not specified")
            return True
        if not priority2:
            s.error(msg, "ExtraPriority not specified")
            return True
        pri2 = _priority(pbx, context2, exten2, priority2)
        if pri2 < 1:
            s.error(msg, "ExtraPriority is invalid")
            return True
        target2 = (context2, exten2, pri2)
    chan = pbx.find_channel(name)
    if chan is None:
        s.error(msg, f"Channel does not exist: {name}")
        return True
    if chan.hungup:
        s.error(msg, "Redirect failed, channel not up.")
        return True
    sim = s.server.sim
    # ast_async_goto() only flags the channel; the bridge and PBX threads act on it after
    # the reply is queued, so the reply comes before the events it causes
    if not name2:
        if not sim.can_redirect(chan):
            s.error(msg, "Redirect failed")
            return True
        s.ack(msg, "Redirect successful")
        await sim.redirect(chan, context, exten, pri)
        return True
    chan2 = pbx.find_channel(name2)
    if chan2 is None:
        s.error(msg, f"ExtraChannel does not exist: {name2}")
        return True
    if chan2.hungup:
        s.error(msg, "Redirect failed, extra channel not up.")
        return True
    together = chan.bridge is not None and chan.bridge is chan2.bridge
    if not together and not sim.can_redirect(chan):
        s.error(msg, "Redirect failed")
    elif not together and not sim.can_redirect(chan2):
        await sim.redirect(chan, context, exten, pri)
        s.error(msg, "Secondary redirect failed")
    else:
        s.ack(msg, "Dual Redirect successful")
        await sim.redirect_pair(chan, (context, exten, pri), chan2, target2)
    return True


def _transfer_request(s: AmiSession, msg: Message) -> tuple[Any, str] | None:
    """The live channel and the extension a transfer action names, or None after answering
    manager.c's error (checked in its order: channel, extension, then the lookup)."""
    name = get_header(msg, "Channel")
    exten = get_header(msg, "Exten")
    if not name:
        s.error(msg, "No channel specified")
        return None
    if not exten:
        s.error(msg, "No extension specified")
        return None
    chan = s.server.sim.pbx.find_channel(name)
    if chan is None or chan.dead:
        s.error(msg, "Channel specified does not exist")
        return None
    return chan, exten


async def action_blindtransfer(s: AmiSession, msg: Message) -> bool:
    """manager.c action_blind_transfer(): the channel's bridge peer goes to
    ``Context``/``Exten`` (default: the channel's context); the reply comes before the
    events (captures/blind_transfer)."""
    found = _transfer_request(s, msg)
    if found is None:
        return True
    chan, exten = found
    context = get_header(msg, "Context") or chan.context
    peer = chan.bridge.peer_of(chan) if chan.bridge is not None else None
    if peer is None:
        s.error(msg, "Transfer invalid" if chan.bridge is None else "Transfer failed")
    else:
        s.ack(msg, "Transfer succeeded")
    s.server.sim.blind_transfer(chan, context, exten)
    return True


async def action_atxfer(s: AmiSession, msg: Message) -> bool:
    """manager.c action_atxfer(): needs a channel, an extension and an atxfer code in
    features.conf; the reply comes before the events (captures/attended_transfer). Whether
    the transfer happens is up to the bridge's features (Queue() option t): see atxfer.py."""
    found = _transfer_request(s, msg)
    if found is None:
        return True
    chan, exten = found
    sim = s.server.sim
    if not sim.pbx.atxfer_code:
        s.error(msg, "No attended transfer feature code found")
        return True
    s.ack(msg, "Atxfer successfully queued")
    sim.attended_transfer(chan, exten, get_header(msg, "Context") or None)
    return True


async def action_reload(s: AmiSession, msg: Message) -> bool:
    """manager.c action_reload(): one module (``Module``) or all of them."""
    status = s.server.sim.reload(get_header(msg, "Module") or None)
    if status == 0:
        s.ack(msg, "Module Reloaded")
    else:
        s.error(msg, "No such module")
    return True


def _priority(pbx: Any, context: str, exten: str, priority: str) -> int:
    """A number, or a label looked up like ast_findlabel_extension(); < 1 when invalid."""
    try:
        return int(priority)
    except ValueError:
        return int(pbx.dialplan.priority_of_label(context, exten, priority) or 0)


async def action_playdtmf(s: AmiSession, msg: Message) -> bool:
    pbx = s.server.sim.pbx
    chan = pbx.find_channel(get_header(msg, "Channel"))
    if chan is None:
        s.error(msg, "Channel not found")
        return True
    digit = get_header(msg, "Digit")
    if not digit:
        s.error(msg, "No digit specified")
        return True
    duration = get_header(msg, "Duration")
    if duration and not duration.isdigit():
        s.error(msg, "Could not convert Duration parameter")
        return True
    ms = int(duration) if duration else 100
    if ast_true(get_header(msg, "Receive")):
        pbx.dtmf_received(chan, digit[0], ms or 100)
        s.ack(msg, "DTMF successfully queued")
        return True
    # manager_play_dtmf(): ast_senddigit() plays the digit for its duration before replying;
    # on a Local channel the other half receives it (DTMFBegin/End there, Received)
    pbx.send_dtmf(chan, digit[0], ms or 100)
    await pbx.clock.sleep((ms or 100) / 1000.0)
    s.ack(msg, "DTMF successfully queued")
    return True


async def action_originate(s: AmiSession, msg: Message) -> bool:
    from callcenter.simulator.pbx import OriginateParams, parse_callerid

    sim = s.server.sim
    pbx = sim.pbx
    name = get_header(msg, "Channel")
    exten = get_header(msg, "Exten")
    context = get_header(msg, "Context")
    priority = get_header(msg, "Priority")
    timeout = get_header(msg, "Timeout")
    app = get_header(msg, "Application")
    channelid = get_header(msg, "ChannelId")
    otherid = get_header(msg, "OtherChannelId")
    if len(channelid) > 149 or len(otherid) > 149:
        s.error(msg, "Uniqueid length exceeds maximum of 149\n")
        return True
    if not name:
        s.error(msg, "Channel not specified")
        return True
    pi = 0
    if priority:
        try:
            pi = int(priority)
        except ValueError:
            pi = pbx.dialplan.priority_of_label(context, exten, priority) or 0
            if pi < 1:
                s.error(msg, "Invalid priority")
                return True
    to = 30000
    if timeout:
        try:
            to = int(timeout)
        except ValueError:
            s.error(msg, "Invalid timeout")
            return True
    if "/" not in name:
        s.error(msg, "Invalid channel")
        return True
    if app and not _originate_app_permitted(app, get_header(msg, "Data"), s.writeperm):
        s.error(msg, "Originate Access Forbidden: app or data blacklisted")
        return True
    if not app and pi and not pbx.dialplan.match(context, exten):
        s.error(msg, "Extension does not exist.")
        return True
    variables: list[tuple[str, str]] = []
    for value in get_all(msg, "Variable"):
        for item in value.split(","):
            k, sep, v = item.partition("=")
            if sep and k.strip():
                variables.append((k.strip(), v))
    num, cname = parse_callerid(get_header(msg, "CallerID"))
    params = OriginateParams(
        channel=name,
        context=context,
        exten=exten,
        priority=pi,
        application=app,
        data=get_header(msg, "Data"),
        timeout_ms=to,
        cid=(num, cname),
        variables=variables,
        account=get_header(msg, "Account"),
        channelid=channelid,
        otherchannelid=otherid,
    )
    aid = get_header(msg, "ActionID")
    if ast_true(get_header(msg, "Async")):
        s.ack(msg, "Originate successfully queued")
        pbx.spawn(sim.originate_async(params, aid))
        return True
    if not app and not (exten and context and pi):
        s.error(msg, "Originate with 'Exten' requires 'Context' and 'Priority'")
        return True
    ok, _reason, chan = await pbx.originate(params)
    if ok and chan is not None:
        pbx.after_originate(chan, params)
        s.ack(msg, "Originate successfully queued")
    else:
        s.error(msg, "Originate failed")
    return True


def _originate_app_permitted(app: str, data: str, perm: int) -> bool:
    low = app.lower()
    for word in (
        "agi",
        "dbdeltree",
        "exec",
        "externalivr",
        "mixmonitor",
        "originate",
        "reload",
        "system",
    ):
        if word in low:
            return bool(perm & ev.SYSTEM)
    if "queue" in low:
        parts = data.split(",")
        if len(parts) > 5 and parts[5]:
            return bool(perm & (ev.AGI | ev.SYSTEM))
        return True
    for word in ("CURL", "DB", "EVAL", "FILE", "ODBC", "REALTIME", "SHELL"):
        if word in data:
            return bool(perm & ev.SYSTEM)
    return True


# -- queue actions ----------------------------------------------------------------------------
async def action_queueadd(s: AmiSession, msg: Message) -> bool:
    from callcenter.simulator.queues import RES_EXISTS, RES_NOSUCHQUEUE, RES_OKAY

    queue = get_header(msg, "Queue")
    interface = get_header(msg, "Interface")
    if not queue:
        s.error(msg, "'Queue' not specified.")
        return True
    if not interface:
        s.error(msg, "'Interface' not specified.")
        return True
    penalty_s = get_header(msg, "Penalty")
    penalty = int(penalty_s) if penalty_s.lstrip("-").isdigit() and int(penalty_s) >= 0 else 0
    wrap_s = get_header(msg, "Wrapuptime")
    wrap = int(wrap_s) if wrap_s.isdigit() else 0
    paused = ast_true(get_header(msg, "Paused"))
    res = s.server.sim.pbx.queues.add_member(
        queue,
        interface,
        get_header(msg, "MemberName"),
        penalty,
        paused,
        get_header(msg, "StateInterface"),
        get_header(msg, "Reason"),
        wrap,
    )
    if res == RES_OKAY:
        s.ack(msg, "Added interface to queue")
    elif res == RES_EXISTS:
        s.error(msg, "Unable to add interface: Already there")
    elif res == RES_NOSUCHQUEUE:
        s.error(msg, "Unable to add interface to queue: No such queue")
    else:
        s.error(msg, "Out of memory")
    return True


async def action_queueremove(s: AmiSession, msg: Message) -> bool:
    from callcenter.simulator.queues import RES_EXISTS, RES_NOSUCHQUEUE, RES_NOT_DYNAMIC, RES_OKAY

    queue = get_header(msg, "Queue")
    interface = get_header(msg, "Interface")
    if not queue or not interface:
        s.error(msg, "Need 'Queue' and 'Interface' parameters.")
        return True
    res = s.server.sim.pbx.queues.remove_member(queue, interface)
    if res == RES_OKAY:
        s.ack(msg, "Removed interface from queue")
    elif res == RES_EXISTS:
        s.error(msg, "Unable to remove interface: Not there")
    elif res == RES_NOSUCHQUEUE:
        s.error(msg, "Unable to remove interface from queue: No such queue")
    elif res == RES_NOT_DYNAMIC:
        s.error(msg, "Member not dynamic")
    return True


async def action_queuepause(s: AmiSession, msg: Message) -> bool:
    interface = get_header(msg, "Interface")
    paused_s = get_header(msg, "Paused")
    if not interface or not paused_s:
        s.error(msg, "Need 'Interface' and 'Paused' parameters.")
        return True
    paused = ast_true(paused_s)
    ok = s.server.sim.pbx.queues.set_paused(
        get_header(msg, "Queue"), interface, get_header(msg, "Reason"), paused
    )
    if not ok:
        s.error(msg, "Interface not found")
    else:
        s.ack(msg, "Interface paused successfully" if paused else "Interface unpaused successfully")
    return True


async def action_queuepenalty(s: AmiSession, msg: Message) -> bool:
    interface = get_header(msg, "Interface")
    penalty_s = get_header(msg, "Penalty")
    if not interface or not penalty_s:
        s.error(msg, "Need 'Interface' and 'Penalty' parameters.")
        return True
    try:
        penalty = int(penalty_s)
    except ValueError:
        penalty = 0
    if not s.server.sim.pbx.queues.set_penalty(get_header(msg, "Queue"), interface, penalty):
        s.error(msg, "Invalid interface, queuename or penalty")
    else:
        s.ack(msg, "Interface penalty set successfully")
    return True


async def action_queuestatus(s: AmiSession, msg: Message) -> bool:
    sim = s.server.sim
    qfilter = get_header(msg, "Queue")
    mfilter = get_header(msg, "Member")
    aid = s.id_text(msg)
    s.response(msg, "Success", "Queue status will follow", "start")
    now = sim.clock.now()
    parts = []
    items = 0
    for q in reversed(list(sim.pbx.queues.queues.values())):
        if qfilter and q.name.lower() != qfilter.lower():
            continue
        sl, sl2 = q.sl_perf()
        parts.append(
            f"Event: QueueParams\r\nQueue: {q.name}\r\nMax: {q.maxlen}\r\n"
            f"Strategy: {q.strategy}\r\n"
            f"Calls: {len(q.entries)}\r\nHoldtime: {q.holdtime}\r\nTalkTime: {q.talktime}\r\n"
            f"Completed: {q.completed}\r\nAbandoned: {q.abandoned}\r\n"
            f"ServiceLevel: {q.servicelevel}\r\n"
            f"ServicelevelPerf: {sl:2.1f}\r\nServicelevelPerf2: {sl2:2.1f}\r\n"
            f"Weight: {q.weight}\r\n{aid}\r\n"
        )
        items += 1
        for m in reversed(list(q.members.values())):
            if mfilter and mfilter not in (m.interface, m.membername):
                continue
            parts.append(
                f"Event: QueueMember\r\nQueue: {q.name}\r\nName: {m.membername}\r\n"
                f"Location: {m.interface}\r\n"
                f"StateInterface: {m.state_interface}\r\n"
                f"Membership: {'dynamic' if m.dynamic else 'static'}\r\n"
                f"Penalty: {m.penalty}\r\nCallsTaken: {m.calls}\r\nLastCall: {int(m.lastcall)}\r\n"
                f"LastPause: {int(m.lastpause)}\r\nLoginTime: {int(m.logintime)}\r\n"
                f"InCall: {1 if m.starttime else 0}\r\nStatus: {m.status}\r\n"
                f"Paused: {1 if m.paused else 0}\r\n"
                f"PausedReason: {m.reason_paused}\r\nWrapuptime: {m.wrapuptime}\r\n{aid}\r\n"
            )
            items += 1
        for pos, e in enumerate(q.entries, start=1):
            c = e.chan
            parts.append(
                f"Event: QueueEntry\r\nQueue: {q.name}\r\nPosition: {pos}\r\nChannel: {c.name}\r\n"
                f"Uniqueid: {c.uniqueid}\r\nCallerIDNum: {c.cid_num or 'unknown'}\r\n"
                f"CallerIDName: {c.cid_name or 'unknown'}\r\n"
                f"ConnectedLineNum: {c.conn_num or 'unknown'}\r\n"
                f"ConnectedLineName: {c.conn_name or 'unknown'}\r\nWait: {int(now - e.start)}\r\n"
                f"Priority: {e.prio}\r\n{aid}\r\n"
            )
            items += 1
    s.send("".join(parts))
    s.list_complete(msg, "QueueStatusComplete", items)
    return True


async def action_queuesummary(s: AmiSession, msg: Message) -> bool:
    from callcenter.simulator import devices as ds

    sim = s.server.sim
    qfilter = get_header(msg, "Queue")
    aid = s.id_text(msg)
    s.response(msg, "Success", "Queue summary will follow", "start")
    now = sim.clock.now()
    parts = []
    for q in reversed(list(sim.pbx.queues.queues.values())):
        if qfilter and q.name.lower() != qfilter.lower():
            continue
        logged = sum(1 for m in q.members.values() if m.status not in (ds.UNAVAILABLE, ds.INVALID))
        avail = sum(
            1
            for m in q.members.values()
            if m.status not in (ds.UNAVAILABLE, ds.INVALID) and q.member_available(m)
        )
        longest = max((int(now - e.start) for e in q.entries), default=0)
        parts.append(
            f"Event: QueueSummary\r\nQueue: {q.name}\r\nLoggedIn: {logged}\r\n"
            f"Available: {avail}\r\n"
            f"Callers: {len(q.entries)}\r\nHoldTime: {q.holdtime}\r\nTalkTime: {q.talktime}\r\n"
            f"LongestHoldTime: {longest}\r\n{aid}\r\n"
        )
    s.send("".join(parts))
    s.list_complete(msg, "QueueSummaryComplete", len(parts))
    return True


# -- MixMonitor -----------------------------------------------------------------------------
def _named_channel(s: AmiSession, msg: Message) -> Any:
    """The channel named by ``Channel:``, or None after answering Asterisk's error for it."""
    name = get_header(msg, "Channel")
    if not name:
        s.error(msg, "No channel specified")
        return None
    chan = s.server.sim.pbx.find_channel(name)
    if chan is None:
        s.error(msg, "No such channel")
    return chan


async def action_mixmonitor(s: AmiSession, msg: Message) -> bool:
    from callcenter.simulator import apps

    chan = _named_channel(s, msg)
    if chan is None:
        return True
    pbx = s.server.sim.pbx
    file = get_header(msg, "File")
    options = get_header(msg, "Options")
    if not file:
        # mixmonitor_exec() refuses an empty file name (the r()/w() options are not modelled)
        s.error(msg, "Could not start monitoring channel")
        return True
    # manager_mixmonitor() answers once the audiohook is attached; VarSet and
    # MixMonitorStart come from the recording thread afterwards
    s.send(s.start_ack(msg) + "\r\n")
    await apps.app_mixmonitor(pbx, chan, f"{file},{options}")
    return True


async def action_stopmixmonitor(s: AmiSession, msg: Message) -> bool:
    chan = _named_channel(s, msg)
    if chan is None:
        return True
    if not s.server.sim.pbx.recorder.stop(chan, explicit=True):
        s.error(msg, "Could not stop monitoring channel")
        return True
    s.send(s.start_ack(msg) + "\r\n")
    return True


Handler = Callable[[AmiSession, Message], Awaitable[bool]]
SYSTEM, CALL, AGENT, USER = ev.SYSTEM, ev.CALL, ev.AGENT, ev.USER
REPORTING, ORIGINATE = ev.REPORTING, ev.ORIGINATE

ACTIONS: dict[str, tuple[int, Handler, str]] = {
    "login": (0, action_login, "Login Manager"),
    "logoff": (0, action_logoff, "Logoff Manager"),
    "challenge": (0, action_challenge, "Generate Challenge for MD5 Auth"),
    "ping": (0, action_ping, "Keepalive command"),
    "events": (0, action_events, "Control Event Flow"),
    "listcommands": (0, action_listcommands, "List available manager commands"),
    "hangup": (SYSTEM | CALL, action_hangup, "Hangup channel"),
    "status": (SYSTEM | CALL | REPORTING, action_status, "List channel status"),
    "setvar": (CALL, action_setvar, "Sets a channel variable or function value"),
    "getvar": (CALL | REPORTING, action_getvar, "Gets a channel variable or function value"),
    "redirect": (CALL, action_redirect, "Redirect (transfer) a call"),
    "blindtransfer": (
        CALL,
        action_blindtransfer,
        "Blind transfer channel(s) to the given destination",
    ),
    "atxfer": (CALL, action_atxfer, "Attended transfer"),
    "originate": (ORIGINATE, action_originate, "Originate a call"),
    "reload": (ev.EVENT_FLAGS["config"] | SYSTEM, action_reload, "Send a reload event"),
    "userevent": (USER, action_userevent, "Send an arbitrary event"),
    "corestatus": (SYSTEM | REPORTING, action_corestatus, "Show PBX core status variables"),
    "coreshowchannels": (
        SYSTEM | REPORTING,
        action_coreshowchannels,
        "List currently active channels",
    ),
    "playdtmf": (CALL, action_playdtmf, "Play DTMF signal on a specific channel"),
    "queueadd": (AGENT, action_queueadd, "Add interface to queue"),
    "queueremove": (AGENT, action_queueremove, "Remove interface from queue"),
    "queuepause": (AGENT, action_queuepause, "Makes a queue member temporarily unavailable"),
    "queuepenalty": (AGENT, action_queuepenalty, "Set the penalty for a queue member"),
    "queuestatus": (0, action_queuestatus, "Show queue status"),
    "queuesummary": (0, action_queuesummary, "Show queue summary"),
    "mixmonitor": (
        SYSTEM,
        action_mixmonitor,
        "Record a call and mix the audio during the recording",
    ),
    "stopmixmonitor": (
        SYSTEM | CALL,
        action_stopmixmonitor,
        "Stop recording a call through MixMonitor",
    ),
}
ACTION_NAMES = {
    "login": "Login",
    "logoff": "Logoff",
    "challenge": "Challenge",
    "ping": "Ping",
    "events": "Events",
    "listcommands": "ListCommands",
    "hangup": "Hangup",
    "status": "Status",
    "setvar": "Setvar",
    "getvar": "Getvar",
    "redirect": "Redirect",
    "blindtransfer": "BlindTransfer",
    "atxfer": "Atxfer",
    "originate": "Originate",
    "reload": "Reload",
    "userevent": "UserEvent",
    "corestatus": "CoreStatus",
    "coreshowchannels": "CoreShowChannels",
    "playdtmf": "PlayDTMF",
    "queueadd": "QueueAdd",
    "queueremove": "QueueRemove",
    "queuepause": "QueuePause",
    "queuepenalty": "QueuePenalty",
    "queuestatus": "QueueStatus",
    "queuesummary": "QueueSummary",
    "mixmonitor": "MixMonitor",
    "stopmixmonitor": "StopMixMonitor",
}


class AmiServer:
    def __init__(self, sim: Simulator, users: dict[str, AmiUser]) -> None:
        self.sim = sim
        self.users = users
        self.sessions: set[AmiSession] = set()
        self.server: asyncio.base_events.Server | None = None
        self.refuse_logins = False

    async def start(self, host: str, port: int) -> int:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            lambda: AmiSession(self), host, port, reuse_address=True
        )
        sock = self.server.sockets[0]
        return int(sock.getsockname()[1])

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        self.drop_all()
        if self.server is not None:
            await self.server.wait_closed()

    async def close_all(self) -> None:
        """Stop listening and close every session after flushing what it was sent."""
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None
        for session in list(self.sessions):
            session.close()

    def drop_all(self) -> None:
        for session in list(self.sessions):
            if session.transport is not None:
                session.transport.abort()
            session.closed = True

    def security_event(
        self, name: str, s: AmiSession, username: str, fields: dict[str, str] | None = None
    ) -> None:
        """main/security_events.c: required fields in the event type's order, then the
        optional ones (AccountID is optional for RequestBadFormat, so it moves back)."""
        if s.transport is None:
            return
        now = self.sim.clock.now()
        local = _ami_addr(s.transport.get_extra_info("sockname"))
        remote = _ami_addr(s.transport.get_extra_info("peername"))
        version = SECURITY_EVENT_VERSIONS.get(name, 1)
        severity = "Informational" if name == "SuccessfulAuth" else "Error"
        account = f"AccountID: {username}\r\n"
        body = (
            f"EventTV: {_tv(now)}\r\nSeverity: {severity}\r\n"
            f"Service: AMI\r\nEventVersion: {version}\r\n"
            + ("" if name == "RequestBadFormat" else account)
            + f"SessionID: {s.session_id}\r\n"
            f"LocalAddress: {local}\r\nRemoteAddress: {remote}\r\n"
        )
        if name == "SuccessfulAuth":
            body += "UsingPassword: 0\r\n"
        body += "".join(f"{k}: {v}\r\n" for k, v in (fields or {}).items())
        if name == "RequestBadFormat":
            body += account
        body += f"SessionTV: {_tv(s.started)}\r\n"
        self.sim.hub.emit(name, ev.SECURITY, body)


# include/asterisk/security_events_defs.h: AST_SECURITY_EVENT_*_VERSION other than 1
SECURITY_EVENT_VERSIONS = {"InvalidPassword": 2}


def channel_state_desc(state: int) -> str:
    return STATE_DESC.get(state, "Unknown")
