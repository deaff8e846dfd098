"""Every model module, imported once, so ``Base.metadata`` knows every table.

Migrations (autogenerate and the schema test) and ``create_all`` in tests rely on this
list being complete: a feature that adds a model module adds one import line here.
"""

from __future__ import annotations

import callcenter.auth.models  # noqa: F401  units, users, audit log, login attempts
import callcenter.calls.models  # noqa: F401  call log (one row per Linkedid)
import callcenter.ivr.models  # noqa: F401  IVR announcements, ticket PINs, lookups
import callcenter.knowledge.models  # noqa: F401  knowledge base articles and terms
import callcenter.queues.models  # noqa: F401  agents, skills, state periods, intervals
import callcenter.recordings.models  # noqa: F401  recordings, attachments, contact attempts
import callcenter.reports.models  # noqa: F401  frozen months, revisit appeals, typical cases
import callcenter.revisit.models  # noqa: F401  campaigns, revisits, attempts, do-not-call
import callcenter.speech.models  # noqa: F401  transcripts, draft suggestions
import callcenter.supervision.models  # noqa: F401  outbox, flags, daily runs
import callcenter.tickets.models  # noqa: F401  tickets, assignments, timeline, counters
from callcenter.store.base import Base

__all__ = ["Base"]
