"""MixMonitor recordings: 8 kHz 16-bit WAV files built from the legs' audio segments.

Asterisk's MixMonitor writes what both legs say into one file: mono mixes them (summed and
clipped to 16 bits, as app_mixmonitor's slin mixing does), and with the `D` option (or a
stereo format) the caller is the left channel and the agent the right. The simulator places
recorded speech samples at the moments the actors speak and writes the file when the call
ends, atomically, so readers never see half a recording.
"""

from __future__ import annotations

import logging
import os
import tempfile
import wave
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

log = logging.getLogger(__name__)

SAMPLE_RATE = 8000
SAMPLE_WIDTH = 2  # bytes: signed 16-bit little-endian PCM
INT16_MIN, INT16_MAX = -32768, 32767


class WavError(ValueError):
    """A WAV file that cannot be used or written; the message names the file and the problem."""


@dataclass(frozen=True)
class PcmAudio:
    """Mono 8 kHz signed 16-bit samples (a 1-D int16 array)."""

    samples: np.ndarray
    sample_rate: int = SAMPLE_RATE

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate


@dataclass(frozen=True)
class Segment:
    """Audio spoken by one leg, starting `start_s` seconds into the recording."""

    audio: PcmAudio
    start_s: float
    leg: Literal["caller", "agent"]


def read_pcm(path: str | Path) -> PcmAudio:
    """Read an 8 kHz 16-bit mono WAV; anything else is a WavError saying what is wrong."""
    path = Path(path)
    try:
        with wave.open(str(path), "rb") as wav:
            problems = _format_problems(wav)
            if problems:
                raise WavError(
                    f"{path}: unsupported WAV ({'; '.join(problems)}); "
                    "need 8000 Hz, 16-bit, mono PCM"
                )
            frames = wav.readframes(wav.getnframes())
    except FileNotFoundError as exc:
        raise WavError(f"{path}: no such file") from exc
    except (wave.Error, EOFError) as exc:
        raise WavError(f"{path}: not a PCM WAV file ({exc})") from exc
    samples = np.frombuffer(frames, dtype="<i2").astype(np.int16)
    return PcmAudio(samples)


def _format_problems(wav: wave.Wave_read) -> list[str]:
    problems = []
    if wav.getframerate() != SAMPLE_RATE:
        problems.append(f"sample rate {wav.getframerate()} Hz")
    if wav.getsampwidth() != SAMPLE_WIDTH:
        problems.append(f"{wav.getsampwidth() * 8}-bit samples")
    if wav.getnchannels() != 1:
        problems.append(f"{wav.getnchannels()} channels")
    return problems


def _add_segment(track: np.ndarray, segment: Segment) -> None:
    """Add a segment into a leg's int16 track with saturation, cut at the end.

    Saturating per addition is what Asterisk's slin mixing (ast_slinear_saturated_add) does;
    only the segment's slice is widened, so an hour-long file costs little memory.
    """
    if segment.audio.sample_rate != SAMPLE_RATE:
        raise WavError(
            f"segment at {segment.start_s}s is {segment.audio.sample_rate} Hz, "
            f"need {SAMPLE_RATE} Hz"
        )
    start = max(int(round(segment.start_s * SAMPLE_RATE)), 0)
    if start >= len(track):
        return
    end = min(start + len(segment.audio.samples), len(track))
    window = track[start:end]
    summed = window.astype(np.int32) + segment.audio.samples[: end - start]
    window[:] = np.clip(summed, INT16_MIN, INT16_MAX)


def mix_tracks(segments: Iterable[Segment], duration_s: float, stereo: bool) -> np.ndarray:
    """The recording's samples: (n,) mono mix or (n, 2) caller-left/agent-right, int16."""
    if duration_s < 0:
        raise WavError(f"negative recording duration {duration_s}")
    length = int(round(duration_s * SAMPLE_RATE))
    out = np.zeros((length, 2) if stereo else length, dtype="<i2")
    for segment in segments:
        if segment.leg not in ("caller", "agent"):
            raise WavError(f"unknown leg {segment.leg!r} (caller or agent)")
        if stereo:
            _add_segment(out[:, 0 if segment.leg == "caller" else 1], segment)
        else:
            _add_segment(out, segment)
    return out


def write_mixmonitor(
    path: str | Path, segments: Iterable[Segment], duration_s: float, stereo: bool
) -> None:
    """Write a WAV of exactly `duration_s`: silence where nobody speaks, segments cut at the end.

    Written to a temporary file beside the target and renamed, so the file appears complete
    or not at all (no fsync: a simulator needs atomicity for readers, not crash durability);
    parent folders are created. A full disk raises WavError, leaving nothing.
    """
    path = Path(path)
    samples = mix_tracks(segments, duration_s, stereo)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, samples, channels=2 if stereo else 1)
    except OSError as exc:
        raise WavError(f"{path}: cannot write recording: {exc.strerror or exc}") from exc
    log.info("mixmonitor written path=%s duration_s=%.3f stereo=%s", path, duration_s, stereo)


def atomic_write(path: Path, samples: np.ndarray, channels: int) -> None:
    """Write 8 kHz 16-bit ``samples`` beside ``path`` and rename: readers never see half."""
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            with wave.open(handle, "wb") as wav:
                wav.setnchannels(channels)
                wav.setsampwidth(SAMPLE_WIDTH)
                wav.setframerate(SAMPLE_RATE)
                wav.writeframes(memoryview(np.ascontiguousarray(samples)).cast("B"))
        os.replace(temp_name, path)
    except BaseException:
        try:
            os.unlink(temp_name)
        except FileNotFoundError:
            pass
        raise


def duration_of(path: str | Path) -> float:
    """Length of a WAV file in seconds (any PCM format)."""
    path = Path(path)
    try:
        with wave.open(str(path), "rb") as wav:
            return wav.getnframes() / wav.getframerate()
    except FileNotFoundError as exc:
        raise WavError(f"{path}: no such file") from exc
    except (wave.Error, EOFError) as exc:
        raise WavError(f"{path}: not a PCM WAV file ({exc})") from exc
