"""Structured logs: one event per line, key=value or JSON."""

from __future__ import annotations

import json
import logging

from callcenter.logging import JsonFormatter, KeyValueFormatter


def record(msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("callcenter.bus", logging.WARNING, __file__, 1, msg, args, None)


def test_key_value_lines_quote_what_needs_quoting() -> None:
    line = KeyValueFormatter().format(record("bus overflow patterns=%s", "call.*"))
    assert line.startswith("ts=") and "\n" not in line
    assert 'level=WARNING logger=callcenter.bus msg="bus overflow patterns=call.*"' in line


def test_json_lines_keep_chinese_readable() -> None:
    line = JsonFormatter().format(record("工单 %d 已交办", 42))
    fields = json.loads(line)
    assert fields["msg"] == "工单 42 已交办" and fields["level"] == "WARNING"
    assert "工单" in line
