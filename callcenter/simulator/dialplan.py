"""A model of Asterisk's extensions.conf, as far as a hotline's dialplan needs it.

Parsing follows pbx_config.c (`exten =>`, `same =>`, `n`/`n(label)`/`hint`/`+N` priorities,
`include =>`, `[globals]`), extension ordering and matching follow pbx.c's default (old)
algorithm: exact extensions sort before patterns, patterns sort by specificity character by
character (`ext_cmp`), and the first extension in that order that matches *and has the
wanted priority* wins; included contexts are searched after the context's own extensions.
Variable substitution follows pbx_variables.c, argument splitting app.c. Unlike Asterisk,
which logs a warning and skips a malformed line, loading fails with file:line, because a
simulator that silently drops part of the dialplan would test the wrong thing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

MAX_INCLUDE_DEPTH = 128  # AST_PBX_MAX_STACK
PRIORITY_HINT = -1


class DialplanError(ValueError):
    """A malformed dialplan line; the message names file:line."""


@dataclass(frozen=True)
class Step:
    """One dialplan priority: what the channel runs at (context, exten, priority).

    `exten` is the extension or pattern that matched; `context` the context it was found
    in (differs from the requested one when it came through an `include`).
    """

    app: str
    data: str
    priority: int
    label: str | None
    exten: str
    context: str = ""


@dataclass
class Extension:
    """One extension (or pattern) with its priorities, in one context."""

    name: str
    steps: dict[int, Step] = field(default_factory=dict)
    labels: dict[str, int] = field(default_factory=dict)

    @property
    def is_pattern(self) -> bool:
        return self.name.startswith("_")


@dataclass
class Context:
    name: str
    extensions: list[Extension] = field(default_factory=list)  # sorted by ext_cmp
    includes: list[str] = field(default_factory=list)

    def extension(self, name: str) -> Extension | None:
        for extension in self.extensions:
            if _ext_cmp_exten(extension.name, name) == 0 and (
                extension.is_pattern == name.startswith("_")
            ):
                return extension
        return None

    def add_extension(self, extension: Extension) -> None:
        """Insert in ext_cmp order, as ast_add_extension2() keeps the list sorted."""
        key = _sort_key(extension.name)
        for index, existing in enumerate(self.extensions):
            if key < _sort_key(existing.name):
                self.extensions.insert(index, extension)
                return
        self.extensions.append(extension)


class Dialplan:
    """Contexts with their extensions; `globals` holds the [globals] variables."""

    def __init__(self) -> None:
        self.contexts: dict[str, Context] = {}
        self.globals: dict[str, str] = {}
        self.general: dict[str, str] = {}

    def match(self, context: str, exten: str) -> bool:
        """ast_exists_extension(): does (context, exten) have a priority 1?"""
        return self.step(context, exten, 1) is not None

    def step(self, context: str, exten: str, priority: int) -> Step | None:
        """The step a channel at (context, exten, priority) runs, or None."""
        for extension in self._candidates(context, exten):
            step = extension.steps.get(priority)
            if step is not None:
                return step
        return None

    def priority_of_label(self, context: str, exten: str, label: str) -> int:
        """ast_findlabel_extension(): the labelled priority, or -1 when there is none."""
        for extension in self._candidates(context, exten):
            if label in extension.labels:
                return extension.labels[label]
        return -1

    def _candidates(self, context: str, exten: str) -> list[Extension]:
        """Matching extensions in search order: own (sorted), then includes depth-first."""
        found: list[Extension] = []
        self._collect(context, exten, found, [])
        return found

    def _collect(self, context: str, exten: str, found: list[Extension], stack: list[str]) -> None:
        if len(stack) >= MAX_INCLUDE_DEPTH or context.lower() in stack:
            return  # pbx_find_extension() refuses include loops
        stack.append(context.lower())
        con = self.contexts.get(context)
        if con is None:
            return
        found.extend(e for e in con.extensions if extension_matches(e.name, exten))
        for included in con.includes:
            self._collect(included, exten, found, stack)


# --- extension patterns (pbx.c) ------------------------------------------------------------


def _strip_fluff(text: str) -> str:
    """'-' is eye candy in extensions and patterns (_NXX-NXXX)."""
    return text.replace("-", "")


def _ext_cmp_exten(left: str, right: str) -> int:
    a, b = _strip_fluff(left), _strip_fluff(right)
    return (a > b) - (a < b)


def _pattern_positions(pattern: str) -> list[tuple[int, bytes]]:
    """ext_cmp_pattern_pos() for every position: (score, character-set bitmap)."""
    positions: list[tuple[int, bytes]] = []
    index = 0
    while True:
        while index < len(pattern) and pattern[index] == "-":
            index += 1
        if index >= len(pattern):
            positions.append((0x30000, bytes(32)))
            return positions
        char = pattern[index]
        index += 1
        upper = char.upper()
        if upper in "NXZ":
            low = {"N": "2", "X": "0", "Z": "1"}[upper]
            members = [chr(c) for c in range(ord(low), ord("9") + 1)]
            positions.append(_set_score(members))
        elif char == ".":
            positions.append((0x18000, bytes(32)))
        elif char == "!":
            positions.append((0x28000, bytes(32)))
        elif char == "[":
            end = pattern.find("]", index)
            if end < 0:
                positions.append((0x40000, bytes(32)))
                return positions
            members = _set_members(pattern[index:end])
            index = end + 1
            if members:
                positions.append(_set_score(members))
        else:
            positions.append(_set_score([char]))


def _set_members(body: str) -> list[str]:
    members: list[str] = []
    index = 0
    while index < len(body):
        if index + 2 < len(body) and body[index + 1] == "-":
            members.extend(chr(c) for c in range(ord(body[index]), ord(body[index + 2]) + 1))
            index += 3
        else:
            members.append(body[index])
            index += 1
    return members


def _set_score(members: list[str]) -> tuple[int, bytes]:
    bitmap = bytearray(32)
    count = 0
    for member in members:
        code = ord(member) & 0xFF
        mask = 1 << (7 - code % 8)
        if not bitmap[code // 8] & mask:
            bitmap[code // 8] |= mask
            count += 1
    lowest = min(ord(m) & 0xFF for m in members)
    return (count << 8) | lowest, bytes(bitmap)


def _sort_key(name: str) -> tuple:
    """ext_cmp() as a sort key: exact extensions first, then patterns by specificity.

    Equal scores are ordered by the character set with the higher bitmap first (the memcmp
    with left and right swapped in ext_cmp_pattern), so lower characters come first.
    """
    if not name.startswith("_"):
        return (0, _strip_fluff(name))
    key = []
    for score, bitmap in _pattern_positions(name[1:]):
        key.append((score, bytes(255 - b for b in bitmap)))
    return (1, tuple(key))


def extension_matches(pattern: str, exten: str) -> bool:
    """_extension_match_core() in E_MATCH mode ('!' counts as a match)."""
    if not pattern.startswith("_"):
        return _strip_fluff(pattern) == _strip_fluff(exten)
    if exten.startswith("_") and _sort_key(pattern) == _sort_key(exten):
        return True
    pat = pattern[1:]
    data = _strip_fluff(exten)
    p = d = 0
    while True:
        while p < len(pat) and pat[p] == "-":
            p += 1
        if d >= len(data) or p >= len(pat) or pat[p] == "/":
            break
        char = pat[p]
        if char in ".!":
            return True
        if char == "[":
            end = pat.find("]", p + 1)
            if end < 0:
                return False
            body = pat[p + 1 : end]
            p = end + 1
            if not body:
                continue
            if data[d] not in _set_members(body):
                return False
        elif not _char_matches(char, data[d]):
            return False
        else:
            p += 1
        d += 1
    if d < len(data):
        return False
    return p >= len(pat) or pat[p] in "/!"


_CLASS_RANGES = {"N": ("2", "9"), "X": ("0", "9"), "Z": ("1", "9")}


def _char_matches(pattern_char: str, char: str) -> bool:
    bounds = _CLASS_RANGES.get(pattern_char.upper())
    if bounds is None:
        return pattern_char == char
    return bounds[0] <= char <= bounds[1]


# --- extensions.conf parsing (config.c + pbx_config.c) --------------------------------------


@dataclass(frozen=True)
class _Line:
    path: Path
    number: int
    text: str

    def where(self) -> str:
        return f"{self.path}:{self.number}"


def _read_lines(path: Path, depth: int = 0) -> list[_Line]:
    """The file's lines without comments, with `#include` expanded."""
    if depth > 10:
        raise DialplanError(f"{path}: #include nested too deeply")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DialplanError(f"{path}: cannot read dialplan: {exc.strerror}") from exc
    lines: list[_Line] = []
    in_block_comment = False
    for number, raw in enumerate(text.splitlines(), start=1):
        content, in_block_comment = _strip_comment(raw, in_block_comment)
        content = content.strip()
        if not content:
            continue
        if content.startswith("#include"):
            target = content[len("#include") :].strip().strip('"<>')
            lines.extend(_read_lines((path.parent / target).resolve(), depth + 1))
            continue
        lines.append(_Line(path, number, content))
    return lines


