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
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.calls.call import (
    UNKNOWN_NUMBERS,
    Attempt,
    Call,
    channel_base,
)
from callcenter.calls.config import CallsConfig
from callcenter.calls.models import DIRECTIONS, CallAgentAttempt, CallLog
from callcenter.calls.writer import CallLogWriter
from callcenter.clock import Clock
from callcenter.telephony import events as ev

log = logging.getLogger(__name__)

ENDED_MEMORY = 10000
LOAD_FIRST_TRY = 5.0
"""Seconds ``start()`` waits for the open rows; later tries run in the background."""
LOAD_RETRY_MAX = 30.0


class CallTracker:
    """Listener turning domain events into ``CallLog`` rows (one per Linkedid)."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], clock: Clock, *,
                 pbx: str = "default", flush_interval: float = 0.5,
                 config: CallsConfig | None = None) -> None:
        self._clock = clock
        self._sessionmaker = sessionmaker
        self._pbx = pbx
        self._config = config or CallsConfig()
        self._writer = CallLogWriter(sessionmaker, flush_interval=flush_interval)
        self._attempt_writer = CallLogWriter(
            sessionmaker, flush_interval=flush_interval, table=CallAgentAttempt.__table__,
            key=("pbx", "linkedid", "interface", "called_at"))
        self._connected: dict[str, Attempt] = {}
        """The attempt each agent interface is talking in (``AgentComplete`` may come
        without the caller's snapshot, after every channel of the call is gone)."""
        self._stored: dict[str, Mapping[str, Any]] = {}
        self._last_at: datetime | None = None
        self._loader: asyncio.Task[None] | None = None
        self._calls: dict[str, Call] = {}
        self._channel_call: dict[str, str] = {}
        self._ended: OrderedDict[str, None] = OrderedDict()
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
            ev.AgentCalled: self._on_agent_called,
            ev.AgentRingNoAnswer: self._on_agent_ring_no_answer,
            ev.AgentConnected: self._on_agent_connect,
            ev.AgentCompleted: self._on_agent_complete,
            ev.HoldStarted: self._on_hold,
            ev.HoldEnded: self._on_unhold,
            ev.CallTransferred: self._on_transfer,
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
        await self._attempt_writer.start()
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
            self._save(call, now=now)
        await self._writer.stop()
        await self._attempt_writer.stop()

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
        await self._attempt_writer.flush()

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
        if event.uniqueid == call.linkedid:
            if event.caller_num not in UNKNOWN_NUMBERS and call.caller_number is None:
                call.caller_number = event.caller_num
            if event.context and event.context not in call.root_contexts:
                call.root_contexts.add(event.context)
                call.root_extens.append((event.context, event.exten))
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
            self._save(call)  # the call exists even if we crash

    def _on_state(self, event: ev.ChannelStateChanged) -> None:
        call = self._call_for(event, create=True)
        if call is not None and event.uniqueid == call.linkedid and event.state == 6 \
                and call.root_up_at is None:
            call.root_up_at = event.at

    def _on_app(self, event: ev.DialplanApp) -> None:
        call = self._call_for(event, create=True)
        if call is None or event.uniqueid != call.linkedid:
            return
        call.last_app = event.application.lower()
        if event.application in ("AGI", "EAGI"):
            script = event.app_data.split(",", 1)[0].rsplit("/", 1)[-1]
            call.ivr.append(f"agi:{script}")
        elif event.application in ("Read", "BackGround", "Background"):
            call.ivr.append(event.application.lower())

    def _on_var(self, event: ev.VariableSet) -> None:
        call = self._call_for(event)
        if call is None:
            return
        if event.name in ("CC_DIRECTION", "CALL_DIRECTION"):
            if event.value.lower() in DIRECTIONS:
                call.direction_hint = event.value.lower()
        elif event.name == "MIXMONITOR_FILENAME":
            call.recording_file = event.value
        elif event.name == "IVR_PATH" and event.value:
            call.ivr_declared = event.value  # the IVR script's own account of the path
        elif event.name == "IVR_NODE" and event.value:
            call.ivr_node_declared = event.value
        elif event.name == "QUEUESTATUS" and event.uniqueid == call.linkedid and event.value:
            call.queue_status = event.value  # why Queue() returned: TIMEOUT, JOINEMPTY, ...

    def _on_dial_begin(self, event: ev.DialBegan) -> None:
        call = self._call_for(event, create=True)
        if call is None:
            return
        if not event.channel:  # an Originate dials the call's first channel itself
            if event.dest_uniqueid == call.linkedid:
                call.originated = True
                call.originate_dial = call.originate_dial or event.dial_string or None
            return
        call.dialled = True
        if event.uniqueid == call.linkedid and call.root_dial is None and call.queue is None:
            call.root_dial = event.dial_string or None
        if any(event.dest_channel.startswith(t) or event.dial_string.startswith(t)
               for t in self._config.trunks):
            call.dials_trunk = True

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
            if call.transfer_pending and event.uniqueid != call.linkedid \
                    and not event.channel.startswith("Local/"):
                call.transferred_to = channel_base(event.channel)  # who took the call
                call.transfer_pending = False
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
                self._save(call)  # answered, even if we crash
        elif was and not now and call.bridged_since is not None:
            call.talk_seconds += (at - call.bridged_since).total_seconds()
            call.bridged_since = None

    # -- queues and agents -----------------------------------------------------------------

    def _on_queue_join(self, event: ev.QueueCallerJoined) -> None:
        call = self._call_for(event, create=True)
        if call is None:
            return
        call.queue = event.queue
        call.queue_joined_at = event.at
        call.abandoned = call.agent_connected = False
        call.queue_status = None
        self._save(call)

    def _leave_queue(self, call: Call, at: datetime) -> None:
        if call.queue_joined_at is not None:
            call.queue_wait += (at - call.queue_joined_at).total_seconds()
            call.queue_joined_at = None

    def _on_queue_leave(self, event: ev.QueueCallerLeft) -> None:
        call = self._call_for(event)
        if call is not None:
            self._leave_queue(call, event.at)

    def _on_queue_abandon(self, event: ev.QueueCallerAbandoned) -> None:
        """Sent for a caller hanging up and for a ``Queue()`` timeout alike: ``QUEUESTATUS``
        (set afterwards when the dialplan continues) tells them apart."""
        call = self._call_for(event)
        if call is not None:
            self._leave_queue(call, event.at)
            call.abandoned = True
            self._stop_ringing(call, "canceled", event.at)

    def _on_agent_called(self, event: ev.AgentCalled) -> None:
        call = self._call_for(event)
        if call is None or not event.interface:
            return
        attempt = Attempt(call.linkedid, event.queue, event.member_name or event.interface,
                          event.interface, event.at)
        call.attempts[event.interface] = attempt
        self._save_attempt(attempt)

    def _on_agent_ring_no_answer(self, event: ev.AgentRingNoAnswer) -> None:
        call = self._call_for(event)
        attempt = call.attempts.get(event.interface) if call is not None else None
        if attempt is not None and attempt.outcome == "ringing":
            attempt.stop_ringing("missed", event.at)
            self._save_attempt(attempt)

    def _stop_ringing(self, call: Call, outcome: str, at: datetime) -> None:
        for attempt in call.attempts.values():
            if attempt.outcome == "ringing":
                attempt.stop_ringing(outcome, at)
                self._save_attempt(attempt)

    def _on_agent_connect(self, event: ev.AgentConnected) -> None:
        call = self._call_for(event)
        if call is None:
            return
        if call.transfer_type is not None and call.agent_name is not None:
            call.transferred_to = event.member_name or event.interface or None
            call.transfer_pending = False
        else:
            call.agent_name = event.member_name or None
            call.agent_interface = event.interface or None
        call.queue = event.queue
        call.agent_connected = True
        self._leave_queue(call, event.at)
        attempt = call.attempts.get(event.interface)
        if attempt is not None:
            attempt.stop_ringing("answered", event.at)
            attempt.answered_at = event.at
            self._connected[event.interface] = attempt
            self._save_attempt(attempt)
        self._stop_ringing(call, "canceled", event.at)

    def _on_agent_complete(self, event: ev.AgentCompleted) -> None:
        """The agent's part of the call is over. Found by the agent's interface: after an
        AMI ``Hangup`` of the agent the event lacks the caller (and its Linkedid)."""
        attempt = self._connected.get(event.interface)
        if attempt is None or (event.linkedid and event.linkedid != attempt.linkedid):
            log.info("calls.agent_complete_unmatched interface=%s linkedid=%s",
                     event.interface, event.linkedid)
            return
        del self._connected[event.interface]
        attempt.completed_at = event.at
        attempt.talk_seconds = float(event.talk_time)
        attempt.complete_reason = event.reason or None
        self._save_attempt(attempt, urgent=True)

    # -- hold and transfers ----------------------------------------------------------------

    def _on_hold(self, event: ev.HoldStarted) -> None:
        call = self._call_for(event)
        if call is not None and event.uniqueid not in call.holds:
            call.holds[event.uniqueid] = event.at

    def _on_unhold(self, event: ev.HoldEnded) -> None:
        call = self._call_for(event)
        if call is not None:
            call.end_hold(event.uniqueid, event.at)

    def _on_transfer(self, event: ev.CallTransferred) -> None:
        call = self._calls.get(event.linkedid)
        if call is None or not event.success:
            return
        call.transfer_type = event.kind
        target = event.target.split("@", 1)[0] if event.kind == "blind" else \
            channel_base(event.target)
        call.transferred_to = target or None  # until the party who answers is known
        call.transfer_pending = True
        self._save(call)

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
        call.end_hold(event.uniqueid, event.at)
        call.channels.pop(event.uniqueid, None)
        call.gone.add(event.uniqueid)
        self._channel_call.pop(event.uniqueid, None)
        if event.uniqueid == call.linkedid:
            call.root_cause = event.cause
        elif event.cause and call.other_cause is None:
            call.other_cause = event.cause
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
        """A call we never saw begin: its start is its oldest channel's age (whole seconds,
        ``CoreShowChannel Duration``), marked estimated."""
        oldest = max(s.duration_seconds for s in snaps)
        call = Call(linkedid, at - timedelta(seconds=oldest), resync_mark=self._resync_mark,
                    start_estimated=True)
        self._calls[linkedid] = call
        self._merge_snapshot(call, snaps, at)
        self._estimate_answer(call, snaps, at)
        log.info("calls.picked_up_by_resync linkedid=%s channels=%d", linkedid, len(snaps))
        self._save(call)

    @staticmethod
    def _estimate_answer(call: Call, snaps: list[ev.ChannelSnapshot], at: datetime) -> None:
        """A call talking when first seen: it has talked at most as long as the youngest
        bridged channel has lived (an agent's channel lives from its first ring)."""
        if not call.talking or call.answer_estimated:
            return
        youngest = min(s.duration_seconds for s in snaps if s.bridge_id)
        call.talk_started_at = call.bridged_since = at - timedelta(seconds=youngest)
        call.talk_seconds = 0.0
        call.answer_estimated = True

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
        call.root_cause = row["hangup_cause"]
        call.talk_started_at = answered_at  # a live row's answer time is its talk start
        call.root_up_at = answered_at
        call.talk_seconds = row["talk_seconds"] or 0.0
        call.hold_seconds = row.get("hold_seconds") or 0.0
        call.queue_status = row.get("queue_outcome")
        call.agent_connected = row.get("queue_outcome") == "answered"
        call.waiting_when_saved = row["queue"] is not None and answered_at is None
        call.transfer_type = row.get("transfer_type")
        call.transferred_to = row.get("transferred_to")
        call.start_estimated = bool(row.get("start_estimated"))
        call.answer_estimated = bool(row.get("answer_estimated"))
        self._calls[call.linkedid] = call
        return call

    def _adopt_stored(self, row: Mapping[str, Any], snaps: list[ev.ChannelSnapshot],
                      at: datetime) -> None:
        call = self._restore(row)
        self._merge_snapshot(call, snaps, at)
        if call.talking and call.talk_started_at is not None:
            # talking now and answered before the restart: the talk went on meanwhile, so
            # it counts from the stored answer (hold is stored and subtracted apart)
            call.bridged_since = call.talk_started_at
            call.talk_seconds = 0.0
        else:
            self._estimate_answer(call, snaps, at)
        log.info("calls.adopted_after_restart linkedid=%s channels=%d", call.linkedid,
                 len(snaps))
        self._save(call)

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
        self._join_answered_member(call, snaps)
        self._talk_transition(call, was, at)

    @staticmethod
    def _join_answered_member(call: Call, snaps: list[ev.ChannelSnapshot]) -> None:
        """A member that answered (``AppQueue``/``AppDial``, up, in a bridge) while the caller
        waits in ``Queue()``/``Dial()`` is talking to that caller, even when the listing
        leaves the caller's side of the bridge out (the far half of a Local channel)."""
        caller = next((s for s in snaps if s.uniqueid == call.linkedid), None)
        if caller is None or caller.state != 6 or caller.application not in ("Queue", "Dial"):
            return
        for snap in snaps:
            if snap.bridge_id and snap.state == 6 and snap.application in ("AppQueue", "AppDial"):
                call.bridges.setdefault(snap.bridge_id, set()).add(caller.uniqueid)

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
        for uniqueid in list(call.holds):
            call.end_hold(uniqueid, at)
        self._stop_ringing(call, "canceled", at)
        self._leave_queue(call, at)
        call.ended_at = at
        del self._calls[call.linkedid]
        for uniqueid in call.channels:
            self._channel_call.pop(uniqueid, None)
        self._ended[call.linkedid] = None
        if len(self._ended) > ENDED_MEMORY:
            self._ended.popitem(last=False)
        self._save(call, urgent=True)
        log.debug("calls.ended linkedid=%s", call.linkedid)

    def _save(self, call: Call, *, now: datetime | None = None, urgent: bool = False) -> None:
        """Hand the call's row to the writer, built when its batch is written: however often
        the call changes before that, its row (direction, disposition, durations) is computed
        once, from the latest state."""
        self._writer.submit_later((self._pbx, call.linkedid),
                                  partial(call.row, self._pbx, self._config, now),
                                  urgent=urgent)

    def _save_attempt(self, attempt: Attempt, *, urgent: bool = False) -> None:
        self._attempt_writer.submit_later(
            (self._pbx, attempt.linkedid, attempt.interface, attempt.called_at),
            partial(attempt.row, self._pbx), urgent=urgent)


def _utc(value: datetime | None) -> datetime | None:
    """SQLite hands timezone-aware columns back naive (stored as UTC)."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)
