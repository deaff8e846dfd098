"""What every report needs besides the database, built once from the settings."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.reports.config import ReportsConfig
from callcenter.reports.service import (
    Filters,
    Period,
    report_figures,
    topic_groups,
    topic_names,
)
from callcenter.tickets.calendar import WorkingCalendar
from callcenter.tickets.config import Taxonomy, load_taxonomy


@dataclass(frozen=True)
class ReportContext:
    config: ReportsConfig
    taxonomy: Taxonomy
    calendar: WorkingCalendar
    tz: str

    @classmethod
    def from_settings(cls, settings: Any) -> ReportContext:
        tickets = settings.tickets
        return cls(settings.reports, load_taxonomy(tickets.taxonomy_path),
                   WorkingCalendar(tickets.timezone, tickets.calendar_dir), tickets.timezone)

    @property
    def topic_groups(self) -> dict[str, str]:
        return topic_groups(self.taxonomy)

    @property
    def topic_labels(self) -> dict[str, str]:
        return topic_names(self.taxonomy)

    def month(self, month: str) -> Period:
        return Period.month(month, self.tz)

    def filters(self, unit_id: int | None, topic: str | None) -> Filters:
        topics = tuple(self.taxonomy.topic_family(topic)) if topic else None
        return Filters(unit_id=unit_id, topics=topics)

    async def figures(self, session: AsyncSession, period: Period,
                      filters: Filters | None = None, as_of: datetime | None = None
                      ) -> dict[str, Any]:
        """The period's figures as JSON values (what is stored, served and printed)."""
        figures = await report_figures(session, period, self.config,
                                       topic_groups=self.topic_groups,
                                       topic_labels=self.topic_labels,
                                       calendar=self.calendar, filters=filters or Filters(),
                                       as_of=as_of)
        return json.loads(json.dumps(figures))
