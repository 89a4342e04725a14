"""Rasa component: a threat to someone's safety is never missed.

Runs after the classifiers (after FallbackClassifier and the HesitationGuard, whose question it cancels). The
threat detector (weiquan/nlu/threat.py, built into build/threat by `make setup`) judges every message apart from
the intent model: its rules or its model, each alone, make the intent `report_safety_threat` with full confidence
whatever the intent model said, so the dialogue leads with the police. The spaCy rule pipeline's danger phrases
(`safety_signals`) count as a rule hit too.

The other way round, the intent model's own report_safety_threat stands unless the detector is sure it is not a
threat: no rule fired and the model's score is under `intent_floor` (0.1, about half the threshold). Then
the next intent of the ranking is taken (`safety_veto`). On the held-out sets no threat scored that low while only
the intent model flagged it, and two thirds of the intent model's false alarms without the detector did
(reports/safety_detector.md).

The intent model's own ranking is kept. The parse output records the decision: `safety_override` (the intent was
changed to the threat), `safety_veto` (the intent model's threat was dropped) and `threat` = {score, by_rule,
by_model, rules}. Rasa parses every message, paused conversation or not, so every message gets it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, PREDICTED_CONFIDENCE_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from weiquan.nlu.hesitation import HESITATION
from weiquan.nlu.rule_entities import SAFETY_SIGNALS
from weiquan.nlu.threat import ROOT, ThreatDetector, Verdict

SAFETY_INTENT = "report_safety_threat"
THREAT = "threat"
SAFETY_OVERRIDE = "safety_override"
SAFETY_VETO = "safety_veto"
INTENT_RANKING = "intent_ranking"
INTENT_FLOOR = 0.1  # the detector's score under which the intent model's own threat intent is dropped


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False)
class SafetyGuard(GraphComponent):
    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {"detector_path": "build/threat", "intent_floor": INTENT_FLOOR}

    def __init__(self, detector: ThreatDetector, intent_floor: float = INTENT_FLOOR) -> None:
        self._detector = detector
        self._intent_floor = intent_floor

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> SafetyGuard:
        path = Path(config.get("detector_path") or "build/threat")
        floor = float(config.get("intent_floor", INTENT_FLOOR))
        return cls(ThreatDetector.load(path if path.is_absolute() else ROOT / path), floor)

    def judge(self, message: Message) -> Verdict:
        verdict = self._detector.verdict(message.get(TEXT) or "")
        signals = tuple(message.get(SAFETY_SIGNALS) or [])
        if signals and not verdict.by_rule:
            return Verdict(verdict.score, True, verdict.by_model, signals)
        return verdict

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            verdict = self.judge(message)
            intent = message.get(INTENT) or {}
            overridden = verdict.threat and intent.get(INTENT_NAME_KEY) != SAFETY_INTENT
            if overridden:
                message.set(INTENT, {INTENT_NAME_KEY: SAFETY_INTENT, PREDICTED_CONFIDENCE_KEY: 1.0}, add_to_output=True)
                if message.get(HESITATION):
                    message.set(HESITATION, None, add_to_output=True)  # safety never waits for a question
            vetoed = (not verdict.threat and intent.get(INTENT_NAME_KEY) == SAFETY_INTENT
                      and verdict.score < self._intent_floor)
            if vetoed:
                message.set(INTENT, self._next_intent(message), add_to_output=True)
            message.set(SAFETY_OVERRIDE, overridden, add_to_output=True)
            message.set(SAFETY_VETO, vetoed, add_to_output=True)
            message.set(THREAT, verdict.to_json(), add_to_output=True)
        return messages

    @staticmethod
    def _next_intent(message: Message) -> dict[str, Any]:
        """The intent model's best intent other than the threat (its ranking is kept as it was)."""
        for item in message.get(INTENT_RANKING) or []:
            if item.get(INTENT_NAME_KEY) != SAFETY_INTENT:
                return {INTENT_NAME_KEY: item[INTENT_NAME_KEY],
                        PREDICTED_CONFIDENCE_KEY: item.get(PREDICTED_CONFIDENCE_KEY)}
        return {INTENT_NAME_KEY: "nlu_fallback", PREDICTED_CONFIDENCE_KEY: 1.0}
