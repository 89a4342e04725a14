"""The rules engine, branch by branch, against the seed's rule set and a fixed `today`."""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from weiquan.core.engine import (
    UNKNOWN,
    Case,
    Outcome,
    Severity,
    Window,
    assess,
    form_plan,
    judge_success_date,
    seller_advice,
    window_state,
)
from weiquan.core.ruleset import load_ruleset
from weiquan.core.workdays import ChineseWorkdayCalendar, WeekdayCalendar

RULES = load_ruleset("taobao_2013")
TODAY = date(2026, 11, 23)  # a Monday
WINDOW = RULES.eligibility.window_days


def ago(days: int) -> date:
    return TODAY - timedelta(days=days)


def taobao_success(days: int, **extra) -> Case:
    return Case(platform="taobao", trade_status="success", success_earliest=ago(days), success_latest=ago(days),
                **extra)


@pytest.mark.parametrize(
    ("case", "outcome", "first_response"),
    [
        (taobao_success(0), Outcome.FILE_ONLINE, "utter_complaint_file_online"),
        (taobao_success(1), Outcome.FILE_ONLINE, "utter_complaint_file_online"),
        (taobao_success(WINDOW), Outcome.FILE_ONLINE, "utter_complaint_file_online"),  # day 15 is still inside
        (taobao_success(WINDOW + 1), Outcome.PHONE_SUPPORT, "utter_complaint_phone_support"),  # day 16 is not
        (taobao_success(200), Outcome.PHONE_SUPPORT, "utter_complaint_phone_support"),
        (Case(platform="tmall", trade_status="success", success_earliest=ago(3), success_latest=ago(3)),
         Outcome.TMALL, "utter_complaint_tmall"),
        (Case(platform="tmall", trade_status=None), Outcome.TMALL, "utter_complaint_tmall"),
        (Case(platform="taobao", trade_status="shipped"), Outcome.WAIT_FOR_SUCCESS, "utter_complaint_wait_for_success"),
        (Case(platform="taobao", trade_status="unpaid"), Outcome.WAIT_FOR_SUCCESS, "utter_complaint_wait_for_success"),
        (Case(platform="taobao", trade_status="refunding"), Outcome.WAIT_FOR_SUCCESS,
         "utter_complaint_wait_for_success"),
        (Case(platform="taobao", trade_status="closed"), Outcome.PHONE_SUPPORT, "utter_complaint_closed_trade"),
    ],
    ids=["day0", "day1", "day15", "day16", "day200", "tmall", "tmall-no-status", "shipped", "unpaid", "refunding",
         "closed"],
)
def test_outcome_by_case(case: Case, outcome: Outcome, first_response: str) -> None:
    decision = assess(case, RULES, TODAY, WeekdayCalendar())
    assert decision.outcome is outcome
    assert decision.responses[0] == first_response
    assert "utter_complaint_evidence_checklist" in decision.responses


def test_eligible_case_gives_last_day_days_left_and_processing_dates() -> None:
    decision = assess(taobao_success(5), RULES, TODAY, ChineseWorkdayCalendar())
    assert decision.last_filing_date == ago(5) + timedelta(days=WINDOW) == date(2026, 12, 3)
    assert decision.days_left == WINDOW - 5
    assert decision.processing is not None
    assert decision.processing.handle_by == date(2026, 11, 26)  # 3 working days after Monday 23rd
    assert decision.processing.finish_by == date(2026, 11, 30)  # 5 working days: skips the weekend
    assert decision.responses[:2] == ("utter_complaint_file_online", "utter_complaint_filing_steps")
    assert "utter_complaint_processing" in decision.responses
    assert "utter_complaint_urgent" not in decision.responses


@pytest.mark.parametrize(("days", "urgent"), [(WINDOW, True), (WINDOW - 2, True), (WINDOW - 3, False)])
def test_urgent_note_when_few_days_are_left(days: int, urgent: bool) -> None:
    decision = assess(taobao_success(days), RULES, TODAY, WeekdayCalendar())
    assert ("utter_complaint_urgent" in decision.responses) is urgent


