"""Action glue: trackers built in the test, fixed clock and calendar, the real rule data and vocabulary."""
from __future__ import annotations

from dataclasses import replace
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
from actions.faq import FAQ_RESPONSES, ActionAnswerFaq
from actions.presenter import Presenter
from actions.safety import ActionAdviseSafety
from actions.seller import ActionAdviseSeller
from tests.test_consistency import DOMAIN
from weiquan.core.clock import FixedClock
from weiquan.core.workdays import WeekdayCalendar
from weiquan.services import default_services

TODAY = date(2026, 11, 23)  # a Monday
SERVICES = replace(default_services(), clock=FixedClock(TODAY), calendar=WeekdayCalendar())
RULES = SERVICES.rules
FORM_SLOTS = DOMAIN["forms"]["complaint_form"]["required_slots"]


def tracker(slots: dict[str, Any] | None = None, text: str = "", intent: str = "inform",
            ranking: list[dict] | None = None, entities: list[dict] | None = None,
            events: list[dict] | None = None, normalized: str | None = None) -> Tracker:
    all_slots = {name: None for name in DOMAIN["slots"]} | (slots or {})
    latest = {"text": text, "intent": {"name": intent, "confidence": 0.9}, "entities": entities or [],
              "intent_ranking": ranking or []}
    if normalized is not None:
        latest["normalized_text"] = normalized
    return Tracker("u1", all_slots, latest, events or [], False, None, {"name": "complaint_form"}, "action_listen")


def said(dispatcher: CollectingDispatcher) -> list[str]:
    return [message["response"] for message in dispatcher.messages]


def kwargs(dispatcher: CollectingDispatcher, response: str) -> dict[str, Any]:
    return next(m for m in dispatcher.messages if m["response"] == response)


def slot_events(events: list[dict]) -> dict[str, Any]:
    return {event["name"]: event["value"] for event in events if event.get("event") == "slot"}


# ------------------------------------------------------------------------------------------------------ the ruling


async def test_assess_eligible_case_utters_the_dates_and_the_filing_card_and_clears_the_case() -> None:
    dispatcher = CollectingDispatcher()
    slots = {"platform": "taobao", "trade_status": "success", "harassment_type": ["calls"], "evidence": ["none"],
             "success_time": {"said": "5天", "earliest": "2026-11-18", "latest": "2026-11-18"}}
    events = await ActionAssessComplaint(SERVICES).run(dispatcher, tracker(slots), {})  # no domain is sent
    assert said(dispatcher)[:2] == ["utter_complaint_file_online", "utter_complaint_filing_steps"]
    filing = kwargs(dispatcher, "utter_complaint_file_online")
    assert filing["days_left"] == 10 and filing["last_filing_date"] == "12月3日（周四）"
    assert filing["rule_label"].startswith("淘宝恶意骚扰规则")
    card = kwargs(dispatcher, "utter_complaint_filing_steps")["custom"]
    assert card["kind"] == "filing_steps"
    assert [path["url"] for path in card["paths"]] == [RULES.link("bought_items"), RULES.link("start_rights")]
    assert card["paths"][0]["steps"] == list(RULES.filing_paths[0].steps)
    assert SlotSet("outcome", "file_online") in events
    assert {slot: None for slot in FORM_SLOTS}.items() <= slot_events(events).items()


async def test_assess_past_window_utters_the_script_as_data_with_speaker_codes() -> None:
    dispatcher = CollectingDispatcher()
    slots = {"platform": "taobao", "trade_status": "success", "harassment_type": ["sms"], "evidence": ["sms_photo"],
             "success_time": {"said": "三周前", "earliest": "2026-11-01", "latest": "2026-11-01"}}
    events = await ActionAssessComplaint(SERVICES).run(dispatcher, tracker(slots), DOMAIN)
    assert said(dispatcher)[:2] == ["utter_complaint_phone_support", "utter_complaint_phone_script"]
    lines = kwargs(dispatcher, "utter_complaint_phone_script")["custom"]["lines"]
    assert [line["speaker"] for line in lines] == [line.speaker for line in RULES.phone_script]
    assert lines[0]["name"] == RULES.speakers[lines[0]["speaker"]]
    evidence = kwargs(dispatcher, "utter_complaint_evidence_checklist")["custom"]["items"]
    assert [item["code"] for item in evidence if item["have"]] == ["sms_photo"]
    assert SlotSet("outcome", "phone_support") in events


