"""Every input is checked at the edge, before it reaches the database.

Pydantic checks types; these checks add what the databases refuse or cannot represent, so
a bad request is a clean 422 naming the field on SQLite and PostgreSQL alike, never a 500:
- JSON nested deeper than ``MAX_DEPTH`` (the parser itself would recurse without bound);
- integers outside PostgreSQL's ``INTEGER`` (every id, count and limit is one);
- NUL and other control characters in text (PostgreSQL refuses NUL; the others have no
  place in a citizen's name or an order's text; tab and line breaks are kept);
- dates and times outside 1900–2199, where zone offsets can overflow Python's calendar.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field

MAX_DEPTH = 32
INT_MIN, INT_MAX = -(2**31), 2**31 - 1
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(2199, 12, 31)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


FileRef = Annotated[str, Field(
    min_length=1, max_length=300,
    pattern=r"^[A-Za-z0-9][\w-]*(\.[\w-]+)*(/[A-Za-z0-9][\w-]*(\.[\w-]+)*){0,7}$",
    description="a file's key in its store (name/name.ext), never a path: no leading /, "
                "no .., no scheme")]
"""A reference to a stored file (recording, attachment), as clients may send it."""


class InputError(ValueError):
    """A value the service will not take; ``field`` names where it is ("body" for the whole
    body)."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def parse_json(raw: bytes) -> Any:
    """The body as JSON (UTF-8), refusing malformed or too deeply nested documents."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        raise InputError("the body must be JSON", "body") from None
    if _depth(data) > MAX_DEPTH:
        raise InputError(f"the body is nested deeper than {MAX_DEPTH} levels", "body")
    return data


def _depth(value: Any) -> int:
    """Nesting depth without recursion (a hostile document may be very deep)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH:
            return deepest
        if isinstance(item, Mapping):
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, level + 1) for v in item)
    return deepest


def check_values(value: Any, field: str = "") -> None:
    """Walk a validated payload (model, list, dict, scalar) and refuse what the databases
    cannot store; raises ``InputError`` naming the first bad field."""
    if isinstance(value, BaseModel):
        for name in type(value).model_fields:
            check_values(getattr(value, name), _join(field, name))
    elif isinstance(value, Mapping):
        for key, item in value.items():
            check_values(key, field)
            check_values(item, _join(field, str(key)))
    elif isinstance(value, (list, tuple, set, frozenset)):
        for index, item in enumerate(value):
            check_values(item, _join(field, str(index)))
    else:
        check_scalar(value, field)


def check_scalar(value: Any, field: str) -> None:
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, int):
        if not INT_MIN <= value <= INT_MAX:
            raise InputError(f"must be between {INT_MIN} and {INT_MAX}", field)
    elif isinstance(value, str):
        if _CONTROL.search(value):
            raise InputError("must not contain control characters", field)
    elif isinstance(value, datetime):
        _check_datetime(value, field)
    elif isinstance(value, date) and not FIRST_DAY <= value <= LAST_DAY:
        raise InputError(f"must be between {FIRST_DAY} and {LAST_DAY}", field)


def _check_datetime(value: datetime, field: str) -> None:
    try:
        day = value.astimezone(UTC).date() if value.tzinfo else value.date()
    except OverflowError:
        day = date.min
    if not FIRST_DAY <= day <= LAST_DAY:
        raise InputError(f"must be between {FIRST_DAY} and {LAST_DAY}", field)


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name
