"""Back-fill of calls the service never saw, from Asterisk's CDR file (cdr_csv ``Master.csv``).

A call that began and ended while the AMI connection was down leaves no event and no
snapshot: only Asterisk's call detail records know it (the statistics lie otherwise). After
a reconnect, ``CdrBackfill`` (a telephony listener) runs ``backfill_from_cdr`` for the
outage window.

``Master.csv`` has one line per channel leg, in Asterisk's default column order (accountcode,
src, dst, dcontext, clid, channel, dstchannel, lastapp, lastdata, start, answer, end,
duration, billsec, disposition, amaflags, uniqueid, userfield) and no Linkedid. A call's own
legs are those of its first channel, whose Uniqueid *is* the Linkedid; the legs of the
channels it dialled (and the ``;2`` halves of Local channels) are left out. Several lines
with one Uniqueid (a transfer or a dialplan continuing after ``Queue()`` splits the CDR) are
one call.

Rows are inserted, never updated (``ON CONFLICT DO NOTHING`` on server + Linkedid): a call
already in the log — seen live, or closed by a resync — is never touched, and running the
back-fill twice adds nothing. Back-filled rows say ``backfilled``; what a CDR cannot tell
(queue wait, IVR path, agent, why a queue call was not answered) stays empty, and times have
whole seconds. A queue call's CDR is answered when the dialplan answered (before the IVR),
not when the agent did: its answer is marked estimated and its talk (``billsec``) includes
the IVR and the wait.
"""

from __future__ import annotations

import asyncio
import csv
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.calls.call import channel_base
from callcenter.calls.config import CallsConfig
from callcenter.calls.models import CallLog
from callcenter.telephony import events as ev

log = logging.getLogger(__name__)

COLUMNS = ("accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel", "lastapp",
           "lastdata", "start", "answer", "end", "duration", "billsec", "disposition",
           "amaflags", "uniqueid", "userfield")
"""cdr_csv's default order (``loguniqueid`` and ``loguserfield`` on, as shipped)."""
DISPOSITIONS = {"ANSWERED": "answered", "BUSY": "busy", "FAILED": "failed",
                "CONGESTION": "failed", "NO ANSWER": "no_answer"}


@dataclass(frozen=True, slots=True)
class Leg:
    """One line of Master.csv."""

    source: str
    destination: str
    context: str
    channel: str
    dest_channel: str
    last_app: str
    last_data: str
    start: datetime
    answer: datetime | None
    end: datetime
    billsec: int
    disposition: str
    uniqueid: str


def read_legs(path: Path, zone: ZoneInfo) -> list[Leg]:
    """Every well-formed line of ``path`` (others are logged and skipped)."""
    legs: list[Leg] = []
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        for number, values in enumerate(csv.reader(handle), start=1):
            if len(values) < len(COLUMNS):
                log.warning("calls.cdr_line_skipped line=%d columns=%d", number, len(values))
                continue
            f = dict(zip(COLUMNS, values, strict=False))
            try:
                legs.append(Leg(
                    f["src"], f["dst"], f["dcontext"], f["channel"], f["dstchannel"],
                    f["lastapp"], f["lastdata"], _time(f["start"], zone),
                    _time(f["answer"], zone) if f["answer"] else None, _time(f["end"], zone),
                    int(f["billsec"] or 0), f["disposition"], f["uniqueid"]))
            except ValueError as exc:
                log.warning("calls.cdr_line_skipped line=%d error=%r", number, exc)
    return legs


def _time(text: str, zone: ZoneInfo) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=zone)


def calls_from_legs(legs: list[Leg]) -> dict[str, list[Leg]]:
    """The legs of each call's first channel, by Linkedid (= that channel's Uniqueid)."""
    dialled = {leg.dest_channel for leg in legs if leg.dest_channel}
    channels = {leg.channel for leg in legs}
    calls: dict[str, list[Leg]] = {}
    for leg in legs:
        if not leg.uniqueid or leg.channel in dialled:
            continue
        if leg.channel.endswith(";2"):
            first_half = leg.channel[:-1] + "1"
            if first_half in dialled or first_half in channels:
                continue  # the far half of a Local channel someone dialled or originated
        calls.setdefault(leg.uniqueid, []).append(leg)
    return calls


def call_row(linkedid: str, legs: list[Leg], pbx: str, config: CallsConfig) -> dict[str, Any]:
    """The call-log row a call's legs (in file order) make."""
    first = min(legs, key=lambda leg: leg.start)
    dials = [leg for leg in legs if leg.dest_channel]
    answered = [leg for leg in dials if leg.disposition == "ANSWERED"]
    queue_leg = next((leg for leg in legs if leg.last_app == "Queue"), None)
    direction = _direction(legs, queue_leg is not None, config)
    if not dials and direction == "outbound" and first.disposition == "ANSWERED":
        answered = [first]  # an Originate the called party answered (a survey)
    if answered:
        disposition = "answered"
    elif queue_leg is not None:
        disposition = "abandoned"  # left the queue unanswered (a CDR cannot say why)
    elif dials:
        disposition = DISPOSITIONS.get(dials[-1].disposition, "failed")
    elif first.answer is not None:
        disposition = "ivr_hangup"  # answered by the dialplan, nobody dialled
    else:
        disposition = DISPOSITIONS.get(first.disposition, "no_answer")
    answered_at = min((leg.answer or leg.start for leg in answered), default=None)
    end = max(leg.end for leg in legs)
    return {
        "linkedid": linkedid, "pbx": pbx, "direction": direction,
        "caller_number": first.source or None, "called_number": first.destination or None,
        "queue": queue_leg.last_data.split(",", 1)[0] or None if queue_leg else None,
        "queue_outcome": "answered" if answered and queue_leg else None,
        "agent_name": None,
        "agent_interface": channel_base(answered[0].dest_channel)
        if answered and queue_leg else None,
        "ivr_path": None, "recording_file": None, "started_at": first.start,
        "answered_at": answered_at, "ended_at": end,
        "wait_seconds": (answered_at - first.start).total_seconds() if answered_at else 0.0,
        "talk_seconds": float(sum(leg.billsec for leg in answered)), "hold_seconds": 0.0,
        "disposition": disposition, "hangup_cause": None, "end_estimated": False,
        "start_estimated": False, "answer_estimated": queue_leg is not None and bool(answered),
        "backfilled": True,
    }


