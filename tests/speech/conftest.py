"""Real transcripts of the shared speech samples for the draft tests, decoded once per
session by the pipeline's ``transcribe_file`` (the small Mandarin model at 8 kHz), exactly
as a worker decodes them.

A missing model or sample folder fails with a message naming what is missing: CI must not
pass without the real model. ``bench/speech_draft_accuracy.py`` uses the same helpers.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from callcenter.speech.draft import Draft, DraftExtractor
from callcenter.speech.recognizer import transcribe_file
from callcenter.speech.transcript import Transcript
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


def transcribe(path: Path, speaker: str, digit_pass: bool = False,
               model_dir: Path = VOSK_MODEL, place_pass: bool = True) -> Transcript:
    """One sample decoded by the pipeline's own ``transcribe_file``, each segment given the
    speaker truth.json names (a mono file decodes as ``unknown``)."""
    decoded = transcribe_file(path, require(model_dir, "Vosk model"), "zh", CHUNK_FRAMES,
                              digit_pass, place_pass)
    transcript = Transcript.from_json(decoded.transcript)
    return replace(transcript, segments=tuple(replace(s, speaker=speaker)
                                              for s in transcript.segments))


def sample_path(sample: str, samples: Path = SPEECH_SAMPLES) -> Path:
    return require(samples / f"{sample}.wav", "speech sample")


def transcribe_samples(samples: Path = SPEECH_SAMPLES, digit_pass: bool = False,
                       place_pass: bool = True) -> dict[str, Transcript]:
    """Every sample of truth.json, by id, with the speaker truth.json gives it; with
    ``digit_pass`` each spoken number is decoded again digit by digit, as workers do; with
    ``place_pass`` the n-best readings of unsure places are kept."""
    return {item["id"]: transcribe(sample_path(item["id"], samples), item["speaker"],
                                   digit_pass, place_pass=place_pass)
            for item in truth(samples)}


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
def sample_transcripts() -> dict[str, Transcript]:
    return transcribe_samples()


@pytest.fixture(scope="session")
def digit_pass_transcripts() -> dict[str, Transcript]:
    """The samples with each spoken number decoded again digit by digit."""
    return transcribe_samples(digit_pass=True)


@pytest.fixture(scope="session")
def extractor() -> DraftExtractor:
    return load_extractor()


@pytest.fixture(scope="session")
def sample_truth() -> dict[str, dict[str, Any]]:
    return {item["id"]: item for item in truth()}
