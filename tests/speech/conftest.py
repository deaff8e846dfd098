"""Real transcripts of the shared speech samples for the draft tests, decoded once per
session with Vosk (the small Mandarin model at 8 kHz, words on), exactly as a worker would.

A missing model or sample folder fails with a message naming what is missing: CI must not
pass without the real model. ``bench/speech_draft_accuracy.py`` uses the same helpers.
"""

from __future__ import annotations

import json
import wave
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from callcenter.speech.draft import Draft, DraftExtractor
from callcenter.speech.numbers import digit_grammar, number_spans, with_digit_pass
from callcenter.speech.transcript import Segment, Transcript, Word
from callcenter.tickets.config import load_taxonomy
from tests.conftest import REPO, SPEECH_SAMPLES, VOSK_MODEL

RULES = REPO / "config" / "speech_draft.toml"
TAXONOMY = REPO / "config" / "taxonomy.toml"
CHUNK_FRAMES = 4000


def require(path: Path, what: str) -> Path:
    if not path.exists():
        raise RuntimeError(f"{what} not found at {path}: the speech tests need the shared "
                           f"folder (set CALLCENTER_SHARED)")
    return path


def truth(samples: Path = SPEECH_SAMPLES) -> list[dict[str, Any]]:
    return json.loads(require(samples / "truth.json", "speech samples' truth.json")
                      .read_text(encoding="utf-8"))


def _decode(model: Any, audio: wave.Wave_read, frames: int, offset: float,
            grammar: str | None = None) -> list[list[Word]]:
    """The words of each final result of ``frames`` frames from the reader's position."""
    import vosk

    rate = audio.getframerate()
    recognizer = (vosk.KaldiRecognizer(model, rate, grammar) if grammar
                  else vosk.KaldiRecognizer(model, rate))
    recognizer.SetWords(True)
    results = []
    while frames > 0 and (data := audio.readframes(min(CHUNK_FRAMES, frames))):
        frames -= len(data) // audio.getsampwidth()
        if recognizer.AcceptWaveform(data):
            results.append(json.loads(recognizer.Result()))
    results.append(json.loads(recognizer.FinalResult()))
    return [[Word(w["word"], w["start"] + offset, w["end"] + offset, w["conf"])
             for w in r.get("result", ())] for r in results]


def transcribe(model: Any, path: Path, speaker: str) -> Transcript:
    """One WAV file decoded in chunks; each final result becomes one segment."""
    with wave.open(str(path), "rb") as audio:
        duration = audio.getnframes() / audio.getframerate()
        segments = tuple(
            Segment(speaker, words[0].start, words[-1].end,  # type: ignore[arg-type]
                    " ".join(w.text for w in words), tuple(words))
            for words in _decode(model, audio, audio.getnframes(), 0.0) if words)
    return Transcript("zh", VOSK_MODEL.name, duration, segments)


def add_digit_pass(model: Any, path: Path, transcript: Transcript) -> Transcript:
    """The transcript with each spoken number's span decoded again with the digit grammar."""
    segments = transcript.segments
    with wave.open(str(path), "rb") as audio:
        rate = audio.getframerate()
        for span in number_spans(segments):
            audio.setpos(int(span.start * rate))
            found = _decode(model, audio, int((span.end - span.start) * rate), span.start,
                            digit_grammar())
            segments = with_digit_pass(segments, span, [w for ws in found for w in ws])
    return replace(transcript, segments=segments)


def load_model(model_dir: Path = VOSK_MODEL) -> Any:
    import vosk

    vosk.SetLogLevel(-1)
    return vosk.Model(str(require(model_dir, "Vosk model")))


def sample_path(sample: str, samples: Path = SPEECH_SAMPLES) -> Path:
    return require(samples / f"{sample}.wav", "speech sample")


def transcribe_samples(model: Any, samples: Path = SPEECH_SAMPLES) -> dict[str, Transcript]:
    """Every sample of truth.json, by id, with the speaker truth.json gives it."""
    return {item["id"]: transcribe(model, sample_path(item["id"], samples), item["speaker"])
            for item in truth(samples)}


