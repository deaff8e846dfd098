"""Domain events: what the rest of the project sees of Asterisk.

Each event is a frozen dataclass with a bus ``topic`` and ``to_dict()`` (JSON-ready, times as
ISO-8601 with zone). ``EventTranslator`` turns parsed AMI events into domain events; an
event it does not know, or one missing a field it needs, yields None (logged), never an error.
Times come from the ``Timestamp`` header (manager.conf ``timestampevents = yes``) when present,
else from the injected clock at receipt (read once per socket read: ``Receipt``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import MISSING, dataclass, fields
from datetime import UTC, datetime
from operator import attrgetter, itemgetter
from typing import Any, ClassVar

from callcenter.clock import Clock
from callcenter.telephony.protocol import Fields, first

log = logging.getLogger(__name__)

UNKNOWN = "<unknown>"


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple):
        return [_jsonable(item) for item in value]
    return value


_PLAIN_TYPES = frozenset({"str", "int", "bool", "float"})


class _Layout:
    """How one event class becomes a dict, worked out once per class (``to_dict`` runs for
    every published event): its field names, one getter of all their values, and the fields
    whose values need converting for JSON (times, tuples)."""

    __slots__ = ("names", "values", "convert")
    _of: ClassVar[dict[type, _Layout]] = {}

    def __init__(self, cls: type) -> None:
        found = fields(cls)
        self.names = tuple(f.name for f in found)
        getter = attrgetter(*self.names)
        self.values = getter if len(self.names) > 1 else lambda event: (getter(event),)
        self.convert = tuple(f.name for f in found if f.type not in _PLAIN_TYPES)

    @classmethod
    def of(cls, event_class: type) -> _Layout:
        layout = cls._of.get(event_class)
        if layout is None:
            layout = cls._of[event_class] = cls(event_class)
        return layout


@dataclass(frozen=True, slots=True)
class DomainEvent:
    """Base of every domain event; ``at`` is when it happened in Asterisk."""

    topic: ClassVar[str] = "telephony.event"
    at: datetime

    def to_dict(self) -> dict[str, Any]:
        layout = _Layout.of(type(self))
        data = dict(zip(layout.names, layout.values(self), strict=True))
        for name in layout.convert:
            data[name] = _jsonable(data[name])
        data["topic"] = self.topic
        return data


@dataclass(frozen=True, slots=True)
class ChannelEvent(DomainEvent):
    """An event about one channel; ``linkedid`` is the call it belongs to."""

    channel: str
    uniqueid: str
    linkedid: str
    state: int
    caller_num: str
    caller_name: str
    context: str
    exten: str


@dataclass(frozen=True, slots=True)
class ChannelCreated(ChannelEvent):
    topic: ClassVar[str] = "channel.created"


@dataclass(frozen=True, slots=True)
class ChannelStateChanged(ChannelEvent):
    topic: ClassVar[str] = "channel.state"
    state_desc: str = ""


@dataclass(frozen=True, slots=True)
class ChannelHungUp(ChannelEvent):
    topic: ClassVar[str] = "channel.hungup"
    cause: int = 0
    cause_text: str = ""


@dataclass(frozen=True, slots=True)
class DialplanApp(ChannelEvent):
    """A dialplan application of interest started (AGI, Queue, Read, ...)."""

    topic: ClassVar[str] = "channel.app"
    application: str = ""
    app_data: str = ""


@dataclass(frozen=True, slots=True)
class VariableSet(ChannelEvent):
    topic: ClassVar[str] = "channel.var"
    name: str = ""
    value: str = ""


@dataclass(frozen=True, slots=True)
class DialBegan(ChannelEvent):
    """``channel`` is the caller side (empty for an Originate), ``dest_*`` the callee."""

    topic: ClassVar[str] = "dial.begin"
    dest_channel: str = ""
    dest_uniqueid: str = ""
    dial_string: str = ""


@dataclass(frozen=True, slots=True)
class DialEnded(ChannelEvent):
    topic: ClassVar[str] = "dial.end"
    dest_channel: str = ""
    dest_uniqueid: str = ""
    dial_status: str = ""


@dataclass(frozen=True, slots=True)
class BridgeEntered(ChannelEvent):
    topic: ClassVar[str] = "bridge.enter"
    bridge_id: str = ""
    num_channels: int = 0


@dataclass(frozen=True, slots=True)
class BridgeLeft(ChannelEvent):
    topic: ClassVar[str] = "bridge.leave"
    bridge_id: str = ""
    num_channels: int = 0


@dataclass(frozen=True, slots=True)
class QueueCallerJoined(ChannelEvent):
    topic: ClassVar[str] = "queue.caller_joined"
    queue: str = ""
    position: int = 0
    count: int = 0


@dataclass(frozen=True, slots=True)
class QueueCallerLeft(ChannelEvent):
    topic: ClassVar[str] = "queue.caller_left"
    queue: str = ""
    position: int = 0
    count: int = 0


@dataclass(frozen=True, slots=True)
class QueueCallerAbandoned(ChannelEvent):
    """Sent on caller hang-up and on queue timeout alike."""

    topic: ClassVar[str] = "queue.caller_abandoned"
    queue: str = ""
    position: int = 0
    original_position: int = 0
    hold_time: int = 0


@dataclass(frozen=True, slots=True)
class AgentEvent(ChannelEvent):
    """Queue/agent events: ``channel`` is the caller, ``dest_channel`` the agent leg."""

    queue: str = ""
    member_name: str = ""
    interface: str = ""
    dest_channel: str = ""


@dataclass(frozen=True, slots=True)
class AgentCalled(AgentEvent):
    topic: ClassVar[str] = "queue.agent_called"


@dataclass(frozen=True, slots=True)
class AgentRingNoAnswer(AgentEvent):
    topic: ClassVar[str] = "queue.agent_ring_no_answer"
    ring_time_ms: int = 0


@dataclass(frozen=True, slots=True)
class AgentConnected(AgentEvent):
    """``hold_time`` and ``ring_time`` are seconds (Asterisk's docs say otherwise)."""

    topic: ClassVar[str] = "queue.agent_connected"
    hold_time: int = 0
    ring_time: int = 0


@dataclass(frozen=True, slots=True)
class AgentCompleted(AgentEvent):
    """Not sent for every call (agent dropping with ``*``): do not derive talk time from it.

    After an AMI ``Hangup`` of the agent it comes without the caller's snapshot (and
    sometimes without the agent's): ``channel``, ``uniqueid`` and ``linkedid`` are then
    taken from the agent's ``Dest*`` block, or empty; the queue and interface remain."""

    topic: ClassVar[str] = "queue.agent_completed"
    hold_time: int = 0
    talk_time: int = 0
    reason: str = ""


@dataclass(frozen=True, slots=True)
class HoldStarted(ChannelEvent):
    """``Hold``: the channel (an agent's phone, or the atxfer feature) put its peer on hold."""

    topic: ClassVar[str] = "channel.hold"
    music_class: str = ""


@dataclass(frozen=True, slots=True)
class HoldEnded(ChannelEvent):
    topic: ClassVar[str] = "channel.unhold"


@dataclass(frozen=True, slots=True)
class CallTransferred(DomainEvent):
    """``BlindTransfer`` or ``AttendedTransfer`` (``kind``). ``linkedid`` is the transferee's
    call; ``target`` is ``exten@context`` (blind) or the target channel (attended)."""

    topic: ClassVar[str] = "call.transferred"
    kind: str
    success: bool
    linkedid: str
    transferer_channel: str
    transferer_uniqueid: str
    transferee_channel: str
    transferee_uniqueid: str
    target: str
    is_external: bool


@dataclass(frozen=True, slots=True)
class QueueMemberEvent(DomainEvent):
    queue: str
    member_name: str
    interface: str
    state_interface: str
    membership: str
    penalty: int
    calls_taken: int
    in_call: bool
    status: int
    paused: bool
    paused_reason: str


@dataclass(frozen=True, slots=True)
class QueueMemberAdded(QueueMemberEvent):
    topic: ClassVar[str] = "queue.member_added"


@dataclass(frozen=True, slots=True)
class QueueMemberRemoved(QueueMemberEvent):
    topic: ClassVar[str] = "queue.member_removed"


@dataclass(frozen=True, slots=True)
class QueueMemberPaused(QueueMemberEvent):
    topic: ClassVar[str] = "queue.member_paused"


@dataclass(frozen=True, slots=True)
class QueueMemberStatus(QueueMemberEvent):
    topic: ClassVar[str] = "queue.member_status"


@dataclass(frozen=True, slots=True)
class RecordingStarted(ChannelEvent):
    """``file`` comes from ``VarSet MIXMONITOR_FILENAME`` (MixMonitorStart lacks it)."""

    topic: ClassVar[str] = "recording.started"
    file: str = ""


@dataclass(frozen=True, slots=True)
class RecordingStopped(ChannelEvent):
    topic: ClassVar[str] = "recording.stopped"
    file: str = ""


@dataclass(frozen=True, slots=True)
class DtmfReceived(ChannelEvent):
    topic: ClassVar[str] = "dtmf"
    digit: str = ""
    direction: str = ""
    duration_ms: int = 0


@dataclass(frozen=True, slots=True)
class OriginateResult(DomainEvent):
    """Outcome of an async Originate (``outcome``: answered, busy, no_answer, ...)."""

    topic: ClassVar[str] = "originate.response"
    action_id: str
    success: bool
    reason: int
    outcome: str
    channel: str
    uniqueid: str
    caller_num: str


@dataclass(frozen=True, slots=True)
class UserEvent(DomainEvent):
    topic: ClassVar[str] = "user.event"
    name: str
    headers: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class ChannelSnapshot:
    """One live channel as reported by ``CoreShowChannels`` during a resync."""

    channel: str
    uniqueid: str
    linkedid: str
    state: int
    caller_num: str
    caller_name: str
    context: str
    exten: str
    application: str
    bridge_id: str
    duration_seconds: int

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class ResyncStarted(DomainEvent):
    """Emitted just before the resync queries are sent: state touched after it is newer
    than the snapshot that follows. ``periodic`` marks the reconciliation that runs on a
    live connection (a lost ``Hangup``) rather than after a (re)connect; ``pbx`` names the
    Asterisk server (``AmiConfig.pbx``)."""

    topic: ClassVar[str] = "telephony.resync_started"
    epoch: int
    pbx: str = "default"
    periodic: bool = False


@dataclass(frozen=True, slots=True)
class ChannelsSnapshot(DomainEvent):
    """Every live channel after a (re)connect (or periodically): the tracker rebuilds its
    state from it."""

    topic: ClassVar[str] = "telephony.channels_snapshot"
    epoch: int
    channels: tuple[ChannelSnapshot, ...]
    pbx: str = "default"
    periodic: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"topic": self.topic, "at": self.at.isoformat(), "epoch": self.epoch,
                "channels": [c.to_dict() for c in self.channels], "pbx": self.pbx,
                "periodic": self.periodic}


