"""Text to speech for prompts: a small interface, pyttsx3 (espeak-ng) behind it.

A site with a better voice implements ``TtsEngine`` and names it in ``ivr.tts.engine``
(``package.module:Class``). Mandarin goes through tone-numbered pinyin and espeak-ng's
``cmn-latn-pinyin`` voice, which speaks it correctly (its ``cmn`` voice reads Chinese
characters as English letters). Whatever the engine writes is converted to what Asterisk
plays without transcoding: 8 kHz, 16-bit, mono WAV.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import re
import tempfile
import wave
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from pypinyin import Style, lazy_pinyin
from scipy.signal import resample_poly

from callcenter.ivr.config import TtsConfig

RATE = 8000
MIN_SECONDS = 0.2
ATTEMPTS = 3
"""pyttsx3's espeak loop now and then returns before the file has its audio: try again."""
SILENCE_RMS = 100.0
"""Below this (16-bit scale) a synthesized file is silence: the engine failed quietly."""


class TtsError(Exception):
    """No usable engine, or the engine produced no speech (never an empty prompt file)."""


class TtsEngine(Protocol):
    """Synthesizes one text in one language into a WAV file (any rate, mono or stereo)."""

    def identity(self, language: str) -> str:
        """What decides the sound besides the text (engine, voice, rate): the cache key."""
        ...

    def synthesize(self, text: str, language: str, target: Path) -> None: ...


def to_pinyin(text: str) -> str:
    """Chinese text as tone-numbered pinyin (neutral tone 5); punctuation becomes pauses."""
    words = lazy_pinyin(text, style=Style.TONE3, neutral_tone_with_five=True)
    spoken = " ".join(words)
    spoken = re.sub(r"[，、；：]", ",", spoken)
    return re.sub(r"[。！？]", ".", spoken)


class Pyttsx3Engine:
    """pyttsx3 over espeak-ng; one instance per thread (pyttsx3's loop is not thread-safe)."""

    def __init__(self, config: TtsConfig) -> None:
        self.config = config
        self._engine: Any = None
        self._voices: dict[str, str] = {}

    def identity(self, language: str) -> str:
        return f"pyttsx3:{self._voice_name(language)}:{self.config.rate}"

    def _voice_name(self, language: str) -> str:
        try:
            return self.config.voices[language]
        except KeyError:
            raise TtsError(f"no voice configured for language {language!r} "
                           f"(ivr.tts.voices)") from None

    def _start(self) -> Any:
        if self._engine is None:
            try:
                import pyttsx3

                engine = pyttsx3.init("espeak")
                voices = engine.getProperty("voices")
            except Exception as exc:  # pyttsx3 raises bare errors when espeak-ng is missing
                raise TtsError(f"the pyttsx3 engine cannot start ({exc!r}); install "
                               f"espeak-ng (apt-get install espeak-ng)") from exc
            for voice in voices:
                self._voices[voice.id.rsplit("/", 1)[-1].lower()] = voice.id
            self._engine = engine
        return self._engine

    def synthesize(self, text: str, language: str, target: Path) -> None:
        engine = self._start()
        name = self._voice_name(language)
        voice = self._voices.get(name.lower())
        if voice is None:
            raise TtsError(f"espeak-ng has no voice {name!r} for {language!r}")
        spoken = to_pinyin(text) if "pinyin" in name.lower() else text
        engine.setProperty("voice", voice)
        engine.setProperty("rate", self.config.rate)
        for _attempt in range(ATTEMPTS):
            with contextlib.redirect_stdout(io.StringIO()):  # pyttsx3 prints "Audio saved"
                engine.save_to_file(spoken, str(target))
                engine.runAndWait()
            if _frames(target) > 0:
                return
        raise TtsError(f"pyttsx3 wrote no audio for {text!r} ({ATTEMPTS} attempts)")


def _frames(path: Path) -> int:
    try:
        with wave.open(str(path), "rb") as wav:
            return wav.getnframes()
    except (OSError, EOFError, wave.Error):
        return 0


def make_engine(config: TtsConfig) -> TtsEngine:
    """The configured engine: ``pyttsx3`` or a site's ``module:Class`` (built with config)."""
    if config.engine == "pyttsx3":
        return Pyttsx3Engine(config)
    module, _, name = config.engine.partition(":")
    try:
        factory = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise TtsError(f"ivr.tts.engine {config.engine!r} cannot be loaded: {exc}") from exc
    engine: TtsEngine = factory(config)
    return engine


def read_mono(path: Path) -> tuple[np.ndarray, int]:
    """A PCM WAV as float samples (channels averaged) and its rate."""
    with wave.open(str(path), "rb") as wav:
        width, channels, rate = wav.getsampwidth(), wav.getnchannels(), wav.getframerate()
        frames = wav.readframes(wav.getnframes())
    if width != 2:
        raise TtsError(f"{path}: only 16-bit PCM WAV can be converted (got {8 * width} bit)")
    samples = np.frombuffer(frames, dtype="<i2").astype(np.float64)
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1)
    return samples, rate


def to_telephone_wav(source: Path, target: Path) -> float:
    """Convert ``source`` to 8 kHz 16-bit mono at ``target`` (atomically); returns seconds.
    Raises ``TtsError`` for audio too short or silent to be a prompt."""
    samples, rate = read_mono(source)
    if rate != RATE:
        divisor = np.gcd(RATE, rate)
        samples = resample_poly(samples, RATE // divisor, rate // divisor)
    pcm = np.clip(np.round(samples), -32768, 32767).astype("<i2")
    seconds = len(pcm) / RATE
    if seconds < MIN_SECONDS or not pcm.size or rms(pcm) < SILENCE_RMS:
        raise TtsError(f"{source}: no speech ({seconds:.2f} s, rms {rms(pcm):.0f})")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    with os.fdopen(fd, "wb") as handle, wave.open(handle, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(pcm.tobytes())
    os.replace(temp, target)
    return seconds


def rms(pcm: np.ndarray) -> float:
    return float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2))) if pcm.size else 0.0
