"""Action glue: trackers built in the test, a fixed clock, the real rule data and calendar."""
from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.chitchat import ActionClarify
from actions.complaint import ActionAssessComplaint, ActionResetComplaint, ValidateComplaintForm
from actions.faq import ActionAnswerFaq
from actions.handoff import ActionExplainHandoff
from actions.safety import ActionAdviseSafety
from actions.seller import ActionAdviseSeller
from tests.test_consistency import DOMAIN
from weiquan.clock import FixedClock

TODAY = date(2026, 11, 23)
CLOCK = FixedClock(TODAY)


def tracker(slots: dict[str, Any] | None = None, text: str = "", intent: str = "inform",
            ranking: list[dict] | None = None, entities: list[dict] | None = None) -> Tracker:
    all_slots = {name: None for name in DOMAIN["slots"]} | (slots or {})
    latest = {"text": text, "intent": {"name": intent, "confidence": 0.9}, "entities": entities or [],
              "intent_ranking": ranking or []}
    return Tracker("u1", all_slots, latest, [], False, None, {"name": "complaint_form"}, "action_listen")


def said(dispatcher: CollectingDispatcher) -> list[str]:
    return [message["response"] for message in dispatcher.messages]


def kwargs(dispatcher: CollectingDispatcher, response: str) -> dict[str, Any]:
    return next(m for m in dispatcher.messages if m["response"] == response)


async def test_assess_eligible_case_utters_filing_steps_with_links_and_sets_outcome() -> None:
    dispatcher = CollectingDispatcher()
    slots = {"platform": "taobao", "trade_status": "success", "success_earliest": "2026-11-18",
             "success_latest": "2026-11-18", "harassment_type": ["calls"], "evidence": ["none"]}
    events = await ActionAssessComplaint(CLOCK).run(dispatcher, tracker(slots), DOMAIN)
    assert said(dispatcher)[0] == "utter_complaint_file_online"
    filing = kwargs(dispatcher, "utter_complaint_file_online")
    assert "list_bought_items.htm" in filing["filing_steps"] and filing["days_left"] == 10
    assert filing["rule_label"].startswith("淘宝恶意骚扰规则")
    assert SlotSet("outcome", "file_online") in events


async def test_assess_past_window_utters_phone_script() -> None:
    dispatcher = CollectingDispatcher()
    slots = {"platform": "taobao", "trade_status": "success", "success_earliest": "2026-11-01",
             "success_latest": "2026-11-01", "harassment_type": ["sms"], "evidence": ["sms_photo"]}
    events = await ActionAssessComplaint(CLOCK).run(dispatcher, tracker(slots), DOMAIN)
    assert said(dispatcher)[:2] == ["utter_complaint_phone_support", "utter_complaint_phone_script"]
    assert SlotSet("outcome", "phone_support") in events


async def test_assess_threat_leads_with_police_once() -> None:
    slots = {"platform": "taobao", "trade_status": "shipped", "harassment_type": ["calls"], "evidence": ["none"],
             "safety_threat": True}
    first = CollectingDispatcher()
    events = await ActionAssessComplaint(CLOCK).run(first, tracker(slots), DOMAIN)
    assert said(first)[0] == "utter_safety_police_first"
    assert SlotSet("safety_advised", True) in events
    again = CollectingDispatcher()
    await ActionAssessComplaint(CLOCK).run(again, tracker(slots | {"safety_advised": True}), DOMAIN)
    assert "utter_safety_police_first" not in said(again)


async def test_reset_clears_the_case_but_keeps_safety_advice() -> None:
    events = await ActionResetComplaint().run(CollectingDispatcher(), tracker(), DOMAIN)
    cleared = {event["name"] for event in events}
    assert {"platform", "success_time", "harassment_type", "evidence"} <= cleared
    assert "safety_advised" not in cleared


@pytest.mark.parametrize(
    ("value", "expected", "response"),
    [
        ("5天", {"success_time": "5天", "success_earliest": "2026-11-18", "success_latest": "2026-11-18"}, None),
        ("不知道", {"success_time": None}, "utter_complaint_find_success_date"),
        ("2027年5月1日", {"success_time": None}, "utter_invalid_success_time_future"),
        ("随便", {"success_time": None}, "utter_invalid_success_time"),
    ],
)
def test_validate_success_time(value: str, expected: dict, response: str | None) -> None:
    dispatcher = CollectingDispatcher()
    result = ValidateComplaintForm(CLOCK).validate_success_time(value, dispatcher, tracker(), DOMAIN)
    assert expected.items() <= result.items()
    assert said(dispatcher) == ([response] if response else [])


async def test_success_time_is_extracted_from_any_answer_while_asked() -> None:
    form = ValidateComplaintForm(CLOCK)
    asked = tracker({"requested_slot": "success_time"}, text="我记不清了")
    assert (await form.extract_success_time(CollectingDispatcher(), asked, DOMAIN))["success_time"]
    not_asked = tracker({"requested_slot": "platform"}, text="我记不清了")
    assert await form.extract_success_time(CollectingDispatcher(), not_asked, DOMAIN) == {}


