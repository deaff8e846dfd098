"""Users, roles, tokens, the login rate limit, PII masking and the audit log."""

from callcenter.auth.principal import Principal, Role

__all__ = ["Principal", "Role"]
