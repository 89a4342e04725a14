"""Rasa component: a threat to someone's safety is never missed.

Runs after the classifiers (after FallbackClassifier and the HesitationGuard, whose question it cancels). The
threat detector (weiquan/nlu/threat.py, built into build/threat by `make setup`) judges every message apart from
the intent model: its rules or its model, each alone, make the intent `report_safety_threat` with full confidence
whatever the intent model said, so the dialogue leads with the police. The spaCy rule pipeline's danger phrases
(`safety_signals`) count as a rule hit too.

The intent model's own ranking is kept. The parse output records the decision: `safety_override` (the intent was
changed) and `threat` = {score, by_rule, by_model, rules}. Rasa parses every message, paused conversation or not,
so every message gets it.
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


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False)
class SafetyGuard(GraphComponent):
    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {"detector_path": "build/threat"}

    def __init__(self, detector: ThreatDetector) -> None:
        self._detector = detector

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> SafetyGuard:
        path = Path(config.get("detector_path") or "build/threat")
        return cls(ThreatDetector.load(path if path.is_absolute() else ROOT / path))

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
            message.set(SAFETY_OVERRIDE, overridden, add_to_output=True)
            message.set(THREAT, verdict.to_json(), add_to_output=True)
        return messages
