"""NLU benchmark: our pipeline against plain Rasa and a keyword table, side by side (`make bench-nlu`).

  (a) ours      config.yml as it is (normaliser, jieba dictionary, char n-grams, synonyms, rules, fallback, guards)
  (b) plain     bench/config_plain.yml: JiebaTokenizer + CountVectorsFeaturizer + DIETClassifier at defaults,
                epochs and random_seed copied from (a)
  (c) keywords  bench/keyword_baseline.py, a hand-written table

Each is scored on every held-out set (by default tests/data/nlu_heldout.yml and, when present,
tests/data/nlu_heldout_real.yml and tests/data/nlu_blind.yml, both written apart by someone who never saw data/nlu, and
tests/data/nlu_heldout_public.yml, public text nobody here wrote):
intent accuracy, macro-F1, per-intent F1, buyer<->seller swaps counted apart (a role sent to nlu_fallback counts as
"asked", not as a swap), the set's own safety recall, entity F1 (micro over entity+value); and on
tests/data/safety_set.yml: safety recall and precision (positive class report_safety_threat). Also training time
and in-process parse time; k-fold CV on data/nlu only with --folds N; with --repeats N, (a) is trained N times with
N random seeds and the spread (min–max per set) is reported: the CI floors (tests/test_nlu_floor.py) are set from it.
The reviewed held-out set (tests/data/nlu_reviewed_heldout.yml, written by `make export-reviewed`) is scored on its own
when it exists.
Writes reports/nlu_benchmark.md and one confusion-matrix PNG per held-out set; the LAST line printed is a JSON summary.

Each model variant is trained and evaluated in its own Python process: jieba keeps user dictionaries in global state,
so (b) must not inherit the dictionary (a) loaded, and each gets a clean TensorFlow. The training cache is off so that
training times are real.

    .venv/bin/python bench/nlu.py [--quick] [--folds N] [--variants a,b,c] [--config C] [--nlu D]
        [--heldout FILE ...] [--safety FILE] [--repeats N]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench import nlu_eval
from bench.keyword_baseline import KeywordClassifier

ROOT = Path(__file__).resolve().parents[1]

CONFIG_OURS = ROOT / "config.yml"
CONFIG_PLAIN = ROOT / "bench" / "config_plain.yml"
REPORT_DIR = ROOT / "reports"
NORMALIZER = "weiquan.nlu.normalizer.ChineseTextNormalizer"
QUICK_EPOCHS = 5
WARMUP = 10
CV_SEED = 2013
OTHER = "out_of_scope"
LABELS = {"a": "(a) ours", "b": "(b) plain DIET", "c": "(c) keywords"}


def log(message: str) -> None:
    print(f"[bench-nlu {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- configs
def read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    return yaml.safe_load(path.read_text(encoding="utf-8"))


def diet_settings(config: dict[str, Any]) -> dict[str, Any]:
    for component in config.get("pipeline") or []:
        if component.get("name") == "DIETClassifier":
            return {key: component[key] for key in ("epochs", "random_seed") if key in component}
    return {}


def prepared_config(variant: str, ours_path: Path, quick: bool, workdir: Path, seed_offset: int = 0) -> Path:
    """The config a variant trains with: (b) takes (a)'s DIET epochs and seed; --quick cuts every epochs setting;
    `seed_offset` moves every random_seed (a repeat of (a) for the spread)."""
    import yaml

    config = read_yaml(ours_path if variant == "a" else CONFIG_PLAIN)
    ours = diet_settings(read_yaml(ours_path))
    for component in config.get("pipeline") or []:
        if variant == "b" and component.get("name") == "DIETClassifier":
            component.update(ours)
        if quick and "epochs" in component:
            component["epochs"] = QUICK_EPOCHS
        if seed_offset and "random_seed" in component:
            component["random_seed"] = int(component["random_seed"]) + seed_offset
    config.pop("policies", None)  # NLU only
    path = workdir / f"config_{variant}{seed_offset or ''}.yml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def pipeline_names(config_path: Path) -> list[str]:
    return [c.get("name", "?") for c in read_yaml(config_path).get("pipeline") or []]


# ---------------------------------------------------------------- evaluation of one predictor
def evaluate_set(examples: list[nlu_eval.Example], predictions: list[nlu_eval.Prediction]) -> dict[str, Any]:
    gold = [e.intent for e in examples]
    predicted = [p.intent for p in predictions]
    entity_types = sorted({name for e in examples for name, _ in e.entities})
    return {
        "intent": nlu_eval.intent_metrics(gold, predicted),
        "before_guard": nlu_eval.intent_metrics(gold, [p.intent_before_guard for p in predictions]),
        "entities": nlu_eval.entity_metrics(
            [e.entities for e in examples], [p.entities for p in predictions], entity_types
        ),
        "entity_types": entity_types,
        "swaps": nlu_eval.role_swaps(gold, predicted),
        "fallbacks": sum(1 for p in predicted if p == nlu_eval.FALLBACK_INTENT),
        "confusions": nlu_eval.confusions(gold, predicted, top=12),
        "gold": gold,
        "predicted": predicted,
        "errors": nlu_eval.errors(examples, predictions, limit=1000),
        "long_messages": sum(1 for e in examples if len(e.text) > 60),
        # other problems recognised as such, and how many of them also got a `problem` entity (the pointer's topic)
        "other_problems": sum(1 for e, p in zip(examples, predictions, strict=True) if e.intent == p.intent == OTHER),
        "with_problem": sum(
            1 for e, p in zip(examples, predictions, strict=True)
            if e.intent == p.intent == OTHER and any(name == "problem" for name, _ in p.entities)
        ),
    }


def evaluate_safety(safety: list[nlu_eval.Example], safety_pred: list[nlu_eval.Prediction]) -> dict[str, Any]:
    safety_gold = [e.intent for e in safety]
    return {
        "safety": nlu_eval.safety_metrics(safety_gold, [p.intent for p in safety_pred]),
        "safety_before_guard": nlu_eval.safety_metrics(safety_gold, [p.intent_before_guard for p in safety_pred]),
        "safety_missed": [
            e.text for e, p in zip(safety, safety_pred, strict=True) if e.intent == nlu_eval.SAFETY_INTENT != p.intent
        ],
        "safety_false_alarms": [
            e.text for e, p in zip(safety, safety_pred, strict=True) if p.intent == nlu_eval.SAFETY_INTENT != e.intent
        ],
    }


def evaluate_all(
    predict: Any, heldout_files: list[Path], safety_file: Path, warmup: int = WARMUP
) -> dict[str, Any]:
    """`predict(texts, warmup)` -> (predictions, seconds); scores every held-out set and the safety set."""
    sets, seconds = {}, []
    for path in heldout_files:
        examples = nlu_eval.load_examples(path)
        predictions, timed = predict([e.text for e in examples], warmup)
        seconds += timed
        sets[set_name(path)] = {"file": rel(path), **evaluate_set(examples, predictions)}
        warmup = 0
    safety = nlu_eval.load_examples(safety_file)
    safety_pred, _ = predict([e.text for e in safety], 0)
    return {"sets": sets, **evaluate_safety(safety, safety_pred), "latency": nlu_eval.latency(seconds)}


def set_name(path: Path) -> str:
    return Path(path).stem


def folds(examples: list[Any], labels: list[str], n: int) -> list[tuple[list[int], list[int]]]:
    from sklearn.model_selection import StratifiedKFold

    splitter = StratifiedKFold(n_splits=n, shuffle=True, random_state=CV_SEED)
    return [(list(train), list(test)) for train, test in splitter.split(examples, labels)]


# ---------------------------------------------------------------- model variants (run in a child process)
def train(config_path: Path, nlu_path: Path, out_dir: Path, name: str) -> tuple[Path, float]:
    from rasa.model_training import train_nlu

    started = time.perf_counter()
    result = train_nlu(config=str(config_path), nlu_data=str(nlu_path), output=str(out_dir), fixed_model_name=name)
    elapsed = time.perf_counter() - started
    model = getattr(result, "model", result)
    if not model:
        raise RuntimeError(f"training {config_path.name} on {nlu_path} produced no model")
    return Path(model), elapsed


def run_worker(args: argparse.Namespace) -> None:
    variant = args.worker
    with tempfile.TemporaryDirectory(prefix=f"bench_nlu_{variant}_") as tmp:
        workdir = Path(tmp)
        config_path = prepared_config(variant, args.config, args.quick, workdir, args.seed_offset)

        log(f"{variant}: training on {args.nlu}")
        model, train_seconds = train(config_path, args.nlu, workdir, f"bench_{variant}")
        log(f"{variant}: trained in {train_seconds:.0f} s; parsing")
        agent = nlu_eval.load_agent(model)

        def predict(texts: list[str], warmup: int) -> tuple[list[nlu_eval.Prediction], list[float]]:
            return nlu_eval.parse_texts(agent, texts, warmup=warmup)

        result = evaluate_all(predict, args.heldout, args.safety)
        result["train_seconds"] = train_seconds
        result["pipeline"] = pipeline_names(config_path)
        result["diet"] = diet_settings(read_yaml(config_path))

        result["cv"] = cross_validate_model(config_path, args.nlu, args.folds, workdir) if args.folds > 1 else None
    Path(args.result).write_text(json.dumps(result, ensure_ascii=False), encoding="utf-8")


def cross_validate_model(config_path: Path, nlu_path: Path, n: int, workdir: Path) -> dict[str, Any]:
    from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLWriter
    from rasa.shared.nlu.training_data.training_data import TrainingData

    data = nlu_eval.load_training_data(nlu_path)
    messages = data.intent_examples
    examples = nlu_eval.examples_from(data)
    scores = []
    for i, (train_idx, test_idx) in enumerate(folds(messages, [e.intent for e in examples], n)):
        fold_dir = workdir / f"fold{i}"
        fold_dir.mkdir()
        train_data = TrainingData(
            training_examples=[messages[k] for k in train_idx],
            entity_synonyms=data.entity_synonyms,
            regex_features=data.regex_features,
            lookup_tables=data.lookup_tables,
        )
        RasaYAMLWriter().dump(fold_dir / "nlu.yml", train_data)
        log(f"cv fold {i + 1}/{n}: training on {len(train_idx)} examples")
        model, _ = train(config_path, fold_dir, fold_dir, f"fold{i}")
        agent = nlu_eval.load_agent(model)
        test = [examples[k] for k in test_idx]
        predicted, _ = nlu_eval.parse_texts(agent, [e.text for e in test])
        score = nlu_eval.intent_metrics([e.intent for e in test], [p.intent for p in predicted])["macro_f1"]
        log(f"cv fold {i + 1}/{n}: macro-F1 {score:.3f}")
        scores.append(score)
    return {"folds": n, "macro_f1": scores, "mean": statistics.fmean(scores), "sd": statistics.pstdev(scores)}


def run_model_variant(variant: str, args: argparse.Namespace, logdir: Path, seed_offset: int = 0) -> dict[str, Any]:
    result_path = logdir / f"result_{variant}{seed_offset}.json"
    log_path = logdir / f"worker_{variant}{seed_offset}.log"
    command = [
        # `-m`, not the script's path: with bench/ first on sys.path, bench/profile.py would shadow the standard
        # library's `profile`, which spaCy imports (the worker then dies on start-up).
        sys.executable, "-m", "bench.nlu", "--worker", variant, "--result", str(result_path),
        "--nlu", str(args.nlu), "--safety", str(args.safety), "--folds", str(args.folds if not seed_offset else 0),
        "--config", str(args.config), "--seed-offset", str(seed_offset),
    ] + [item for path in args.heldout for item in ("--heldout", str(path))] + (["--quick"] if args.quick else [])
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "RASA_MAX_CACHE_SIZE": "0",  # no training cache: honest training times, nothing written to .rasa/
        "RASA_TELEMETRY_ENABLED": "false",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
    }
    log(f"{LABELS[variant]}{f' (seed +{seed_offset})' if seed_offset else ''}: worker started, log in {log_path}")
    with open(log_path, "wb") as out:
        proc = subprocess.run(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0 or not result_path.exists():
        tail = log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-40:]
        raise RuntimeError(f"{LABELS[variant]} failed (exit {proc.returncode}):\n" + "\n".join(tail))
    return json.loads(result_path.read_text(encoding="utf-8"))


# ---------------------------------------------------------------- keyword baseline (in this process)
def run_keywords(args: argparse.Namespace) -> dict[str, Any]:
    classifier = KeywordClassifier()

    def predict(texts: list[str], warmup: int) -> tuple[list[nlu_eval.Prediction], list[float]]:
        for text in texts[:warmup]:
            classifier.parse(text)
        predictions, seconds = [], []
        for text in texts:
            started = time.perf_counter()
            parse = classifier.parse(text)
            seconds.append(time.perf_counter() - started)
            predictions.append(nlu_eval.to_prediction(parse))
        return predictions, seconds

    result = evaluate_all(predict, args.heldout, args.safety)
    result["train_seconds"] = 0.0
    result["pipeline"] = ["keyword table (bench/keyword_baseline.py)"]
    result["cv"] = None
    if args.folds > 1:  # nothing is learned, so each fold only scores the table on that fold's examples
        examples = nlu_eval.load_examples(args.nlu)
        scores = []
        for _, test_idx in folds(examples, [e.intent for e in examples], args.folds):
            test = [examples[k] for k in test_idx]
            predicted = [classifier.classify(e.text) for e in test]
            scores.append(nlu_eval.intent_metrics([e.intent for e in test], predicted)["macro_f1"])
        result["cv"] = {
            "folds": args.folds, "macro_f1": scores, "mean": statistics.fmean(scores), "sd": statistics.pstdev(scores)
        }
    return result


# ---------------------------------------------------------------- report
SET_TITLES = {
    "nlu_heldout": "held-out (team)",
    "nlu_heldout_real": "held-out (real, independent)",
    "nlu_blind": "held-out (blind, round 5)",
    "nlu_heldout_public": "held-out (public text)",
    "nlu_reviewed_heldout": "held-out (reviewed buyers' messages)",
}
# A set's first score, taken on the model as it was before anything was tuned against that set (reports/).
FIRST_RUNS = {
    "nlu_heldout_public": "macro-F1 86.9%, accuracy 73.7%, reports/nlu_public_first_run.md",
}


def set_title(name: str) -> str:
    return SET_TITLES.get(name, name)


def confusion_png_name(index: int, name: str) -> str:
    # The first set keeps the historical name (the README points at it).
    short = name.removeprefix("nlu_heldout_").removeprefix("nlu_")
    return "nlu_confusion.png" if index == 0 else f"nlu_confusion_{short or name}.png"


def pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def write_confusion_png(result: dict[str, Any], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gold, predicted = result["gold"], result["predicted"]
    rows = sorted(set(gold))
    columns = rows + sorted(set(predicted) - set(rows))  # e.g. nlu_fallback, last
    row_index = {label: i for i, label in enumerate(rows)}
    column_index = {label: i for i, label in enumerate(columns)}
    matrix = [[0] * len(columns) for _ in rows]
    for g, p in zip(gold, predicted, strict=True):
        matrix[row_index[g]][column_index[p]] += 1
    size = max(6.0, 0.45 * len(columns) + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(columns)), columns, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set_xlabel("predicted intent")
    ax.set_ylabel("gold intent")
    ax.set_title(title, fontsize=10)
    top = max((max(row) for row in matrix), default=0)
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            if value:
                colour = "white" if value > top / 2 else "black"
                ax.text(j, i, str(value), ha="center", va="center", fontsize=7, color=colour)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def spread_of(runs: list[dict[str, Any]]) -> dict[str, dict[str, tuple[float, float]]]:
    """Per set: (min, max) of macro-F1 and accuracy, and the most buyer↔seller swaps, over the trainings of (a)."""
    out: dict[str, dict[str, tuple[float, float]]] = {}
    for name in runs[0]["sets"]:
        figures = [run["sets"][name] for run in runs]
        macro = [f["intent"]["macro_f1"] for f in figures]
        accuracy = [f["intent"]["accuracy"] for f in figures]
        swaps = [f["swaps"]["buyer_to_seller"] + f["swaps"]["seller_to_buyer"] for f in figures]
        out[name] = {"macro_f1": (min(macro), max(macro)), "accuracy": (min(accuracy), max(accuracy)),
                     "swaps": (min(swaps), max(swaps))}
    return out


def spread_lines(spread: dict[str, Any], set_names: list[str]) -> list[str]:
    runs = spread["runs"]
    lines = [
        f"**Spread of (a) over {runs} trainings** (the same data and config, random_seed +0…+{runs - 1}; DIET is not "
        "bit-for-bit repeatable here either). The CI floors in tests/test_nlu_floor.py sit just under the minimum.",
        "",
        "| set | macro-F1 min–max | accuracy min–max | buyer↔seller swaps |",
        "|---|---|---|---|",
    ]
    for name in set_names:
        s = spread["sets"][name]
        lines.append(f"| {set_title(name)} | {pct(s['macro_f1'][0])}–{pct(s['macro_f1'][1])} | "
                     f"{pct(s['accuracy'][0])}–{pct(s['accuracy'][1])} | {s['swaps'][0]}–{s['swaps'][1]} |")
    return [*lines, ""]


def write_report(
    results: dict[str, dict[str, Any]], args: argparse.Namespace, path: Path, meta: dict[str, Any],
    spread: dict[str, Any] | None = None,
) -> None:
    variants = [v for v in ("a", "b", "c") if v in results]
    any_result = results[variants[0]]
    set_names = list(any_result["sets"])

    def row(name: str, cell) -> str:
        return f"| {name} | " + " | ".join(cell(results[v]) for v in variants) + " |"

    def cv_cell(r: dict[str, Any]) -> str:
        cv = r.get("cv")
        return "not run" if not cv else f"{100 * cv['mean']:.1f}% ± {100 * cv['sd']:.1f}"

    def is_keywords(r: dict[str, Any]) -> bool:
        return r["pipeline"][0].startswith("keyword")

    lines = [
        "# NLU benchmark",
        "",
        f"Generated by `make bench-nlu` (bench/nlu.py) on {meta['date']}, {meta['machine']}.",
        "",
    ]
    if args.quick:
        lines += [
            f"> **Quick run** (`--quick`: DIET {QUICK_EPOCHS} epochs, {args.folds or 'no'} CV folds).",
            "> For development only; these are not the project's figures.",
            "",
        ]
    lines += ["Test data (none of it is trained on):", ""]
    for name in set_names:
        s = any_result["sets"][name]
        lines.append(
            f"- {set_title(name)}: `{s['file']}`, {s['intent']['n']} messages over {len(s['intent']['per_intent'])} "
            f"intents, {s['long_messages']} longer than 60 characters, "
            f"{s['swaps']['buyers']} buyer reports and {s['swaps']['sellers']} seller messages"
            + (f" (first untouched run: {FIRST_RUNS[name]});" if name in FIRST_RUNS else ";")
        )
    lines += [
        f"- safety set: `{rel(args.safety)}`, {any_result['safety']['n']} messages, "
        f"{any_result['safety']['positives']} of them `report_safety_threat` (the rest hard harassment negatives).",
        "",
        f"Training data: `{rel(args.nlu)}` ({meta['train_examples']} examples).",
        "",
        "| metric | " + " | ".join(LABELS[v] for v in variants) + " |",
        "|---|" + "---|" * len(variants),
    ]
    for name in set_names:
        title = set_title(name)
        lines += [
            row(f"{title}: intent macro-F1", lambda r, n=name: pct(r["sets"][n]["intent"]["macro_f1"])),
            row(f"{title}: intent accuracy", lambda r, n=name: pct(r["sets"][n]["intent"]["accuracy"])),
            row(f"{title}: buyer → seller swaps", lambda r, n=name: str(r["sets"][n]["swaps"]["buyer_to_seller"])),
            row(f"{title}: seller → buyer swaps", lambda r, n=name: str(r["sets"][n]["swaps"]["seller_to_buyer"])),
            row(f"{title}: buyer/seller asked (nlu_fallback)", lambda r, n=name: str(r["sets"][n]["swaps"]["asked"])),
            row(f"{title}: all messages sent to nlu_fallback", lambda r, n=name: str(r["sets"][n]["fallbacks"])),
            row(f"{title}: safety recall", lambda r, n=name: pct(
                r["sets"][n]["intent"]["per_intent"].get(nlu_eval.SAFETY_INTENT, {}).get("recall"))),
            row(
                f"{title}: other problems recognised, with a `problem` entity",
                lambda r, n=name: f"{r['sets'][n]['with_problem']} of {r['sets'][n]['other_problems']}",
            ),
            row(
                f"{title}: entity F1 (micro, entity+value)",
                lambda r, n=name: "n/a" if is_keywords(r) or not r["sets"][n]["entity_types"]
                else pct(r["sets"][n]["entities"]["f1"]),
            ),
        ]
    lines += [
        row("safety recall (report_safety_threat)", lambda r: pct(r["safety"]["recall"])),
        row("safety precision", lambda r: pct(r["safety"]["precision"])),
        row(f"{args.folds}-fold CV macro-F1 on {rel(args.nlu)}" if args.folds > 1 else "CV macro-F1", cv_cell),
        row("training time (NLU only)", lambda r: f"{r['train_seconds']:.0f} s"),
        row("parse time median", lambda r: f"{r['latency']['median_ms']:.2f} ms"),
        row("parse time p95", lambda r: f"{r['latency']['p95_ms']:.2f} ms"),
        "",
    ]
    if spread:
        lines += spread_lines(spread, set_names)
    if "a" in results:
        a = results["a"]
        lines += [
            "**Effect of the safety guard in (a).** With the guard (the pipeline as shipped): safety recall "
            f"{pct(a['safety']['recall'])}, precision {pct(a['safety']['precision'])}. Without it (the classifiers' "
            f"own intent, read from the ranking when the guard overrode it): recall "
            f"{pct(a['safety_before_guard']['recall'])}, precision {pct(a['safety_before_guard']['precision'])}.",
            "",
        ]
        if NORMALIZER not in a["pipeline"]:
            lines += [f"> Note: (a) ran without `{NORMALIZER}`: {rel(args.config)} does not list it.", ""]
        if a["safety_missed"]:
            lines += ["Safety messages (a) missed:", ""] + [f"- {t}" for t in a["safety_missed"]] + [""]
        if a["safety_false_alarms"]:
            lines += ["Harassment messages (a) took for a safety threat:", ""]
            lines += [f"- {t}" for t in a["safety_false_alarms"]] + [""]

    for index, name in enumerate(set_names):
        title = set_title(name)
        per_intent = any_result["sets"][name]["intent"]["per_intent"]
        lines += [
            f"## {title}: per-intent F1",
            "",
            "| intent | support | " + " | ".join(LABELS[v] for v in variants) + " |",
            "|---|---:|" + "---:|" * len(variants),
        ]
        for intent in sorted(per_intent):
            cells = " | ".join(
                f"{results[v]['sets'][name]['intent']['per_intent'][intent]['f1']:.2f}" for v in variants
            )
            lines.append(f"| {intent} | {per_intent[intent]['support']} | {cells} |")
        lines.append("")
        models = [v for v in variants if not is_keywords(results[v])]
        entity_types = any_result["sets"][name]["entity_types"]
        if models and entity_types:
            lines += [f"Entity F1 per entity ({title}):", "", "| entity | support | "
                      + " | ".join(LABELS[v] for v in models) + " |", "|---|---:|" + "---:|" * len(models)]
            for entity in entity_types:
                support = any_result["sets"][name]["entities"]["per_entity"][entity]["support"]
                cells = " | ".join(
                    f"{results[v]['sets'][name]['entities']['per_entity'][entity]['f1']:.2f}" for v in models
                )
                lines.append(f"| {entity} | {support} | {cells} |")
            lines.append("")
        lines += [f"Confusions ({title}, gold → predicted, most frequent first):", ""]
        for v in variants:
            confused = results[v]["sets"][name]["confusions"]
            text = "; ".join(f"{g} → {p} ×{n}" for g, p, n in confused) if confused else "none"
            lines += [f"- **{LABELS[v]}**: {text}"]
        lines += ["", f"The confusion matrix of (a) on this set is in `reports/{confusion_png_name(index, name)}`.", ""]
        if "a" in results and results["a"]["sets"][name]["errors"]:
            lines += [f"Messages (a) got wrong ({title}; gold → predicted):", ""]
            lines += [f"- {line}" for line in results["a"]["sets"][name]["errors"]] + [""]

    lines += [
        "## How it was measured",
        "",
        f"- (a) pipeline (`{rel(args.config)}`): "
        f"{', '.join(results['a']['pipeline']) if 'a' in results else 'not run'}.",
        f"- (b) pipeline: {', '.join(results['b']['pipeline']) if 'b' in results else 'not run'}; DIET "
        f"{results['b']['diet'] if 'b' in results else ''} (epochs and random_seed as in (a)).",
        "- (c) is a hand-written keyword → intent table with default `out_of_scope` (bench/keyword_baseline.py): a "
        "baseline, never used by the bot.",
        "- Intent accuracy counts `nlu_fallback` (the bot asks a clarifying question) as wrong. Macro-F1 averages F1 "
        "over the intents in each set's gold labels.",
        "- Buyer → seller swap: a `report_harassment` message predicted `seller_accused` (the harassed buyer would "
        "get the seller's advice); seller → buyer is the reverse. Either role predicted `nlu_fallback` is counted as "
        "asked: the bot asks who is speaking, which is not a swap.",
        "- Safety: positive class `report_safety_threat`; recall = threats caught / threats, precision = correct / "
        "predicted threats, on the safety set (threats plus hard harassment negatives); each held-out set's own "
        "threats give its \"safety recall\" row.",
        "- None of these sets is trained on, but their errors were read after runs and some fixes followed, so their "
        "figures are optimistic: the team and real sets over several rounds, the blind set once (its first run, "
        "before any fix, is in reports/nlu_issue9.md). Only a set nobody has looked at measures the bot fairly.",
        "- Entity F1: micro over (entity, value) pairs per message, for the entity types each held-out file "
        "annotates; values are compared after synonym mapping, so a pipeline without synonyms (b) scores only where "
        "the annotated value is the typed text.",
        "- Cross-validation: "
        + (f"stratified {args.folds}-fold (seed {CV_SEED})" if args.folds > 1 else "not run (pass --folds N)")
        + " over the intent examples of data/nlu.",
        "- Training time: wall clock of `rasa.model_training.train_nlu` with Rasa's training cache off, each model in "
        "its own process. Parse time: `Agent.parse_message` in-process, per held-out message, after "
        f"{WARMUP} warm-up parses; median and p95 (nearest rank).",
        f"- Machine: {meta['machine']} (shared with other work while running, so times are indicative)"
        + (f"; (a) and (b) were trained at the same time (--jobs {args.jobs})." if args.jobs > 1 else "."),
        "",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")


def rel(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def summary(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"quick": args.quick, "folds": args.folds}
    for variant, r in results.items():
        out[variant] = {
            name: {
                "macro_f1": round(s["intent"]["macro_f1"], 4),
                "accuracy": round(s["intent"]["accuracy"], 4),
                "buyer_to_seller": s["swaps"]["buyer_to_seller"],
                "seller_to_buyer": s["swaps"]["seller_to_buyer"],
                "asked": s["swaps"]["asked"],
                "entity_f1": None if variant == "c" or not s["entity_types"] else round(s["entities"]["f1"], 4),
            }
            for name, s in r["sets"].items()
        }
        out[variant].update({
            "safety_recall": round(r["safety"]["recall"], 4),
            "safety_precision": round(r["safety"]["precision"], 4),
            "cv_macro_f1": None if not r.get("cv") else round(r["cv"]["mean"], 4),
            "train_s": round(r["train_seconds"], 1),
            "parse_median_ms": round(r["latency"]["median_ms"], 3),
            "parse_p95_ms": round(r["latency"]["p95_ms"], 3),
        })
    return out


def print_figures(results: dict[str, dict[str, Any]]) -> None:
    for variant, r in results.items():
        for name, s in r["sets"].items():
            swaps = s["swaps"]
            print(
                f"{LABELS[variant]:16} {set_title(name):30} macro-F1 {pct(s['intent']['macro_f1']):>6}  "
                f"accuracy {pct(s['intent']['accuracy']):>6}  buyer→seller {swaps['buyer_to_seller']}  "
                f"seller→buyer {swaps['seller_to_buyer']}  asked {swaps['asked']}"
            )
        print(
            f"{LABELS[variant]:16} {'safety set':30} recall {pct(r['safety']['recall']):>6}  "
            f"precision {pct(r['safety']['precision']):>6}  training {r['train_seconds']:.0f} s"
        )


def default_heldout() -> list[Path]:
    sets = (nlu_eval.HELDOUT_FILE, nlu_eval.HELDOUT_REAL_FILE, nlu_eval.HELDOUT_BLIND_FILE,
            nlu_eval.HELDOUT_PUBLIC_FILE, nlu_eval.HELDOUT_REVIEWED_FILE)
    return [path for path in sets if path.exists() and nlu_eval.load_examples(path)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_EPOCHS} epochs")
    parser.add_argument("--folds", type=int, default=0, help="cross-validation folds on data/nlu (default 0: none)")
    parser.add_argument("--variants", default="a,b,c", help="which of a,b,c to run")
    parser.add_argument("--config", type=Path, default=CONFIG_OURS, help="pipeline (a)")
    parser.add_argument("--nlu", type=Path, default=nlu_eval.NLU_DIR, help="training data (file or folder)")
    parser.add_argument("--heldout", type=Path, action="append", help="held-out set (repeat; default: all four)")
    parser.add_argument("--safety", type=Path, default=nlu_eval.SAFETY_FILE)
    parser.add_argument("--report-dir", type=Path, default=REPORT_DIR)
    parser.add_argument("--jobs", type=int, default=1, help="model variants trained at once (default 1)")
    parser.add_argument("--repeats", type=int, default=1, help="trainings of (a) with other seeds, for the spread")
    parser.add_argument("--seed-offset", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--worker", choices=["a", "b"], help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.heldout = [path.resolve() for path in (args.heldout or default_heldout())]
    os.chdir(ROOT)  # config.yml names data/dictionary and build/spacy_zh relative to the project
    if args.worker:
        run_worker(args)
        return

    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = set(variants) - set(LABELS)
    if unknown:
        parser.error(f"unknown variants {sorted(unknown)}")
    train_examples = nlu_eval.load_examples(args.nlu)
    meta = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} CPU, Python {platform.python_version()}, {platform.system()}",
        "train_examples": len(train_examples),
    }

    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench_nlu_") as tmp:
        models = [v for v in variants if v != "c"]
        # --jobs 2 trains (a) and (b) side by side: faster on a busy machine, but their times then share the CPU.
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            futures = {v: pool.submit(run_model_variant, v, args, Path(tmp)) for v in models}
            if "c" in variants:
                results["c"] = run_keywords(args)
            for v in models:
                results[v] = futures[v].result()
                log(f"{LABELS[v]}: done")
        spread: dict[str, Any] | None = None
        if "a" in results and args.repeats > 1:
            runs = [results["a"]] + [run_model_variant("a", args, Path(tmp), offset)
                                     for offset in range(1, args.repeats)]
            per_set = spread_of(runs)
            spread = {"runs": len(runs), "sets": per_set}
            for name, s in per_set.items():
                print(f"(a) spread over {len(runs)} trainings  {set_title(name):30} macro-F1 "
                      f"{pct(s['macro_f1'][0])}–{pct(s['macro_f1'][1])}  accuracy "
                      f"{pct(s['accuracy'][0])}–{pct(s['accuracy'][1])}  swaps {s['swaps'][0]}–{s['swaps'][1]}")

    args.report_dir.mkdir(parents=True, exist_ok=True)
    report = args.report_dir / "nlu_benchmark.md"
    write_report(results, args, report, meta, spread)
    if "a" in results:
        for index, (name, s) in enumerate(results["a"]["sets"].items()):
            title = f"(a) ours on {set_title(name)}" + (" — QUICK RUN" if args.quick else "")
            write_confusion_png(s, args.report_dir / confusion_png_name(index, name), title)
    log(f"report written to {rel(report)}")
    print_figures(results)
    print(json.dumps(summary(results, args), ensure_ascii=False))


if __name__ == "__main__":
    main()
