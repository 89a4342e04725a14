"""The only place that reads the clock. Dates are Beijing dates: that is the day the platform counts in."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Protocol

BEIJING = timezone(timedelta(hours=8))


class Clock(Protocol):
    def today(self) -> date: ...


class SystemClock:
    def today(self) -> date:
        return datetime.now(BEIJING).date()


@dataclass(frozen=True)
class FixedClock:
    """An offline fake for tests and benchmarks."""

    day: date

    def today(self) -> date:
        return self.day
