"""Users, roles, tokens, the login rate limit, PII masking and the audit log.

Its routes come first in the registry: its middleware authenticates every ``/api/v1``
request before any other feature's handler runs.
"""

from callcenter.auth.principal import Principal, Role
from callcenter.feature import Feature

FEATURE = Feature(name="auth", http=True)

__all__ = ["FEATURE", "Principal", "Role"]
