"""A secret generated on the first start and kept in the data directory (mode 0600).

Why: a default written in the repository is public, so a plain ``callcenter serve`` signed
its tokens with a key anyone could read, and anyone could forge an admin token. Without a
configured secret, each installation now gets its own random one, kept so that tokens
survive a restart and processes of one installation (same data directory) agree.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from pathlib import Path

log = logging.getLogger(__name__)

SECRET_BYTES = 48  # 64 URL-safe characters
MIN_SECRET_LENGTH = 32


class LocalSecretError(RuntimeError):
    """The kept secret cannot be read or created; the message names the file."""


def load_or_create_secret(path: Path) -> tuple[str, bool]:
    """``(secret, created)``: the secret in ``path``, or a new random one written there.

    Creation is atomic (written aside, then hard-linked into place), so processes starting
    together end up with the same secret.
    """
    try:
        return _read(path), False
    except FileNotFoundError:
        pass
    except (OSError, UnicodeDecodeError) as exc:
        raise LocalSecretError(f"cannot read the secret kept in {path}: {exc}") from exc
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        return _create(path)
    except OSError as exc:
        raise LocalSecretError(f"cannot keep a secret in {path}: {exc.strerror}") from exc


def _create(path: Path) -> tuple[str, bool]:
    secret = secrets.token_urlsafe(SECRET_BYTES)
    aside = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(secret + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(aside, path)  # fails if another process was first: use theirs
        except FileExistsError:
            return _read(path), False
    finally:
        aside.unlink(missing_ok=True)
    return secret, True


def _read(path: Path) -> str:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("local_secret.permissions_tightened path=%s mode=%o", path, mode)
        path.chmod(0o600)
    secret = path.read_text(encoding="ascii").strip()
    if len(secret) < MIN_SECRET_LENGTH:
        raise LocalSecretError(f"{path} holds no usable secret (under {MIN_SECRET_LENGTH} "
                               "characters); delete it to have a new one generated")
    return secret
