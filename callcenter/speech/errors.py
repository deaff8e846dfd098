"""The speech feature's domain errors (HTTP status and stable code each)."""

from __future__ import annotations

from callcenter.errors import DomainError


class TranscriptNotFound(DomainError):
    status = 404
    code = "not_found"


class SuggestionNotFound(DomainError):
    status = 404
    code = "not_found"


class NothingToTranscribe(DomainError):
    status = 409
    code = "nothing_to_transcribe"


class TranscriptionError(Exception):
    """A recording could not be transcribed; the message is the reason users see."""
