"""Speech pipeline benchmark: the pipeline's cost over raw Vosk, and scaling with processes.

Usage: ``python bench/speech_bench.py [--reps 3] [--jobs 12] [--model DIR]``

1. Builds the audio from ``../shared/speech-samples``: a stereo MixMonitor call (agent
   greeting right, citizen left, as the simulator writes it) and a mono message.
2. Overhead, in one decoding process (a ``spawn`` process, as the workers run): for each
   file, alternately, raw Vosk (one new ``KaldiRecognizer`` per channel fed 4000-frame
   chunks, ``SetWords(True)``, results parsed, nothing more), raw Vosk feeding the
   previous file's recognizers again, and the pipeline's decode
   (``recognizer.transcribe_file``: chunked streaming, channel split, ``Transcript``) in
   one pass and with its digit and place passes; the median real-time factor of each and
   their ratios. Then the whole job path of one long-lived worker (bus job -> claim ->
   decode in its pool process -> transcript row stored -> ack; memory bus, SQLite), one
   job at a time, against raw Vosk on the same file in the same run.
3. Throughput: ``--jobs`` stored recordings through ``SpeechWorker`` with 1 and then 2
   decoding processes, after a first job on each process: audio seconds per wall second
   and the ratio.
Prints a Markdown section to paste into ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
import wave
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from callcenter.speech.config import SHARED_MODEL  # noqa: E402

SAMPLES = REPO.parent / "shared" / "speech-samples"


def build_audio(folder: Path) -> dict[str, Path]:
    from callcenter.simulator.wav import Segment, read_pcm, write_mixmonitor

    def pcm(name: str):  # noqa: ANN202
        path = SAMPLES / f"{name}.wav"
        if not path.is_file():
            sys.exit(f"missing speech sample {path}")
        return read_pcm(path)

    call = folder / "call.wav"
    write_mixmonitor(call, [Segment(pcm("a01"), 0.0, "agent"),
                            Segment(pcm("c01"), 6.0, "caller"),
                            Segment(pcm("a02"), 18.5, "agent"),
                            Segment(pcm("c04"), 26.5, "caller")], 35.5, stereo=True)
    message = folder / "message.wav"
    write_mixmonitor(message, [Segment(pcm("c01"), 0.0, "caller"),
                               Segment(pcm("c07"), 12.5, "caller")], 19.0, stereo=False)
    return {"stereo call": call, "mono message": message}


_KEPT: dict[tuple[int, int], list] = {}
"""Raw Vosk's recognizers kept between files (the ``reuse`` reference)."""


def raw_vosk(path: str, model_dir: str, reuse: bool = False) -> tuple[float, float]:
    """Raw Vosk decoding of ``path``: (audio seconds, decode seconds). ``reuse``: the
    recognizers of the previous file of that rate are fed again (after their final result)
    instead of new ones, as Vosk's examples make."""
    import numpy as np
    import vosk

    from callcenter.speech.recognizer import load_model

    model = load_model(Path(model_dir))
    started = time.perf_counter()
    with wave.open(path, "rb") as audio:
        rate, channels = audio.getframerate(), audio.getnchannels()
        recognizers = _KEPT.get((rate, channels)) if reuse else None
        if recognizers is None:
            recognizers = [vosk.KaldiRecognizer(model, rate) for _ in range(channels)]
            for recognizer in recognizers:
                recognizer.SetWords(True)
            if reuse:
                _KEPT[(rate, channels)] = recognizers
        frames = 0
        while data := audio.readframes(4000):
            frames += len(data) // (2 * channels)
            if channels == 1:
                if recognizers[0].AcceptWaveform(data):
                    json.loads(recognizers[0].Result())
                continue
            samples = np.frombuffer(data, dtype="<i2").reshape(-1, channels)
            for c, recognizer in enumerate(recognizers):
                if recognizer.AcceptWaveform(samples[:, c].tobytes()):
                    json.loads(recognizer.Result())
        for recognizer in recognizers:
            json.loads(recognizer.FinalResult())
    return frames / rate, time.perf_counter() - started


