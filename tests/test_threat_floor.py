"""The threat detector's floor on every set kept apart from its training (no trained Rasa model needed).

Uses the built detector (build/threat, `make setup`): recall 1.00 on safety_set, safety_eval and the threats of
the three NLU held-out sets; precision at least 0.85 on each. `make bench-safety` prints the figures and the
baselines; this test only guards the floor. safety_eval.yml has been a tuning set since its first run
(reports/safety_eval_first_run.md), so its 1.00 is optimistic; the final set is not read here.
"""
from __future__ import annotations

import pytest

from bench import safety
from weiquan.nlu import threat

RECALL = 1.0  # a threat is never missed
PRECISION = 0.85  # issue 16: the reply suits a false alarm, so precision gives way to recall, down to this


@pytest.fixture(scope="module")
def detector() -> threat.ThreatDetector:
    if not (threat.DEFAULT_BUILD_DIR / threat.MODEL_NAME).is_file():
        pytest.fail("build/threat missing: run `make setup`")
    found = threat.ThreatDetector.load()
    assert found.info["data_digest"] == threat.data_digest(), "build/threat is stale: run `make setup`"
    return found


@pytest.mark.parametrize("spec", [s for s in safety.SETS if not s.secret], ids=lambda s: s.name)
def test_every_threat_is_flagged_and_precision_holds(detector: threat.ThreatDetector, spec: safety.EvalSet) -> None:
    items = safety.load(spec)
    flagged = [detector.verdict(item.text).threat for item in items]
    metrics = safety.score(items, flagged)
    assert metrics["threats"] > 0
    assert metrics["recall"] == RECALL, f"{spec.name}: missed\n" + "\n".join(metrics["misses"])
    assert metrics["precision"] >= PRECISION, (
        f"{spec.name}: precision {metrics['precision']:.3f}; false alarms\n" + "\n".join(metrics["alarms"]))
