"""The project's one working-day calendar: every deadline is computed here.

Chinese working days are not Monday to Friday: public holidays are moved around with make-up
working weekends (调休). The ``chinesecalendar`` package knows the State Council's schedule for
past years and the current one; a file ``<year>.toml`` in the calendar directory adds (or
corrects) a year. A year known by neither gets a *provisional* calendar: weekends and the
fixed-date statutory holidays (元旦 1 Jan, 劳动节 1 May, 国庆 1-3 Oct) only. A hotline cannot
stop registering orders in December because next year's schedule is not published yet; the
office is warned loudly (once per year, at start and on first use) and every deadline
computed over such a year says so (``provisional_years``; the order is marked
``deadline_provisional``), and is counted again when the office adds ``<year>.toml``
(``recompute.py``: at start and with ``callcenter tickets recompute-deadlines``).

Day boundaries are the office's local zone (Asia/Shanghai); every instant returned is UTC.
"""

from __future__ import annotations

import logging
import tomllib
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

import chinese_calendar
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from callcenter.tickets.config import ConfigError

log = logging.getLogger(__name__)

# Statutory holidays that fall on a fixed date every year (the lunar ones cannot be guessed,
# nor can the make-up working weekends): the provisional calendar of an unknown year.
FIXED_HOLIDAYS = ((1, 1), (5, 1), (10, 1), (10, 2), (10, 3))


class YearOverride(BaseModel):
    model_config = ConfigDict(extra="forbid")

    holidays: list[date] = []
    workdays: list[date] = []

    @field_validator("holidays", "workdays", mode="before")
    @classmethod
    def _dates(cls, value: object) -> object:
        if isinstance(value, list):
            return [v.isoformat() if isinstance(v, date) else v for v in value]
        return value


def load_overrides(directory: Path) -> dict[int, YearOverride]:
    """Read every ``<year>.toml`` of ``directory``; errors name the file and the key."""
    overrides: dict[int, YearOverride] = {}
    if not directory.is_dir():
        return overrides
    for path in sorted(directory.glob("*.toml")):
        if not path.stem.isdigit():
            raise ConfigError(f"{path}: file name must be <year>.toml")
        year = int(path.stem)
        try:
            override = YearOverride.model_validate(tomllib.loads(path.read_text("utf-8")))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
        except ValidationError as exc:
            first = exc.errors()[0]
            key = ".".join(str(part) for part in first["loc"])
            raise ConfigError(f"{path}: {key}: {first['msg']}") from exc
        for key in ("holidays", "workdays"):
            for day in getattr(override, key):
                if day.year != year:
                    raise ConfigError(f"{path}: {key}: {day} is not in {year}")
        overrides[year] = override
    return overrides


class WorkingCalendar:
    """Working days and deadlines in the office's zone."""

    def __init__(self, tz: str = "Asia/Shanghai", overrides_dir: Path | None = None) -> None:
        self.zone = ZoneInfo(tz)
        self._overrides = load_overrides(overrides_dir) if overrides_dir else {}
        self._overrides_dir = overrides_dir
        self._sources: dict[int, str] = {}
        self.is_workday = lru_cache(maxsize=4096)(self._is_workday)

    def source_of(self, year: int) -> str:
        """Where ``year``'s working days come from: ``override``, ``library`` or
        ``provisional`` (neither knows it: weekends and fixed-date holidays only)."""
        source = self._sources.get(year)
        if source is None:
            source = self._find_source(year)
            self._sources[year] = source
            if source == "provisional":
                log.warning(
                    "calendar_provisional year=%s dir=%s hint=deadlines in %s use weekends and "
                    "fixed-date holidays only; add %s.toml with the State Council schedule",
                    year, self._overrides_dir, year, year)
        return source

    def _find_source(self, year: int) -> str:
        if year in self._overrides:
            return "override"
        try:
            chinese_calendar.is_workday(date(year, 6, 1))
        except NotImplementedError:  # chinese_calendar's way of saying "year not known"
            return "provisional"
        return "library"

    def _is_workday(self, day: date) -> bool:
        source = self.source_of(day.year)
        if source == "override":
            override = self._overrides[day.year]
            if day in override.workdays:
                return True
            if day in override.holidays:
                return False
            return day.weekday() < 5
        if source == "library":
            return bool(chinese_calendar.is_workday(day))
        return day.weekday() < 5 and (day.month, day.day) not in FIXED_HOLIDAYS

    def provisional_years(self, first: date, last: date) -> list[int]:
        """The years between two days (inclusive) whose calendar is only provisional."""
        return [y for y in range(first.year, last.year + 1)
                if self.source_of(y) == "provisional"]

    def check_years(self, today: date) -> list[int]:
        """The years (this one and the next) that only have a provisional calendar.

        Deadlines of December orders run into the next year, so the service warns early.
        """
        return self.provisional_years(today, date(today.year + 1, 1, 1))

    def local_date(self, instant: datetime) -> date:
        return instant.astimezone(self.zone).date()

    def workday_on_or_after(self, day: date) -> date:
        while not self.is_workday(day):
            day += timedelta(days=1)
        return day

    def add_workdays(self, day: date, n: int) -> date:
        """The ``n``-th working day after ``day`` (``day`` itself is not counted)."""
        while n > 0:
            day += timedelta(days=1)
            if self.is_workday(day):
                n -= 1
        return day

    def end_of_day(self, day: date) -> datetime:
        """The last instant (UTC) of a local day: a deadline "on day X" means until then."""
        local = datetime.combine(day + timedelta(days=1), time(0), self.zone)
        return (local - timedelta(microseconds=1)).astimezone(UTC)

    def working_days_deadline(self, start: datetime, n: int) -> datetime:
        """Due at the end of the ``n``-th working day after the local day of ``start``."""
        return self.end_of_day(self.add_workdays(self.local_date(start), n))

    def working_day_of(self, instant: datetime) -> date:
        """The working day an instant belongs to: a weekend or holiday counts as the next one."""
        return self.workday_on_or_after(self.local_date(instant))

    def same_working_day(self, a: datetime, b: datetime) -> bool:
        return self.working_day_of(a) == self.working_day_of(b)

    def add_working_hours(
        self, start: datetime, hours: float, day_start: time, day_end: time
    ) -> datetime:
        """``hours`` of office time after ``start``; time outside office hours does not count."""
        remaining = timedelta(hours=hours)
        local = start.astimezone(self.zone)
        day = local.date()
        cursor = local
        while True:
            if self.is_workday(day):
                opens = datetime.combine(day, day_start, self.zone)
                closes = datetime.combine(day, day_end, self.zone)
                begin = max(cursor, opens)
                if begin < closes:
                    if begin + remaining <= closes:
                        return (begin + remaining).astimezone(UTC)
                    remaining -= closes - begin
            day += timedelta(days=1)
            cursor = datetime.combine(day, time(0), self.zone)

    def end_of_working_day(self, instant: datetime) -> datetime:
        return self.end_of_day(self.working_day_of(instant))
