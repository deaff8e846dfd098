"""``callcenter transcribe FILE_OR_DIR...``: transcribe WAV files outside the service, in
the same decoding processes the workers use, with a progress bar and an ETA weighted by
audio length. Each file gets ``<name>.json`` (the ``Transcript``) and ``<name>.txt`` (one
line per segment: time, speaker, words) beside it or in ``--out``. A file that cannot be
transcribed is reported and skipped; the others are still done.
"""

from __future__ import annotations

import asyncio
import json
import wave
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from callcenter.speech.errors import TranscriptionError
from callcenter.speech.pool import DecoderPool
from callcenter.speech.recognizer import Decoded, model_problem
from callcenter.speech.transcript import Transcript


@dataclass(frozen=True)
class Outcome:
    source: Path
    outputs: tuple[Path, ...] = ()
    error: str | None = None


def wav_files(inputs: Iterable[Path]) -> list[Path]:
    """The WAV files named, and those under the folders named (sorted, no duplicates)."""
    found: dict[Path, None] = {}
    for item in inputs:
        if item.is_dir():
            found.update((p, None) for p in sorted(item.rglob("*"))
                         if p.is_file() and p.suffix.lower() == ".wav")
        else:
            found[item] = None
    return list(found)


def audio_seconds(path: Path) -> float:
    """The file's length from its header (0 for what is not a WAV: it fails later)."""
    try:
        with wave.open(str(path), "rb") as audio:
            return audio.getnframes() / (audio.getframerate() or 1)
    except (wave.Error, EOFError, OSError):
        return 0.0


def as_text(transcript: Transcript) -> str:
    lines = [f"[{s.start:7.2f}-{s.end:7.2f}] {s.speaker}: {s.text}"
             for s in transcript.segments]
    return "\n".join(lines) + ("\n" if lines else "")


def write_outputs(source: Path, decoded: Decoded, out_dir: Path | None) -> tuple[Path, ...]:
    folder = out_dir or source.parent
    folder.mkdir(parents=True, exist_ok=True)
    json_path, text_path = folder / f"{source.stem}.json", folder / f"{source.stem}.txt"
    json_path.write_text(json.dumps(decoded.transcript, ensure_ascii=False, indent=1),
                         encoding="utf-8")
    text_path.write_text(as_text(Transcript.from_json(decoded.transcript)), encoding="utf-8")
    return json_path, text_path


async def transcribe_all(files: list[Path], model_dir: Path, language: str, *,
                         processes: int, chunk_frames: int, out_dir: Path | None,
                         digit_pass: bool = True,
                         progress: Callable[[float], None] = lambda _: None) -> list[Outcome]:
    """Transcribe ``files`` on ``processes`` processes; ``progress`` gets each file's
    audio seconds when it is done."""
    problem = model_problem(model_dir)
    if problem:
        raise TranscriptionError(problem)
    pool = DecoderPool(processes, chunk_frames, digit_pass, [model_dir])
    slots = asyncio.Semaphore(processes)

    async def one(path: Path) -> Outcome:
        async with slots:
            try:
                decoded = await pool.transcribe(path, model_dir, language)
                return Outcome(path, write_outputs(path, decoded, out_dir))
            except (TranscriptionError, OSError) as exc:
                return Outcome(path, error=str(exc))
            finally:
                progress(audio_seconds(path))

    try:
        return list(await asyncio.gather(*(one(path) for path in files)))
    finally:
        await pool.close()


def run(inputs: list[Path], model_dir: Path, language: str, *, processes: int,
        chunk_frames: int, out_dir: Path | None, digit_pass: bool = True) -> list[Outcome]:
    """The command's work, with a progress bar over the audio's total seconds."""
    files = wav_files(inputs)
    total = sum(audio_seconds(p) for p in files)
    with tqdm(total=total, unit="s", desc="transcribing", unit_scale=True,
              bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f}s audio [{elapsed}<{remaining}]"
              ) as bar:
        return asyncio.run(transcribe_all(
            files, model_dir, language, processes=processes, chunk_frames=chunk_frames,
            out_dir=out_dir, digit_pass=digit_pass, progress=bar.update))
