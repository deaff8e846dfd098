"""Alembic migrations, run from code: no ``alembic.ini`` is needed at run time.

``upgrade(url)`` brings a database to the newest revision; ``state(url)`` tells the service
whether a database is empty, current, behind, or not ours, so ``serve`` can migrate an
empty database itself and refuse to run against one that is behind.
"""

from __future__ import annotations

import logging
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


def alembic_config() -> Config:
    """An in-memory Alembic config pointing at this package's scripts."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", str(SCRIPT_LOCATION / "versions"))
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
