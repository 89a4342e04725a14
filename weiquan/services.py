"""The one place that wires the adapters: clock, working-day calendar, rule set, vocabulary, customer-service API.

Actions and channels ask for `default_services()` (built once per process) unless a test hands them a `Services`
with fakes (FixedClock, WeekdayCalendar, FakeCustomerServiceApi). Nothing here runs at import time.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from weiquan.core.clock import Clock, SystemClock
from weiquan.core.ruleset import DEFAULT_RULESET, RuleSet, load_ruleset
from weiquan.core.vocabulary import Vocabulary, load_vocabulary
from weiquan.core.workdays import ChineseWorkdayCalendar, WorkdayCalendar

if TYPE_CHECKING:
    from weiquan.edge.channels.wechat_api import CustomerServiceApi

RULESET_ENV = "WEIQUAN_RULESET"  # which rulesets/<id>.yml the bot applies; the default is the seed's 2013 rules


@dataclass(frozen=True)
class Services:
    clock: Clock
    calendar: WorkdayCalendar
    rules: RuleSet
    vocabulary: Vocabulary


@cache
def default_services() -> Services:
    return Services(
        clock=SystemClock(),
        calendar=ChineseWorkdayCalendar(),
        rules=load_ruleset(os.environ.get(RULESET_ENV) or DEFAULT_RULESET),
        vocabulary=load_vocabulary(),
    )


def customer_service_api(app_id: str, app_secret: str) -> CustomerServiceApi | None:
    """WeChat's customer-service message API for this account; None without the credentials it needs."""
    if not (app_id and app_secret):
        return None
    from weiquan.edge.channels.wechat_api import WeChatCustomerServiceApi  # aiohttp: only where a channel needs it

    return WeChatCustomerServiceApi(app_id, app_secret)
