"""Supervision's background loop: the daily scan, run once per working day."""

from __future__ import annotations

from callcenter.feature import Runtime, Worker
from callcenter.supervision.scheduler import SupervisionScheduler
from callcenter.tickets.calendar import WorkingCalendar


def workers(runtime: Runtime) -> list[Worker]:
    tickets = runtime.settings.tickets
    calendar = WorkingCalendar(tickets.timezone, tickets.calendar_dir)
    scheduler = SupervisionScheduler(runtime.sessionmaker, runtime.bus, runtime.clock,
                                     calendar, tickets.supervision)
    return [Worker("supervision", scheduler.run_forever)]
