"""Rasa component: the `problem` entity, which other shopping problem an out_of_scope message is about.

The patterns live in problem_patterns.yml (one group per canonical value, most specific first). The component adds
at most one `problem` entity, and only when the message's intent is one of `intents` (out_of_scope, and nlu_fallback
so that a clarifying question can still name the problem): a harassment report that mentions a refund is about the
harassment, not the refund. It never starts the complaint form; what the bot does with it is the dialogue's business.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.extractors.extractor import EntityExtractorMixin
from rasa.shared.nlu.constants import ENTITIES, INTENT, INTENT_NAME_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

PATTERNS_FILE = Path(__file__).with_name("problem_patterns.yml")
ENTITY = "problem"
# The team contract fixes these; a typo in the YAML fails loading, not a conversation.
CANONICAL = frozenset(
    {"quality", "refund", "wrong_item", "delivery", "fake", "price", "review_deleted", "cashback", "courier", "scam",
     "platform_service"}
)


@dataclass(frozen=True)
class ProblemMatch:
    value: str
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class ProblemRules:
    groups: tuple[tuple[str, tuple[re.Pattern[str], ...]], ...]

    def find(self, text: str) -> ProblemMatch | None:
        """The first group (in file order) with a match, and its earliest match in `text`."""
        lowered = text.lower()
        for value, patterns in self.groups:
            hits = [m for p in patterns for m in p.finditer(lowered) if m.end() > m.start()]
            if hits:
                first = min(hits, key=lambda m: (m.start(), -m.end()))
                return ProblemMatch(value, first.start(), first.end(), text[first.start() : first.end()])
        return None


def load_rules(path: Path = PATTERNS_FILE) -> ProblemRules:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    groups = []
    for group in data.get("problems") or []:
        value = group.get("value")
        if value not in CANONICAL:
            raise ValueError(f"{path}: {value!r} is not a canonical problem value ({sorted(CANONICAL)})")
        patterns = tuple(re.compile(str(p)) for p in group.get("patterns") or [])
        if not patterns:
            raise ValueError(f"{path}: problem {value!r} has no patterns")
        groups.append((value, patterns))
    if len({value for value, _ in groups}) != len(groups):
        raise ValueError(f"{path}: a problem value is listed twice")
    return ProblemRules(tuple(groups))


@functools.lru_cache(maxsize=1)
def default_rules() -> ProblemRules:
    return load_rules()


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=False)
class ProblemExtractor(GraphComponent, EntityExtractorMixin):
    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {"patterns_path": None, "intents": ["out_of_scope", "nlu_fallback"]}

    def __init__(self, config: dict[str, Any], rules: ProblemRules) -> None:
        self._config = config
        self._rules = rules
        self._intents = frozenset(config.get("intents") or [])

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> ProblemExtractor:
        path = config.get("patterns_path")
        return cls(config, load_rules(Path(path)) if path else default_rules())

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            intent = (message.get(INTENT) or {}).get(INTENT_NAME_KEY)
            if intent not in self._intents:
                continue
            match = self._rules.find(message.get(TEXT) or "")
            if match is None:
                continue
            entity = {
                "entity": ENTITY, "start": match.start, "end": match.end, "value": match.value, "confidence": 1.0
            }
            message.set(ENTITIES, (message.get(ENTITIES) or []) + self.add_extractor_name([entity]), add_to_output=True)
        return messages
