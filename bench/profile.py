"""Where a complaint turn's milliseconds go: `make profile` → reports/profile.md.

How it measures (in process, wall clock, `time.perf_counter`):
- the Rasa side runs in this process: the trained model loaded by `rasa.core.agent.Agent` with a throw-away SQLite
  tracker store, messages handed to `Agent.handle_message` (what the REST channel calls; HTTP into Rasa and the
  channel's rendering are not included);
- timers wrap Rasa's own functions: every graph node (`GraphNode.__call__`: each NLU component, each policy,
  the prediction ensemble), every action-server round trip (`EndpointConfig.request`, with the byte size of the JSON
  Rasa sends and receives), the SQL tracker store's `retrieve` and `save`, and the whole turn;
- the action server is a real `rasa_sdk` server in a child process on a loopback port (started by this script with
  `--serve-actions`), with timers around `ActionExecutor.run` (everything the SDK does for one call),
  `Tracker.from_dict` (rebuilding the tracker from the JSON) and each action's own `run`;
  it writes them to a JSON-lines file.

The conversation: two complaints by one buyer, 4 turns (eligible, then past the window). Each repetition uses a fresh
sender. The first repetitions warm up (TensorFlow traces its functions on first use) and are dropped.

Three configurations run interleaved, repetition by repetition, in one process with one loaded model (so the shared
machine's load falls on all alike): what `make run` serves (`enable_selective_domain: true` + weiquan.ops.serve's
compiled validator), the same with the domain sent on every action call, and the same with Rasa's stock validation.

    python bench/profile.py [--repeat 15] [--warmup 3] [--quick]
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.provenance import stamp

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "models" / "weiquan.tar.gz"
REPORT = ROOT / "reports" / "profile.md"

CONVERSATION = [
    "淘宝买的，交易成功5天了，卖家天天打电话骂我",
    "有聊天截图",
    "淘宝买的另一单，交易成功20天了，卖家天天发短信骂我",
    "有短信截图",
]


# ---------------------------------------------------------------------------------------------- action server side
def serve_actions(port: int, timings_file: str) -> None:
    """A rasa_sdk action server with timers; one JSON line per action call."""
    from rasa_sdk import endpoint, executor, interfaces

    out = open(timings_file, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the server
    current: dict[str, float] = {}
    original_from_dict = interfaces.Tracker.from_dict.__func__

    def from_dict(cls: Any, state: dict[str, Any]) -> Any:
        start = time.perf_counter()
        tracker = original_from_dict(cls, state)
        current["tracker_ms"] = (time.perf_counter() - start) * 1000
        return tracker

    interfaces.Tracker.from_dict = classmethod(from_dict)
    original_register = executor.ActionExecutor.register_function

    def register_function(self: Any, name: str, function: Callable) -> None:
        async def timed(dispatcher: Any, tracker: Any, domain: Any) -> Any:
            start = time.perf_counter()
            result = function(dispatcher, tracker, domain)
            if asyncio.iscoroutine(result):
                result = await result
            current["action_ms"] = (time.perf_counter() - start) * 1000
            return result

        timed.__wrapped__ = function  # type: ignore[attr-defined]  # rasa_sdk counts the wrapped function's arguments
        original_register(self, name, timed)

    executor.ActionExecutor.register_function = register_function
    original_run = executor.ActionExecutor.run

    async def run(self: Any, action_call: dict[str, Any]) -> Any:
        current.clear()
        start = time.perf_counter()
        response = await original_run(self, action_call)
        record = {"action": action_call.get("next_action"), "sdk_ms": (time.perf_counter() - start) * 1000,
                  "sender": action_call.get("sender_id"), **current}
        out.write(json.dumps(record) + "\n")
        out.flush()
        return response

    executor.ActionExecutor.run = run
    os.environ.setdefault("SANIC_HOST", "127.0.0.1")
    endpoint.run("actions", port=port)


# ---------------------------------------------------------------------------------------------- Rasa side
class Recorder:
    """Collects (turn, kind, name, ms, extra) rows while one turn is handled."""

    def __init__(self) -> None:
        self.turn: str | None = None
        self.run = 0
        self.rows: list[dict[str, Any]] = []

    def add(self, kind: str, name: str, ms: float, **extra: Any) -> None:
        if self.turn is not None:
            self.rows.append({"turn": self.turn, "run": self.run, "kind": kind, "name": name, "ms": ms, **extra})


ACTIVE: list[Recorder] = [Recorder()]  # the recorder of the configuration being measured


def instrument() -> None:
    from rasa.core import tracker_store
    from rasa.engine import graph
    from rasa.utils import endpoints

    original_call = graph.GraphNode.__call__

    def node_call(self: Any, *inputs: Any) -> Any:
        start = time.perf_counter()
        result = original_call(self, *inputs)
        ACTIVE[0].add("node", self._node_name, (time.perf_counter() - start) * 1000)
        return result

    graph.GraphNode.__call__ = node_call
    original_request = endpoints.EndpointConfig.request

    async def request(self: Any, method: str = "post", subpath: str | None = None, content_type: str | None =
                      "application/json", compress: bool = False, **kwargs: Any) -> Any:
        body = kwargs.get("json")
        sent = len(json.dumps(body).encode()) if body is not None else 0
        domain_bytes = len(json.dumps(body.get("domain")).encode()) if body and body.get("domain") else 0
        tracker_events = len(body["tracker"]["events"]) if body and "tracker" in body else 0
        start = time.perf_counter()
        response = await original_request(self, method, subpath, content_type, compress, **kwargs)
        received = len(json.dumps(response).encode()) if response is not None else 0
        ACTIVE[0].add("action", (body or {}).get("next_action", "?"), (time.perf_counter() - start) * 1000,
                     sent=sent, received=received, domain_bytes=domain_bytes, events=tracker_events)
        return response

    endpoints.EndpointConfig.request = request
    for method in ("retrieve", "save"):
        original = getattr(tracker_store.SQLTrackerStore, method)

        def wrap(original: Callable = original, method: str = method) -> Callable:
            async def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
                start = time.perf_counter()
                result = await original(self, *args, **kwargs)
                ACTIVE[0].add("store", method, (time.perf_counter() - start) * 1000)
                return result

            return timed

        setattr(tracker_store.SQLTrackerStore, method, wrap())


NLU_PREFIXES = ("nlu_message_converter", "run_weiquan.nlu", "run_JiebaTokenizer", "run_LexicalSyntactic",
                "run_CountVectors", "run_DIET", "run_EntitySynonym", "run_FallbackClassifier", "run_RegexMessage")


def is_nlu(node: str) -> bool:
    return node.startswith(NLU_PREFIXES)


def short(node: str) -> str:
    name = node.removeprefix("run_").removeprefix("weiquan.nlu.")
    for prefix in ("normalizer.", "rule_entities.", "safety."):
        name = name.removeprefix(prefix)
    return name.rstrip("0123456789") if name[-1:].isdigit() else name


# The configurations compared, interleaved repetition by repetition in one process so that the machine's load
# (shared CPUs) falls on all of them alike: what `make run` serves, and each cut undone.
CONFIGS = {
    "ops": {"selective": True, "stock_validation": False},  # endpoints.yml + weiquan.ops.serve
    "no_selective": {"selective": False, "stock_validation": False},  # the domain sent on every action call
    "stock": {"selective": True, "stock_validation": True},  # Rasa's own action-response validation
}


async def profile(action_url: str, repeat: int, warmup: int, configs: list[str], recorders: dict[str, Recorder],
                  workdir: Path) -> dict[str, tuple[list[list[dict[str, Any]]], list[list[str]]]]:
    from rasa.core.actions import action as actions
    from rasa.core.agent import load_agent
    from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
    from rasa.core.utils import AvailableEndpoints

    from weiquan.ops import serve

    stock_validation = actions.RemoteAction._validate_action_result
    serve.install()  # what `make run` serves with (weiquan/ops/serve.py)
    compiled_validation = actions.RemoteAction._validate_action_result
    endpoints_file = workdir / "endpoints.yml"
    endpoints_file.write_text(
        f"action_endpoint:\n  url: {action_url}\n  enable_selective_domain: true\n"
        f"tracker_store:\n  type: SQL\n  dialect: sqlite\n  db: {workdir / 'tracker.db'}\n", encoding="utf-8")
    agent = await load_agent(model_path=str(MODEL), endpoints=AvailableEndpoints.read_endpoints(str(endpoints_file)))
    endpoint = agent.processor.action_endpoint
    results: dict[str, tuple[list[list[dict[str, Any]]], list[list[str]]]] = {name: ([], []) for name in configs}
    for run in range(warmup + repeat):
        # Rotate the order and collect garbage between conversations: one configuration's garbage (the stock
        # validation makes a lot) must not be collected during the next one's turns.
        for name in configs[run % len(configs):] + configs[:run % len(configs)]:
            gc.collect()
            config = CONFIGS[name]
            endpoint.kwargs["enable_selective_domain"] = config["selective"]
            actions.RemoteAction._validate_action_result = (stock_validation if config["stock_validation"]
                                                            else compiled_validation)
            recorder = recorders[name]
            ACTIVE[0] = recorder
            sender = f"profile-{name}-{uuid.uuid4().hex[:10]}"
            per_turn, texts = [], []
            for index, text in enumerate(CONVERSATION):
                recorder.turn = f"t{index + 1}" if run >= warmup else None
                recorder.run = run
                output = CollectingOutputChannel()
                start = time.perf_counter()
                await agent.handle_message(UserMessage(text, output, sender))
                total = (time.perf_counter() - start) * 1000
                recorder.turn = None
                per_turn.append({"turn": f"t{index + 1}", "ms": total, "sender": sender})
                texts.append(" / ".join((m.get("text") or "")[:18] for m in output.messages))
            if run >= warmup:
                results[name][0].append(per_turn)
                results[name][1].append(texts)
    actions.RemoteAction._validate_action_result = compiled_validation
    return results


# ---------------------------------------------------------------------------------------------- report
def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def summarise(rows: list[dict[str, Any]], totals: list[list[dict[str, Any]]], sdk: list[dict[str, Any]],
              repeat: int) -> dict[str, Any]:
    """Per turn: median total and, for every item, the median over repetitions of its summed time per turn."""
    turns = [f"t{i + 1}" for i in range(len(CONVERSATION))]
    result: dict[str, Any] = {}
    for i, turn in enumerate(turns):
        per_run: dict[str, list[float]] = defaultdict(list)
        calls: dict[str, int] = defaultdict(int)
        sizes: dict[str, list[int]] = defaultdict(list)
        by_run: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for row in rows:
            if row["turn"] == turn:
                by_run[row["run"]].append(row)
        chunks = list(by_run.values())
        for chunk in chunks:
            summed: dict[str, float] = defaultdict(float)
            for row in chunk:
                label = f"{row['kind']}:{row['name']}"
                summed[label] += row["ms"]
                calls[label] += 1
                if row["kind"] == "action":
                    sizes[label].append(row["sent"])
                    sizes[label + ":domain"].append(row["domain_bytes"])
                    sizes[label + ":received"].append(row["received"])
            for label, value in summed.items():
                per_run[label].append(value)
        result[turn] = {
            "total": median([run[i]["ms"] for run in totals]),
            "items": {label: median(values) for label, values in per_run.items()},
            "calls": {label: count / repeat for label, count in calls.items()},
            "sizes": {label: int(median([float(value) for value in values])) for label, values in sizes.items()},
        }
    # action-server timings by action name (all turns)
    by_action: dict[str, dict[str, float]] = {}
    for name in sorted({r["action"] for r in sdk}):
        records = [r for r in sdk if r["action"] == name]
        by_action[name] = {key: median([r.get(key, 0.0) for r in records])
                           for key in ("sdk_ms", "tracker_ms", "action_ms")}
    result["sdk_by_action"] = by_action
    return result


def write_report(summary: dict[str, Any], replies: list[list[str]], repeat: int, warmup: int,
                 other: dict[str, Any] | None, load: str, stock: dict[str, Any] | None = None) -> str:
    turns = [f"t{i + 1}" for i in range(len(CONVERSATION))]
    lines = [
        "# Where a complaint turn's time goes",
        "",
        f"Written by `bench/profile.py` (`make profile`) on {stamp()}. Medians over "
        f"{repeat} runs of the 4-turn conversation (after {warmup} warm-up runs), a fresh sender each run. "
        f"Machine load while measuring: {load}.",
        "",
        "Three configurations were run interleaved, repetition by repetition, in one process (one loaded model): "
        "what `make run` serves, and the same with each of two cuts undone (last sections). "
        "How: in-process timers around Rasa's own functions (graph nodes, `EndpointConfig.request`, "
        "`SQLTrackerStore.retrieve/save`, `Agent.handle_message`) and, in the real action server (a child process on "
        "loopback), around `ActionExecutor.run`, `Tracker.from_dict` and each action's `run`. HTTP into Rasa and the "
        "REST channel's rendering are not included (about 1-2 ms, see reports/load.md for the end-to-end figures).",
        "",
        "| turn | user says | bot answers (first characters of each message) |",
        "|---|---|---|",
    ]
    for i, turn in enumerate(turns):
        lines.append(f"| {turn} | {CONVERSATION[i]} | {replies[0][i] if replies else ''} |")
    lines += ["", "## Per turn (ms, median; calls per turn in brackets)", ""]
    labels: list[str] = []
    for turn in turns:
        for label in summary[turn]["items"]:
            if label not in labels:
                labels.append(label)

    def group(label: str) -> tuple[int, str]:
        kind, name = label.split(":", 1)
        order = {"node": 0 if is_nlu(name) else 1, "action": 2, "store": 3}[kind]
        return order, label

    labels.sort(key=group)
    lines.append("| item | " + " | ".join(turns) + " |")
    lines.append("|---|" + "---|" * len(turns))
    for label in labels:
        kind, name = label.split(":", 1)
        title = {"node": ("NLU " if is_nlu(name) else "policy ") + short(name),
                 "action": f"action server round trip `{name}`", "store": f"tracker store {name}"}[kind]
        cells = []
        for turn in turns:
            value = summary[turn]["items"].get(label)
            count = summary[turn]["calls"].get(label)
            cells.append(f"{value:.1f} ({count:g}×)" if value is not None else "")
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    sums = {}
    for turn in turns:
        items = summary[turn]["items"]
        nlu = sum(v for k, v in items.items() if k.startswith("node:") and is_nlu(k[5:]))
        policy = sum(v for k, v in items.items() if k.startswith("node:") and not is_nlu(k[5:]))
        actions = sum(v for k, v in items.items() if k.startswith("action:"))
        store = sum(v for k, v in items.items() if k.startswith("store:"))
        total = summary[turn]["total"]
        sums[turn] = (nlu, policy, actions, store, total - nlu - policy - actions - store, total)
    for index, title in enumerate(["**NLU total**", "**policy prediction total**", "**action round trips total**",
                                   "**tracker store total**", "other (processor, events, NLG, lock)",
                                   "**whole turn (median)**"]):
        lines.append(f"| {title} | " + " | ".join(f"{sums[t][index]:.1f}" for t in turns) + " |")
    lines += ["", "## Action-server calls: bytes Rasa sends (of which the domain) and receives, median", "",
              "| turn | action | sent | of which domain | received | round trip ms |", "|---|---|---|---|---|---|"]
    for turn in turns:
        for label, ms in summary[turn]["items"].items():
            if label.startswith("action:"):
                sizes = summary[turn]["sizes"]
                lines.append(f"| {turn} | `{label[7:]}` | {sizes.get(label, 0):,} | {sizes.get(label + ':domain', 0):,}"
                             f" | {sizes.get(label + ':received', 0):,} | {ms:.1f} |")
    lines += ["", "## Inside the action server (median per call, ms)", "",
              "| action | whole SDK call | of which Tracker.from_dict | of which the action's run |",
              "|---|---|---|---|"]
    for name, values in summary["sdk_by_action"].items():
        lines.append(f"| `{name}` | {values['sdk_ms']:.2f} | {values['tracker_ms']:.2f} | {values['action_ms']:.2f} |")
    if stock:
        lines += ["", "## Before and after weiquan/ops/serve.py's compiled validator (Rasa's stock "
                  "`jsonschema.validate` re-checks the response schema against the meta-schema on every action call)",
                  "", "| turn | whole turn ms, stock Rasa | whole turn ms, `weiquan.ops.serve` | action calls |",
                  "|---|---|---|---|"]
        for turn in turns:
            calls = sum(c for k, c in summary[turn]["calls"].items() if k.startswith("action:"))
            lines.append(f"| {turn} | {stock['turn_ms_median'][turn]:.1f} | {summary[turn]['total']:.1f} | {calls:g} |")
    if other:
        lines += ["", "## Same conversation without `enable_selective_domain` (the domain sent on every call)", "",
                  "| turn | whole turn ms (without) | whole turn ms (with) | action round trips ms (without → with) |",
                  "|---|---|---|---|"]
        for turn in turns:
            o_actions = sum(v for k, v in other[turn]["items"].items() if k.startswith("action:"))
            actions = sum(v for k, v in summary[turn]["items"].items() if k.startswith("action:"))
            lines.append(f"| {turn} | {other[turn]['total']:.1f} | {summary[turn]['total']:.1f} | "
                         f"{o_actions:.1f} → {actions:.1f} |")
    lines += cuts(summary, other, stock)
    return "\n".join(lines) + "\n"


def cuts(summary: dict[str, Any], other: dict[str, Any] | None, stock: dict[str, Any] | None) -> list[str]:
    """The cuts, ranked by the gain measured above (figures taken from this run)."""
    turns = [f"t{i + 1}" for i in range(len(CONVERSATION))]

    def item(turn: str, label: str) -> float:
        return summary[turn]["items"].get(label, 0.0)

    # Action calls on the ruling turns other than the form's own validation (1 since assess and reset merged).
    ruling_calls = "/".join(str(sum(1 for k in summary[t]["calls"] if k.startswith("action:")
                                    and not k.startswith("action:validate_"))) for t in ("t2", "t4"))
    sizes = summary["t1"]["sizes"]
    domain_bytes = sizes.get("action:validate_complaint_form:domain", 0)
    sent_bytes = sizes.get("action:validate_complaint_form", 0)
    saves = [item(t, "store:save") for t in turns]
    lines = ["", "## Cuts, ranked by the gain measured in this run", "",
             "Made (in ops files; behaviour identical, the tests are the same):", ""]
    made = []
    if stock:
        gains = [stock["turn_ms_median"][t] - summary[t]["total"] for t in turns]
        made.append((statistics.mean(gains), "`weiquan.ops.serve` validates the action server's answer with a compiled "
                     "validator (Rasa re-checked its response schema against the 2020-12 meta-schema on every call): "
                     + ", ".join(f"{t} {stock['turn_ms_median'][t]:.0f} → {summary[t]['total']:.0f} ms"
                                 for t in turns)))
    if other:
        # Only turns that call an action other than validate_* differ (validate_* always gets the domain).
        affected = [t for t in turns if any(k.startswith("action:") and not k.startswith("action:validate_")
                                            for k in summary[t]["items"])] or turns
        gain = statistics.mean(other[t]["total"] - summary[t]["total"] for t in affected)
        made.append((gain, "`enable_selective_domain: true` on the action endpoint (endpoints.yml, "
                     "endpoints.production.yml): the domain goes only to `validate_complaint_form`, which reads it. "
                     f"Measured on the turns that call other actions ({', '.join(affected)}): "
                     + ", ".join(f"{t} {other[t]['total']:.0f} → {summary[t]['total']:.0f} ms" for t in affected)
                     + "; the other turns send the same bytes either way (their difference is noise)"))
    for rank, (gain, text) in enumerate(sorted(made, reverse=True), 1):
        headline = (f"{-gain:+.0f} ms per affected turn on average" if abs(gain) >= 3 else
                    "no time gain measurable in this run (within ±3 ms); fewer bytes on the wire")
        lines.append(f"{rank}. **{headline}.** {text}.")
    lines.append(f"{len(made) + 1}. Start-up, not per turn: `weiquan.ops.serve` loads DIET without tracing its "
                 "training step (see reports/load.md for the start-up times before and after).")
    lines += ["", "Made in the dialogue (their effect is in every figure above, so this run cannot time them):", "",
              "1. **One action call fewer per ruling**: `action_assess_complaint` returns the form's reset with the "
              "ruling (the rule \"the form is complete, rule on it\" no longer calls `action_reset_complaint`; only "
              f"the stop rule does). t2 and t4 show {ruling_calls} action call(s) after the form.",
              "2. **`validate_complaint_form` without the domain** (`send_domain: false` in domain.yml; the form reads "
              f"its questions from domain.yml once): the domain column above is {domain_bytes:,} bytes of the "
              f"{sent_bytes:,} sent in the first form call.",
              "", "Left:", "",
              f"1. **Tracker store writes**: saving the turn costs {', '.join(f'{v:.1f}' for v in saves)} ms (SQLite "
              f"commit). Both bots pay it in `make run`; in run-production PostgreSQL takes it. Not a dialogue cut.",
              "2. The payload grows with the conversation (Rasa sends the whole tracker, `EventVerbosity.ALL`): the "
              "last form call of a second complaint in one session sends several times the first. Nothing to set in "
              "3.6; fewer action calls per turn is what helps.", ""]
    return lines


def machine_load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min) / {five:.1f} (5 min) on {os.cpu_count()} CPUs"


def wait_http(url: str, proc: subprocess.Popen, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"action server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(url)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--serve-actions", nargs=2, metavar=("PORT", "TIMINGS"))
    parser.add_argument("--report", default=str(REPORT))
    parser.add_argument("--quick", action="store_true", help="only the configuration `make run` serves")
    options = parser.parse_args()
    if options.serve_actions:
        serve_actions(int(options.serve_actions[0]), options.serve_actions[1])
        return 0
    if not MODEL.is_file():
        print("no model: run `make train` first", file=sys.stderr)
        return 1
    from weiquan.ops.harness import free_port

    workdir = Path(tempfile.mkdtemp(prefix="profile-"))
    port = free_port()
    timings = workdir / "sdk.jsonl"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SANIC_HOST": "127.0.0.1"}
    server = subprocess.Popen([sys.executable, __file__, "--serve-actions", str(port), str(timings)], cwd=ROOT,
                              env=env, stdout=open(workdir / "actions.log", "wb"),  # noqa: SIM115
                              stderr=subprocess.STDOUT)
    try:
        wait_http(f"http://127.0.0.1:{port}/health", server)
        configs = ["ops"] if options.quick else list(CONFIGS)
        recorders = {name: Recorder() for name in configs}
        instrument()
        url = f"http://127.0.0.1:{port}/webhook"
        results = asyncio.run(profile(url, options.repeat, options.warmup, configs, recorders, workdir))
        sdk_all = [json.loads(line) for line in timings.read_text(encoding="utf-8").splitlines() if line]
        summaries = {}
        for name, (totals, _replies) in results.items():
            senders = {t["sender"] for run in totals for t in run}
            sdk = [r for r in sdk_all if r.get("sender") in senders]
            summaries[name] = summarise(recorders[name].rows, totals, sdk, options.repeat)
        main_summary, replies = summaries["ops"], results["ops"][1]
        stock = summaries.get("stock")
        stock_figures = {"turn_ms_median": {t: stock[t]["total"] for t in stock if t.startswith("t")}} if stock \
            else None
        report = write_report(main_summary, replies, options.repeat, options.warmup, summaries.get("no_selective"),
                              machine_load(), stock_figures)
        Path(options.report).write_text(report, encoding="utf-8")
        print(report)
        print(json.dumps({name: {t: round(summary[t]["total"], 1) for t in ("t1", "t2", "t3", "t4")}
                          for name, summary in summaries.items()}))
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
