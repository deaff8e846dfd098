"""Prompts: a professional recording when there is one, otherwise synthesized, installed
where Asterisk reads sounds, and checked there before the IVR takes calls.

``ivr/prompts.toml`` holds the text of every prompt per language (``[name] zh = "..."``,
``speak_as = "en"`` for a prompt spoken in one language whatever the caller's);
``ivr/prompts/<lang>/<name>.wav`` is a recording, which wins over synthesis. Prompts are
installed as ``<sounds_dir>/<lang>/<name>.wav`` (8 kHz 16-bit mono: Asterisk plays it without
transcoding) and played by that relative name, so Asterisk and the simulator find them
whatever the channel's language. Synthesized audio is cached by a hash of text, voice and
rate: a rebuild only synthesizes what changed. Sentences built during a call (a ticket's
status and deadline) go through the same cache into ``<sounds_dir>/<lang>/dynamic/``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import shutil
import tomllib
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from callcenter.ivr.config import IvrConfig
from callcenter.ivr.tts import TtsEngine, TtsError, make_engine, to_telephone_wav

log = logging.getLogger(__name__)

T = TypeVar("T")
PromptKey = tuple[str, str]
"""(name, language)."""


class PromptError(Exception):
    """A prompt the flows need is missing where Asterisk reads it and cannot be built."""


class PromptCatalog:
    """What the office wrote: prompt texts and recordings in the flows folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        path = folder / "prompts.toml"
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        except tomllib.TOMLDecodeError as exc:
            raise PromptError(f"{path}: {exc}") from exc
        self.texts: dict[str, dict[str, str]] = {}
        self.voices: dict[str, str] = {}
        for name, entry in data.items():
            texts = dict(entry) if isinstance(entry, dict) else {}
            speak_as = texts.pop("speak_as", None)
            if not texts or not all(isinstance(v, str) and v.strip() for v in texts.values()):
                raise PromptError(f"{path}: [{name}] must map languages to non-empty texts")
            self.texts[name] = texts
            if speak_as is not None:
                self.voices[name] = str(speak_as)

    def speaks(self, name: str, language: str) -> str:
        """The voice's language: ``speak_as`` lets one prompt in every language's folder be
        spoken in another (the English offer inside the Mandarin welcome)."""
        return self.voices.get(name, language)

    def recording(self, name: str, language: str) -> Path | None:
        path = self.folder / "prompts" / language / f"{name}.wav"
        return path if path.is_file() else None

    def text(self, name: str, language: str) -> str | None:
        texts = self.texts.get(name, {})
        return texts.get(language) or texts.get(self.voices.get(name, ""))

    def knows(self, name: str, language: str) -> bool:
        return self.recording(name, language) is not None or \
            self.text(name, language) is not None


def playable(name: str, language: str) -> str:
    """The name ``STREAM FILE`` gets: relative to the sounds folder, without extension."""
    return f"{language}/{name}"


@dataclass
class BuildReport:
    recorded: list[PromptKey] = field(default_factory=list)
    synthesized: list[PromptKey] = field(default_factory=list)
    cached: list[PromptKey] = field(default_factory=list)
    installed: list[PromptKey] = field(default_factory=list)


