"""faq: answers to the rule questions, filled from the rule set."""
from __future__ import annotations

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.common import calendar, rules, utter_all
from weiquan.clock import Clock, SystemClock
from weiquan.engine import FAQ_RESPONSES, faq_variables


class ActionAnswerFaq(Action):
    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or SystemClock()

    def name(self) -> str:
        return "action_answer_faq"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        responses = FAQ_RESPONSES.get(intent, ("utter_default",))
        utter_all(dispatcher, responses, faq_variables(rules(), self.clock.today(), calendar()))
        return []
