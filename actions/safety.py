"""safety: danger to a person comes before every platform rule."""
from __future__ import annotations

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.common import rules
from weiquan.engine import rule_variables


class ActionAdviseSafety(Action):
    def name(self) -> str:
        return "action_advise_safety"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        dispatcher.utter_message(response="utter_safety_police_first", **rule_variables(rules()))
        return [SlotSet("safety_threat", True), SlotSet("safety_advised", True)]
