"""Addresses and place names in the citizen's words.

Addresses in hotline calls are mostly local: a road and a number, a residential compound
(小区) and a building, a town. They are found by their suffix (路, 街, 小区, 镇, 号, 栋 ...),
by sound as well as by writing, because the small model writes a low-confidence 路 as 六 or
都 and 镇 as 朕. Province, city and county names are normalised with jionlp's location
parser. A name that no known place has is matched by sound against a ``Gazetteer``: the
office's own list of its roads, communities and towns, and jionlp's towns (of the office's
jurisdiction when it names one, else of all China). The match compares toneless syllables,
with the initials and finals the model and callers confuse (zh/z, n/l, -n/-ng) as near
misses, and lets an unsure one-character word drop out, since the model inserts them (南湖镇
heard as 南湖 和 朕). A matched name is a guess: the agent confirms it, the heard name is
among its alternatives.
"""

from __future__ import annotations

import contextlib
import io
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from callcenter.speech.numbers import Char, arabic, chars_of, split_syllable, syllable
from callcenter.speech.transcript import Segment

# Suffix kind -> (written forms, syllables it may be heard as when the word is unsure).
SUFFIXES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "路": (("路", "大道", "公路"), ("lu", "liu", "du", "dou", "lv", "lou")),
    "街": (("街", "大街", "街道", "巷", "胡同", "弄"), ("jie",)),
    "小区": (("小区", "社区", "花园", "家园", "公寓", "新村", "苑"), ()),
    "镇": (("镇",), ("zhen",)),
    "乡": (("乡",), ("xiang",)),
    "村": (("村",), ("cun",)),
}
DETAIL_SUFFIXES = ("号楼", "号院", "号", "栋", "幢", "单元", "楼", "室")
NOT_NAME = set("的在是我你他她们要了和到住家门口里上下这那个有就也都很还说")
ADMIN_SUFFIXES = ("省", "市", "区", "县")
UNSURE = 0.7
SOUND_MATCH = 0.75
"""The least sound-alike score (0..1) at which a known place replaces the heard name."""
DROP_PENALTY = 0.1
"""What a dropped unsure word costs a sound-alike score."""
ALTERNATIVE_BONUS = 0.25
"""What a known place gains when one of the recognizer's other readings names it (such a
place also ranks before every place none of them names)."""
# Initials and finals heard for one another: flat and curled tongue, n and l, f and h, and
# the front and back nasal finals.
INITIAL_CLASS = {"zh": "z", "ch": "c", "sh": "s", "l": "n", "h": "f"}
FINAL_CLASS = {"ang": "an", "eng": "en", "ing": "in", "iang": "ian", "uang": "uan"}


@dataclass(frozen=True, slots=True)
class Place:
    value: str
    start: int
    end: int
    """[start, end) indexes into the characters it came from."""
    confidence: float
    needs_confirmation: bool
    alternatives: tuple[str, ...] = ()


def _suffix_at(chars: Sequence[Char], i: int) -> tuple[str, int, bool] | None:
    """(written suffix, its length, heard by sound only) of a place suffix at ``i``."""
    text = "".join(c.text for c in chars[i:i + 2])
    for kind, (written, sounds) in SUFFIXES.items():
        for form in sorted(written, key=len, reverse=True):
            if text.startswith(form):
                return form, len(form), False
        if sounds and syllable(chars[i].text) in sounds and (
                chars[i].confidence < UNSURE or _number_follows(chars, i + 1)):
            return kind, 1, True
    return None


def _number_follows(chars: Sequence[Char], i: int) -> bool:
    text = "".join(c.text for c in chars[i:i + 4])
    return any(d in text for d in "号栋幢") and any(
        ch.isdigit() or ch in "零一二三四五六七八九十百" for ch in text[:2])


def _name_before(chars: Sequence[Char], i: int, unsure: bool = False) -> int:
    """Where the name before a suffix at ``i`` starts: up to four characters of at most two
    whole words, not crossing a function word (unless the suffix was heard by sound and the
    word is as unsure: 南湖镇 heard as 能 和 朕)."""
    j = i
    while j > 0 and i - j < 4 and (not _stops_name(chars, j - 1) or (
            unsure and len(chars[j - 1].text) == 1 and chars[j - 1].confidence < UNSURE
            and chars[j - 1].text not in "在是的")):
        j -= 1
    while j < i and j > 0 and chars[j].word == chars[j - 1].word:
        j += 1
    if i > j and chars[i - 1].word - chars[j].word > 1:  # at most the two words before
        j = next(k for k in range(j, i) if chars[i - 1].word - chars[k].word <= 1)
    return j


def _stops_name(chars: Sequence[Char], k: int) -> bool:
    """A function word (和, 只是, 我们: jionlp's stopwords), or a Latin word, ends a place
    name; a function character inside a longer word (和平) does not."""
    char = chars[k]
    word = "".join(c.text for c in chars if c.word == char.word)
    return char.text.isascii() or word in NOT_NAME or word in _stopwords()


