"""Call tracker: channels grouped by Linkedid -> one call-log row per call.

Registered as a telephony listener, it sees domain events in order and keeps an in-memory
model of live calls (cheap, synchronous: it runs on the AMI reader's path). Rows go to the
``CallLogWriter`` which upserts them in batches from its own task.

Why talk time comes from bridges: ``AgentComplete`` is missing when an agent drops with ``*``
and inflated through Local-channel transfers, so talk time is the time during which a bridge
holding this call's channels has at least two parties.

Resync: after every (re)connect, and periodically on a live connection (a ``Hangup`` can be
lost), the telephony service emits ``ResyncStarted`` then ``ChannelsSnapshot``. Calls absent
from the snapshot and untouched since the resync started ended unseen: they are closed
(``end_estimated``). Live channels we do not know are picked up. Recently ended calls are
remembered so that a snapshot taken just before their hang-up cannot resurrect them.

Restarts: a row is written when a call starts, joins a queue and is answered, and the live
calls are saved when the tracker stops, so the database always knows the open calls. A new
tracker loads the open rows of its own Asterisk (``pbx``) at start; at the first snapshot
those still live are adopted (their stored history continues in the same row) and the others
are closed like any call that ended unseen. Other servers' rows are never touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.calls.models import CallLog
from callcenter.calls.writer import CallLogWriter
from callcenter.clock import Clock
from callcenter.telephony import events as ev

log = logging.getLogger(__name__)

UNKNOWN_NUMBERS = ("", "<unknown>", "unknown")
BUSY_CAUSES = frozenset({17})
FAILED_CAUSES = frozenset({1, 3, 20, 21, 22, 27, 34, 38, 41, 42, 44, 58})
ENDED_MEMORY = 10000
LOAD_FIRST_TRY = 5.0
"""Seconds ``start()`` waits for the open rows; later tries run in the background."""
LOAD_RETRY_MAX = 30.0


@dataclass(slots=True)
class Call:
    """What we know about one live call."""

    linkedid: str
    started_at: datetime
    channels: dict[str, str] = field(default_factory=dict)
    caller_number: str | None = None
    called_number: str | None = None
    direction_hint: str | None = None
    queue: str | None = None
    queue_joined_at: datetime | None = None
    queue_wait: float = 0.0
    abandoned: bool = False
    agent_name: str | None = None
    agent_interface: str | None = None
    root_up_at: datetime | None = None
    talk_started_at: datetime | None = None
    talk_seconds: float = 0.0
    bridged_since: datetime | None = None
    bridges: dict[str, set[str]] = field(default_factory=dict)
    ivr: list[str] = field(default_factory=list)
    ivr_declared: str | None = None
    dialled: bool = False
    last_dial_status: str | None = None
    recording_file: str | None = None
    hangup_cause: int | None = None
    ended_at: datetime | None = None
    end_estimated: bool = False
    resync_mark: int = 0
    gone: set[str] = field(default_factory=set)
    restored: bool = False
    channels_known: bool = True
    """False for a call restored from its row until a snapshot lists its channels: before
    that, only the hang-up of its first channel (the Linkedid) ends it."""

    @property
    def talking(self) -> bool:
        return any(len(members) >= 2 for members in self.bridges.values())


class CallTracker:
    """Listener turning domain events into ``CallLog`` rows (one per Linkedid)."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], clock: Clock, *,
                 pbx: str = "default", flush_interval: float = 0.5,
                 extension_max_digits: int = 4) -> None:
        self._clock = clock
        self._sessionmaker = sessionmaker
        self._pbx = pbx
        self._writer = CallLogWriter(sessionmaker, flush_interval=flush_interval)
        self._stored: dict[str, Mapping[str, Any]] = {}
        self._last_at: datetime | None = None
        self._loader: asyncio.Task[None] | None = None
        self._calls: dict[str, Call] = {}
        self._channel_call: dict[str, str] = {}
        self._ended: OrderedDict[str, None] = OrderedDict()
        self._extension_max_digits = extension_max_digits
        self._resync_mark = 0
        self._handlers = {
            ev.ChannelCreated: self._on_created,
            ev.ChannelStateChanged: self._on_state,
            ev.ChannelHungUp: self._on_hangup,
            ev.DialplanApp: self._on_app,
            ev.VariableSet: self._on_var,
            ev.DialBegan: self._on_dial_begin,
            ev.DialEnded: self._on_dial_end,
            ev.BridgeEntered: self._on_bridge,
            ev.BridgeLeft: self._on_bridge,
            ev.QueueCallerJoined: self._on_queue_join,
            ev.QueueCallerLeft: self._on_queue_leave,
            ev.QueueCallerAbandoned: self._on_queue_abandon,
            ev.AgentConnected: self._on_agent_connect,
            ev.RecordingStarted: self._on_recording,
            ev.DtmfReceived: self._on_dtmf,
            ev.ResyncStarted: self._on_resync_started,
            ev.ChannelsSnapshot: self._on_channels_snapshot,
            ev.QueuesSnapshot: self._on_queues_snapshot,
        }

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the writer and load the rows an earlier process of this PBX left open (a
        database that is down does not hold the start: the load goes on in the background
        and the rows are reconciled at the next snapshot after it succeeds)."""
        await self._writer.start()
        try:
            await asyncio.wait_for(self._load_open_rows(), LOAD_FIRST_TRY)
        except (SQLAlchemyError, OSError, ConnectionError, TimeoutError) as exc:
            log.warning("calls.open_rows_load_failed pbx=%s error=%r action=retry", self._pbx,
                        exc)
            self._loader = asyncio.create_task(self._load_until_done(), name="call-log-load")

    async def stop(self) -> None:
        """Persist the live calls as they are (still open, talk counted up to the last event
        seen) and every pending row."""
        if self._loader is not None:
            self._loader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loader
            self._loader = None
        now = self._last_at or self._clock.now()  # Asterisk's clock, like the call times
        for call in self._calls.values():
            self._writer.submit(self._row(call, now))
        await self._writer.stop()

    @property
    def pbx(self) -> str:
        return self._pbx

    @property
    def open_rows_pending(self) -> int:
        """Rows left open by an earlier process, not reconciled yet."""
        return len(self._stored)

    async def _load_until_done(self) -> None:
        delay = 0.5
        while True:
            await asyncio.sleep(delay)
            try:
                await self._load_open_rows()
                return
            except (SQLAlchemyError, OSError, ConnectionError) as exc:
                log.warning("calls.open_rows_load_failed pbx=%s error=%r", self._pbx, exc)
                delay = min(LOAD_RETRY_MAX, delay * 2)

    async def _load_open_rows(self) -> None:
        table = CallLog.__table__
        query = select(table).where(table.c.pbx == self._pbx, table.c.ended_at.is_(None))
        async with self._sessionmaker() as session:
            rows = (await session.execute(query)).mappings().all()
        for row in rows:
            linkedid = row["linkedid"]
            if linkedid not in self._calls and linkedid not in self._ended:
                self._stored[linkedid] = dict(row)
        log.info("calls.open_rows_loaded pbx=%s rows=%d", self._pbx, len(self._stored))

    async def flush(self) -> None:
        await self._writer.flush()

    @property
    def live_calls(self) -> int:
        return len(self._calls)

    def live_summary(self) -> dict[str, int]:
        """Live calls by what they are doing now: talking, waiting in a queue, or elsewhere
        (IVR, ringing)."""
        talking = sum(1 for call in self._calls.values() if call.talking)
        queued = sum(1 for call in self._calls.values()
                     if not call.talking and call.queue_joined_at is not None)
        return {"talking": talking, "queued": queued,
                "other": len(self._calls) - talking - queued}

    @property
    def writer(self) -> CallLogWriter:
        return self._writer

    # -- listener --------------------------------------------------------------------------

    def __call__(self, event: ev.DomainEvent) -> None:
        handler = self._handlers.get(type(event))
        if handler is not None:
            self._last_at = event.at
            handler(event)

    def _call_for(self, event: ev.ChannelEvent, *, create: bool = False) -> Call | None:
        call = self._calls.get(event.linkedid)
        if call is None:
            if event.linkedid in self._ended:
                return None
            stored = self._stored.pop(event.linkedid, None) if self._stored else None
            if stored is not None:
                call = self._restore(stored)
            elif not create:
                return None
            else:
                call = Call(event.linkedid, event.at, resync_mark=self._resync_mark)
                self._calls[event.linkedid] = call
                log.debug("calls.started linkedid=%s", event.linkedid)
        call.resync_mark = self._resync_mark
        if event.channel and event.uniqueid not in call.channels \
                and event.uniqueid not in call.gone:
            self._adopt(call, event.uniqueid, event.channel, event.at)
        if event.uniqueid == call.linkedid and event.caller_num not in UNKNOWN_NUMBERS \
                and call.caller_number is None:
            call.caller_number = event.caller_num
        return call

    def _adopt(self, call: Call, uniqueid: str, channel: str, at: datetime) -> None:
        """Attach a channel to ``call``. A channel already in another call has been bridged
        into this one (Asterisk gives it the oldest Linkedid, e.g. an attended transfer):
        it moves, and the call it leaves ends when it has no channel left."""
        previous = self._channel_call.get(uniqueid)
        if previous is not None and previous != call.linkedid:
            old = self._calls.get(previous)
            if old is not None:
                old.channels.pop(uniqueid, None)
                log.info("calls.channel_moved uniqueid=%s from=%s to=%s", uniqueid, previous,
                         call.linkedid)
                if not old.channels:
                    self._end(old, at)
        call.channels[uniqueid] = channel
        self._channel_call[uniqueid] = call.linkedid

    def _on_created(self, event: ev.ChannelCreated) -> None:
        call = self._call_for(event, create=True)
        if call is not None and event.uniqueid == event.linkedid:
            if call.called_number is None:
                call.called_number = event.exten or None
            self._writer.submit(self._row(call))  # the call exists even if we crash

    def _on_state(self, event: ev.ChannelStateChanged) -> None:
        call = self._call_for(event, create=True)
        if call is not None and event.uniqueid == call.linkedid and event.state == 6 \
                and call.root_up_at is None:
            call.root_up_at = event.at

    def _on_app(self, event: ev.DialplanApp) -> None:
        call = self._call_for(event, create=True)
        if call is None or event.uniqueid != call.linkedid:
            return
        if event.application in ("AGI", "EAGI"):
            script = event.app_data.split(",", 1)[0].rsplit("/", 1)[-1]
            call.ivr.append(f"agi:{script}")
        elif event.application in ("Read", "BackGround", "Background"):
            call.ivr.append(event.application.lower())

    def _on_var(self, event: ev.VariableSet) -> None:
        call = self._call_for(event)
        if call is None:
            return
        if event.name == "CC_DIRECTION" and event.value in ("inbound", "outbound", "internal"):
            call.direction_hint = event.value
        elif event.name == "MIXMONITOR_FILENAME":
            call.recording_file = event.value
        elif event.name == "IVR_PATH" and event.value:
            call.ivr_declared = event.value  # the IVR script's own account of the path

    def _on_dial_begin(self, event: ev.DialBegan) -> None:
        call = self._call_for(event, create=True)
        if call is None:
            return
        if event.channel:
            call.dialled = True
        elif call.direction_hint == "outbound" and event.dial_string:
            call.called_number = event.dial_string.split("@", 1)[0].rsplit("/", 1)[-1]

    def _on_dial_end(self, event: ev.DialEnded) -> None:
        call = self._call_for(event)
        if call is not None and event.channel:
            call.last_dial_status = event.dial_status

    def _on_bridge(self, event: ev.BridgeEntered | ev.BridgeLeft) -> None:
        call = self._call_for(event)
        if call is None:
            return
        was = call.talking
        members = call.bridges.setdefault(event.bridge_id, set())
        if isinstance(event, ev.BridgeEntered):
            members.add(event.uniqueid)
        else:
            members.discard(event.uniqueid)
            if not members:
                del call.bridges[event.bridge_id]
        self._talk_transition(call, was, event.at)

    def _talk_transition(self, call: Call, was: bool, at: datetime) -> None:
        now = call.talking
        if now and not was:
            call.bridged_since = at
            if call.talk_started_at is None:
                call.talk_started_at = at
                self._writer.submit(self._row(call))  # answered, even if we crash
        elif was and not now and call.bridged_since is not None:
            call.talk_seconds += (at - call.bridged_since).total_seconds()
            call.bridged_since = None

    def _on_queue_join(self, event: ev.QueueCallerJoined) -> None:
        call = self._call_for(event, create=True)
        if call is None:
            return
        call.queue = event.queue
        call.queue_joined_at = event.at
        call.abandoned = False
        self._writer.submit(self._row(call))

    def _leave_queue(self, call: Call, at: datetime) -> None:
        if call.queue_joined_at is not None:
            call.queue_wait += (at - call.queue_joined_at).total_seconds()
            call.queue_joined_at = None

    def _on_queue_leave(self, event: ev.QueueCallerLeft) -> None:
        call = self._call_for(event)
        if call is not None:
            self._leave_queue(call, event.at)

    def _on_queue_abandon(self, event: ev.QueueCallerAbandoned) -> None:
        call = self._call_for(event)
        if call is not None:
            self._leave_queue(call, event.at)
            call.abandoned = True

    def _on_agent_connect(self, event: ev.AgentConnected) -> None:
        call = self._call_for(event)
        if call is not None:
            call.agent_name = event.member_name or None
            call.agent_interface = event.interface or None
            call.queue = event.queue
            self._leave_queue(call, event.at)

    def _on_recording(self, event: ev.RecordingStarted) -> None:
        call = self._call_for(event)
        if call is not None and event.file:
            call.recording_file = event.file

    def _on_dtmf(self, event: ev.DtmfReceived) -> None:
        call = self._call_for(event)
        if call is None or event.uniqueid != call.linkedid or event.direction != "Received":
            return
        if call.talk_started_at is not None:
            return  # digits during the conversation are not IVR choices
        if call.ivr and call.ivr[-1].startswith("keys:"):
            call.ivr[-1] += event.digit
        else:
            call.ivr.append(f"keys:{event.digit}")

    def _on_hangup(self, event: ev.ChannelHungUp) -> None:
        call = self._call_for(event)
        if call is None:
            return
        was = call.talking
        for members in call.bridges.values():
            members.discard(event.uniqueid)  # a hang-up leaves every bridge
        self._talk_transition(call, was, event.at)
        call.channels.pop(event.uniqueid, None)
        call.gone.add(event.uniqueid)
        self._channel_call.pop(event.uniqueid, None)
        if event.uniqueid == call.linkedid or call.hangup_cause is None:
            call.hangup_cause = event.cause
        if not call.channels and (call.channels_known or event.uniqueid == call.linkedid):
            self._end(call, event.at)

    # -- resync ----------------------------------------------------------------------------

    def _on_resync_started(self, event: ev.ResyncStarted) -> None:
        self._resync_mark += 1

    def _on_channels_snapshot(self, event: ev.ChannelsSnapshot) -> None:
        own = event.pbx == self._pbx
        if not own:  # a wiring mistake: never close rows of a server we do not listen to
            log.error("calls.pbx_mismatch tracker=%s snapshot=%s action=stored_rows_kept",
                      self._pbx, event.pbx)
        live: dict[str, list[ev.ChannelSnapshot]] = {}
        for snap in event.channels:
            live.setdefault(snap.linkedid, []).append(snap)
        for call in list(self._calls.values()):
            if call.resync_mark == self._resync_mark:
                continue  # touched since the resync started: the live events are newer
            snaps = live.get(call.linkedid)
            alive = {s.uniqueid for s in snaps or ()}
            for uniqueid in [u for u in call.channels if u not in alive]:
                call.channels.pop(uniqueid)
                call.gone.add(uniqueid)
                self._channel_call.pop(uniqueid, None)
            if not snaps:  # live channels of this Linkedid that we did not know: merged below
                log.info("calls.closed_by_resync linkedid=%s", call.linkedid)
                call.end_estimated = True
                self._end(call, event.at)
        for linkedid, snaps in live.items():
            if linkedid in self._ended:
                continue
            call = self._calls.get(linkedid)
            stored = self._stored.pop(linkedid, None) \
                if call is None and own and self._stored else None
            if stored is not None:
                self._adopt_stored(stored, snaps, event.at)
            elif call is None:
                self._pick_up(linkedid, snaps, event.at)
            elif call.resync_mark != self._resync_mark:  # live events are newer otherwise
                self._merge_snapshot(call, snaps, event.at)
        if own:
            self._close_stored(event.at)

    def _pick_up(self, linkedid: str, snaps: list[ev.ChannelSnapshot], at: datetime) -> None:
        oldest = max(s.duration_seconds for s in snaps)
        call = Call(linkedid, at - timedelta(seconds=oldest), resync_mark=self._resync_mark)
        self._calls[linkedid] = call
        self._merge_snapshot(call, snaps, at)
        log.info("calls.picked_up_by_resync linkedid=%s channels=%d", linkedid, len(snaps))
        self._writer.submit(self._row(call))

    def _restore(self, row: Mapping[str, Any]) -> Call:
        """A call an earlier process of this PBX left open, back in memory as it was stored:
        its later events update the same row, its disposition follows the same rules."""
        answered_at = _utc(row["answered_at"])
        call = Call(row["linkedid"], _utc(row["started_at"]), resync_mark=self._resync_mark,
                    restored=True, channels_known=False)
        call.caller_number = row["caller_number"]
        call.called_number = row["called_number"]
        call.direction_hint = row["direction"]
        call.queue = row["queue"]
        call.queue_wait = row["wait_seconds"] if row["queue"] is not None else 0.0
        call.agent_name = row["agent_name"]
        call.agent_interface = row["agent_interface"]
        call.ivr = [row["ivr_path"]] if row["ivr_path"] else []
        call.recording_file = row["recording_file"]
        call.hangup_cause = row["hangup_cause"]
        call.talk_started_at = answered_at  # a live row's answer time is its talk start
        call.root_up_at = answered_at
        call.talk_seconds = row["talk_seconds"] or 0.0
        self._calls[call.linkedid] = call
        return call

    def _adopt_stored(self, row: Mapping[str, Any], snaps: list[ev.ChannelSnapshot],
                      at: datetime) -> None:
        call = self._restore(row)
        self._merge_snapshot(call, snaps, at)
        log.info("calls.adopted_after_restart linkedid=%s channels=%d", call.linkedid,
                 len(snaps))
        self._writer.submit(self._row(call))

    def _close_stored(self, at: datetime) -> None:
        """Open rows of an earlier process whose call Asterisk no longer has: it ended while
        no tracker was listening."""
        stored, self._stored = self._stored, {}
        for linkedid, row in stored.items():
            if linkedid in self._calls or linkedid in self._ended:
                continue
            call = self._restore(row)
            call.end_estimated = True
            log.info("calls.closed_after_restart linkedid=%s", linkedid)
            self._end(call, max(at, call.started_at))

    def _merge_snapshot(self, call: Call, snaps: list[ev.ChannelSnapshot],
                        at: datetime) -> None:
        """Asterisk's view wins: channels and bridge membership as listed now."""
        was = call.talking
        call.channels_known = True
        call.bridges = {}
        for snap in snaps:
            if snap.uniqueid not in call.channels:
                call.channels[snap.uniqueid] = snap.channel
                self._channel_call[snap.uniqueid] = call.linkedid
            if snap.bridge_id:
                call.bridges.setdefault(snap.bridge_id, set()).add(snap.uniqueid)
            if snap.uniqueid == call.linkedid:
                if call.caller_number is None and snap.caller_num not in UNKNOWN_NUMBERS:
                    call.caller_number = snap.caller_num
                if call.called_number is None:
                    call.called_number = snap.exten or None
                if snap.state == 6 and call.root_up_at is None:
                    call.root_up_at = call.started_at
        self._talk_transition(call, was, at)

    def _on_queues_snapshot(self, event: ev.QueuesSnapshot) -> None:
        for entry in event.entries:
            linkedid = self._channel_call.get(entry.get("Uniqueid", ""))
            call = self._calls.get(linkedid) if linkedid else None
            if call is None or call.queue_joined_at is not None:
                continue
            if call.restored:
                call.queue_wait = 0.0  # Asterisk's Wait covers the stored part of this wait
            call.queue = entry.get("Queue") or call.queue
            try:
                wait = float(entry.get("Wait", "0"))
            except ValueError:
                wait = 0.0
            call.queue_joined_at = event.at - timedelta(seconds=wait)

    # -- ending ----------------------------------------------------------------------------

    def _end(self, call: Call, at: datetime) -> None:
        if call.bridged_since is not None:
            call.talk_seconds += (at - call.bridged_since).total_seconds()
            call.bridged_since = None
        call.bridges.clear()
        self._leave_queue(call, at)
        call.ended_at = at
        del self._calls[call.linkedid]
        for uniqueid in call.channels:
            self._channel_call.pop(uniqueid, None)
        self._ended[call.linkedid] = None
        if len(self._ended) > ENDED_MEMORY:
            self._ended.popitem(last=False)
        self._writer.submit(self._row(call), urgent=True)
        log.debug("calls.ended linkedid=%s", call.linkedid)

    def _disposition(self, call: Call) -> str:
        if call.talk_started_at is not None:
            return "answered"
        if call.queue is not None:
            return "abandoned"
        if call.root_up_at is not None and not call.dialled:
            return "answered"  # self-service (IVR) call
        status = call.last_dial_status or ""
        if status == "BUSY" or call.hangup_cause in BUSY_CAUSES:
            return "busy"
        if status in ("CHANUNAVAIL", "CONGESTION") or call.hangup_cause in FAILED_CAUSES:
            return "failed"
        return "no_answer"

    def _direction(self, call: Call) -> str:
        if call.direction_hint is not None:
            return call.direction_hint
        limit = self._extension_max_digits
        caller, called = call.caller_number or "", call.called_number or ""
        if caller.isdigit() and called.isdigit() and len(caller) <= limit \
                and len(called) <= limit:
            return "internal"
        return "inbound"

    def _row(self, call: Call, now: datetime | None = None) -> dict[str, Any]:
        """The call-log row of ``call``; with ``now``, an ongoing conversation is counted up
        to then (the row saved when the tracker stops)."""
        ended = call.ended_at is not None
        talk = call.talk_seconds
        if now is not None and not ended and call.bridged_since is not None:
            talk += max(0.0, (now - call.bridged_since).total_seconds())
        disposition = self._disposition(call) if ended else None
        if call.talk_started_at is not None:
            answered_at = call.talk_started_at
        elif disposition == "answered":
            answered_at = call.root_up_at
        else:
            answered_at = None
        if call.queue is not None:
            wait = call.queue_wait
        elif call.dialled:
            wait = ((call.talk_started_at or call.ended_at or call.started_at)
                    - call.started_at).total_seconds()
        else:
            wait = 0.0
        return {
            "linkedid": call.linkedid,
            "pbx": self._pbx,
            "direction": self._direction(call),
            "caller_number": call.caller_number,
            "called_number": call.called_number,
            "queue": call.queue,
            "agent_name": call.agent_name,
            "agent_interface": call.agent_interface,
            "ivr_path": ">".join(call.ivr + ([call.ivr_declared] if call.ivr_declared
                                             else []))[:255] or None,
            "recording_file": call.recording_file,
            "started_at": call.started_at,
            "answered_at": answered_at,
            "ended_at": call.ended_at,
            "wait_seconds": round(max(wait, 0.0), 3),
            "talk_seconds": round(talk, 3),
            "disposition": disposition,
            "hangup_cause": call.hangup_cause,
            "end_estimated": call.end_estimated,
        }


def _utc(value: datetime | None) -> datetime | None:
    """SQLite hands timezone-aware columns back naive (stored as UTC)."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)
