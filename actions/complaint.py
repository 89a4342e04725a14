"""complaint: the form that collects the facts, and the ruling at its end."""
from __future__ import annotations

from datetime import date
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.common import calendar, rules, utter_all
from weiquan import engine
from weiquan.clock import Clock, SystemClock
from weiquan.ruleset import EVIDENCE_CODES, HARASSMENT_TYPES
from weiquan.timeparse import parse_success_time

RESET_SLOTS = ("platform", "trade_status", "success_time", "success_earliest", "success_latest",
               "harassment_type", "evidence", "order_id", "safety_threat")


def slot_values(domain: DomainDict, slot: str) -> list[str]:
    """The values a categorical slot allows, as domain.yml declares them (one list, not a copy here)."""
    return domain["slots"][slot].get("values", [])


def as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(item) for item in (value if isinstance(value, list) else [value])]


class ValidateComplaintForm(FormValidationAction):
    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or SystemClock()

    def name(self) -> str:
        return "validate_complaint_form"

    async def required_slots(
        self, domain_slots: list[str], dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[str]:
        return engine.form_plan(tracker.get_slot("platform"), tracker.get_slot("trade_status"), rules())

    async def extract_success_time(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """While the date is asked for, any answer counts, even 不知道 (which no entity catches)."""
        if tracker.get_slot("requested_slot") != "success_time" or tracker.get_slot("success_time"):
            return {}
        text = tracker.latest_message.get("text") or ""
        reading = parse_success_time(text, self.clock.today())
        return {"success_time": reading.text if reading else text} if text.strip() else {}

    def validate_platform(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if value in slot_values(domain, "platform"):
            return {"platform": value}
        dispatcher.utter_message(response="utter_invalid_platform")
        return {"platform": None}

    def validate_trade_status(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if value in slot_values(domain, "trade_status"):
            return {"trade_status": value}
        dispatcher.utter_message(response="utter_invalid_trade_status")
        return {"trade_status": None}

    def validate_success_time(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        today = self.clock.today()
        reading = parse_success_time(str(value or ""), today)
        if reading is None:
            dispatcher.utter_message(response="utter_invalid_success_time")
            return {"success_time": None}
        judgement = engine.judge_success_date(reading.status, reading.earliest, reading.latest, today, rules())
        if not judgement.accepted:
            dispatcher.utter_message(response=judgement.response, success_time=reading.text, **judgement.variables)
            return {"success_time": None, "success_earliest": None, "success_latest": None}
        return {
            "success_time": reading.text,
            "success_earliest": reading.earliest.isoformat() if reading.earliest else None,
            "success_latest": reading.latest.isoformat() if reading.latest else None,
        }

    def validate_harassment_type(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        kinds = [kind for kind in dict.fromkeys(as_list(value)) if kind in HARASSMENT_TYPES]
        if not kinds:
            dispatcher.utter_message(response="utter_invalid_harassment_type")
        return {"harassment_type": kinds or None}

    def validate_evidence(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        codes = [code for code in dict.fromkeys(as_list(value)) if code in EVIDENCE_CODES]
        if len(codes) > 1 and "none" in codes:
            codes.remove("none")
        return {"evidence": codes or ["none"]}


def case_from(tracker: Tracker) -> engine.Case:
    def day(slot: str) -> date | None:
        value = tracker.get_slot(slot)
        return date.fromisoformat(value) if value else None

    return engine.Case(
        platform=tracker.get_slot("platform"),
        trade_status=tracker.get_slot("trade_status"),
        success_earliest=day("success_earliest"),
        success_latest=day("success_latest"),
        harassment=tuple(as_list(tracker.get_slot("harassment_type"))),
        evidence=tuple(as_list(tracker.get_slot("evidence"))),
        safety_threat=bool(tracker.get_slot("safety_threat")),
        safety_advised=bool(tracker.get_slot("safety_advised")),
    )


class ActionAssessComplaint(Action):
    """Rule on the collected facts and hand the buyer the next step."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or SystemClock()

    def name(self) -> str:
        return "action_assess_complaint"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        decision = engine.assess(case_from(tracker), rules(), self.clock.today(), calendar())
        utter_all(dispatcher, decision.responses, decision.variables)
        advised = tracker.get_slot("safety_advised") or decision.severity is engine.Severity.SAFETY
        return [SlotSet("outcome", decision.outcome.value), SlotSet("safety_advised", advised)]


class ActionResetComplaint(Action):
    """Forget the facts of a finished or abandoned complaint so the next one starts clean."""

    def name(self) -> str:
        return "action_reset_complaint"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        return [SlotSet(slot, None) for slot in RESET_SLOTS]
