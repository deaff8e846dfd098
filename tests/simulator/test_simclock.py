"""The simulator's clock: real time reads the wall clock (as Asterisk's stamps do), simulated
time runs on the monotonic clock and ignores the wall clock's steps and slew."""

from __future__ import annotations

import time

import pytest

from callcenter.simulator.simclock import SimClock


def test_real_time_clock_follows_the_wall_clock_even_when_it_steps(monkeypatch) -> None:
    clock = SimClock()
    stepped = time.time() + 3600.0
    monkeypatch.setattr(time, "time", lambda: stepped)
    assert clock.now() == stepped


@pytest.mark.parametrize("scale,start", [(0.5, None), (1.0, 1_700_000_000.0)])
def test_simulated_clock_ignores_wall_clock_steps(monkeypatch, scale, start) -> None:
    clock = SimClock(scale, start)
    before = clock.now()
    monkeypatch.setattr(time, "time", lambda: before + 3600.0)
    assert before <= clock.now() < before + 1.0


def test_rescale_keeps_time_continuous_and_leaves_the_wall_clock(monkeypatch) -> None:
    clock = SimClock()
    clock.rescale(0.01)
    before = clock.now()
    monkeypatch.setattr(time, "time", lambda: before + 3600.0)
    assert before <= clock.now() < before + 100.0  # 1 s of wall time at most
    assert clock.wall(100.0) == pytest.approx(1.0)
