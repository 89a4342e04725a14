"""`make bench-load`: our bot and Rasa's own `rasa init` moodbot under the same load, in one run → reports/load.md.

- Both single servers are started the same way from this venv, the way `make run` starts ours:
  `python -m weiquan.ops.serve run -m MODEL -i 127.0.0.1 --port P` (`rasa run` plus two start-up patches that change
  no behaviour, weiquan/ops/serve.py) with the REST channel and a SQLite tracker store in a temporary folder (ours:
  the project's masking store `make run` uses; the moodbot: Rasa's SQL store), no lock store (in memory).
  Ours also has its action server (as in `make run`); the moodbot needs none.
- The moodbot is created with `rasa init --no-prompt` under build/moodbot the first time (which trains it); its model is
  kept there, so later runs skip that.
- Load: closed-loop aiohttp users (bench/load_client.py), each playing its bot's 4-turn conversation again and
  again with a fresh sender: ours is the complaint conversation of reports/profile.md, the moodbot's is
  greet → sad → yes → bye.
  All users share one address, so the bench lifts our per-address rate limit (LIMIT_RATE_PER_ADDRESS).
  Concurrency 1, 10, 20 and 50, DURATION seconds per bot and level, after one warm-up conversation. Both servers
  run at once and each level alternates between the bots in SLICES slices (moodbot, ours, ours, moodbot, …): the
  machine is shared with other work, and alternating puts its changing load on both bots alike.
- Our bot a second time with the analytics event broker `make run` configures (endpoints.yml: MaskingSQLBroker on
  SQLite, weiquan/analytics/broker.py), in the same alternating slices: the broker's cost to a turn (issue 17: ≤ 1.1×).
- Then `make run-production` (scripts/run_all.py --production: HAProxy, REPLICAS Rasa replicas, 2 action servers,
  PostgreSQL, Redis) on free ports, loaded through HAProxy at c=20: the production target.

Prints a JSON line last; writes reports/load.md and reports/load_latency.png.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.load_client import LevelResult, rss_mb, run_level
from bench.provenance import stamp
from weiquan.ops.harness import free_port

ROOT = Path(__file__).resolve().parent.parent

BIN = Path(sys.executable).parent
RASA = str(BIN / "rasa")
MOODBOT_DIR = ROOT / "build" / "moodbot"
OUR_MODEL = ROOT / "models" / "weiquan.tar.gz"
REPORT = ROOT / "reports" / "load.md"
PLOT = ROOT / "reports" / "load_latency.png"
OURS = ["淘宝买的，交易成功5天了，卖家天天打电话骂我", "有聊天截图",
        "淘宝买的另一单，交易成功20天了，卖家天天发短信骂我", "有短信截图"]
MOOD = ["hello", "I am sad", "yes", "bye"]
# Our REST channel serves only the bearer of REST_TOKEN in production (docs/security.md); the bench sends it like the
# site's backend does, to every server (the moodbot's stock REST channel ignores it).
REST_TOKEN = f"bench-rest-token-{os.getpid()}-0123456789"
BROKER_BOT = "ours + analytics broker"
BROKER_TARGET = 1.1  # issue 17: a turn with the broker on costs at most 1.1x the turn without it


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2", "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
            "WECHAT_TOKEN": "", "WECHAT_APP_ID": "", "WECHAT_AES_KEY": "", "WECHAT_APP_SECRET": "",
            "WIDGET_ALLOWED_ORIGINS": "http://127.0.0.1:1", "SANIC_HOST": "127.0.0.1", "REST_TOKEN": REST_TOKEN,
            # Every virtual user comes from 127.0.0.1: lift the per-address rate limit (weiquan/edge/limits.py) for the
            # bench. The per-conversation limit stays; each conversation here is 4 messages.
            "LIMIT_RATE_PER_ADDRESS": "1000000/60"}


def log(message: str) -> None:
    print(f"[bench-load {time.strftime('%H:%M:%S')}] {message}", flush=True)


def wait_http(url: str, proc: subprocess.Popen, timeout_s: float = 600) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return time.monotonic() - start
        except OSError:
            time.sleep(1)
    raise TimeoutError(url)


def moodbot_model() -> Path:
    models = sorted((MOODBOT_DIR / "models").glob("*.tar.gz")) if MOODBOT_DIR.exists() else []
    if models:
        return models[-1]
    log("creating Rasa's moodbot with `rasa init --no-prompt` in build/moodbot (trains it once, ~2 min) …")
    if MOODBOT_DIR.exists():
        shutil.rmtree(MOODBOT_DIR)
    MOODBOT_DIR.mkdir(parents=True)  # rasa init refuses a folder that does not exist yet
    subprocess.run([RASA, "init", "--no-prompt", "--init-dir", str(MOODBOT_DIR)], cwd=MOODBOT_DIR.parent, env=env(),
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    models = sorted((MOODBOT_DIR / "models").glob("*.tar.gz"))
    if not models:
        raise RuntimeError("rasa init did not leave a model in build/moodbot/models")
    return models[-1]


class Server:
    """One bot served like `make run` serves ours: rasa run + REST + SQLite, and its action server if any."""

    def __init__(self, name: str, model: Path, cwd: Path, credentials: str, workdir: Path, actions: bool,
                 launcher: tuple[str, ...] = (sys.executable, "-m", "weiquan.ops.serve"), broker: bool = False) -> None:
        self.name, self.model, self.cwd, self.workdir = name, model, cwd, workdir
        self.port = free_port()
        self.action_port = free_port() if actions else None
        self.procs: list[subprocess.Popen] = []
        endpoints = workdir / f"{name}-endpoints.yml"
        # Ours with the tracker store `make run` uses (endpoints.yml: masking, outage-proof); the moodbot with Rasa's.
        store = "weiquan.stores.tracker_store.PrivateSQLTrackerStore" if actions else "SQL"
        text = f"tracker_store:\n  type: {store}\n  dialect: sqlite\n  db: {workdir / (name + '-tracker.db')}\n"
        if broker:  # as endpoints.yml has it for `make run`
            text += f"event_broker:\n  type: weiquan.analytics.broker.MaskingSQLBroker\n" \
                    f"  db: {workdir / (name + '-analytics.db')}\n"
        if actions:
            text = f"action_endpoint:\n  url: http://127.0.0.1:{self.action_port}/webhook\n" \
                   f"  enable_selective_domain: true\n" + text
        endpoints.write_text(text, encoding="utf-8")
        self.args = [*launcher, "run", "-m", str(model), "-i", "127.0.0.1",
                     "--port", str(self.port), "--credentials", credentials, "--endpoints", str(endpoints)]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhooks/rest/webhook"

    def _spawn(self, args: list[str], log_name: str) -> subprocess.Popen:
        proc = subprocess.Popen(args, cwd=self.cwd, env=env(), stdout=open(self.workdir / log_name, "wb"),  # noqa: SIM115
                                stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(proc)
        return proc

    def start(self) -> float:
        if self.action_port:
            actions = self._spawn([RASA, "run", "actions", "--port", str(self.action_port)], f"{self.name}-actions.log")
            wait_http(f"http://127.0.0.1:{self.action_port}/health", actions)
        self.rasa = self._spawn(self.args, f"{self.name}-rasa.log")
        took = wait_http(f"http://127.0.0.1:{self.port}/webhooks/rest/", self.rasa)
        log(f"{self.name}: Rasa server ready after {took:.0f} s")
        return took

    def rss(self) -> dict[str, float]:
        figures = {"rasa_mb": rss_mb(self.rasa.pid)}
        if self.action_port:
            figures["actions_mb"] = rss_mb(self.procs[0].pid)
        return figures

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def cpu_seconds(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
        except OSError:
            continue
    return total


def load_levels(name: str, url: str, conversation: list[str], levels: list[int], duration: float,
                rss: Any = None, pids: list[int] | None = None) -> list[dict[str, Any]]:
    rows = []
    for concurrency in levels:
        before = cpu_seconds(pids or [])
        result: LevelResult = asyncio.run(run_level(url, conversation, concurrency, duration, prefix=f"bench-{name}",
                                                    token=REST_TOKEN))
        used = cpu_seconds(pids or []) - before  # includes the warm-up conversation: a small overestimate
        row = {"bot": name, **result.as_dict(), **(rss() if rss else {}),
               "latencies_ms": [round(v, 1) for v in result.latencies_ms]}
        if pids:
            row["cpu_ms_per_turn"] = round(used * 1000 / max(1, result.turns), 1)
        log(f"{name} c={concurrency}: {row['turns_per_s']} turns/s, p50 {row['p50_ms']} ms, p95 {row['p95_ms']} ms, "
            f"p99 {row['p99_ms']} ms, errors {row['errors']}")
        rows.append(row)
    return rows


def interleaved_levels(servers: dict[str, tuple[Server, list[str]]], levels: list[int], duration: float,
                       slices: int) -> list[dict[str, Any]]:
    """Both servers up at once; each level is run in `slices` alternating slices per bot (moodbot, ours, moodbot, …),
    so that the load other work puts on this shared machine falls on both bots alike."""
    rows = []
    for concurrency in levels:
        merged: dict[str, LevelResult] = {}
        cpu: dict[str, float] = {}
        for index in range(slices):
            order = list(servers) if index % 2 == 0 else list(reversed(servers))
            for name in order:
                server, conversation = servers[name]
                pids = [proc.pid for proc in server.procs]
                before = cpu_seconds(pids)
                part = asyncio.run(run_level(server.url, conversation, concurrency, duration / slices,
                                             prefix=f"bench-{name}", warmup_conversations=1 if index == 0 else 0,
                                             token=REST_TOKEN))
                cpu[name] = cpu.get(name, 0.0) + cpu_seconds(pids) - before
                whole = merged.setdefault(name, LevelResult(concurrency, 0.0))
                whole.latencies_ms += part.latencies_ms
                whole.duration_s += part.duration_s
                whole.errors += part.errors
                whole.conversations += part.conversations
                for kind, count in part.error_kinds.items():
                    whole.error_kinds[kind] = whole.error_kinds.get(kind, 0) + count
        for name in servers:
            result = merged[name]
            server = servers[name][0]
            row = {"bot": name, **result.as_dict(), **server.rss(),
                   "cpu_ms_per_turn": round(cpu[name] * 1000 / max(1, result.turns), 1),
                   "latencies_ms": [round(v, 1) for v in result.latencies_ms]}
            log(f"{name} c={concurrency}: {row['turns_per_s']} turns/s, p50 {row['p50_ms']} ms, p95 {row['p95_ms']} ms"
                f", p99 {row['p99_ms']} ms, errors {row['errors']}, CPU {row['cpu_ms_per_turn']} ms/turn")
            rows.append(row)
    return rows


class ProductionTarget:
    """run-production seen by interleaved_levels: its public REST URL, the replicas' pids and RSS."""

    def __init__(self, url: str, pids: list[int]) -> None:
        self.url = url
        self.procs = [type("P", (), {"pid": pid})() for pid in pids]
        self.pids = pids

    def rss(self) -> dict[str, float]:
        return {"rasa_mb": round(sum(rss_mb(p) for p in self.pids), 1)}


