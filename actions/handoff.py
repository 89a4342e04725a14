"""handoff: how to reach a person."""
from __future__ import annotations

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.common import rules
from weiquan.engine import rule_variables


class ActionExplainHandoff(Action):
    def name(self) -> str:
        return "action_explain_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        dispatcher.utter_message(response="utter_handoff_how", **rule_variables(rules()))
        return []