async def test_required_slots_skip_the_date_for_tmall() -> None:
    form = ValidateComplaintForm(CLOCK)
    slots = await form.required_slots([], CollectingDispatcher(), tracker({"platform": "tmall"}), DOMAIN)
    assert slots == ["platform", "harassment_type", "evidence"]


def test_validate_platform_and_status_reject_unknown_values() -> None:
    form, dispatcher = ValidateComplaintForm(CLOCK), CollectingDispatcher()
    assert form.validate_platform("jd", dispatcher, tracker(), DOMAIN) == {"platform": None}
    assert form.validate_trade_status("lost", dispatcher, tracker(), DOMAIN) == {"trade_status": None}
    assert said(dispatcher) == ["utter_invalid_platform", "utter_invalid_trade_status"]


def test_validate_lists_drop_unknown_and_none_with_others() -> None:
    form, dispatcher = ValidateComplaintForm(CLOCK), CollectingDispatcher()
    assert form.validate_harassment_type(["calls", "calls", "hugs"], dispatcher, tracker(), DOMAIN) == {
        "harassment_type": ["calls"]}
    assert form.validate_evidence(["none", "sms_photo"], dispatcher, tracker(), DOMAIN) == {"evidence": ["sms_photo"]}
    assert form.validate_evidence(None, dispatcher, tracker(), DOMAIN) == {"evidence": ["none"]}
    assert form.validate_harassment_type([], dispatcher, tracker(), DOMAIN) == {"harassment_type": None}
    assert said(dispatcher) == ["utter_invalid_harassment_type"]


@pytest.mark.parametrize(
    ("intent", "responses"),
    [
        ("ask_deadline_passed", ["utter_faq_deadline_passed", "utter_complaint_phone_script"]),
        ("ask_processing_time", ["utter_faq_processing_time"]),
        ("greet", ["utter_default"]),
    ],
)
async def test_faq_answers_from_rule_data(intent: str, responses: list[str]) -> None:
    dispatcher = CollectingDispatcher()
    await ActionAnswerFaq(CLOCK).run(dispatcher, tracker(intent=intent), DOMAIN)
    assert said(dispatcher) == responses
    assert kwargs(dispatcher, responses[0])["window_days"] == 15


async def test_processing_time_faq_gives_dates_from_today() -> None:
    dispatcher = CollectingDispatcher()
    await ActionAnswerFaq(CLOCK).run(dispatcher, tracker(intent="ask_processing_time"), DOMAIN)
    assert kwargs(dispatcher, "utter_faq_processing_time")["finish_by"] == "11月30日（周一）"


async def test_seller_with_a_received_day_gets_a_dated_deadline() -> None:
    dispatcher = CollectingDispatcher()
    await ActionAdviseSeller(CLOCK).run(dispatcher, tracker(text="买家昨天投诉我了", intent="seller_accused"),
                                        DOMAIN)
    assert said(dispatcher) == ["utter_seller_options", "utter_seller_evidence", "utter_seller_deadline"]
    assert kwargs(dispatcher, "utter_seller_deadline")["seller_deadline"] == "11月25日（周三）"


async def test_safety_and_handoff_fill_contacts_from_rule_data() -> None:
    dispatcher = CollectingDispatcher()
    events = await ActionAdviseSafety().run(dispatcher, tracker(), DOMAIN)
    assert kwargs(dispatcher, "utter_safety_police_first")["police"] == "110"
    assert SlotSet("safety_advised", True) in events
    dispatcher = CollectingDispatcher()
    await ActionExplainHandoff().run(dispatcher, tracker(), DOMAIN)
    assert kwargs(dispatcher, "utter_handoff_how")["hotline"]


async def test_clarify_offers_the_two_top_intents_as_buttons() -> None:
    ranking = [{"name": "nlu_fallback", "confidence": 0.5}, {"name": "ask_evidence", "confidence": 0.4},
               {"name": "ask_how_to_file", "confidence": 0.38}, {"name": "greet", "confidence": 0.1}]
    dispatcher = CollectingDispatcher()
    await ActionClarify().run(dispatcher, tracker(intent="nlu_fallback", ranking=ranking,
                                                  entities=[{"entity": "platform", "value": "taobao"}]), DOMAIN)
    message = dispatcher.messages[0]
    assert message["response"] == "utter_clarify"
    assert [b["payload"] for b in message["buttons"]] == ['/ask_evidence{"platform": "taobao"}',
                                                          '/ask_how_to_file{"platform": "taobao"}']
    labels = yaml.safe_load(Path("actions/intent_labels.yml").read_text(encoding="utf-8"))["labels"]
    assert message["buttons"][0]["title"] == labels["ask_evidence"]


async def test_clarify_without_two_known_intents_falls_back() -> None:
    dispatcher = CollectingDispatcher()
    await ActionClarify().run(dispatcher, tracker(intent="nlu_fallback", ranking=[]), DOMAIN)
    assert said(dispatcher) == ["utter_default"]