def pipeline_decode(path: str, model_dir: str, passes: bool) -> tuple[float, float]:
    """The pipeline's decode: one pass (the same work as raw Vosk), or with the digit and
    place passes (the default)."""
    from callcenter.speech.recognizer import load_model, transcribe_file

    load_model(Path(model_dir))
    started = time.perf_counter()
    decoded = transcribe_file(path, model_dir, "zh", 4000, passes, passes)
    return decoded.audio_seconds, time.perf_counter() - started


def warm(model_dir: str) -> None:
    from callcenter.speech.recognizer import load_model

    load_model(Path(model_dir))


def overhead(files: dict[str, Path], model_dir: Path, reps: int) -> list[str]:
    rows = []
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as one:
        one.submit(warm, str(model_dir)).result()
        for label, path in files.items():
            runs: dict[str, list[float]] = {"raw": [], "kept": [], "ours": [], "digits": []}
            calls = {"raw": (raw_vosk, False), "kept": (raw_vosk, True),
                     "ours": (pipeline_decode, False), "digits": (pipeline_decode, True)}
            for _ in range(reps + 1):  # the first round warms what each path keeps
                for name, (decode, flag) in calls.items():
                    seconds, spent = one.submit(decode, str(path), str(model_dir), flag).result()
                    runs[name].append(spent / seconds)
            r, k, p, d = (statistics.median(runs[name][1:]) for name in runs)
            for measured, rtf in (("decode", p), ("decode + digit and place passes", d)):
                rows.append(f"| {label} ({seconds:.1f} s) | {measured} | {r:.3f} | {k:.3f} | "
                            f"{rtf:.3f} | {(rtf / r - 1) * 100:+.1f} % | "
                            f"{(rtf / k - 1) * 100:+.1f} % |")
            print(f"  {label}: raw RTF {r:.3f} (recognizer kept {k:.3f}), pipeline decode RTF "
                  f"{p:.3f}, with the passes {d:.3f}", file=sys.stderr)
    return rows


