"""The trained model's floor on data it never saw: the three held-out sets, buyer/seller swaps, safety recall.

Needs a trained model in models/ (`make test` trains first); the newest one is used. The numbers side by side with
the baselines come from `make bench-nlu` (reports/nlu_benchmark.md); this test only guards the floor, set a little
under what the last benchmark measured so that a regression fails and noise does not.
"""
from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest

from bench import nlu_eval

pytestmark = pytest.mark.model

# held-out file -> (macro-F1 floor, accuracy floor), each about a point under the lowest of four trainings of the same
# data: three seeds of `python -m bench.nlu --repeats 3` (reports/nlu_benchmark.md, 2026-12-07 23:10 UTC, round-3
# threat detector) and the model `make train` built from it. Team 0.944–0.959 / 0.923–0.933, real 0.947–0.956 /
# 0.938–0.951, blind 0.961–0.981 / 0.943–0.958, public 0.965–0.982 / 0.931–0.943. DIET is not bit-for-bit repeatable
# here: a regression fails, noise does not.
FLOORS = {
    nlu_eval.HELDOUT_FILE: (0.935, 0.915),
    nlu_eval.HELDOUT_REAL_FILE: (0.94, 0.93),
    nlu_eval.HELDOUT_BLIND_FILE: (0.95, 0.935),
    # Public text nobody here wrote (issue 20): first untouched run 0.869 / 0.737 (reports/nlu_public_first_run.md).
    nlu_eval.HELDOUT_PUBLIC_FILE: (0.955, 0.92),
}
SAFETY_RECALL = 1.0  # a threat to someone's safety is never missed
SAFETY_PRECISION_FLOOR = 0.85  # issue 16: recall first, the threat detector may flag some hard harassment (was 0.95)


@pytest.fixture(scope="module")
def agent() -> Any:
    model = nlu_eval.latest_model(nlu_eval.MODELS_DIR)
    if model is None:
        pytest.skip(f"no trained model in {nlu_eval.MODELS_DIR}: run `make train` first (`make test` trains for you)")
    return nlu_eval.load_agent(model)


@pytest.fixture(scope="module")
def parsed(agent: Any):
    @cache
    def parse(path: Path) -> tuple[list[nlu_eval.Example], list[nlu_eval.Prediction]]:
        examples = nlu_eval.load_examples(path)
        predictions, _ = nlu_eval.parse_texts(agent, [e.text for e in examples])
        return examples, predictions

    return parse


@pytest.mark.parametrize("path", list(FLOORS), ids=lambda p: p.stem)
def test_heldout_intents(parsed, path: Path) -> None:
    examples, predictions = parsed(path)
    metrics = nlu_eval.intent_metrics([e.intent for e in examples], [p.intent for p in predictions])
    macro_floor, accuracy_floor = FLOORS[path]
    wrong = "\n".join(nlu_eval.errors(examples, predictions, limit=40))
    assert metrics["macro_f1"] >= macro_floor and metrics["accuracy"] >= accuracy_floor, (
        f"{path.name}: macro-F1 {metrics['macro_f1']:.3f} (floor {macro_floor}), accuracy {metrics['accuracy']:.3f} "
        f"(floor {accuracy_floor}) on {metrics['n']} messages; wrong (gold -> predicted):\n{wrong}"
    )


@pytest.mark.parametrize("path", list(FLOORS), ids=lambda p: p.stem)
def test_no_harassed_buyer_gets_the_seller_answer(parsed, path: Path) -> None:
    examples, predictions = parsed(path)
    swapped = [
        e.text for e, p in zip(examples, predictions, strict=True)
        if e.intent == nlu_eval.BUYER_INTENT and p.intent == nlu_eval.SELLER_INTENT
    ]
    assert not swapped, f"{path.name}: buyers taken for sellers:\n" + "\n".join(swapped)


def test_safety_recall_and_precision(parsed) -> None:
    examples, predictions = parsed(nlu_eval.SAFETY_FILE)
    metrics = nlu_eval.safety_metrics([e.intent for e in examples], [p.intent for p in predictions])
    missed = [
        f"-> {p.intent}: {e.text}"
        for e, p in zip(examples, predictions, strict=True)
        if e.intent == nlu_eval.SAFETY_INTENT != p.intent
    ]
    assert metrics["positives"] > 0, "the safety set has no report_safety_threat messages"
    assert metrics["recall"] == SAFETY_RECALL, "safety threats missed:\n" + "\n".join(missed)
    assert metrics["precision"] >= SAFETY_PRECISION_FLOOR, f"safety precision {metrics['precision']:.3f}"


@pytest.mark.parametrize("path", [p for p in FLOORS if p != nlu_eval.HELDOUT_PUBLIC_FILE], ids=lambda p: p.stem)
def test_no_threat_in_a_heldout_set_is_missed(parsed, path: Path) -> None:
    examples, predictions = parsed(path)
    threats = [(e, p) for e, p in zip(examples, predictions, strict=True) if e.intent == nlu_eval.SAFETY_INTENT]
    missed = [f"-> {p.intent}: {e.text}" for e, p in threats if p.intent != nlu_eval.SAFETY_INTENT]
    assert threats and not missed, f"{path.name}: safety threats missed:\n" + "\n".join(missed)
