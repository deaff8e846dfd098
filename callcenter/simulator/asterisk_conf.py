"""Reader for Asterisk's ``.conf`` format (manager.conf, queues.conf, pjsip.conf).

Follows main/config.c as far as these files need it: ``[section]``, templates
``[name](!)`` and inheritance ``[name](tmpl,...)``, ``key = value`` and ``key => value``,
``;`` comments (``\\;`` escapes a semicolon), repeated keys kept in order, the same
section name appearing more than once (pjsip.conf's ``[6001]`` endpoint and aor), and
``#include`` / ``#tryinclude`` of another file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


class ConfError(ValueError):
    """A malformed line; the message names file:line."""


@dataclass
class ConfSection:
    name: str
    template: bool = False
    items: list[tuple[str, str]] = field(default_factory=list)

    def get(self, key: str, default: str | None = None) -> str | None:
        value = default
        for k, v in self.items:
            if k.lower() == key.lower():
                value = v
        return value

    def getall(self, key: str) -> list[str]:
        return [v for k, v in self.items if k.lower() == key.lower()]


def _strip_comment(line: str) -> str:
    out = []
    i = 0
    while i < len(line):
        ch = line[i]
        if ch == "\\" and i + 1 < len(line) and line[i + 1] == ";":
            out.append(";")
            i += 2
            continue
        if ch == ";":
            break
        out.append(ch)
        i += 1
    return "".join(out).strip()


def parse_conf(path: str | Path) -> list[ConfSection]:
    """Parse a file into sections (templates resolved into the sections that use them)."""
    state = _ParseState()
    _parse_file(Path(path), state, required=True)
    return [s for s in state.sections if not s.template]


@dataclass
class _ParseState:
    sections: list[ConfSection] = field(default_factory=list)
    by_name: dict[str, ConfSection] = field(default_factory=dict)
    current: ConfSection | None = None
    depth: int = 0


def _parse_file(path: Path, state: _ParseState, *, required: bool) -> None:
    """One file's lines into ``state``; ``#include`` / ``#tryinclude`` read another file in
    place (relative names from the same folder), as config.c does: a missing ``#include``
    fails the whole file, a missing ``#tryinclude`` is skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        if not required:
            return
        raise ConfError(f"{path}: cannot read ({exc.strerror})") from exc
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = _strip_comment(raw)
        if not line:
            continue
        if line.startswith("#"):
            _directive(path, lineno, line, state)
        elif line.startswith("["):
            _section(path, lineno, line, state)
        else:
            _setting(path, lineno, line, state)


def _directive(path: Path, lineno: int, line: str, state: _ParseState) -> None:
    word, _, target = line[1:].partition(" ")
    target = target.strip().strip('"').strip("<>").strip()
    if word not in ("include", "tryinclude") or not target:
        raise ConfError(f"{path}:{lineno}: unknown directive {line!r}")
    if state.depth >= 10:
        raise ConfError(f"{path}:{lineno}: #include nested too deep")
    included = Path(target) if Path(target).is_absolute() else path.parent / target
    state.depth += 1
    try:
        _parse_file(included, state, required=word == "include")
    finally:
        state.depth -= 1


def _section(path: Path, lineno: int, line: str, state: _ParseState) -> None:
    end = line.find("]")
    if end < 0:
        raise ConfError(f"{path}:{lineno}: section header without ']'")
    name = line[1:end].strip()
    rest = line[end + 1 :].strip()
    current = ConfSection(name)
    if rest:
        if not (rest.startswith("(") and rest.endswith(")")):
            raise ConfError(f"{path}:{lineno}: bad text after section name: {rest!r}")
        for opt in (o.strip() for o in rest[1:-1].split(",")):
            if opt == "!":
                current.template = True
            elif opt == "+":
                continue
            elif opt:
                base = state.by_name.get(opt)
                if base is None:
                    raise ConfError(f"{path}:{lineno}: unknown template {opt!r}")
                current.items.extend(base.items)
    state.sections.append(current)
    state.by_name[name] = current
    state.current = current


def _setting(path: Path, lineno: int, line: str, state: _ParseState) -> None:
    if state.current is None:
        raise ConfError(f"{path}:{lineno}: setting outside of a section")
    if "=>" in line and ("=" not in line or line.index("=>") <= line.index("=")):
        key, value = line.split("=>", 1)
    elif "=" in line:
        key, value = line.split("=", 1)
    else:
        raise ConfError(f"{path}:{lineno}: expected 'key = value', got {line!r}")
    state.current.items.append((key.strip(), value.strip()))


def ast_true(value: str | None) -> bool:
    return (value or "").strip().lower() in ("yes", "true", "y", "t", "1", "on")


def ast_false(value: str | None) -> bool:
    return (value or "").strip().lower() in ("no", "false", "n", "f", "0", "off")
