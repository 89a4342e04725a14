"""Issue 20's slips in the form and after the ruling: a date confirmed before it is used, a ruled case added to.

Trackers built in the test, the real rule data and vocabulary, a clock fixed on the day the slip was found.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

from rasa_sdk.executor import CollectingDispatcher

from actions.complaint import (
    LAST_CASE,
    UNCONFIRMED,
    ActionAskSuccessTime,
    ActionAssessComplaint,
    ActionStartComplaint,
    ValidateComplaintForm,
)
from tests.test_actions import said, slot_events, tracker
from weiquan.core.clock import FixedClock
from weiquan.core.timeparse import parse_success_time
from weiquan.core.workdays import WeekdayCalendar
from weiquan.services import default_services

TODAY = date(2026, 12, 7)  # the day 「12月17日交易成功的」 was read as a year ago without a word
SERVICES = replace(default_services(), clock=FixedClock(TODAY), calendar=WeekdayCalendar())
FORM = {"platform": "taobao", "trade_status": "success", "requested_slot": "success_time"}


def answer(text: str, intent: str = "inform", slots: dict[str, Any] | None = None) -> tuple[dict, list[str]]:
    dispatcher = CollectingDispatcher()
    result = ValidateComplaintForm(SERVICES).validate_success_time(
        text, dispatcher, tracker(FORM | (slots or {}), text=text, intent=intent), {})
    return result, said(dispatcher)


async def question(slots: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    dispatcher = CollectingDispatcher()
    await ActionAskSuccessTime(SERVICES).run(dispatcher, tracker(FORM | slots), {})
    return said(dispatcher), dispatcher.messages[0]


# ---------------------------------------------------------------------------------------------------- the date


def test_a_yearless_date_still_to_come_is_flagged_as_moved_back_by_the_parser() -> None:
    reading = parse_success_time("12月17日交易成功的", TODAY)
    assert reading is not None and reading.earliest == date(2025, 12, 17) and reading.year_moved_back
    for text in ("12月1日交易成功的", "去年12月17日", "5天前", "2025年12月17日"):
        typed = parse_success_time(text, TODAY)
        assert typed is not None and not typed.year_moved_back, text


async def test_a_date_that_would_lie_ahead_is_asked_about_once_with_its_year_not_ruled_on() -> None:
    result, uttered = answer("12月17日交易成功的")
    assert result["success_time"] is None
    assert result[UNCONFIRMED] == {"said": "12月17日", "earliest": "2025-12-17", "latest": "2025-12-17"}
    assert uttered == []  # the form's question itself becomes the check
    asked, message = await question({UNCONFIRMED: result[UNCONFIRMED]})
    assert asked == ["utter_confirm_success_time"]
    assert message["earliest_date"] == "2025年12月17日（周三）" and message["day_count"] == 355


async def test_the_usual_question_when_nothing_waits_for_confirmation() -> None:
    asked, _ = await question({})
    assert asked == ["utter_ask_success_time"]


def test_yes_takes_the_date_no_asks_for_it_again_and_a_new_date_is_taken_as_said() -> None:
    waiting = {UNCONFIRMED: {"said": "12月17日", "earliest": "2025-12-17", "latest": "2025-12-17"}}
    yes, _ = answer("是的", intent="affirm", slots=waiting)
    assert yes == {"success_time": waiting[UNCONFIRMED], UNCONFIRMED: None}
    no, uttered = answer("不是", intent="deny", slots=waiting)
    assert no == {"success_time": None, UNCONFIRMED: None} and uttered == ["utter_complaint_date_not_confirmed"]
    other, _ = answer("11月17日", slots=waiting)
    assert other == {"success_time": {"said": "11月17日", "earliest": "2026-11-17", "latest": "2026-11-17"},
                     UNCONFIRMED: None}
    unclear, _ = answer("嗯？", intent="out_of_scope", slots=waiting)
    assert unclear == {"success_time": None}  # still waiting: the check is asked again


def test_an_exact_date_more_than_six_months_back_is_confirmed_a_recent_or_year_given_one_is_not() -> None:
    assert answer("5月3日")[0][UNCONFIRMED] == {"said": "5月3日", "earliest": "2026-05-03", "latest": "2026-05-03"}
    for text in ("12月1日", "2026年5月3日", "去年12月17日", "三周前"):
        result, _ = answer(text)
        assert UNCONFIRMED not in result and result["success_time"] is not None, text


async def test_the_confirmation_is_not_counted_as_a_question_asked_twice() -> None:
    waiting = {UNCONFIRMED: {"said": "12月17日", "earliest": "2025-12-17", "latest": "2025-12-17"}}
    turn = [{"event": "user", "text": "嗯？"}, {"event": "slot", "name": "success_time", "value": "嗯？"}]
    form = tracker(FORM | waiting | {"success_time": "嗯？"}, text="嗯？", intent="out_of_scope", events=turn)
    events = await ValidateComplaintForm(SERVICES).run(CollectingDispatcher(), form, {})
    assert "form_misses" not in slot_events(events)


# ------------------------------------------------------------------------------------------- after the ruling

RULED = {"platform": "taobao", "trade_status": "success", "harassment_type": ["calls"], "evidence": ["none"],
         "success_time": {"said": "5天", "earliest": "2026-12-02", "latest": "2026-12-02"}}


async def test_the_ruling_keeps_the_case_it_ruled_on() -> None:
    events = await ActionAssessComplaint(SERVICES).run(CollectingDispatcher(), tracker(RULED), {})
    assert slot_events(events)[LAST_CASE] == RULED


async def start(text: str, filled: dict[str, Any], last: dict[str, Any] | None = RULED) -> tuple[list[str], dict]:
    events = [{"event": "user", "text": text}] + [{"event": "slot", "name": k, "value": v} for k, v in filled.items()]
    dispatcher = CollectingDispatcher()
    out = await ActionStartComplaint(SERVICES).run(
        dispatcher, tracker({LAST_CASE: last} | filled, text=text, normalized=text, events=events), {})
    return said(dispatcher), slot_events(out)


def form_reads(slot: str, text: str, value: list[str], last: dict[str, Any] | None = RULED) -> Any:
    """The form's reading of `slot` on the turn it starts (no question asked yet) after ActionStartComplaint."""
    turn = tracker({LAST_CASE: last, "requested_slot": None, slot: value}, text=text, normalized=text)
    validate = getattr(ValidateComplaintForm(SERVICES), f"validate_{slot}")
    return validate(value, CollectingDispatcher(), turn, {})[slot]


