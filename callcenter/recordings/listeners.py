"""The recordings feature on the telephony listener: when a recorded channel hangs up, its
row is written and the first attempt to take its file over is made; when a click-to-call
ends, its contact record is completed first (so the recording's timeline entry carries the
outcome). Retries are the workers' loop's, driven by the row, so a restart loses none."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from callcenter.feature import Listener, Runtime
from callcenter.recordings.contact import LINKEDID_PREFIX, ContactCalls
from callcenter.recordings.service import RecordingService, build
from callcenter.telephony import events as ev

log = logging.getLogger(__name__)


@dataclass
class _Recorded:
    linkedid: str
    source: str


@dataclass
class _Contact:
    dial_status: str | None = None
    answered_at: datetime | None = None


class RecordingListener:
    """Follows MixMonitor files and click-to-call legs; the database work runs in tasks
    (a listener must not block), one task per hang-up so its steps stay in order."""

    def __init__(self, recordings: RecordingService, contacts: ContactCalls, pbx: str) -> None:
        self.recordings = recordings
        self.contacts = contacts
        self.pbx = pbx
        self._recorded: dict[str, _Recorded] = {}
        self._contacts: dict[str, _Contact] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=10)

    def __call__(self, event: Any) -> None:
        if isinstance(event, ev.RecordingStarted) and event.file:
            self._recorded[event.uniqueid] = _Recorded(event.linkedid, event.file)
        elif isinstance(event, ev.VariableSet) and event.name == "MIXMONITOR_FILENAME" \
                and event.value:
            self._recorded[event.uniqueid] = _Recorded(event.linkedid, event.value)
        elif isinstance(event, ev.DialEnded) and event.channel and \
                event.linkedid.startswith(LINKEDID_PREFIX):
            contact = self._contacts.setdefault(event.linkedid, _Contact())
            contact.dial_status = event.dial_status  # the citizen's leg: the second DialEnd
            if event.dial_status == "ANSWER":
                contact.answered_at = event.at
        elif isinstance(event, ev.ChannelHungUp):
            self._hung_up(event)

    def _hung_up(self, event: ev.ChannelHungUp) -> None:
        recorded = self._recorded.pop(event.uniqueid, None)
        contact = None
        if event.uniqueid == event.linkedid and event.linkedid.startswith(LINKEDID_PREFIX):
            contact = self._contacts.pop(event.linkedid, _Contact())
        if recorded is None and contact is None:
            return
        self._spawn(self._after_hangup(event, recorded, contact))

    async def _after_hangup(self, event: ev.ChannelHungUp, recorded: _Recorded | None,
                            contact: _Contact | None) -> None:
        try:
            if contact is not None:
                await self.contacts.finished(event.linkedid, dial_status=contact.dial_status,
                                             answered_at=contact.answered_at,
                                             ended_at=event.at)
            if recorded is not None:
                await self.recordings.call_ended(
                    pbx=self.pbx, linkedid=recorded.linkedid, uniqueid=event.uniqueid,
                    source=recorded.source, ended_at=event.at)
        except Exception:  # noqa: BLE001 - a row written is retried by the workers' loop
            log.exception("recordings.hangup_failed uniqueid=%s", event.uniqueid)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def listeners(runtime: Runtime) -> list[Listener]:
    service, contacts = build(runtime)
    return [RecordingListener(service, contacts, runtime.settings.ami.pbx)]
