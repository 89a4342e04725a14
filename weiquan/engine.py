"""The rules engine: from the facts of a case and a rule set to a decision.

Pure: no Rasa, no I/O, no clock. `today` and the working-day calendar are passed in. The decision names the
domain.yml responses to show, in order, and the variables that fill them; every number and link in those variables
comes from the rule set.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import Enum

from weiquan.ruleset import EvidenceItem, RuleSet
from weiquan.workdays import WorkdayCalendar, format_date_zh


class Outcome(str, Enum):
    FILE_ONLINE = "file_online"  # non-Tmall, 交易成功, day 0..window: file it yourself now
    PHONE_SUPPORT = "phone_support"  # past the window (or a closed trade): phone 小二 with the script
    TMALL = "tmall"  # the online 恶意骚扰 entry is for non-Tmall trades only
    WAIT_FOR_SUCCESS = "wait_for_success"  # not 交易成功 yet: the window has not opened
    CONFIRM_DATE = "confirm_date"  # the date reading straddles the last day: ask before ruling
    SELLER = "seller"  # advice to a seller who was complained about


class Severity(str, Enum):
    ORDINARY = "ordinary"
    SERIOUS = "serious"  # may count as 情节严重
    SAFETY = "safety"  # danger to a person: police first


class Window(str, Enum):
    INSIDE = "inside"
    OUTSIDE = "outside"
    STRADDLES = "straddles"


@dataclass(frozen=True)
class Case:
    platform: str | None
    trade_status: str | None
    success_earliest: date | None = None  # earliest possible 交易成功 date
    success_latest: date | None = None  # latest possible; equal to earliest for an exact date
    harassment: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()
    safety_threat: bool = False  # the safety check found a threat to a person in what the buyer wrote
    safety_advised: bool = False  # police advice was already given in this conversation


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    severity: Severity
    responses: tuple[str, ...]
    variables: Mapping[str, str | int] = field(default_factory=dict)
    day_count: int | None = None
    last_filing_date: date | None = None
    days_left: int | None = None


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


def numbered(lines: list[str]) -> str:
    return "\n".join(f"{index}. {line}" for index, line in enumerate(lines, start=1))


def evidence_text(items: tuple[EvidenceItem, ...], rules: RuleSet, have: tuple[str, ...] = ()) -> str:
    """The checklist, one numbered line each; items the user already has are ticked, how-to links appended."""
    lines = []
    for item in items:
        mark = "✅ " if item.code in have else ""
        howto = f" {rules.link(item.howto)}" if item.howto else ""
        lines.append(f"{mark}{item.label}{howto}")
    return numbered(lines)


def filing_steps_text(rules: RuleSet) -> str:
    blocks = []
    for index, path in enumerate(rules.filing_paths, start=1):
        steps = "\n".join(f"  {step_no}) {step}" for step_no, step in enumerate(path.steps, start=1))
        blocks.append(f"{index}. {path.name}：{rules.link(path.link)}\n{steps}")
    return "\n".join(blocks)


def phone_script_text(rules: RuleSet) -> str:
    return "\n".join(f"{line.who}：{line.line}" for line in rules.phone_script)


def rule_variables(rules: RuleSet) -> dict[str, str | int]:
    """Variables every rule-related response may use, straight from the rule set."""
    penalty, processing = rules.penalty, rules.processing
    return {
        "rule_label": rules.label,
        "rule_source": rules.source,
        "rule_centre": rules.link(rules.rule_centre),
        "window_days": rules.eligibility.window_days,
        "window_reason": rules.eligibility.window_reason,
        "ordinary_points": penalty.ordinary_points,
        "ordinary_consequence": penalty.ordinary_consequence,
        "serious_points": penalty.serious_points,
        "serious_consequence": penalty.serious_consequence,
        "handle_workdays": processing.handle_within_workdays,
        "finish_workdays": processing.finish_within_workdays,
        "seller_evidence_days": processing.seller_evidence_days,
        "filing_steps": filing_steps_text(rules),
        "buyer_evidence": evidence_text(rules.buyer_evidence, rules),
        "seller_evidence": evidence_text(rules.seller_evidence, rules),
        "phone_evidence_note": rules.phone_evidence_note,
        "phone_script": phone_script_text(rules),
        "police": rules.contacts["police"],
        "hotline": rules.contacts["service_hotline"],
        **{f"link_{key}": url for key, url in rules.links.items()},
    }


def processing_dates(rules: RuleSet, filed_on: date, calendar: WorkdayCalendar) -> tuple[dict[str, str], bool]:
    """Dates by which staff handle and finish a complaint filed on `filed_on`; True when they are estimates."""
    handle = calendar.add_workdays(filed_on, rules.processing.handle_within_workdays)
    finish = calendar.add_workdays(filed_on, rules.processing.finish_within_workdays)
    reference = filed_on.year
    return (
        {"handle_by": format_date_zh(handle.day, reference), "finish_by": format_date_zh(finish.day, reference)},
        handle.estimated or finish.estimated,
    )


def _lead(case: Case, severity: Severity) -> list[str]:
    """Danger to a person comes before every platform rule."""
    if severity is Severity.SAFETY and not case.safety_advised:
        return ["utter_safety_police_first"]
    return []


def _severity_response(severity: Severity) -> str:
    return {
        Severity.ORDINARY: "utter_complaint_severity_ordinary",
        Severity.SERIOUS: "utter_complaint_severity_serious",
        Severity.SAFETY: "utter_complaint_severity_safety",
    }[severity]


def assess(case: Case, rules: RuleSet, today: date, calendar: WorkdayCalendar) -> Decision:
    """Decide what the buyer should do next under `rules`, as of `today`."""
    severity = severity_of(case, rules)
    variables: dict[str, str | int] = {
        **rule_variables(rules),
        "evidence_checklist": evidence_text(rules.buyer_evidence, rules, case.evidence),
    }
    lead = _lead(case, severity)
    elig = rules.eligibility

    if case.platform not in elig.platforms_online:
        responses = [*lead, "utter_complaint_tmall", "utter_complaint_evidence_checklist"]
        return Decision(Outcome.TMALL, severity, tuple(responses), variables)

    if case.trade_status == "closed":
        # The seed only opens the online entry to 交易成功 trades; for a closed trade it says nothing, so the bot
        # says it is not sure and sends the buyer to a person with the script.
        responses = [*lead, "utter_complaint_closed_trade", "utter_complaint_phone_script",
                     "utter_complaint_evidence_checklist", "utter_complaint_unsure"]
        return Decision(Outcome.PHONE_SUPPORT, severity, tuple(responses), variables)

    if case.trade_status != elig.required_trade_status:
        responses = [*lead, "utter_complaint_wait_for_success", "utter_complaint_evidence_checklist"]
        return Decision(Outcome.WAIT_FOR_SUCCESS, severity, tuple(responses), variables)

    if case.success_earliest is None or case.success_latest is None:
        raise ValueError("a 交易成功 case needs its success date")

    day_count = (today - case.success_latest).days
    variables["day_count"] = day_count
    state = window_state(case.success_earliest, case.success_latest, today, elig.window_days)

    if state is Window.STRADDLES:
        earliest_deadline = case.success_earliest + timedelta(days=elig.window_days)
        latest_deadline = case.success_latest + timedelta(days=elig.window_days)
        variables["earliest_deadline"] = format_date_zh(earliest_deadline, today.year)
        variables["latest_deadline"] = format_date_zh(latest_deadline, today.year)
        return Decision(Outcome.CONFIRM_DATE, severity, ("utter_complaint_confirm_date",), variables, day_count)

    if state is Window.OUTSIDE:
        responses = [*lead, "utter_complaint_phone_support", "utter_complaint_phone_script",
                     "utter_complaint_evidence_checklist", _severity_response(severity)]
        return Decision(Outcome.PHONE_SUPPORT, severity, tuple(responses), variables, day_count)

    # Inside the window. A vague date takes its earliest reading, so the deadline we quote is never too late.
    last_day = case.success_earliest + timedelta(days=elig.window_days)
    days_left = (last_day - today).days
    dates, estimated = processing_dates(rules, today, calendar)
    variables.update(dates, last_filing_date=format_date_zh(last_day, today.year), days_left=days_left)
    responses = [*lead, "utter_complaint_file_online"]
    if days_left <= elig.urgent_days_left:
        responses.append("utter_complaint_urgent")
    responses += ["utter_complaint_evidence_checklist", _severity_response(severity), "utter_complaint_processing"]
    if estimated:
        responses.append("utter_complaint_dates_estimated")
    return Decision(Outcome.FILE_ONLINE, severity, tuple(responses), variables, day_count, last_day, days_left)


def seller_deadline(rules: RuleSet, received_on: date | None, today: date) -> Decision:
    """What a seller who received a 恶意骚扰 complaint should do, with the evidence deadline as a date if known."""
    variables: dict[str, str | int] = dict(rule_variables(rules))
    responses = ["utter_seller_options", "utter_seller_evidence"]
    if received_on is not None:
        deadline = received_on + timedelta(days=rules.processing.seller_evidence_days)
        variables["seller_deadline"] = format_date_zh(deadline, today.year)
        variables["seller_days_left"] = (deadline - today).days
        responses.append("utter_seller_deadline" if deadline >= today else "utter_seller_deadline_passed")
    return Decision(Outcome.SELLER, Severity.ORDINARY, tuple(responses), variables)


def faq_variables(rules: RuleSet, today: date, calendar: WorkdayCalendar) -> dict[str, str | int]:
    """Variables for the FAQ answers: the rule facts plus processing dates for a complaint filed today."""
    dates, _ = processing_dates(rules, today, calendar)
    return {**rule_variables(rules), **dates}


FORM_SLOTS = ("platform", "trade_status", "success_time", "harassment_type", "evidence")


def form_plan(platform: str | None, trade_status: str | None, rules: RuleSet) -> list[str]:
    """Which facts the complaint form still needs: the date matters only for an online-eligible, successful trade."""
    plan = list(FORM_SLOTS)
    if platform is not None and platform not in rules.eligibility.platforms_online:
        plan.remove("trade_status")
        plan.remove("success_time")
    elif trade_status is not None and trade_status != rules.eligibility.required_trade_status:
        plan.remove("success_time")
    return plan


@dataclass(frozen=True)
class DateJudgement:
    accepted: bool
    response: str | None = None  # what to say when the date is not accepted
    variables: Mapping[str, str] = field(default_factory=dict)


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
        dates = {"earliest_date": format_date_zh(earliest, today.year),
                 "latest_date": format_date_zh(latest, today.year)}
        return DateJudgement(False, "utter_complaint_date_assumption", dates)
    return DateJudgement(True)


# Which responses answer each FAQ intent; the deadline question also gets the phone script.
FAQ_RESPONSES: Mapping[str, tuple[str, ...]] = {
    "ask_how_to_file": ("utter_faq_how_to_file",),
    "ask_evidence": ("utter_faq_evidence",),
    "ask_penalty": ("utter_faq_penalty",),
    "ask_processing_time": ("utter_faq_processing_time",),
    "ask_appeal": ("utter_faq_appeal",),
    "ask_deadline_passed": ("utter_faq_deadline_passed", "utter_complaint_phone_script"),
}
