"""The migration chain builds exactly the models' schema, on SQLite and on PostgreSQL."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

from callcenter.store import migrations
from callcenter.store.engine import create_engine
from callcenter.store.models import Base


def _diff(connection: Any) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "compare_server_default": True})
    return compare_metadata(context, Base.metadata)


async def test_upgrade_head_gives_exactly_the_models(db_url: str) -> None:
    assert (await migrations.state(db_url)).empty
    await migrations.upgrade(db_url)
    engine = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
    finally:
        await engine.dispose()
    after = await migrations.state(db_url)
    assert after.up_to_date and not after.empty and after.current == migrations.head_revision()


async def test_one_linear_chain_starting_with_the_call_log() -> None:
    scripts = ScriptDirectory.from_config(migrations.alembic_config())
    assert len(scripts.get_heads()) == 1
    chain = [rev.revision for rev in scripts.walk_revisions("base", "heads")][::-1]
    assert chain[0] == "0001_calls"


async def test_a_database_at_an_older_revision_is_behind(sqlite_url: str) -> None:
    await migrations.upgrade(sqlite_url, "0001_calls")
    state = await migrations.state(sqlite_url)
    assert state.current == "0001_calls" and not state.empty
    assert not state.up_to_date or migrations.head_revision() == "0001_calls"


async def test_tables_without_alembic_history_are_unmanaged(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE someone_elses (id INTEGER PRIMARY KEY)"))
    finally:
        await engine.dispose()
    state = await migrations.state(sqlite_url)
    assert state.unmanaged and not state.empty


async def test_a_drafted_revision_follows_the_head(tmp_path) -> None:
    path = await migrations.draft_revision("nothing new", "9999_draft", directory=tmp_path)
    assert path.parent == tmp_path and path.name.startswith("9999_draft")
    text = path.read_text(encoding="utf-8")
    assert f"down_revision: str | None = {migrations.head_revision()!r}" in text
    assert "op." not in text  # the models equal the migrated schema: nothing to do


def test_every_model_module_is_listed_in_store_models() -> None:
    """A model module missing from callcenter/store/models.py escapes the schema test."""
    import re
    from pathlib import Path

    package = Path(migrations.__file__).resolve().parents[2]
    listed = (package / "store" / "models.py").read_text(encoding="utf-8")
    for path in package.rglob("*.py"):
        if re.search(r"^class \w+\(Base\):", path.read_text(encoding="utf-8"), re.M):
            module = ".".join(path.relative_to(package.parent).with_suffix("").parts)
            assert f"import {module} " in listed or f"import {module}\n" in listed, module
