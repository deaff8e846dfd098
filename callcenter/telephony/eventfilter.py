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

    @classmethod
    def of(cls, events: Iterable[str], *, variables: Iterable[str] = (),
           variable_prefixes: Iterable[str] = (),
           applications: Iterable[str] = ()) -> EventFilter:
        return cls(frozenset(events), frozenset(variables), tuple(variable_prefixes),
                   frozenset(applications))

    def keeps(self, message: str) -> bool:
        """True if ``message`` (one AMI message without its blank line) must be parsed."""
        if not message.startswith(EVENT_PREFIX):
            return True
        end = message.find("\r\n", 7)
        name = message[7:end] if end >= 0 else message[7:]
        if name == "VarSet":
            keep = self._variable_wanted(header_value(message, VARIABLE))
        elif name == "Newexten":
            keep = ("Newexten" in self.events
                    and header_value(message, APPLICATION) in self.applications)
        else:
            keep = name in self.events
        if keep or ACTION_ID in message:
            return True
        self.dropped += 1
        return False

    def _variable_wanted(self, name: str | None) -> bool:
        if name is None or "VarSet" not in self.events:
            return False
        return name in self.variables or name.startswith(self.variable_prefixes)
