"""The bot's codes (weiquan/core/vocabulary.yml): one list per vocabulary, loaded once and read by everything else.

Also reads a buyer's free answer to a form question ("手机里存着他的短信", "都有", "没截图") into codes, with the
words listed in the same file. Pure apart from loading the file: no Rasa, no clock.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

VOCABULARY_FILE = Path(__file__).with_name("vocabulary.yml")
NEGATIONS = "没无不未别"
NEGATION_REACH = 2  # "没截图", "没有截图": a negation at most this many characters before the word
# Answer codes that say "nothing" themselves: a negation before them does not turn them around.
NEGATIVE_ANSWERS = frozenset({"none"})


class VocabularyError(ValueError):
    """vocabulary.yml is missing a list or names a code twice."""


@dataclass(frozen=True)
class Term:
    code: str
    label: str  # how people (the operator console, the data checker) read the code
    button: str | None = None  # the answer button's title, where the question offers one


@dataclass(frozen=True)
class Vocabulary:
    lists: Mapping[str, tuple[Term, ...]]
    answers: Mapping[str, Mapping[str, tuple[str, ...]]]  # slot → code → words

    def codes(self, name: str) -> tuple[str, ...]:
        return tuple(term.code for term in self.lists[name])

    def labels(self, slot: str) -> dict[str, str]:
        """code → label of every code a slot can hold (the evidence slot also holds the answers 都有/没有/unknown)."""
        names = (slot, "evidence_answers") if slot == "evidence" else (slot,)
        return {term.code: term.label for name in names for term in self.lists.get(name, ())}

    def buttons(self, name: str) -> dict[str, str]:
        """code → button title, for the codes of `name` that have a button."""
        return {term.code: term.button for term in self.lists[name] if term.button}


def parse_vocabulary(data: Mapping[str, Any]) -> Vocabulary:
    lists: dict[str, tuple[Term, ...]] = {}
    for name, items in data.items():
        if name in ("version", "answers"):
            continue
        if not isinstance(items, list) or not items:
            raise VocabularyError(f"{name}: expected a non-empty list of {{code, label, button}}")
        if any(not item.get("label") for item in items):
            raise VocabularyError(f"{name}: every code needs a label")
        terms = tuple(Term(code=str(item["code"]), label=str(item["label"]), button=item.get("button"))
                      for item in items)
        codes = [term.code for term in terms]
        if len(set(codes)) != len(codes):
            raise VocabularyError(f"{name}: a code is listed twice")
        lists[name] = terms
    answers: dict[str, dict[str, tuple[str, ...]]] = {}
    for slot, table in (data.get("answers") or {}).items():
        known = {term.code for term in lists.get(slot, ())}
        if slot == "evidence":
            known |= {t.code for t in lists["evidence_answers"]}
        unknown = set(table) - known
        if unknown:
            raise VocabularyError(f"answers.{slot}: codes {sorted(unknown)} are not in the vocabulary")
        answers[slot] = {code: tuple(str(word) for word in words) for code, words in table.items()}
    return Vocabulary(lists=lists, answers=answers)


@cache
def load_vocabulary(path: Path = VOCABULARY_FILE) -> Vocabulary:
    return parse_vocabulary(yaml.safe_load(path.read_text(encoding="utf-8")))


def read_answer(words: Mapping[str, tuple[str, ...]], text: str) -> list[str]:
    """The codes a free answer names, in the order they appear; a negated word ("没截图") names nothing.

    Overlapping words: the longest wins ("通话记录" over "通话"). Lower-cased first, so "TB" is "tb".
    """
    text = text.lower()
    spans: list[tuple[int, int, str]] = []
    for code, code_words in words.items():
        for word in code_words:
            start = text.find(word)
            while start != -1:
                spans.append((start, start + len(word), code))
                start = text.find(word, start + 1)
    taken: list[tuple[int, int, str]] = []
    for start, end, code in sorted(spans, key=lambda span: (span[0] - span[1], span[0])):
        if any(start < t_end and t_start < end for t_start, t_end, _ in taken):
            continue
        before = text[max(0, start - NEGATION_REACH) : start]
        if code not in NEGATIVE_ANSWERS and any(char in NEGATIONS for char in before):
            continue
        taken.append((start, end, code))
    return list(dict.fromkeys(code for _, _, code in sorted(taken)))
