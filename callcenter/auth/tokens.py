"""Bearer tokens: JWT signed with HS256, carrying expiry, issuer, a token id and the user's
token generation.

The token names the user; the middleware still loads the user row on every request and
calls ``check_token_current``, so a deactivated user or a changed password, role or unit
takes effect at once. The generation makes that permanent: deactivation (and every such
change) bumps it, so reactivating a user does not bring their old tokens back.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from callcenter.auth.config import AuthConfig
from callcenter.auth.models import User
from callcenter.auth.principal import Principal, Role
from callcenter.clock import Clock

ALGORITHM = "HS256"


class InvalidToken(Exception):
    """Expired, badly signed, from another issuer, malformed, or revoked."""


@dataclass(frozen=True)
class TokenClaims:
    user_id: int
    username: str
    role: Role
    unit_id: int | None
    issued_at: datetime
    expires_at: datetime
    token_id: str
    token_generation: int = 0  # tokens issued before generations existed carry none


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
        "gen": principal.token_generation,
    }
    token = jwt.encode(claims, _signing_key(config), algorithm=ALGORITHM)
    return token, expires_at


def decode_token(token: str, config: AuthConfig, clock: Clock) -> TokenClaims:
    """Verify signature, issuer and expiry against ``clock`` (not the machine's time)."""
    try:
        claims = jwt.decode(
            token,
            _signing_key(config),
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
            token_generation=int(claims.get("gen", 0)),
        )
    except InvalidToken:
        raise
    except (jwt.PyJWTError, KeyError, ValueError, TypeError) as exc:
        raise InvalidToken(str(exc)) from exc


def check_token_current(user: User | None, claims: TokenClaims) -> None:
    """Raise ``InvalidToken`` unless ``claims`` (verified) still speak for ``user`` (its row
    as of now): active, same name, not older than its password, same token generation."""
    if user is None or not user.active or user.username != claims.username:
        raise InvalidToken("user not active")
    if claims.issued_at < user.password_changed_at:
        raise InvalidToken("token issued before the last password change")
    if claims.token_generation != user.token_generation:
        raise InvalidToken("token revoked")


class MissingTokenSecret(RuntimeError):
    """No signing key: ``load_settings`` fills it in (configured, or kept in the data
    directory); a config built by hand must set it."""


def _signing_key(config: AuthConfig) -> str:
    if config.token_secret is None:
        raise MissingTokenSecret("auth.token_secret is not set")
    return config.token_secret.get_secret_value()
