"""The rules engine: from the facts of a case and a rule set to a decision.

Pure: no Rasa, no I/O, no clock, no words. `today` and the working-day calendar are passed in. A decision is data:
the outcome and severity codes, dates as `date`, the evidence checklist with what the buyer already has, and the
names of the domain.yml responses to show, in order. actions/presenter.py turns it into words; every number and link
comes from the rule set.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import Enum

from weiquan.core.ruleset import EvidenceItem, RuleSet
from weiquan.core.workdays import WorkdayCalendar


class Outcome(str, Enum):
    FILE_ONLINE = "file_online"  # non-Tmall, 交易成功, day 0..window: file it yourself now
    PHONE_SUPPORT = "phone_support"  # past the window (or a closed trade): phone 小二 with the script
    TMALL = "tmall"  # the online 恶意骚扰 entry is for non-Tmall trades only
    WAIT_FOR_SUCCESS = "wait_for_success"  # not 交易成功 yet: the window has not opened
    CONFIRM_DATE = "confirm_date"  # the date reading straddles the last day: ask before ruling
    EITHER = "either"  # the date (or status) could not be learnt: both rulings, each with its condition
    SELLER = "seller"  # advice to a seller who was complained about


class Severity(str, Enum):
    ORDINARY = "ordinary"
    SERIOUS = "serious"  # may count as 情节严重
    SAFETY = "safety"  # danger to a person: police first


class Window(str, Enum):
    INSIDE = "inside"
    OUTSIDE = "outside"
    STRADDLES = "straddles"


UNKNOWN = "unknown"  # the code the form records for an answer it could not read twice


@dataclass(frozen=True)
class Case:
    platform: str | None
    trade_status: str | None
    success_earliest: date | None = None  # earliest possible 交易成功 date; None when not known
    success_latest: date | None = None  # latest possible; equal to earliest for an exact date
    harassment: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()
    safety_threat: bool = False  # the safety check found a threat to a person in what the buyer wrote
    safety_advised: bool = False  # police advice was already given in this conversation
    gave_up: tuple[str, ...] = ()  # form questions the bot moved past after asking twice


@dataclass(frozen=True)
class EvidenceCheck:
    item: EvidenceItem
    have: bool  # the buyer said they already have it


@dataclass(frozen=True)
class Processing:
    handle_by: date
    finish_by: date
    estimated: bool  # counted past the years the holiday data covers


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    severity: Severity
    responses: tuple[str, ...]
    evidence: tuple[EvidenceCheck, ...] = ()
    day_count: int | None = None  # days since 交易成功 (latest reading)
    last_filing_date: date | None = None
    days_left: int | None = None
    deadline_range: tuple[date, date] | None = None  # CONFIRM_DATE: the last day lies in this range
    cutoff: date | None = None  # EITHER: a trade that succeeded on or after this day can still be filed online
    processing: Processing | None = None  # when staff handle and finish a complaint filed today


def window_state(earliest: date, latest: date, today: date, window_days: int) -> Window:
    """Where a (possibly vague) success date falls against the window; day `window_days` itself is inside."""
    if (today - earliest).days <= window_days:
        return Window.INSIDE
    if (today - latest).days > window_days:
        return Window.OUTSIDE
    return Window.STRADDLES


def severity_of(case: Case, rules: RuleSet) -> Severity:
    if case.safety_threat:
        return Severity.SAFETY
    if set(case.harassment) & set(rules.penalty.serious_candidates):
        return Severity.SERIOUS
    return Severity.ORDINARY


def evidence_checks(items: Sequence[EvidenceItem], have: Sequence[str] = ()) -> tuple[EvidenceCheck, ...]:
    """The checklist; "all" (都有) ticks every item."""
    everything = "all" in have
    return tuple(EvidenceCheck(item, everything or item.code in have) for item in items)


def processing_dates(rules: RuleSet, filed_on: date, calendar: WorkdayCalendar) -> Processing:
    """When staff handle and finish a complaint filed on `filed_on`."""
    handle = calendar.add_workdays(filed_on, rules.processing.handle_within_workdays)
    finish = calendar.add_workdays(filed_on, rules.processing.finish_within_workdays)
    return Processing(handle.day, finish.day, handle.estimated or finish.estimated)


_SEVERITY_RESPONSE = {
    Severity.ORDINARY: "utter_complaint_severity_ordinary",
    Severity.SERIOUS: "utter_complaint_severity_serious",
    Severity.SAFETY: "utter_complaint_severity_safety",
}


def _lead(case: Case, severity: Severity) -> list[str]:
    """Danger to a person comes before every platform rule."""
    if severity is Severity.SAFETY and not case.safety_advised:
        return ["utter_safety_police_first"]
    return []


def _tail(case: Case) -> list[str]:
    """When the form had to move past a question, a person is always offered."""
    return ["utter_handoff_offer"] if case.gave_up else []


def assess(case: Case, rules: RuleSet, today: date, calendar: WorkdayCalendar) -> Decision:
    """Decide what the buyer should do next under `rules`, as of `today`."""
    severity = severity_of(case, rules)
    checks = evidence_checks(rules.buyer_evidence, case.evidence)
    elig = rules.eligibility
    # A platform the form could not learn is ruled as Taobao, and the bot says so (Tmall has no online route).
    note = ["utter_complaint_platform_assumed"] if case.platform == UNKNOWN else []

    def decide(outcome: Outcome, responses: list[str], day_count: int | None = None, last_day: date | None = None,
               days_left: int | None = None, cutoff: date | None = None,
               processing: Processing | None = None) -> Decision:
        return Decision(outcome, severity, tuple([*_lead(case, severity), *note, *responses, *_tail(case)]), checks,
                        day_count, last_day, days_left, cutoff=cutoff, processing=processing)

    if case.platform not in (*elig.platforms_online, UNKNOWN):
        return decide(Outcome.TMALL, ["utter_complaint_tmall", "utter_complaint_evidence_checklist"])

    if case.trade_status == "closed":
        # The seed only opens the online entry to 交易成功 trades; for a closed trade it says nothing, so the bot
        # says it is not sure and sends the buyer to a person with the script.
        return decide(Outcome.PHONE_SUPPORT, ["utter_complaint_closed_trade", "utter_complaint_phone_script",
                                              "utter_complaint_evidence_checklist", "utter_complaint_unsure"])

    if case.trade_status not in (elig.required_trade_status, UNKNOWN):
        return decide(Outcome.WAIT_FOR_SUCCESS, ["utter_complaint_wait_for_success",
                                                 "utter_complaint_evidence_checklist"])

    earliest, latest = case.success_earliest, case.success_latest
    state = None if earliest is None or latest is None else window_state(earliest, latest, today, elig.window_days)
    if state is None or (state is Window.STRADDLES and "success_time" in case.gave_up):
        # Both rulings, each with its condition: the buyer checks the date and knows at once which applies.
        status = ["utter_complaint_status_unknown"] if case.trade_status == UNKNOWN else []
        return decide(Outcome.EITHER, [*status, "utter_complaint_either_online", "utter_complaint_filing_steps",
                                       "utter_complaint_either_phone", "utter_complaint_phone_script",
                                       "utter_complaint_evidence_checklist", _SEVERITY_RESPONSE[severity]],
                      cutoff=today - timedelta(days=elig.window_days))
    assert earliest is not None and latest is not None  # state is not None
    day_count = (today - latest).days

    if state is Window.STRADDLES:
        deadlines = (earliest + timedelta(days=elig.window_days), latest + timedelta(days=elig.window_days))
        return Decision(Outcome.CONFIRM_DATE, severity, ("utter_complaint_confirm_date",), checks, day_count,
                        deadline_range=deadlines)

    if state is Window.OUTSIDE:
        return decide(Outcome.PHONE_SUPPORT, ["utter_complaint_phone_support", "utter_complaint_phone_script",
                                              "utter_complaint_evidence_checklist", _SEVERITY_RESPONSE[severity]],
                      day_count=day_count)

    # Inside the window. A vague date takes its earliest reading, so the deadline we quote is never too late.
    last_day = earliest + timedelta(days=elig.window_days)
    days_left = (last_day - today).days
    processing = processing_dates(rules, today, calendar)
    responses = ["utter_complaint_file_online", "utter_complaint_filing_steps"]
    if days_left <= elig.urgent_days_left:
        responses.append("utter_complaint_urgent")
    responses += ["utter_complaint_evidence_checklist", _SEVERITY_RESPONSE[severity], "utter_complaint_processing"]
    if processing.estimated:
        responses.append("utter_complaint_dates_estimated")
    return decide(Outcome.FILE_ONLINE, responses, day_count, last_day, days_left, processing=processing)


@dataclass(frozen=True)
class SellerAdvice:
    responses: tuple[str, ...]
    deadline: date | None = None
    days_left: int | None = None


def seller_advice(rules: RuleSet, received_on: date | None, today: date) -> SellerAdvice:
    """What a seller who received a 恶意骚扰 complaint should do, with the evidence deadline as a date if known."""
    responses = ["utter_seller_options", "utter_seller_evidence"]
    if received_on is None:
        return SellerAdvice(tuple(responses))
    deadline = received_on + timedelta(days=rules.processing.seller_evidence_days)
    responses.append("utter_seller_deadline" if deadline >= today else "utter_seller_deadline_passed")
    return SellerAdvice(tuple(responses), deadline, (deadline - today).days)


def form_plan(domain_slots: Sequence[str], platform: str | None, trade_status: str | None,
              rules: RuleSet) -> list[str]:
    """Which of the form's slots (as domain.yml lists them) still matter: the date only for a successful
    non-Tmall trade, the status only where the online route can apply."""
    skip: set[str] = set()
    if platform == "tmall" or (platform is not None and platform not in (*rules.eligibility.platforms_online,
                                                                         UNKNOWN)):
        skip |= {"trade_status", "success_time"}
    elif trade_status is not None and trade_status != rules.eligibility.required_trade_status:
        skip.add("success_time")
    return [slot for slot in domain_slots if slot not in skip]


@dataclass(frozen=True)
class DateJudgement:
    accepted: bool
    response: str | None = None  # what to say when the date is not accepted
    earliest: date | None = None
    latest: date | None = None


def judge_success_date(
    status: str, earliest: date | None, latest: date | None, today: date, rules: RuleSet
) -> DateJudgement:
    """Accept a reading of the 交易成功 date only when it is usable and decides the case."""
    if status == "unknown":
        return DateJudgement(False, "utter_complaint_find_success_date")
    if status == "future":
        return DateJudgement(False, "utter_invalid_success_time_future")
    if status != "ok" or earliest is None or latest is None:
        return DateJudgement(False, "utter_invalid_success_time")
    if window_state(earliest, latest, today, rules.eligibility.window_days) is Window.STRADDLES:
        return DateJudgement(False, "utter_complaint_date_assumption", earliest, latest)
    return DateJudgement(True, None, earliest, latest)

