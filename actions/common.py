"""Helpers shared by the action modules: the rule set, the calendar and uttering an engine decision."""
from __future__ import annotations

from collections.abc import Mapping

from rasa_sdk.executor import CollectingDispatcher

from weiquan.ruleset import RuleSet, load_ruleset
from weiquan.workdays import ChineseWorkdayCalendar, WorkdayCalendar


def rules() -> RuleSet:
    return load_ruleset()


def calendar() -> WorkdayCalendar:
    return ChineseWorkdayCalendar()


def utter_all(dispatcher: CollectingDispatcher, responses: tuple[str, ...], variables: Mapping[str, object]) -> None:
    for response in responses:
        dispatcher.utter_message(response=response, **variables)
