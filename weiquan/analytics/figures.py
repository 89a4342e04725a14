"""The figures of the analytics page and its CSV, computed from stored (masked) events. Pure: no I/O, no clock.

Read from the bot's own events, as the broker stored them:

- a **conversation** on a day: a sender who wrote at least one message that day (Beijing time);
- **outcomes**, per conversation that reached them: the `outcome` slot the ruling set (`file_online` counts as
  `within_window`, `phone_support` as `past_window`, the other codes as they are), `action_advise_seller` (`seller`),
  the other-problem pointer `utter_out_of_scope` (`other_problem`), `action_advise_safety` (`safety`);
- **unsure**: a buyer's message the NLU gave `nlu_fallback`, that the bot answered with its clarifying question
  (`action_clarify`), or whose intent confidence was under `LOW_CONFIDENCE`;
- **hand-offs**: `action_request_human` runs; of those an operator took, the median wait (request → the
  `handoff_status` card `connected` the console sends) and handling time (`connected` → `released`);
- **unrecognised**: the unsure messages (masked text), most frequent first, with the model's best guess;
- **the form, question by question**: conversations whose complaint form started, reached a ruling, or stopped
  before one — counted at the last question the form asked (`requested_slot`); a conversation still going counts
  as stopped until its ruling comes;
- **ratings**: the buyers' 👍/👎 (`feedback` records, weiquan/analytics/feedback.py), by the response they rated;
- **comments**: the buyers' optional comments to their ratings (masked), newest first.
"""
from __future__ import annotations

import csv
import io
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

# The key under which Rasa names a bot message's response in its metadata (rasa.nlu.constants); joined so that the
# check of response names in code (scripts/validate_data.py) does not take it for a response.
RESPONSE_KEY = "_".join(("utter", "action"))
LOW_CONFIDENCE = 0.6
FORM = "complaint_form"
FEEDBACK = "feedback"  # the event type of a buyer's rating in the analytics store
FEEDBACK_COMMENT = "feedback_comment"  # a comment added to a rating already stored (weiquan/analytics/feedback.py)
TOP_COMMENTS = 20
FALLBACK = "nlu_fallback"
OUTCOME_NAMES = {"file_online": "within_window", "phone_support": "past_window"}
OUTCOME_ACTIONS = {"action_advise_seller": "seller", "action_advise_safety": "safety"}
OUTCOME_RESPONSES = {"utter_out_of_scope": "other_problem"}
MAIN_OUTCOMES = ("within_window", "past_window", "seller", "other_problem", "safety")
CLARIFY_ACTIONS = frozenset({"action_clarify"})
HANDOFF_ACTIONS = frozenset({"action_request_human"})
TOP_UNRECOGNISED = 20


def day_of(timestamp: float, tz: tzinfo) -> date:
    return datetime.fromtimestamp(timestamp, tz).date()


def response_of(event: Mapping[str, Any]) -> str | None:
    """The response a stored bot message came from (None for an operator's message or a channel's own)."""
    return (event.get("metadata") or {}).get(RESPONSE_KEY)


def best_guess(parse_data: Mapping[str, Any]) -> str | None:
    """The model's first intent that is not the fallback (the fallback keeps the model's ranking)."""
    for entry in parse_data.get("intent_ranking") or []:
        if entry.get("name") and entry["name"] != FALLBACK:
            return str(entry["name"])
    name = (parse_data.get("intent") or {}).get("name")
    return str(name) if name and name != FALLBACK else None