def _strip_comment(raw: str, in_block: bool) -> tuple[str, bool]:
    """Remove `;` comments (`\\;` is a literal `;`) and `;-- ... --;` block comments."""
    out: list[str] = []
    index = 0
    while index < len(raw):
        if in_block:
            end = raw.find("--;", index)
            if end < 0:
                return "".join(out), True
            index = end + 3
            in_block = False
            continue
        char = raw[index]
        if char == "\\" and raw[index + 1 : index + 2] == ";":
            out.append(";")
            index += 2
            continue
        if char == ";":
            if raw.startswith(";--", index):
                in_block = True
                index += 3
                continue
            break
        out.append(char)
        index += 1
    return "".join(out), in_block


def _pbx_strsep(text: str) -> tuple[str, str | None]:
    """Split off the extension at the first ',' outside [...] (pbx_config's pbx_strsep)."""
    square = 0
    index = 0
    while index < len(text):
        char = text[index]
        if char == "[":
            square += 1
        elif char == "]" and square:
            square -= 1
        elif char == "\\":
            index += 1
        elif char == "," and not square:
            return text[:index], text[index + 1 :]
        index += 1
    return text, None


class _Loader:
    """State of pbx_load_config() while reading one context after another."""

    def __init__(self) -> None:
        self.dialplan = Dialplan()
        self.context: Context | None = None
        self.section = ""
        self.last_exten = ""
        self.last_priority = -2

    def feed(self, line: _Line) -> None:
        if line.text.startswith("["):
            self._section(line)
            return
        name, value = self._assignment(line)
        if self.section == "general":
            self.dialplan.general[name] = value
        elif self.section == "globals":
            self.dialplan.globals[name] = substitute(value, self.dialplan.globals)
        elif self.context is None:
            raise DialplanError(f"{line.where()}: '{name}' outside of any [context]")
        elif name.lower().startswith("same"):
            self._same(line, value)
        elif name.lower() == "exten":
            self._exten(line, value)
        elif name.lower() == "include":
            included = substitute(value, self.dialplan.globals).split(",")[0].strip()
            self.context.includes.append(included)
        elif name.lower() in ("ignorepat", "switch", "lswitch", "eswitch", "autohints"):
            log.debug("dialplan line ignored where=%s name=%s", line.where(), name)
        else:
            raise DialplanError(f"{line.where()}: unknown dialplan keyword '{name}'")

    def _section(self, line: _Line) -> None:
        match = re.fullmatch(r"\[([^\]]+)\]\s*(\(.*\))?", line.text)
        if not match:
            raise DialplanError(f"{line.where()}: malformed context header {line.text!r}")
        self.section = match.group(1).strip()
        self.last_exten, self.last_priority = "", -2
        if self.section.lower() in ("general", "globals"):
            self.section = self.section.lower()
            self.context = None
            return
        self.context = self.dialplan.contexts.setdefault(self.section, Context(self.section))

    @staticmethod
    def _assignment(line: _Line) -> tuple[str, str]:
        name, sep, value = line.text.partition("=")
        if not sep or not name.strip():
            raise DialplanError(f"{line.where()}: expected 'name => value', got {line.text!r}")
        return name.strip(), value.removeprefix(">").strip()

    def _same(self, line: _Line, value: str) -> None:
        if not self.last_exten:
            raise DialplanError(f"{line.where()}: 'same =>' without a previous 'exten =>'")
        self._add(line, self.last_exten, value)

    def _exten(self, line: _Line, value: str) -> None:
        exten, rest = _pbx_strsep(value)
        exten = substitute(exten.strip(), self.dialplan.globals)
        if not exten:
            raise DialplanError(f"{line.where()}: extension name missing in {value!r}")
        self.last_exten = exten
        self._add(line, exten, rest or "")

    def _add(self, line: _Line, exten: str, rest: str) -> None:
        assert self.context is not None
        if "/" in exten:
            raise DialplanError(f"{line.where()}: caller-ID matching ('{exten}') not supported")
        pri_text, _, app_text = rest.partition(",")
        priority, label = self._priority(line, exten, pri_text.strip())
        self.last_priority = priority
        if priority == PRIORITY_HINT:
            return
        app, data = _split_application(line, app_text)
        extension = self.context.extension(exten)
        if extension is None:
            extension = Extension(exten)
            self.context.add_extension(extension)
        if priority in extension.steps:
            raise DialplanError(
                f"{line.where()}: priority {priority} of '{exten}' in [{self.context.name}] "
                "is already in use"
            )
        extension.steps[priority] = Step(app, data, priority, label, exten, self.context.name)
        if label:
            extension.labels[label] = priority

    def _priority(self, line: _Line, exten: str, text: str) -> tuple[int, str | None]:
        label = None
        if "(" in text:
            text, _, label = text.partition("(")
            if not label.endswith(")"):
                raise DialplanError(f"{line.where()}: label missing trailing ')'")
            label = label[:-1]
            text = text.strip()
        text, _, plus = text.partition("+")
        if text == "hint":
            return PRIORITY_HINT, None
        if text in ("n", "next", "s", "same"):
            if self.last_priority <= -2:
                raise DialplanError(f"{line.where()}: can't use '{text}' on the first entry")
            priority = self.last_priority + (1 if text in ("n", "next") else 0)
        elif re.fullmatch(r"\s*[+-]?\d+.*", text):
            priority = int(re.match(r"\s*([+-]?\d+)", text).group(1))  # type: ignore[union-attr]
        else:
            assert self.context is not None
            existing = self.context.extension(exten)
            priority = existing.labels.get(text, -1) if existing else -1
            if priority < 1:
                raise DialplanError(f"{line.where()}: invalid priority/label '{text}'")
        if plus:
            priority += int(plus) if plus.strip().lstrip("-").isdigit() else 0
        if priority < 1:
            raise DialplanError(f"{line.where()}: invalid priority '{text}'")
        return priority, label


