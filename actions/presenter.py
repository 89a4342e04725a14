"""The presenter: turns the engine's data into response variables and one structured `custom` payload per message.

Words come from domain.yml (the responses) and the rule data (labels, steps, script lines, date formats); nothing
here writes a sentence. Lists travel as data in `custom` — the filing paths, the phone script, the evidence
checklist — and each channel draws them (weiquan/edge/channels/render.py for plain-text channels, the widget for the
web).

The cards' shapes are types in weiquan/core/contracts.py, which render.py reads too; which response carries which
card is declared once, on the response in domain.yml (weiquan/core/domain.py reads it).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from rasa_sdk.executor import CollectingDispatcher

from weiquan.core.contracts import (
    Card,
    EvidenceCard,
    EvidenceEntry,
    FilingPath,
    FilingStepsCard,
    PhoneScriptCard,
    SafetyCard,
    ScriptLine,
)
from weiquan.core.domain import response_cards
from weiquan.core.engine import Decision, EvidenceCheck, Processing, evidence_checks
from weiquan.core.ruleset import RuleSet

Variables = dict[str, Any]


@dataclass(frozen=True)
class Presenter:
    rules: RuleSet
    today: date

    # ------------------------------------------------------------------------------------------------- variables
    def date(self, day: date, with_year: bool = False) -> str:
        """A date as the rule data writes it; the year when it is not this year, or when asked for."""
        display = self.rules.display
        template = display.date_with_year if with_year or day.year != self.today.year else display.date
        return template.format(year=day.year, month=day.month, day=day.day, weekday=display.weekdays[day.weekday()])

    def rule_variables(self) -> Variables:
        """The rule facts any rule-related response may name, straight from the rule set."""
        rules, penalty, processing = self.rules, self.rules.penalty, self.rules.processing
        return {
            "rule_label": rules.label,
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
            "phone_evidence_note": rules.phone_evidence_note,
            "police": rules.contacts["police"],
            "hotline": rules.contacts["service_hotline"],
            **{f"link_{key}": url for key, url in rules.links.items()},
        }

    def processing_variables(self, processing: Processing) -> Variables:
        return {"handle_by": self.date(processing.handle_by), "finish_by": self.date(processing.finish_by)}

    def decision_variables(self, decision: Decision) -> Variables:
        """Everything a ruling's responses may name: the rule facts plus this case's figures and dates."""
        variables = self.rule_variables()
        if decision.day_count is not None:
            variables["day_count"] = decision.day_count
        if decision.last_filing_date is not None:
            variables["last_filing_date"] = self.date(decision.last_filing_date)
            variables["days_left"] = decision.days_left
        if decision.deadline_range is not None:
            variables["earliest_deadline"] = self.date(decision.deadline_range[0])
            variables["latest_deadline"] = self.date(decision.deadline_range[1])
        if decision.cutoff is not None:
            variables["cutoff_date"] = self.date(decision.cutoff)
        if decision.processing is not None:
            variables.update(self.processing_variables(decision.processing))
        return variables

    # ------------------------------------------------------------------------------------------------------ cards
    def filing_card(self) -> FilingStepsCard:
        return FilingStepsCard(kind="filing_steps", paths=[
            FilingPath(title=path.name, url=self.rules.link(path.link), steps=list(path.steps))
            for path in self.rules.filing_paths
        ])

    def script_card(self) -> PhoneScriptCard:
        return PhoneScriptCard(kind="phone_script", lines=[
            ScriptLine(speaker=line.speaker, name=self.rules.speakers[line.speaker], text=line.line)
            for line in self.rules.phone_script
        ])

    def evidence_card(self, checks: Iterable[EvidenceCheck]) -> EvidenceCard:
        return EvidenceCard(kind="evidence", items=[
            EvidenceEntry(code=check.item.code, label=check.item.label,
                          url=self.rules.link(check.item.howto) if check.item.howto else None, have=check.have)
            for check in checks
        ])

    def card(self, response: str, evidence: Sequence[EvidenceCheck] | None = None) -> Card | None:
        """The card `response` carries (domain.yml declares which), filled from the rule data; None for none, or
        for a kind whose data nobody here fills (hand-off status lines are whole in the domain)."""
        kind = response_cards().get(response)
        if kind == "filing_steps":
            return self.filing_card()
        if kind == "phone_script":
            return self.script_card()
        if kind == "evidence":
            return self.evidence_card(evidence if evidence is not None else evidence_checks(self.rules.buyer_evidence))
        if kind == "safety":
            return SafetyCard(kind="safety")
        return None

    # ------------------------------------------------------------------------------------------------------ utter
    def utter(
        self,
        dispatcher: CollectingDispatcher,
        responses: Iterable[str],
        variables: Mapping[str, Any],
        evidence: Sequence[EvidenceCheck] | None = None,
    ) -> None:
        """Utter each response with the variables, and its card as `custom` where it has one."""
        for response in responses:
            dispatcher.utter_message(response=response, json_message=self.card(response, evidence), **variables)

    def utter_decision(self, dispatcher: CollectingDispatcher, decision: Decision) -> None:
        self.utter(dispatcher, decision.responses, self.decision_variables(decision), decision.evidence)