def _detail_after(chars: Sequence[Char], i: int) -> int:
    """The end of a number detail (二十号, 2栋) right after a place."""
    text = "".join(c.text for c in chars[i:i + 8])
    best = 0
    for n in range(1, len(text) + 1):
        head = text[:n]
        if any(head.endswith(s) for s in DETAIL_SUFFIXES) and all(
                ch.isdigit() or ch in "零一二三四五六七八九十百幺两" or ch in "号楼院栋幢单元室"
                for ch in head):
            best = n
    return i + best


def find_places(chars: Sequence[Char], skip: Sequence[range] = (),
                gazetteer: Gazetteer | None = None,
                readings: Sequence[str] = ()) -> list[Place]:
    """Places in the characters, in order, each with its span and confidence; ``skip``:
    index ranges already read as something else (phone numbers); ``gazetteer``: the known
    places a heard name is checked and matched by sound against (default: China's towns);
    ``readings``: the recognizer's other readings of the words (``Segment.alternatives``)."""
    gazetteer = gazetteer or Gazetteer()
    places: list[Place] = []
    floor, i = 0, 1
    while i < len(chars):
        found = _suffix_at(chars, i)
        if not found:
            i += 1
            continue
        suffix, length, by_sound = found
        start = _name_before(chars, i, by_sound)
        after = i + length
        inside_word = after < len(chars) and chars[after].word == chars[after - 1].word
        if start == i or inside_word or start < floor or any(i in r for r in skip):
            i += length
            continue
        name = "".join(c.text for c in chars[start:i])
        end = _detail_after(chars, i + length)
        detail = arabic("".join(c.text for c in chars[i + length:end]))
        conf = sum(c.confidence for c in chars[start:end]) / (end - start)
        value, alternatives, guessed = name + suffix, (), by_sound
        if not gazetteer.knows(value):
            near = gazetteer.sounding_like(chars[start:i], suffix, readings)
            if near and near[0][0] >= SOUND_MATCH:
                conf *= near[0][0]
                value, guessed = near[0][1], True
                alternatives = (name + suffix, *(n for _, n in near[1:4]))
            else:
                alternatives = tuple(n for _, n in near[:3])
        places.append(Place(value + detail, start, end, round(conf * (0.6 if guessed else 1), 3),
                            guessed or conf < UNSURE, alternatives))
        floor = i = end
    return places


def unsure_spans(segment: Segment, context: float = 1.0, pad: float = 0.3
                 ) -> list[tuple[float, float]]:
    """Seconds around each place of the segment the agent would be asked to confirm, from
    ``context`` seconds before it (the language model reads a word from the ones before)."""
    chars = chars_of([segment])
    return [(max(chars[p.start].start - context, segment.start - pad, 0.0),
             chars[p.end - 1].end + pad) for p in find_places(chars) if p.needs_confirmation]


def prepare() -> None:
    """Build what the default gazetteer reads (jionlp's towns and their sound index) now,
    not on the first place found: a decoding process calls it when it starts."""
    _index(frozenset(), "")
    _stopwords()


def normalise(address: str) -> str:
    """The address with its province, city and county completed by jionlp where it names
    one of them (郑州金水区 → 河南省郑州市金水区); unchanged otherwise."""
    if not any(s in address for s in ADMIN_SUFFIXES):
        return address
    parsed = _jionlp().parse_location(address)
    head = "".join(parsed.get(k) or "" for k in ("province", "city", "county"))
    return head + (parsed.get("detail") or "") if head else address


@lru_cache(maxsize=1)
def _jionlp():  # type: ignore[no-untyped-def]
    """jionlp, imported on first use (it prints a banner on import and loads dictionaries)."""
    with contextlib.redirect_stdout(io.StringIO()):
        import jionlp
    return jionlp


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    path = Path(_jionlp().__file__).parent / "dictionary" / "stopwords.txt"
    return frozenset(path.read_text(encoding="utf-8").split())


class Gazetteer:
    """The places an office knows, to check a heard name and to match a misheard one by
    sound: its own ``local`` list (roads, communities, towns: config ``[places]``) and
    jionlp's administrative divisions: the towns (镇, 乡) of all China, or with a
    ``jurisdiction`` (a province, city or county as jionlp writes it: 杭州市) only its own
    towns, subdistricts, villages and communities."""

    def __init__(self, local: Sequence[str] = (), jurisdiction: str = "") -> None:
        self.local = frozenset(local)
        self.jurisdiction = jurisdiction

    def knows(self, name: str) -> bool:
        return name in self.local or name in admin_places(self.jurisdiction)

    def sounding_like(self, heard: Sequence[Char], suffix: str,
                      readings: Sequence[str] = ()) -> list[tuple[float, str]]:
        """Known places of the suffix's kind whose name sounds like the ``heard`` characters,
        as (score 0..1, place): the mean likeness of their syllables, less ``DROP_PENALTY``
        for an unsure word left out, plus ``ALTERNATIVE_BONUS`` when one of the recognizer's
        other ``readings`` names the place, plus a little for a local name or a name many
        places share. Places the readings name come first (the recognizer heard them, where
        the others only sound alike), then the best scores."""
        kind = _kind(suffix)
        scored: dict[str, float] = {}
        named: set[str] = set()
        for syllables, dropped in _readings(heard):
            key = (kind, tuple(_initial_class(s) for s in syllables))
            for place, name in _index(self.local, self.jurisdiction).get(key, ()):
                likeness = sum(map(_syllable_likeness, syllables, name)) / len(name)
                score = likeness - DROP_PENALTY * dropped + self._prior(place)
                if any(place in reading for reading in readings):
                    score += ALTERNATIVE_BONUS
                    named.add(place)
                scored[place] = max(scored.get(place, 0.0), min(score, 1.0))
        ranked = sorted(scored, key=lambda k: (k not in named, -scored[k], k))
        return [(round(scored[k], 3), k) for k in ranked]

    def _prior(self, place: str) -> float:
        if place in self.local:
            return 0.05
        return 0.005 * min(admin_places(self.jurisdiction).get(place, 0), 10)


