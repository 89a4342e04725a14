"""Rasa component: canonical entity values that depend on the entity (entity_values.yml).

Rasa's EntitySynonymMapper keeps one table for all entities, so "短信" maps to the harassment type `sms` even where
the model tagged it as evidence. This component runs right after the mapper and, for the entities listed in
entity_values.yml, replaces the value with the one that entity needs (evidence "短信" -> `sms_photo`). It also
records itself in the entity's `processors`, so the restorer keeps the canonical value.

Then it reads the evidence as a list (issue 20): the model tags one item of "有聊天截图和短信" and misses the one after
和, and it tags items the buyer denies ("没有录音") or takes back ("不是短信，是通话记录"). `read_evidence` finds every
item word of the evidence table, joins items that stand in one list (和/跟/还有/、/以及), keeps a list when one of
its items is tagged evidence or a "have" word stands by it, and drops every item a negation governs. The words are
data: the `evidence` table and the `grammar` section of entity_values.yml.
"""
from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
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
GRAMMAR = "grammar"
EVIDENCE = "evidence"
VAGUE_EVIDENCE = ("none", "all", "unknown")  # answers, not items: never dropped or joined
CLAUSE_END = re.compile(r"[,，。.;；!！?？\n]")

Table = Mapping[str, Mapping[str, str]]  # entity -> normalised surface -> canonical value


