"""Supervision's settings: the daily scan and the hotspot triggers.

The section stays ``[tickets.supervision]`` in the config file, because its "due soon"
horizon must equal the tickets list filter's (``TicketsConfig`` checks both agree).
"""

from __future__ import annotations

from datetime import time

from pydantic import BaseModel, ConfigDict, Field


class SupervisionConfig(BaseModel):
    """督办 (section ``[tickets.supervision]``): the daily scan and the hotspot triggers."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    run_at: time = time(8, 30)  # office local time, on working days
    due_soon_working_days: int = Field(default=2, ge=0, le=30)
    stale_run_minutes: int = Field(default=60, ge=1)  # a claimed run not finished: redo
    hotspot_window_days: int = Field(default=7, ge=1, le=90)
    hotspot_min_callers: int = Field(default=10, ge=2)
    hotspot_min_unit_complaints: int = Field(default=10, ge=2)
    hotspot_similarity: float = Field(default=0.45, gt=0, le=1)