def with_digit_passes(model: Any, transcripts: Mapping[str, Transcript],
                      samples: Path = SPEECH_SAMPLES) -> dict[str, Transcript]:
    return {sample: add_digit_pass(model, sample_path(sample, samples), transcript)
            for sample, transcript in transcripts.items()}


def load_extractor() -> DraftExtractor:
    return DraftExtractor.load(RULES, load_taxonomy(TAXONOMY))


def same_topic(taxonomy: Any, suggested: str | None, expected: str) -> bool:
    """Topics agree when they resolve to the same level-1 topic (truth.json uses some
    retired codes, which the taxonomy's aliases map)."""
    def level1(code: str | None) -> str | None:
        code = taxonomy.topic_code(code) if code else None
        for parent, topic in taxonomy.topics.items():
            if code == parent or code in topic.children:
                return parent
        return None
    return suggested is not None and level1(suggested) == level1(expected)


def address_words_found(draft: Draft, words: Iterable[str]) -> tuple[int, int]:
    """(found, expected): expected address words contained in a suggested address."""
    values = [s.value for s in draft.all("address")]
    expected = list(words)
    return sum(any(w in v for v in values) for w in expected), len(expected)


@dataclass
class Accuracy:
    type_ok: int = 0
    topic_ok: int = 0
    phone_ok: int = 0
    phones: int = 0
    address_found: int = 0
    address_words: int = 0
    samples: int = 0
    misses: list[str] | None = None

    def rates(self) -> dict[str, float]:
        return {"type": self.type_ok / self.samples, "topic": self.topic_ok / self.samples,
                "phone_exact": self.phone_ok / max(self.phones, 1),
                "address_words": self.address_found / max(self.address_words, 1)}


def measure(extractor: DraftExtractor, transcripts: Mapping[str, Transcript],
            items: Iterable[Mapping[str, Any]]) -> Accuracy:
    """Accuracy of the drafts over the citizen samples that have a ticket type."""
    taxonomy = load_taxonomy(TAXONOMY)
    acc = Accuracy(misses=[])
    for item in items:
        if item["speaker"] != "citizen" or not item.get("type"):
            continue
        draft = extractor.extract(transcripts[item["id"]])
        acc.samples += 1
        best_type, best_topic = draft.best("type"), draft.best("topic")
        acc.type_ok += bool(best_type and best_type.value == item["type"])
        acc.topic_ok += same_topic(taxonomy, best_topic and best_topic.value, item["topic"])
        if item.get("phone"):
            acc.phones += 1
            phone = draft.best("phone")
            ok = phone is not None and phone.value == item["phone"]
            acc.phone_ok += ok
            if not ok:
                acc.misses.append(f"{item['id']} phone {phone and phone.value} "  # type: ignore[union-attr]
                                  f"!= {item['phone']}")
        found, total = address_words_found(draft, item["address"])
        acc.address_found += found
        acc.address_words += total
        if found < total:
            acc.misses.append(f"{item['id']} address {[s.value for s in draft.all('address')]}"  # type: ignore[union-attr]
                              f" lacks {item['address']}")
    return acc


@pytest.fixture(scope="session")
def vosk_model() -> Any:
    return load_model()


@pytest.fixture(scope="session")
def sample_transcripts(vosk_model: Any) -> dict[str, Transcript]:
    return transcribe_samples(vosk_model)


@pytest.fixture(scope="session")
def digit_pass_transcripts(vosk_model: Any,
                           sample_transcripts: dict[str, Transcript]) -> dict[str, Transcript]:
    """The samples with each spoken number decoded again digit by digit."""
    return with_digit_passes(vosk_model, sample_transcripts)


@pytest.fixture(scope="session")
def extractor() -> DraftExtractor:
    return load_extractor()


@pytest.fixture(scope="session")
def sample_truth() -> dict[str, dict[str, Any]]:
    return {item["id"]: item for item in truth()}
