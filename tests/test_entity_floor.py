"""The trained model's entity floor on its own held-out set (issue 20): evidence lists, negations, corrections.

tests/data/nlu_entities_heldout.yml was written before the evidence reader (weiquan/nlu/entity_values.py) changed;
its first score, on the model trained from 70c6019 with the old reader, was F1 0.833 (precision 0.765, recall 0.915).
`python -m bench.nlu_eval` prints the score of the newest model and the messages it gets wrong.
"""
from __future__ import annotations

import pytest

from bench import nlu_eval

pytestmark = pytest.mark.model

TARGET = 0.90  # issue 20
# Measured with the new reader: 0.986 on the model of 70c6019, 0.979 (precision 0.986, recall 0.972) on the first
# model trained with this branch's data, 1.000 on the last one (after the keep-word fix, which also mends the set's
# one remaining miss, "我截了短信": from then on the set is no longer untouched). The floor sits under the lowest
# figure, so that a regression fails and DIET's noise does not.
FLOOR = 0.95


def test_entity_f1_on_the_heldout_set_stays_above_its_floor() -> None:
    model = nlu_eval.latest_model(nlu_eval.MODELS_DIR)
    if model is None:
        pytest.skip(f"no trained model in {nlu_eval.MODELS_DIR}: run `make train` first (`make test` trains for you)")
    metrics, wrong = nlu_eval.entity_score(nlu_eval.load_agent(model))
    assert FLOOR >= TARGET
    assert metrics["f1"] >= FLOOR, (
        f"entity F1 {metrics['f1']:.3f} (floor {FLOOR}, precision {metrics['precision']:.3f}, recall "
        f"{metrics['recall']:.3f}); wrong:\n" + "\n".join(wrong)
    )
