"""Prompts: synthesized Mandarin and English are real telephone speech, the cache avoids
rebuilding, a recording wins over synthesis, and a missing engine or prompt is a clear error."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import numpy as np
import pytest
from vosk import KaldiRecognizer, Model, SetLogLevel

from callcenter.ivr.config import IvrConfig, TtsConfig
from callcenter.ivr.prompts import PromptCatalog, PromptError, PromptLibrary
from callcenter.ivr.tts import rms
from tests.conftest import VOSK_MODEL


def audio(path: Path) -> tuple[np.ndarray, int, int, int]:
    with wave.open(str(path), "rb") as wav:
        params = wav.getframerate(), wav.getsampwidth(), wav.getnchannels()
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    return (pcm, *params)


def flows_dir(tmp_path: Path, texts: str) -> Path:
    folder = tmp_path / "flows"
    folder.mkdir(exist_ok=True)
    (folder / "prompts.toml").write_text(texts, encoding="utf-8")
    return folder


def library(folder: Path, tmp_path: Path, cache: Path | None = None, **tts: object
            ) -> PromptLibrary:
    config = IvrConfig(flows_dir=folder, sounds_dir=tmp_path / "sounds",
                       cache_dir=cache or tmp_path / "cache", tts=TtsConfig(**tts))
    return PromptLibrary(PromptCatalog(folder), config)


@pytest.mark.parametrize(("language", "low", "high"), [("zh", 3.0, 9.0), ("en", 2.5, 7.0)])
def test_synthesized_welcome_is_8khz_speech_of_plausible_length(
        prompt_dirs: tuple[Path, Path], language: str, low: float, high: float) -> None:
    pcm, rate, width, channels = audio(prompt_dirs[0] / language / "hotline-welcome.wav")
    assert (rate, width, channels) == (8000, 2, 1)
    assert low < len(pcm) / 8000 < high
    assert rms(pcm) > 500
    frames = pcm[: len(pcm) // 160 * 160].reshape(-1, 160)  # 20 ms frames
    loud = np.sqrt((frames.astype(float) ** 2).mean(axis=1)) > 300
    assert loud.mean() > 0.4  # speech most of the time, not a click in silence


def test_synthesized_mandarin_is_recognised_as_mandarin(prompt_dirs: tuple[Path, Path]) -> None:
    SetLogLevel(-1)
    assert VOSK_MODEL.is_dir(), f"the Vosk model is missing: {VOSK_MODEL} (CALLCENTER_SHARED)"
    pcm, *_ = audio(prompt_dirs[0] / "zh" / "holiday-notice.wav")  # 节假日期间热线照常服务...
    recognizer = KaldiRecognizer(Model(str(VOSK_MODEL)), 8000)
    recognizer.AcceptWaveform(pcm.tobytes())
    heard = json.loads(recognizer.FinalResult())["text"].replace(" ", "")
    assert "节假日" in heard and "期间" in heard, heard


def test_the_cache_avoids_synthesizing_again(tmp_path: Path) -> None:
    folder = flows_dir(tmp_path, '[hello]\nzh = "您好。"\nen = "Hello."\n')
    wanted = [("hello", "zh"), ("hello", "en")]
    first = library(folder, tmp_path).build(wanted)
    assert sorted(first.synthesized) == sorted(wanted) and sorted(first.installed) == \
        sorted(wanted)
    cached = {p: p.stat().st_mtime_ns for p in (tmp_path / "cache").glob("*.wav")}
    assert len(cached) == 2
    again = library(folder, tmp_path).build(wanted)
    assert (again.synthesized, sorted(again.cached), again.installed) == ([], sorted(wanted),
                                                                         [])
    assert {p: p.stat().st_mtime_ns for p in cached} == cached
    (folder / "prompts.toml").write_text('[hello]\nzh = "您好！欢迎。"\nen = "Hello."\n',
                                         encoding="utf-8")
    changed = library(folder, tmp_path).build(wanted)
    assert (changed.synthesized, changed.installed) == ([("hello", "zh")], [("hello", "zh")])


def test_a_recording_wins_over_synthesis_and_is_made_telephone_audio(tmp_path: Path) -> None:
    folder = flows_dir(tmp_path, '[hello]\nzh = "您好。"\nen = "Hello."\n')
    recording = folder / "prompts" / "zh" / "hello.wav"
    recording.parent.mkdir(parents=True)
    t = np.arange(16000) / 16000  # one second at 16 kHz, stereo
    tone = (np.sin(2 * np.pi * 300 * t) * 8000).astype("<i2")
    with wave.open(str(recording), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(np.repeat(tone, 2).tobytes())
    report = library(folder, tmp_path).build([("hello", "zh"), ("hello", "en")])
    assert report.recorded == [("hello", "zh")] and report.synthesized == [("hello", "en")]
    pcm, rate, width, channels = audio(tmp_path / "sounds" / "zh" / "hello.wav")
    assert (rate, width, channels, len(pcm)) == (8000, 2, 1, 8000)
    assert rms(pcm) == pytest.approx(8000 / np.sqrt(2), rel=0.02)


def test_a_missing_engine_is_a_clear_error_and_leaves_no_file(tmp_path: Path) -> None:
    folder = flows_dir(tmp_path, '[hello]\nzh = "您好。"\n')
    with pytest.raises(PromptError, match="nowhere.engine:Voice' cannot be loaded"):
        library(folder, tmp_path, engine="nowhere.engine:Voice").build([("hello", "zh")])
    assert not (tmp_path / "sounds").exists()


class SilentEngine:
    """A site's engine that fails quietly: writes a second of silence."""

    def __init__(self, config: TtsConfig) -> None:
        pass

    def identity(self, language: str) -> str:
        return "silent"

    def synthesize(self, text: str, language: str, target: Path) -> None:
        with wave.open(str(target), "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(8000)
            wav.writeframes(b"\0\0" * 8000)


def test_silence_from_an_engine_is_refused_never_installed(tmp_path: Path) -> None:
    folder = flows_dir(tmp_path, '[hello]\nzh = "您好。"\n')
    with pytest.raises(PromptError, match="no speech"):
        library(folder, tmp_path, engine=f"{__name__}:SilentEngine").build([("hello", "zh")])
    assert not list(tmp_path.rglob("hello.wav"))
    assert not list((tmp_path / "cache").glob("*.wav"))


def test_without_building_a_missing_prompt_stops_the_start(tmp_path: Path) -> None:
    folder = flows_dir(tmp_path, '[hello]\nzh = "您好。"\n')
    lib = library(folder, tmp_path)
    with pytest.raises(PromptError, match=r"hello \(zh\).*callcenter prompts build"):
        lib.ensure([("hello", "zh")], build_missing=False)
    lib.ensure([("hello", "zh")], build_missing=True)
    lib.ensure([("hello", "zh")], build_missing=False)  # present now
