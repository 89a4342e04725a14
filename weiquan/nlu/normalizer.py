"""Rasa components around the NLU pipeline: normalise first, restore what the user typed last.

`ChineseTextNormalizer` goes FIRST in config.yml. It is registered as a message featurizer (it adds no features)
because that is the only kind of component the default recipe runs on the training data (`process_training_data`)
as well as on live messages (`process`): training and serving see the same normalised text. It keeps a copy of the
shorthand table in the model, so a model behaves the same whatever shorthand.yml says later, and fingerprints the
table and textnorm.py so that editing either retrains the model.

`OriginalTextRestorer` goes LAST. Registered as an untrained entity extractor, it runs only on live messages: it
maps entity and token offsets back to the text the user typed, puts that text back, and takes each entity's value
from the user's own characters unless a synonym or a rule set a canonical value.
"""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import (
    ENTITIES,
    ENTITY_ATTRIBUTE_END,
    ENTITY_ATTRIBUTE_START,
    ENTITY_ATTRIBUTE_VALUE,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from weiquan.nlu import textnorm
from weiquan.nlu.textnorm import Normalized, ShorthandTable

logger = logging.getLogger(__name__)

ORIGINAL_TEXT = "original_text"
NORMALIZED_TEXT = "normalized_text"  # on every parse result: what the model saw (simplified, half-width, expanded)
NORMALIZATION = "text_normalization"  # offset map for the restorer, plain lists so the message stays serialisable
TEXT_TOKENS = "text_tokens"
SYNONYM_PROCESSOR = "EntitySynonymMapper"
TABLE_FILE = "shorthand.json"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=True)
class ChineseTextNormalizer(GraphComponent):
    """Traditional → simplified, full-width → half-width, invisible characters out, shorthand and typos fixed."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        # shorthand_path None means weiquan/nlu/shorthand.yml; opencc_config None turns script conversion off.
        return {"shorthand_path": None, "opencc_config": "t2s"}

    @staticmethod
    def required_packages() -> list[str]:
        return ["opencc"]  # its version goes into the training fingerprint

    def __init__(
        self, config: dict[str, Any], model_storage: ModelStorage, resource: Resource, table: ShorthandTable
    ) -> None:
        self._config = config
        self._model_storage = model_storage
        self._resource = resource
        self._table = table

    @staticmethod
    def _table_path(config: dict[str, Any]) -> Path:
        return Path(config["shorthand_path"]) if config.get("shorthand_path") else textnorm.SHORTHAND_FILE

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> ChineseTextNormalizer:
        return cls(config, model_storage, resource, textnorm.load_shorthand(cls._table_path(config)))

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> ChineseTextNormalizer:
        try:
            with model_storage.read_from(resource) as directory:
                saved = json.loads((directory / TABLE_FILE).read_text(encoding="utf-8"))
            table = ShorthandTable(saved["abbreviations"], saved["typos"], saved["fingerprint"])
        except (ValueError, FileNotFoundError, KeyError):
            logger.debug("No shorthand table stored in resource %s; reading the file.", resource.name)
            table = textnorm.load_shorthand(cls._table_path(config))
        return cls(config, model_storage, resource, table)

    @classmethod
    def fingerprint_addon(cls, config: dict[str, Any]) -> str | None:
        digest = hashlib.sha256(Path(textnorm.__file__).read_bytes())
        digest.update(cls._table_path(config).read_bytes())
        return digest.hexdigest()

    def train(self, training_data: TrainingData) -> Resource:
        """Nothing to learn: stores the shorthand table with the model."""
        table = {
            "abbreviations": dict(self._table.abbreviations),
            "typos": dict(self._table.typos),
            "fingerprint": self._table.fingerprint,
        }
        with self._model_storage.write_to(self._resource) as directory:
            (directory / TABLE_FILE).write_text(json.dumps(table, ensure_ascii=False), encoding="utf-8")
        return self._resource

    def normalize(self, text: str) -> Normalized:
        return textnorm.normalize(text, self._table, self._config.get("opencc_config"))

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Normalises every example's text and moves its entity annotations along with it."""
        for example in training_data.training_examples:
            text = example.get(TEXT)
            if not isinstance(text, str) or not text:
                continue
            norm = self.normalize(text)
            if not norm.changed:
                continue
            entities = example.get(ENTITIES)
            example.set(TEXT, norm.text)
            if entities:
                example.set(ENTITIES, self._entities_to_normalized(norm, entities))
        self._add_normalized_keys(training_data)
        return training_data

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            text = message.get(TEXT)
            if not isinstance(text, str) or not text:
                continue
            norm = self.normalize(text)
            message.set(ORIGINAL_TEXT, text)
            message.set(NORMALIZED_TEXT, norm.text, add_to_output=True)
            if norm.changed:
                message.set(NORMALIZATION, {"text": norm.text, "starts": list(norm.starts), "ends": list(norm.ends)})
                message.set(TEXT, norm.text)
        return messages

    @staticmethod
    def _entities_to_normalized(norm: Normalized, entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
        moved = []
        for entity in entities:
            start, end = entity[ENTITY_ATTRIBUTE_START], entity[ENTITY_ATTRIBUTE_END]
            span = norm.to_normalized(start, end)
            if span is None:
                logger.warning("Dropping entity %r: nothing of it is left after normalising %r", entity, norm.original)
                continue
            new = {**entity, ENTITY_ATTRIBUTE_START: span[0], ENTITY_ATTRIBUTE_END: span[1]}
            # A value that is just the annotated text follows the text; a synonym value ("taobao") stays.
            if entity.get(ENTITY_ATTRIBUTE_VALUE) == norm.original[start:end]:
                new[ENTITY_ATTRIBUTE_VALUE] = norm.text[span[0] : span[1]]
            moved.append(new)
        return moved

    def _add_normalized_keys(self, training_data: TrainingData) -> None:
        """Synonyms and lookup entries written in traditional script or shorthand must match normalised text too."""
        synonyms = training_data.entity_synonyms
        for key, value in list(synonyms.items()):
            normalized_key = self.normalize(key).text
            if normalized_key and normalized_key not in synonyms:
                synonyms[normalized_key] = value
        for table in training_data.lookup_tables:
            elements = table.get("elements")
            if isinstance(elements, list):
                extra = [self.normalize(e).text for e in elements if isinstance(e, str)]
                table["elements"] = list(dict.fromkeys(elements + [e for e in extra if e]))


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=False)
class OriginalTextRestorer(GraphComponent):
    """Puts back the text the user typed and points entities and tokens at it (see the module docstring)."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        # Entities whose value stays normalised: an order number typed in full-width digits is still digits, and a
        # time expression is parsed on the action server from simplified, half-width text ("兩週前" -> "两周前").
        return {"keep_normalized_value": ["order_id", "phone", "success_time", "problem"]}

    def __init__(self, config: dict[str, Any]) -> None:
        self._keep_normalized = frozenset(config.get("keep_normalized_value") or [])

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> OriginalTextRestorer:
        return cls(config)

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            saved = message.get(NORMALIZATION)
            original = message.get(ORIGINAL_TEXT)
            if not saved or not isinstance(original, str):
                continue  # nothing changed (or no normaliser ran): offsets already point at the user's text
            if message.get(TEXT) != saved["text"]:
                logger.warning("Text changed after normalising; leaving offsets as they are")
                continue
            norm = Normalized(original, saved["text"], tuple(saved["starts"]), tuple(saved["ends"]))
            entities = message.get(ENTITIES)
            if entities:
                restored = [restore_entity(norm, entity, self._keep_normalized) for entity in entities]
                message.set(ENTITIES, restored, add_to_output=True)
            for token in message.get(TEXT_TOKENS) or []:
                token.start, token.end = norm.to_original(token.start, token.end)
                token.text = norm.original[token.start : token.end]
            message.set(TEXT, norm.original)
            message.set(NORMALIZATION, None)
        return messages


def restore_entity(
    norm: Normalized, entity: dict[str, Any], keep_normalized: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """The entity with offsets into the original text; its value from the user's characters unless canonicalised.

    A value counts as canonicalised when a synonym mapped it or an extractor set something other than the text
    (e.g. a masked phone number), or when its entity is listed in `keep_normalized`.
    """
    start, end = entity[ENTITY_ATTRIBUTE_START], entity[ENTITY_ATTRIBUTE_END]
    o_start, o_end = norm.to_original(start, end)
    restored = {**entity, ENTITY_ATTRIBUTE_START: o_start, ENTITY_ATTRIBUTE_END: o_end}
    mapped = SYNONYM_PROCESSOR in (entity.get("processors") or []) or entity.get("entity") in keep_normalized
    if not mapped and entity.get(ENTITY_ATTRIBUTE_VALUE) == norm.text[start:end]:
        restored[ENTITY_ATTRIBUTE_VALUE] = norm.original_value(start, end)
    return restored
