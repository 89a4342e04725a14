"""safety: danger to a person comes before every platform rule."""
from __future__ import annotations

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.presenter import Presenter
from weiquan.services import Services, default_services


class ActionAdviseSafety(Action):
    def __init__(self, services: Services | None = None) -> None:
        self.services = services or default_services()

    def name(self) -> str:
        return "action_advise_safety"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        presenter = Presenter(self.services.rules, self.services.clock.today())
        # 110 first; then a person is offered, before the complaint goes on.
        presenter.utter(dispatcher, ("utter_safety_police_first", "utter_handoff_offer"), presenter.rule_variables())
        return [SlotSet("safety_threat", True), SlotSet("safety_advised", True)]
