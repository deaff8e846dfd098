"""Where recordings live: a small interface, a local directory by default.

Keys look like ``recordings/YYYY/MM/DD/<id>.wav``; they are never paths given by a user.
A key is written once: ``put`` refuses to overwrite (the file is evidence).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

CHUNK = 1 << 20
KEY = re.compile(r"^recordings/\d{4}/\d{2}/\d{2}/\d+\.wav$")


class StoreError(Exception):
    """The store could not take or give a file (disk full, unreachable, refused)."""


class AlreadyStored(StoreError):
    """The key exists: recordings are never overwritten."""


@dataclass(frozen=True)
class Stored:
    key: str
    sha256: str
    size: int


class RecordingStore(Protocol):
    def put(self, key: str, source: Path) -> Stored: ...

    def path(self, key: str) -> Path: ...

    def exists(self, key: str) -> bool: ...

    def digest(self, key: str) -> Stored: ...

    def delete(self, key: str) -> None: ...

    def keys(self) -> Iterator[str]: ...


def key_for(recording_id: int, at: datetime) -> str:
    return f"recordings/{at:%Y/%m/%d}/{recording_id}.wav"


def sha256_of(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


class LocalStore:
    """Files under ``root``; a put copies to a temporary name, then links it into place
    (``os.link`` fails if the key exists, so nothing is ever overwritten)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        if not KEY.match(key):
            raise StoreError(f"not a recording key: {key!r}")
        return self.root / key

    def put(self, key: str, source: Path) -> Stored:
        target = self.path(key)
        if target.exists():
            raise AlreadyStored(f"{key} is already stored")
        temporary = target.with_name(f".{target.name}.{os.getpid()}.part")
        digest, size = hashlib.sha256(), 0
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with source.open("rb") as src, temporary.open("xb") as dst:
                while chunk := src.read(CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                    dst.write(chunk)
                dst.flush()
                os.fsync(dst.fileno())
            os.link(temporary, target)
        except FileExistsError:
            raise AlreadyStored(f"{key} is already stored") from None
        except OSError as exc:
            raise StoreError(f"cannot store {key}: {exc.strerror or exc}") from exc
        finally:
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)
        return Stored(key, digest.hexdigest(), size)

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def digest(self, key: str) -> Stored:
        try:
            sha, size = sha256_of(self.path(key))
        except OSError as exc:
            raise StoreError(f"cannot read {key}: {exc.strerror or exc}") from exc
        return Stored(key, sha, size)

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def keys(self) -> Iterator[str]:
        base = self.root / "recordings"
        if not base.is_dir():
            return
        for path in sorted(base.glob("*/*/*/*.wav")):
            key = path.relative_to(self.root).as_posix()
            if KEY.match(key):
                yield key
