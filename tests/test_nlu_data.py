"""The NLU training data is sound before anything is trained (the gate behind scripts/check_nlu_data.py).

Rasa only warns, then silently drops an entity annotation that does not fall on jieba token boundaries, and happily
trains on values the dialogue never expects. These tests make such problems fail `make test-unit`, and they keep the
held-out sets out of the training data.
"""
from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest
import yaml

from tests.scripts import load_script

ROOT = Path(__file__).resolve().parents[1]
EXACT_MIN = 10  # normalised characters
NEAR_MIN = 14
NEAR_RATIO = 0.85
HELDOUT_FILES = [ROOT / "tests" / "data" / name for name in ("nlu_heldout.yml", "nlu_heldout_real.yml",
                                                             "nlu_blind.yml", "safety_set.yml",
                                                             "handoff_cancel_heldout.yml", "nlu_heldout_public.yml")]


def _load_checker() -> ModuleType:
    return load_script("check_nlu_data")


@pytest.fixture(scope="module")
def checker() -> ModuleType:
    module = _load_checker()
    module._quiet_imports()
    return module


@pytest.fixture(scope="module")
def loaded(checker):
    return checker.load_examples()


def test_every_intent_is_in_the_domain_and_has_enough_examples(checker, loaded) -> None:
    examples, _ = loaded
    domain = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
    domain_intents = set(domain["intents"])
    counts = {intent: sum(1 for e in examples if e.intent == intent) for intent in domain_intents}
    assert {e.intent for e in examples} <= domain_intents
    assert set(checker.MINIMUM_EXAMPLES) == domain_intents, "MINIMUM_EXAMPLES and domain.yml list different intents"
    short = {i: n for i, n in counts.items() if n < checker.MINIMUM_EXAMPLES[i]}
    assert not short, f"intents below their minimum number of examples: {short}"


def test_entity_annotations_fall_on_jieba_token_boundaries(checker, loaded) -> None:
    examples, _ = loaded
    assert checker.report_alignment(examples, checker.load_jieba()) == []


def test_annotated_values_are_canonical(checker, loaded) -> None:
    examples, synonyms = loaded
    assert checker.report_values(examples, synonyms, checker.read_user_dictionary(), verbose=False) == []


def test_no_example_is_a_duplicate_across_intents(checker, loaded) -> None:
    examples, _ = loaded
    assert checker.report_duplicates(examples, verbose=False) == []


def test_no_held_out_message_is_in_the_training_data(checker, loaded) -> None:
    """The held-out sets measure generalisation only while none of their messages (or near copies) is trained on."""
    from difflib import SequenceMatcher

    from rasa.shared.nlu.training_data.loading import load_data

    examples, _ = loaded
    convert = checker._converter()
    training = {checker.normalise(e.text, convert): e.text for e in examples}
    grams = {key: checker._bigrams(key) for key in training}
    copied = []
    for path in HELDOUT_FILES:
        if not path.exists():
            continue
        for message in load_data(str(path), language="zh").intent_examples:
            key = checker.normalise(message.get("text"), convert)
            # Short stock phrases ("你是机器人吗", "交易成功了") are bound to recur; longer ones are copies.
            if key in training and len(key) >= EXACT_MIN:
                copied.append((path.name, message.get("text"), training[key]))
                continue
            if len(key) < NEAR_MIN:
                continue
            mine = checker._bigrams(key)
            for other, other_grams in grams.items():
                if len(mine & other_grams) / len(mine | other_grams) < 0.5:
                    continue
                if SequenceMatcher(None, key, other, autojunk=False).ratio() >= NEAR_RATIO:
                    copied.append((path.name, message.get("text"), training[other]))
    assert not copied, "held-out messages (or near copies) in data/nlu:\n" + "\n".join(map(str, copied))