def _split_application(line: _Line, text: str) -> tuple[str, str]:
    """'App(args)' → ('App', 'args'): data runs to the last ')', as pbx_config does."""
    if "(" not in text:
        app, data = text, ""
    else:
        app, _, data = text.partition("(")
        if "${" in app or "$[" in app:
            app, data = text, ""
        elif ")" in data:
            data = data[: data.rindex(")")]
        else:
            raise DialplanError(f"{line.where()}: no closing parenthesis in {text!r}")
    app = app.strip()
    if not app:
        raise DialplanError(f"{line.where()}: application missing")
    return app, data


def load_dialplan(path: str | Path) -> Dialplan:
    """Parse an extensions.conf file (and its #include files)."""
    loader = _Loader()
    for line in _read_lines(Path(path)):
        loader.feed(line)
    plan = loader.dialplan
    for context in plan.contexts.values():
        for included in context.includes:
            if included not in plan.contexts:
                log.warning(
                    "dialplan include of unknown context context=%s include=%s",
                    context.name,
                    included,
                )
    log.info("dialplan loaded path=%s contexts=%d", path, len(plan.contexts))
    return plan


# --- variable substitution (pbx_variables.c) -------------------------------------------------


def _find_close(text: str, start: int, opener: str, closer: str) -> tuple[int, bool, bool]:
    """Index just past the matching closer, whether nested ${ or $[ were seen, and whether
    the closer was found (if not, Asterisk warns and takes the rest of the text)."""
    depth, needsub, index = 1, False, start
    while depth and index < len(text):
        pair = text[index : index + 2]
        if pair == "$" + opener:
            needsub, depth, index = True, depth + 1, index + 2
            continue
        if pair in ("${", "$["):
            needsub, index = True, index + 2
            continue
        if text[index] == opener:
            depth += 1
        elif text[index] == closer:
            depth -= 1
        index += 1
    return index, needsub, depth == 0


