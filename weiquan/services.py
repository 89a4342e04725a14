"""The one composition root: every process builds its `Services` once, at start-up, and hands the parts out.

`Services` holds the clock (`today()` and `now()`), the working-day calendar, the rule set, the vocabulary, the
process environment as read at start-up, the hand-off settings and store, and the factory of WeChat's
customer-service API. Nothing else in the project reads the wall clock (monotonic timers for time-outs are not the
wall clock) or `os.environ`: an edge that needs a setting reads `services.env`.

Servers (the action server's actions, Rasa's channels and stores, the operator console) ask for `default_services()`,
built once per process from `os.environ`. Tests build their own with `build_services(env=…, clock=FakeClock(…))` or
fakes of each part, and pass it in.
"""
from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache

from weiquan.core.clock import Clock, SystemClock
from weiquan.core.ruleset import DEFAULT_RULESET, RuleSet, load_ruleset
from weiquan.core.vocabulary import Vocabulary, load_vocabulary
from weiquan.core.workdays import ChineseWorkdayCalendar, WorkdayCalendar
from weiquan.edge.channels.wechat_api import CustomerServiceApi, WeChatCustomerServiceApi
from weiquan.handoff.settings import HandoffSettings
from weiquan.stores.handoff import HandoffStore, SqlHandoffStore
from weiquan.stores.outbox import OperatorOutbox

RULESET_ENV = "WEIQUAN_RULESET"  # which rulesets/<id>.yml the bot applies; the default is the seed's 2013 rules


def wechat_customer_service_api(app_id: str, app_secret: str, clock: Clock) -> CustomerServiceApi | None:
    """WeChat's customer-service message API for this account; None without the credentials it needs."""
    if not (app_id and app_secret):
        return None
    return WeChatCustomerServiceApi(app_id, app_secret, now=clock.now)


@cache
def _sql_handoff_store(url: str) -> HandoffStore:
    return SqlHandoffStore(url)


def sql_handoff_store(settings: HandoffSettings) -> HandoffStore:
    """The hand-off store the settings name, created on first use and shared within the process."""
    return _sql_handoff_store(settings.store_url)


@cache
def _sql_outbox(url: str) -> OperatorOutbox:
    return OperatorOutbox(url)


def sql_outbox(settings: HandoffSettings) -> OperatorOutbox:
    """Operator messages until the buyer has seen them, in the hand-off store's database."""
    return _sql_outbox(settings.store_url)


@dataclass(frozen=True)
class Services:
    clock: Clock
    calendar: WorkdayCalendar
    rules: RuleSet
    vocabulary: Vocabulary
    env: Mapping[str, str] = field(default_factory=dict)
    handoff: HandoffSettings = field(default_factory=HandoffSettings)
    handoff_store_factory: Callable[[HandoffSettings], HandoffStore] = sql_handoff_store
    wechat_api_factory: Callable[[str, str, Clock], CustomerServiceApi | None] = wechat_customer_service_api
    outbox_factory: Callable[[HandoffSettings], OperatorOutbox] = sql_outbox

    def handoff_store(self) -> HandoffStore:
        """Opened on first use (it may be a database that is not up yet), then the same one every time."""
        return self.handoff_store_factory(self.handoff)

    def outbox(self) -> OperatorOutbox:
        """Operator messages until the buyer has seen them; opened on first use, like the hand-off store."""
        return self.outbox_factory(self.handoff)

    def customer_service_api(self, app_id: str, app_secret: str) -> CustomerServiceApi | None:
        return self.wechat_api_factory(app_id, app_secret, self.clock)


def build_services(env: Mapping[str, str], clock: Clock | None = None, **parts: object) -> Services:
    """Services from an environment; `parts` replace single parts (tests: a fake store factory, a calendar)."""
    env = dict(env)
    built: dict[str, object] = {
        "clock": clock or SystemClock(),
        "calendar": ChineseWorkdayCalendar(),
        "rules": load_ruleset(env.get(RULESET_ENV) or DEFAULT_RULESET),
        "vocabulary": load_vocabulary(),
        "env": env,
        "handoff": HandoffSettings.from_env(env),
    }
    return Services(**{**built, **parts})  # type: ignore[arg-type]


@cache
def default_services() -> Services:
    """This process's services, built from its environment the first time a server part asks (at start-up)."""
    return build_services(os.environ)


def retention_handoff_store() -> HandoffStore:
    """The hand-off store as `make forget` and `make purge-expired` reach it (weiquan/stores/retention.py)."""
    return default_services().handoff_store()


def retention_outbox() -> OperatorOutbox:
    """The operator outbox as `make forget` and `make purge-expired` reach it (weiquan/stores/retention.py)."""
    return default_services().outbox()


_PLACEHOLDER = re.compile(r"\$\{(\w+)\}|\$(\w+)")


def expand_env(text: str, env: Mapping[str, str]) -> str:
    """`${VAR}` and `$VAR` replaced from `env`, unknown ones left as written (like `os.path.expandvars`, without
    reading the process environment: a credentials value Rasa did not expand because it was quoted)."""
    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return env[name] if name in env else match.group(0)

    return _PLACEHOLDER.sub(value, text)