async def test_assess_threat_leads_with_police_once() -> None:
    slots = {"platform": "taobao", "trade_status": "shipped", "harassment_type": ["calls"], "evidence": ["none"],
             "safety_threat": True}
    first = CollectingDispatcher()
    events = await ActionAssessComplaint(SERVICES).run(first, tracker(slots), DOMAIN)
    assert said(first)[0] == "utter_safety_police_first"
    assert kwargs(first, "utter_safety_police_first")["custom"] == {"kind": "safety"}
    assert SlotSet("safety_advised", True) in events
    again = CollectingDispatcher()
    await ActionAssessComplaint(SERVICES).run(again, tracker(slots | {"safety_advised": True}), DOMAIN)
    assert "utter_safety_police_first" not in said(again)


async def test_a_date_the_form_gave_up_on_gives_both_rulings_with_the_cutoff_and_a_person() -> None:
    dispatcher = CollectingDispatcher()
    slots = {"platform": "taobao", "trade_status": "success", "harassment_type": ["calls"], "evidence": ["none"],
             "success_time": {"said": None, "earliest": None, "latest": None},
             "form_misses": {"success_time": RULES.max_asks}}
    events = await ActionAssessComplaint(SERVICES).run(dispatcher, tracker(slots), DOMAIN)
    assert said(dispatcher)[:4] == ["utter_complaint_either_online", "utter_complaint_filing_steps",
                                    "utter_complaint_either_phone", "utter_complaint_phone_script"]
    assert kwargs(dispatcher, "utter_complaint_either_online")["cutoff_date"] == "11月8日（周日）"
    assert said(dispatcher)[-1] == "utter_handoff_offer"
    assert SlotSet("outcome", "either") in events


async def test_reset_clears_the_case_but_keeps_safety_advice() -> None:
    events = await ActionResetComplaint().run(CollectingDispatcher(), tracker(), DOMAIN)
    cleared = set(slot_events(events))
    assert set(FORM_SLOTS) | {"form_misses", "order_id"} <= cleared
    assert "safety_advised" not in cleared


# ------------------------------------------------------------------------------------------------ reading answers


@pytest.mark.parametrize(
    ("value", "expected", "response"),
    [
        ("5天", {"said": "5天", "earliest": "2026-11-18", "latest": "2026-11-18"}, None),
        ("不知道", None, "utter_complaint_find_success_date"),
        ("2027年5月1日", None, "utter_invalid_success_time_future"),
        ("随便", None, "utter_invalid_success_time"),
        ("大概半个月前", None, "utter_complaint_date_assumption"),
    ],
)
def test_validate_success_time_reads_the_words_once_into_a_range(value: str, expected: Any, response: str | None):
    dispatcher = CollectingDispatcher()
    result = ValidateComplaintForm(SERVICES).validate_success_time(value, dispatcher, tracker(), DOMAIN)
    assert result == {"success_time": expected}
    assert said(dispatcher) == ([response] if response else [])


def test_a_whole_message_answer_is_read_in_its_normalised_form() -> None:
    dispatcher = CollectingDispatcher()
    answer = tracker(text="交易成功兩週了", normalized="交易成功两周了")
    result = ValidateComplaintForm(SERVICES).validate_success_time("交易成功兩週了", dispatcher, answer, DOMAIN)
    assert result["success_time"]["earliest"] == "2026-11-09"


async def test_required_slots_come_from_the_domain_and_skip_the_date_for_tmall() -> None:
    form = ValidateComplaintForm(SERVICES)
    slots = await form.required_slots(FORM_SLOTS, CollectingDispatcher(), tracker({"platform": "tmall"}), DOMAIN)
    assert slots == ["platform", "harassment_type", "evidence"]


