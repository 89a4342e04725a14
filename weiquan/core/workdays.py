"""Working days in mainland China: statutory holidays and the make-up working days (调休) around them.

Deadlines such as "the seller has N working days to answer" are counted here. Counting is an adapter behind the
small `WorkdayCalendar` protocol: `ChineseWorkdayCalendar` reads the State Council schedule shipped in
chinese-calendar; `WeekdayCalendar` is the offline fake for tests (plain Monday to Friday).

The schedule is published one year at a time, so chinese-calendar only knows the years it shipped with (2004–2026
in 1.11.0). Past that we count Monday to Friday and say so with `estimated=True`, so the bot can word the date as an
estimate instead of a promise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Protocol

import chinese_calendar

_SATURDAY = 5


@dataclass(frozen=True)
class WorkdayResult:
    day: date
    estimated: bool  # True when any day counted lies outside the years the holiday data covers


class WorkdayCalendar(Protocol):
    def add_workdays(self, start: date, n: int) -> WorkdayResult:
        """The n-th working day after `start` (start itself is not counted; n == 0 gives start back)."""
        ...


def _is_weekday(day: date) -> bool:
    return day.weekday() < _SATURDAY


def _count(start: date, n: int, is_workday: Callable[[date], tuple[bool, bool]]) -> WorkdayResult:
    """Step forward one day at a time; `is_workday` answers (is a working day, is an estimate)."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    day, counted, estimated = start, 0, False
    while counted < n:
        day += timedelta(days=1)
        workday, guessed = is_workday(day)
        estimated = estimated or guessed
        counted += workday
    return WorkdayResult(day, estimated)


class ChineseWorkdayCalendar:
    """Holidays and 调休 from chinese-calendar; Monday to Friday (estimated) beyond its data."""

    def __init__(self, is_workday: Callable[[date], bool] = chinese_calendar.is_workday) -> None:
        self._is_workday = is_workday

    def is_workday(self, day: date) -> tuple[bool, bool]:
        """(is a working day, is an estimate)."""
        try:
            return self._is_workday(day), False
        except NotImplementedError:  # chinese-calendar raises this for years it has no schedule for
            return _is_weekday(day), True

    def add_workdays(self, start: date, n: int) -> WorkdayResult:
        return _count(start, n, self.is_workday)


class WeekdayCalendar:
    """Plain Monday to Friday: the offline fake for tests.

    It is exact by its own definition, so `estimated` is False unless the test asks for True (to drive the engine's
    "this date is an estimate" wording).
    """

    def __init__(self, estimated: bool = False) -> None:
        self._estimated = estimated

    def is_workday(self, day: date) -> tuple[bool, bool]:
        return _is_weekday(day), self._estimated

    def add_workdays(self, start: date, n: int) -> WorkdayResult:
        result = _count(start, n, self.is_workday)
        return WorkdayResult(result.day, self._estimated)
