"""The telephony role's start: the IVR's flows and prompts are checked before FastAGI takes
calls; a missing prompt is built, or stops the start naming it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.bus.memory import MemoryBus
from callcenter.clock import SystemClock
from callcenter.feature import Runtime
from callcenter.ivr import FEATURE
from callcenter.ivr.prompts import PromptError
from callcenter.settings import load_settings
from tests.ivr.rig import FLOWS


def runtime(sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path,
            cache: Path, build: bool) -> Runtime:
    settings = load_settings(None, env={
        "CALLCENTER_IVR__FLOWS_DIR": str(tmp_path / "flows"),
        "CALLCENTER_IVR__SOUNDS_DIR": str(tmp_path / "sounds"),
        "CALLCENTER_IVR__CACHE_DIR": str(cache),
        "CALLCENTER_IVR__BUILD_MISSING_PROMPTS": "true" if build else "false",
    })
    return Runtime(settings, sessionmaker, MemoryBus(), SystemClock())


async def test_missing_prompts_stop_the_start_unless_built(
        sqlite_sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path,
        prompt_dirs: tuple[Path, Path]) -> None:
    shutil.copytree(FLOWS, tmp_path / "flows", ignore=shutil.ignore_patterns("prompts"))
    cache = prompt_dirs[1]
    refusing = runtime(sqlite_sessionmaker, tmp_path, cache, build=False)
    with pytest.raises(PromptError, match=f"prompts missing in {tmp_path / 'sounds'}: "
                                          r"after-hours \(en\)"):
        await FEATURE.agi_scripts(refusing)
    assert refusing.stops == []  # nothing was built, nothing to release
    building = runtime(sqlite_sessionmaker, tmp_path, cache, build=True)
    scripts = await FEATURE.agi_scripts(building)
    try:
        assert (tmp_path / "sounds" / "zh" / "hotline-welcome.wav").is_file()
        assert set(scripts) == {"ivr"}
    finally:
        for release in building.stops:
            await release()
