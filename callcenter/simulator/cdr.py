"""Call detail records as main/cdr.c builds them, posted as AMI `Cdr` events (cdr_manager)
and as lines of Master.csv (cdr_csv).

Like cdr.c, the engine follows the channel events (Newchannel, Newexten, Newstate,
DialBegin/DialEnd, BridgeEnter/BridgeLeave, Hangup), so it sees what Asterisk's CDR engine
sees whichever part of the simulator published them. A channel's records:

- one record per leg: a channel dialed by another (a queue member's or Dial's outgoing
  channel) is only that record's party B and gets none of its own;
- each sequential dial attempt is a record of its own: an unanswered queue attempt is
  finalized with `NO ANSWER` when the next attempt starts (dial_state / dialed_pending);
- a channel that leaves a bridge and goes on in the dialplan (a Redirect, a dialplan that
  continues after Queue() or Dial()) finalizes the record and starts a new one, answered
  at once if the channel is up (finalized_state_process_party_a);
- all records of a channel are posted when it hangs up, in order;
- a party A whose party B leaves the bridge while A stays (an attended transfer, a Local
  channel optimised away) ends that record there; whoever joins A's bridge next is the
  party B of a new record starting when the old one ended (captures/attended_transfer).

Master.csv has cdr_csv's default columns (see CSV_COLUMNS), strings quoted with inner
quotes doubled, numbers bare, an empty answer time left empty; times in UTC.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from callcenter.simulator import events as ev

if TYPE_CHECKING:
    from callcenter.simulator.pbx import Pbx

log = logging.getLogger(__name__)

# cdr_csv.c build_csv_record() with loguniqueid and loguserfield (cdr.conf [csv])
CSV_COLUMNS = (
    "accountcode",
    "src",
    "dst",
    "dcontext",
    "clid",
    "channel",
    "dstchannel",
    "lastapp",
    "lastdata",
    "start",
    "answer",
    "end",
    "duration",
    "billsec",
    "disposition",
    "amaflags",
    "uniqueid",
    "userfield",
)
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
# dial_status_to_disposition() with cdr.conf congestion = yes
DIAL_DISPOSITION = {
    "ANSWER": None,
    "BUSY": "BUSY",
    "CANCEL": "NO ANSWER",
    "NOANSWER": "NO ANSWER",
    "CONGESTION": "CONGESTION",
}
EVENTS = {
    "Newchannel",
    "Newexten",
    "Newstate",
    "DialBegin",
    "DialEnd",
    "BridgeEnter",
    "BridgeLeave",
    "Hangup",
}


@dataclass
class CdrRecord:
    """One record (cdr_object): party A's view of one leg of the call."""

    start: float
    answer: float | None = None
    end: float | None = None
    party_b: str = ""
    lastapp: str = ""
    lastdata: str = ""
    dst: str = ""
    dcontext: str = ""
    disposition: str | None = None


@dataclass
class ChannelCdrs:
    """The records of one channel and where its current record stands."""

    uniqueid: str
    records: list[CdrRecord] = field(default_factory=list)
    state: str = "single"  # single | dial | dialed_pending | bridged | finalized
    up: bool = False
    fields: dict[str, str] = field(default_factory=dict)  # party A's latest snapshot
    split_at: float | None = None  # its party B left the bridge it stays in

    @property
    def current(self) -> CdrRecord:
        return self.records[-1]


def parse_body(body: str) -> dict[str, str]:
    """`Key: Value` lines → dict (first occurrence wins, as astman_get_header)."""
    out: dict[str, str] = {}
    for line in body.split("\r\n"):
        key, sep, value = line.partition(": ")
        if sep and key not in out:
            out[key] = value
    return out


