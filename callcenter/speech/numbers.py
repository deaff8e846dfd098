"""Phone and ID-like numbers spoken digit by digit, read back from a noisy transcript.

The small Mandarin model writes spoken digits as Chinese words and often mishears them:
零 comes back as its homophone 玲, 一 as 幺 or 业, two equal digits in a row merge into one
longer word, and stray syllables slip in. So a number is never read literally: every
character after a phone cue (or in a run of digits) offers digit readings by sound (pinyin),
each with a probability; a long character may stand for a repeated digit; a beam search
builds candidate strings, and those that validate as Chinese mobile or landline numbers win.
A number that needed any guess is marked for the agent to confirm.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import cn2an
from pypinyin import Style, lazy_pinyin

from callcenter.speech.transcript import Segment

DIGIT_CHARS = {"零": "0", "〇": "0", "洞": "0", "一": "1", "幺": "1", "二": "2", "两": "2",
               "三": "3", "四": "4", "五": "5", "六": "6", "七": "7", "八": "8", "九": "9"}
DIGIT_SYLLABLES = {"ling": "0", "yi": "1", "yao": "1", "er": "2", "liang": "2", "san": "3",
                   "si": "4", "wu": "5", "liu": "6", "qi": "7", "ba": "8", "jiu": "9"}
ENGLISH_DIGITS = {"zero": "0", "oh": "0", "o": "0", "one": "1", "two": "2", "three": "3",
                  "four": "4", "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
                  "x": "X"}
"""English digit words (and the X that ends some ID card numbers)."""
# Syllables the model writes for a digit it half-heard (yi → ye, si → ci, ...).
NEAR_SYLLABLES = {"ye": "1", "ci": "4", "shi": "4", "su": "4", "lu": "6", "jiou": "9",
                  "bai": "8", "pa": "8", "yu": "1", "wo": "5", "lin": "0", "qu": "7"}
PHONE_CUES = ("电话", "手机", "号码", "联系方式", "手机号", "座机", "phone", "number")
CUE_FILLERS = set("是的号码为打给我") | {"is", "my", "the", "number"}
_INITIAL = re.compile(r"^(zh|ch|sh|[bpmfdtnlgkhjqxrzcsyw])?(.*)$")
MOBILE = re.compile(r"^1[3-9]\d{9}$")
LANDLINE = re.compile(r"^0\d{2,3}\d{7,8}$")
ID_CARD = re.compile(r"^\d{17}[\dX]$")
_DIGIT_RUN = re.compile("[0-9" + "".join(DIGIT_CHARS) + "玲]{3,}")


@dataclass(frozen=True, slots=True)
class Char:
    """One character of the citizen's words, with the time share and confidence of its word."""

    text: str
    start: float
    end: float
    confidence: float
    word: int
    """The index of the word it came from (characters of one word share it)."""

    @property
    def duration(self) -> float:
        return max(self.end - self.start, 0.01)


def chars_of(segments: Iterable[Segment]) -> list[Char]:
    """The characters of the segments' words in order, each word's time split evenly."""
    out: list[Char] = []
    index = 0
    for segment in segments:
        for word in segment.words:
            text = word.text.strip()
            if not text or text == "[unk]":
                continue
            pieces = [text] if text.isascii() else list(text)
            step = (word.end - word.start) / len(pieces)
            for i, piece in enumerate(pieces):
                out.append(Char(piece, word.start + i * step, word.start + (i + 1) * step,
                                word.confidence, index))
            index += 1
    return out


@lru_cache(maxsize=4096)
def syllable(text: str) -> str:
    """The toneless pinyin of one character (the lower-cased text for Latin words)."""
    if text.isascii():
        return text.lower()
    return lazy_pinyin(text, style=Style.NORMAL)[0]


def split_syllable(s: str) -> tuple[str, str]:
    """(initial, final) of a toneless pinyin syllable."""
    m = _INITIAL.match(s)
    assert m is not None
    return m.group(1) or "", m.group(2)


def flat_initial(s: str) -> str:
    """The initial of a toneless pinyin syllable, zh/ch/sh as z/c/s: the model (and many
    callers) do not keep them apart."""
    initial = split_syllable(s)[0]
    return initial[0] if initial in ("zh", "ch", "sh") else initial


def digit_readings(char: Char) -> list[tuple[str, float]]:
    """The digits this character may stand for, with a probability each ("" = no digit)."""
    text = char.text
    if text.isdigit():
        return [(d, 0.98) for d in text[:1]] if len(text) == 1 else [(text, 0.98)]
    if text.lower() in ENGLISH_DIGITS:
        return [(ENGLISH_DIGITS[text.lower()], 0.95), ("", 0.05)]
    if text in DIGIT_CHARS:
        p = 0.6 + 0.38 * char.confidence
        return [(DIGIT_CHARS[text], p), ("", 1 - p)]
    s = syllable(text)
    if s in DIGIT_SYLLABLES:
        return [(DIGIT_SYLLABLES[s], 0.7), ("", 0.3)]
    if s in NEAR_SYLLABLES:
        return [(NEAR_SYLLABLES[s], 0.6), ("", 0.4)]
    initial = flat_initial(s)
    loose = [d for syl, d in DIGIT_SYLLABLES.items() if flat_initial(syl) == initial]
    if loose and char.confidence < 0.6:
        return [*((d, 0.4 / len(loose)) for d in loose), ("", 0.6)]
    return [("", 1.0)]


