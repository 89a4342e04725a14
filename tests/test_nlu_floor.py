"""The trained model's floor on data it never saw: held-out intent accuracy and safety recall.

Needs a trained model in models/ (`make test` trains first); the newest one is used. The numbers side by side with
the baselines come from `make bench-nlu` (reports/nlu_benchmark.md); this test only guards the floor.
"""
from __future__ import annotations

from typing import Any

import pytest

from bench import nlu_eval

pytestmark = pytest.mark.model

ACCURACY_FLOOR = 0.90
SAFETY_RECALL = 1.0  # a threat to someone's safety is never missed
SAFETY_PRECISION_FLOOR = 0.95  # ordinary harassment is not escalated as a threat


@pytest.fixture(scope="module")
def agent() -> Any:
    model = nlu_eval.latest_model(nlu_eval.MODELS_DIR)
    if model is None:
        pytest.skip(f"no trained model in {nlu_eval.MODELS_DIR}: run `make train` first (`make test` trains for you)")
    return nlu_eval.load_agent(model)


def test_heldout_intent_accuracy(agent: Any) -> None:
    examples = nlu_eval.load_examples(nlu_eval.HELDOUT_FILE)
    predictions, _ = nlu_eval.parse_texts(agent, [e.text for e in examples])
    metrics = nlu_eval.intent_metrics([e.intent for e in examples], [p.intent for p in predictions])
    wrong = "\n".join(nlu_eval.errors(examples, predictions, limit=30))
    assert metrics["accuracy"] >= ACCURACY_FLOOR, (
        f"held-out intent accuracy {metrics['accuracy']:.3f} < {ACCURACY_FLOOR} "
        f"on {metrics['n']} messages; wrong (gold -> predicted):\n{wrong}"
    )


def test_safety_recall(agent: Any) -> None:
    examples = nlu_eval.load_examples(nlu_eval.SAFETY_FILE)
    predictions, _ = nlu_eval.parse_texts(agent, [e.text for e in examples])
    metrics = nlu_eval.safety_metrics([e.intent for e in examples], [p.intent for p in predictions])
    missed = [
        f"-> {p.intent}: {e.text}"
        for e, p in zip(examples, predictions, strict=True)
        if e.intent == nlu_eval.SAFETY_INTENT != p.intent
    ]
    assert metrics["positives"] > 0, "the safety set has no report_safety_threat messages"
    assert metrics["recall"] == SAFETY_RECALL, "safety threats missed:\n" + "\n".join(missed)
    assert metrics["precision"] >= SAFETY_PRECISION_FLOOR, f"safety precision {metrics['precision']:.3f}"
