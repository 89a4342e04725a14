"""Rasa component: entities that rules find better than a model.

- `order_id` and `phone` from the spaCy rule pipeline (build/spacy_zh, built by `make setup`);
- `success_time`, the buyer's own words for when the trade succeeded, from weiquan.core.timeparse;
- danger phrases (THREAT) from the spaCy pipeline, kept on the message as `safety_signals` for the SafetyGuard.
Phone numbers are never echoed: the entity value is masked.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.extractors.extractor import EntityExtractorMixin
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from weiquan.core.privacy import mask_phone
from weiquan.core.timeparse import find_time_spans
from weiquan.nlu.spacy_pipeline import ROOT, load_pipeline

SAFETY_SIGNALS = "safety_signals"
LABEL_TO_ENTITY = {"ORDER_ID": "order_id", "PHONE": "phone"}


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=False)
class RuleEntityExtractor(GraphComponent, EntityExtractorMixin):
    """Adds rule-found entities and safety signals to every message."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {"pipeline_path": "build/spacy_zh"}

    def __init__(self, config: dict[str, Any]) -> None:
        self._config = config
        path = Path(config["pipeline_path"])
        self._nlp = load_pipeline(path if path.is_absolute() else ROOT / path)

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> RuleEntityExtractor:
        return cls(config)

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data  # nothing to learn; DIET is not trained on these entities

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            text = message.get(TEXT) or ""
            found, signals = self.extract(text)
            message.set(ENTITIES, message.get(ENTITIES, []) + self.add_extractor_name(found), add_to_output=True)
            message.set(SAFETY_SIGNALS, signals, add_to_output=True)
        return messages

    def extract(self, text: str) -> tuple[list[dict[str, Any]], list[str]]:
        entities: list[dict[str, Any]] = []
        signals: list[str] = []
        for ent in self._nlp(text).ents:
            if ent.label_ == "THREAT":
                signals.append(ent.text)
                continue
            value = mask_phone(ent.text) if ent.label_ == "PHONE" else ent.text
            entities.append(self._entity(LABEL_TO_ENTITY[ent.label_], ent.start_char, ent.end_char, value))
        taken = [(item["start"], item["end"]) for item in entities]
        for start, end in find_time_spans(text):
            if not any(start < t_end and t_start < end for t_start, t_end in taken):
                entities.append(self._entity("success_time", start, end, text[start:end]))
        return entities, signals

    @staticmethod
    def _entity(name: str, start: int, end: int, value: str) -> dict[str, Any]:
        return {"entity": name, "start": start, "end": end, "value": value, "confidence": 1.0}