def test_past_window_gives_the_phone_script_and_the_day_count() -> None:
    decision = assess(taobao_success(20), RULES, TODAY, WeekdayCalendar())
    assert decision.responses[:2] == ("utter_complaint_phone_support", "utter_complaint_phone_script")
    assert decision.day_count == 20 and decision.last_filing_date is None


@pytest.mark.parametrize(
    ("harassment", "safety_threat", "severity", "severity_response"),
    [
        (("calls",), False, Severity.ORDINARY, "utter_complaint_severity_ordinary"),
        (("sms", "im_insult", "info_leak"), False, Severity.ORDINARY, "utter_complaint_severity_ordinary"),
        (("threat",), False, Severity.SERIOUS, "utter_complaint_severity_serious"),  # e.g. 要告你: not a danger
        (("mailed_items",), False, Severity.SERIOUS, "utter_complaint_severity_serious"),
        (("calls",), True, Severity.SAFETY, "utter_complaint_severity_safety"),
        (("threat",), True, Severity.SAFETY, "utter_complaint_severity_safety"),
    ],
)
def test_severity(harassment, safety_threat, severity, severity_response) -> None:
    decision = assess(taobao_success(3, harassment=harassment, safety_threat=safety_threat), RULES, TODAY,
                      WeekdayCalendar())
    assert decision.severity is severity
    assert severity_response in decision.responses


def test_safety_leads_with_the_police_unless_already_advised() -> None:
    fresh = assess(taobao_success(3, safety_threat=True), RULES, TODAY, WeekdayCalendar())
    assert fresh.responses[0] == "utter_safety_police_first"
    advised = assess(taobao_success(3, safety_threat=True, safety_advised=True), RULES, TODAY, WeekdayCalendar())
    assert "utter_safety_police_first" not in advised.responses
    tmall = assess(Case(platform="tmall", trade_status=None, safety_threat=True), RULES, TODAY, WeekdayCalendar())
    assert tmall.responses[0] == "utter_safety_police_first"


def test_evidence_the_user_has_is_ticked() -> None:
    decision = assess(taobao_success(3, evidence=("chat_screenshot",)), RULES, TODAY, WeekdayCalendar())
    assert [(check.item.code, check.have) for check in decision.evidence][:2] == [
        ("chat_screenshot", True), ("evidence_code", False)]
    everything = assess(taobao_success(3, evidence=("all",)), RULES, TODAY, WeekdayCalendar())
    assert all(check.have for check in everything.evidence)
    unread = assess(taobao_success(3, evidence=(UNKNOWN,)), RULES, TODAY, WeekdayCalendar())
    assert len(unread.evidence) == len(RULES.buyer_evidence) and not any(check.have for check in unread.evidence)


@pytest.mark.parametrize(
    ("earliest", "latest", "state"),
    [(14, 14, Window.INSIDE), (15, 15, Window.INSIDE), (16, 16, Window.OUTSIDE), (20, 10, Window.STRADDLES),
     (59, 31, Window.OUTSIDE), (15, 7, Window.INSIDE), (16, 15, Window.STRADDLES)],
)
def test_window_state_of_vague_dates(earliest: int, latest: int, state: Window) -> None:
    assert window_state(ago(earliest), ago(latest), TODAY, WINDOW) is state


def test_a_vague_date_straddling_the_last_day_asks_instead_of_ruling() -> None:
    case = Case(platform="taobao", trade_status="success", success_earliest=ago(20), success_latest=ago(12))
    decision = assess(case, RULES, TODAY, WeekdayCalendar())
    assert decision.outcome is Outcome.CONFIRM_DATE
    assert decision.responses == ("utter_complaint_confirm_date",)
    assert decision.deadline_range == (ago(20) + timedelta(days=WINDOW), ago(12) + timedelta(days=WINDOW))


EITHER_CORE = ("utter_complaint_either_online", "utter_complaint_filing_steps", "utter_complaint_either_phone",
               "utter_complaint_phone_script", "utter_complaint_evidence_checklist")


