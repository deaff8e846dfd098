"""What speech-to-text produces: words with times and confidences, grouped into segments
by speaker. Transcription writes it, draft extraction reads it, the database stores it as
JSON: one plain shape shared by all three."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Speaker = Literal["citizen", "agent", "unknown"]
"""Who spoke: from the channel of a stereo recording (Asterisk's MixMonitor ``D`` option
puts the caller's side, read by the channel it was started on, on the left), ``unknown``
for a mono recording."""


@dataclass(frozen=True, slots=True)
class Word:
    """One recognized word (for Chinese: a word of the model's lexicon, one or more
    characters). Times are seconds from the start of the recording."""

    text: str
    start: float
    end: float
    confidence: float


@dataclass(frozen=True, slots=True)
class Segment:
    """One utterance (Vosk's final result) of one speaker."""

    speaker: Speaker
    start: float
    end: float
    text: str
    """The words joined as Vosk writes them (Chinese: separated by spaces)."""
    words: tuple[Word, ...] = ()
    alternatives: tuple[str, ...] = ()
    """Other readings (Vosk's n-best, without spaces) of the stretch around a place the model
    was unsure of: the draft prefers a known place that one of them names."""

    @property
    def confidence(self) -> float:
        """The mean of the words' confidences (0 for an empty segment)."""
        return sum(w.confidence for w in self.words) / len(self.words) if self.words else 0.0


@dataclass(frozen=True, slots=True)
class Transcript:
    """A whole recording's segments in time order, and the model that produced them."""

    language: str
    model: str
    duration: float
    segments: tuple[Segment, ...] = field(default_factory=tuple)

    def of(self, speaker: Speaker) -> tuple[Segment, ...]:
        return tuple(s for s in self.segments if s.speaker == speaker)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Transcript:
        segments = tuple(
            Segment(speaker=s["speaker"], start=s["start"], end=s["end"], text=s["text"],
                    words=tuple(Word(**w) for w in s.get("words", ())),
                    alternatives=tuple(s.get("alternatives", ())))
            for s in data.get("segments", ()))
        return cls(language=data["language"], model=data["model"],
                   duration=data["duration"], segments=segments)
