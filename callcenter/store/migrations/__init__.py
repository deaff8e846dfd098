"""Alembic migrations, run from code: no ``alembic.ini`` is needed at run time.

``upgrade(url)`` brings a database to the newest revision; ``state(url)`` tells the service
whether a database is empty, current, behind, or not ours, so ``serve`` can migrate an
empty database itself and refuse to run against one that is behind.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import URL

from callcenter.store.engine import create_engine

log = logging.getLogger(__name__)

SCRIPT_LOCATION = Path(__file__).resolve().parent
VERSION_TABLE = "alembic_version"


def alembic_config(extra_versions: Path | None = None) -> Config:
    """An in-memory Alembic config pointing at this package's scripts."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.set_main_option("path_separator", "os")
    locations = [str(SCRIPT_LOCATION / "versions")]
    if extra_versions is not None:
        locations.append(str(extra_versions))
    config.set_main_option("version_locations", os.pathsep.join(locations))
    return config


def head_revision() -> str | None:
    """The newest revision in the chain (None while no migration exists)."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def is_known(revision: str | None) -> bool:
    """Whether ``revision`` belongs to this code's chain (unknown: a newer code's database)."""
    if revision is None:
        return True
    try:
        return ScriptDirectory.from_config(alembic_config()).get_revision(revision) is not None
    except Exception:  # alembic raises several kinds for unknown ids
        return False


@dataclass(frozen=True)
class MigrationState:
    current: str | None
    head: str | None
    tables: frozenset[str]

    @property
    def empty(self) -> bool:
        return not (self.tables - {VERSION_TABLE}) and self.current is None

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head

    @property
    def unmanaged(self) -> bool:
        """Tables exist but Alembic never ran here: not a database we should touch."""
        return bool(self.tables - {VERSION_TABLE}) and self.current is None


async def state(url: str | URL) -> MigrationState:
    """Where ``url``'s database stands relative to the migration chain."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            current, tables = await conn.run_sync(_inspect_sync)
    finally:
        await engine.dispose()
    return MigrationState(current=current, head=head_revision(), tables=frozenset(tables))


def _inspect_sync(connection: Any) -> tuple[str | None, list[str]]:
    context = MigrationContext.configure(connection)
    return context.get_current_revision(), inspect(connection).get_table_names()


async def upgrade(url: str | URL, revision: str = "head") -> None:
    """Run migrations up to ``revision`` on ``url`` (SQLite or PostgreSQL, async drivers).

    SQLite's foreign keys are switched off for the run: batch migrations rebuild tables,
    which would otherwise trip over references to the table being rebuilt.
    """
    engine = create_engine(url, sqlite_foreign_keys=False)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade_sync, revision)
    finally:
        await engine.dispose()
    log.info("database upgraded revision=%s", revision)


def _upgrade_sync(connection: Any, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def draft_revision(message: str, rev_id: str | None = None,
                         directory: Path | None = None) -> Path:
    """Write a new migration from the difference between the models and the chain's head.

    A scratch SQLite database is brought to head and compared with ``Base.metadata``; the
    draft (batch operations, portable to PostgreSQL) must be read and edited before use.
    ``directory``: where to write it (default: the package's ``versions/``).
    """
    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite+aiosqlite:///{scratch}/draft.db"
        await upgrade(url)
        engine = create_engine(url, sqlite_foreign_keys=False)
        try:
            async with engine.begin() as conn:
                script = await conn.run_sync(_revision_sync, message, rev_id, directory)
        finally:
            await engine.dispose()
    return Path(script.path)


def _revision_sync(connection: Any, message: str, rev_id: str | None,
                   directory: Path | None) -> Any:
    config = alembic_config(directory)
    config.attributes["connection"] = connection
    return command.revision(config, message=message, autogenerate=True, rev_id=rev_id,
                            version_path=str(directory) if directory else None)
