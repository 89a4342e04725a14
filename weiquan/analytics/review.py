"""The review inbox and its export into training data. Pure except `export_reviewed`, which writes two YAML files.

The inbox lists buyer messages worth a person's look, from the stored (masked) events:

- `unsure`: the bot was unsure (nlu_fallback, its clarifying question, or low confidence; see figures.py);
- `other_problem`: the bot answered with the other-problem pointer (`utter_out_of_scope`);
- `handoff`: the message that led to a hand-off to a person (`action_request_human`);
- `rated_down`: the message whose answer the buyer rated 👎 (weiquan/analytics/feedback.py), with what the buyer
  added to the rating (`comments`, masked).

Equal texts are one item (`id`: a hash of the masked text), with how often they came (`count`), the model's best guess,
the reasons, when last, and the conversation around the latest one. Most frequent first, then newest. An operator's
decision (AnalyticsStore.decide) takes an item out of the inbox: a confirmed or corrected intent, a dismissal, or a new
"other problem" family (a short Chinese name the operator gives: still `out_of_scope`, grouped under that name so the
page can show which other problems come up that the bot has no pointer for yet).

`make export-reviewed` (scripts: `python -m weiquan.analytics.review export`) writes the confirmed messages not yet
exported into `data/nlu/reviewed.yml` (Rasa NLU format), masked again, without those already written as an example
anywhere in `data/nlu/` or the held-out sets, and every fifth one into `tests/data/nlu_reviewed_heldout.yml` instead, so
the model is also scored on reviewed messages it never trained on. Messages put in a new family are written as
`out_of_scope` examples (they are other problems), and the command lists the families it exported.
"""
from __future__ import annotations

import argparse
import hashlib
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from weiquan.analytics.figures import (
    FEEDBACK,
    FEEDBACK_COMMENT,
    OUTCOME_RESPONSES,
    best_guess,
    response_of,
    unsure_messages,
)
from weiquan.analytics.store import Review
from weiquan.core.privacy import mask

HANDOFF_ACTION = "action_request_human"
CONTEXT_LINES = 2
HELDOUT_EVERY = 5
REVIEWED = Path("data/nlu/reviewed.yml")
HELDOUT = Path("tests/data/nlu_reviewed_heldout.yml")
EXAMPLE_SOURCES = (Path("data/nlu"), Path("tests/data"))
FAMILY_INTENT = "out_of_scope"  # a new family is still an other problem
MAX_FAMILY_CHARS = 20


def family_name(value: Any) -> str:
    """An operator's name for a new other-problem family: a short text (spaces squeezed); ValueError otherwise."""
    if not isinstance(value, str):
        raise ValueError("family")
    name = " ".join(value.split())
    if not 0 < len(name) <= MAX_FAMILY_CHARS or not name.isprintable():
        raise ValueError("family")
    return name


def families(events: Sequence[Mapping[str, Any]], reviews: Iterable[Review]) -> list[dict[str, Any]]:
    """The new other-problem families: per family, how many distinct messages an operator put in it (`messages`) and
    how often buyers wrote those messages among `events` (`count`, the chosen period); most written first."""
    keys: dict[str, str] = {}
    messages: dict[str, int] = {}
    for review in reviews:
        if review.family:
            keys[review.key] = review.family
            messages[review.family] = messages.get(review.family, 0) + 1
    counts = dict.fromkeys(messages, 0)
    if keys:
        for event in events:
            if event.get("event") == "user":
                family = keys.get(item_id(mask(str(event.get("text") or "")).strip()))
                if family:
                    counts[family] += 1
    rows = [{"family": name, "messages": messages[name], "count": counts[name]} for name in messages]
    return sorted(rows, key=lambda row: (-row["count"], -row["messages"], row["family"]))


