"""Evaluation helpers shared by bench/nlu.py and tests/test_nlu_floor.py.

Reading Rasa NLU YAML test sets, loading a trained model and parsing in-process, and the metrics the benchmark
reports. Rasa and TensorFlow are imported only by the functions that need a model.
"""
from __future__ import annotations

import asyncio
import math
import statistics
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rasa.core.agent import Agent

ROOT = Path(__file__).resolve().parents[1]
MODELS_DIR = ROOT / "models"
NLU_DIR = ROOT / "data" / "nlu"
HELDOUT_FILE = ROOT / "tests" / "data" / "nlu_heldout.yml"
HELDOUT_REAL_FILE = ROOT / "tests" / "data" / "nlu_heldout_real.yml"  # written apart, by someone who never saw data/
HELDOUT_BLIND_FILE = ROOT / "tests" / "data" / "nlu_blind.yml"  # written apart in round 5, from the intent list only
HELDOUT_PUBLIC_FILE = ROOT / "tests" / "data" / "nlu_heldout_public.yml"  # public text nobody here wrote (issue 20)
# Every fifth message an operator confirmed in the review inbox, kept out of training by `make export-reviewed`.
HELDOUT_REVIEWED_FILE = ROOT / "tests" / "data" / "nlu_reviewed_heldout.yml"
SAFETY_FILE = ROOT / "tests" / "data" / "safety_set.yml"
ENTITY_HELDOUT_FILE = ROOT / "tests" / "data" / "nlu_entities_heldout.yml"  # issue 20: lists, negations, corrections
SAFETY_INTENT = "report_safety_threat"
BUYER_INTENT = "report_harassment"
SELLER_INTENT = "seller_accused"
FALLBACK_INTENT = "nlu_fallback"
NO_INTENT = "None"

EntityPair = tuple[str, str]  # (entity, value)


@dataclass(frozen=True)
class Example:
    text: str
    intent: str
    entities: tuple[EntityPair, ...] = ()


@dataclass(frozen=True)
class Prediction:
    intent: str
    entities: tuple[EntityPair, ...]
    intent_before_guard: str  # what the classifiers said before SafetyGuard overrode it (same if it did not)


# ---------------------------------------------------------------- data
def load_training_data(path: Path):  # -> rasa TrainingData
    from rasa.shared.nlu.training_data.loading import load_data

    return load_data(str(path), language="zh")


def examples_from(training_data: Any) -> list[Example]:
    """Intent examples with their (entity, value) annotations; value is the synonym value when one is given."""
    result = []
    for message in training_data.intent_examples:
        pairs = tuple((e["entity"], str(e.get("value", ""))) for e in message.get("entities") or [])
        result.append(Example(message.get("text"), message.get("intent"), pairs))
    return result


def load_examples(path: Path) -> list[Example]:
    return examples_from(load_training_data(path))


def examples_per_intent(examples: Iterable[Example]) -> dict[str, int]:
    return dict(sorted(Counter(e.intent for e in examples).items()))


# ---------------------------------------------------------------- model
def latest_model(models_dir: Path = MODELS_DIR) -> Path | None:
    models = sorted(models_dir.glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)
    return models[-1] if models else None


def load_agent(model_path: Path) -> Agent:
    from rasa.core.agent import Agent

    agent = Agent.load(str(model_path))
    if not agent.is_ready():
        raise RuntimeError(f"{model_path}: could not load the model")
    return agent


def to_prediction(parse: dict[str, Any]) -> Prediction:
    intent = (parse.get("intent") or {}).get("name") or NO_INTENT
    before = intent
    if parse.get("safety_override"):
        ranking = parse.get("intent_ranking") or []
        before = ranking[0]["name"] if ranking else NO_INTENT
    entities = tuple((e["entity"], str(e.get("value", ""))) for e in parse.get("entities") or [])
    return Prediction(intent, entities, before)