@pytest.mark.parametrize(
    ("slot", "answer", "expected"),
    [
        ("platform", "taobao", "taobao"),  # a button or an entity
        ("platform", "在tb上买的", "taobao"),
        ("platform", "天猫旗舰店", "tmall"),
        ("platform", "京东", None),
        ("trade_status", "早就确认收货了", "success"),
        ("trade_status", "还没收到呢", "shipped"),
        ("trade_status", "退款成功了", "closed"),
        ("trade_status", "不清楚", None),
    ],
)
def test_categorical_answers_accept_free_words(slot: str, answer: str, expected: str | None) -> None:
    dispatcher = CollectingDispatcher()
    result = getattr(ValidateComplaintForm(SERVICES), f"validate_{slot}")(answer, dispatcher, tracker(text=answer),
                                                                          DOMAIN)
    assert result == {slot: expected}
    assert said(dispatcher) == ([] if expected else [f"utter_invalid_{slot}"])


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (["chat_screenshot"], ["chat_screenshot"]),  # a button
        (["none", "sms_photo"], ["sms_photo"]),  # "没有截图，有短信" as entities: the item wins
        (["有短信"], ["sms_photo"]),
        (["手机里存着他的短信"], ["sms_photo"]),
        (["聊天记录截了图，还有通话记录"], ["chat_screenshot", "call_log"]),
        (["都有"], ["all"]),
        (["短信和通话记录都有"], ["sms_photo", "call_log"]),  # 都有 here means "both of those"
        (["sms_photo", "call_log", "all"], ["sms_photo", "call_log"]),
        (["没有"], ["none"]),
        ([["none"]], ["none"]),  # 「没有」 (deny) as Rasa hands it over: the from_intent value [none], in a list
        (["啥也没留"], ["none"]),
        (["没截图，只有录音"], ["recording"]),
        (["短信截图"], ["sms_photo"]),
        (["举证号和站内信"], ["evidence_code", "site_message"]),
        (["嗯嗯"], None),
    ],
)
def test_evidence_named_in_any_words(answer: list[str], expected: list[str] | None) -> None:
    dispatcher = CollectingDispatcher()
    result = ValidateComplaintForm(SERVICES).validate_evidence(answer, dispatcher, tracker(text=answer[0]), DOMAIN)
    assert result == {"evidence": expected}
    assert said(dispatcher) == ([] if expected else ["utter_invalid_evidence"])


def test_harassment_named_in_words_and_unknown_codes_dropped() -> None:
    form, dispatcher = ValidateComplaintForm(SERVICES), CollectingDispatcher()
    assert form.validate_harassment_type(["calls", "calls", "hugs"], dispatcher, tracker(), DOMAIN) == {
        "harassment_type": ["calls"]}
    assert form.validate_harassment_type(["天天打电话，还在旺旺上骂我"], dispatcher, tracker(), DOMAIN) == {
        "harassment_type": ["calls", "im_insult"]}
    assert form.validate_harassment_type(["嗯"], dispatcher, tracker(), DOMAIN) == {"harassment_type": None}
    assert said(dispatcher) == ["utter_invalid_harassment_type"]


# ---------------------------------------------------------------------------------------------------- no dead ends


async def ask_again(slots: dict[str, Any], text: str) -> tuple[list[dict], CollectingDispatcher]:
    """One turn of the form where the requested question was answered with `text`."""
    dispatcher = CollectingDispatcher()
    requested = slots["requested_slot"]
    answer = tracker(slots | {requested: None}, text=text)
    # what from_text put into the slot this turn
    answer.events.append({"event": "slot", "name": requested, "value": text if requested != "evidence" else [text]})
    answer.slots[requested] = text if requested != "evidence" else [text]
    # Rasa does not send the domain to the form's validation (send_domain: false): it must work without it.
    events = await ValidateComplaintForm(SERVICES).run(dispatcher, answer, {})
    return events, dispatcher


