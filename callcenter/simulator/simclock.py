"""The simulator's clock: simulated seconds run `1 / time_scale` times faster than wall time.

Every timer is an asyncio timer on the running loop (no busy loops). With time_scale 0.01 a
60 s call takes 0.6 s of wall time while Uniqueids, Timestamps and durations are simulated.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any


class SimClock:
    def __init__(self, time_scale: float = 1.0, start_time: float | None = None) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.time_scale = time_scale
        self._start_sim = time.time() if start_time is None else float(start_time)
        self._start_mono = time.monotonic()
        # real time from now: stamps read the wall clock as Asterisk's do, so a client's
        # latency measured against its own wall clock does not drift with the clock's slew
        self._wall = start_time is None and time_scale == 1.0

    def rescale(self, time_scale: float) -> None:
        """Change the speed from now on (simulated time stays continuous)."""
        now = self.now()
        self.time_scale = time_scale
        self._start_sim = now
        self._start_mono = time.monotonic()
        self._wall = False

    def now(self) -> float:
        """Simulated epoch seconds."""
        if self._wall:
            return time.time()
        return self._start_sim + (time.monotonic() - self._start_mono) / self.time_scale

    def datetime(self) -> datetime:
        return datetime.fromtimestamp(self.now(), UTC)

    def wall(self, sim_seconds: float) -> float:
        return max(0.0, sim_seconds) * self.time_scale

    async def sleep(self, sim_seconds: float) -> None:
        await asyncio.sleep(self.wall(sim_seconds))

    def call_later(
        self, sim_seconds: float, callback: Callable[..., Any], *args: Any
    ) -> asyncio.TimerHandle:
        return asyncio.get_running_loop().call_later(self.wall(sim_seconds), callback, *args)

    async def wait_for(self, aw: Any, sim_timeout: float | None) -> Any:
        timeout = None if sim_timeout is None else self.wall(sim_timeout)
        return await asyncio.wait_for(aw, timeout)