class PromptLibrary:
    """Builds, installs and checks prompts in the sounds folder Asterisk reads."""

    def __init__(self, catalog: PromptCatalog, config: IvrConfig,
                 engine: Callable[[], TtsEngine] | None = None) -> None:
        self.catalog = catalog
        self.config = config
        self._make_engine = engine or (lambda: make_engine(config.tts))
        self._engine: TtsEngine | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._dynamic: dict[PromptKey, str] = {}

    # -- where things are -------------------------------------------------------------------
    def installed(self, name: str, language: str) -> Path:
        return self.config.sounds_dir / language / f"{name}.wav"

    def missing(self, prompts: Iterable[PromptKey]) -> list[PromptKey]:
        return [key for key in prompts if not self.installed(*key).is_file()]

    # -- building ---------------------------------------------------------------------------
    def engine(self) -> TtsEngine:
        if self._engine is None:
            self._engine = self._make_engine()
        return self._engine

    def render(self, text: str, language: str) -> tuple[Path, bool]:
        """The cached 8 kHz file of ``text``: (path, whether it was synthesized now)."""
        engine = self.engine()
        digest = hashlib.sha256(f"{engine.identity(language)}\n{text}".encode()).hexdigest()
        cached = self.config.cache_dir / f"{digest[:32]}.wav"
        if cached.is_file():
            return cached, False
        cached.parent.mkdir(parents=True, exist_ok=True)
        raw = cached.with_name(f".{cached.stem}.raw.wav")
        try:
            engine.synthesize(text, language, raw)
            if not raw.is_file():
                raise TtsError(f"the engine wrote no audio for {text!r}")
            seconds = to_telephone_wav(raw, cached)
        finally:
            raw.unlink(missing_ok=True)
        log.info("ivr.prompt_synthesized language=%s seconds=%.2f file=%s", language, seconds,
                 cached.name)
        return cached, True

    def build_one(self, name: str, language: str, report: BuildReport) -> None:
        target = self.installed(name, language)
        recording = self.catalog.recording(name, language)
        if recording is not None:
            fresh = target.with_name(f".{target.stem}.new.wav")
            try:
                to_telephone_wav(recording, fresh)
            except TtsError as exc:
                raise PromptError(f"recording {recording} is not a usable prompt: {exc}") \
                    from exc
            report.recorded.append((name, language))
            source = fresh
        else:
            text = self.catalog.text(name, language)
            if text is None:
                raise PromptError(f"prompt {name!r} has no recording and no {language!r} "
                                  f"text in {self.catalog.folder / 'prompts.toml'}")
            source, made = self.render(text, self.catalog.speaks(name, language))
            (report.synthesized if made else report.cached).append((name, language))
        if _same_file(source, target):
            if source.name.startswith("."):
                source.unlink()
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.name.startswith("."):
            source.replace(target)
        else:
            partial = target.with_name(f".{target.name}.part")
            shutil.copyfile(source, partial)
            partial.replace(target)
        report.installed.append((name, language))

    def build(self, prompts: Iterable[PromptKey],
              progress: Callable[[PromptKey], None] | None = None) -> BuildReport:
        """Build and install every prompt (recording, else cached or new synthesis)."""
        report = BuildReport()
        for key in prompts:
            try:
                self.build_one(*key, report)
            except TtsError as exc:
                raise PromptError(f"prompt {key[0]!r} ({key[1]}): {exc}") from exc
            if progress is not None:
                progress(key)
        return report

    def ensure(self, prompts: Iterable[PromptKey], build_missing: bool) -> BuildReport:
        """The start check: every prompt present where Asterisk reads it, or built now."""
        wanted = sorted(set(prompts))
        if build_missing:
            return self.build(wanted)
        absent = self.missing(wanted)
        if absent:
            names = ", ".join(f"{n} ({lang})" for n, lang in absent)
            raise PromptError(f"prompts missing in {self.config.sounds_dir}: {names}; run "
                              f"`callcenter prompts build`")
        return BuildReport()

    # -- during a call ----------------------------------------------------------------------
    async def sentence(self, text: str, language: str) -> str:
        """A sentence made during a call, synthesized once and installed; its playable name.
        Synthesis runs on one worker thread (pyttsx3 is single-threaded)."""
        key = (text, language)
        name = self._dynamic.get(key)
        if name is None:
            name = await self.in_worker(self._install_sentence, text, language)
            self._dynamic[key] = name
        return name

    async def in_worker(self, function: Callable[..., T], *args: object) -> T:
        """Run ``function`` on the library's one synthesis thread (pyttsx3 is not
        thread-safe), so the event loop never waits for a voice."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="ivr-tts")
        return await asyncio.get_running_loop().run_in_executor(self._executor, function,
                                                                *args)

    def _install_sentence(self, text: str, language: str) -> str:
        cached, _ = self.render(text, language)
        name = f"dynamic/{cached.stem}"
        target = self.installed(name, language)
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".{target.name}.part")
            shutil.copyfile(cached, partial)
            partial.replace(target)
        return playable(name, language)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None


def _same_file(a: Path, b: Path) -> bool:
    return b.is_file() and a.stat().st_size == b.stat().st_size and \
        a.read_bytes() == b.read_bytes()
