"""Password hashing with Argon2id (argon2-cffi's recommended parameters) and the policy a
new password must meet.

The policy rejects what guessers try first: short passwords, blanks, the user's own name,
and anything the zxcvbn estimator (dictionaries, keyboard walks, dates, l33t) rates below
the configured score (0 = too guessable ... 4 = very unguessable).
"""

from __future__ import annotations

from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from zxcvbn import zxcvbn

_hasher = PasswordHasher()
MIN_PASSWORD_LENGTH = 10
MIN_PASSWORD_SCORE = 3
MAX_PASSWORD_LENGTH = 1024  # the login route accepts no longer ones
_ESTIMATED_PREFIX = 72  # zxcvbn's limit; a longer password is at least this strong

# Verified when the username is unknown, so both failures cost the same time.
_DUMMY_HASH = _hasher.hash("not-a-real-password-used-for-timing-only")


class WeakPasswordError(ValueError):
    """The password breaks the policy; the message says which rule, for the user."""


@dataclass(frozen=True)
class PasswordPolicy:
    min_length: int = MIN_PASSWORD_LENGTH
    min_score: int = MIN_PASSWORD_SCORE

    def check(self, password: str, username: str | None = None) -> None:
        """Raise ``WeakPasswordError`` naming the first rule ``password`` breaks."""
        if len(password) < self.min_length:
            raise WeakPasswordError(
                f"password must have at least {self.min_length} characters")
        if len(password) > MAX_PASSWORD_LENGTH:
            raise WeakPasswordError(
                f"password must have at most {MAX_PASSWORD_LENGTH} characters")
        if not password.strip():
            raise WeakPasswordError("password must not be only spaces")
        if username and _contains_name(password, username):
            raise WeakPasswordError("password must not contain the username")
        self._check_guessability(password, username)

    def _check_guessability(self, password: str, username: str | None) -> None:
        result = zxcvbn(password[:_ESTIMATED_PREFIX], user_inputs=[username] if username else [])
        if result["score"] >= self.min_score:
            return
        hint = result["feedback"].get("warning") or "add another uncommon word or two"
        raise WeakPasswordError(
            f"password is too easy to guess (strength {result['score']} of 4, needs "
            f"{self.min_score}): {hint}")


DEFAULT_POLICY = PasswordPolicy()


def _contains_name(password: str, username: str) -> bool:
    """Equal to the name, or containing it when the name is long enough to matter."""
    password, username = password.casefold(), username.casefold()
    return password.strip() == username or (len(username) >= 3 and username in password)


def hash_password(password: str, *, username: str | None = None,
                  policy: PasswordPolicy = DEFAULT_POLICY) -> str:
    """Check ``password`` against ``policy``, then hash it."""
    policy.check(password, username)
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; a None hash still spends the time of one check."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def rehash(password: str) -> str:
    """A fresh hash of an already accepted password (parameters changed); no policy check."""
    return _hasher.hash(password)
