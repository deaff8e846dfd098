"""Structured logs: one event per line, ``key=value`` text or JSON, on stderr.

Modules log with the standard library (``log.info("call ended linkedid=%s", ...)``) so
every library's records come out in the same shape; this module only formats them.
Personal data stays out: modules never log names or addresses, SQL parameters are hidden by
the engine, and as a last net every line (tracebacks included) has phone and ID numbers
masked and bearer tokens removed (``pii.scrub``).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from callcenter.pii import scrub

_HANDLER_NAME = "callcenter"


class KeyValueFormatter(logging.Formatter):
    """``ts=... level=INFO logger=callcenter.bus msg="..."`` (exceptions folded in)."""

    def format(self, record: logging.LogRecord) -> str:
        fields = _fields(record)
        return " ".join(f"{key}={_quote(value)}" for key, value in fields.items())


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_fields(record), ensure_ascii=False)


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "ts": datetime.fromtimestamp(record.created, UTC).isoformat(
            timespec="milliseconds"),
        "level": record.levelname,
        "logger": record.name,
        "msg": scrub(record.getMessage()),
    }
    if record.exc_info:
        fields["exc"] = scrub(logging.Formatter().formatException(record.exc_info))
    return fields


def _quote(value: Any) -> str:
    text = str(value)
    if text and not any(c in text for c in ' "=\n\t'):
        return text
    return json.dumps(text, ensure_ascii=False)


def setup_logging(level: str = "INFO", fmt: str = "text", access_log: bool = False,
                  path: Path | None = None) -> None:
    """Install one handler on the root logger, stderr or the file ``path`` (idempotent:
    it replaces the handler it installed before)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == _HANDLER_NAME:
            root.removeHandler(handler)
            handler.close()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.FileHandler(path, encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter() if fmt == "json" else KeyValueFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.INFO if access_log else logging.WARNING)
