"""seller: a seller who was complained about — options A/B, the evidence list, the deadline as a date."""
from __future__ import annotations

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.complaint import normalized_text
from actions.presenter import Presenter
from weiquan.core.engine import evidence_checks, seller_advice
from weiquan.core.timeparse import OK, parse_success_time
from weiquan.services import Services, default_services


class ActionAdviseSeller(Action):
    def __init__(self, services: Services | None = None) -> None:
        self.services = services or default_services()

    def name(self) -> str:
        return "action_advise_seller"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        rules, today = self.services.rules, self.services.clock.today()
        # "昨天收到的投诉" — the same time words a buyer uses, here for the day the complaint arrived.
        reading = parse_success_time(normalized_text(tracker), today)
        advice = seller_advice(rules, reading.earliest if reading and reading.status == OK else None, today)
        presenter = Presenter(rules, today)
        variables = presenter.rule_variables()
        if advice.deadline is not None:
            variables |= {"seller_deadline": presenter.date(advice.deadline), "seller_days_left": advice.days_left}
        presenter.utter(dispatcher, advice.responses, variables, evidence_checks(rules.seller_evidence))
        return []
