"""Sentences the IVR builds during a call, in the way each language says them.

Mandarin reads a date's year digit by digit and its month and day as numbers
(二零二六年十二月三日), numbers with 十/百/千, and digit strings (a ticket number) digit by
digit with 幺 for one, as numbers are read on the phone. English says "December third,
2026" and reads digit strings one digit at a time. Nothing personal is ever spoken: only the
ticket's number, status and deadline.
"""

from __future__ import annotations

from datetime import date

ZH_DIGITS = "零一二三四五六七八九"
PHONE_DIGITS = "零幺二三四五六七八九"
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")
ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth",
            "ninth", "tenth", "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth",
            "sixteenth", "seventeenth", "eighteenth", "nineteenth", "twentieth",
            "twenty-first", "twenty-second", "twenty-third", "twenty-fourth",
            "twenty-fifth", "twenty-sixth", "twenty-seventh", "twenty-eighth",
            "twenty-ninth", "thirtieth", "thirty-first")

STATUS: dict[str, tuple[str, str]] = {
    "draft": ("正在登记", "being registered"),
    "registered": ("已登记，等待交办", "registered and waiting to be assigned"),
    "escalated": ("正在等待领导批办", "waiting for a decision on who handles it"),
    "dispatched": ("已交办承办单位", "sent to the responsible department"),
    "accepted": ("承办单位已接收", "accepted by the responsible department"),
    "in_progress": ("正在办理", "being handled"),
    "promised": ("已承诺办理", "being handled under a promised plan"),
    "returned": ("正在重新交办", "being sent to another department"),
    "replied": ("已办结，等待回访", "answered, and we will call you back"),
    "revisited": ("已回访", "answered and followed up"),
    "closed": ("已办结", "closed"),
    "not_accepted": ("不予受理", "not accepted"),
    "merged": ("已与相同诉求合并办理", "handled together with the same request"),
    "archived": ("已办结归档", "completed"),
}
"""Ticket status -> (Mandarin, English), as a caller understands it."""


def zh_number(n: int) -> str:
    """0..99999999 in Chinese numerals: 10 -> 十, 105 -> 一百零五, 1010 -> 一千零一十."""
    if n < 0:
        raise ValueError("negative numbers are not spoken")
    if n < 10:
        return ZH_DIGITS[n]
    if n >= 10000:
        high, low = divmod(n, 10000)
        rest = _zh_below_10000(low, leading=False)
        zero = "零" if 0 < low < 1000 else ""
        return f"{zh_number(high)}万{zero}{rest}"
    return _zh_below_10000(n, leading=True)


def _zh_below_10000(n: int, leading: bool) -> str:
    if n == 0:
        return ""
    parts: list[str] = []
    zero = False
    for unit, value in (("千", 1000), ("百", 100), ("十", 10), ("", 1)):
        digit, n = divmod(n, value)
        if digit:
            if zero:
                parts.append("零")
                zero = False
            if unit == "十" and digit == 1 and not parts and leading:
                parts.append("十")  # 十五, not 一十五
            else:
                parts.append(ZH_DIGITS[digit] + unit)
        elif parts:
            zero = True
    return "".join(parts)


def zh_digits(text: str) -> str:
    return "".join(PHONE_DIGITS[int(c)] for c in text if c.isdigit())


def zh_date(day: date) -> str:
    year = "".join(ZH_DIGITS[int(c)] for c in str(day.year))
    return f"{year}年{zh_number(day.month)}月{zh_number(day.day)}日"


def en_digits(text: str) -> str:
    return " ".join(c for c in text if c.isdigit())


def en_date(day: date) -> str:
    return f"{MONTHS[day.month - 1]} {ORDINALS[day.day - 1]}, {day.year}"


def progress_sentence(language: str, number: str, status: str, due: date | None) -> str:
    """What the caller hears about a ticket: its number, status and deadline."""
    zh_status, en_status = STATUS.get(status, ("正在办理", "being handled"))
    if language == "zh":
        text = f"您查询的工单{zh_digits(number)}，{zh_status}。"
        if due is not None:
            text += f"办理期限是{zh_date(due)}。"
        return text
    text = f"Your request {en_digits(number)} is {en_status}."
    if due is not None:
        text += f" It is due by {en_date(due)}."
    return text
