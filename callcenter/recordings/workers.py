"""The recordings feature's background loop: the one owner of retries of files not yet taken
over, late attachments and flags, and (every ``sweep_interval``) the integrity sweep and
retention.

Retries are driven by the rows (``attempts``, ``next_attempt_at``), so a restart loses none.
The loop sleeps until the earliest retry is due (at most ``poll`` seconds) and wakes early on
a ``recording.alert``: a failed first attempt at the hang-up is retried after its configured
delay, even from another process, not at the next poll.
"""

from __future__ import annotations

import asyncio
import logging

from callcenter.bus.base import Subscription
from callcenter.feature import Runtime, Worker
from callcenter.recordings.integrity import Integrity
from callcenter.recordings.service import ALERT_TOPIC, RecordingService, build

log = logging.getLogger(__name__)

POLL_SECONDS = 5.0


class RecordingsWorker:
    def __init__(self, service: RecordingService, poll: float = POLL_SECONDS) -> None:
        self.service = service
        self.integrity = Integrity(service)
        self.poll = poll
        self._last_sweep: float | None = None

    async def tick(self) -> None:
        """One round: due retries, pending attachments and flags, and the sweep when due."""
        now = self.service.clock.now()
        for recording_id in await self.service.due_retries(now):
            try:
                await self.service.attempt(recording_id)
            except Exception:  # noqa: BLE001 - its lease expires and it is tried again
                log.exception("recordings.retry_failed recording=%s", recording_id)
        await self.service.attach_pending()
        await self.service.flag_late_losses()
        loop_time = asyncio.get_running_loop().time()
        if self._last_sweep is None or \
                loop_time - self._last_sweep >= self.service.config.sweep_interval:
            self._last_sweep = loop_time
            await self.integrity.sweep()
            await self.integrity.apply_retention(now)

    async def seconds_to_next(self) -> float:
        """Seconds until the earliest retry is due, at most ``poll``."""
        due = await self.service.next_retry_at()
        if due is None:
            return self.poll
        wait = (due - self.service.clock.now()).total_seconds()
        return min(self.poll, max(0.0, wait))

    async def run(self, stop: asyncio.Event) -> None:
        bus = self.service.bus
        alerts = await bus.subscribe(ALERT_TOPIC).open() if bus is not None else None
        try:
            while not stop.is_set():
                try:
                    await self.tick()
                    wait = await self.seconds_to_next()
                except Exception:  # noqa: BLE001 - one bad round must not end the loop
                    log.exception("recordings.worker_round_failed")
                    wait = self.poll
                if not await self._pause(stop, alerts, wait):
                    alerts = None  # the subscription ended (the bus closed): poll only
        finally:
            if alerts is not None:
                await alerts.close()

    @staticmethod
    async def _pause(stop: asyncio.Event, alerts: Subscription | None, wait: float) -> bool:
        """Until ``wait`` has passed, the service stops, or an alert says a retry may be
        due. False when the alerts' subscription has ended."""
        stopped = asyncio.ensure_future(stop.wait())
        alerted = asyncio.ensure_future(alerts.get()) if alerts is not None else None
        waiters = {stopped} if alerted is None else {stopped, alerted}
        _, pending = await asyncio.wait(waiters, timeout=wait,
                                        return_when=asyncio.FIRST_COMPLETED)
        for waiter in pending:
            waiter.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if alerted is None:
            return False
        return not (alerted.done() and not alerted.cancelled()
                    and alerted.exception() is not None)

def workers(runtime: Runtime) -> list[Worker]:
    service, _ = build(runtime)
    return [Worker("recordings", RecordingsWorker(service).run)]
