"""The project's one working-day calendar: every deadline is computed here.

Chinese working days are not Monday to Friday: public holidays are moved around with make-up
working weekends (调休). The ``chinesecalendar`` package knows the State Council's schedule for
past years and the current one; a file ``<year>.toml`` in the calendar directory adds (or
corrects) a year. A year known by neither is an error, never a silent guess.

Day boundaries are the office's local zone (Asia/Shanghai); every instant returned is UTC.
"""

from __future__ import annotations

import tomllib
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

import chinese_calendar
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from callcenter.tickets.config import ConfigError


class CalendarError(LookupError):
    """The calendar does not know a year: add ``<year>.toml`` to the calendar directory."""


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
        self.is_workday = lru_cache(maxsize=4096)(self._is_workday)

    def _is_workday(self, day: date) -> bool:
        override = self._overrides.get(day.year)
        if override is not None:
            if day in override.workdays:
                return True
            if day in override.holidays:
                return False
            return day.weekday() < 5
        try:
            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError as exc:
            raise CalendarError(
                f"no working-day calendar for {day.year}: add {day.year}.toml "
                "to the calendar directory"
            ) from exc

    def check_years(self, today: date) -> list[int]:
        """Raise when this year is unknown; return the years ahead (next one) still unknown.

        Deadlines of December orders run into the next year, so the service warns early.
        """
        self.is_workday(date(today.year, 1, 1))
        missing = []
        try:
            self.is_workday(date(today.year + 1, 1, 1))
        except CalendarError:
            missing.append(today.year + 1)
        return missing

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
