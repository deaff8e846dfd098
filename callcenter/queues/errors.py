"""Domain errors of the queues feature (an HTTP status and a stable code each)."""

from __future__ import annotations

from callcenter.errors import DomainError


class QueueError(DomainError):
    code = "queue_error"


class AgentNotFound(QueueError):
    status = 404
    code = "not_found"


class NotAllowed(QueueError):
    """The step does not fit the agent's state (e.g. pause while logged out)."""

    status = 409
    code = "rule_violation"


class InterfaceTaken(QueueError):
    status = 409
    code = "conflict"


class TelephonyUnavailable(QueueError):
    """No AMI connection in this process (the web role alone, or Asterisk down): nothing
    was sent to Asterisk and nothing changed."""

    status = 409
    code = "telephony_unavailable"


class AsteriskRefused(QueueError):
    """Asterisk answered the action with an error (its message is passed on)."""

    status = 409
    code = "asterisk_refused"