def _parse_variable_name(name: str) -> tuple[str, int, int | None, bool]:
    """Split 'VAR:offset:length' (colon outside parentheses) and detect a function call."""
    parens = 0
    is_function = False
    for index, char in enumerate(name):
        if char == "(":
            is_function, parens = True, parens + 1
        elif char == ")":
            parens -= 1
        elif char == ":" and parens == 0:
            numbers = re.match(r"\s*([+-]?\d+)?(?::\s*([+-]?\d+))?", name[index + 1 :])
            offset = int(numbers.group(1)) if numbers and numbers.group(1) else 0
            length = int(numbers.group(2)) if numbers and numbers.group(2) else None
            return name[:index], offset, length, is_function
    return name, 0, None, is_function


def _substring(value: str, offset: int, length: int | None) -> str:
    """pbx_variables.c substring(): negative offset from the end, negative length trims."""
    size = len(value)
    if offset < 0:
        offset = max(size + offset, 0)
    if offset >= size:
        return ""
    value = value[offset:]
    if length is None:
        return value
    if length >= 0:
        return value[:length]
    return value[: max(len(value) + length, 0)]


def _lookup(
    name: str,
    variables: Mapping[str, str],
    functions: Mapping[str, Callable[[str], str]] | None,
    is_function: bool,
) -> str | None:
    if not is_function:
        return variables.get(name)
    func_name, _, rest = name.partition("(")
    args = rest[: rest.rindex(")")] if ")" in rest else rest
    func = None
    if functions:
        func = functions.get(func_name) or functions.get(func_name.upper())
    if func is None:
        log.debug("dialplan function not registered name=%s", func_name)
        return None
    return func(args)


