"""complaint: the form that collects the facts, and the ruling at its end."""
from __future__ import annotations

from datetime import date
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import ActionExecutionRejected, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.presenter import Presenter
from weiquan.core import engine
from weiquan.core.contracts import SuccessTime
from weiquan.core.domain import COMPLAINT_FORM, form_slots, give_up_value
from weiquan.core.timeparse import TimeReading, add_months, parse_success_time
from weiquan.core.vocabulary import read_answer
from weiquan.services import Services, default_services

FORM = COMPLAINT_FORM
MISSES = "form_misses"  # {slot: how often its question went unanswered}
UNCONFIRMED = "success_time_unconfirmed"  # a read date the form asks the buyer to confirm (SuccessTime slot shape)
LAST_CASE = "last_case"  # the facts of the case ruled on last: {form slot: value}
# Slots of one complaint that are not asked by the form but go with it when it is over.
COMPLAINT_EXTRAS = (MISSES, UNCONFIRMED, "order_id", "safety_threat")
SAFETY_INTENT = "report_safety_threat"
SAFETY_ACTION = "action_advise_safety"
AFFIRM, DENY = "affirm", "deny"
VAGUE_EVIDENCE = ("none", "all", "unknown")


def as_list(value: Any) -> list[str]:
    """A slot value as a flat list of texts. Rasa hands a list slot filled by a `from_intent` mapping whose value is a
    list (evidence: [none] on 「没有」) to the form as a list inside a list."""
    if value is None:
        return []
    if not isinstance(value, list):
        return [str(value)]
    return [text for item in value for text in as_list(item)]


def normalized_text(tracker: Tracker) -> str:
    """The latest message as the NLU normalised it (simplified script, half-width); the raw text for a payload."""
    latest = tracker.latest_message or {}
    return str(latest.get("normalized_text") or latest.get("text") or "")


def answer_text(value: Any, tracker: Tracker) -> str:
    """A free answer's text: the whole message (from_text mapping) is read in its normalised form."""
    text = str(value or "")
    return normalized_text(tracker) if text == (tracker.latest_message or {}).get("text") else text


def latest_intent(tracker: Tracker) -> str | None:
    return ((tracker.latest_message or {}).get("intent") or {}).get("name")


def threat_not_yet_advised(tracker: Tracker) -> bool:
    """The latest message is a threat and the police advice for it has not been given yet."""
    if latest_intent(tracker) != SAFETY_INTENT:
        return False
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            return True
        if event.get("event") == "action" and event.get("name") == SAFETY_ACTION:
            return False
    return True


