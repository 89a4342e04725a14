"""Rasa component: canonical entity values that depend on the entity (entity_values.yml).

Rasa's EntitySynonymMapper keeps one table for all entities, so "短信" maps to the harassment type `sms` even where
the model tagged it as evidence. This component runs right after the mapper and, for the entities listed in
entity_values.yml, replaces the value with the one that entity needs (evidence "短信" -> `sms_photo`). It also
records itself in the entity's `processors`, so the restorer keeps the canonical value.
"""
from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message

from weiquan.nlu.textnorm import normalize_text

VALUES_FILE = Path(__file__).with_name("entity_values.yml")
PROCESSOR = "EntityValueMapper"

Table = Mapping[str, Mapping[str, str]]  # entity -> normalised surface -> canonical value


def load_table(path: Path = VALUES_FILE) -> dict[str, dict[str, str]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    table: dict[str, dict[str, str]] = {}
    for entity, forms in data.items():
        if entity == "version":
            continue
        if not isinstance(forms, dict):
            raise ValueError(f"{path}: `{entity}` must map surface forms to values")
        table[entity] = {normalize_text(str(surface)).lower(): str(value) for surface, value in forms.items()}
    return table


@functools.lru_cache(maxsize=1)
def default_table() -> dict[str, dict[str, str]]:
    return load_table()


def canonical(table: Table, entity: str, surface: str) -> str | None:
    """The value `entity` needs for `surface` (normalised text), or None when the table says nothing."""
    return (table.get(entity) or {}).get(surface.strip().lower())


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=False)
class EntityValueMapper(GraphComponent):
    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {"values_path": None}

    def __init__(self, table: Table) -> None:
        self._table = table

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> EntityValueMapper:
        path = config.get("values_path")
        return cls(load_table(Path(path)) if path else default_table())

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            text = message.get(TEXT) or ""
            entities = message.get(ENTITIES) or []
            changed = False
            for entity in entities:
                value = canonical(self._table, entity.get("entity", ""), text[entity["start"] : entity["end"]])
                if value is not None and entity.get("value") != value:
                    entity["value"] = value
                    entity["processors"] = [*(entity.get("processors") or []), PROCESSOR]
                    changed = True
            if changed:
                message.set(ENTITIES, entities, add_to_output=True)
        return messages