def _direction(legs: list[Leg], queued: bool, config: CallsConfig) -> str:
    """Inbound when a leg ran in an inbound context or queued (a transfer moves the CDR's
    context to the target's), internal between short extensions, else outbound."""
    if queued or any(fnmatchcase(leg.context, pattern) for leg in legs
                     for pattern in config.inbound_contexts):
        return "inbound"
    limit = config.extension_max_digits
    first = min(legs, key=lambda leg: leg.start)
    src, dst = first.source, first.destination
    if src.isdigit() and dst.isdigit() and len(src) <= limit and len(dst) <= limit:
        return "internal"
    return "outbound"


async def backfill_from_cdr(sessionmaker: async_sessionmaker[AsyncSession], path: Path, *,
                            pbx: str, config: CallsConfig | None = None,
                            since: datetime | None = None, until: datetime | None = None,
                            slack: float = 2.0) -> int:
    """Insert the calls of ``path`` that began at or after ``since`` and ended by ``until``
    (the outage; CDR times have whole seconds, hence ``slack``) and are not in the log yet.
    Returns how many rows were added."""
    config = config or CallsConfig()
    zone = ZoneInfo(config.cdr_timezone)
    rows = []
    for linkedid, legs in calls_from_legs(read_legs(path, zone)).items():
        row = call_row(linkedid, legs, pbx, config)
        if since is not None and row["started_at"] < since - timedelta(seconds=slack):
            continue
        if until is not None and row["ended_at"] > until + timedelta(seconds=slack):
            continue
        rows.append(row)
    if not rows:
        return 0
    async with sessionmaker() as session, session.begin():
        added = await _insert_new(session, rows)
    log.info("calls.backfilled pbx=%s file=%s candidates=%d added=%d", pbx, path.name,
             len(rows), added)
    return added


async def _insert_new(session: AsyncSession, rows: list[dict[str, Any]]) -> int:
    dialect = session.bind.dialect.name
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}.get(dialect)
    if insert is None:
        raise RuntimeError(f"call log back-fill is not implemented for {dialect}")
    added = 0
    for row in rows:  # one by one: the count of what was really new is the point
        stmt = insert(CallLog).values(**row).on_conflict_do_nothing(
            index_elements=["pbx", "linkedid"])
        result = await session.execute(stmt)
        added += result.rowcount or 0
    return added


class CdrBackfill:
    """Listener that back-fills, after each outage, the calls Asterisk handled meanwhile.

    An outage begins at the last Asterisk event seen before ``AmiDisconnected`` (Asterisk's
    own clock, like the CDR times) and ends at the resync that follows it. A service that
    starts anew has been away since the newest call it logged for this server. The file is
    read in a worker thread, the rows written in a task of their own: the AMI reader never
    waits. Rows the tracker writes for the same calls replace back-filled ones (its upsert),
    and back-filled rows never replace the tracker's (``DO NOTHING``)."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], config: CallsConfig,
                 *, pbx: str = "default") -> None:
        self._sessionmaker = sessionmaker
        self._config = config
        self._pbx = pbx
        self._last_at: datetime | None = None
        self._since: datetime | None = None
        self._first_resync = True
        self._tasks: set[asyncio.Task[int]] = set()
        self.added = 0

    def __call__(self, event: ev.DomainEvent) -> None:
        if isinstance(event, ev.ChannelEvent):
            self._last_at = event.at
        elif isinstance(event, ev.AmiDisconnected):
            self._since = self._since or self._last_at
        elif isinstance(event, ev.ChannelsSnapshot) and not event.periodic \
                and event.pbx == self._pbx and self._config.cdr_csv is not None:
            first, self._first_resync = self._first_resync, False
            since, self._since = self._since, None
            if since is not None or first:
                task = asyncio.create_task(self._run(since), name="cdr-backfill")
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _run(self, since: datetime | None) -> int:
        path = self._config.cdr_csv
        assert path is not None
        try:
            if since is None:
                since = await self._newest_logged()
                if since is None:
                    return 0  # an empty log: the history before the service is not ours
            if not path.exists():
                log.warning("calls.cdr_file_missing path=%s", path)
                return 0
            added = await backfill_from_cdr(self._sessionmaker, path, pbx=self._pbx,
                                            config=self._config, since=since)
        except Exception:  # a bad file or a database down must not stop the service
            log.exception("calls.backfill_failed pbx=%s", self._pbx)
            return 0
        self.added += added
        return added

    async def _newest_logged(self) -> datetime | None:
        query = select(func.max(CallLog.started_at)).where(CallLog.pbx == self._pbx)
        async with self._sessionmaker() as session:
            newest = (await session.execute(query)).scalar()
        return newest if newest is None or newest.tzinfo else newest.replace(tzinfo=UTC)

    async def start(self) -> None:
        """Nothing to prepare: the first resync starts the first back-fill."""

    async def wait_idle(self) -> None:
        """Until every back-fill started so far has finished (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
