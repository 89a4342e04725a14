"""faq: answers to the rule questions, filled from the rule set."""
from __future__ import annotations

from collections.abc import Mapping

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.presenter import Presenter
from weiquan.core.engine import processing_dates
from weiquan.services import Services, default_services

# Which responses answer each FAQ intent; the deadline question also gets the phone script.
FAQ_RESPONSES: Mapping[str, tuple[str, ...]] = {
    "ask_how_to_file": ("utter_faq_how_to_file",),
    "ask_evidence": ("utter_faq_evidence",),
    "ask_penalty": ("utter_faq_penalty",),
    "ask_processing_time": ("utter_faq_processing_time",),
    "ask_appeal": ("utter_faq_appeal",),
    "ask_deadline_passed": ("utter_faq_deadline_passed", "utter_complaint_phone_script"),
    "ask_call_recording": ("utter_faq_call_recording",),
    "ask_evidence_code": ("utter_faq_evidence_code",),
    "ask_agent_alias": ("utter_faq_agent_alias",),
    "ask_tmall": ("utter_complaint_tmall",),
    "ask_anonymity": ("utter_faq_anonymity",),
}


class ActionAnswerFaq(Action):
    def __init__(self, services: Services | None = None) -> None:
        self.services = services or default_services()

    def name(self) -> str:
        return "action_answer_faq"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        rules, today = self.services.rules, self.services.clock.today()
        presenter = Presenter(rules, today)
        # Processing dates are for a complaint filed today.
        variables = presenter.rule_variables() | presenter.processing_variables(
            processing_dates(rules, today, self.services.calendar)
        )
        presenter.utter(dispatcher, FAQ_RESPONSES.get(intent or "", ("utter_default",)), variables)
        return []
