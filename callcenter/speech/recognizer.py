"""Vosk decoding of one WAV file into a ``Transcript``: streamed in chunks, per channel.

A stereo MixMonitor file has the citizen on the left and the agent on the right, so each
channel gets its own recognizer and the transcript says who spoke; a mono file is one
``unknown`` speaker. The file is read ``chunk_frames`` at a time, never whole, so an hour
of audio costs no more memory than a second. One loaded ``Model`` per directory is kept
for the life of the process and shared by its recognizers (loading costs about a second;
a recognizer is cheap).

The small model mishears spoken digit strings, so with ``digit_pass`` each span the draft
helper recognises as a spoken number (``numbers.number_spans``) is decoded again from the
file with a digits-only grammar and its words replaced (``numbers.with_digit_pass``): a
phone number then reads digit by digit instead of as homophones. With ``place_pass`` the
stretch around each place the draft would ask the agent to confirm (``places.unsure_spans``)
is decoded again for Vosk's n-best readings (``SetMaxAlternatives``), kept on the segment: a
known place among them is preferred to one that only sounds alike.

A recognizer is kept for the next decode once it has given its final result: Vosk builds the
small model's decoding graph lazily, per recognizer, so a new one spends its first seconds of
audio building it (a 2 s stretch cost 1.6 s fresh, 0.16 s on a used one). A used one gives the
same words; only its word times count on from the audio it had before, which ``_Stream``
takes off again. One that failed mid-decode is dropped, never reused.

Kaldi dithers the audio (adds faint noise, the model's default) with the C library's global
``rand()``, so a file's transcript used to depend on what the process had decoded before
(南湖镇 heard as 南湖 和 朕 after one file, 能 和 朕 after another). Each decode reseeds it:
the same file gives the same transcript in any process, in any order.
"""

from __future__ import annotations

import ctypes
import json
import time
import wave
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from callcenter.speech.errors import TranscriptionError
from callcenter.speech.transcript import Segment, Speaker, Transcript, Word

MODEL_FILES = ("am/final.mdl", "conf/model.conf")
"""What every Vosk model directory holds: its absence means no model, not a broken one."""
STEREO_SPEAKERS: tuple[Speaker, Speaker] = ("citizen", "agent")
PLACE_ALTERNATIVES = 10
"""How many readings the place pass asks Vosk for."""
DITHER_SEED = 1
"""The seed of the C library's ``rand()`` at the start of each decode (1: its default)."""
_models: dict[Path, Any] = {}


@dataclass(frozen=True)
class Decoded:
    """A transcript and what it cost: the numbers the row keeps and the benchmark reads."""

    transcript: dict[str, Any]
    audio_seconds: float
    decode_seconds: float


def model_problem(model_dir: Path | None) -> str | None:
    """Why ``model_dir`` cannot be a Vosk model (None: it looks like one). Cheap: no load."""
    if model_dir is None:
        return "no model is configured for this language"
    if not model_dir.is_dir():
        return f"speech model directory {model_dir} is missing"
    absent = [name for name in MODEL_FILES if not (model_dir / name).is_file()]
    if absent:
        return f"speech model {model_dir.name} is incomplete (no {', '.join(absent)})"
    return None


def load_model(model_dir: Path) -> Any:
    """The process's one ``Model`` for ``model_dir``, loaded on first use."""
    model_dir = Path(model_dir)
    model = _models.get(model_dir)
    if model is None:
        problem = model_problem(model_dir)
        if problem:
            raise TranscriptionError(problem)
        import vosk

        vosk.SetLogLevel(-1)
        try:
            model = vosk.Model(str(model_dir))
        except Exception as exc:  # vosk raises a bare Exception for a broken model
            raise TranscriptionError(f"speech model {model_dir.name} is broken: {exc}") from exc
        _models[model_dir] = model
    return model


def prepare(model_dirs: Sequence[str]) -> None:
    """A decoding process's start: its models loaded and the place index built, so the
    first job it takes does not wait for them (about two seconds). A model that cannot be
    loaded is left for the job to report."""
    from callcenter.speech.places import prepare as prepare_places

    for model_dir in model_dirs:
        with suppress(TranscriptionError):
            load_model(Path(model_dir))
    prepare_places()


