"""The recordings feature's background loop: retries of files not yet taken over,
late attachments, and (every ``sweep_interval``) the integrity sweep and retention."""

from __future__ import annotations

import asyncio
import logging

from callcenter.feature import Runtime, Worker
from callcenter.recordings.integrity import Integrity
from callcenter.recordings.service import RecordingService, build

log = logging.getLogger(__name__)

POLL_SECONDS = 5.0


class RecordingsWorker:
    def __init__(self, service: RecordingService, poll: float = POLL_SECONDS) -> None:
        self.service = service
        self.integrity = Integrity(service)
        self.poll = poll
        self._last_sweep: float | None = None

    async def tick(self) -> None:
        """One round: due retries, pending attachments, and the sweep when it is due."""
        now = self.service.clock.now()
        for recording_id in await self.service.due_retries(now):
            await self.service.attempt(recording_id)
        await self.service.attach_pending()
        loop_time = asyncio.get_running_loop().time()
        if self._last_sweep is None or \
                loop_time - self._last_sweep >= self.service.config.sweep_interval:
            self._last_sweep = loop_time
            await self.integrity.sweep()
            await self.integrity.apply_retention(now)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.tick()
            except Exception:  # noqa: BLE001 - one bad round must not end the loop
                log.exception("recordings.worker_round_failed")
            try:
                await asyncio.wait_for(stop.wait(), self.poll)
            except TimeoutError:
                pass


def workers(runtime: Runtime) -> list[Worker]:
    service, _ = build(runtime)
    return [Worker("recordings", RecordingsWorker(service).run)]
