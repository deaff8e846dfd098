"""Deadlines on the working-day calendar: real holidays, make-up working days, overrides."""

from __future__ import annotations

import logging
from datetime import date, time
from pathlib import Path

import pytest

from callcenter.tickets.calendar import WorkingCalendar
from callcenter.tickets.config import REPO, ConfigError, TicketsConfig, load_taxonomy
from tests.tickets.conftest import local

CAL = WorkingCalendar("Asia/Shanghai", REPO / "config" / "calendar")
TAXONOMY = load_taxonomy(REPO / "config" / "taxonomy.toml")

# Working days per type (config/taxonomy.toml) and, per holiday period, the expected last
# day for 3, 5, 10 and 15 working days, counted by hand from the State Council schedules.
DAYS = {"consultation": 3, "help": 5, "complaint": 5, "report": 10, "suggestion": 5,
        "praise": 3, "other": 3}
PERIODS = {
    # Spring Festival 2025: off 28 Jan - 4 Feb; Sunday 26 Jan and Saturday 8 Feb worked.
    "spring_2025": (local(2025, 1, 27, 10), {3: date(2025, 2, 7), 5: date(2025, 2, 10),
                                             10: date(2025, 2, 17), 15: date(2025, 2, 24)}),
    # National Day 2025: off 1-8 Oct; Sunday 28 Sep and Saturday 11 Oct worked.
    "national_2025": (local(2025, 9, 30, 10), {3: date(2025, 10, 11), 5: date(2025, 10, 14),
                                               10: date(2025, 10, 21), 15: date(2025, 10, 28)}),
    # Spring Festival 2026: off 15-23 Feb; Saturdays 14 and 28 Feb worked.
    "spring_2026": (local(2026, 2, 13, 10), {3: date(2026, 2, 25), 5: date(2026, 2, 27),
                                             10: date(2026, 3, 5), 15: date(2026, 3, 12)}),
    # National Day 2026: off 1-7 Oct; Saturday 10 Oct worked.
    "national_2026": (local(2026, 9, 30, 10), {3: date(2026, 10, 10), 5: date(2026, 10, 13),
                                               10: date(2026, 10, 20), 15: date(2026, 10, 27)}),
}


@pytest.mark.parametrize("period", sorted(PERIODS))
@pytest.mark.parametrize("ticket_type", sorted(DAYS))
def test_reply_deadline_by_type_across_holidays(period: str, ticket_type: str) -> None:
    start, expected = PERIODS[period]
    n = TAXONOMY.working_days_for(ticket_type, company=False)
    assert n == DAYS[ticket_type]
    due = CAL.working_days_deadline(start, n)
    assert due == CAL.end_of_day(expected[n])
    assert due.astimezone(local(2026, 1, 1).tzinfo).time() == time(23, 59, 59, 999999)


@pytest.mark.parametrize("period", sorted(PERIODS))
def test_company_requests_get_fifteen_working_days(period: str) -> None:
    start, expected = PERIODS[period]
    n = TAXONOMY.working_days_for("complaint", company=True)
    assert n == 15
    assert CAL.working_days_deadline(start, n) == CAL.end_of_day(expected[15])


def test_make_up_saturday_is_a_working_day_and_holiday_monday_is_not() -> None:
    assert CAL.is_workday(date(2026, 2, 14))  # Saturday, 调休
    assert not CAL.is_workday(date(2026, 2, 16))  # Monday, Spring Festival
    assert CAL.is_workday(date(2025, 9, 28))  # Sunday, 调休
    assert not CAL.is_workday(date(2025, 10, 8))  # Wednesday, National Day


def test_acceptance_in_working_hours_spills_onto_the_make_up_saturday() -> None:
    # Friday 13 Feb 2026 17:00, 2 office hours (09:00-18:00): 1 h Friday, 1 h Saturday 14th.
    due = CAL.add_working_hours(local(2026, 2, 13, 17), 2, time(9), time(18))
    assert due == local(2026, 2, 14, 10)
    # Dispatched on a holiday evening: the clock starts on the next working morning.
    assert CAL.add_working_hours(local(2026, 2, 20, 20), 2, time(9), time(18)) == local(
        2026, 2, 24, 11)


def test_same_working_day_treats_days_off_as_the_next_working_day() -> None:
    assert CAL.same_working_day(local(2026, 11, 21, 9), local(2026, 11, 23, 17))  # Sat, Mon
    assert not CAL.same_working_day(local(2026, 11, 20, 17), local(2026, 11, 21, 9))  # Fri, Sat
    assert CAL.same_working_day(local(2026, 11, 20, 0, 5), local(2026, 11, 20, 23, 55))