async def test_evidence_added_after_a_ruling_starts_the_form_with_the_ruled_case() -> None:
    uttered, slots = await start("有短信", {"evidence": ["sms_photo"]})
    assert uttered == ["utter_complaint_update"]
    assert slots == {k: v for k, v in RULED.items() if k != "evidence"}  # the form reads what is named now


def test_what_is_named_after_a_ruling_adds_to_the_ruled_case() -> None:
    assert form_reads("evidence", "有短信", ["sms_photo"]) == ["sms_photo"]  # 没有 gives way to what is named
    had_sms = RULED | {"evidence": ["sms_photo"]}
    assert form_reads("evidence", "还有录音", ["recording"], last=had_sms) == ["sms_photo", "recording"]
    assert form_reads("harassment_type", "他还发短信骂我", ["sms"]) == ["calls", "sms"]
    assert form_reads("evidence", "还有录音", ["recording"], last=None) == ["recording"]  # no ruled case


def test_a_correction_replaces_the_fact_it_names() -> None:
    had_sms = RULED | {"evidence": ["sms_photo"]}
    assert form_reads("evidence", "不是短信，是通话记录", ["call_log"], last=had_sms) == ["call_log"]


async def test_a_corrected_platform_keeps_the_other_facts() -> None:
    _, slots = await start("不对，是天猫", {"platform": "tmall"})
    assert "platform" not in slots and slots["evidence"] == ["none"]
    _, in_words = await start("不对，是天猫", {})  # no entity found: the words name it
    assert in_words["platform"] == "tmall" and in_words["evidence"] == ["none"]
    _, unchanged = await start("还有短信", {"evidence": ["sms_photo"]})
    assert unchanged["platform"] == "taobao"


async def test_only_another_order_starts_from_the_first_question() -> None:
    uttered, slots = await start("还有另一个订单，那个卖家也天天打电话", {"harassment_type": ["calls"]})
    assert uttered == ["utter_complaint_start"] and slots == {LAST_CASE: None}
    first, none = await start("卖家天天打电话骚扰我", {"harassment_type": ["calls"]}, last=None)
    assert first == ["utter_complaint_start"] and none == {LAST_CASE: None}
