"""Dates, times and durations the citizen mentions: when the trouble happens (每天早上), how
long it has lasted (两个月了), when they want someone to come (明天下午).

They are kept as the citizen said them, numerals as digits, with a kind: a unit reads
"lasting 2 months" or "every morning" better than a guessed calendar date, and the
transcript span lets the agent check.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from callcenter.speech.numbers import arabic

_NUM = r"[0-9零一二两三四五六七八九十半几多]+"
_WEEKDAY = r"[一二三四五六日天]"
_DAY = (rf"(?:今天|明天|后天|昨天|前天|大前天|今晚|昨晚|明早|上周{_WEEKDAY}?|下周{_WEEKDAY}?|"
        rf"这周|本周|周末|周{_WEEKDAY}|星期{_WEEKDAY})")
_PART = r"(?:凌晨|早上|早晨|上午|中午|下午|傍晚|晚上|夜里|半夜|深夜|白天)"
_SPAN = r"(?:年|个月|月|个星期|星期|周|礼拜|天|小时)"
_EVERY = r"(?:每天|每晚|每周|每个月|天天|经常|一到)"
PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("duration", re.compile(rf"{_NUM}(?:个)?(?:多)?{_SPAN}(?:多)?(?:了|以来|之久)")),
    ("duration", re.compile(rf"{_NUM}个(?:多)?(?:月|星期|礼拜)")),
    ("recurring", re.compile(rf"{_EVERY}{_PART}?")),
    ("date", re.compile(rf"{_NUM}月{_NUM}[日号](?:{_PART})?")),
    ("relative", re.compile(rf"{_DAY}{_PART}?")),
    ("time_of_day", re.compile(rf"{_PART}(?:{_NUM}点(?:半|{_NUM}分)?)?")),
)


@dataclass(frozen=True, slots=True)
class TimeMention:
    kind: str
    """"duration", "recurring", "date", "relative" or "time_of_day"."""
    value: str
    start: int
    end: int
    """[start, end) character offsets in the text it was found in."""


def find_times(text: str) -> list[TimeMention]:
    """Time mentions in ``text`` (characters without spaces), in order of appearance;
    where two overlap, the kind listed first in ``PATTERNS`` wins."""
    taken: list[tuple[int, int]] = []
    found: list[TimeMention] = []
    for kind, pattern in PATTERNS:
        for m in pattern.finditer(text):
            if any(m.start() < e and s < m.end() for s, e in taken):
                continue
            taken.append((m.start(), m.end()))
            found.append(TimeMention(kind, arabic(m.group()), m.start(), m.end()))
    return sorted(found, key=lambda t: t.start)