@pytest.mark.parametrize(
    ("case", "first"),
    [
        (Case(platform="taobao", trade_status="success", gave_up=("success_time",)), "utter_complaint_either_online"),
        (Case(platform="taobao", trade_status="success", success_earliest=ago(20), success_latest=ago(12),
              gave_up=("success_time",)), "utter_complaint_either_online"),
        (Case(platform="taobao", trade_status=UNKNOWN, gave_up=("trade_status",)), "utter_complaint_status_unknown"),
        (Case(platform=UNKNOWN, trade_status="success", gave_up=("platform", "success_time")),
         "utter_complaint_platform_assumed"),
    ],
    ids=["date-unknown", "date-straddles-after-two-asks", "status-unknown", "platform-unknown"],
)
def test_what_the_form_could_not_learn_gives_both_rulings_with_their_condition(case: Case, first: str) -> None:
    decision = assess(case, RULES, TODAY, WeekdayCalendar())
    assert decision.outcome is Outcome.EITHER
    assert decision.responses[0] == first
    position = decision.responses.index(EITHER_CORE[0])
    assert decision.responses[position:position + len(EITHER_CORE)] == EITHER_CORE
    assert decision.cutoff == ago(WINDOW)  # a trade that succeeded on or after this day can still be filed online
    assert decision.responses[-1] == "utter_handoff_offer"  # a person is always offered after a dead end


def test_a_person_is_offered_whenever_the_form_moved_past_a_question() -> None:
    plain = assess(taobao_success(3), RULES, TODAY, WeekdayCalendar())
    assert "utter_handoff_offer" not in plain.responses
    skipped = assess(taobao_success(3, evidence=(UNKNOWN,), gave_up=("evidence",)), RULES, TODAY, WeekdayCalendar())
    assert skipped.outcome is Outcome.FILE_ONLINE and skipped.responses[-1] == "utter_handoff_offer"


def test_a_vague_date_inside_quotes_the_earliest_deadline() -> None:
    case = Case(platform="taobao", trade_status="success", success_earliest=ago(9), success_latest=ago(5))
    decision = assess(case, RULES, TODAY, WeekdayCalendar())
    assert decision.last_filing_date == ago(9) + timedelta(days=WINDOW)


FORM = ["platform", "trade_status", "success_time", "harassment_type", "evidence"]


@pytest.mark.parametrize(
    ("platform", "status", "plan"),
    [
        (None, None, FORM),
        ("taobao", None, FORM),
        ("taobao", "success", FORM),
        ("taobao", "shipped", ["platform", "trade_status", "harassment_type", "evidence"]),
        ("taobao", UNKNOWN, ["platform", "trade_status", "harassment_type", "evidence"]),
        (UNKNOWN, "success", FORM),
        ("tmall", "success", ["platform", "harassment_type", "evidence"]),
    ],
)
def test_form_asks_only_what_matters(platform, status, plan) -> None:
    assert form_plan(FORM, platform, status, RULES) == plan


@pytest.mark.parametrize(
    ("status", "earliest", "latest", "accepted", "response"),
    [
        ("ok", 5, 5, True, None),
        ("ok", 40, 31, True, None),
        ("ok", 20, 12, False, "utter_complaint_date_assumption"),
        ("unknown", None, None, False, "utter_complaint_find_success_date"),
        ("future", None, None, False, "utter_invalid_success_time_future"),
        ("too_old", None, None, False, "utter_invalid_success_time"),
        ("nonsense", None, None, False, "utter_invalid_success_time"),
    ],
)
def test_judge_success_date(status, earliest, latest, accepted, response) -> None:
    judgement = judge_success_date(status, earliest and ago(earliest), latest and ago(latest), TODAY, RULES)
    assert judgement.accepted is accepted
    assert judgement.response == response


def test_seller_gets_options_evidence_and_a_dated_deadline() -> None:
    advice = seller_advice(RULES, ago(1), TODAY)
    assert advice.responses == ("utter_seller_options", "utter_seller_evidence", "utter_seller_deadline")
    assert advice.deadline == ago(1) + timedelta(days=RULES.processing.seller_evidence_days)
    assert advice.days_left == RULES.processing.seller_evidence_days - 1
    late = seller_advice(RULES, ago(10), TODAY)
    assert late.responses[-1] == "utter_seller_deadline_passed"
    undated = seller_advice(RULES, None, TODAY)
    assert undated.responses == ("utter_seller_options", "utter_seller_evidence") and undated.deadline is None