class CdrEngine:
    """Builds records from the event stream and posts them (Cdr event, Master.csv)."""

    def __init__(self, pbx: Pbx, csv_path: Path | None) -> None:
        self.pbx = pbx
        self.csv_path = csv_path
        self.channels: dict[str, ChannelCdrs] = {}
        self.bridges: dict[str, list[str]] = {}  # BridgeUniqueid → the Uniqueids in it

    def observe(self, name: str, body: str) -> None:
        """EventHub tap: called after each event reached every client."""
        if name not in EVENTS:
            return
        fields = parse_body(body)
        handler = getattr(self, f"_on_{name.lower()}")
        handler(fields)

    # -- channel events ---------------------------------------------------------------------
    def _now(self) -> float:
        return self.pbx.clock.now()

    def _on_newchannel(self, f: dict[str, str]) -> None:
        cdrs = ChannelCdrs(f.get("Uniqueid", ""), fields=f)
        cdrs.records.append(CdrRecord(self._now(), dst=f.get("Exten", ""), dcontext=_ctx(f)))
        self.channels[cdrs.uniqueid] = cdrs

    def _on_newexten(self, f: dict[str, str]) -> None:
        cdrs = self.channels.get(f.get("Uniqueid", ""))
        if cdrs is None:
            return
        if cdrs.state == "finalized" or (cdrs.state == "dialed_pending" and cdrs.current.party_b):
            self._new_record(cdrs)
        cdrs.fields = f
        record = cdrs.current
        record.dst, record.dcontext = f.get("Exten", ""), _ctx(f)
        app = f.get("Application", "")
        if app:
            record.lastapp, record.lastdata = app, f.get("AppData", "")

    def _on_newstate(self, f: dict[str, str]) -> None:
        cdrs = self.channels.get(f.get("Uniqueid", ""))
        if cdrs is None:
            return
        cdrs.fields = f
        if f.get("ChannelState") == "6" and not cdrs.up:
            cdrs.up = True
            if cdrs.current.answer is None and cdrs.state != "finalized":
                cdrs.current.answer = self._now()

    def _on_dialbegin(self, f: dict[str, str]) -> None:
        cdrs = self.channels.get(f.get("Uniqueid", ""))  # the caller; none for Originate
        if cdrs is None:
            return
        if cdrs.state == "dial":
            return  # a parallel dial (ringall): the record keeps its first party B
        if cdrs.current.party_b or cdrs.state == "finalized":
            self._new_record(cdrs)
        cdrs.current.party_b = f.get("DestChannel", "")
        cdrs.state = "dial"

    def _on_dialend(self, f: dict[str, str]) -> None:
        caller = self.channels.get(f.get("Uniqueid", ""))
        if caller is not None:
            self._dial_ended(caller, f.get("DestChannel", ""), f.get("DialStatus", ""))
            return
        callee = self.channels.get(f.get("DestUniqueid", ""))
        if callee is not None and f.get("DialStatus") != "ANSWER":  # an Originate's dialer
            callee.current.disposition = DIAL_DISPOSITION.get(f.get("DialStatus", ""), "FAILED")

    def _dial_ended(self, cdrs: ChannelCdrs, dest: str, status: str) -> None:
        record = cdrs.current
        if status == "ANSWER":
            record.party_b = dest  # whoever answered a parallel dial is the party B
            record.disposition = None
            cdrs.state = "single"
            return
        if dest != record.party_b or cdrs.state != "dial":
            return
        record.disposition = DIAL_DISPOSITION.get(status, "FAILED")
        cdrs.state = "dialed_pending"

    def _on_bridgeenter(self, f: dict[str, str]) -> None:
        uid = f.get("Uniqueid", "")
        members = self.bridges.setdefault(f.get("BridgeUniqueid", ""), [])
        for other in filter(None, map(self.channels.get, members)):
            if other.split_at is not None:
                self._resume(other, f.get("Channel", ""))
        members.append(uid)
        cdrs = self.channels.get(uid)
        if cdrs is not None:
            cdrs.state = "bridged"

    def _on_bridgeleave(self, f: dict[str, str]) -> None:
        uid, bid = f.get("Uniqueid", ""), f.get("BridgeUniqueid", "")
        members = self.bridges.get(bid, [])
        if uid in members:
            members.remove(uid)
        if not members:
            self.bridges.pop(bid, None)
        now = self._now()
        cdrs = self.channels.get(uid)
        if cdrs is not None and cdrs.state == "bridged":
            cdrs.current.end = now
            cdrs.state = "finalized"
        for other in filter(None, map(self.channels.get, members)):
            if other.state == "bridged" and other.current.party_b == f.get("Channel"):
                other.current.end = now
                other.split_at = now

    def _resume(self, cdrs: ChannelCdrs, party_b: str) -> None:
        """A new record for a party A that stayed in its bridge, with the newcomer as B."""
        start, cdrs.split_at = cdrs.split_at, None
        assert start is not None
        last, f = cdrs.current, cdrs.fields
        cdrs.records.append(
            CdrRecord(
                start,
                start if cdrs.up else None,
                party_b=party_b,
                lastapp=last.lastapp,
                lastdata=last.lastdata,
                dst=f.get("Exten", ""),
                dcontext=_ctx(f),
            )
        )

    def _on_hangup(self, f: dict[str, str]) -> None:
        cdrs = self.channels.pop(f.get("Uniqueid", ""), None)
        if cdrs is None:
            return
        cdrs.fields = f
        chan = self.pbx.by_uniqueid.get(cdrs.uniqueid)
        if chan is not None and getattr(chan, "no_cdr", False):
            return  # a dialed channel: only the party B of its caller's record
        now = self._now()
        for record in cdrs.records:
            if record.end is None:
                record.end = now
        last = cdrs.current
        if last.disposition is None and chan is not None and last.answer is None:
            last.disposition = chan.cdr_disposition
        for record in cdrs.records:
            self._post(cdrs, record, int(f.get("Cause", "0") or 0), chan)

    def _new_record(self, cdrs: ChannelCdrs) -> None:
        now = self._now()
        if cdrs.current.end is None:
            cdrs.current.end = now
        f = cdrs.fields
        cdrs.records.append(
            CdrRecord(now, now if cdrs.up else None, dst=f.get("Exten", ""), dcontext=_ctx(f))
        )
        cdrs.state = "single"

    # -- posting ----------------------------------------------------------------------------
    def _post(self, cdrs: ChannelCdrs, record: CdrRecord, cause: int, chan: object) -> None:
        f = cdrs.fields
        num = _cid(f.get("CallerIDNum", ""))
        name = _cid(f.get("CallerIDName", ""))
        end = record.end or self._now()
        row = {
            "accountcode": f.get("AccountCode", ""),
            "src": num,
            "dst": record.dst,
            "dcontext": record.dcontext,
            "clid": f'"{name}" <{num}>',
            "channel": f.get("Channel", ""),
            "dstchannel": record.party_b,
            "lastapp": record.lastapp,
            "lastdata": record.lastdata,
            "start": _fmt(record.start),
            "answer": _fmt(record.answer) if record.answer is not None else "",
            "end": _fmt(end),
            "duration": str(int(end - record.start)),
            "billsec": str(int(end - record.answer)) if record.answer is not None else "0",
            "disposition": record.disposition or _disposition(record, cause, f, chan),
            "amaflags": "DOCUMENTATION",
            "uniqueid": cdrs.uniqueid,
            "userfield": getattr(chan, "vars", {}).get("CDR(userfield)", ""),
        }
        if self.pbx.cdr_events:
            self.pbx.hub.emit("Cdr", ev.CDR, _cdr_event_body(row))
        if self.csv_path is not None:
            self._append_csv(row)

    def _append_csv(self, row: dict[str, str]) -> None:
        assert self.csv_path is not None
        try:
            self.csv_path.parent.mkdir(parents=True, exist_ok=True)
            with self.csv_path.open("a", encoding="utf-8") as handle:
                handle.write(csv_line(row) + "\n")
        except OSError as exc:
            log.error("cdr_csv.write_failed path=%s error=%s", self.csv_path, exc)


