"""Settings of the auth package (section ``[auth]`` of callcenter.toml).

Masking rules are data: an office decides which caller fields each role may see unmasked,
and for which need (``view`` the order, ``contact`` the citizen, ``revisit``).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from callcenter.auth.principal import Role

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
    """Agents and supervisors need the caller; a unit sees the phone only to contact them."""
    return [
        MaskingRule(role=Role.AGENT, fields=["name", "phone", "address"]),
        MaskingRule(role=Role.SUPERVISOR, fields=["name", "phone", "address"]),
        MaskingRule(role=Role.UNIT_HANDLER, fields=["name", "phone"], needs=["contact"],
                    own_unit_only=True),
    ]


class AuthConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Demo default only; production mode refuses to start with it (see users.py).
    token_secret: SecretStr = SecretStr("dev-only-insecure-token-secret-change-me")
    token_issuer: str = "callcenter"
    token_ttl_minutes: int = Field(default=480, ge=1, le=24 * 60)
    login_max_attempts: int = Field(default=5, ge=1)  # failures per username per window
    login_max_attempts_per_ip: int = Field(default=30, ge=1)  # an office shares one IP (NAT)
    login_window_seconds: int = Field(default=900, ge=1)
    initial_admin_username: str = "admin"
    initial_admin_password: SecretStr | None = None
    masking: list[MaskingRule] = Field(default_factory=default_masking_rules)
