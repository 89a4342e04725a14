"""Rasa component: a threat to someone's safety is never missed.

Runs after the classifiers (after FallbackClassifier and the HesitationGuard, whose question it cancels). When the
rule pipeline found a danger phrase, the intent becomes `report_safety_threat` with full confidence whatever the model
said, so the dialogue leads with the police.
The model's own ranking is kept, and `safety_override` records that the rule decided.
"""
from __future__ import annotations

from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, PREDICTED_CONFIDENCE_KEY
from rasa.shared.nlu.training_data.message import Message

from weiquan.nlu.hesitation import HESITATION
from weiquan.nlu.rule_entities import SAFETY_SIGNALS

SAFETY_INTENT = "report_safety_threat"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False)
class SafetyGuard(GraphComponent):
    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {}

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> SafetyGuard:
        return cls()

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            signals = message.get(SAFETY_SIGNALS) or []
            intent = message.get(INTENT) or {}
            overridden = bool(signals) and intent.get(INTENT_NAME_KEY) != SAFETY_INTENT
            if overridden:
                message.set(INTENT, {INTENT_NAME_KEY: SAFETY_INTENT, PREDICTED_CONFIDENCE_KEY: 1.0}, add_to_output=True)
                if message.get(HESITATION):
                    message.set(HESITATION, None, add_to_output=True)  # safety never waits for a question
            message.set("safety_override", overridden, add_to_output=True)
        return messages
