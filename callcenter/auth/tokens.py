"""Bearer tokens: JWT signed with HS256, carrying expiry, issuer and a token id.

The token names the user; the middleware still loads the user row on every request so a
deactivated user or a changed password or role takes effect at once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from callcenter.auth.config import AuthConfig
from callcenter.auth.principal import Principal, Role
from callcenter.clock import Clock

ALGORITHM = "HS256"


class InvalidToken(Exception):
    """Expired, badly signed, from another issuer or malformed."""


@dataclass(frozen=True)
class TokenClaims:
    user_id: int
    username: str
    role: Role
    unit_id: int | None
    issued_at: datetime
    expires_at: datetime
    token_id: str


def issue_token(principal: Principal, config: AuthConfig, clock: Clock) -> tuple[str, datetime]:
    """Return ``(token, expires_at)`` for ``principal``."""
    now = clock.now().astimezone(UTC)
    expires_at = (now + timedelta(minutes=config.token_ttl_minutes)).replace(microsecond=0)
    claims = {
        "sub": str(principal.user_id),
        "name": principal.username,
        "role": str(principal.role),
        "unit": principal.unit_id,
        "iss": config.token_issuer,
        "iat": now.timestamp(),  # sub-second: a password change in the same second counts
        "exp": int(expires_at.timestamp()),
        "jti": uuid.uuid4().hex,
    }
    token = jwt.encode(claims, config.token_secret.get_secret_value(), algorithm=ALGORITHM)
    return token, expires_at


def decode_token(token: str, config: AuthConfig, clock: Clock) -> TokenClaims:
    """Verify signature, issuer and expiry against ``clock`` (not the machine's time)."""
    try:
        claims = jwt.decode(
            token,
            config.token_secret.get_secret_value(),
            algorithms=[ALGORITHM],
            issuer=config.token_issuer,
            options={"require": ["exp", "iat", "iss", "sub", "jti"], "verify_exp": False,
                     "verify_iat": False},
        )
        expires_at = datetime.fromtimestamp(int(claims["exp"]), UTC)
        if clock.now() >= expires_at:
            raise InvalidToken("token expired")
        return TokenClaims(
            user_id=int(claims["sub"]),
            username=str(claims["name"]),
            role=Role(claims["role"]),
            unit_id=claims.get("unit"),
            issued_at=datetime.fromtimestamp(float(claims["iat"]), UTC),
            expires_at=expires_at,
            token_id=str(claims["jti"]),
        )
    except InvalidToken:
        raise
    except (jwt.PyJWTError, KeyError, ValueError, TypeError) as exc:
        raise InvalidToken(str(exc)) from exc
