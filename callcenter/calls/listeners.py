"""The calls feature on the telephony listener: the call tracker writes the call log, and
the back-fill adds the calls Asterisk handled while the service was not listening."""

from __future__ import annotations

from callcenter.calls.backfill import CdrBackfill
from callcenter.calls.tracker import CallTracker
from callcenter.feature import Listener, Runtime


def listeners(runtime: Runtime) -> list[Listener]:
    """One tracker per Asterisk (``ami.pbx``); it also feeds /metrics' live call count."""
    settings = runtime.settings
    tracker = CallTracker(runtime.sessionmaker, runtime.clock, pbx=settings.ami.pbx,
                          config=settings.calls)
    runtime.call_tracker = tracker
    return [tracker, CdrBackfill(runtime.sessionmaker, settings.calls, pbx=settings.ami.pbx)]
