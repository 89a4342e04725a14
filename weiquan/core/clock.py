"""The clock: the only code that reads the wall clock. Dates are Beijing dates: the day the platform counts in.

`SystemClock` is what servers get from the composition root (weiquan/services.py); tests and benchmarks pass a
`FixedClock` (a day) or a `FakeClock` (a moment they move by hand).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Protocol

BEIJING = timezone(timedelta(hours=8))


class Clock(Protocol):
    def today(self) -> date:
        """Today's date in Beijing."""

    def now(self) -> float:
        """Now, as seconds since the epoch."""


class SystemClock:
    def today(self) -> date:
        return datetime.now(BEIJING).date()

    def now(self) -> float:
        return time.time()


@dataclass(frozen=True)
class FixedClock:
    """An offline fake for tests and benchmarks: always noon (Beijing) of one day."""

    day: date

    def today(self) -> date:
        return self.day

    def now(self) -> float:
        return datetime(self.day.year, self.day.month, self.day.day, 12, tzinfo=BEIJING).timestamp()


@dataclass
class FakeClock:
    """An offline fake whose moment a test moves by hand (`clock.at += 60`)."""

    at: float

    def today(self) -> date:
        return datetime.fromtimestamp(self.at, BEIJING).date()

    def now(self) -> float:
        return self.at
