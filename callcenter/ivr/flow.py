"""IVR flows as data: one TOML file per flow in ``ivr/``, checked before the service starts.

A flow is a graph of nodes. Input nodes (``menu``, ``progress``) name their prompt, their
valid keys, a timeout, a retry count and where invalid input and timeouts go once the
retries are used up; the others play, branch on the hotline's state, switch the language,
or end the IVR (``queue``: hand the call to a queue; ``hangup``: end it). A flow that names
an unknown prompt, a dangling target, an unreachable node or a loop without exit stops the
start with an error naming the file and the node.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

NodeType = Literal["play", "menu", "language", "branch", "queue", "message", "progress",
                   "answer", "hangup"]
Condition = Literal["emergency", "holiday", "closed", "open"]
"""``emergency``/``holiday``: the announcement is switched on (API, supervisor), and for
``holiday`` also a public holiday of the working-day calendar; ``closed``/``open``:
outside/inside the staffed hours (``ivr.open_from``/``open_until``, working days only if
``ivr.working_days_only``)."""
TERMINAL: frozenset[str] = frozenset({"queue", "hangup"})
DIGITS = frozenset("0123456789*#")

REQUIRED: dict[str, tuple[str, ...]] = {
    "play": ("prompt", "next"),
    "menu": ("prompt", "keys", "timeout", "retries", "on_invalid", "on_timeout"),
    "language": ("language", "next"),
    "branch": ("when", "next"),
    "queue": (),
    "message": ("prompt", "next"),
    "progress": ("prompt", "timeout", "retries", "on_invalid", "on_timeout", "next"),
    "answer": ("article", "prompt", "next"),
    "hangup": (),
}
"""The fields each kind of node must name."""

DIALPLAN_QUEUE = "hotline"
"""The dialplan queues ``hotline${IVR_QUEUE_SUFFIX}`` (extensions.conf): a flow's queues are
``hotline`` or ``hotline-<name>``, each defined in queues.conf."""

PROGRESS_PROMPTS = ("progress-ask-pin", "progress-not-found", "progress-refused")
"""Prompts the progress lookup plays besides its own (the status itself is spoken)."""


class FlowError(Exception):
    """A flow file the service will not run; the message names the file and the node."""


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    condition: Condition = Field(alias="if")
    goto: str


class Node(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: NodeType
    prompt: str | None = None
    keys: dict[str, str] | None = None
    timeout: float | None = Field(None, gt=0, le=60, description="seconds of silence")
    retries: int | None = Field(None, ge=0, le=9)
    on_invalid: str | None = None
    on_timeout: str | None = None
    invalid_prompt: str | None = None
    next: str | None = None
    language: str | None = None
    when: list[Rule] | None = None
    queue: str | None = None
    topic: str | None = Field(None, max_length=64)
    article: str | None = Field(None, max_length=200)
    digits: int = Field(14, ge=1, le=20, description="ticket number length (progress)")

    def targets(self) -> Iterator[tuple[str, str]]:
        """(field, node) for every node this one can go to."""
        for digit, target in (self.keys or {}).items():
            yield f"keys.{digit}", target
        for name in ("next", "on_invalid", "on_timeout"):
            value = getattr(self, name)
            if value is not None:
                yield name, value
        for i, rule in enumerate(self.when or []):
            yield f"when[{i}]", rule.goto

    def prompts(self) -> Iterator[str]:
        for name in (self.prompt, self.invalid_prompt):
            if name:
                yield name
        if self.type == "progress":
            yield from PROGRESS_PROMPTS


class Flow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = ""
    description: str = ""
    start: str
    languages: list[str] = Field(min_length=1)
    """The first is the caller's language until a ``language`` node changes it."""
    queues: dict[str, str] = Field(default_factory=dict)
    """Language -> the queue a ``queue`` node without its own queue hands the call to."""
    fallback_queue: str = "hotline"
    """Where a caller goes when the IVR itself fails: to an agent, never dropped."""
    nodes: dict[str, Node]

    def queue_for(self, node: Node, language: str) -> str:
        return node.queue or self.queues.get(language) or self.fallback_queue


def load_flow(path: Path, known_prompt: Callable[[str, str], bool]) -> Flow:
    """Read and check one flow file; ``known_prompt(name, language)`` says whether a prompt
    exists (a recording or a text to synthesize)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise FlowError(f"{path}: cannot read the flow: {exc}") from exc
    try:
        flow = Flow.model_validate({"name": path.stem, **data})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        node = f"node {first['loc'][1]!r}: " if first["loc"][:1] == ("nodes",) \
            and len(first["loc"]) > 1 else ""
        raise FlowError(f"{path}: {node}{where}: {first['msg']}") from exc
    check_flow(flow, known_prompt, path)
    return flow


def check_flow(flow: Flow, known_prompt: Callable[[str, str], bool], path: Path) -> None:
    """Every rule of a runnable flow; raises ``FlowError`` at the first broken one."""

    def fail(node: str, reason: str) -> FlowError:
        return FlowError(f"{path}: node {node!r}: {reason}")

    if flow.start not in flow.nodes:
        raise FlowError(f"{path}: start {flow.start!r} is not a node")
    for where, queue in [("fallback_queue", flow.fallback_queue),
                         *((f"queues.{k}", v) for k, v in flow.queues.items())]:
        if not queue.startswith(DIALPLAN_QUEUE):
            raise FlowError(f"{path}: {where}: queue {queue!r} does not start with "
                            f"{DIALPLAN_QUEUE!r}, the queue the dialplan hands calls to")
    for name, node in flow.nodes.items():
        for field in REQUIRED[node.type]:
            if getattr(node, field) in (None, {}, []):
                raise fail(name, f"a {node.type} node needs {field!r}")
        for digit in node.keys or {}:
            if len(digit) != 1 or digit not in DIGITS:
                raise fail(name, f"key {digit!r} is not one of 0-9 * #")
        for field, target in node.targets():
            if target not in flow.nodes:
                raise fail(name, f"{field} goes to {target!r}, which is not a node")
        for prompt in node.prompts():
            for language in flow.languages:
                if not known_prompt(prompt, language):
                    raise fail(name, f"prompt {prompt!r} is unknown in {language!r} "
                               f"(no recording, no text in prompts.toml)")
        if node.queue is not None and not node.queue.startswith(DIALPLAN_QUEUE):
            raise fail(name, f"queue {node.queue!r} does not start with {DIALPLAN_QUEUE!r}, "
                       f"the queue the dialplan hands calls to")
        if node.type == "language" and node.language not in flow.languages:
            raise fail(name, f"language {node.language!r} is not one of {flow.languages}")
    reachable = _reachable(flow, [flow.start])
    for name in flow.nodes:
        if name not in reachable:
            raise fail(name, f"unreachable from start {flow.start!r}")
    for name in flow.nodes:
        if not any(flow.nodes[n].type in TERMINAL for n in _reachable(flow, [name])):
            raise fail(name, "a loop without exit: no queue or hangup node can be reached")


def _reachable(flow: Flow, start: list[str]) -> set[str]:
    seen: set[str] = set()
    todo = list(start)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(target for _, target in flow.nodes[name].targets())
    return seen
