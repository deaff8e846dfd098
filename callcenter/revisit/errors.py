"""The revisit feature's domain errors."""

from __future__ import annotations

from callcenter.errors import DomainError


class CampaignNotFound(DomainError):
    status = 404
    code = "campaign_not_found"


class RevisitNotFound(DomainError):
    status = 404
    code = "revisit_not_found"


class NotRevisitable(DomainError):
    """The ticket cannot be revisited now (no number, anonymous, opted out, not closed)."""

    status = 409
    code = "not_revisitable"


class DuplicateCampaign(DomainError):
    status = 409
    code = "duplicate_campaign"


class InvalidInput(DomainError):
    status = 422
    code = "invalid_input"


class MessageNotFound(DomainError):
    status = 404
    code = "message_not_found"


class MessageAlreadyReplied(DomainError):
    """The text survey was answered already, with another reply."""

    status = 409
    code = "message_already_replied"