def substitute(
    text: str,
    variables: Mapping[str, str],
    functions: Mapping[str, Callable[[str], str]] | None = None,
) -> str:
    """Expand ${VAR}, ${VAR:offset:length}, ${FUNC(args)}, nested ${A${B}} and $[expr].

    Unknown variables and functions expand to nothing, as in Asterisk. Built-ins such as
    EXTEN, UNIQUEID or CALLERID(num) come from the caller's `variables`/`functions`.
    """
    out: list[str] = []
    index = 0
    while index < len(text):
        dollar = text.find("$", index)
        if dollar < 0:
            out.append(text[index:])
            break
        out.append(text[index:dollar])
        kind = text[dollar + 1 : dollar + 2]
        if kind not in ("{", "["):
            out.append("$")
            index = dollar + 1
            continue
        closer = "}" if kind == "{" else "]"
        end, needsub, closed = _find_close(text, dollar + 2, kind, closer)
        inner_end = end - 1 if closed else end
        inner = text[dollar + 2 : inner_end]
        if needsub:
            inner = substitute(inner, variables, functions)
        index = end
        if kind == "[":
            out.append(evaluate_expression(inner))
            continue
        name, offset, length, is_function = _parse_variable_name(inner)
        value = _lookup(name, variables, functions, is_function)
        if value is not None:
            out.append(_substring(value, offset, length))
    return "".join(out)


_TOKEN = re.compile(
    r"\s*(?:(\d+(?:\.\d+)?)|(\"[^\"]*\")|(<=|>=|!=|=~|[-+*/%()<>=&|!?:])"
    r"|([^\s\"()<>=&|!?:*/%+-]+))"
)


def evaluate_expression(expression: str) -> str:
    """A small subset of ast_expr2: integers/strings with | & = != < > <= >= + - * / % !.

    Enough for `$[${COUNT} + 1]` and `$["${X}" = "1"]`; anything else yields "" with a log.
    """
    tokens = [t for t in _tokenize(expression)]
    try:
        parser = _ExprParser(tokens)
        value = parser.parse()
    except (ValueError, ZeroDivisionError, IndexError) as exc:
        log.warning("dialplan expression not understood expr=%r error=%s", expression, exc)
        return ""
    return _expr_str(value)


def _tokenize(expression: str) -> list[str]:
    tokens: list[str] = []
    position = 0
    while position < len(expression):
        if expression[position:].strip() == "":
            break
        match = _TOKEN.match(expression, position)
        if not match or match.end() == position:
            raise ValueError(f"bad character at {position}")
        tokens.append(next(group for group in match.groups() if group is not None))
        position = match.end()
    return tokens


