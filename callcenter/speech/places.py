"""Addresses and place names in the citizen's words.

Addresses in hotline calls are mostly local: a road and a number, a residential compound
(小区) and a building, a town. They are found by their suffix (路, 街, 小区, 镇, 号, 栋 ...),
by sound as well as by writing, because the small model writes a low-confidence 路 as 六 or
都 and 镇 as 朕. Province, city and county names are normalised with jionlp's location
parser, and a misheard town name is matched by sound against jionlp's gazetteer of China's
towns (南湖镇 heard as 能和朕); such a guess asks the agent to confirm.
"""

from __future__ import annotations

import contextlib
import io
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from callcenter.speech.numbers import Char, arabic, flat_initial, syllable

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


def find_places(chars: Sequence[Char], skip: Sequence[range] = ()) -> list[Place]:
    """Places in the characters, in order, each with its span and confidence; ``skip``:
    index ranges already read as something else (phone numbers)."""
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
        if suffix in ("镇", "乡") and not towns().get(value):
            near = closest_towns(name, suffix)
            if near:
                alternatives, value, guessed = (value, *near[1:]), near[0], True
        places.append(Place(value + detail, start, end, round(conf * (0.6 if guessed else 1), 3),
                            guessed or conf < UNSURE, alternatives))
        floor = i = end
    return places


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


@lru_cache(maxsize=1)
def towns() -> dict[str, int]:
    """Town and township names (镇, 乡) in jionlp's gazetteer, with how many places share
    each name."""
    jionlp = _jionlp()
    path = Path(jionlp.__file__).parent / "dictionary" / "china_location.txt"
    counts: dict[str, int] = defaultdict(int)
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.startswith("\t\t\t") and not line.startswith("\t\t\t\t"):
                name = line.strip().split("\t")[0]
                if name.endswith(("镇", "乡")):
                    counts[name] += 1
    return dict(counts)


@lru_cache(maxsize=1)
def _towns_by_initials() -> dict[tuple[str, ...], list[str]]:
    index: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for name in towns():
        index[tuple(flat_initial(syllable(ch)) for ch in name)].append(name)
    return index


def _similarity(a: str, b: str) -> float:
    """1 - the edit distance of two pinyin strings over the longer one's length."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return 1 - row[-1] / max(len(a), len(b), 1)


def closest_towns(name: str, suffix: str, limit: int = 4) -> list[str]:
    """Gazetteer towns that sound like ``name`` + ``suffix`` (same initials, the closest
    pinyin, the commoner name on a tie), closest first; empty when nothing sounds alike."""
    heard = [syllable(ch) for ch in name + suffix]
    key = tuple(flat_initial(s) for s in heard)
    scored = []
    for town in _towns_by_initials().get(key, ()):
        score = _similarity("".join(heard), "".join(syllable(ch) for ch in town))
        scored.append((score + 0.01 * min(towns()[town], 10), town))
    return [town for score, town in sorted(scored, reverse=True)[:limit] if score >= 0.5]