def test_override_file_defines_a_year_the_library_does_not_know(tmp_path: Path) -> None:
    (tmp_path / "2031.toml").write_text(
        "holidays = [2031-01-01, 2031-01-02, 2031-01-03]\nworkdays = [2031-01-04]\n")
    calendar = WorkingCalendar("Asia/Shanghai", tmp_path)
    assert calendar.is_workday(date(2031, 1, 4))  # Saturday made a working day
    assert not calendar.is_workday(date(2031, 1, 2))  # Thursday holiday
    assert not calendar.is_workday(date(2031, 1, 5))  # ordinary Sunday
    # Dispatched on New Year's Day: 4 Jan (Sat), 6 Jan (Mon), 7 Jan (Tue).
    assert calendar.working_days_deadline(local(2031, 1, 1, 9), 3) == calendar.end_of_day(
        date(2031, 1, 7))
    assert calendar.source_of(2031) == "override" and calendar.source_of(2026) == "library"


def test_a_year_nobody_knows_gets_a_provisional_calendar_and_a_warning(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    calendar = WorkingCalendar("Asia/Shanghai", tmp_path)
    with caplog.at_level(logging.WARNING, logger="callcenter.tickets.calendar"):
        assert calendar.is_workday(date(2032, 3, 1))  # an ordinary Monday
    assert calendar.source_of(2032) == "provisional"
    assert any("calendar_provisional year=2032" in r.getMessage() for r in caplog.records)
    assert not calendar.is_workday(date(2032, 1, 1))  # 元旦, Thursday
    assert not calendar.is_workday(date(2032, 10, 1))  # 国庆, Friday
    assert calendar.is_workday(date(2032, 10, 4))  # Monday: only 1-3 Oct are fixed dates
    assert not calendar.is_workday(date(2032, 5, 1))  # 劳动节 (a Saturday anyway)
    # Dispatched Wed 29 Sep 2032, 3 working days: Thu 30 Sep, Mon 4 Oct, Tue 5 Oct.
    assert calendar.working_days_deadline(local(2032, 9, 29, 10), 3) == calendar.end_of_day(
        date(2032, 10, 5))
    assert calendar.provisional_years(date(2031, 12, 30), date(2032, 1, 5)) == [2031, 2032]


def test_override_file_errors_name_the_file_and_the_key(tmp_path: Path) -> None:
    (tmp_path / "2031.toml").write_text('holidays = ["2031-02-30"]\n')
    with pytest.raises(ConfigError, match=r"2031\.toml: holidays\.0"):
        WorkingCalendar("Asia/Shanghai", tmp_path)
    (tmp_path / "2031.toml").write_text("workdays = [2030-12-28]\n")
    with pytest.raises(ConfigError, match=r"2031\.toml: workdays: 2030-12-28 is not in 2031"):
        WorkingCalendar("Asia/Shanghai", tmp_path)


def test_taxonomy_errors_name_the_file_and_the_key(tmp_path: Path) -> None:
    path = tmp_path / "taxonomy.toml"
    text = (REPO / "config" / "taxonomy.toml").read_text("utf-8")
    path.write_text(text.replace("complaint = 5", "complaint = -5"), "utf-8")
    with pytest.raises(ConfigError, match=r"taxonomy\.toml: deadlines\.complaint: .*greater"):
        load_taxonomy(path)
    path.write_text(text.replace("report = 10", ""), "utf-8")
    with pytest.raises(ConfigError, match=r"deadlines\.report: Field required"):
        load_taxonomy(path)
    with pytest.raises(ConfigError, match="file not found"):
        load_taxonomy(tmp_path / "missing.toml")


def test_tickets_config_rejects_unknown_keys() -> None:
    with pytest.raises(ValueError, match="extra"):
        TicketsConfig.model_validate({"acceptance": {"mode": "same_day", "hourz": 2}})
    assert TicketsConfig.model_validate({"acceptance": {"mode": "same_day"}}).acceptance.mode \
        == "same_day"


def test_start_up_check_names_the_years_still_missing(tmp_path: Path) -> None:
    assert CAL.check_years(date(2026, 11, 21)) == [2027]
    (tmp_path / "2031.toml").write_text("holidays = [2031-01-01]\n")
    calendar = WorkingCalendar("Asia/Shanghai", tmp_path)
    assert calendar.check_years(date(2031, 6, 1)) == [2032]
    assert calendar.check_years(date(2033, 1, 1)) == [2033, 2034]


def test_supervision_settings_live_in_the_tickets_section() -> None:
    config = TicketsConfig.model_validate({
        "due_soon_working_days": 3,
        "supervision": {"run_at": "08:00", "hotspot_min_callers": 12}})
    assert config.supervision.due_soon_working_days == 3  # one horizon for list and reminders
    assert config.supervision.hotspot_min_callers == 12
    assert config.supervision.run_at == time(8, 0)
    with pytest.raises(ValueError, match="differs from due_soon_working_days"):
        TicketsConfig.model_validate({"supervision": {"due_soon_working_days": 4}})
    with pytest.raises(ValueError, match="hotspot_min_callers"):
        TicketsConfig.model_validate({"supervision": {"hotspot_min_callers": 1}})
    with pytest.raises(ValueError, match="extra"):
        TicketsConfig.model_validate({"supervision": {"colour": "red"}})
    with pytest.raises(ValueError, match="office_day_end"):
        TicketsConfig.model_validate({"office_day_start": "18:00", "office_day_end": "09:00"})
