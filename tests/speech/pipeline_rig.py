"""The speech pipeline's test rig: the shared samples and model (a missing one fails
clearly), stereo MixMonitor files built from the samples as the simulator builds them,
one decoding process for the whole session (the model loads once), and a pipeline on a
real database and the in-process bus.

Test modules import the fixtures they use from here.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.bus.memory import MemoryBus
from callcenter.clock import Clock, SystemClock
from callcenter.recordings.config import RecordingsConfig
from callcenter.recordings.models import Recording
from callcenter.recordings.store import LocalStore, key_for
from callcenter.simulator.wav import Segment, read_pcm, write_mixmonitor
from callcenter.speech.config import SpeechConfig
from callcenter.speech.drafting import Drafting
from callcenter.speech.pool import DecoderPool
from callcenter.speech.service import SpeechService
from callcenter.speech.workers import SpeechWorker
from callcenter.tickets.config import TicketsConfig
from callcenter.tickets.service import TicketService
from tests.conftest import SPEECH_SAMPLES, VOSK_MODEL


def sample(name: str) -> Path:
    """A sample of ``../shared/speech-samples`` (an error naming the folder if missing)."""
    path = SPEECH_SAMPLES / f"{name}.wav"
    if not path.is_file():
        raise RuntimeError(f"speech sample {path} is missing: the speech tests need "
                           "../shared/speech-samples (set CALLCENTER_SHARED)")
    return path


def model_dir() -> Path:
    if not (VOSK_MODEL / "am" / "final.mdl").is_file():
        raise RuntimeError(f"Vosk model {VOSK_MODEL} is missing: the speech tests need "
                           "../shared/models/vosk-model-small-cn-0.22 (see its README)")
    return VOSK_MODEL


def stereo_call(path: Path, caller: list[tuple[str, float]], agent: list[tuple[str, float]],
                duration: float) -> Path:
    """A MixMonitor file with the ``D`` option: ``(sample, start second)`` per leg, the
    caller left and the agent right, exactly as the simulator writes one."""
    segments = [Segment(read_pcm(sample(name)), start, "caller") for name, start in caller]
    segments += [Segment(read_pcm(sample(name)), start, "agent") for name, start in agent]
    write_mixmonitor(path, segments, duration, stereo=True)
    return path


@pytest.fixture(scope="session")
def decoder_pool() -> Iterator[DecoderPool]:
    """One decoding process for the session: its model is loaded once."""
    model_dir()
    pool = DecoderPool(1, 4000)
    yield pool
    executor = pool._executor
    if executor is not None:
        executor.shutdown(wait=True, cancel_futures=True)


class SharedPool(DecoderPool):
    """The session's pool, lent to one worker: closing the worker leaves it running."""

    def __init__(self, pool: DecoderPool) -> None:
        super().__init__(pool.processes, pool.chunk_frames)
        self._shared = pool

    async def transcribe(self, path: Path, model_dir: Path, language: str) -> Any:
        return await self._shared.transcribe(path, model_dir, language)

    async def close(self) -> None:
        return None


@dataclass
class Pipeline:
    service: SpeechService
    worker: SpeechWorker
    bus: MemoryBus
    sessionmaker: async_sessionmaker[AsyncSession]
    tickets: TicketService
    store: LocalStore
    monitor_dir: Path

    async def stored_recording(self, source: Path, linkedid: str) -> Recording:
        """A recording the recordings feature has filed: its row and its stored file."""
        ended = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
        async with self.sessionmaker(expire_on_commit=False) as session, session.begin():
            row = Recording(pbx="sim", linkedid=linkedid, uniqueid=f"{linkedid}.1",
                            source=source.name, status="pending", attempts=1, ended_at=ended)
            session.add(row)
            await session.flush()
            stored = self.store.put(key_for(row.id, ended), source)
            row.status, row.store_key, row.sha256 = "stored", stored.key, stored.sha256
        return row

    def message(self, name: str, source: Path) -> str:
        """An after-hours message as the IVR leaves it in the monitor folder."""
        shutil.copyfile(source, self.monitor_dir / name)
        return name


def speech_config(**overrides: Any) -> SpeechConfig:
    values: dict[str, Any] = {"models": {"zh": model_dir()}, "pool_size": 1,
                              "sweep_interval": 3600.0}
    values.update(overrides)
    return SpeechConfig(**values)


async def make_pipeline(sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path,
                        pool: DecoderPool, config: SpeechConfig,
                        clock: Clock | None = None) -> Pipeline:
    recordings = RecordingsConfig(store_dir=tmp_path / "store", monitor_dir=tmp_path / "mon")
    recordings.monitor_dir.mkdir(parents=True, exist_ok=True)
    bus = MemoryBus()
    await bus.start()
    clock = clock or SystemClock()
    service = SpeechService(sessionmaker, clock, config, recordings, bus)
    tickets = TicketService.from_config(sessionmaker, clock, TicketsConfig())
    worker = SpeechWorker(service, Drafting(service, tickets), SharedPool(pool), "test")
    return Pipeline(service, worker, bus, sessionmaker, tickets,
                    LocalStore(recordings.store_dir), recordings.monitor_dir)


@pytest.fixture
async def pipeline(sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path,
                   decoder_pool: DecoderPool) -> AsyncIterator[Pipeline]:
    rig = await make_pipeline(sessionmaker, tmp_path, decoder_pool, speech_config())
    yield rig
    await rig.bus.close()
