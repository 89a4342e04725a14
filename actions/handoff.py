"""handoff: how to reach a person."""
from __future__ import annotations

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.presenter import Presenter
from weiquan.services import Services, default_services


class ActionExplainHandoff(Action):
    def __init__(self, services: Services | None = None) -> None:
        self.services = services or default_services()

    def name(self) -> str:
        return "action_explain_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        presenter = Presenter(self.services.rules, self.services.clock.today())
        presenter.utter(dispatcher, ("utter_handoff_how",), presenter.rule_variables())
        return []