def production(duration: float, replicas: int, workdir: Path, partner: Server | None = None,
               slices: int = 4) -> list[dict[str, Any]]:
    """`make run-production` on free ports, loaded through HAProxy at c=20 — in alternating slices with the moodbot
    at c=20 when `partner` (the moodbot's server, still up) is given."""
    ports = {"public": free_port(), "actions": free_port(), "widget": free_port(), "ready": free_port(),
             "console": free_port(), "admin": free_port()}
    replica_base = free_block(replicas)
    action_base = free_block(2)
    db_name = f"weiquan_bench_{os.getpid()}"
    args = [sys.executable, "scripts/run_all.py", "--production", "--replicas", str(replicas), "--rasa-port",
            str(ports["public"]), "--action-port", str(ports["actions"]), "--widget-port", str(ports["widget"]),
            "--replica-base", str(replica_base), "--action-base", str(action_base), "--ready-port",
            str(ports["ready"]), "--console-port", str(ports["console"]), "--admin-port", str(ports["admin"]),
            "--public-host", "127.0.0.1",
            "--build-dir", str(workdir / "build"), "--log-dir", str(workdir / "production-logs"), "--db-name",
            db_name, "--redis-db", "8"]
    out = open(workdir / "production.out", "wb")  # noqa: SIM115
    proc = subprocess.Popen(args, cwd=ROOT, env=env(), stdout=out, stderr=subprocess.STDOUT)
    try:
        start = time.monotonic()
        while "Ctrl-C stops everything" not in (workdir / "production.out").read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() - start > 900:
                raise RuntimeError("run-production did not come up: " + (workdir / "production.out").read_text())
            time.sleep(1)
        log(f"run-production ({replicas} replicas) ready after {time.monotonic() - start:.0f} s")
        url = f"http://127.0.0.1:{ports['public']}/webhooks/rest/webhook"
        target = ProductionTarget(url, replica_pids(proc.pid))
        servers: dict[str, tuple[Any, list[str]]] = {"production": (target, OURS)}
        if partner is not None:
            servers = {"moodbot alongside": (partner, MOOD), **servers}
        before = cpu_by_kind(proc.pid)
        rows = interleaved_levels(servers, [20], duration, slices if partner is not None else 1)
        after = cpu_by_kind(proc.pid)
        row = next(r for r in rows if r["bot"] == "production")
        row["replicas"] = replicas
        turns = max(1, row["turns"])
        row["cpu_ms_per_turn"] = {kind: round((after.get(kind, 0) - before.get(kind, 0)) * 1000 / turns, 1)
                                  for kind in after}
        return rows
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            proc.kill()
        drop_database(db_name)


