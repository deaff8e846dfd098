from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from callcenter.simulator.config import SimulatorConfig
from callcenter.simulator.scenario import Simulator

from .support import CAPTURE_DIALPLAN, CAPTURES, SHARED, FastAgiServer, answer_only


@pytest.fixture(scope="session")
def captures() -> Path:
    if not CAPTURES.is_dir():
        raise RuntimeError(f"captures not found at {CAPTURES}")
    return CAPTURES


@pytest.fixture
async def capture_sim(tmp_path: Path, captures: Path) -> AsyncIterator[Simulator]:
    """The simulator running the capture rig's own config (shared/asterisk/captures/dialplan)."""
    sim = Simulator(
        SimulatorConfig(
            port=0,
            time_scale=0.05,
            seed=7,
            asterisk_config_dir=CAPTURE_DIALPLAN,
            recordings_dir=tmp_path / "rec",
            speech_samples_dir=SHARED / "speech-samples",
            bad_login_delay=0.05,
        )
    )
    await sim.start()
    yield sim
    await sim.stop()


@pytest.fixture
async def hotline_sim(tmp_path: Path) -> AsyncIterator[Simulator]:
    """The simulator running the project's config/asterisk (the 12345 hotline)."""
    sim = Simulator(
        SimulatorConfig(
            port=0,
            time_scale=0.01,
            seed=11,
            recordings_dir=tmp_path / "rec",
            speech_samples_dir=SHARED / "speech-samples",
            bad_login_delay=0.05,
        )
    )
    await sim.start()
    yield sim
    await sim.stop()


@pytest.fixture
def agi_script():
    """The script the `ivr` fixture serves; a test module may override it."""
    return answer_only


@pytest.fixture
async def ivr(hotline_sim: Simulator, agi_script) -> AsyncIterator[FastAgiServer]:
    """The service's side of the hotline's AGI(ivr) step: a script, then back to the dialplan."""
    server = FastAgiServer(agi_script)
    hotline_sim.config.agi_port = await server.start()
    yield server
    await server.stop()
