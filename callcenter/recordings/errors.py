"""Domain errors of the recordings feature (an HTTP status and a stable code each)."""

from __future__ import annotations

from callcenter.errors import DomainError


class RecordingError(DomainError):
    code = "recording_error"


class RecordingNotFound(RecordingError):
    status = 404
    code = "not_found"


class ListeningRefused(RecordingError):
    status = 403
    code = "forbidden"


class NoOneToCall(RecordingError):
    """The order has no number, is anonymous, or the caller asked not to be contacted."""

    status = 409
    code = "rule_violation"


class TelephonyUnavailable(RecordingError):
    """No AMI connection in this process (the web role alone, or Asterisk down): nothing
    was dialled and no attempt recorded."""

    status = 409
    code = "telephony_unavailable"