def load_table(path: Path = VALUES_FILE) -> dict[str, dict[str, str]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    table: dict[str, dict[str, str]] = {}
    for entity, forms in data.items():
        if entity in ("version", GRAMMAR):
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


@dataclass(frozen=True)
class Grammar:
    joiners: tuple[str, ...]
    negations: tuple[str, ...]
    negations_after: tuple[str, ...]
    not_negations: tuple[str, ...]
    negations_of_acts: tuple[str, ...]
    corrections: tuple[str, ...]
    have_words: tuple[str, ...]
    keep_words: tuple[str, ...]


def load_grammar(path: Path = VALUES_FILE) -> Grammar:
    data = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get(GRAMMAR) or {}
    words = {key: tuple(normalize_text(str(w)) for w in data.get(key) or ()) for key in Grammar.__annotations__}
    return Grammar(**words)


@functools.lru_cache(maxsize=1)
def default_grammar() -> Grammar:
    return load_grammar()


def _items(text: str, words: Mapping[str, str]) -> list[tuple[int, int, str]]:
    """Every evidence item word in `text`, longest first and not overlapping: (start, end, code)."""
    taken: list[tuple[int, int, str]] = []
    lowered = text.lower()
    for word in sorted(words, key=len, reverse=True):
        for match in re.finditer(re.escape(word), lowered):
            start, end = match.span()
            if not any(start < t_end and t_start < end for t_start, t_end, _ in taken):
                taken.append((start, end, words[word]))
    return sorted(taken)


def _mask(text: str, phrases: tuple[str, ...]) -> str:
    for phrase in phrases:
        text = text.replace(phrase, "_" * len(phrase))
    return text


def _is_gap_of_list(gap: str, grammar: Grammar) -> bool:
    rest = gap.strip()
    for joiner in sorted(grammar.joiners, key=len, reverse=True):
        rest = rest.replace(joiner, "")
    return not rest.strip() and len(gap) <= 6


NEGATION_REACH = 3  # a negation governs a word at most this many characters after it ("没有保存录音")


def _governs(before: str, negations: tuple[str, ...]) -> bool:
    """A negation word ends near the end of `before` (the text right in front of a word)."""
    return any(word in before and len(before) - before.rfind(word) - len(word) <= NEGATION_REACH for word in negations)


def _clause_start(text: str, at: int) -> int:
    found = [m.end() for m in CLAUSE_END.finditer(text, 0, at)]
    return found[-1] if found else 0


def _clause_end(text: str, at: int) -> int:
    found = CLAUSE_END.search(text, at)
    return found.start() if found else len(text)


def read_evidence(
    text: str, entities: list[dict[str, Any]], words: Mapping[str, str], grammar: Grammar
) -> list[dict[str, Any]] | None:
    """The entities with the evidence read as a list; None when nothing changes.

    `text` is the normalised message, `words` the evidence table (normalised surface -> code).
    """
    plain = _mask(text, grammar.not_negations)
    items = _items(plain, {w: c for w, c in words.items() if c not in VAGUE_EVIDENCE})
    if not items:
        return None

    def overlapping(start: int, end: int, name: str | None = None) -> list[dict[str, Any]]:
        return [e for e in entities if e["start"] < end and start < e["end"] and (name is None or e["entity"] == name)]

    # 1. lists: neighbouring items with only joiners between them
    groups: list[list[tuple[int, int, str]]] = []
    for item in items:
        if groups and _is_gap_of_list(plain[groups[-1][-1][1] : item[0]], grammar):
            groups[-1].append(item)
        else:
            groups.append([item])

    # 2. a negation governs an item: before it in its clause (after the previous item), or right after it
    def negated(index: int) -> bool:
        start, end, _ = items[index]
        before_from = max(_clause_start(plain, start), items[index - 1][1] if index else 0)
        before = plain[before_from:start]
        after_to = min(_clause_end(plain, end), items[index + 1][0] if index + 1 < len(items) else len(plain))
        after = plain[end:after_to]
        return _governs(before, grammar.negations) or any(after.startswith(n) or after.lstrip("都也还")
                                                                    .startswith(n) for n in grammar.negations_after)

    denied_before: list[int] = []  # where a denied evidence item ends

    def has_cue(group: list[tuple[int, int, str]]) -> bool:
        start, end = group[0][0], group[-1][1]
        before = plain[_clause_start(plain, start) : start]
        around = before + "|" + plain[end : _clause_end(plain, end)]
        corrected = any(at <= start for at in denied_before) and any(word in before for word in grammar.corrections)
        return corrected or any(word in around for word in grammar.have_words)

    def has_cue_next_to(start: int, end: int) -> bool:
        """A have word right by the item ("有短信", "短信我都存着"), or a keep word before it ("存了他发的短信")."""
        clause = plain[_clause_start(plain, start) : start]
        before = clause.rstrip("了着的")
        after = plain[end : _clause_end(plain, end)].lstrip("我都也还")
        return any(before.endswith(w) or after.startswith(w) for w in grammar.have_words) or any(
            w in clause for w in grammar.keep_words)

    result = list(entities)
    changed = False
    for group in groups:
        tagged = any(overlapping(s, e, EVIDENCE) for s, e, _ in group)
        if not tagged and not has_cue(group):
            denied_before.extend(e for s, e, c in group if negated(items.index((s, e, c))))
            continue
        for start, end, code in group:
            index = items.index((start, end, code))
            tags = overlapping(start, end)
            if negated(index):
                denied_before.append(end)
                drop = [t for t in tags if t["entity"] == EVIDENCE and t.get("value") not in VAGUE_EVIDENCE]
                if drop:
                    result = [e for e in result if e not in drop]
                    changed = True
                continue
            if any(t["entity"] == EVIDENCE for t in tags):
                continue
            others = [t for t in tags if t["entity"] != EVIDENCE]
            if others and not tagged and not has_cue_next_to(start, end):
                continue  # the model read this lone item as something else ("发短信" as harassment), keep that
            result = [e for e in result if e not in others]
            result.append({"entity": EVIDENCE, "start": start, "end": end, "value": code, "confidence": 1.0,
                           "extractor": PROCESSOR, "processors": [PROCESSOR]})
            changed = True
    # "都有"/"都留着" beside named items is not an item of its own (the form also lets the named items win)
    named = [e for e in result if e["entity"] == EVIDENCE and e.get("value") not in VAGUE_EVIDENCE]
    vague = [e for e in result if e["entity"] == EVIDENCE and e.get("value") == "all"]
    if named and vague:
        result = [e for e in result if e not in vague]
        changed = True
    if not changed:
        return None
    return sorted(result, key=lambda e: (e["start"], e["end"]))


HARASSMENT = "harassment_type"


def drop_denied_acts(text: str, entities: list[dict[str, Any]], grammar: Grammar) -> list[dict[str, Any]] | None:
    """The entities without the harassment a negation governs ("他没打电话", "不是发短信，是打电话"); None if none."""
    plain = _mask(text, grammar.not_negations)
    kept, dropped = [], False
    previous_end = 0
    for entity in sorted(entities, key=lambda e: e["start"]):
        if entity["entity"] == HARASSMENT:
            before = plain[max(_clause_start(plain, entity["start"]), previous_end) : entity["start"]]
            if _governs(before, grammar.negations_of_acts):
                dropped = True
                previous_end = entity["end"]
                continue
        kept.append(entity)
        previous_end = max(previous_end, entity["end"])
    return kept if dropped else None


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=False)
class EntityValueMapper(GraphComponent):
    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {"values_path": None}

    def __init__(self, table: Table, grammar: Grammar | None = None) -> None:
        self._table = table
        self._grammar = grammar or default_grammar()

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> EntityValueMapper:
        path = config.get("values_path")
        if path:
            return cls(load_table(Path(path)), load_grammar(Path(path)))
        return cls(default_table(), default_grammar())

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
            listed = read_evidence(text, entities, self._table.get(EVIDENCE) or {}, self._grammar)
            if listed is not None:
                entities, changed = listed, True
            acts = drop_denied_acts(text, entities, self._grammar)
            if acts is not None:
                entities, changed = acts, True
            if changed:
                message.set(ENTITIES, entities, add_to_output=True)
        return messages