async def test_a_question_is_asked_twice_at_most_then_the_form_moves_on() -> None:
    slots = {"platform": "taobao", "trade_status": "success", "requested_slot": "success_time"}
    first, dispatcher = await ask_again(slots, "不知道")
    assert said(dispatcher) == ["utter_complaint_find_success_date"]
    assert slot_events(first)["form_misses"] == {"success_time": 1}
    assert "requested_slot" not in slot_events(first) or slot_events(first)["requested_slot"] == "success_time"

    second, dispatcher = await ask_again(slots | {"form_misses": {"success_time": 1}}, "真的不记得了")
    values = slot_events(second)
    assert said(dispatcher)[-1] == "utter_complaint_skip_question"
    assert values["form_misses"] == {"success_time": RULES.max_asks}
    assert values["success_time"] == {"said": None, "earliest": None, "latest": None}
    assert values["requested_slot"] == "harassment_type"  # the next question, not the same one


async def test_evidence_that_cannot_be_read_twice_ends_the_form_with_the_whole_checklist() -> None:
    slots = {"platform": "taobao", "trade_status": "success", "harassment_type": ["calls"],
             "success_time": {"said": "5天", "earliest": "2026-11-18", "latest": "2026-11-18"},
             "requested_slot": "evidence", "form_misses": {"evidence": 1}}
    events, _ = await ask_again(slots, "嗯嗯嗯")
    values = slot_events(events)
    assert values["evidence"] == ["unknown"] and values["requested_slot"] is None
    dispatcher = CollectingDispatcher()
    await ActionAssessComplaint(SERVICES).run(dispatcher, tracker(slots | values), DOMAIN)
    items = kwargs(dispatcher, "utter_complaint_evidence_checklist")["custom"]["items"]
    assert len(items) == len(RULES.buyer_evidence) and not any(item["have"] for item in items)
    assert said(dispatcher)[-1] == "utter_handoff_offer"


@pytest.mark.parametrize("slot", ["trade_status", "success_time", "harassment_type", "evidence"])
def test_a_platform_correction_is_taken_whatever_question_was_asked(slot: str) -> None:
    # The NLU need not tag 天猫 in "不对，是天猫": the form reads the platform words itself and says no hint.
    form, dispatcher = ValidateComplaintForm(SERVICES), CollectingDispatcher()
    answer = ["不对，是天猫"] if slot in ("harassment_type", "evidence") else "不对，是天猫"
    result = getattr(form, f"validate_{slot}")(answer, dispatcher, tracker({"platform": "taobao"}, text="不对，是天猫"),
                                               DOMAIN)
    assert result == {slot: None, "platform": "tmall"} and said(dispatcher) == []
    unchanged = getattr(form, f"validate_{slot}")(answer, dispatcher, tracker({"platform": "tmall"},
                                                                              text="不对，是天猫"), DOMAIN)
    assert unchanged == {slot: None} and said(dispatcher) == [f"utter_invalid_{slot}"]  # nothing to correct


async def test_a_request_for_a_person_mid_form_is_no_miss_and_leaves_the_form_to_the_rules() -> None:
    # "转人工" maps to no slot (not_intent): the validation must add nothing, so Rasa rejects the form and the rule
    # for request_human runs instead of the same question again.
    slots = {"platform": "taobao", "trade_status": "success", "requested_slot": "success_time"}
    events = await ValidateComplaintForm(SERVICES).run(CollectingDispatcher(), tracker(slots, text="转人工",
                                                                                       intent="request_human"), {})
    assert "form_misses" not in slot_events(events)
    assert all(event.get("name") in (None, "requested_slot") for event in events)