def unsure_messages(events: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each buyer message the bot was unsure of: sender, text, timestamp, guess and why (fallback/clarify/low)."""
    found: list[dict[str, Any]] = []
    last_user: dict[str, dict[str, Any]] = {}
    for event in events:
        kind, sender = event.get("event"), str(event.get("sender_id") or "")
        if kind == "user":
            parse = event.get("parse_data") or {}
            intent = parse.get("intent") or {}
            message: dict[str, Any] = {
                "sender_id": sender, "text": event.get("text") or "", "timestamp": event.get("timestamp"),
                "guess": best_guess(parse), "intent": intent.get("name"), "reasons": set(),
            }
            if intent.get("name") == FALLBACK:
                message["reasons"].add("fallback")
            elif intent.get("confidence") is not None and float(intent["confidence"]) < LOW_CONFIDENCE:
                message["reasons"].add("low_confidence")
            last_user[sender] = message
            if message["reasons"]:
                found.append(message)
        elif kind == "action" and event.get("name") in CLARIFY_ACTIONS and sender in last_user:
            message = last_user[sender]
            if not message["reasons"]:
                found.append(message)
            message["reasons"].add("clarify")
    return found


def compute(
    events: Sequence[Mapping[str, Any]], first_day: date, days: int, tz: tzinfo, lost: int = 0
) -> dict[str, Any]:
    """The page's figures for the `days` days from `first_day` (events outside them are ignored)."""
    last_day = first_day + timedelta(days=days - 1)
    inside = [e for e in events if first_day <= day_of(float(e.get("timestamp") or 0), tz) <= last_day]
    per_day: dict[date, set[str]] = defaultdict(set)
    reached: set[tuple[str, str]] = set()
    handoffs = 0
    messages = 0
    ratings: Counter[str] = Counter({"up": 0, "down": 0})
    rated: Counter[tuple[str, str]] = Counter()
    comments: list[dict[str, Any]] = []
    for event in inside:
        kind, sender = event.get("event"), str(event.get("sender_id") or "")
        if kind == "user":
            messages += 1
            per_day[day_of(float(event["timestamp"]), tz)].add(sender)
        elif kind == "slot" and event.get("name") == "outcome" and event.get("value"):
            reached.add((sender, OUTCOME_NAMES.get(str(event["value"]), str(event["value"]))))
        elif kind == "action" and event.get("name") in OUTCOME_ACTIONS:
            reached.add((sender, OUTCOME_ACTIONS[str(event["name"])]))
        elif kind == "bot" and response_of(event) in OUTCOME_RESPONSES:
            reached.add((sender, OUTCOME_RESPONSES[str(response_of(event))]))
        if kind == "action" and event.get("name") in HANDOFF_ACTIONS:
            handoffs += 1
        if kind == FEEDBACK and event.get("rating") in ("up", "down"):
            ratings[str(event["rating"])] += 1
            rated[(str(event.get("rated_response") or ""), str(event["rating"]))] += 1
        if kind in (FEEDBACK, FEEDBACK_COMMENT) and event.get("comment"):
            comments.append({"comment": str(event["comment"]), "rating": event.get("rating"),
                             "response": event.get("rated_response"), "timestamp": event.get("timestamp")})
    outcomes = Counter({name: 0 for name in MAIN_OUTCOMES})
    form = form_progress(inside)
    outcomes.update(code for _, code in reached)
    unsure = unsure_messages(inside)
    reasons = Counter(reason for message in unsure for reason in message["reasons"])
    grouped: dict[str, dict[str, Any]] = {}
    for message in unsure:
        entry = grouped.setdefault(message["text"], {"text": message["text"], "count": 0, "guess": message["guess"],
                                                     "last": message["timestamp"]})
        entry["count"] += 1
        entry["last"] = max(entry["last"] or 0, message["timestamp"] or 0)
    top = sorted(grouped.values(), key=lambda item: (-item["count"], -(item["last"] or 0)))[:TOP_UNRECOGNISED]
    all_days = [first_day + timedelta(days=offset) for offset in range(days)]
    return {
        "from": first_day.isoformat(),
        "to": last_day.isoformat(),
        "days": days,
        "conversations": len({str(e.get("sender_id")) for e in inside if e.get("event") == "user"}),
        "messages": messages,
        "per_day": [{"day": day.isoformat(), "conversations": len(per_day.get(day, ()))} for day in all_days],
        "outcomes": dict(outcomes),
        "unsure": {"messages": len(unsure), "fallback": reasons["fallback"], "clarify": reasons["clarify"],
                   "low_confidence": reasons["low_confidence"],
                   "share": round(len(unsure) / messages, 3) if messages else 0.0},
        "handoffs": handoffs,
        "handoff_times": handoff_times(inside),
        "form": form,
        "ratings": dict(ratings),
        "rated": [{"response": response, "rating": rating, "count": count}
                  for (response, rating), count in sorted(rated.items(), key=lambda item: -item[1])],
        "unrecognised": [{"text": item["text"], "count": item["count"], "guess": item["guess"]} for item in top],
        "comments": sorted(reversed(comments), key=lambda row: -(row["timestamp"] or 0))[:TOP_COMMENTS],
        "lost": lost,
    }


def _status(event: Mapping[str, Any]) -> str | None:
    custom = (event.get("data") or {}).get("custom") or {}
    return str(custom.get("state")) if isinstance(custom, Mapping) and custom.get("kind") == "handoff_status" else None


def handoff_times(events: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Hand-offs an operator took, with the median seconds buyers waited and operators handled them."""
    requested: dict[str, float] = {}
    connected: dict[str, float] = {}
    waits: list[float] = []
    handling: list[float] = []
    for event in events:
        kind, sender, at = event.get("event"), str(event.get("sender_id") or ""), float(event.get("timestamp") or 0)
        if kind == "action" and event.get("name") in HANDOFF_ACTIONS:
            requested.setdefault(sender, at)
        elif kind == "bot" and _status(event) == "connected" and sender in requested:
            waits.append(at - requested.pop(sender))
            connected[sender] = at
        elif kind == "bot" and _status(event) == "released" and sender in connected:
            handling.append(at - connected.pop(sender))

    def median(values: list[float]) -> float | None:
        return round(statistics.median(values), 1) if values else None

    return {"taken": len(waits), "wait_median_s": median(waits), "handling_median_s": median(handling)}


def form_progress(events: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """How many conversations started the complaint form, got their ruling, and at which question the others stopped."""
    started: set[str] = set()
    ruled: set[str] = set()
    asking: dict[str, str] = {}
    for event in events:
        kind, sender = event.get("event"), str(event.get("sender_id") or "")
        if kind == "active_loop" and event.get("name") == FORM:
            started.add(sender)
        elif kind == "slot" and event.get("name") == "requested_slot" and event.get("value"):
            asking[sender] = str(event["value"])
        elif kind == "slot" and event.get("name") == "outcome" and event.get("value") and sender in started:
            ruled.add(sender)
    stopped = Counter(asking.get(sender, "unknown") for sender in started - ruled)
    return {"started": len(started), "ruled": len(ruled & started),
            "stopped_at": dict(sorted(stopped.items(), key=lambda item: -item[1]))}


def to_csv(figures: Mapping[str, Any]) -> str:
    """The same figures as CSV rows `section,key,value` (a spreadsheet opens it; UTF-8 with a BOM for Excel)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["section", "key", "value"])
    writer.writerow(["period", "from", figures["from"]])
    writer.writerow(["period", "to", figures["to"]])
    writer.writerow(["total", "conversations", figures["conversations"]])
    writer.writerow(["total", "messages", figures["messages"]])
    writer.writerow(["total", "handoffs", figures["handoffs"]])
    writer.writerow(["total", "lost_events", figures["lost"]])
    for row in figures["per_day"]:
        writer.writerow(["conversations_per_day", row["day"], row["conversations"]])
    for code, count in figures["outcomes"].items():
        writer.writerow(["outcome", code, count])
    for key in ("messages", "fallback", "clarify", "low_confidence", "share"):
        writer.writerow(["unsure", key, figures["unsure"][key]])
    for key, value in figures["handoff_times"].items():
        writer.writerow(["handoff", key, "" if value is None else value])
    writer.writerow(["form", "started", figures["form"]["started"]])
    writer.writerow(["form", "ruled", figures["form"]["ruled"]])
    for slot, count in figures["form"]["stopped_at"].items():
        writer.writerow(["form_stopped_at", slot, count])
    for key, count in (figures.get("ratings") or {}).items():
        writer.writerow(["rating", key, count])
    for item in figures["unrecognised"]:
        writer.writerow(["unrecognised", item["text"], item["count"]])
    for row in figures.get("comments") or []:
        writer.writerow(["comment", row["rating"], row["comment"]])
    for row in figures.get("new_families") or []:  # the console adds them (weiquan/analytics/review.py families)
        writer.writerow(["new_family", row["family"], row["count"]])
    return "\ufeff" + out.getvalue()
