"""Working-day counting: chinese-calendar's schedule, its 调休 days, the weekday fallback past its data, the fake."""

from __future__ import annotations

from datetime import date

import pytest

from weiquan.core.engine import processing_dates
from weiquan.core.ruleset import load_ruleset
from weiquan.core.workdays import (
    ChineseWorkdayCalendar,
    WeekdayCalendar,
    WorkdayCalendar,
    WorkdayResult,
)

D = date.fromisoformat

# The 2026 schedule as chinese-calendar 1.11.0 ships it (State Council notice): National Day 10-01..10-07 off with
# 09-20 (Sun) and 10-10 (Sat) worked; Mid-Autumn 09-25..09-27 off; Spring Festival 02-15..02-23 off with 02-14 (Sat)
# and 02-28 (Sat) worked. What matters is what the buyer is told: the dates staff handle and finish a complaint.


@pytest.mark.parametrize(
    ("filed", "handle_by", "finish_by"),
    [
        ("2026-09-30", "2026-10-10", "2026-10-13"),  # over National Day: the Saturday worked counts, the week off not
        ("2026-02-13", "2026-02-25", "2026-02-27"),  # over Spring Festival: 02-14 (Sat) worked, 02-15..02-23 off
        ("2026-09-24", "2026-09-30", "2026-10-09"),  # Mid-Autumn, then National Day
    ],
)
def test_the_processing_dates_a_buyer_is_told_skip_holidays_and_count_make_up_days(
    filed: str, handle_by: str, finish_by: str
) -> None:
    processing = processing_dates(load_ruleset(), D(filed), ChineseWorkdayCalendar())
    assert (processing.handle_by, processing.finish_by, processing.estimated) == (D(handle_by), D(finish_by), False)


@pytest.mark.parametrize(
    "start, n, expected, estimated",
    [
        # National Day 2026
        ("2026-09-30", 1, "2026-10-08", False),
        ("2026-09-30", 2, "2026-10-09", False),
        ("2026-09-30", 3, "2026-10-10", False),  # a Saturday worked (调休)
        ("2026-09-30", 4, "2026-10-12", False),
        ("2026-10-01", 1, "2026-10-08", False),  # counting from inside the holiday
        ("2026-09-19", 1, "2026-09-20", False),  # a Sunday worked (调休)
        ("2026-09-24", 1, "2026-09-28", False),  # over Mid-Autumn
        # Spring Festival 2026
        ("2026-02-13", 1, "2026-02-14", False),
        ("2026-02-14", 1, "2026-02-24", False),
        ("2026-02-24", 4, "2026-02-28", False),
        ("2026-02-13", 10, "2026-03-05", False),  # 02-14, 02-24..02-28, 03-02..03-05
        # a plain week
        ("2026-03-09", 5, "2026-03-16", False),
        ("2026-03-13", 1, "2026-03-16", False),
        ("2026-03-14", 1, "2026-03-16", False),
        # into 2027, past the data: Monday to Friday, flagged
        ("2026-12-24", 3, "2026-12-29", False),
        ("2026-12-30", 1, "2026-12-31", False),
        ("2026-12-30", 2, "2027-01-01", True),  # New Year's Day counted as a working day: that is the estimate
        ("2026-12-30", 3, "2027-01-04", True),
        ("2027-03-05", 5, "2027-03-12", True),
        # n == 0: the start day itself, whatever it is
        ("2026-10-01", 0, "2026-10-01", False),
        ("2027-01-02", 0, "2027-01-02", False),
    ],
)
def test_chinese_calendar(start: str, n: int, expected: str, estimated: bool) -> None:
    assert ChineseWorkdayCalendar().add_workdays(D(start), n) == WorkdayResult(D(expected), estimated)


def test_negative_n_is_refused() -> None:
    with pytest.raises(ValueError):
        ChineseWorkdayCalendar().add_workdays(D("2026-06-01"), -1)


def test_fallback_is_used_whenever_the_source_has_no_data() -> None:
    def no_data(day: date) -> bool:
        raise NotImplementedError

    assert ChineseWorkdayCalendar(no_data).add_workdays(D("2026-09-30"), 1) == WorkdayResult(D("2026-10-01"), True)


@pytest.mark.parametrize(
    "start, n, expected",
    [
        ("2026-09-30", 1, "2026-10-01"),
        ("2026-10-02", 1, "2026-10-05"),
        ("2026-10-10", 1, "2026-10-12"),
        ("2026-12-30", 3, "2027-01-04"),
        ("2026-06-15", 0, "2026-06-15"),
    ],
)
def test_weekday_fake(start: str, n: int, expected: str) -> None:
    calendar: WorkdayCalendar = WeekdayCalendar()
    assert calendar.add_workdays(D(start), n) == WorkdayResult(D(expected), False)


def test_weekday_fake_can_pretend_to_estimate() -> None:
    assert WeekdayCalendar(estimated=True).add_workdays(D("2026-06-15"), 1) == WorkdayResult(D("2026-06-16"), True)