@pytest.mark.parametrize("requested", ["platform", "harassment_type"])
async def test_a_threat_that_also_fills_a_slot_makes_the_form_yield_to_the_police_advice(requested: str) -> None:
    # "要上门弄死我" carries the entity harassment_type=threat: the form would accept it and ask its next question,
    # and the safety rule (which runs only when the form is rejected) would never give the advice.
    slots = {"requested_slot": requested, "harassment_type": ["threat"]}
    threat = tracker(slots, text="卖家说知道我家住哪，要上门弄死我", intent="report_safety_threat",
                     events=[{"event": "user", "text": "卖家说知道我家住哪，要上门弄死我"},
                             {"event": "slot", "name": "harassment_type", "value": ["threat"]}])
    events = await ValidateComplaintForm(SERVICES).run(CollectingDispatcher(), threat, {})
    assert events[-1] == {"event": "action_execution_rejected", "name": "complaint_form", "policy": None,
                          "confidence": None, "timestamp": None}
    assert slot_events(events)["harassment_type"] == ["threat"]  # what it answered is kept
    assert "form_misses" not in slot_events(events)  # and a threat is no missed answer
    # After the advice the form runs again for the same message: now it asks its question.
    threat.events.extend([{"event": "action_execution_rejected", "name": "complaint_form"},
                          {"event": "action", "name": "action_advise_safety"}])
    again = await ValidateComplaintForm(SERVICES).run(CollectingDispatcher(), threat, {})
    assert not any(event["event"] == "action_execution_rejected" for event in again)


async def test_an_answer_that_fills_the_question_counts_no_miss() -> None:
    slots = {"platform": "taobao", "trade_status": "success", "requested_slot": "success_time"}
    events, _ = await ask_again(slots, "5天前")
    assert "form_misses" not in slot_events(events)


# ------------------------------------------------------------------------------------------------------ faq, seller


def test_every_faq_intent_in_the_domain_has_an_answer() -> None:
    faq_intents = {intent for intent in DOMAIN["intents"] if intent.startswith("ask_")}
    assert set(FAQ_RESPONSES) == faq_intents


@pytest.mark.parametrize(
    ("intent", "responses"),
    [
        ("ask_deadline_passed", ["utter_faq_deadline_passed", "utter_complaint_phone_script"]),
        ("ask_processing_time", ["utter_faq_processing_time"]),
        ("ask_call_recording", ["utter_faq_call_recording"]),
        ("ask_tmall", ["utter_complaint_tmall"]),
        ("greet", ["utter_default"]),
    ],
)
async def test_faq_answers_from_rule_data(intent: str, responses: list[str]) -> None:
    dispatcher = CollectingDispatcher()
    await ActionAnswerFaq(SERVICES).run(dispatcher, tracker(intent=intent), DOMAIN)
    assert said(dispatcher) == responses
    assert kwargs(dispatcher, responses[0])["window_days"] == RULES.eligibility.window_days


async def test_processing_time_faq_gives_dates_from_today() -> None:
    dispatcher = CollectingDispatcher()
    await ActionAnswerFaq(SERVICES).run(dispatcher, tracker(intent="ask_processing_time"), DOMAIN)
    assert kwargs(dispatcher, "utter_faq_processing_time")["finish_by"] == "11月30日（周一）"


async def test_how_to_file_and_evidence_faqs_carry_their_cards() -> None:
    dispatcher = CollectingDispatcher()
    await ActionAnswerFaq(SERVICES).run(dispatcher, tracker(intent="ask_how_to_file"), DOMAIN)
    assert kwargs(dispatcher, "utter_faq_how_to_file")["custom"]["kind"] == "filing_steps"
    dispatcher = CollectingDispatcher()
    await ActionAnswerFaq(SERVICES).run(dispatcher, tracker(intent="ask_evidence"), DOMAIN)
    items = kwargs(dispatcher, "utter_faq_evidence")["custom"]["items"]
    assert [item["code"] for item in items] == [item.code for item in RULES.buyer_evidence]


async def test_seller_with_a_received_day_gets_a_dated_deadline_and_the_call_list() -> None:
    dispatcher = CollectingDispatcher()
    await ActionAdviseSeller(SERVICES).run(dispatcher, tracker(text="买家昨天投诉我了", intent="seller_accused"),
                                           DOMAIN)
    assert said(dispatcher) == ["utter_seller_options", "utter_seller_evidence", "utter_seller_deadline"]
    assert kwargs(dispatcher, "utter_seller_deadline")["seller_deadline"] == "11月25日（周三）"
    codes = [item["code"] for item in kwargs(dispatcher, "utter_seller_evidence")["custom"]["items"]]
    assert "call_log" in codes