def _kind(suffix: str) -> str:
    """The kind (路, 街, 小区 ...) of a written suffix or of a kind heard by sound."""
    return next((kind for kind, (written, _) in SUFFIXES.items()
                 if suffix == kind or suffix in written), suffix)


def split_place(place: str) -> tuple[str, str] | None:
    """(name, kind) of a place by its longest suffix (解放路 → 解放, 路; 锦绣花园 → 锦绣,
    小区); None without one."""
    forms = sorted(((form, kind) for kind, (written, _) in SUFFIXES.items()
                    for form in written), key=lambda f: -len(f[0]))
    for form, kind in forms:
        if place.endswith(form) and len(place) > len(form):
            return place[:-len(form)], kind
    return None


def _readings(heard: Sequence[Char]) -> list[tuple[tuple[str, ...], int]]:
    """The heard name's syllables, and the same without one unsure one-character word (the
    model inserts them: 南湖 和 朕), with how many words were left out."""
    whole = tuple(syllable(c.text) for c in heard)
    out = [(whole, 0)]
    for k, char in enumerate(heard):
        alone = all(c.word != char.word for j, c in enumerate(heard) if j != k)
        if alone and char.confidence < UNSURE and len(heard) > 1:
            out.append((whole[:k] + whole[k + 1:], 1))
    return out


def _initial_class(s: str) -> str:
    initial = split_syllable(s)[0]
    return INITIAL_CLASS.get(initial, initial)


def _syllable_likeness(heard: str, known: str) -> float:
    """1 for the same toneless syllable; otherwise half for the initial and half for the
    final, each whole when equal, 0.8 when commonly confused (zh/z, -n/-ng), else the share
    of letters they have in common (finals only)."""
    if heard == known:
        return 1.0
    (hi, hf), (ki, kf) = split_syllable(heard), split_syllable(known)
    initial = 1.0 if hi == ki else 0.8 if _initial_class(heard) == _initial_class(known) else 0.0
    final = (1.0 if hf == kf else 0.8 if FINAL_CLASS.get(hf, hf) == FINAL_CLASS.get(kf, kf)
             else _letters_alike(hf, kf))
    return (initial + final) / 2


def _letters_alike(a: str, b: str) -> float:
    """1 - the edit distance of two strings over the longer one's length."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return 1 - row[-1] / max(len(a), len(b), 1)


@lru_cache(maxsize=4)
def admin_places(jurisdiction: str = "") -> dict[str, int]:
    """Place names of jionlp's gazetteer with how many places share each name: the towns
    (镇, 乡) of all China, or every town, subdistrict, village and community under the
    ``jurisdiction`` (empty when jionlp has no such province, city or county)."""
    path = Path(_jionlp().__file__).parent / "dictionary" / "china_location.txt"
    counts: dict[str, int] = defaultdict(int)
    inside = -1  # the depth of the jurisdiction's own line while below it
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            depth = len(line) - len(line.lstrip("\t"))
            name = line.strip().split("\t")[0]
            if depth <= inside:
                inside = -1
            if jurisdiction and inside < 0:
                if depth <= 2 and name == jurisdiction:
                    inside = depth
                continue
            if depth == 3 and name.endswith(("镇", "乡")) or jurisdiction and depth >= 3:
                counts[name] += 1
    return dict(counts)


@lru_cache(maxsize=4)
def _index(local: frozenset[str], jurisdiction: str
           ) -> dict[tuple[str, tuple[str, ...]], list[tuple[str, tuple[str, ...]]]]:
    """Known places by (kind, the initials of their name), each with its name's syllables."""
    index: dict[tuple[str, tuple[str, ...]], list[tuple[str, tuple[str, ...]]]] = (
        defaultdict(list))
    for place in sorted(local | admin_places(jurisdiction).keys()):
        split = split_place(place)
        if split:
            name = tuple(syllable(ch) for ch in split[0])
            index[(split[1], tuple(_initial_class(s) for s in name))].append((place, name))
    return index