async def worker_rig(folder: Path, processes: int, model_dir: Path,  # noqa: ANN201
                     digit_pass: bool):
    from callcenter.bus.memory import MemoryBus
    from callcenter.clock import SystemClock
    from callcenter.recordings.config import RecordingsConfig
    from callcenter.speech.config import SpeechConfig
    from callcenter.speech.drafting import Drafting
    from callcenter.speech.pool import DecoderPool
    from callcenter.speech.service import SpeechService
    from callcenter.speech.workers import SpeechWorker
    from callcenter.store.engine import create_engine, create_sessionmaker
    from callcenter.store.models import Base
    from callcenter.tickets.config import TicketsConfig
    from callcenter.tickets.service import TicketService

    engine = create_engine(f"sqlite+aiosqlite:///{folder / f'bench{processes}.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    sessionmaker = create_sessionmaker(engine)
    bus = MemoryBus()
    await bus.start()
    clock = SystemClock()
    config = SpeechConfig(models={"zh": model_dir}, pool_size=processes,
                          sweep_interval=3600.0)
    recordings = RecordingsConfig(store_dir=folder / f"store{processes}", monitor_dir=folder)
    service = SpeechService(sessionmaker, clock, config, recordings, bus)
    tickets = TicketService.from_config(sessionmaker, clock, TicketsConfig())
    pool = DecoderPool(processes, config.chunk_frames, digit_pass, [model_dir])
    await asyncio.gather(*(asyncio.get_running_loop().run_in_executor(
        pool._pool(), warm, str(model_dir)) for _ in range(processes * 2)))
    return service, SpeechWorker(service, Drafting(service, tickets), pool, "bench"), engine


async def timed_jobs(folder: Path, processes: int, model_dir: Path,
                     batches: list[list[Path]], digit_pass: bool = True
                     ) -> list[tuple[float, float]]:
    """One worker for every batch, one batch after another: (wall s, audio s) of each, from
    its first job queued to its last transcript stored."""
    from callcenter.speech.service import TRANSCRIPT_READY

    service, worker, engine = await worker_rig(folder, processes, model_dir, digit_pass)
    stop = asyncio.Event()
    timings = []
    async with service.bus.subscribe(TRANSCRIPT_READY) as ready:
        task = asyncio.create_task(worker.run(stop))
        for batch in batches:
            started = time.perf_counter()
            for path in batch:
                await service.request(path.name, purpose=f"bench-{path.stem}")
            audio = 0.0
            for _ in batch:
                _, event = await ready.get(timeout=3600)
                audio += event["audio_seconds"]
            timings.append((time.perf_counter() - started, audio))
    stop.set()
    await task
    await service.bus.close()
    await engine.dispose()
    return timings


def job_overhead(folder: Path, path: Path, model_dir: Path, reps: int) -> str:
    """One long-lived worker, one job at a time (the first warms it, as a worker's first
    job does once), against raw Vosk on the same file; the decoding is the same work but
    for the place pass (on in a worker: one 1.9 s stretch of this call), no digit pass."""
    raw, kept = [], []
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as one:
        one.submit(warm, str(model_dir)).result()
        for _ in range(reps + 1):
            seconds, spent = one.submit(raw_vosk, str(path), str(model_dir)).result()
            raw.append(spent / seconds)
            seconds, spent = one.submit(raw_vosk, str(path), str(model_dir), True).result()
            kept.append(spent / seconds)
    copies = []
    for rep in range(reps + 1):
        copy = folder / f"job-{rep}.wav"
        copy.write_bytes(path.read_bytes())
        copies.append([copy])
    timings = asyncio.run(timed_jobs(folder, 1, model_dir, copies, False))
    r, k = statistics.median(raw[1:]), statistics.median(kept[1:])
    p = statistics.median(wall / audio for wall, audio in timings[1:])
    print(f"  job path: raw RTF {r:.3f} (recognizer kept {k:.3f}), worker job RTF {p:.3f} "
          f"(its first job {timings[0][0] / timings[0][1]:.3f})", file=sys.stderr)
    return (f"| stereo call ({seconds:.1f} s) | whole job (claim, decode, store, ack) | "
            f"{r:.3f} | {k:.3f} | {p:.3f} | {(p / r - 1) * 100:+.1f} % | "
            f"{(p / k - 1) * 100:+.1f} % |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=12)
    parser.add_argument("--model", type=Path, default=SHARED_MODEL)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="speech-bench-") as tmp:
        folder = Path(tmp)
        files = build_audio(folder)
        print("overhead (decode)...", file=sys.stderr)
        rows = overhead(files, args.model, args.reps)
        print("overhead (whole job)...", file=sys.stderr)
        rows.append(job_overhead(folder, files["stereo call"], args.model, args.reps))
        jobs = []
        for i in range(args.jobs):
            copy = folder / f"message-{i}.wav"
            copy.write_bytes(files["mono message"].read_bytes())
            jobs.append(copy)
        rates = {}
        for processes in (1, 2):
            print(f"throughput with {processes} process(es)...", file=sys.stderr)
            # a first batch of one job per process warms each one (its first job builds the
            # decoding graph, once in the life of a worker), then the measured batch
            (_, _), (wall, audio) = asyncio.run(timed_jobs(
                folder, processes, args.model, [jobs[:processes], jobs[processes:]]))
            rates[processes] = audio / wall
            print(f"  {audio:.0f} s audio in {wall:.1f} s: {rates[processes]:.2f}x real time",
                  file=sys.stderr)
    load = os.getloadavg()
    print(f"### Speech pipeline ({datetime.now(UTC):%Y-%m-%d}, {platform.machine()}, "
          f"{os.cpu_count()} cores, load {load[0]:.1f} at the end)\n")
    print("| audio | measured | raw Vosk RTF | raw Vosk, recognizer kept | pipeline RTF | "
          "overhead | over the kept one |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print(f"\n| worker processes | audio s / wall s | speed-up |\n|---|---|---|\n"
          f"| 1 | {rates[1]:.2f} | 1.00× |\n| 2 | {rates[2]:.2f} | "
          f"{rates[2] / rates[1]:.2f}× |")
    print(f"\nThroughput: {len(jobs)} jobs of {audio / (len(jobs) - 2):.1f} s mono audio, "
          "the first on each process not counted (it builds the decoding graph, once in a "
          "worker's life); digit and place passes on, as configured by default. RTFs: "
          f"medians of {args.reps} interleaved runs after one round that warms each path.")

if __name__ == "__main__":
    main()