def transcribe_file(path: str | Path, model_dir: str | Path, language: str,
                    chunk_frames: int = 4000, digit_pass: bool = True,
                    place_pass: bool = True) -> Decoded:
    """Decode ``path`` (16-bit PCM WAV, mono or stereo, any rate Vosk resamples)."""
    started = time.perf_counter()
    model_dir = Path(model_dir)
    model = load_model(model_dir)
    path = Path(path)
    try:
        with wave.open(str(path), "rb") as audio:
            _check_format(path, audio)
            rate, channels = audio.getframerate(), audio.getnchannels()
            speakers = STEREO_SPEAKERS if channels == 2 else ("unknown",)
            reseed_dither()
            streams = [_Stream(model, rate, speaker) for speaker in speakers]
            frames = _feed(audio, streams, chunk_frames)
            segments = sorted((s for stream in streams for s in stream.finish()),
                              key=lambda s: (s.start, s.speaker))
            if digit_pass:
                segments = _digit_pass(audio, model, segments, speakers, chunk_frames)
            if place_pass:
                segments = _place_pass(audio, model, segments, speakers, chunk_frames)
    except FileNotFoundError as exc:
        raise TranscriptionError(f"{path.name}: no such file") from exc
    except (wave.Error, EOFError) as exc:
        raise TranscriptionError(f"{path.name}: not a PCM WAV file ({exc})") from exc
    except OSError as exc:
        raise TranscriptionError(f"{path.name}: cannot read ({exc.strerror or exc})") from exc
    duration = round(frames / rate, 3)
    transcript = Transcript(language=language, model=model_dir.name, duration=duration,
                            segments=tuple(segments))
    return Decoded(transcript.to_json(), duration, time.perf_counter() - started)


def reseed_dither() -> None:
    """Seed the ``rand()`` Kaldi's dither draws from, so a decode does not depend on the
    decodes before it in the process (a no-op where the C library cannot be reached)."""
    libc = _libc()
    if libc is not None:
        libc.srand(DITHER_SEED)


@lru_cache(maxsize=1)
def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(None)  # the process's own symbols: the libc Vosk links against
    except OSError:
        return None


def _check_format(path: Path, audio: wave.Wave_read) -> None:
    problems = []
    if audio.getsampwidth() != 2:
        problems.append(f"{audio.getsampwidth() * 8}-bit samples")
    if audio.getnchannels() not in (1, 2):
        problems.append(f"{audio.getnchannels()} channels")
    if audio.getframerate() < 8000:
        problems.append(f"sample rate {audio.getframerate()} Hz")
    if problems:
        raise TranscriptionError(f"{path.name}: unsupported WAV ({'; '.join(problems)}); "
                                 "need 16-bit PCM, mono or stereo, 8 kHz or more")


def _feed(audio: wave.Wave_read, streams: list[_Stream], chunk_frames: int,
          limit: int | None = None, channel: int | None = None) -> int:
    """Feed the file chunk by chunk from its position (at most ``limit`` frames); a stereo
    chunk is split into its two channels, or only ``channel`` goes to the one stream."""
    frames = 0
    width = 2 * audio.getnchannels()
    while (limit is None or frames < limit) and (data := audio.readframes(
            chunk_frames if limit is None else min(chunk_frames, limit - frames))):
        data = data[: len(data) - len(data) % width]
        if not data:
            break
        frames += len(data) // width
        if width == 2:
            streams[0].accept(data)
            continue
        samples = np.frombuffer(data, dtype="<i2").reshape(-1, 2)
        if channel is not None:
            streams[0].accept(np.ascontiguousarray(samples[:, channel]).tobytes())
            continue
        for index, stream in enumerate(streams):
            stream.accept(np.ascontiguousarray(samples[:, index]).tobytes())
    return frames


