"""The speech worker: consumers take transcription jobs from the bus and decode them in
the pool's processes (one consumer per process), and a watcher queues every stored call
recording (at once on ``recording.stored``, and by a periodic sweep for what a restart or
a lost event missed). A call's transcript and draft then go to the desk of the agents who
talked on it (``DeskDrafts``): once, by the worker that stored them.

A job is acknowledged only once its outcome is on the row: stored, failed for good, or
queued again with a fresh job. A consumer that dies leaves its job unacknowledged: the bus
delivers it again and the expired lease lets the next worker claim it. ``callcenter worker
stt`` runs this alone, on any machine that reaches Redis, the database and the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from typing import Any

from callcenter.bus.base import Job
from callcenter.feature import Runtime, Worker
from callcenter.recordings.models import Recording
from callcenter.recordings.service import STORED_TOPIC
from callcenter.speech.drafting import DeskDrafts, Drafting
from callcenter.speech.errors import NothingToTranscribe, TranscriptionError
from callcenter.speech.models import SpeechTranscript
from callcenter.speech.pool import DecoderPool
from callcenter.speech.recognizer import model_problem
from callcenter.speech.service import GROUP, QUEUE, SpeechService, build

log = logging.getLogger(__name__)


class SpeechWorker:
    def __init__(self, service: SpeechService, drafting: Drafting, pool: DecoderPool,
                 name: str | None = None, desk: DeskDrafts | None = None) -> None:
        self.service = service
        self.drafting = drafting
        self.pool = pool
        self.desk = desk
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        self.bus = service.bus

    async def run(self, stop: asyncio.Event) -> None:
        """Consume and watch until ``stop``; a decode under way is abandoned (its lease
        runs out and another worker takes the job)."""
        tasks = [asyncio.create_task(self._consume(f"{self.name}-{i}"))
                 for i in range(self.pool.processes)]
        tasks.append(asyncio.create_task(self._watch()))
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.pool.close()

    async def _consume(self, consumer: str) -> None:
        while True:
            try:
                job = await self.bus.fetch(QUEUE, GROUP, consumer, timeout=1.0)
            except Exception as exc:  # noqa: BLE001 - the bus comes back; jobs wait there
                log.warning("speech.fetch_failed consumer=%s error=%r", consumer, exc)
                await asyncio.sleep(1.0)
                continue
            if job is None:
                continue
            try:
                done = await self.handle(job, consumer)
            except Exception:  # noqa: BLE001 - unacknowledged: delivered again later
                log.exception("speech.job_failed job=%s", job.id)
                if _stopping():  # a cancel the database driver turned into its own error
                    raise
                continue
            if done:
                await self.bus.ack(job, GROUP)

    async def handle(self, job: Job, consumer: str) -> bool:
        """Work on one job; True when it may be acknowledged."""
        transcript_id = await self.service.from_job(job.payload)
        if transcript_id is None:
            return True
        claim = await self.service.claim(transcript_id, consumer)
        if claim.outcome != "claimed":
            return claim.outcome == "settled"  # busy: another holds it; leave the job
        assert claim.row is not None
        await self.transcribe(claim.row)
        return True

    async def transcribe(self, row: SpeechTranscript) -> None:
        """Decode a claimed row and settle it: stored (then drafted) or a counted failure."""
        model_dir = self.service.model_dir(row.language)
        problem = model_problem(model_dir)
        if problem is not None:
            await self.service.fail(row, problem, final=True)
            return
        assert model_dir is not None
        beating = asyncio.create_task(self._heartbeat(row))
        try:
            decoded = await self.pool.transcribe(self.service.audio_path(row), model_dir,
                                                 row.language)
        except TranscriptionError as exc:
            await self.service.fail(row, str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - counted like any failed attempt
            log.exception("speech.decode_crashed transcript=%s", row.id)
            await self.service.fail(row, f"unexpected error: {exc!r}")
            return
        finally:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating
        if await self.service.store(row, decoded):
            await self.drafting.suggest(row.id)
            await self._hand_over(row.id)

    async def _hand_over(self, transcript_id: int) -> None:
        if self.desk is None:
            return
        try:
            await self.desk.hand_over(transcript_id)
        except Exception:  # noqa: BLE001 - the desk reads it later: GET of the call's draft
            log.exception("speech.desk_failed transcript=%s", transcript_id)

    async def _heartbeat(self, row: SpeechTranscript) -> None:
        while True:
            await asyncio.sleep(self.service.config.lease_seconds / 3)
            try:
                if not await self.service.heartbeat(row):
                    return
            except Exception as exc:  # noqa: BLE001 - the next beat may get through
                log.warning("speech.heartbeat_failed transcript=%s error=%r", row.id, exc)

    async def _watch(self) -> None:
        """Queue stored call recordings: on their event, and by sweep every interval."""
        interval = self.service.config.sweep_interval
        loop = asyncio.get_running_loop()
        async with self.bus.subscribe(STORED_TOPIC) as stored:
            while True:
                await self._sweep()
                until = loop.time() + interval
                while (left := until - loop.time()) > 0:
                    try:
                        _, event = await stored.get(timeout=left)
                    except TimeoutError:
                        break
                    await self._stored(event)

    async def _sweep(self) -> None:
        try:
            await self.service.sweep()
        except Exception:  # noqa: BLE001 - the next sweep tries again
            log.exception("speech.sweep_failed")

    async def _stored(self, event: dict[str, Any]) -> None:
        if not self.service.config.transcribe_calls:
            return
        try:
            async with self.service.sessionmaker() as session:
                recording = await session.get(Recording, int(event["recording_id"]))
            if recording is not None:
                await self.service.request_recording(recording)
        except NothingToTranscribe:
            return
        except Exception:  # noqa: BLE001 - the sweep queues it
            log.exception("speech.queue_failed recording=%s", event.get("recording_id"))


def _stopping() -> bool:
    """Is this task being cancelled (the worker stopping)? SQLAlchemy can turn a cancel in
    the middle of a transaction into ``PendingRollbackError``: the loop must still end."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def speech_worker(runtime: Runtime) -> SpeechWorker:
    """The worker of one process, its pool released when the service stops."""
    from callcenter.auth.config import AuthConfig
    from callcenter.auth.privacy import PiiPolicy
    from callcenter.tickets.service import TicketService

    settings = runtime.settings
    service = build(runtime)
    tickets = TicketService.from_config(runtime.sessionmaker, runtime.clock, settings.tickets)
    speech = settings.speech
    pool = DecoderPool(speech.processes, speech.chunk_frames, speech.digit_pass,
                       speech.models.values())
    runtime.on_stop(pool.close)
    desk = DeskDrafts(service, PiiPolicy(getattr(settings, "auth", None) or AuthConfig()))
    return SpeechWorker(service, Drafting(service, tickets), pool, desk=desk)


def workers(runtime: Runtime) -> list[Worker]:
    return [Worker("speech", speech_worker(runtime).run)]


async def run_standalone(settings: Any, stop: asyncio.Event) -> None:
    """``callcenter worker stt``: this process is only a speech worker (its own database
    pool and bus connection), until ``stop``."""
    from callcenter.bus.factory import create_bus
    from callcenter.clock import SystemClock
    from callcenter.store.engine import create_sessionmaker, engine_from_settings

    engine = engine_from_settings(settings.database)
    bus = create_bus(settings, "stt")
    await bus.start()
    runtime = Runtime(settings, create_sessionmaker(engine), bus, SystemClock())
    try:
        await speech_worker(runtime).run(stop)
    finally:
        for release in reversed(runtime.stops):
            await release()
        await bus.close()
        await engine.dispose()
