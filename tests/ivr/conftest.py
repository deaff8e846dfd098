"""IVR fixtures: the shipped flows' prompts synthesized once per session (real espeak-ng),
and a rig of simulator + telephony + call log + IVR on a SQLite file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import callcenter.store.models  # noqa: F401  every table
from callcenter.clock import SystemClock
from callcenter.ivr.app import load_flows, prompts_of
from callcenter.ivr.config import IvrConfig
from callcenter.ivr.prompts import PromptCatalog, PromptLibrary
from callcenter.store.base import Base
from callcenter.store.engine import create_engine, create_sessionmaker
from tests.ivr.rig import FLOWS, Rig, build_rig, close_rig


@pytest.fixture(scope="session")
def prompt_dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(sounds, cache): every prompt of the shipped flows, built as the service builds them."""
    root = tmp_path_factory.mktemp("ivr-prompts")
    config = IvrConfig(flows_dir=FLOWS, sounds_dir=root / "sounds", cache_dir=root / "cache")
    catalog = PromptCatalog(FLOWS)
    library = PromptLibrary(catalog, config)
    library.build(prompts_of(load_flows(config, catalog)))
    return config.sounds_dir, config.cache_dir


@pytest.fixture
async def sqlite_sessionmaker(sqlite_url: str
                              ) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(sqlite_url)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield create_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
async def rig(sqlite_sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path,
              prompt_dirs: tuple[Path, Path]) -> AsyncIterator[Rig]:
    built = await build_rig(sqlite_sessionmaker, SystemClock(), tmp_path, *prompt_dirs)
    try:
        yield built
    finally:
        await close_rig(built)
