"""Prompts found the way Asterisk finds them: a sounds folder, one sub-folder per language.

main/file.c looks for ``<sounds>/<language>/<name>.<format>``, then falls back to the
default language (``en``) and to ``<sounds>/<name>.<format>``; an absolute name is used as
is. A prompt's length is its file's. A prompt that exists in no format cannot be played:
ast_openstream() logs "File ... does not exist in any format" and the caller fails at once.

So that a fresh checkout plays its IVR greeting, `ensure_stock()` writes the prompts the
hotline and the capture rigs use into the folder when they are missing: small real 8 kHz
WAVs (a quiet tone) with the lengths of the real prompts (Asterisk's core hello-world and
beep; the project's own hotline-welcome until a real recording or synthesis replaces it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from callcenter.simulator.wav import SAMPLE_RATE, atomic_write, duration_of

log = logging.getLogger(__name__)

DEFAULT_LANGUAGE = "en"

# format → seconds from the file size, for the raw formats Asterisk ships prompts in
_RAW_SECONDS: dict[str, Callable[[int], float]] = {
    "ulaw": lambda size: size / SAMPLE_RATE,
    "alaw": lambda size: size / SAMPLE_RATE,
    "gsm": lambda size: (size // 33) * 160 / SAMPLE_RATE,  # 33-byte frames of 160 samples
    "sln": lambda size: size / (2 * SAMPLE_RATE),
}
FORMATS = ("wav", *_RAW_SECONDS)

# name → samples at 8 kHz: Asterisk's core sounds as the captures measured them
# (STREAM FILE hello-world → endpos=11234), and the hotline's own greeting
STOCK_PROMPTS: dict[str, int] = {
    "hello-world": 11234,
    "beep": 6400,
    "hotline-welcome": 11200,
}


class Sounds:
    """The sounds folder: finds prompts and tells their length (cached per file)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lengths: dict[Path, float] = {}

    def find(self, name: str, language: str = DEFAULT_LANGUAGE) -> Path | None:
        """The file Asterisk would open for `name`, or None when it exists in no format."""
        base = Path(name)
        if base.is_absolute():
            candidates = [base]
        else:
            candidates = [
                self.folder / language / base,
                self.folder / DEFAULT_LANGUAGE / base,
                self.folder / base,
            ]
        for stem in candidates:
            for fmt in FORMATS:
                path = stem.with_name(f"{stem.name}.{fmt}")
                if path.is_file():
                    return path
        return None

    def length(self, name: str, language: str = DEFAULT_LANGUAGE) -> float | None:
        """Seconds the prompt plays, or None when it does not exist."""
        path = self.find(name, language)
        if path is None:
            return None
        if path not in self._lengths:
            self._lengths[path] = _file_seconds(path)
        return self._lengths[path]

    def ensure_stock(self) -> None:
        """Write the stock prompts that are missing (never overwrites a real recording)."""
        for name, samples in STOCK_PROMPTS.items():
            path = self.folder / DEFAULT_LANGUAGE / f"{name}.wav"
            if self.find(name) is None:
                _write_tone(path, samples)
                log.info("sounds.generated path=%s samples=%d", path, samples)


def _file_seconds(path: Path) -> float:
    fmt = path.suffix[1:]
    if fmt == "wav":
        return duration_of(path)
    return _RAW_SECONDS[fmt](path.stat().st_size)


def _write_tone(path: Path, samples: int) -> None:
    """A quiet 440 Hz tone, written beside the target and renamed (readers never see half)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(samples) / SAMPLE_RATE
    atomic_write(path, (np.sin(2 * np.pi * 440 * t) * 2000).astype("<i2"), channels=1)
