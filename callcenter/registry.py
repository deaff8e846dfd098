"""The one list of features: it drives the routes, listeners, AGI scripts and workers of
every role (see ``feature.py``). Adding a feature is one line here.

Order matters for the web: auth first (its middleware guards the other routes).
"""

from __future__ import annotations

from callcenter import (
    auth,
    calls,
    ivr,
    knowledge,
    queues,
    recordings,
    reports,
    revisit,
    speech,
    supervision,
    tickets,
)
from callcenter.feature import Feature

FEATURES: tuple[Feature, ...] = (
    auth.FEATURE,
    tickets.FEATURE,
    supervision.FEATURE,
    knowledge.FEATURE,
    calls.FEATURE,
    ivr.FEATURE,
    reports.FEATURE,
    recordings.FEATURE,
    queues.FEATURE,
    speech.FEATURE,
    revisit.FEATURE,
)