@dataclass(frozen=True, slots=True)
class QueuesSnapshot(DomainEvent):
    """``QueueStatus`` after a (re)connect: queue params, members and waiting callers."""

    topic: ClassVar[str] = "telephony.queues_snapshot"
    epoch: int
    params: tuple[dict[str, str], ...]
    members: tuple[dict[str, str], ...]
    entries: tuple[dict[str, str], ...]

    def to_dict(self) -> dict[str, Any]:
        return {"topic": self.topic, "at": self.at.isoformat(), "epoch": self.epoch,
                "params": list(self.params), "members": list(self.members),
                "entries": list(self.entries)}


@dataclass(frozen=True, slots=True)
class AmiConnected(DomainEvent):
    topic: ClassVar[str] = "telephony.connected"
    epoch: int


@dataclass(frozen=True, slots=True)
class AmiDisconnected(DomainEvent):
    topic: ClassVar[str] = "telephony.disconnected"
    epoch: int


def _set_slots_init(cls: type) -> None:
    """Give a frozen event class an ``__init__`` that fills its slots directly (through each
    slot's own descriptor) instead of ``object.__setattr__`` per field, as dataclasses does:
    half the cost, and an event is built for every AMI event kept. Same signature and
    defaults; the instance stays frozen (``__setattr__`` still refuses)."""
    if hasattr(cls, "__post_init__"):
        return
    params, body = [], []
    namespace: dict[str, Any] = {}
    for f in fields(cls):
        if f.default_factory is not MISSING or not f.init:
            return  # not needed by any event so far: keep dataclasses' own __init__
        namespace[f"_set_{f.name}"] = getattr(cls, f.name).__set__
        if f.default is MISSING:
            params.append(f.name)
        else:
            namespace[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
        body.append(f"    _set_{f.name}(self, {f.name})\n")
    exec(f"def __init__(self, {', '.join(params)}):\n{''.join(body)}", namespace)
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__init__ = init  # type: ignore[misc]


for _event_class in [value for value in list(globals().values()) if isinstance(value, type)
                     and issubclass(value, DomainEvent | ChannelSnapshot)]:
    _set_slots_init(_event_class)


ORIGINATE_OUTCOMES = {0: "failed", 1: "no_answer", 3: "no_answer", 4: "answered", 5: "busy",
                      8: "congestion"}
"""OriginateResponse ``Reason`` (Asterisk control frame codes): 1 the far end hung up before
answering, 3 it rang until the timeout; 0 as failure is unconfirmed (PROTOCOL.md)."""

APPS_OF_INTEREST = frozenset({"AGI", "EAGI", "Queue", "Read", "BackGround", "Background",
                              "Playback", "VoiceMail", "MixMonitor", "Dial"})
VARIABLE_PREFIXES = ("CC_",)
"""Channel variables the dialplan or the service sets for the call log (``CC_DIRECTION``...)."""
VARIABLES_OF_INTEREST = frozenset({"MIXMONITOR_FILENAME", "IVR_CHOICE", "IVR_PATH", "IVR_NODE",
                                   "QUEUESTATUS", "AGISTATUS", "DIALSTATUS", "CALL_DIRECTION"})
WANTED_EVENTS: frozenset[str] = frozenset({
    "Newchannel", "Newstate", "Hangup", "Newexten", "VarSet", "DialBegin", "DialEnd",
    "BridgeEnter", "BridgeLeave", "QueueCallerJoin", "QueueCallerLeave", "QueueCallerAbandon",
    "AgentCalled", "AgentRingNoAnswer", "AgentConnect", "AgentComplete", "QueueMemberAdded",
    "QueueMemberRemoved", "QueueMemberPause", "QueueMemberPaused", "QueueMemberStatus",
    "MixMonitorStart", "MixMonitorStop", "DTMFEnd", "OriginateResponse", "UserEvent", "Hold",
    "Unhold", "BlindTransfer", "AttendedTransfer"})
"""Every AMI event name ``EventTranslator`` turns into a domain event: the AMI client may
drop any other event before parsing it in full (a test keeps this equal to the table)."""


class MissingField(Exception):
    """An AMI event lacks a header the translation needs."""


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _need(f: Fields, key: str) -> str:
    value = f.get(key)
    if value is None:
        raise MissingField(key)
    return value if type(value) is str else value[0]


class Receipt:
    """The receipt time of one socket read, for events without a ``Timestamp``: what one
    read carries arrived together, so the clock is read once, when the first event needs it,
    not once per event. Outside a read (``with receipt:``) every call reads the clock."""

    __slots__ = ("_clock", "_at", "_open")

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._at: datetime | None = None
        self._open = False

    def __enter__(self) -> Receipt:
        self._open = True
        self._at = None
        return self

    def __exit__(self, *exc: object) -> None:
        self._open = False
        self._at = None

    def now(self) -> datetime:
        if not self._open:
            return self._clock.now()
        at = self._at
        if at is None:
            at = self._at = self._clock.now()
        return at


_SNAPSHOT = itemgetter("Channel", "Uniqueid", "Linkedid", "ChannelState", "CallerIDNum",
                       "CallerIDName", "Context", "Exten")


def _careful_base(f: Fields, at: datetime) -> tuple[Any, ...]:
    """The channel snapshot block of an event lacking some of it (or repeating a header)."""
    return (at, f.get("Channel", ""), _need(f, "Uniqueid"), _need(f, "Linkedid"),
            _int(f.get("ChannelState")), f.get("CallerIDNum", ""),
            f.get("CallerIDName", ""), f.get("Context", ""), f.get("Exten", ""))


class EventTranslator:
    """AMI event fields -> one domain event (or None for events nobody needs)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self.receipt = Receipt(clock)
        """Entered around each socket read (``AmiClient(receipt=...)``)."""
        self._recording_files: dict[str, str] = {}
        self._handlers: dict[str, Callable[[Fields, datetime], DomainEvent | None]] = {
            "Newchannel": self._new_channel,
            "Newstate": self._new_state,
            "Hangup": self._hangup,
            "Newexten": self._new_exten,
            "VarSet": self._var_set,
            "DialBegin": self._dial_begin,
            "DialEnd": self._dial_end,
            "BridgeEnter": self._bridge_enter,
            "BridgeLeave": self._bridge_leave,
            "QueueCallerJoin": self._caller_join,
            "QueueCallerLeave": self._caller_leave,
            "QueueCallerAbandon": self._caller_abandon,
            "AgentCalled": self._agent_called,
            "AgentRingNoAnswer": self._agent_ring_no_answer,
            "AgentConnect": self._agent_connect,
            "AgentComplete": self._agent_complete,
            "QueueMemberAdded": self._member(QueueMemberAdded),
            "QueueMemberRemoved": self._member(QueueMemberRemoved),
            "QueueMemberPause": self._member(QueueMemberPaused),
            "QueueMemberPaused": self._member(QueueMemberPaused),
            "QueueMemberStatus": self._member(QueueMemberStatus),
            "MixMonitorStart": self._recording_start,
            "MixMonitorStop": self._recording_stop,
            "DTMFEnd": self._dtmf,
            "OriginateResponse": self._originate_response,
            "UserEvent": self._user_event,
            "Hold": self._hold,
            "Unhold": self._unhold,
            "BlindTransfer": self._blind_transfer,
            "AttendedTransfer": self._attended_transfer,
        }

    def keep_only(self, live_uniqueids: set[str]) -> None:
        """Forget what we remember of channels that are gone (after a resync): their
        ``Hangup`` may have been lost with the connection."""
        for uniqueid in [u for u in self._recording_files if u not in live_uniqueids]:
            del self._recording_files[uniqueid]

    def translate(self, f: Fields) -> DomainEvent | None:
        name = f.get("Event")
        handler = self._handlers.get(name) if type(name) is str else None
        if handler is None:
            return None
        try:
            return handler(f, self._time(f))
        except MissingField as exc:
            log.warning("ami.event_missing_field event=%s field=%s", name, exc)
        except (TypeError, ValueError, AttributeError) as exc:
            log.warning("ami.event_malformed event=%s error=%r", name, exc)
        return None

    def _time(self, f: Fields) -> datetime:
        stamp = f.get("Timestamp")
        if stamp is not None:
            try:
                return datetime.fromtimestamp(float(stamp), UTC)
            except (TypeError, ValueError, OverflowError):
                log.warning("ami.bad_timestamp value=%r", stamp)
        return self.receipt.now()

    @staticmethod
    def _base(f: Fields, at: datetime) -> tuple[Any, ...]:
        """The channel snapshot block, in ``ChannelEvent`` field order. Nearly every event
        carries the whole block once: it is then read in one go (one C call); a header
        missing or repeated takes the careful way."""
        try:
            channel, uniqueid, linkedid, state, number, name, context, exten = _SNAPSHOT(f)
        except KeyError:
            return _careful_base(f, at)
        if type(uniqueid) is not str or type(linkedid) is not str:
            return _careful_base(f, at)
        return (at, channel, uniqueid, linkedid, _int(state), number, name, context, exten)

    @staticmethod
    def _dest_base(f: Fields, at: datetime) -> tuple[Any, ...]:
        """Caller block if present (a dial from a channel), else the Dest block (Originate)."""
        if "Uniqueid" in f:
            return EventTranslator._base(f, at)
        return (at, "", _need(f, "DestUniqueid"), _need(f, "DestLinkedid"),
                _int(f.get("DestChannelState")), f.get("DestCallerIDNum", ""),
                f.get("DestCallerIDName", ""), f.get("DestContext", ""),
                f.get("DestExten", ""))

    def _new_channel(self, f: Fields, at: datetime) -> DomainEvent:
        return ChannelCreated(*self._base(f, at))

    def _new_state(self, f: Fields, at: datetime) -> DomainEvent:
        return ChannelStateChanged(*self._base(f, at), f.get("ChannelStateDesc", ""))

    def _hangup(self, f: Fields, at: datetime) -> DomainEvent:
        event = ChannelHungUp(*self._base(f, at), _int(f.get("Cause")), f.get("Cause-txt", ""))
        self._recording_files.pop(event.uniqueid, None)
        return event

    def _new_exten(self, f: Fields, at: datetime) -> DomainEvent | None:
        app = f.get("Application")
        if app not in APPS_OF_INTEREST:
            return None
        return DialplanApp(*self._base(f, at), app, f.get("AppData", ""))

    def _var_set(self, f: Fields, at: datetime) -> DomainEvent | None:
        name = f.get("Variable", "")
        if name not in VARIABLES_OF_INTEREST and not name.startswith(VARIABLE_PREFIXES):
            return None
        value = f.get("Value", "")
        event = VariableSet(*self._base(f, at), name, value)
        if name == "MIXMONITOR_FILENAME":
            self._recording_files[event.uniqueid] = value
        return event

    def _dial_begin(self, f: Fields, at: datetime) -> DomainEvent:
        return DialBegan(*self._dest_base(f, at), f.get("DestChannel", ""),
                         f.get("DestUniqueid", ""), f.get("DialString", ""))

    def _dial_end(self, f: Fields, at: datetime) -> DomainEvent:
        return DialEnded(*self._dest_base(f, at), f.get("DestChannel", ""),
                         f.get("DestUniqueid", ""), _need(f, "DialStatus"))

    def _bridge_enter(self, f: Fields, at: datetime) -> DomainEvent:
        return BridgeEntered(*self._base(f, at), _need(f, "BridgeUniqueid"),
                             _int(f.get("BridgeNumChannels")))

    def _bridge_leave(self, f: Fields, at: datetime) -> DomainEvent:
        return BridgeLeft(*self._base(f, at), _need(f, "BridgeUniqueid"),
                          _int(f.get("BridgeNumChannels")))

    def _caller_join(self, f: Fields, at: datetime) -> DomainEvent:
        return QueueCallerJoined(*self._base(f, at), _need(f, "Queue"),
                                 _int(f.get("Position")), _int(f.get("Count")))

    def _caller_leave(self, f: Fields, at: datetime) -> DomainEvent:
        return QueueCallerLeft(*self._base(f, at), _need(f, "Queue"),
                               _int(f.get("Position")), _int(f.get("Count")))

    def _caller_abandon(self, f: Fields, at: datetime) -> DomainEvent:
        return QueueCallerAbandoned(*self._base(f, at), _need(f, "Queue"),
                                    _int(f.get("Position")), _int(f.get("OriginalPosition")),
                                    _int(f.get("HoldTime")))

    def _agent(self, f: Fields) -> tuple[str, str, str, str]:
        return (_need(f, "Queue"), f.get("MemberName", ""), f.get("Interface", ""),
                f.get("DestChannel", ""))

    def _agent_called(self, f: Fields, at: datetime) -> DomainEvent:
        return AgentCalled(*self._base(f, at), *self._agent(f))

    def _agent_ring_no_answer(self, f: Fields, at: datetime) -> DomainEvent:
        return AgentRingNoAnswer(*self._base(f, at), *self._agent(f), _int(f.get("RingTime")))

    def _agent_connect(self, f: Fields, at: datetime) -> DomainEvent:
        return AgentConnected(*self._base(f, at), *self._agent(f), _int(f.get("HoldTime")),
                              _int(f.get("RingTime")))

    def _agent_complete(self, f: Fields, at: datetime) -> DomainEvent:
        if "Uniqueid" in f:
            base = self._base(f, at)
        elif "DestUniqueid" in f:  # AMI Hangup of the agent: only the agent's snapshot
            base = (at, f.get("DestChannel", ""), f["DestUniqueid"], f.get("DestLinkedid", ""),
                    _int(f.get("DestChannelState")), f.get("DestCallerIDNum", ""),
                    f.get("DestCallerIDName", ""), f.get("DestContext", ""),
                    f.get("DestExten", ""))
        else:  # no snapshot at all: the queue and the member interface identify the call
            base = (at, "", "", "", 0, "", "", "", "")
        return AgentCompleted(*base, *self._agent(f), _int(f.get("HoldTime")),
                              _int(f.get("TalkTime")), f.get("Reason", ""))

    def _hold(self, f: Fields, at: datetime) -> DomainEvent:
        return HoldStarted(*self._base(f, at), f.get("MusicClass", ""))

    def _unhold(self, f: Fields, at: datetime) -> DomainEvent:
        return HoldEnded(*self._base(f, at))

    def _blind_transfer(self, f: Fields, at: datetime) -> DomainEvent:
        target = f"{f.get('Extension', '')}@{f.get('Context', '')}"
        return CallTransferred(
            at, "blind", f.get("Result") == "Success", _need(f, "TransfereeLinkedid"),
            f.get("TransfererChannel", ""), f.get("TransfererUniqueid", ""),
            f.get("TransfereeChannel", ""), f.get("TransfereeUniqueid", ""), target,
            f.get("IsExternal") == "Yes")

    def _attended_transfer(self, f: Fields, at: datetime) -> DomainEvent:
        target = f.get("TransferTargetChannel") or f.get("DestApp", "")
        linkedid = f.get("TransfereeLinkedid") or _need(f, "OrigTransfererLinkedid")
        return CallTransferred(
            at, "attended", f.get("Result") == "Success", linkedid,
            f.get("OrigTransfererChannel", ""), f.get("OrigTransfererUniqueid", ""),
            f.get("TransfereeChannel", ""), f.get("TransfereeUniqueid", ""), target,
            f.get("IsExternal") == "Yes")

    @staticmethod
    def _member(kind: type[QueueMemberEvent]) -> Callable[[Fields, datetime], DomainEvent]:
        def build(f: Fields, at: datetime) -> DomainEvent:
            return kind(at, _need(f, "Queue"), f.get("MemberName", ""), _need(f, "Interface"),
                        f.get("StateInterface", ""), f.get("Membership", ""),
                        _int(f.get("Penalty")), _int(f.get("CallsTaken")),
                        f.get("InCall") == "1", _int(f.get("Status")),
                        f.get("Paused") == "1", f.get("PausedReason", ""))
        return build

    def _recording_start(self, f: Fields, at: datetime) -> DomainEvent:
        base = self._base(f, at)
        return RecordingStarted(*base, self._recording_files.get(base[2], ""))

    def _recording_stop(self, f: Fields, at: datetime) -> DomainEvent:
        base = self._base(f, at)
        return RecordingStopped(*base, self._recording_files.get(base[2], ""))

    def _dtmf(self, f: Fields, at: datetime) -> DomainEvent:
        return DtmfReceived(*self._base(f, at), _need(f, "Digit"), f.get("Direction", ""),
                            _int(f.get("DurationMs")))

    def _originate_response(self, f: Fields, at: datetime) -> DomainEvent:
        reason = _int(f.get("Reason"))
        success = f.get("Response") == "Success"
        outcome = "answered" if success else ORIGINATE_OUTCOMES.get(reason, "failed")
        return OriginateResult(at, first(f, "ActionID"), success, reason, outcome,
                               f.get("Channel", ""), f.get("Uniqueid", ""),
                               f.get("CallerIDNum", ""))

    def _user_event(self, f: Fields, at: datetime) -> DomainEvent:
        skip = {"Event", "Privilege", "Timestamp", "UserEvent"}
        headers = tuple((k, v if type(v) is str else ",".join(v))
                        for k, v in f.items() if k not in skip)
        return UserEvent(at, _need(f, "UserEvent"), headers)


def snapshot_from_fields(f: Fields) -> ChannelSnapshot:
    """A ``CoreShowChannel`` list item -> ``ChannelSnapshot`` (Duration is HH:MM:SS)."""
    return ChannelSnapshot(
        channel=_need(f, "Channel"), uniqueid=_need(f, "Uniqueid"),
        linkedid=f.get("Linkedid") or _need(f, "Uniqueid"),
        state=_int(f.get("ChannelState")), caller_num=f.get("CallerIDNum", ""),
        caller_name=f.get("CallerIDName", ""), context=f.get("Context", ""),
        exten=f.get("Exten", ""), application=f.get("Application", ""),
        bridge_id=f.get("BridgeId", ""), duration_seconds=parse_duration(f.get("Duration", "")))


def parse_duration(text: str) -> int:
    """``HH:MM:SS`` (CoreShowChannel) or plain seconds -> seconds."""
    try:
        parts = [int(p) for p in str(text).split(":")]
    except ValueError:
        return 0
    seconds = 0
    for part in parts:
        seconds = seconds * 60 + part
    return seconds