def _expr_str(value: int | float | str) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _as_number(value: int | float | str) -> int | float | None:
    if isinstance(value, (int, float)):
        return value
    text = value.strip('"')
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return None


class _ExprParser:
    """Precedence (low→high): | & comparisons +- */% unary ! and -."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.pos = 0

    def parse(self) -> int | float | str:
        value = self._or()
        if self.pos != len(self.tokens):
            raise ValueError(f"unexpected token {self.tokens[self.pos]!r}")
        return value

    def _peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _take(self) -> str:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def _or(self) -> int | float | str:
        left = self._and()
        while self._peek() == "|":
            self._take()
            right = self._and()
            left = left if _truthy(left) else right
        return left

    def _and(self) -> int | float | str:
        left = self._compare()
        while self._peek() == "&":
            self._take()
            right = self._compare()
            left = left if _truthy(left) and _truthy(right) else 0
        return left

    def _compare(self) -> int | float | str:
        left = self._sum()
        while self._peek() in ("=", "!=", "<", ">", "<=", ">="):
            op = self._take()
            right = self._sum()
            a, b = _as_number(left), _as_number(right)
            pair = (
                (a, b)
                if a is not None and b is not None
                else (str(left).strip('"'), str(right).strip('"'))
            )
            result = {
                "=": pair[0] == pair[1],
                "!=": pair[0] != pair[1],
                "<": pair[0] < pair[1],
                ">": pair[0] > pair[1],  # type: ignore[operator]
                "<=": pair[0] <= pair[1],
                ">=": pair[0] >= pair[1],  # type: ignore[operator]
            }[op]
            left = int(result)
        return left

    def _sum(self) -> int | float | str:
        left = self._product()
        while self._peek() in ("+", "-"):
            op = self._take()
            a, b = _number_or_fail(left), _number_or_fail(self._product())
            left = a + b if op == "+" else a - b
        return left

    def _product(self) -> int | float | str:
        left = self._unary()
        while self._peek() in ("*", "/", "%"):
            op = self._take()
            a, b = _number_or_fail(left), _number_or_fail(self._unary())
            if op == "*":
                left = a * b
            elif op == "/":
                left = int(a / b) if isinstance(a, int) and isinstance(b, int) else a / b
            else:
                left = a % b
        return left

    def _unary(self) -> int | float | str:
        token = self._peek()
        if token == "!":
            self._take()
            return int(not _truthy(self._unary()))
        if token == "-":
            self._take()
            return -_number_or_fail(self._unary())
        if token == "(":
            self._take()
            value = self._or()
            if self._take() != ")":
                raise ValueError("missing ')'")
            return value
        token = self._take()
        number = _as_number(token)
        if number is not None and not token.startswith('"'):
            return number
        return token.strip('"')


def _number_or_fail(value: int | float | str) -> int | float:
    number = _as_number(value)
    if number is None:
        raise ValueError(f"not a number: {value!r}")
    return number


def _truthy(value: int | float | str) -> bool:
    number = _as_number(value)
    if number is not None:
        return number != 0
    return value != ""


# --- application arguments (app.c) ----------------------------------------------------------


def split_app_args(data: str) -> list[str]:
    """Split application data on commas like AST_STANDARD_APP_ARGS.

    Commas inside (...), [...] or "..." do not split; quotes are removed; a backslash
    makes the next character literal. Empty data gives []; a trailing comma one more ''.
    """
    args: list[str] = []
    current: list[str] = []
    paren = bracket = 0
    quote = False
    index = 0
    ended_on_delimiter = False
    if not data:
        return []
    while index < len(data):
        char = data[index]
        ended_on_delimiter = False
        if char == "(":
            paren += 1
        elif char == ")" and paren:
            paren -= 1
        elif char == "[":
            bracket += 1
        elif char == "]" and bracket:
            bracket -= 1
        elif char == '"':
            quote = not quote
            index += 1
            continue
        elif char == "\\":
            if index + 1 < len(data):
                current.append(data[index + 1])
            index += 2
            continue
        elif char == "," and not paren and not quote and not bracket:
            args.append("".join(current))
            current = []
            index += 1
            ended_on_delimiter = True
            continue
        current.append(char)
        index += 1
    if current or ended_on_delimiter:
        args.append("".join(current))
    return args