def item_id(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def inbox(events: Sequence[Mapping[str, Any]], decided: Iterable[str] = ()) -> list[dict[str, Any]]:
    """The inbox items (see the module docstring), without those already decided."""
    found: dict[int, dict[str, Any]] = {}  # index of the user event → its candidate

    def candidate(index: int, reason: str) -> None:
        event = events[index]
        entry = found.setdefault(index, {"index": index, "reasons": set()})
        entry["reasons"].add(reason)
        entry["guess"] = best_guess(event.get("parse_data") or {})

    last_user: dict[str, int] = {}
    user_turns: dict[str, list[int]] = {}
    unsure = {(m["sender_id"], m["timestamp"]) for m in unsure_messages(events)}
    for index, event in enumerate(events):
        kind, sender = event.get("event"), str(event.get("sender_id") or "")
        if kind == "user":
            last_user[sender] = index
            user_turns.setdefault(sender, []).append(index)
            if (sender, event.get("timestamp")) in unsure:
                candidate(index, "unsure")
        elif sender in last_user:
            if kind == "bot" and response_of(event) in OUTCOME_RESPONSES:
                candidate(last_user[sender], "other_problem")
            elif kind == "action" and event.get("name") == HANDOFF_ACTION:
                candidate(last_user[sender], "handoff")
            elif kind in (FEEDBACK, FEEDBACK_COMMENT) and event.get("rating") == "down":
                # the buyer's message the rated answer replied to: the last one before that answer
                rated_at = float(event.get("rated_at") or event.get("timestamp") or 0)
                asked = [i for i in user_turns[sender] if float(events[i].get("timestamp") or 0) <= rated_at]
                at = asked[-1] if asked else last_user[sender]
                candidate(at, "rated_down")
                if event.get("comment"):  # what the buyer added to the 👎 (masked when stored)
                    found[at].setdefault("comments", []).append(mask(str(event["comment"])))
    skip = set(decided)
    items: dict[str, dict[str, Any]] = {}
    for index in sorted(found):
        event = events[index]
        text = mask(str(event.get("text") or "")).strip()
        key = item_id(text)
        if not text or key in skip:
            continue
        item = items.setdefault(key, {"id": key, "text": text, "count": 0, "reasons": set(), "guess": None,
                                      "comments": []})
        item["count"] += 1
        item["comments"] += found[index].get("comments", [])
        item["reasons"] |= found[index]["reasons"]
        item["guess"] = found[index]["guess"] or item["guess"]
        item["last"] = event.get("timestamp")
        item["context"] = context(events, index)
    ordered = sorted(items.values(), key=lambda item: (-item["count"], -(item["last"] or 0)))
    return [{**item, "reasons": sorted(item["reasons"])} for item in ordered]


def context(events: Sequence[Mapping[str, Any]], index: int) -> list[dict[str, str]]:
    """The conversation around a message: the bot's line before it, the message, the bot's lines after it."""
    sender = events[index].get("sender_id")
    lines = [e for e in events if e.get("sender_id") == sender and e.get("event") in ("user", "bot")]
    at = next(i for i, e in enumerate(lines) if e is events[index])
    before = [e for e in lines[:at] if e.get("event") == "bot"][-1:]
    after: list[Mapping[str, Any]] = []
    for event in lines[at + 1:]:
        if event.get("event") == "user" or len(after) >= CONTEXT_LINES:
            break
        after.append(event)
    return [{"from": str(e.get("event")), "text": mask(str(e.get("text") or ""))} for e in [*before, events[index],
                                                                                            *after]]


# ---------------------------------------------------------------------- export into training data

_ANNOTATION = re.compile(r"\[([^\]]*)\](?:\([^)]*\)|\{[^}]*\})")


def plain(example: str) -> str:
    """An example as a buyer typed it: entity annotations removed, spaces squeezed."""
    return " ".join(_ANNOTATION.sub(r"\1", example).split())


def existing_examples(paths: Iterable[Path]) -> set[str]:
    """Every example text in the Rasa NLU files under `paths` (files or folders)."""
    texts: set[str] = set()
    for path in paths:
        for file in sorted(path.rglob("*.yml")) if path.is_dir() else [path]:
            if not file.exists():
                continue
            data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
            for block in data.get("nlu") or [] if isinstance(data, dict) else []:
                for line in str(block.get("examples") or "").splitlines():
                    if line.strip().startswith("- "):
                        texts.add(plain(line.strip()[2:]))
    return texts


def _read(path: Path) -> dict[str, list[str]]:
    if not path.exists():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {block["intent"]: [line.strip()[2:] for line in block["examples"].splitlines() if line.strip()]
            for block in data.get("nlu") or []}


def _write(path: Path, by_intent: Mapping[str, list[str]], what: str) -> None:
    lines = [f"# {what}", "# Written by `make export-reviewed` from the console's review inbox (docs/analytics.md).",
             'version: "3.1"', "nlu:"]
    for intent in sorted(by_intent):
        lines += [f"  - intent: {intent}", "    examples: |"]
        lines += [f"      - {example}" for example in by_intent[intent]]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@dataclass
class Exported:
    train: int
    heldout: int
    duplicates: int
    keys: list[str]
    families: dict[str, int] = field(default_factory=dict)  # new other-problem families: messages exported now


def export_reviewed(reviews: Iterable[Review], root: Path) -> Exported:
    """Writes the confirmed, not yet exported reviews (see the module docstring); returns what it did."""
    reviewed, heldout = _read(root / REVIEWED), _read(root / HELDOUT)
    known = existing_examples(root / source for source in EXAMPLE_SOURCES)
    counted = sum(len(v) for v in reviewed.values()) + sum(len(v) for v in heldout.values())
    train = held = duplicates = 0
    keys: list[str] = []
    named: dict[str, int] = {}
    for review in reviews:
        if review.intent is None or review.exported:
            continue
        keys.append(review.key)
        if review.family:
            named[review.family] = named.get(review.family, 0) + 1
        text = " ".join(mask(review.text).split())
        if not text or plain(text) in known:
            duplicates += 1
            continue
        known.add(plain(text))
        counted += 1
        if counted % HELDOUT_EVERY == 0:
            heldout.setdefault(review.intent, []).append(text)
            held += 1
        else:
            reviewed.setdefault(review.intent, []).append(text)
            train += 1
    if train:
        _write(root / REVIEWED, reviewed, "Buyers' real messages an operator confirmed in the review inbox.")
    if held:
        _write(root / HELDOUT, heldout, "Every fifth reviewed message, kept apart: never trained on.")
    return Exported(train, held, duplicates, keys, named)


def main(argv: list[str] | None = None) -> int:
    from weiquan.analytics.store import AnalyticsStore, url_from_endpoints
    from weiquan.services import default_services

    parser = argparse.ArgumentParser(description="export the reviewed messages into the training data")
    parser.add_argument("command", choices=["export"])
    parser.add_argument("--endpoints", default=default_services().env.get("ENDPOINTS") or "endpoints.yml")
    parser.add_argument("--root", default=".")
    args = parser.parse_args(argv)
    endpoints = yaml.safe_load(Path(args.endpoints).read_text(encoding="utf-8")) or {}
    url = url_from_endpoints(endpoints, default_services().env)
    if not url:
        print(f"export-reviewed: no analytics store in {args.endpoints} (event_broker)", file=sys.stderr)
        return 2
    store = AnalyticsStore(url)
    done = export_reviewed(store.reviews(), Path(args.root))
    store.mark_exported(done.keys)
    print(f"export-reviewed: {done.train} into {REVIEWED}, {done.heldout} into {HELDOUT}, "
          f"{done.duplicates} already known")
    for name, count in sorted(done.families.items(), key=lambda item: -item[1]):
        print(f"export-reviewed: new other-problem family 「{name}」: {count} as {FAMILY_INTENT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