def cpu_by_kind(supervisor: int) -> dict[str, float]:
    """CPU seconds used so far by the supervised processes (by kind) and by PostgreSQL and Redis (whole servers)."""
    ticks = os.sysconf("SC_CLK_TCK")
    totals: dict[str, float] = {}

    def add(kind: str, pid: str) -> None:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return
        totals[kind] = totals.get(kind, 0.0) + (int(fields[11]) + int(fields[12])) / ticks

    children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    for pid in children:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        kind = ("console's Rasa API" if "--enable-api" in cmdline else "rasa replicas" if "weiquan.ops.serve" in cmdline
                else "action servers" if "actions" in cmdline else "haproxy" if "haproxy" in cmdline
                else "console" if "weiquan.handoff.console" in cmdline else "widget")
        add(kind, pid)
        for grandchild in Path(f"/proc/{pid}/task/{pid}/children").read_text().split() \
                if Path(f"/proc/{pid}/task/{pid}/children").exists() else []:
            add(kind, grandchild)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                name = (entry / "comm").read_text().strip()
            except OSError:
                continue
            if name.startswith(("postgres", "redis-server")):
                add("postgresql" if name.startswith("postgres") else "redis", entry.name)
    return totals


def replica_pids(supervisor: int) -> list[int]:
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    found = []
    for pid in children:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            if "weiquan.ops.serve" in cmdline and "--enable-api" not in cmdline:  # the replicas, not rasa-admin
                found.append(int(pid))
        except OSError:
            continue
    return found