def is_digit_like(char: Char) -> bool:
    """Whether a character most likely stands for a digit."""
    return any(d and p >= 0.45 for d, p in digit_readings(char))


@dataclass(frozen=True, slots=True)
class NumberCandidate:
    digits: str
    score: float
    """Log-probability of the readings plus the validity bonus."""
    kind: str
    """"mobile", "landline", "id_number" or "unknown"."""


@dataclass(frozen=True, slots=True)
class SpokenNumber:
    """The best reading of one spoken number and how sure it is."""

    value: str
    kind: str
    confidence: float
    needs_confirmation: bool
    chars: tuple[Char, ...]
    candidates: tuple[NumberCandidate, ...]


def kind_of(digits: str) -> str:
    if MOBILE.match(digits):
        return "mobile"
    if LANDLINE.match(digits):
        return "landline"
    if ID_CARD.match(digits):
        return "id_number"
    return "unknown"


VALIDITY_BONUS = {"mobile": 6.0, "landline": 4.0, "id_number": 4.0, "unknown": 0.0}


def _repeat_probability(char: Char, unit: float, last: bool) -> float:
    """How likely one character hides two equal digits, from its length against the others'
    (the last digit of an utterance is drawn out anyway)."""
    ratio = char.duration / unit / (1.5 if last else 1.0)
    return min(max((ratio - 1.2) / 1.0, 0.02), 0.9)


