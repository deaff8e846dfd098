"""The calls feature on the telephony listener: the call tracker writes the call log."""

from __future__ import annotations

from callcenter.calls.tracker import CallTracker
from callcenter.feature import Listener, Runtime


def listeners(runtime: Runtime) -> list[Listener]:
    """One tracker per Asterisk (``ami.pbx``); it also feeds /metrics' live call count."""
    tracker = CallTracker(runtime.sessionmaker, runtime.clock, pbx=runtime.settings.ami.pbx)
    runtime.call_tracker = tracker
    return [tracker]
