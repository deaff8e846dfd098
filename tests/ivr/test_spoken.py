"""Sentences made during a call: Mandarin the Chinese way, English naturally."""

from __future__ import annotations

from datetime import date

import pytest

from callcenter.ivr.spoken import en_date, progress_sentence, zh_date, zh_digits, zh_number


@pytest.mark.parametrize(("number", "spoken"), [
    (0, "零"), (7, "七"), (10, "十"), (15, "十五"), (20, "二十"), (105, "一百零五"),
    (110, "一百一十"), (1001, "一千零一"), (1010, "一千零一十"), (12345, "一万二千三百四十五"),
    (100005, "十万零五"),
])
def test_numbers_in_mandarin(number: int, spoken: str) -> None:
    assert zh_number(number) == spoken


def test_dates_and_digit_strings_in_mandarin() -> None:
    assert zh_date(date(2026, 12, 3)) == "二零二六年十二月三日"
    assert zh_date(date(2027, 1, 31)) == "二零二七年一月三十一日"
    assert zh_digits("20261203-000112") == "二零二六幺二零三零零零幺幺二"


def test_dates_in_english() -> None:
    assert en_date(date(2026, 12, 3)) == "December third, 2026"
    assert en_date(date(2027, 1, 31)) == "January thirty-first, 2027"


def test_the_progress_sentence_says_number_status_and_deadline_only() -> None:
    assert progress_sentence("zh", "20261203-000012", "in_progress", date(2026, 12, 9)) == (
        "您查询的工单二零二六幺二零三零零零零幺二，正在办理。办理期限是二零二六年十二月九日。")
    assert progress_sentence("en", "20261203-000012", "replied", None) == (
        "Your request 2 0 2 6 1 2 0 3 0 0 0 0 1 2 is answered, and we will call you back.")