def candidates(chars: Sequence[Char], beam: int = 400) -> list[NumberCandidate]:
    """Candidate digit strings for a run of characters, best first."""
    durations = sorted(c.duration for c in chars)
    unit = durations[len(durations) // 2] if durations else 0.2
    paths: dict[str, float] = {"": 0.0}
    for i, char in enumerate(chars):
        repeat = _repeat_probability(char, unit, i == len(chars) - 1)
        grown: dict[str, float] = {}
        for prefix, logp in paths.items():
            for digit, p in digit_readings(char):
                options = [(digit, p)] if not digit or len(digit) > 1 else [
                    (digit, p * (1 - repeat)), (digit * 2, p * repeat)]
                for text, q in options:
                    key = prefix + text
                    score = logp + math.log(max(q, 1e-6))
                    if score > grown.get(key, -math.inf):
                        grown[key] = score
        paths = dict(sorted(grown.items(), key=lambda kv: -kv[1])[:beam])
    out = [NumberCandidate(d, s + VALIDITY_BONUS[kind_of(d)], kind_of(d))
           for d, s in paths.items() if d]
    return sorted(out, key=lambda c: -c.score)


def read_number(chars: Sequence[Char]) -> SpokenNumber | None:
    """The best number in a run of characters (the best valid one when any candidate is a
    valid number), or None when none reads as digits."""
    ranked = candidates(chars)
    if not ranked:
        return None
    valid = [c for c in ranked if c.kind != "unknown"]
    best = valid[0] if valid else ranked[0]
    total = sum(math.exp(c.score - best.score) for c in ranked[:50])
    share = 1.0 / total
    literal = all(_written_digit(c) for c in chars)
    mean_conf = sum(c.confidence for c in chars) / len(chars)
    confidence = round(share * (mean_conf if literal else mean_conf * 0.8), 3)
    if best.kind == "unknown":
        confidence = round(confidence * 0.3, 3)
    sure = literal and best.kind != "unknown" and confidence >= 0.85
    others = tuple(c for c in ranked if c is not best)
    return SpokenNumber(best.digits, best.kind, confidence, not sure, tuple(chars),
                        (best, *others[:4]))


def _is_cue_at(chars: Sequence[Char], i: int) -> int:
    """The length of a phone cue starting at ``i`` (0 when none): the cue words, or a word
    that sounds like 电话 (the model writes 变化)."""
    if chars[i].text.isascii():
        return 1 if chars[i].text.lower() in PHONE_CUES else 0
    text = "".join(c.text for c in chars[i:i + 4])
    for cue in PHONE_CUES:
        if text.startswith(cue):
            return len(cue)
    if i + 1 < len(chars) and chars[i].word == chars[i + 1].word:
        pair = (split_syllable(syllable(chars[i].text))[1],
                syllable(chars[i + 1].text))
        if pair == ("ian", "hua"):
            return 2
    return 0


def _written_digit(char: Char) -> bool:
    """A digit by its writing: 一, 幺, 7 or "seven" (not a homophone)."""
    text = char.text
    return text in DIGIT_CHARS or text.isdigit() or text.lower() in ENGLISH_DIGITS


def number_runs(chars: Sequence[Char]) -> list[tuple[int, int]]:
    """[start, end) index ranges of spoken numbers: after a phone cue, or any run of at least
    five characters that are digits by their writing or their sound."""
    runs: list[tuple[int, int]] = []
    i = 0
    while i < len(chars):
        cue = _is_cue_at(chars, i)
        if cue:
            j = i + cue
            while j < len(chars) and chars[j].text.lower() in CUE_FILLERS:
                j += 1
            end = _run_end(chars, j, allow_gap=True)
            if end - j >= 5:
                runs.append((j, end))
                i = end
                continue
            i += cue
            continue
        if _written_digit(chars[i]):
            end = _run_end(chars, i, allow_gap=False)
            if end - i >= 5:
                runs.append((i, end))
                i = end
                continue
        i += 1
    return runs


def _run_end(chars: Sequence[Char], start: int, *, allow_gap: bool) -> int:
    """The end of the digit run from ``start``: digit-like characters, and (after a cue) at
    most two doubtful ones in a row while digits follow or the utterance ends."""
    j = start
    while j < len(chars):
        if is_digit_like(chars[j]):
            j += 1
            continue
        gap = 0
        while (allow_gap and j + gap < len(chars) and gap < 2
               and not is_digit_like(chars[j + gap])
               and any(d for d, _ in digit_readings(chars[j + gap]))):
            gap += 1
        if gap and (j + gap == len(chars) or is_digit_like(chars[j + gap])):
            j += gap
            continue
        break
    return j


def spoken_numbers(chars: Sequence[Char]) -> list[SpokenNumber]:
    """Every number read from the characters, in order."""
    out = []
    for start, end in number_runs(chars):
        number = read_number(chars[start:end])
        if number is not None and (number.kind != "unknown" or len(number.value) >= 7):
            out.append(number)
    return out


def without_digit_runs(text: str) -> str:
    """``text`` without its runs of three or more digits (numerals, or 玲 for 零): a reading
    kept for its place names (五一路 keeps its two) holds no part of a phone or ID number
    the transcript's masking would not see."""
    return _DIGIT_RUN.sub("", text)


def arabic(text: str) -> str:
    """Chinese numerals in ordinary text as Arabic digits (二十号 → 20号), unchanged where
    cn2an cannot read them."""
    try:
        return cn2an.transform(text, "cn2an")
    except (ValueError, KeyError):
        return text


# A second look at spoken numbers. Decoding a number's span again with a grammar of digit
# words only (Vosk's ``KaldiRecognizer(model, rate, grammar)``) stops the model from
# turning digits into words (一五 → 业务); the words it gives replace that span.
DIGIT_WORDS = ("零", "一", "二", "三", "四", "五", "六", "七", "八", "九", "幺", "两")


def digit_grammar() -> str:
    """The Vosk grammar (JSON) for a digit-by-digit second pass."""
    return json.dumps([" ".join(DIGIT_WORDS), *DIGIT_WORDS, "[unk]"], ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class NumberSpan:
    """Where a spoken number is: the segment's speaker and the seconds to decode again."""

    speaker: str
    start: float
    end: float


def number_spans(segments: Sequence[Segment], pad: float = 0.05) -> list[NumberSpan]:
    """The spans of spoken numbers in the segments (each segment read on its own), padded a
    little so the first and last digit are whole."""
    spans = []
    for segment in segments:
        chars = chars_of([segment])
        for start, end in number_runs(chars):
            spans.append(NumberSpan(segment.speaker, max(chars[start].start - pad, 0.0),
                                    chars[end - 1].end + pad))
    return spans


def with_digit_pass(segments: Sequence[Segment], span: NumberSpan,
                    words: Sequence[Any]) -> tuple[Segment, ...]:
    """The segments with the words inside ``span`` replaced by the second pass's words
    (``Word``s in recording time; ``[unk]`` dropped). Without digit words, unchanged."""
    digits = [w for w in words if w.text in DIGIT_WORDS]
    if not digits:
        return tuple(segments)
    out = []
    for segment in segments:
        apart = segment.end < span.start or segment.start > span.end
        if segment.speaker != span.speaker or apart:
            out.append(segment)
            continue
        inside = [w for w in segment.words
                  if span.start <= (w.start + w.end) / 2 <= span.end]
        if not inside:
            out.append(segment)
            continue
        before = [w for w in segment.words if w.end <= inside[0].start and w not in inside]
        after = [w for w in segment.words if w.start >= inside[-1].end and w not in inside]
        kept = (*before, *digits, *after)
        out.append(Segment(segment.speaker, segment.start, segment.end,
                           " ".join(w.text for w in kept), kept))
    return tuple(out)