def parse_texts(agent: Agent, texts: Sequence[str], warmup: int = 0) -> tuple[list[Prediction], list[float]]:
    """Parses each text in-process; returns predictions and seconds per message (after `warmup` untimed parses)."""

    async def run() -> tuple[list[Prediction], list[float]]:
        for text in list(texts)[:warmup]:
            await agent.parse_message(text)
        predictions, seconds = [], []
        for text in texts:
            started = time.perf_counter()
            parse = await agent.parse_message(text)
            seconds.append(time.perf_counter() - started)
            predictions.append(to_prediction(parse))
        return predictions, seconds

    return asyncio.run(run())


# ---------------------------------------------------------------- metrics
def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


def intent_metrics(gold: Sequence[str], predicted: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro-F1 over the intents present in `gold`, and precision/recall/F1/support per intent.

    A prediction outside the gold intents (nlu_fallback, say) counts as a miss and lowers precision of nothing.
    """
    if len(gold) != len(predicted):
        raise ValueError("gold and predicted differ in length")
    per_intent = {}
    for intent in sorted(set(gold)):
        tp = sum(1 for g, p in zip(gold, predicted, strict=True) if g == p == intent)
        fp = sum(1 for g, p in zip(gold, predicted, strict=True) if p == intent != g)
        fn = sum(1 for g, p in zip(gold, predicted, strict=True) if g == intent != p)
        precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
        f1 = _f1(precision, recall)
        per_intent[intent] = {"precision": precision, "recall": recall, "f1": f1, "support": tp + fn}
    correct = sum(1 for g, p in zip(gold, predicted, strict=True) if g == p)
    return {
        "accuracy": _ratio(correct, len(gold)),
        "macro_f1": statistics.fmean(m["f1"] for m in per_intent.values()) if per_intent else 0.0,
        "per_intent": per_intent,
        "n": len(gold),
    }


def safety_metrics(gold: Sequence[str], predicted: Sequence[str], positive: str = SAFETY_INTENT) -> dict[str, Any]:
    tp = sum(1 for g, p in zip(gold, predicted, strict=True) if g == p == positive)
    fp = sum(1 for g, p in zip(gold, predicted, strict=True) if p == positive != g)
    fn = sum(1 for g, p in zip(gold, predicted, strict=True) if g == positive != p)
    return {
        "recall": _ratio(tp, tp + fn),
        "precision": _ratio(tp, tp + fp),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "positives": tp + fn,
        "n": len(gold),
    }


def entity_metrics(
    gold: Sequence[Sequence[EntityPair]], predicted: Sequence[Sequence[EntityPair]], entity_types: Iterable[str]
) -> dict[str, Any]:
    """Micro precision/recall/F1 over (entity, value) pairs, counted per message as multisets.

    Only `entity_types` are scored (the ones annotated in the test set), so rule-extracted entities that the test set
    does not annotate (order_id, phone, success_time) neither help nor hurt.
    """
    types = set(entity_types)
    counts: dict[str, list[int]] = {t: [0, 0, 0] for t in sorted(types)}  # tp, fp, fn
    for gold_pairs, predicted_pairs in zip(gold, predicted, strict=True):
        g = Counter(p for p in gold_pairs if p[0] in types)
        p = Counter(q for q in predicted_pairs if q[0] in types)
        for pair in g | p:
            hit = min(g[pair], p[pair])
            counts[pair[0]][0] += hit
            counts[pair[0]][1] += p[pair] - hit
            counts[pair[0]][2] += g[pair] - hit
    tp, fp, fn = (sum(c[i] for c in counts.values()) for i in range(3))
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    per_entity = {}
    for name, (e_tp, e_fp, e_fn) in counts.items():
        e_p, e_r = _ratio(e_tp, e_tp + e_fp), _ratio(e_tp, e_tp + e_fn)
        per_entity[name] = {"precision": e_p, "recall": e_r, "f1": _f1(e_p, e_r), "support": e_tp + e_fn}
    return {"precision": precision, "recall": recall, "f1": _f1(precision, recall), "per_entity": per_entity}


def role_swaps(gold: Sequence[str], predicted: Sequence[str]) -> dict[str, int]:
    """Buyer and seller taken for each other, counted apart from other errors.

    `buyer_to_seller`: a harassed buyer given the seller's answer (the worst answer this bot can give);
    `seller_to_buyer`: the reverse; `asked`: either role sent to nlu_fallback, i.e. the bot asks a question
    instead of answering, which is not a swap.
    """
    pairs = list(zip(gold, predicted, strict=True))
    return {
        "buyer_to_seller": sum(1 for g, p in pairs if g == BUYER_INTENT and p == SELLER_INTENT),
        "seller_to_buyer": sum(1 for g, p in pairs if g == SELLER_INTENT and p == BUYER_INTENT),
        "asked": sum(1 for g, p in pairs if g in (BUYER_INTENT, SELLER_INTENT) and p == FALLBACK_INTENT),
        "buyers": sum(1 for g in gold if g == BUYER_INTENT),
        "sellers": sum(1 for g in gold if g == SELLER_INTENT),
    }


def confusions(gold: Sequence[str], predicted: Sequence[str], top: int = 10) -> list[tuple[str, str, int]]:
    pairs = Counter((g, p) for g, p in zip(gold, predicted, strict=True) if g != p)
    return [(g, p, n) for (g, p), n in pairs.most_common(top)]


def latency(seconds: Sequence[float]) -> dict[str, float]:
    if not seconds:
        return {"median_ms": 0.0, "p95_ms": 0.0}
    ordered = sorted(seconds)
    p95 = ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]  # nearest rank
    return {"median_ms": statistics.median(ordered) * 1000, "p95_ms": p95 * 1000}


def errors(examples: Sequence[Example], predictions: Sequence[Prediction], limit: int = 20) -> list[str]:
    pairs = zip(examples, predictions, strict=True)
    wrong = [f"{e.intent} -> {p.intent}: {e.text}" for e, p in pairs if e.intent != p.intent]
    return wrong[:limit]


ENTITY_TYPES = ("evidence", "harassment_type", "platform", "trade_status")  # what the entity held-out set annotates


def entity_score(agent: Agent, path: Path = ENTITY_HELDOUT_FILE) -> tuple[dict[str, Any], list[str]]:
    """Entity metrics of the model on an annotated set, and the messages it got wrong (gold | predicted)."""
    examples = load_examples(path)
    predictions, _ = parse_texts(agent, [e.text for e in examples])
    gold = [e.entities for e in examples]
    predicted = [p.entities for p in predictions]
    metrics = entity_metrics(gold, predicted, ENTITY_TYPES)
    wrong = []
    for example, prediction in zip(examples, predictions, strict=True):
        g = sorted(p for p in example.entities if p[0] in ENTITY_TYPES)
        p = sorted(q for q in prediction.entities if q[0] in ENTITY_TYPES)
        if g != p:
            wrong.append(f"{example.text}: gold {g} | predicted {p}")
    return metrics, wrong


if __name__ == "__main__":  # python -m bench.nlu_eval: the entity held-out score of the newest model
    import sys

    model = latest_model()
    if model is None:
        sys.exit("no trained model in models/: run `make train` first")
    scores, misses = entity_score(load_agent(model))
    print(f"entity held-out ({ENTITY_HELDOUT_FILE.name}, {model.name}): precision {scores['precision']:.3f} "
          f"recall {scores['recall']:.3f} F1 {scores['f1']:.3f}")
    for name, row in scores["per_entity"].items():
        print(f"  {name:16} P {row['precision']:.3f} R {row['recall']:.3f} F1 {row['f1']:.3f} n={row['support']}")
    print("\n".join(["wrong:", *misses]) if misses else "no message wrong")
