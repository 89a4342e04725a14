"""`make perf-guard` (part of `make test`): fails when a complaint turn has become much slower than a stock Rasa turn.

A short side-by-side run with bench/load.py's machinery: our bot (as `make run` serves it, with its action server)
and Rasa's own moodbot (`rasa init`, build/moodbot) are started together; one closed-loop user per bot plays its
4-turn conversation (ours: the complaint of reports/load.md; the moodbot's: greet → sad → yes → bye) in slices that
alternate between the bots (moodbot, ours, ours, moodbot, …), so that whatever else the machine is doing falls on
both alike. The guard compares the median turn latencies: ours may be at most LIMIT (1.5) times the moodbot's.

Why a ratio and not milliseconds: CI machines differ, and the moodbot measured in the same minutes on the same cores
is the yardstick. Why the median: one slow turn on a shared machine moves the p95 a lot and the p50 hardly. What it
catches: a turn that became twice as slow (a policy put back in, a component doing work per message, a blocking
call). What it cannot: differences under ~30 % (the moodbot itself moves that much between runs here), or anything
only concurrency shows (`make bench-load` measures that and writes reports/load.md).

Prints the figures and a last JSON line; writes build/perf-guard.md (not a report of record: it is measured in a
few seconds on whatever the CI machine is doing). Exit status 1 when the ratio is over the limit.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from bench.load import MOOD, MOODBOT_DIR, OUR_MODEL, OURS, ROOT, Server, interleaved_levels, log, moodbot_model
from bench.provenance import stamp

LIMIT = 1.5
OUT = ROOT / "build" / "perf-guard.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=16.0, help="measuring time per bot, split into slices")
    parser.add_argument("--slices", type=int, default=8, help="alternating slices per bot")
    parser.add_argument("--limit", type=float, default=LIMIT, help="the highest p50 ratio (ours / moodbot) allowed")
    options = parser.parse_args(argv)
    if not OUR_MODEL.is_file():
        print("no model: run `make train` first", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="perf-guard-"))
    servers = {
        "moodbot": (Server("moodbot", moodbot_model(), MOODBOT_DIR, str(MOODBOT_DIR / "credentials.yml"), workdir,
                           False), MOOD),
        "ours": (Server("ours", OUR_MODEL, ROOT, "credentials.yml", workdir, True), OURS),
    }
    load_before = f"{os.getloadavg()[0]:.1f}"
    try:
        for server, _ in servers.values():
            server.start()
        rows = interleaved_levels(servers, [1], options.seconds, options.slices)
    finally:
        for server, _ in servers.values():
            server.stop()
    ours, mood = (next(r for r in rows if r["bot"] == name) for name in ("ours", "moodbot"))
    problems = [f"{row['bot']}: {row['errors']} errors {row['error_kinds']}" for row in (ours, mood) if row["errors"]]
    if not ours["turns"] or not mood["turns"]:
        problems.append("no turn was answered")
    ratio = round(ours["p50_ms"] / mood["p50_ms"], 2) if mood["turns"] and ours["turns"] else float("inf")
    verdict = "ok" if ratio <= options.limit and not problems else "FAILED"
    lines = [
        "# Performance guard (make perf-guard)",
        "",
        f"{stamp()}; load average {load_before} (1 min) when it started, {os.cpu_count()} CPUs. "
        f"{options.seconds:g} s per bot in {options.slices} alternating slices, one closed-loop user each.",
        "",
        "| bot | turns | p50 ms | p95 ms |",
        "|---|---|---|---|",
        *(f"| {r['bot']} | {r['turns']} | {r['p50_ms']} | {r['p95_ms']} |" for r in (ours, mood)),
        "",
        f"Complaint turn p50 / moodbot turn p50 = {ratio}× (limit {options.limit}×): {verdict}."
        + (" " + "; ".join(problems) if problems else ""),
    ]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    print(json.dumps({"p50_ratio": ratio, "limit": options.limit, "ours_p50_ms": ours["p50_ms"],
                      "moodbot_p50_ms": mood["p50_ms"], "ok": verdict == "ok"}))
    if verdict != "ok":
        log(f"perf-guard: {verdict} — a complaint turn's median is {ratio}× the moodbot's (limit {options.limit}×)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
