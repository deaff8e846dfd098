"""A speech worker killed mid-job (SIGKILL: no clean-up at all) on the production parts —
``callcenter worker stt`` processes, Redis streams, PostgreSQL: another worker takes the
job over once the bus redelivers it and the dead claim's lease has run out, and the
transcript is stored once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.bus.redis import RedisBus
from callcenter.clock import SystemClock
from callcenter.recordings.config import RecordingsConfig
from callcenter.recordings.store import LocalStore
from callcenter.speech.models import SpeechTranscript
from callcenter.speech.service import GROUP, QUEUE, TRANSCRIPT_READY, SpeechService
from callcenter.store.engine import create_engine, create_sessionmaker
from callcenter.store.models import Base
from tests.conftest import REPO
from tests.speech.pipeline_rig import Pipeline, model_dir, sample, speech_config

START_TIMEOUT = 90.0


@pytest.fixture
def workers() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def start_worker(env: dict[str, str], started: list[subprocess.Popen[bytes]]
                 ) -> subprocess.Popen[bytes]:
    process = subprocess.Popen([sys.executable, "-m", "callcenter", "worker", "stt"],
                               cwd=REPO, env={**os.environ, **env}, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started.append(process)
    return process


async def acknowledged(redis_url: str, stream: str, within: float = 30.0) -> bool:
    """Whether the job is acknowledged (right after the draft step that follows the
    stored transcript); Redis has no event for an acknowledgement, so it is polled."""
    client = redis.Redis.from_url(redis_url)
    try:
        loop = asyncio.get_running_loop()
        give_up = loop.time() + within
        while client.xpending(stream, GROUP)["pending"]:
            if loop.time() > give_up:
                return False
            await asyncio.sleep(0.1)
        return True
    finally:
        client.close()


async def state(sessionmaker: async_sessionmaker[AsyncSession]) -> SpeechTranscript | None:
    async with sessionmaker() as session:
        return await session.scalar(select(SpeechTranscript))


async def test_a_worker_killed_mid_job_is_replaced_and_the_transcript_stored_once(
        pg_url: str, redis_url: str, redis_prefix: str, tmp_path: Path,
        workers: list[subprocess.Popen[bytes]]) -> None:
    engine = create_engine(pg_url)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    sessionmaker = create_sessionmaker(engine)
    recordings = RecordingsConfig(store_dir=tmp_path / "store", monitor_dir=tmp_path / "mon")
    bus = RedisBus(redis_url, redis_prefix, redelivery_timeout=2.0)
    await bus.start()
    service = SpeechService(sessionmaker, SystemClock(), speech_config(), recordings, bus)
    rig = Pipeline(service, None, bus, sessionmaker, None,  # type: ignore[arg-type]
                   LocalStore(recordings.store_dir), recordings.monitor_dir)
    recording = await rig.stored_recording(sample("c01"), "1700000000.21")
    env = {"CALLCENTER_DATABASE__URL": pg_url, "CALLCENTER_BUS__BACKEND": "redis",
           "CALLCENTER_BUS__REDIS_URL": redis_url, "CALLCENTER_BUS__REDIS_PREFIX": redis_prefix,
           "CALLCENTER_BUS__REDELIVERY_TIMEOUT": "2", "CALLCENTER_SPEECH__LEASE_SECONDS": "3",
           "CALLCENTER_SPEECH__POOL_SIZE": "1", "CALLCENTER_SPEECH__SWEEP_INTERVAL": "3600",
           "CALLCENTER_SPEECH__MODELS__ZH": str(model_dir()),
           "CALLCENTER_RECORDINGS__STORE_DIR": str(recordings.store_dir),
           "CALLCENTER_AUTH__TOKEN_SECRET": "speech-crash-test-" + "x" * 40}
    first = start_worker(env, workers)
    try:
        async with bus.subscribe(TRANSCRIPT_READY) as ready:
            await service.request_recording(recording)
            loop = asyncio.get_running_loop()
            give_up = loop.time() + START_TIMEOUT
            while (row := await state(sessionmaker)) is None or row.status != "running":
                assert loop.time() < give_up, "the first worker never claimed the job"
                assert first.poll() is None, "the first worker exited"
                await asyncio.sleep(0.1)
            assert f"-{first.pid}-" in (row.worker or "")
            os.killpg(first.pid, signal.SIGKILL)  # the worker and its decoding process
            first.wait(10)
            assert (await state(sessionmaker)).status == "running"  # the dead claim stays
            second = start_worker(env, workers)
            _, event = await ready.get(timeout=START_TIMEOUT + 60)
        row = await state(sessionmaker)
        assert (row.status, row.attempts, row.error) == ("done", 2, None)
        assert f"-{second.pid}-" in row.worker and event["transcript_id"] == row.id
        assert "投诉" in "".join(s["text"].replace(" ", "") for s in row.content["segments"])
        async with sessionmaker() as session:
            assert await session.scalar(select(func.count()).select_from(
                SpeechTranscript)) == 1
        assert await acknowledged(redis_url, f"{redis_prefix}jobs:{QUEUE}")
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0
    finally:
        await bus.close()
        await engine.dispose()
