"""seller: a seller who was complained about — options A/B, the evidence list, the deadline as a date."""
from __future__ import annotations

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.common import rules, utter_all
from weiquan.clock import Clock, SystemClock
from weiquan.engine import seller_deadline
from weiquan.timeparse import parse_success_time


class ActionAdviseSeller(Action):
    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or SystemClock()

    def name(self) -> str:
        return "action_advise_seller"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        today = self.clock.today()
        # "昨天收到的投诉" — the same time words a buyer uses, here for the day the complaint arrived.
        reading = parse_success_time(tracker.latest_message.get("text") or "", today)
        received = reading.earliest if reading and reading.status == "ok" else None
        decision = seller_deadline(rules(), received, today)
        utter_all(dispatcher, decision.responses, decision.variables)
        return []
