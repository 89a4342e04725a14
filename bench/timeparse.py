"""Benchmark weiquan.core.timeparse against cn2an (+ a minimal regex) and jionlp on the test table.

    .venv/bin/python bench/timeparse.py [--jionlp-venv /tmp/jionlp-venv] [--install-jionlp]

Prints figures, writes reports/timeparse.md and prints a JSON summary as its last line.

jionlp is heavy, so it is never installed into the project's venv: it is run in a throwaway venv under /tmp, in a
subprocess, fed the same table as JSON. --install-jionlp creates that venv (needs the package registry); without it,
an existing venv is used or jionlp is skipped.

Scores: "strict" = same status and, for "ok", exactly the expected earliest/latest dates; "overlap" = same status and,
for "ok", the two date ranges overlap (fair to parsers that give only a nominal date for vague words). jionlp and the
cn2an baseline cannot say "unknown"/"nonsense", so those rows count against them; that is the point of the comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from bench.timeparse_cases import CASES, HELD_OUT, Case
from weiquan.core.timeparse import (
    FUTURE,
    MAX_YEARS_BACK,
    OK,
    TOO_OLD,
    add_months,
    parse_success_time,
)
from weiquan.nlu.textnorm import normalize_text

ROOT = Path(__file__).resolve().parents[1]

REPORT = ROOT / "reports" / "timeparse.md"
ALL = CASES + HELD_OUT
PYCACHE = Path(tempfile.gettempdir()) / "bench_timeparse_pycache"
IMPORT_RUNS = 5


@dataclass(frozen=True)
class Outcome:
    status: str | None
    earliest: date | None = None
    latest: date | None = None


# ---------------------------------------------------------------------------------------------------------------
# Scoring


def expected(case: Case) -> Outcome:
    if case.status != OK or case.ago is None:
        return Outcome(case.status)
    return Outcome(OK, case.today - timedelta(days=case.ago[0]), case.today - timedelta(days=case.ago[1]))


def strict_hit(case: Case, got: Outcome) -> bool:
    return got == expected(case)


def overlap_hit(case: Case, got: Outcome) -> bool:
    want = expected(case)
    if got.status != want.status:
        return False
    if want.status != OK:
        return True
    assert want.earliest and want.latest and got.earliest and got.latest
    return got.earliest <= want.latest and want.earliest <= got.latest


def within_reach(earliest: date, latest: date, today: date) -> Outcome:
    """The same future / too-old policy for every parser, so only the reading itself is compared."""
    if earliest > today:
        return Outcome(FUTURE)
    horizon = add_months(today, -12 * MAX_YEARS_BACK)
    if latest < horizon:
        return Outcome(TOO_OLD)
    return Outcome(OK, max(earliest, horizon), min(latest, today))


def score(cases: list[Case], outcomes: list[Outcome]) -> dict:
    pairs = list(zip(cases, outcomes, strict=True))
    strict = sum(strict_hit(c, o) for c, o in pairs)
    overlap = sum(overlap_hit(c, o) for c, o in pairs)
    return {
        "rows": len(cases),
        "strict": strict,
        "overlap": overlap,
        "strict_pct": round(100 * strict / len(cases), 1),
        "overlap_pct": round(100 * overlap / len(cases), 1),
        "false_positives": sum(c.status is None and o.status is not None for c, o in pairs),
        "negative_rows": sum(c.status is None for c in cases),
    }


def scores(outcomes: list[Outcome]) -> dict:
    """Outcomes cover ALL (the test table, then the held-out table)."""
    return {"table": score(CASES, outcomes[: len(CASES)]), "held_out": score(HELD_OUT, outcomes[len(CASES) :])}


# ---------------------------------------------------------------------------------------------------------------
# Our parser


def ours(case: Case) -> Outcome:
    # As in the bot: the NLU normalises the text (script, width) before the parser reads it.
    reading = parse_success_time(normalize_text(case.text), case.today)
    if reading is None:
        return Outcome(None)
    return Outcome(reading.status, reading.earliest, reading.latest)


def per_call_us(parse: Callable[[Case], object], rounds: int = 20) -> float:
    started = time.perf_counter()
    for _ in range(rounds):
        for case in ALL:
            parse(case)
    return round((time.perf_counter() - started) / (rounds * len(ALL)) * 1e6, 1)


# ---------------------------------------------------------------------------------------------------------------
# cn2an + the smallest regex one would write on top of it


def cn2an_baseline() -> Callable[[Case], Outcome]:
    import re

    import cn2an

    pattern = re.compile(r"(\d+)\s*(天|周|星期|个月|年)")
    days_in = {"天": 1, "周": 7, "星期": 7}

    def parse(case: Case) -> Outcome:
        try:
            text = cn2an.transform(case.text, "cn2an")
        except Exception:  # cn2an raises on some inputs (e.g. 十几); count as "nothing found"
            return Outcome(None)
        m = pattern.search(text)
        if not m:
            return Outcome(None)
        count, unit = int(m[1]), m[2]
        if unit in days_in:
            day = case.today - timedelta(days=count * days_in[unit])
        else:
            months = count * (12 if unit == "年" else 1)
            if months > 12 * 100:
                return Outcome(TOO_OLD)
            day = add_months(case.today, -months)
        return within_reach(day, day, case.today)

    return parse


# ---------------------------------------------------------------------------------------------------------------
# jionlp, in its own venv

JIONLP_CHILD = r"""
import json, sys, time
started = time.perf_counter()
import jionlp as jio
import_seconds = time.perf_counter() - started
rows = json.load(sys.stdin)
out = []
started = time.perf_counter()
for row in rows:
    y, m, d = map(int, row["today"].split("-"))
    base = time.mktime((y, m, d, 12, 0, 0, 0, 0, -1))
    try:
        ents = jio.ner.extract_time(row["text"], time_base=base, with_parsing=True)
        out.append(ents[0]["detail"] if ents else None)
    except Exception as e:
        out.append({"error": type(e).__name__})
