"""The decoding processes of one worker: Vosk is CPU-bound, so each decode runs in a
process of its own (one core each), and the event loop only waits for the result.

Processes are started with ``spawn`` (a clean interpreter, not a fork of a process holding
database connections and threads); each loads its models when it starts and keeps them. A
process that dies (killed, out of memory) breaks the pool: the decode fails with a clear
reason, the pool is rebuilt, and the job is retried like any failed attempt.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from callcenter.speech.errors import TranscriptionError
from callcenter.speech.recognizer import Decoded, prepare, transcribe_file

log = logging.getLogger(__name__)


class DecoderPool:
    def __init__(self, processes: int, chunk_frames: int, digit_pass: bool = True,
                 models: Iterable[Path] = ()) -> None:
        self.processes = processes
        self.chunk_frames = chunk_frames
        self.digit_pass = digit_pass
        self.models = tuple(str(model) for model in models)
        """Loaded by each process when it starts, not by its first job."""
        self._executor: ProcessPoolExecutor | None = None

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            self._executor = ProcessPoolExecutor(
                self.processes, mp_context=multiprocessing.get_context("spawn"),
                initializer=prepare, initargs=(self.models,))
        return self._executor

    async def transcribe(self, path: Path, model_dir: Path, language: str) -> Decoded:
        """Decode in a pool process; ``TranscriptionError`` says why it could not be done."""
        executor = self._pool()
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(executor, transcribe_file, str(path),
                                              str(model_dir), language, self.chunk_frames,
                                              self.digit_pass)
        except BrokenProcessPool as exc:
            self._discard(executor)
            raise TranscriptionError("the decoding process died") from exc

    def _discard(self, executor: ProcessPoolExecutor) -> None:
        if self._executor is executor:
            log.warning("speech.pool_broken processes=%d: starting new ones", self.processes)
            self._executor = None
            executor.shutdown(wait=False, cancel_futures=True)

    async def close(self) -> None:
        """Stop now: a decode in progress is abandoned rather than holding up the service's
        stop for as long as the recording lasts (its job is not acknowledged, so it is done
        again once the claim's lease runs out)."""
        executor, self._executor = self._executor, None
        if executor is not None:
            for process in list(executor._processes.values()):  # noqa: SLF001 - no public way
                process.terminate()
            await asyncio.to_thread(executor.shutdown, True, cancel_futures=True)
