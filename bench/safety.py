"""Threat detection benchmark (`make bench-safety`): does every threat get the police advice?

For each set the project keeps apart from training, the messages are split into threats and non-threats and judged
by five systems:

  rules         the detector's THREAT rules alone (weiquan/nlu/rule_patterns.yml on the folded text)
  model         the detector's model alone (score >= its threshold)
  detector      rules OR model: what SafetyGuard adds to the bot (weiquan/nlu/threat.py, build/threat)
  intent model  the trained Rasa model's own intent ranking, first non-fallback intent = report_safety_threat
  bot           the trained Rasa model's final intent, SafetyGuard included (what the dialogue acts on)

The last two need a trained model (models/weiquan.tar.gz, `make train`); without one they are left out.
Sets: tests/data/safety_set.yml, the threat / non-threat split of the three NLU held-out sets, tests/data/
safety_eval.yml (the team's tuning set since its first run, see reports/safety_eval_first_run.md) and, only when
tests/data/safety_final.yml exists, the final set, of which nothing is printed but figures and the bot's misses (a
tuning set since its first run, reports/safety_final_first_run.md), tests/data/safety_final2.yml, the second blind
set, and tests/data/safety_final3.yml, the third (same treatment).
Prints recall, precision, false alarms and the misses per set; writes reports/safety_benchmark.md.

    .venv/bin/python -m bench.safety [--no-rasa] [--detector build/threat]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from bench import nlu_eval
from weiquan.nlu.threat import DEFAULT_BUILD_DIR, ThreatDetector, Verdict

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
REPORT = ROOT / "reports" / "safety_benchmark.md"
SAFETY_INTENT = nlu_eval.SAFETY_INTENT
FALLBACK = nlu_eval.FALLBACK_INTENT
SYSTEMS = ("rules", "model", "detector", "intent model", "bot")


@dataclass(frozen=True)
class Item:
    text: str
    threat: bool
    family: str


@dataclass(frozen=True)
class EvalSet:
    name: str
    path: Path
    author: str
    secret: bool = False  # the final set: no text is printed but the bot's misses


def load_intent_set(path: Path) -> list[Item]:
    return [Item(e.text, e.intent == SAFETY_INTENT, e.intent) for e in nlu_eval.load_examples(path)]


def load_threat_set(path: Path) -> list[Item]:
    """The outside helper's format: `threats:` and `non_threats:` lists of {text, family, source}."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [Item(str(row["text"]), key == "threats", str(row.get("family", ""))) for key in ("threats", "non_threats")
            for row in data.get(key) or []]


def load_blind_set(path: Path) -> list[Item]:
    """The second outside writer's format: `sets: {threat: [...], none: [...]}` of {text, style, source}."""
    sets = yaml.safe_load(path.read_text(encoding="utf-8"))["sets"]
    return [Item(str(row["text"]), key == "threat", str(row.get("style", ""))) for key in ("threat", "none")
            for row in sets.get(key) or []]


def load(spec: EvalSet) -> list[Item]:
    data = yaml.safe_load(spec.path.read_text(encoding="utf-8"))
    if "sets" in data:
        return load_blind_set(spec.path)
    return load_threat_set(spec.path) if "threats" in data else load_intent_set(spec.path)


SETS = [
    EvalSet("safety_set", DATA / "safety_set.yml", "the team (threats and hard harassment negatives)"),
    EvalSet("nlu_heldout", nlu_eval.HELDOUT_FILE, "the team, without reading data/nlu"),
    EvalSet("nlu_heldout_real", nlu_eval.HELDOUT_REAL_FILE, "an independent tester, from the intent list"),
    EvalSet("nlu_blind", nlu_eval.HELDOUT_BLIND_FILE, "a language-model helper, from the intent list"),
    EvalSet("safety_eval", DATA / "safety_eval.yml", "a language-model helper outside the team (issue 16, pass 1)"),
    EvalSet("safety_final", DATA / "safety_final.yml", "outside helper, pass 2 + real text (kept from the team)",
            secret=True),
    EvalSet("safety_final2", DATA / "safety_final2.yml",
            "a second outside writer, blind to the detector and its data, + real court text (kept from the team)",
            secret=True),
    EvalSet("safety_final3", DATA / "safety_final3.yml",
            "a third outside writer (round 3), blind to the project: never read its code, data or earlier sets",
            secret=True),
]


# ---------------------------------------------------------------- the Rasa model
def rasa_intents(texts: Sequence[str]) -> tuple[list[str], list[str]] | None:
    """(intent model's own intent, bot's final intent) per text, or None without a trained model."""
    model = nlu_eval.latest_model()
    if model is None:
        return None
    agent = nlu_eval.load_agent(model)

    async def run() -> tuple[list[str], list[str]]:
        own, final = [], []
        for text in texts:
            parse = await agent.parse_message(text)
            final.append((parse.get("intent") or {}).get("name") or "None")
            ranking = [item["name"] for item in parse.get("intent_ranking") or [] if item["name"] != FALLBACK]
            own.append(ranking[0] if ranking else "None")
        return own, final

    return asyncio.run(run())


# ---------------------------------------------------------------- metrics
def score(items: Sequence[Item], predicted: Sequence[bool]) -> dict[str, Any]:
    tp = sum(1 for item, p in zip(items, predicted, strict=True) if p and item.threat)
    fp = sum(1 for item, p in zip(items, predicted, strict=True) if p and not item.threat)
    threats = sum(1 for item in items if item.threat)
    return {
        "recall": tp / threats if threats else None,
        "precision": tp / (tp + fp) if tp + fp else None,
        "found": tp, "threats": threats, "false_alarms": fp, "non_threats": len(items) - threats,
        "misses": [item.text for item, p in zip(items, predicted, strict=True) if item.threat and not p],
        "alarms": [item.text for item, p in zip(items, predicted, strict=True) if p and not item.threat],
    }


def fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def judge(detector: ThreatDetector, items: Sequence[Item], rasa: tuple[list[str], list[str]] | None
          ) -> dict[str, dict[str, Any]]:
    verdicts: list[Verdict] = [detector.verdict(item.text) for item in items]
    predictions: dict[str, Callable[[], list[bool]]] = {
        "rules": lambda: [v.by_rule for v in verdicts],
        "model": lambda: [v.by_model for v in verdicts],
        "detector": lambda: [v.threat for v in verdicts],
    }
    if rasa is not None:
        own, final = rasa
        predictions["intent model"] = lambda: [intent == SAFETY_INTENT for intent in own]
        predictions["bot"] = lambda: [intent == SAFETY_INTENT for intent in final]
    return {name: score(items, make()) for name, make in predictions.items()}


def timing(detector: ThreatDetector, texts: Sequence[str]) -> dict[str, float]:
    seconds = []
    for text in texts:
        started = time.perf_counter()
        detector.verdict(text)
        seconds.append(time.perf_counter() - started)
    ordered = sorted(seconds)
    return {"median_ms": statistics.median(ordered) * 1000, "p95_ms": ordered[int(0.95 * (len(ordered) - 1))] * 1000,
            "max_ms": ordered[-1] * 1000, "n": len(ordered)}


# ---------------------------------------------------------------- output
def table(results: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    lines = ["| set | system | recall | precision | threats found | false alarms |", "|---|---|---|---|---|---|"]
    for name, systems in results.items():
        for system, m in systems.items():
            lines.append(f"| {name} | {system} | {fmt(m['recall'])} | {fmt(m['precision'])} | "
                         f"{m['found']} / {m['threats']} | {m['false_alarms']} / {m['non_threats']} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-rasa", action="store_true", help="leave out the intent model and the bot")
    parser.add_argument("--detector", type=Path, default=DEFAULT_BUILD_DIR)
    parser.add_argument("--report", type=Path, default=REPORT)
    args = parser.parse_args(argv)

    detector = ThreatDetector.load(args.detector)
    sets = [(spec, load(spec)) for spec in SETS if spec.path.is_file()]
    texts = [item.text for _, items in sets for item in items]
    rasa_all = None if args.no_rasa else rasa_intents(texts)
    if rasa_all is None and not args.no_rasa:
        print("no trained model in models/: the intent model and the bot are left out (run `make train`)")

    results: dict[str, dict[str, dict[str, Any]]] = {}
    start = 0
    for spec, items in sets:
        end = start + len(items)
        rasa = None if rasa_all is None else (rasa_all[0][start:end], rasa_all[1][start:end])
        start = end
        results[spec.name] = judge(detector, items, rasa)

    report = detector.info.get("report", {})
    speed = timing(detector, texts)
    out: list[str] = [
        "# Threat detection benchmark (`make bench-safety`)", "",
        f"Run {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.machine()}, Python "
        f"{platform.python_version()}; detector threshold {detector.threshold} "
        f"(data digest {detector.info.get('data_digest')}); Rasa model: "
        f"{'left out' if rasa_all is None else nlu_eval.latest_model()}.", "",
        "Systems: rules = the detector's THREAT rules alone; model = the detector's model alone; detector = rules OR "
        "model (what SafetyGuard adds); intent model = the Rasa model's own first non-fallback intent is "
        "report_safety_threat; bot = the final intent the dialogue acts on (SafetyGuard included). "
        "Recall counts threats given the police advice; precision is over all alarms; false alarms are non-threats "
        "flagged.", "",
        "## Sets", "",
        *[f"- `{spec.name}` ({len(items)} messages, {sum(i.threat for i in items)} threats): {spec.author}."
          for spec, items in sets],
        "", "## Results", "", *table(results), "",
        "## The detector's cross-validation on its own training data (build report)", "",
        f"{report.get('examples')} examples ({report.get('threats')} threats); 5-fold out-of-fold scores; threshold "
        f"kept {report.get('recall_target')} of the threats: model {report.get('cv_model')}; rules or model "
        f"{report.get('cv_rules_or_model')}.", "",
        f"Detector time per message over all {speed['n']} texts: median {speed['median_ms']:.3f} ms, "
        f"p95 {speed['p95_ms']:.3f} ms, max {speed['max_ms']:.3f} ms.", "",
        "## Misses and false alarms", "",
    ]
    secret = {spec.name for spec, _ in sets if spec.secret}
    for name, systems in results.items():
        # the final set: only its misses, by the bot (or by the detector when no Rasa model was loaded)
        shown = (["bot"] if "bot" in systems else ["detector"]) if name in secret else ["detector", "bot"]
        for system in shown:
            if system not in systems:
                continue
            m = systems[system]
            out.append(f"- {name}, {system}: {len(m['misses'])} missed"
                       + ("" if name in secret else f", {len(m['alarms'])} false alarms"))
            out.extend(f"  - missed: {text}" for text in m["misses"])
            if name not in secret:
                out.extend(f"  - false alarm: {text}" for text in m["alarms"])
    text = "\n".join(out) + "\n"
    args.report.write_text(text, encoding="utf-8")
    print(text)
    summary = {name: {system: {"recall": m["recall"], "precision": m["precision"]} for system, m in systems.items()}
               for name, systems in results.items()}
    print(json.dumps(summary, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
