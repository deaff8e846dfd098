"""Personal numbers found in free text: mobile and landline phone numbers, ID card numbers.

Structured fields (the caller's phone) are masked by the privacy policy; these patterns find
the same data typed into free text — an order's content, a unit's note, a log line — so it
can be masked there too (``138****5678``, ID numbers keep their first 3 and last 4).
"""

from __future__ import annotations

import re

MASK = "*"
_ID_CARD = re.compile(r"(?<![0-9A-Za-z])(\d{3})\d{11}(\d{3}[\dXx])(?![0-9A-Za-z])")
_MOBILE = re.compile(r"(?<!\d)(?:\+?86[- ]?)?(1[3-9]\d)[- ]?(\d{4})[- ]?(\d{4})(?!\d)")
_LANDLINE = re.compile(r"(?<!\d)(0\d{2,3})[- ]?(\d{3,4})(\d{4})(?!\d)")
_BEARER = re.compile(r"\beyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]{4,}")


def mask_numbers(text: str) -> str:
    """``text`` with every phone and ID card number in it masked."""
    text = _ID_CARD.sub(lambda m: m[1] + MASK * 11 + m[2], text)
    text = _MOBILE.sub(lambda m: m[1] + MASK * 4 + m[3], text)
    return _LANDLINE.sub(lambda m: m[1] + MASK * len(m[2]) + m[3], text)


def scrub(text: str) -> str:
    """What a log line may keep: numbers masked, bearer tokens (JWTs) removed."""
    return mask_numbers(_BEARER.sub("***", text))
