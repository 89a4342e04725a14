"""Hand-off settings (from the environment the composition root read) and who counts as available. Pure.

- `HANDOFF_OPERATORS` (`auto`): `auto` — someone is available while an operator has the console open; `on` —
  always, within the hours; `off` — never: users can only leave a message.
- `HANDOFF_HOURS` (empty: all day): Beijing-time windows, e.g. `09:00-12:00,13:30-21:00`; `22:00-02:00` crosses
  midnight.
- `HANDOFF_WAIT_MINUTES` (`10`): a conversation nobody takes over within this wait goes back to the bot, which says so.
- `HANDOFF_IDLE_MINUTES` (`15`): a conversation whose operator has written nothing for this long (since taking it
  over, or since their last message) goes back to the queue, and the user is told so.
- `HANDOFF_REQUEUE_WAIT_MINUTES` (`5`): how long such a conversation waits for another operator before the bot takes
  it back (the same time-out as above).
- `HANDOFF_STORE_URL` (SQLite `var/handoff.db`, or PostgreSQL from `DB_*` when `DB_HOST` is set): where the queue
  lives.

The console writes a heartbeat into the store while it runs, and an operator heartbeat while a console page is open.
Without a console heartbeat nobody could answer or hand back: the bot then does not pause at all.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from datetime import time as clock_time
from pathlib import Path
from urllib.parse import quote

from weiquan.core.clock import BEIJING

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SQLITE = ROOT / "var" / "handoff.db"
OPERATOR_MODES = ("auto", "on", "off")
HOURS_RE = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)-([01]?\d|2[0-4]):([0-5]\d)$")
SERVICE_FRESH_S = 30.0  # the console's sweep writes its heartbeat every couple of seconds
OPERATOR_FRESH_S = 45.0  # an open console page checks in every 10 s


@dataclass(frozen=True)
class HandoffSettings:
    operators: str = "auto"
    hours: tuple[tuple[clock_time, clock_time], ...] = ()
    wait_s: float = 600.0
    store_url: str = f"sqlite:///{DEFAULT_SQLITE}"
    idle_s: float = 900.0
    requeue_wait_s: float = 300.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> HandoffSettings:
        operators = (env.get("HANDOFF_OPERATORS") or "auto").strip().lower()
        if operators not in OPERATOR_MODES:
            raise ValueError(f"HANDOFF_OPERATORS must be one of {OPERATOR_MODES}, not {operators!r}")
        return cls(operators=operators, hours=parse_hours(env.get("HANDOFF_HOURS") or ""),
                   wait_s=minutes_from_env(env, "HANDOFF_WAIT_MINUTES", "10"),
                   store_url=store_url_from_env(env),
                   idle_s=minutes_from_env(env, "HANDOFF_IDLE_MINUTES", "15"),
                   requeue_wait_s=minutes_from_env(env, "HANDOFF_REQUEUE_WAIT_MINUTES", "5"))


def minutes_from_env(env: Mapping[str, str], name: str, default: str) -> float:
    """A positive number of minutes (fractions allowed), in seconds."""
    minutes = (env.get(name) or default).strip()
    try:
        seconds = float(minutes) * 60
    except ValueError:
        raise ValueError(f"{name} must be a number of minutes, not {minutes!r}") from None
    if not seconds > 0 or seconds == float("inf"):
        raise ValueError(f"{name} must be a positive number of minutes, not {minutes!r}")
    return seconds


def parse_hours(value: str) -> tuple[tuple[clock_time, clock_time], ...]:
    """`09:00-12:00,13:30-21:00` → windows; empty means all day."""
    windows = []
    for part in re.split(r"[,，\s]+", value.strip()):
        if not part:
            continue
        match = HOURS_RE.match(part)
        if not match:
            raise ValueError(f"HANDOFF_HOURS: {part!r} is not like 09:00-18:00")
        h1, m1, h2, m2 = (int(group) for group in match.groups())
        if h2 == 24 and m2 != 0:
            raise ValueError(f"HANDOFF_HOURS: {part!r} is not like 09:00-18:00")
        end = clock_time(23, 59, 59, 999999) if h2 == 24 else clock_time(h2, m2)
        windows.append((clock_time(h1, m1), end))
    return tuple(windows)


def store_url_from_env(env: Mapping[str, str]) -> str:
    """HANDOFF_STORE_URL; else PostgreSQL from the production settings (DB_*) when DB_HOST is set; else SQLite."""
    explicit = (env.get("HANDOFF_STORE_URL") or "").strip()
    if explicit:
        return explicit
    host = (env.get("DB_HOST") or "").strip()
    if host:
        user = quote(env.get("DB_USER") or "postgres", safe="")
        password = env.get("DB_PASSWORD") or ""
        credentials = f"{user}:{quote(password, safe='')}" if password else user
        port = (env.get("DB_PORT") or "5432").strip()
        name = (env.get("DB_NAME") or "rasa").strip()
        return f"postgresql://{credentials}@{host}:{port}/{name}"
    return f"sqlite:///{DEFAULT_SQLITE}"


def within_hours(hours: tuple[tuple[clock_time, clock_time], ...], now: float) -> bool:
    if not hours:
        return True
    moment = datetime.fromtimestamp(now, BEIJING).time()
    for start, end in hours:
        if start <= end:
            if start <= moment <= end:
                return True
        elif moment >= start or moment < end:  # crosses midnight
            return True
    return False


@dataclass(frozen=True)
class Availability:
    service_up: bool  # a console runs: somebody can take over or, at least, hand the conversation back
    operators_online: bool  # somebody is expected to answer soon; otherwise the user is invited to leave a message


def availability(
    settings: HandoffSettings, now: float, service_seen: float | None, operator_seen: float | None
) -> Availability:
    service_up = service_seen is not None and now - service_seen <= SERVICE_FRESH_S
    if not service_up or settings.operators == "off" or not within_hours(settings.hours, now):
        return Availability(service_up=service_up, operators_online=False)
    if settings.operators == "on":
        return Availability(service_up=True, operators_online=True)
    return Availability(
        service_up=True, operators_online=operator_seen is not None and now - operator_seen <= OPERATOR_FRESH_S
    )
