"""Settings of the auth package (section ``[auth]`` of callcenter.toml).

Masking rules are data: an office decides which caller fields each role may see unmasked,
and for which need (``view`` the order, ``contact`` the citizen, ``revisit``).

The token secret has no default in the repository: it comes from the environment or a
secrets file, or, outside production, from ``with_local_token_secret`` (generated once and
kept in the data directory).
"""

from __future__ import annotations

import logging
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from callcenter.auth.local_secret import load_or_create_secret
from callcenter.auth.passwords import MIN_PASSWORD_LENGTH, MIN_PASSWORD_SCORE, PasswordPolicy
from callcenter.auth.principal import Role

log = logging.getLogger(__name__)

TOKEN_SECRET_FILE = "token_secret"
# Token secrets this repository once shipped as defaults: public, refused in production.
PUBLISHED_TOKEN_SECRETS = frozenset({"dev-only-insecure-token-secret-change-me"})

CALLER_FIELDS = ("name", "phone", "address", "ip")


class MaskingRule(BaseModel):
    """``role`` sees ``fields`` unmasked when the need is one of ``needs`` ("*" = any)."""

    model_config = ConfigDict(extra="forbid")

    role: Role
    fields: list[str]
    needs: list[str] = Field(default_factory=lambda: ["*"])
    own_unit_only: bool = False  # only for orders assigned to the principal's unit

    @field_validator("fields")
    @classmethod
    def _known_fields(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(CALLER_FIELDS))
        if unknown:
            raise ValueError(f"unknown caller fields {unknown}; known: {list(CALLER_FIELDS)}")
        return value


def default_masking_rules() -> list[MaskingRule]:
    """Agents and supervisors need the caller. A unit contacting the citizen sees the name
    (to greet them), never the number: its call-back is dialled by the service
    (click-to-call), so the number stays with the hotline."""
    return [
        MaskingRule(role=Role.AGENT, fields=["name", "phone", "address"]),
        MaskingRule(role=Role.SUPERVISOR, fields=["name", "phone", "address"]),
        MaskingRule(role=Role.UNIT_HANDLER, fields=["name"], needs=["contact"],
                    own_unit_only=True),
    ]


class AuthConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # No default: from the environment, or generated per installation (see module doc).
    token_secret: SecretStr | None = None
    token_issuer: str = "callcenter"
    token_ttl_minutes: int = Field(default=480, ge=1, le=24 * 60)
    login_max_attempts: int = Field(default=5, ge=1)  # failures per username per window
    login_max_attempts_per_ip: int = Field(default=30, ge=1)  # an office shares one IP (NAT)
    login_window_seconds: int = Field(default=900, ge=1)
    initial_admin_username: str = "admin"
    initial_admin_password: SecretStr | None = None
    masking: list[MaskingRule] = Field(default_factory=default_masking_rules)
    password_min_length: int = Field(default=MIN_PASSWORD_LENGTH, ge=8, le=128)
    password_min_score: int = Field(default=MIN_PASSWORD_SCORE, ge=0, le=4)
    """zxcvbn's estimate: 0 too guessable, 1 very guessable, 2 somewhat guessable,
    3 safely unguessable (the default), 4 very unguessable."""

    def password_policy(self) -> PasswordPolicy:
        return PasswordPolicy(min_length=self.password_min_length,
                              min_score=self.password_min_score)


def with_local_token_secret(config: AuthConfig, data_dir: Path) -> AuthConfig:
    """``config`` itself when it has a token secret; else a copy holding the secret kept in
    ``data_dir`` (generated on the first start). Never for production, which must
    configure its own."""
    if config.token_secret is not None:
        return config
    path = data_dir / TOKEN_SECRET_FILE
    secret, created = load_or_create_secret(path)
    # WARNING: shown even before logging is configured, and worth seeing at every start.
    log.warning("auth.token_secret_%s path=%s (no auth.token_secret configured; set "
                "CALLCENTER_AUTH__TOKEN_SECRET to choose one)",
                "generated" if created else "reused", path)
    return config.model_copy(update={"token_secret": SecretStr(secret)})
