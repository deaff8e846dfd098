"""Early drop of AMI events nobody uses, before they are parsed.

Asterisk sends far more than the service needs (RTCP reports, most ``VarSet``, ``Newexten``
of every dialplan step, device states, CDRs, DTMF begin/end ...). Parsing a message into
fields costs much more than looking at its first line, so the framer asks ``EventFilter``
first, with the raw text of the message. The rules mirror the translation in ``events.py``
(the events it translates, the variables and applications it keeps); manager.conf ships the
same filter so that a real Asterisk does not even send the rest.

Anything the filter cannot judge cheaply (a reply, a peer spelling ``Event`` differently, a
list item answering one of our actions) is kept and parsed as before.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

EVENT_PREFIX = "Event: "
ACTION_ID = "\r\nActionID: "
VARIABLE = "\r\nVariable: "
APPLICATION = "\r\nApplication: "


def header_value(message: str, marker: str) -> str | None:
    """The value of the header starting at ``marker`` (``"\\r\\nName: "``), or None."""
    start = message.find(marker)
    if start < 0:
        return None
    start += len(marker)
    end = message.find("\r\n", start)
    return message[start:end] if end >= 0 else message[start:]


_KEEP, _DROP, _BY_VARIABLE, _BY_APPLICATION = range(4)
"""What the first line of an event decides: keep it, drop it (unless it answers an action),
or look at its ``Variable`` / ``Application`` header."""


@dataclass(slots=True)
class EventFilter:
    """Decides from the raw text of one AMI message whether it is worth parsing.

    ``events``: names kept whole; ``VarSet`` is kept only for ``variables`` (or names with
    one of ``variable_prefixes``) and ``Newexten`` only for ``applications``. An event with an
    ``ActionID`` answers one of our actions (list items) and is always kept.
    """

    events: frozenset[str]
    variables: frozenset[str] = frozenset()
    variable_prefixes: tuple[str, ...] = ()
    applications: frozenset[str] = frozenset()
    dropped: int = field(default=0, init=False)
    _rules: dict[str, int] = field(default_factory=dict, init=False, repr=False)
    """First line (``Event: Name``) -> rule; a name not in it is dropped."""

    def __post_init__(self) -> None:
        self._rules = {EVENT_PREFIX + name: _KEEP for name in self.events}
        self._rules[EVENT_PREFIX + "VarSet"] = _BY_VARIABLE if "VarSet" in self.events \
            else _DROP
        self._rules[EVENT_PREFIX + "Newexten"] = _BY_APPLICATION if "Newexten" in self.events \
            else _DROP

    @classmethod
    def of(cls, events: Iterable[str], *, variables: Iterable[str] = (),
           variable_prefixes: Iterable[str] = (),
           applications: Iterable[str] = ()) -> EventFilter:
        return cls(frozenset(events), frozenset(variables), tuple(variable_prefixes),
                   frozenset(applications))

    def keeps(self, message: str) -> bool:
        """True if ``message`` (one AMI message without its blank line) must be parsed.

        Runs for every message Asterisk sends, so the first line alone picks the rule (one
        dictionary look-up); only ``VarSet`` and ``Newexten`` read a second header."""
        end = message.find("\r\n")
        rule = self._rules.get(message[:end] if end >= 0 else message)
        if rule == _KEEP:
            return True
        if rule == _BY_VARIABLE:
            name = header_value(message, VARIABLE)
            keep = name is not None and (name in self.variables
                                         or name.startswith(self.variable_prefixes))
        elif rule == _BY_APPLICATION:
            keep = header_value(message, APPLICATION) in self.applications
        elif rule is None and not message.startswith(EVENT_PREFIX):
            return True  # a reply, or a peer spelling ``Event`` otherwise: parse it
        else:
            keep = False
        if keep or ACTION_ID in message:
            return True
        self.dropped += 1
        return False