def free_block(count: int) -> int:
    """A first port such that `count` consecutive ports are free."""
    from weiquan.ops.supervisor import port_is_free

    for _ in range(200):
        base = free_port()
        if all(port_is_free(base + i) for i in range(count)):
            return base
    raise RuntimeError("no free block of ports")


def drop_database(name: str) -> None:
    import psycopg2

    try:
        admin = psycopg2.connect(host="127.0.0.1", user="postgres", dbname="postgres")
        admin.autocommit = True
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
    except psycopg2.Error:
        pass


def ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.2f}×" if theirs else "n/a"


def plot(rows: list[dict[str, Any]], target: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for bot, colour in (("moodbot", "#888888"), ("ours", "#d9480f"), (BROKER_BOT, "#2b8a3e")):
        mine = [r for r in rows if r["bot"] == bot]
        levels = [r["c"] for r in mine]
        for key, style in (("p50_ms", "-o"), ("p95_ms", "--s"), ("p99_ms", ":^")):
            left.plot(levels, [r[key] for r in mine], style, color=colour, label=f"{bot} {key[:3]}")
        right.plot(levels, [r["turns_per_s"] for r in mine], "-o", color=colour, label=bot)
    alongside = [r for r in rows if r["bot"] == "moodbot alongside"]
    if alongside:
        right.plot([r["c"] for r in alongside], [r["turns_per_s"] for r in alongside], "*", markersize=12,
                   color="#888888", label="moodbot, in slices alternating with run-production")
    prod = [r for r in rows if r["bot"] == "production"]
    if prod:
        right.plot([r["c"] for r in prod], [r["turns_per_s"] for r in prod], "*", markersize=14, color="#1971c2",
                   label=f"ours, run-production ({prod[0].get('replicas', 2)} replicas)")
    left.set_xscale("log")
    left.set_yscale("log")
    left.set_xlabel("concurrent users (closed loop)")
    left.set_ylabel("turn latency, ms")
    left.set_title("Turn latency")
    left.legend(fontsize=7, ncol=2)
    right.set_xscale("log")
    right.set_xlabel("concurrent users (closed loop)")
    right.set_ylabel("turns per second")
    right.set_title("Throughput")
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(target, dpi=110)


def report(rows: list[dict[str, Any]], starts: dict[str, float], load_before: str, load_after: str,
           duration: float) -> tuple[str, dict[str, Any]]:
    def find(bot: str, c: int) -> dict[str, Any] | None:
        return next((r for r in rows if r["bot"] == bot and r["c"] == c), None)

    def get(bot: str, c: int) -> dict[str, Any]:
        row = find(bot, c)
        if row is None:
            raise ValueError(f"the run has no {bot} row at c={c}")
        return row

    ours1, mood1 = get("ours", 1), get("moodbot", 1)
    broker1 = find(BROKER_BOT, 1)
    prod = find("production", 20)
    mood20 = find("moodbot alongside", 20) or get("moodbot", 20)
    targets = {
        "c1_p50_ratio": round(ours1["p50_ms"] / mood1["p50_ms"], 2),
        "c1_p95_ratio": round(ours1["p95_ms"] / mood1["p95_ms"], 2),
        "production_c20_throughput_ratio": round(prod["turns_per_s"] / mood20["turns_per_s"], 2) if prod else None,
        "production_c20_errors": prod["errors"] if prod else None,
        "broker_c1_p50_ratio": round(broker1["p50_ms"] / ours1["p50_ms"], 2) if broker1 else None,
    }
    verdict = {
        "c1_p50": targets["c1_p50_ratio"] <= 1.0,
        "c1_p95": targets["c1_p95_ratio"] <= 1.5,
        "broker_c1_p50": broker1 is not None and targets["broker_c1_p50_ratio"] <= BROKER_TARGET,
        "production_c20": prod is not None and targets["production_c20_throughput_ratio"] >= 1.7
        and prod["errors"] == 0,
    }
    lines = [
        "# Load: our bot vs Rasa's moodbot, and run-production",
        "",
        "Written by `bench/load.py` (`make bench-load`); every figure below comes from one run "
        f"({stamp()}). Machine: {os.cpu_count()} CPUs shared with other work; load average "
        f"{load_before} before the run and {load_after} after it.",
        "",
        "How: both bots served the same way from the same venv (`python -m weiquan.ops.serve run -m MODEL -i "
        "127.0.0.1` as `make run` does, REST channel, SQLite "
        "tracker store in a temporary folder (ours: the project's masking store, as in endpoints.yml; the moodbot: "
        "Rasa's), in-memory lock store; ours with its action server, "
        "`enable_selective_domain: true` as in endpoints.yml; our per-address rate limit lifted, since every "
        "virtual user comes from 127.0.0.1). Closed-loop aiohttp users (`bench/load_client.py`): each "
        "plays its bot's 4-turn conversation again and again with a fresh sender — ours: "
        + " → ".join(f"「{t}」" for t in OURS) + "; moodbot: " + " → ".join(f"“{t}”" for t in MOOD) + ". "
        f"{duration:.0f} s per bot and level after one warm-up conversation, run as alternating slices (moodbot, ours, "
        "ours, moodbot, …) with both servers up, so that the shared machine's changing load falls on both alike; a "
        "turn is one POST answered with a non-empty list. Ours runs twice in the same slices: without an event "
        f"broker, and as `make run` serves it, with the analytics broker (\"{BROKER_BOT}\"; SQLite).",
        "",
        "## Targets",
        "",
        "| target | ours | moodbot | ratio | met |",
        "|---|---|---|---|---|",
        f"| c=1 p50 turn latency ≤ 1.0× | {ours1['p50_ms']} ms | {mood1['p50_ms']} ms | {targets['c1_p50_ratio']}× | "
        f"{'yes' if verdict['c1_p50'] else 'no'} |",
        f"| c=1 p95 turn latency ≤ 1.5× | {ours1['p95_ms']} ms | {mood1['p95_ms']} ms | {targets['c1_p95_ratio']}× | "
        f"{'yes' if verdict['c1_p95'] else 'no'} |",
    ]
    if broker1:
        lines.append(
            f"| analytics broker on (make run's SQLite broker), c=1 p50 ≤ {BROKER_TARGET}× ours without it | "
            f"{broker1['p50_ms']} ms | ours without: {ours1['p50_ms']} ms | {targets['broker_c1_p50_ratio']}× | "
            f"{'yes' if verdict['broker_c1_p50'] else 'no'} |")
    if prod:
        lines.append(
            f"| run-production c=20 throughput ≥ 1.7×, 0 errors | {prod['turns_per_s']} turns/s, {prod['errors']} "
            f"errors ({prod.get('replicas')} replicas) | {mood20['turns_per_s']} turns/s (one server, measured in "
            f"slices alternating with run-production) | "
            f"{targets['production_c20_throughput_ratio']}× | {'yes' if verdict['production_c20'] else 'no'} |")
    if prod and prod.get("cpu_ms_per_turn") and mood20.get("cpu_ms_per_turn"):
        ours_cpu = sum(prod["cpu_ms_per_turn"].values())
        mood_cpu = mood20["cpu_ms_per_turn"]
        lines += ["", "Derived, not measured: with the CPU time per turn in the table below, 2 free cores would give "
                  f"run-production about {2000 / ours_cpu:.1f} turns/s (all its processes, {ours_cpu:.0f} ms per turn)"
                  f" and the single moodbot server about {1000 / mood_cpu:.1f} turns/s (its Python event loop keeps it "
                  f"to about one core; {mood_cpu:.0f} ms per turn): {(2000 / ours_cpu) / (1000 / mood_cpu):.2f}×."]
    lines += ["", "## Every level", "",
              "| bot | c | turns/s | p50 ms | p95 ms | p99 ms | errors | turns | CPU ms per turn | Rasa RSS MB | "
              "action server RSS MB | turns/s vs moodbot | p50 vs moodbot |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        mood = (find("moodbot alongside", row["c"]) or find("moodbot", row["c"])) if row["bot"] == "production" \
            else find("moodbot", row["c"])
        compare = row["bot"] in ("ours", "production", BROKER_BOT)
        vs_tps = ratio(row["turns_per_s"], mood["turns_per_s"]) if mood and compare else ""
        vs_p50 = ratio(row["p50_ms"], mood["p50_ms"]) if mood and compare else ""
        cpu = row.get("cpu_ms_per_turn", "")
        cpu = round(sum(cpu.values()), 1) if isinstance(cpu, dict) else cpu
        lines.append(f"| {row['bot']} | {row['c']} | {row['turns_per_s']} | {row['p50_ms']} | {row['p95_ms']} | "
                     f"{row['p99_ms']} | {row['errors']} | {row['turns']} | {cpu} | {row.get('rasa_mb', '')} | "
                     f"{row.get('actions_mb', '')} | {vs_tps} | {vs_p50} |")
    if prod and prod.get("cpu_ms_per_turn"):
        split = prod["cpu_ms_per_turn"]
        lines += ["", "run-production at c=20, CPU time per answered turn (from /proc; PostgreSQL and Redis are the "
                  "machine's whole servers, shared with other work): "
                  + ", ".join(f"{kind} {ms} ms" for kind, ms in sorted(split.items(), key=lambda kv: -kv[1]))
                  + f" — {sum(split.values()):.0f} ms in all."]
    lines += ["", "Rasa server start-up (ready on /webhooks/rest/): "
              + ", ".join(f"{name} {took:.0f} s" for name, took in starts.items()) + ".", "",
              "RSS is read from /proc after each level (the Rasa server; for run-production the sum of the replicas). "
              "CPU ms per turn: CPU time the bot's own processes used during the level (Rasa server and, for ours, "
              "the action server; for run-production every process of the shape plus the machine's PostgreSQL and "
              "Redis) divided by the turns answered — unlike turns/s it does not depend on how much CPU other work "
              "left us.",
              "", "![latency and throughput](load_latency.png)", ""]
    summary = {"targets": targets, "met": verdict,
               "levels": [{k: v for k, v in r.items() if k != "latencies_ms"} for r in rows]}
    return "\n".join(lines), summary


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per concurrency level")
    parser.add_argument("--levels", default="1,10,20,50")
    parser.add_argument("--slices", type=int, default=4, help="alternating slices per bot and level")
    parser.add_argument("--replicas", type=int, default=int(os.environ.get("REPLICAS", "2")))
    parser.add_argument("--no-production", action="store_true")
    parser.add_argument("--no-startup", action="store_true", help="skip timing a start with stock `rasa run`")
    parser.add_argument("--only-production", action="store_true", help="experiments: run-production alone")
    parser.add_argument("--report", default=str(REPORT))
    options = parser.parse_args()
    levels = [int(x) for x in options.levels.split(",")]
    if not OUR_MODEL.is_file():
        print("no model: run `make train` first", file=sys.stderr)
        return 1
    load_before = "{:.1f} / {:.1f} / {:.1f}".format(*os.getloadavg())
    workdir = Path(tempfile.mkdtemp(prefix="bench-load-"))
    rows: list[dict[str, Any]] = []
    starts: dict[str, float] = {}
    if options.only_production:
        for row in production(options.duration, options.replicas, workdir):
            print(json.dumps({k: v for k, v in row.items() if k != "latencies_ms"}))
        return 0
    mood_model = moodbot_model()
    servers = {
        "moodbot": (Server("moodbot", mood_model, MOODBOT_DIR, str(MOODBOT_DIR / "credentials.yml"), workdir, False),
                    MOOD),
        "ours": (Server("ours", OUR_MODEL, ROOT, "credentials.yml", workdir, True), OURS),
        BROKER_BOT: (Server("ours-broker", OUR_MODEL, ROOT, "credentials.yml", workdir, True, broker=True), OURS),
    }
    try:
        for name, (server, _) in servers.items():
            starts[name] = server.start()
        rows += interleaved_levels(servers, levels, options.duration, options.slices)
        servers["ours"][0].stop()
        servers[BROKER_BOT][0].stop()
        if not options.no_startup:
            # Item 8 of issue 10: the same server started by stock `rasa run` (before) — only the time to answer.
            stock = Server("stock", OUR_MODEL, ROOT, "credentials.yml", workdir, True, launcher=(RASA,))
            try:
                starts["ours with stock `rasa run`"] = stock.start()
            finally:
                stock.stop()
        if not options.no_production:
            rows += production(options.duration, options.replicas, workdir, partner=servers["moodbot"][0],
                               slices=options.slices)
    finally:
        for server, _ in servers.values():
            server.stop()
    load_after = "{:.1f} / {:.1f} / {:.1f}".format(*os.getloadavg())
    text, summary = report(rows, starts, load_before, load_after, options.duration)
    Path(options.report).write_text(text, encoding="utf-8")
    plot(rows, Path(options.report).with_name(PLOT.name))
    print(text)
    print(json.dumps(summary, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
