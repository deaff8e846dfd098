"""A ticket draft from the citizen's words: summary, type, topic, unit, address, phone and
ID numbers, dates. Every field is a suggestion with a confidence and the transcript span it
came from, so the agent checks rather than types, and a wrong guess is easy to see.

Type and topic are scored from keywords an office keeps in ``config/speech_draft.toml``;
the unit is the topic's default unit in the taxonomy; the office's jurisdiction and its
list of local places (``[places]``) are what a misheard place name is matched against.
Numbers, places and times have their own modules because the small model mishears them in
their own ways.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from callcenter.speech.dates import find_times
from callcenter.speech.numbers import Char, chars_of, spoken_numbers
from callcenter.speech.places import (
    SUFFIXES,
    Gazetteer,
    admin_places,
    find_places,
    normalise,
    split_place,
)
from callcenter.speech.transcript import Transcript

TYPES = ("consultation", "help", "complaint", "report", "suggestion", "praise")
# Openers and labels that say nothing about the matter itself.
_FILLER = re.compile(r"^(?:喂|你好|您好|请问一下|请问|我想问一下|我要投诉|我要举报|我要反映|"
                     r"我想反映|我要求助|我想咨询|我建议|我想表扬一下|我想表扬)+")
_CUE_TAIL = re.compile(r"(?:我的|联系)?(?:电话|手机|号码|联系方式)(?:号码)?(?:是|为)?$")


class DraftRulesError(ValueError):
    """The rules file is missing or wrong: the message names the file, the key and why."""


@dataclass(frozen=True)
class Suggestion:
    field: str
    """"summary" | "type" | "topic" | "unit" | "address" | "phone" | "id_number" | "date"."""
    value: str
    confidence: float
    """0..1."""
    start: float
    """Seconds in the recording: the span it came from."""
    end: float
    evidence: str
    """The transcript text it came from."""
    needs_confirmation: bool = False
    alternatives: tuple[str, ...] = ()
    """Other readings the agent may pick (other phone candidates, the literal place)."""


@dataclass(frozen=True)
class Draft:
    suggestions: tuple[Suggestion, ...]

    def best(self, field: str) -> Suggestion | None:
        """The most confident suggestion for ``field``, None when there is none."""
        found = [s for s in self.suggestions if s.field == field]
        return max(found, key=lambda s: s.confidence) if found else None

    def all(self, field: str) -> tuple[Suggestion, ...]:
        return tuple(s for s in self.suggestions if s.field == field)


@dataclass(frozen=True)
class Rules:
    """Keywords and weights per type and per topic, and the thresholds."""

    types: Mapping[str, Mapping[str, float]]
    topics: Mapping[str, Mapping[str, float]]
    min_type_score: float = 1.0
    min_topic_score: float = 1.0
    summary_max_chars: int = 60
    confirm_below: float = 0.6
    units: Mapping[str, str] = field(default_factory=dict)
    """Topic code -> its default unit code (from the taxonomy)."""
    jurisdiction: str = ""
    """The province, city or county the office serves, as jionlp's gazetteer writes it
    (empty: all of China's towns are candidates for a misheard town)."""
    local_places: tuple[str, ...] = ()
    """The office's own roads, communities and towns."""


def load_rules(path: Path, taxonomy: Any) -> Rules:
    """Read and check the rules; topics are resolved through the taxonomy's aliases."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DraftRulesError(f"{path}: file not found") from exc
    except tomllib.TOMLDecodeError as exc:
        raise DraftRulesError(f"{path}: not valid TOML: {exc}") from exc
    types = {name: _keywords(path, f"types.{name}", body)
             for name, body in raw.get("types", {}).items()}
    for name in types:
        if name not in TYPES:
            raise DraftRulesError(f"{path}: types.{name}: unknown ticket type "
                                  f"(one of {', '.join(TYPES)})")
    topics: dict[str, Mapping[str, float]] = {}
    units: dict[str, str] = {}
    for name, body in raw.get("topics", {}).items():
        code = taxonomy.topic_code(name)
        if code is None:
            raise DraftRulesError(f"{path}: topics.{name}: not a topic of the taxonomy")
        topics[code] = _keywords(path, f"topics.{name}", body)
        units[code] = taxonomy.default_units(code)[0]
    if not types or not topics:
        raise DraftRulesError(f"{path}: needs [types.*] and [topics.*] keyword tables")
    settings = raw.get("draft", {})
    known = {"min_type_score", "min_topic_score", "summary_max_chars", "confirm_below"}
    for key in settings:
        if key not in known:
            raise DraftRulesError(f"{path}: draft.{key}: unknown setting")
    return Rules(types=types, topics=topics, units=units, **settings,
                 **_places(path, raw.get("places", {})))


def _places(path: Path, body: Any) -> dict[str, Any]:
    """The ``[places]`` table: ``jurisdiction`` (a name jionlp knows) and ``local`` names."""
    unknown = set(body) - {"jurisdiction", "local"}
    if unknown:
        raise DraftRulesError(f"{path}: places.{sorted(unknown)[0]}: unknown setting")
    jurisdiction, local = body.get("jurisdiction", ""), body.get("local", [])
    if not isinstance(jurisdiction, str):
        raise DraftRulesError(f"{path}: places.jurisdiction: a province, city or county name")
    if jurisdiction and not admin_places(jurisdiction):
        raise DraftRulesError(f"{path}: places.jurisdiction: {jurisdiction} is not a province, "
                              f"city or county of jionlp's gazetteer")
    if not isinstance(local, list) or not all(isinstance(n, str) and n for n in local):
        raise DraftRulesError(f"{path}: places.local: a list of place names")
    for name in local:
        if not split_place(name):
            raise DraftRulesError(f"{path}: places.local: {name} has no place suffix "
                                  f"({', '.join(SUFFIXES)})")
    return {"jurisdiction": jurisdiction, "local_places": tuple(local)}


def _keywords(path: Path, key: str, body: Any) -> dict[str, float]:
    words = body.get("keywords") if isinstance(body, dict) else None
    if not isinstance(words, dict) or not words:
        raise DraftRulesError(f"{path}: {key}.keywords: a table of keyword = weight")
    for word, weight in words.items():
        if not isinstance(weight, int | float) or isinstance(weight, bool) or weight <= 0:
            raise DraftRulesError(f"{path}: {key}.keywords.{word}: weight must be a "
                                  f"positive number")
    return {word: float(weight) for word, weight in words.items()}


@dataclass(frozen=True)
class _Text:
    """The citizen's characters and their joined text (index i of one is index i of the other)."""

    chars: Sequence[Char]
    text: str
    alternatives: tuple[str, ...] = ()
    """The recognizer's other readings of these words' unsure places."""

    def span(self, start: int, end: int) -> tuple[float, float, str]:
        part = self.chars[start:end]
        return part[0].start, part[-1].end, "".join(c.text for c in part)

    def confidence(self, start: int, end: int) -> float:
        part = self.chars[start:end]
        return sum(c.confidence for c in part) / len(part)


class DraftExtractor:
    """Turns the citizen's (or an unknown speaker's) segments of a transcript into a draft."""

    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self.gazetteer = Gazetteer(rules.local_places, rules.jurisdiction)

    @classmethod
    def load(cls, rules_path: Path, taxonomy: Any) -> DraftExtractor:
        return cls(load_rules(rules_path, taxonomy))

    def extract(self, transcript: Transcript) -> Draft:
        segments = [s for s in transcript.segments if s.speaker in ("citizen", "unknown")]
        chars = chars_of(segments)
        text = _Text(chars, "".join(c.text for c in chars),
                     tuple(a for s in segments for a in s.alternatives))
        if not chars:
            return Draft(())
        numbers = spoken_numbers(text.chars)
        skip = [range(*_index_span(text, n.chars)) for n in numbers]
        out: list[Suggestion] = []
        out += [s for n in numbers if (s := self._number_suggestion(text, n))]
        out += self._places(text, skip)
        out += self._classified(text, "type", self.rules.types)
        topic = self._classified(text, "topic", self.rules.topics)
        out += topic
        if topic:
            t = topic[0]
            out.append(Suggestion("unit", self.rules.units[t.value], t.confidence, t.start,
                                  t.end, t.evidence, t.needs_confirmation))
        out += self._times(text)
        out.append(self._summary(text, skip))
        return Draft(tuple(out))

    def _number_suggestion(self, text: _Text, number: Any) -> Suggestion | None:
        start, end = _index_span(text, number.chars)
        t0, t1, evidence = text.span(start, end)
        field_name = "id_number" if number.kind == "id_number" else "phone"
        others = tuple(c.digits for c in number.candidates[1:4] if c.kind != "unknown")
        return Suggestion(field_name, number.value, number.confidence, t0, t1, evidence,
                          number.needs_confirmation, others)

    def _places(self, text: _Text, skip: Sequence[range]) -> list[Suggestion]:
        out = []
        for place in find_places(text.chars, skip, self.gazetteer, text.alternatives):
            t0, t1, evidence = text.span(place.start, place.end)
            out.append(Suggestion("address", normalise(place.value), place.confidence, t0, t1,
                                  evidence, place.needs_confirmation, place.alternatives))
        return out

    def _classified(self, text: _Text, field_name: str,
                    table: Mapping[str, Mapping[str, float]]) -> list[Suggestion]:
        """The best-scoring class, its share of all scores as confidence, and the span of
        its keywords as evidence."""
        scores: dict[str, float] = {}
        hits: dict[str, list[tuple[int, int]]] = {}
        for name, words in table.items():
            found = _keyword_hits(text.text, words)
            if found:
                scores[name] = sum(w for _, _, w in found)
                hits[name] = [(s, e) for s, e, _ in found]
        minimum = self.rules.min_type_score if field_name == "type" else self.rules.min_topic_score
        if not scores or max(scores.values()) < minimum:
            return []
        best = max(scores, key=lambda k: scores[k])
        confidence = round(scores[best] / sum(scores.values()) * min(scores[best] / 3, 1.0), 3)
        start = min(s for s, _ in hits[best])
        end = max(e for _, e in hits[best])
        t0, t1, _ = text.span(start, end)
        evidence = "、".join(text.text[s:e] for s, e in hits[best])
        confidence = round(confidence * min(1.0, 0.5 + text.confidence(start, end) / 2), 3)
        return [Suggestion(field_name, best, confidence, t0, t1, evidence,
                           confidence < self.rules.confirm_below)]

    def _times(self, text: _Text) -> list[Suggestion]:
        out = []
        for mention in find_times(text.text):
            t0, t1, evidence = text.span(mention.start, mention.end)
            conf = round(text.confidence(mention.start, mention.end), 3)
            out.append(Suggestion("date", mention.value, conf, t0, t1, evidence,
                                  conf < self.rules.confirm_below))
        return out

    def _summary(self, text: _Text, skip: Sequence[range]) -> Suggestion:
        """The citizen's words without openers, the phone cue and the numbers, shortened."""
        kept = "".join(c.text for i, c in enumerate(text.chars)
                       if not any(i in r for r in skip))
        for r in sorted(skip, key=lambda r: r.start, reverse=True):
            head = "".join(c.text for i, c in enumerate(text.chars[:r.start])
                           if not any(i in q for q in skip))
            tail = _CUE_TAIL.search(head)
            if tail:
                kept = kept[:tail.start()] + kept[len(head):]
        summary = _FILLER.sub("", kept)
        limit = self.rules.summary_max_chars
        if len(summary) > limit:
            summary = summary[:limit - 1] + "…"
        t0, t1, evidence = text.span(0, len(text.chars))
        conf = round(text.confidence(0, len(text.chars)), 3)
        return Suggestion("summary", summary, conf, t0, t1, evidence,
                          conf < self.rules.confirm_below)


def _keyword_hits(text: str, words: Mapping[str, float]) -> list[tuple[int, int, float]]:
    """(start, end, weight) of each keyword occurrence; a keyword inside a longer one that
    also matched counts once (占道 inside 占道经营 adds only the longer one's weight)."""
    found = []
    for word, weight in words.items():
        for m in re.finditer(re.escape(word), text):
            found.append((m.start(), m.end(), weight))
    found.sort(key=lambda h: (h[0], -(h[1] - h[0])))
    kept: list[tuple[int, int, float]] = []
    for hit in found:
        if any(k[0] <= hit[0] and hit[1] <= k[1] for k in kept):
            continue
        kept.append(hit)
    return kept


def _index_span(text: _Text, chars: Sequence[Char]) -> tuple[int, int]:
    first = next(i for i, c in enumerate(text.chars) if c is chars[0])
    return first, first + len(chars)
