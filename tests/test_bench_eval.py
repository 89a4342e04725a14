"""The benchmark's metrics and keyword baseline (bench/), on hand-made numbers; no model needed."""
from __future__ import annotations

import pytest

from bench import nlu_eval
from bench.keyword_baseline import DEFAULT_INTENT, KeywordClassifier


def test_intent_metrics() -> None:
    gold = ["greet", "greet", "thank", "stop"]
    predicted = ["greet", "thank", "thank", "nlu_fallback"]
    metrics = nlu_eval.intent_metrics(gold, predicted)
    assert metrics["accuracy"] == 0.5
    assert metrics["per_intent"]["greet"] == pytest.approx({"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2})
    assert metrics["per_intent"]["thank"]["f1"] == pytest.approx(2 / 3)
    assert metrics["per_intent"]["stop"]["f1"] == 0.0
    assert set(metrics["per_intent"]) == {"greet", "thank", "stop"}  # nlu_fallback is not a gold intent
    assert metrics["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 0) / 3)


def test_safety_metrics() -> None:
    s = nlu_eval.SAFETY_INTENT
    gold = [s, s, s, "report_harassment", "report_harassment"]
    predicted = [s, s, "report_harassment", s, "report_harassment"]
    metrics = nlu_eval.safety_metrics(gold, predicted)
    assert (metrics["tp"], metrics["fp"], metrics["fn"]) == (2, 1, 1)
    assert metrics["recall"] == pytest.approx(2 / 3) and metrics["precision"] == pytest.approx(2 / 3)


def test_entity_metrics_count_pairs_per_message_and_ignore_unscored_types() -> None:
    gold = [[("platform", "taobao"), ("harassment_type", "calls")], [("harassment_type", "sms")]]
    predicted = [
        [("platform", "taobao"), ("harassment_type", "sms"), ("order_id", "123")],
        [("harassment_type", "sms"), ("harassment_type", "sms")],
    ]
    metrics = nlu_eval.entity_metrics(gold, predicted, ["platform", "harassment_type"])
    # tp: taobao, sms(2nd); fp: sms(1st), extra sms(2nd); fn: calls
    assert metrics["precision"] == pytest.approx(2 / 4) and metrics["recall"] == pytest.approx(2 / 3)
    assert metrics["per_entity"]["platform"]["f1"] == 1.0
    assert "order_id" not in metrics["per_entity"]


def test_latency_and_confusions() -> None:
    assert nlu_eval.latency([0.001 * i for i in range(1, 101)]) == pytest.approx({"median_ms": 50.5, "p95_ms": 95.0})
    assert nlu_eval.latency([]) == {"median_ms": 0.0, "p95_ms": 0.0}
    assert nlu_eval.confusions(["a", "a", "b"], ["b", "b", "b"]) == [("a", "b", 2)]


def test_prediction_reads_the_intent_before_the_safety_guard() -> None:
    parse = {
        "intent": {"name": nlu_eval.SAFETY_INTENT, "confidence": 1.0},
        "intent_ranking": [{"name": "report_harassment", "confidence": 0.7}],
        "entities": [{"entity": "platform", "value": "taobao", "start": 0, "end": 2}],
        "safety_override": True,
    }
    prediction = nlu_eval.to_prediction(parse)
    assert prediction.intent == nlu_eval.SAFETY_INTENT
    assert prediction.intent_before_guard == "report_harassment"
    assert prediction.entities == (("platform", "taobao"),)


def test_examples_keep_synonym_values(tmp_path) -> None:
    path = tmp_path / "nlu.yml"
    path.write_text(
        'version: "3.1"\nnlu:\n- intent: report_harassment\n  examples: |\n'
        '    - [tb]{"entity": "platform", "value": "taobao"}卖家[骂我](harassment_type)\n',
        encoding="utf-8",
    )
    (example,) = nlu_eval.load_examples(path)
    assert example.intent == "report_harassment"
    assert example.entities == (("platform", "taobao"), ("harassment_type", "骂我"))


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("卖家说要上门砍我", "report_safety_threat"),
        ("卖家天天打电话骚扰我", "report_harassment"),
        ("我是卖家，买家投诉我骚扰", "seller_accused"),
        ("转人工", "request_human"),
        ("你好", "greet"),
        ("怎么退款", DEFAULT_INTENT),
    ],
)
def test_keyword_baseline(text: str, intent: str) -> None:
    assert KeywordClassifier().classify(text) == intent
    assert KeywordClassifier().parse(text)["intent"]["name"] == intent


def test_role_swaps_count_each_direction_and_questions_apart() -> None:
    b, s, f = nlu_eval.BUYER_INTENT, nlu_eval.SELLER_INTENT, nlu_eval.FALLBACK_INTENT
    gold = [b, b, b, b, s, s, "out_of_scope"]
    predicted = [b, s, f, "out_of_scope", b, s, s]
    assert nlu_eval.role_swaps(gold, predicted) == {
        "buyer_to_seller": 1, "seller_to_buyer": 1, "asked": 1, "buyers": 4, "sellers": 2
    }