def _digit_pass(audio: wave.Wave_read, model: Any, segments: list[Segment],
                speakers: tuple[Speaker, ...], chunk_frames: int) -> list[Segment]:
    """Decode each spoken number's span again with the digits-only grammar."""
    from callcenter.speech.numbers import digit_grammar, number_spans, with_digit_pass

    rate = audio.getframerate()
    result: tuple[Segment, ...] = tuple(segments)
    for span in number_spans(result):
        audio.setpos(min(int(span.start * rate), audio.getnframes()))
        reseed_dither()
        stream = _Stream(model, rate, span.speaker, grammar=digit_grammar(), offset=span.start)
        channel = speakers.index(span.speaker) if len(speakers) == 2 else None
        _feed(audio, [stream], chunk_frames, int((span.end - span.start) * rate), channel)
        result = with_digit_pass(result, span, [w for s in stream.finish() for w in s.words])
    return list(result)


def _place_pass(audio: wave.Wave_read, model: Any, segments: list[Segment],
                speakers: tuple[Speaker, ...], chunk_frames: int) -> list[Segment]:
    """Decode the stretch around each unsure place again for the recognizer's other readings."""
    from callcenter.speech.numbers import without_digit_runs
    from callcenter.speech.places import unsure_spans

    rate = audio.getframerate()
    out = []
    for segment in segments:
        readings: list[str] = []
        for start, end in unsure_spans(segment):
            audio.setpos(min(int(start * rate), audio.getnframes()))
            reseed_dither()
            stream = _Stream(model, rate, segment.speaker, alternatives=PLACE_ALTERNATIVES)
            channel = speakers.index(segment.speaker) if len(speakers) == 2 else None
            _feed(audio, [stream], chunk_frames, int((end - start) * rate), channel)
            stream.finish()
            readings += [without_digit_runs(r) for r in stream.readings]
        out.append(replace(segment, alternatives=tuple(readings)) if readings else segment)
    return out


@dataclass
class _Kept:
    """A recognizer between decodes and how many samples it has had over its life."""

    recognizer: Any
    samples: int = 0


_idle: dict[tuple[int, int, str | None], list[_Kept]] = {}
"""Recognizers that finished a decode, by (model, sample rate, grammar)."""


class _Stream:
    """One speaker's recognizer and the segments it has finished."""

    def __init__(self, model: Any, rate: int, speaker: Speaker, grammar: str | None = None,
                 offset: float = 0.0, alternatives: int = 0) -> None:
        self.key = (id(model), rate, grammar)
        idle = _idle.get(self.key)
        self.kept = idle.pop() if idle else _Kept(_new_recognizer(model, rate, grammar))
        self.recognizer = self.kept.recognizer
        # 0: plain results with word confidences; n: n-best readings, no confidences
        self.recognizer.SetMaxAlternatives(alternatives)
        self.fed = 0
        self.readings: list[str] = []
        self.speaker = speaker
        self.offset = offset - self.kept.samples / rate  # Vosk's times start at its first use
        self.segments: list[Segment] = []

    def accept(self, pcm: bytes) -> None:
        self.fed += len(pcm) // 2
        if self.recognizer.AcceptWaveform(pcm):
            self._add(self.recognizer.Result())

    def finish(self) -> list[Segment]:
        """The last result; the recognizer is then free for the next decode."""
        self._add(self.recognizer.FinalResult())
        self.kept.samples += self.fed
        _idle.setdefault(self.key, []).append(self.kept)
        return self.segments

    def _add(self, result: str) -> None:
        data = json.loads(result)
        self.readings += [text for a in data.get("alternatives", ())
                          if (text := a.get("text", "").replace(" ", ""))]
        words = tuple(Word(text=w["word"], start=round(w["start"] + self.offset, 3),
                           end=round(w["end"] + self.offset, 3),
                           confidence=round(w.get("conf", 1.0), 4))
                      for w in data.get("result", ()))
        if not words:
            return
        self.segments.append(Segment(speaker=self.speaker, start=words[0].start,
                                     end=words[-1].end,
                                     text=data.get("text") or " ".join(w.text for w in words),
                                     words=words))


def _new_recognizer(model: Any, rate: int, grammar: str | None) -> Any:
    import vosk

    recognizer = (vosk.KaldiRecognizer(model, rate, grammar) if grammar
                  else vosk.KaldiRecognizer(model, rate))
    recognizer.SetWords(True)
    return recognizer