def _disposition(record: CdrRecord, cause: int, f: dict[str, str], chan: object) -> str:
    """cdr_object_finalize(): answered, else from the hang-up cause, else FAILED."""
    if record.answer is not None:
        return "ANSWERED"
    if cause == 17:
        return "BUSY"
    if cause == 34:
        return "CONGESTION"
    if getattr(chan, "local_half", 0) == 2:
        return "FAILED"  # the ;2 half's cause comes from its peer after it was finalized
    return "NO ANSWER" if cause in (16, 19) else "FAILED"


def _cdr_event_body(row: dict[str, str]) -> str:
    """cdr_manager.c manager_log(): its field names and order."""
    pairs = (
        ("AccountCode", "accountcode"),
        ("Source", "src"),
        ("Destination", "dst"),
        ("DestinationContext", "dcontext"),
        ("CallerID", "clid"),
        ("Channel", "channel"),
        ("DestinationChannel", "dstchannel"),
        ("LastApplication", "lastapp"),
        ("LastData", "lastdata"),
        ("StartTime", "start"),
        ("AnswerTime", "answer"),
        ("EndTime", "end"),
        ("Duration", "duration"),
        ("BillableSeconds", "billsec"),
        ("Disposition", "disposition"),
        ("AMAFlags", "amaflags"),
        ("UniqueID", "uniqueid"),
        ("UserField", "userfield"),
    )
    return "".join(f"{key}: {row[col]}\r\n" for key, col in pairs)


def csv_line(row: dict[str, str]) -> str:
    """One Master.csv line: strings quoted (inner quotes doubled), numbers and an empty
    answer time bare, as cdr_csv's append_string()/append_int()/append_date() write them."""
    cells = []
    for col in CSV_COLUMNS:
        value = row[col]
        if col in ("duration", "billsec") or (col == "answer" and not value):
            cells.append(value)
        else:
            cells.append('"' + value.replace('"', '""') + '"')
    return ",".join(cells)


def _fmt(ts: float) -> str:
    return time.strftime(TIME_FORMAT, time.gmtime(ts))


def _cid(value: str) -> str:
    return "" if value == "<unknown>" else value


def _ctx(f: dict[str, str]) -> str:
    return f.get("Context", "")