class ValidateComplaintForm(FormValidationAction):
    """Reads each answer, entity or free words, and never asks one question more than `max_asks` times."""

    def __init__(self, services: Services | None = None) -> None:
        self.services = services or default_services()

    def name(self) -> str:
        return "validate_complaint_form"

    def domain_slots(self, domain: DomainDict) -> list[str]:
        return list(form_slots())

    async def required_slots(
        self, domain_slots: list[str], dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[str]:
        return engine.form_plan(
            domain_slots, tracker.get_slot("platform"), tracker.get_slot("trade_status"), self.services.rules
        )

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        events = await super().run(dispatcher, tracker, domain)
        if threat_not_yet_advised(tracker):
            # A threat comes before the next question. A threat that also names something the form maps ("要上门
            # 弄死我" is harassment_type threat) fills a slot, so Rasa would not reject the form and the police
            # advice would never come: the form yields here instead (a manual rejection: what the message answered
            # is kept, no question is asked), and the rule for a threat in the form runs action_advise_safety first;
            # then the form runs again and asks its question.
            return [*events, ActionExecutionRejected(self.form_name())]
        return await self._move_past_repeats(events, dispatcher, tracker, domain)

    async def _move_past_repeats(
        self, events: list[EventType], dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        """Counts a question asked again; after `max_asks` the form records that it could not learn the answer
        and moves on, so no buyer is asked the same thing forever.

        Only an answer that was tried counts (the slot has a candidate this turn). A question or a request for a
        person maps to no slot: then this adds nothing, so Rasa rejects the form and the rule for that message runs.
        """
        asked_before = tracker.get_slot("requested_slot")
        if asked_before not in tracker.slots_to_validate():
            return events
        if tracker.get_slot(UNCONFIRMED) or any(e.get("name") == UNCONFIRMED and e.get("value") for e in events):
            return events  # a date to confirm, or the answer to that question: a question of its own, not a repeat
        plan = await self.required_slots(list(form_slots()), dispatcher, tracker, domain)  # tracker holds this turn
        missing = next((slot for slot in plan if tracker.slots.get(slot) is None), None)
        next_slot = next((e["value"] for e in events if e.get("name") == "requested_slot"), missing)
        if next_slot is None or next_slot != asked_before:
            return events
        misses = dict(tracker.get_slot(MISSES) or {})
        misses[next_slot] = misses.get(next_slot, 0) + 1
        events = [*events, SlotSet(MISSES, misses)]
        if misses[next_slot] < self.services.rules.max_asks:
            return events
        dispatcher.utter_message(response="utter_complaint_skip_question")
        tracker.slots[next_slot] = give_up_value(next_slot)
        plan = await self.required_slots(list(form_slots()), dispatcher, tracker, domain)
        following = next((slot for slot in plan if tracker.slots.get(slot) is None), None)
        return [*events, SlotSet(next_slot, give_up_value(next_slot)), SlotSet("requested_slot", following)]

    def _code(self, slot: str, value: Any, tracker: Tracker) -> str | None:
        """A code from a button or an entity, else the first one the free answer names."""
        codes = self.services.vocabulary.codes(slot)
        if value in codes:
            return str(value)
        found = read_answer(self.services.vocabulary.answers.get(slot, {}), answer_text(value, tracker))
        return found[0] if found else None

    def _codes(self, slot: str, value: Any, tracker: Tracker, allowed: tuple[str, ...]) -> list[str]:
        """Codes named by entities or buttons; the free words of the answer when none of them is a code."""
        codes = [code for code in dict.fromkeys(as_list(value)) if code in allowed]
        if codes:
            return codes
        words = self.services.vocabulary.answers.get(slot, {})
        found: list[str] = []
        for item in as_list(value):
            found += read_answer(words, answer_text(item, tracker))
        return [code for code in dict.fromkeys(found) if code in allowed]

    def _added_to_ruled_case(self, slot: str, codes: list[str], tracker: Tracker) -> list[str]:
        """On the turn that adds to a ruled case (the form starting while `last_case` is kept, see
        ActionStartComplaint), what the message names adds to what the case had ("还有短信"), unless it corrects it
        ("不是短信，是通话记录"); 没有 / 都有 give way to items named."""
        last = tracker.get_slot(LAST_CASE)
        if not last or tracker.get_slot("requested_slot") is not None:
            return codes
        named = [code for code in codes if code not in VAGUE_EVIDENCE]
        if not named or "correction" in case_scope(tracker, self.services):
            return codes
        kept = [code for code in as_list(last.get(slot)) if code not in VAGUE_EVIDENCE]
        return list(dict.fromkeys(kept + named))

    def _unread(self, slot: str, response: str, dispatcher: CollectingDispatcher, tracker: Tracker) -> dict[str, Any]:
        """An answer the question could not read. If the message names another platform than the one recorded
        ("不对，是天猫"), it corrects that answer (the form then asks what the new platform needs); else the hint."""
        named = read_answer(self.services.vocabulary.answers.get("platform", {}), normalized_text(tracker))
        if named and named[0] not in (engine.UNKNOWN, tracker.get_slot("platform")):
            return {slot: None, "platform": named[0]}
        dispatcher.utter_message(response=response)
        return {slot: None}

    def validate_platform(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        code = self._code("platform", value, tracker)
        if code is None or code == engine.UNKNOWN:
            dispatcher.utter_message(response="utter_invalid_platform")
            return {"platform": None}
        return {"platform": code}

    def validate_trade_status(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        code = self._code("trade_status", value, tracker)
        if code is None or code == engine.UNKNOWN:
            return self._unread("trade_status", "utter_invalid_trade_status", dispatcher, tracker)
        return {"trade_status": code}

    def validate_success_time(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """The one place a 交易成功 time is read: the words become a date range in the same slot.

        A date typed without a year that would lie ahead (so it is read as last year's), or an exact yearless date
        further back than the rule data's `confirm_date_months_back`, is not taken silently: it waits in
        `success_time_unconfirmed` and the question becomes "是……吗？" (ActionAskSuccessTime). Yes takes it, no asks
        for the date again, a new date is taken as said: the buyer is asked once.
        """
        if SuccessTime.from_slot(value) is not None:  # already read (a re-validation of a value set earlier)
            return {"success_time": value}
        rules, today = self.services.rules, self.services.clock.today()
        said = answer_text(value, tracker)
        reading = parse_success_time(said, today)
        unconfirmed = SuccessTime.from_slot(tracker.get_slot(UNCONFIRMED))
        if unconfirmed is not None and (reading is None or reading.status == "unknown"):
            if latest_intent(tracker) == AFFIRM:
                return {"success_time": unconfirmed.to_slot(), UNCONFIRMED: None}
            if latest_intent(tracker) == DENY:
                dispatcher.utter_message(response="utter_complaint_date_not_confirmed")
                return {"success_time": None, UNCONFIRMED: None}
            return {"success_time": None}  # the confirmation question is asked again
        if reading is None:
            return self._unread("success_time", "utter_invalid_success_time", dispatcher, tracker)
        judgement = engine.judge_success_date(reading.status, reading.earliest, reading.latest, today, rules)
        if not judgement.accepted:
            presenter = Presenter(rules, today)
            variables: dict[str, Any] = {"success_time": reading.text}
            if judgement.earliest and judgement.latest:
                variables |= {"earliest_date": presenter.date(judgement.earliest),
                              "latest_date": presenter.date(judgement.latest)}
            dispatcher.utter_message(response=judgement.response, **variables)
            return {"success_time": None}
        assert judgement.earliest is not None and judgement.latest is not None
        when = SuccessTime(reading.text, judgement.earliest, judgement.latest)
        if unconfirmed is not None:  # a new date given in answer to "是……吗？" is taken as said
            return {"success_time": when.to_slot(), UNCONFIRMED: None}
        if self._needs_confirming(reading, when, today):
            return {"success_time": None, UNCONFIRMED: when.to_slot()}
        return {"success_time": when.to_slot()}

    def _needs_confirming(self, reading: TimeReading, when: SuccessTime, today: date) -> bool:
        if reading.year_moved_back:
            return True
        exact_yearless = when.earliest == when.latest and "年" not in reading.text
        limit = add_months(today, -self.services.rules.confirm_date_months_back)
        return exact_yearless and when.latest is not None and when.latest < limit

    def validate_harassment_type(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        kinds = self._codes("harassment_type", value, tracker, self.services.vocabulary.codes("harassment_type"))
        if not kinds:
            return self._unread("harassment_type", "utter_invalid_harassment_type", dispatcher, tracker)
        return {"harassment_type": self._added_to_ruled_case("harassment_type", kinds, tracker)}

    def validate_evidence(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        vocabulary = self.services.vocabulary
        codes = self._codes("evidence", value, tracker, vocabulary.codes("evidence") + vocabulary.codes(
            "evidence_answers"))
        for vague in ("none", "all"):
            if len(codes) > 1 and vague in codes:
                codes.remove(vague)  # "没有截图，有短信", "短信和通话记录都有": the items named win
        if not codes:
            return self._unread("evidence", "utter_invalid_evidence", dispatcher, tracker)
        return {"evidence": self._added_to_ruled_case("evidence", codes, tracker)}


class ActionAskSuccessTime(Action):
    """The form's question for the 交易成功 time: the usual one, or "是……吗？" for a date waiting to be confirmed."""

    def __init__(self, services: Services | None = None) -> None:
        self.services = services or default_services()

    def name(self) -> str:
        return "action_ask_success_time"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        unconfirmed = SuccessTime.from_slot(tracker.get_slot(UNCONFIRMED))
        if unconfirmed is None or unconfirmed.earliest is None:
            dispatcher.utter_message(response="utter_ask_success_time")
            return []
        today = self.services.clock.today()
        presenter = Presenter(self.services.rules, today)
        dispatcher.utter_message(response="utter_confirm_success_time", success_time=unconfirmed.said,
                                 earliest_date=presenter.date(unconfirmed.earliest, with_year=True),
                                 day_count=(today - unconfirmed.earliest).days)
        return []


def slots_set_this_turn(tracker: Tracker) -> dict[str, Any]:
    """The slots the latest message filled (Rasa's slot mappings run before any action of the turn)."""
    found: dict[str, Any] = {}
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            break
        if event.get("event") == "slot":
            found.setdefault(event["name"], event["value"])
    return found


CORRECTABLE_IN_WORDS = ("platform", "trade_status")  # one code each, named in plain words ("不对，是天猫")


def facts_not_named_now(last: dict[str, Any], tracker: Tracker, services: Services) -> list[EventType]:
    """The ruled case's facts that this message does not name: the form starts with them. What the message names
    the form reads as usual; the lists add up there (ValidateComplaintForm._added_to_ruled_case). A platform or a
    trade status named in words the NLU found no entity for ("不对，是天猫") replaces the ruled one."""
    said_now = slots_set_this_turn(tracker)
    events: list[EventType] = []
    for slot in form_slots():
        if said_now.get(slot) is not None:
            continue
        value = last.get(slot)
        if slot in CORRECTABLE_IN_WORDS:
            named = read_answer(services.vocabulary.answers.get(slot, {}), normalized_text(tracker))
            if named and named[0] != engine.UNKNOWN:
                value = named[0]
        if value is not None:
            events.append(SlotSet(slot, value))
    return events


def case_scope(tracker: Tracker, services: Services) -> list[str]:
    """What the latest message says about the case it adds to (vocabulary `case_scope`)."""
    return read_answer(services.vocabulary.answers.get("case_scope", {}), normalized_text(tracker))


class ActionStartComplaint(Action):
    """The first step of a complaint. After a ruling, a message about the same case (more evidence, a corrected fact,
    the same question again) adds to that case: the form starts with its facts and rules again at once. Only a
    message that says it is about another order (vocabulary `case_scope`) starts from the first question."""

    def __init__(self, services: Services | None = None) -> None:
        self.services = services or default_services()

    def name(self) -> str:
        return "action_start_complaint"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        last = tracker.get_slot(LAST_CASE)
        if not last or "another_order" in case_scope(tracker, self.services):
            dispatcher.utter_message(response="utter_complaint_start")
            return [SlotSet(LAST_CASE, None)]
        dispatcher.utter_message(response="utter_complaint_update")
        return facts_not_named_now(dict(last), tracker, self.services)


def case_from(tracker: Tracker, max_asks: int) -> engine.Case:
    when = SuccessTime.from_slot(tracker.get_slot("success_time")) or SuccessTime.unknown()
    misses = tracker.get_slot(MISSES) or {}
    return engine.Case(
        platform=tracker.get_slot("platform"),
        trade_status=tracker.get_slot("trade_status"),
        success_earliest=when.earliest,
        success_latest=when.latest,
        harassment=tuple(as_list(tracker.get_slot("harassment_type"))),
        evidence=tuple(as_list(tracker.get_slot("evidence"))),
        safety_threat=bool(tracker.get_slot("safety_threat")),
        safety_advised=bool(tracker.get_slot("safety_advised")),
        gave_up=tuple(slot for slot, count in misses.items() if count >= max_asks),
    )


def reset_events() -> list[EventType]:
    """Forget one complaint's facts so the next one starts clean."""
    return [SlotSet(slot, None) for slot in (*form_slots(), *COMPLAINT_EXTRAS)]


class ActionAssessComplaint(Action):
    """Rule on the collected facts, hand the buyer the next step, and clear the facts for the next complaint."""

    def __init__(self, services: Services | None = None) -> None:
        self.services = services or default_services()

    def name(self) -> str:
        return "action_assess_complaint"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        rules, today = self.services.rules, self.services.clock.today()
        decision = engine.assess(case_from(tracker, rules.max_asks), rules, today, self.services.calendar)
        Presenter(rules, today).utter_decision(dispatcher, decision)
        advised = bool(tracker.get_slot("safety_advised")) or decision.severity is engine.Severity.SAFETY
        facts = {slot: tracker.get_slot(slot) for slot in form_slots()}
        return [*reset_events(), SlotSet("outcome", decision.outcome.value), SlotSet("safety_advised", advised),
                SlotSet(LAST_CASE, facts)]


class ActionResetComplaint(Action):
    """Forget the facts of an abandoned complaint so the next one starts clean."""

    def name(self) -> str:
        return "action_reset_complaint"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        return reset_events()