per_call = (time.perf_counter() - started) / max(len(rows), 1)
print("RESULT:" + json.dumps({"import_seconds": import_seconds, "per_call_seconds": per_call, "details": out},
                             ensure_ascii=False))
"""


def jionlp_outcome(case: Case, detail: dict | None) -> Outcome:
    if not detail or "error" in detail:
        return Outcome(None)
    kind, value = detail.get("type"), detail.get("time")
    if kind in ("time_point", "time_span") and isinstance(value, list):
        first = _jionlp_date(value[0], add_months(case.today, -12 * MAX_YEARS_BACK))
        last = _jionlp_date(value[-1], case.today)
        return within_reach(first, last, case.today)
    if kind == "time_delta" and isinstance(value, dict):
        return _delta_outcome(case.today, value)
    return Outcome(None)


def _jionlp_date(value: str, open_end: date) -> date:
    """jionlp writes open ends as "-inf" / "inf"."""
    if "inf" in value:
        return open_end
    return datetime.strptime(value, "%Y-%m-%d %H:%M:%S").date()


def _delta_outcome(today: date, delta: dict) -> Outcome:
    """A bare duration ("5天", "一个多月") read as "that long ago"; list values are ranges."""
    bounds = []
    for pick in (max, min):  # the earliest date comes from the largest value
        day = today
        for unit, raw in delta.items():
            amount = pick(raw) if isinstance(raw, list) else raw
            if unit in ("year", "month"):
                months = amount * (12 if unit == "year" else 1)
                day = add_months(day, -int(months)) - timedelta(days=round((months % 1) * 30))
            elif unit in ("day", "hour", "minute", "second"):
                per_day = {"day": 1, "hour": 24, "minute": 1440, "second": 86400}[unit]
                day -= timedelta(days=amount / per_day)
        bounds.append(day)
    return within_reach(bounds[0], bounds[1], today)


def run_jionlp(python: Path) -> dict:
    rows = [{"text": c.text, "today": c.today.isoformat()} for c in ALL]
    proc = subprocess.run(
        [str(python), "-c", JIONLP_CHILD],
        input=json.dumps(rows, ensure_ascii=False),
        capture_output=True,
        text=True,
        timeout=600,
    )
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT:")), None)
    if line is None:
        raise RuntimeError(f"jionlp run failed: {proc.stderr[-2000:]}")
    return json.loads(line[len("RESULT:") :])


def install_jionlp(venv: Path) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)  # based on the same Python 3.10
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "jionlp"], check=True)
    return time.perf_counter() - started


def site_packages_mb(
    venv: Path, skip: tuple[str, ...] = ("pip", "setuptools", "_distutils_hack", "pkg_resources")
) -> float:
    total = 0
    for site in venv.glob("lib/python*/site-packages"):
        for entry in site.iterdir():
            if entry.name.split("-")[0] in skip:
                continue
            for folder, _, files in os.walk(entry):
                total += sum(os.path.getsize(os.path.join(folder, f)) for f in files)
            if entry.is_file():
                total += entry.stat().st_size
    return round(total / 2**20, 1)


# ---------------------------------------------------------------------------------------------------------------
# Import times, each in a fresh interpreter


def import_seconds(python: str, module: str, cached: bool = True, runs: int = IMPORT_RUNS, cwd: Path = ROOT) -> float:
    """Median import time in fresh interpreters.

    cached=True lets Python keep bytecode (as a deployed service does) in a cache outside the work tree, after one
    warm-up run; cached=False compiles from source every time (what PYTHONDONTWRITEBYTECODE=1 on these machines does).
    """
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    env = dict(os.environ)
    if cached:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    samples = []
    for _ in range(runs + cached):
        out = subprocess.run([python, "-c", code], capture_output=True, text=True, cwd=cwd, env=env, check=True).stdout
        samples.append(float(out.strip().splitlines()[-1]))
    return statistics.median(samples[cached:])


# ---------------------------------------------------------------------------------------------------------------


def misses(outcomes: list[Outcome], limit: int = 15) -> list[str]:
    lines = []
    for case, got in zip(ALL, outcomes, strict=True):
        if not strict_hit(case, got):
            want = expected(case)
            lines.append(
                f"`{case.text}` ({case.today}, {case.group}): expected {want.status} {want.earliest}..{want.latest}, "
                f"got {got.status} {got.earliest}..{got.latest}"
            )
    return lines[:limit]


def import_ms(python: Path | str, module: str, cwd: Path = ROOT) -> dict:
    return {
        "import_ms": round(1000 * import_seconds(str(python), module, cwd=cwd), 1),
        "import_ms_uncached": round(1000 * import_seconds(str(python), module, cached=False, cwd=cwd), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jionlp-venv", type=Path, default=Path("/tmp/jionlp-venv"))
    parser.add_argument("--install-jionlp", action="store_true", help="create the throwaway venv first")
    args = parser.parse_args()
    if str(args.jionlp_venv.resolve()).startswith(str(ROOT)):
        parser.error("the jionlp venv must live outside the project (e.g. under /tmp)")

    outcomes: dict[str, list[Outcome]] = {"ours": [ours(c) for c in ALL]}
    summary: dict = {
        "table_rows": len(CASES),
        "held_out_rows": len(HELD_OUT),
        "ours": {
            **scores(outcomes["ours"]),
            **import_ms(sys.executable, "weiquan.core.timeparse"),
            "per_call_us": per_call_us(ours),
        },
    }

    cn2an_parse = cn2an_baseline()
    outcomes["cn2an_regex"] = [cn2an_parse(c) for c in ALL]
    summary["cn2an_regex"] = {
        **scores(outcomes["cn2an_regex"]),
        **import_ms(sys.executable, "cn2an"),
        "per_call_us": per_call_us(cn2an_parse),
    }

    jionlp_python = args.jionlp_venv / "bin" / "python"
    if args.install_jionlp and not jionlp_python.exists():
        summary["jionlp_install_s"] = round(install_jionlp(args.jionlp_venv), 1)
    summary["jionlp"] = None
    if jionlp_python.exists():
        result = run_jionlp(jionlp_python)
        outcomes["jionlp"] = [jionlp_outcome(c, d) for c, d in zip(ALL, result["details"], strict=True)]
        summary["jionlp"] = {
            **scores(outcomes["jionlp"]),
            **import_ms(jionlp_python, "jionlp", cwd=Path(tempfile.gettempdir())),
            "per_call_us": round(result["per_call_seconds"] * 1e6, 1),
            "install_mb": site_packages_mb(args.jionlp_venv),
        }

    write_report(summary, outcomes)
    print_table(summary)
    print(json.dumps(summary, ensure_ascii=False))


LABELS = {
    "ours": "weiquan.core.timeparse",
    "cn2an_regex": "cn2an 0.5.24 + `\\d+(天|周|个月|年)` regex",
    "jionlp": "jionlp 1.5.31 `ner.extract_time`",
}


def print_table(summary: dict) -> None:
    print(
        f"{'parser':<13}{'table':>8}{'held-out':>10}{'overlap':>9}{'false+':>8}{'import ms':>11}{'µs/call':>9}{'MB':>7}"
    )
    for name in LABELS:
        s = summary.get(name)
        if not s:
            print(f"{name:<13}  (skipped: no jionlp venv; pass --install-jionlp)")
            continue
        table, held = s["table"], s["held_out"]
        false_pos = table["false_positives"] + held["false_positives"]
        print(
            f"{name:<13}{table['strict_pct']:>7}%{held['strict_pct']:>9}%{table['overlap_pct']:>8}%{false_pos:>8}"
            f"{s['import_ms']:>11}{s['per_call_us']:>9}{s.get('install_mb', '-'):>7}"
        )


def report_row(label: str, s: dict | None) -> str:
    if not s:
        return f"| {label} | skipped | | | | | | |"
    t, h = s["table"], s["held_out"]
    false_pos = t["false_positives"] + h["false_positives"]
    negatives = t["negative_rows"] + h["negative_rows"]
    return (
        f"| {label} | {t['strict']}/{t['rows']} ({t['strict_pct']}%) | {t['overlap_pct']}% | "
        f"{h['strict']}/{h['rows']} ({h['strict_pct']}%) | {false_pos}/{negatives} | {s['import_ms']} | "
        f"{s['import_ms_uncached']} | {s['per_call_us']} | {s.get('install_mb', '—')} |"
    )


def write_report(summary: dict, outcomes: dict[str, list[Outcome]]) -> None:
    lines = [
        "# Success-time parser benchmark",
        "",
        f"Generated by `bench/timeparse.py`. **Table**: the {len(CASES)} rows of `bench/timeparse_cases.py` "
        "`CASES` — the parser is written against them, so its own score there is a regression check. **Held-out**: "
        f"the {len(HELD_OUT)} rows of `HELD_OUT`, written after the parser and not tuned against (see "
        "docs/timeparse.md): the honest estimate for new wording.",
        "",
        "strict = same status and exactly the expected dates; overlap = same status and the date ranges overlap; "
        "false positives = a reading where there is no success time.",
        "",
        "| parser | table strict | table overlap | held-out strict | false positives | import ms (bytecode cached) "
        "| import ms (from source) | µs per call | install MB |",
        "|---|---|---|---|---|---|---|---|---|",
        *[report_row(label, summary.get(name)) for name, label in LABELS.items()],
        "",
        'Import times are medians of fresh interpreters; "from source" is what PYTHONDONTWRITEBYTECODE=1 (set on '
        "these machines) costs. jionlp's very first import after install also unpacks its data.",
        "",
    ]
    if "jionlp_install_s" in summary:
        lines += [f"jionlp install into a fresh venv: {summary['jionlp_install_s']} s.", ""]
    for name, got in outcomes.items():
        listed = [f"- {m}" for m in misses(got)] or ["- none"]
        lines += [f"## First misses: {LABELS[name]}", "", *listed, ""]
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text("\n".join(lines), encoding="utf-8")


if __name__ == "__main__":
    main()