async def test_safety_leads_with_the_police_then_offers_a_person() -> None:
    dispatcher = CollectingDispatcher()
    events = await ActionAdviseSafety(SERVICES).run(dispatcher, tracker(), DOMAIN)
    assert said(dispatcher) == ["utter_safety_police_first", "utter_handoff_offer"]
    assert kwargs(dispatcher, "utter_safety_police_first")["police"] == RULES.contacts["police"]
    assert SlotSet("safety_advised", True) in events


@pytest.mark.parametrize(
    ("day", "expected"),
    [(date(2026, 11, 30), "11月30日（周一）"), (date(2026, 12, 6), "12月6日（周日）"),
     (date(2027, 1, 4), "2027年1月4日（周一）"), (date(2025, 12, 31), "2025年12月31日（周三）")],
)
def test_dates_are_written_with_the_rule_data_format_and_the_year_only_when_it_differs(day, expected) -> None:
    assert Presenter(RULES, TODAY).date(day) == expected


# ------------------------------------------------------------------------------------------------------- clarify

LABELS = yaml.safe_load(Path("actions/intent_labels.yml").read_text(encoding="utf-8"))["labels"]


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
    assert message["buttons"][0]["title"] == LABELS["ask_evidence"]


@pytest.mark.parametrize(
    ("pair", "question"),
    [
        (["seller_accused", "report_harassment"], "utter_clarify_role"),
        (["report_harassment", "seller_accused"], "utter_clarify_role"),
        (["out_of_scope", "report_harassment"], "utter_clarify_problem"),
    ],
)
async def test_buyer_or_seller_and_harassment_or_other_problem_get_their_own_question(pair, question) -> None:
    ranking = [{"name": name, "confidence": 0.4} for name in pair]
    dispatcher = CollectingDispatcher()
    await ActionClarify().run(dispatcher, tracker(intent="nlu_fallback", ranking=ranking), DOMAIN)
    assert said(dispatcher) == [question]
    assert [button["payload"] for button in dispatcher.messages[0]["buttons"]] == [f"/{name}" for name in pair]


async def test_the_pair_the_nlu_hesitated_between_is_asked_whatever_the_ranking() -> None:
    ranking = [{"name": "nlu_fallback", "confidence": 1.0}, {"name": "seller_accused", "confidence": 0.6},
               {"name": "ask_penalty", "confidence": 0.3}, {"name": "report_harassment", "confidence": 0.1}]
    answer = tracker(intent="nlu_fallback", ranking=ranking)
    answer.latest_message["nlu_hesitation"] = {"reason": "role_cue", "pair": ["report_harassment", "seller_accused"]}
    dispatcher = CollectingDispatcher()
    await ActionClarify().run(dispatcher, answer, DOMAIN)
    assert said(dispatcher) == ["utter_clarify_role"]
    assert [b["payload"] for b in dispatcher.messages[0]["buttons"]] == ["/report_harassment", "/seller_accused"]


async def test_two_misunderstood_turns_in_a_row_offer_a_person() -> None:
    fallback = {"event": "user", "parse_data": {"intent": {"name": "nlu_fallback"}}}
    ranking = [{"name": "ask_evidence", "confidence": 0.4}, {"name": "ask_penalty", "confidence": 0.35}]
    once = CollectingDispatcher()
    await ActionClarify().run(once, tracker(intent="nlu_fallback", ranking=ranking, events=[fallback]), DOMAIN)
    assert "utter_handoff_offer" not in said(once)
    twice = CollectingDispatcher()
    await ActionClarify().run(twice, tracker(intent="nlu_fallback", ranking=ranking, events=[fallback, fallback]),
                              DOMAIN)
    assert said(twice)[-1] == "utter_handoff_offer"


async def test_clarify_without_two_known_intents_falls_back() -> None:
    dispatcher = CollectingDispatcher()
    await ActionClarify().run(dispatcher, tracker(intent="nlu_fallback", ranking=[]), DOMAIN)
    assert said(dispatcher) == ["utter_default"]
