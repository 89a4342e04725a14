"""What an operator reads about a conversation, taken from a Rasa tracker (the JSON Rasa's API returns, or the
tracker the action server receives): a one-screen summary of what the bot learned, and the transcript.

Phone, ID-card and order numbers are masked in everything returned here (weiquan/edge/logmask.py): the operator talks to
the user through the chat and does not need them; the tracker store keeps the conversation whole.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, cast

from weiquan.core.contracts import HandoffSummary, SuccessTime, SummaryFacts
from weiquan.core.domain import SLOT_CONTRACTS, form_slots, is_list_slot
from weiquan.core.privacy import mask
from weiquan.core.texts import TextFile, load_text_file
from weiquan.core.vocabulary import load_vocabulary

TEXTS_PATH = Path(__file__).with_name("texts.yml")
MAX_TRANSCRIPT = 300
OPERATOR = "operator"  # metadata["handoff"] of a message an operator sent
STATUS_KIND = "handoff_status"  # custom["kind"] of the hand-off's status lines
SAFETY_SLOT = "safety_threat"


def texts() -> TextFile:
    return load_text_file(TEXTS_PATH)


def _current_events(tracker: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Events since the last restart (a restart wipes what the bot knew)."""
    events = [event for event in tracker.get("events") or [] if isinstance(event, dict)]
    for index in range(len(events) - 1, -1, -1):
        if events[index].get("event") == "restart":
            return events[index + 1:]
    return events


def latest_facts(tracker: Mapping[str, Any]) -> dict[str, Any]:
    """The last non-empty value of each fact slot since the last restart, leaving out what was extracted while the
    bot was paused (unvalidated: the bot puts those back when it takes over again, see weiquan/handoff/pause.py).
    The bot forgets a finished complaint's facts (action_reset_complaint); the operator should still see them.
    A threat counts also while paused: only the bot's safety actions set `safety_threat`, never an extraction."""
    facts: dict[str, Any] = {}
    paused = False
    for event in _current_events(tracker):
        kind = event.get("event")
        if kind == "session_started":
            facts, paused = {}, False
        elif kind in ("pause", "resume"):
            paused = kind == "pause"
        elif (kind == "slot" and event.get("name") in (*fact_slots(), SAFETY_SLOT)
              and (not paused or event.get("name") == SAFETY_SLOT) and event.get("value") not in (None, [], "")):
            facts[event["name"]] = event["value"]
    slots = tracker.get("slots") or {}
    for name in (*fact_slots(), SAFETY_SLOT):
        if (not paused or name == SAFETY_SLOT) and slots.get(name) not in (None, [], ""):
            facts[name] = slots[name]
    return facts


def fact_slots() -> tuple[str, ...]:
    """What the summary shows: the form's questions (domain.yml, the one list) and the ruling."""
    return (*form_slots(), "outcome")


def _as_list(value: Any) -> list[str]:
    if value in (None, ""):
        return []
    return [str(item) for item in (value if isinstance(value, list) else [value])]


def summarize(tracker: Mapping[str, Any], today: date) -> HandoffSummary:
    """What the bot learned, as the console shows it (`HandoffSummary`, weiquan/core/contracts.py)."""
    words = texts()
    fields = words["fields"]
    vocabulary = load_vocabulary()
    facts = latest_facts(tracker)
    words_said = facts.get("success_time")  # the buyer's words until the form has read them into a range
    when_read = SuccessTime.from_slot(words_said)
    said = mask((when_read.said if when_read else words_said) or "")
    days = when_read.days_since(today) if when_read else None
    safety = bool(facts.get(SAFETY_SLOT))

    def label(slot: str) -> str:
        values = _as_list(facts.get(slot))
        labels = vocabulary.labels(slot)
        return "、".join(labels.get(value, value) for value in values) or words["unknown"]

    if days is not None:
        low, high = days
        when = (words["days_exact"].format(days=low, said=said) if low == high
                else words["days_range"].format(low=low, high=high, said=said))
    elif said:
        when = words["days_unknown"].format(said=said)
    else:
        when = words["unknown"]
    lines = [words["safety_threat"]] if safety else []
    lines += [words["line"].format(field=fields[name], value=when if name in SLOT_CONTRACTS else label(name))
              for name in fact_slots()]
    shown: dict[str, Any] = {name: _as_list(facts.get(name)) if is_list_slot(name) else facts.get(name)
                             for name in fact_slots()}
    shown["success_time"] = said or None
    return HandoffSummary(
        facts=cast(SummaryFacts, shown),
        days_since_success=list(days) if days else None,
        safety=safety,
        lines=lines,
    )


@dataclass(frozen=True)
class Line:
    speaker: str  # user, bot, operator, status
    text: str
    at: float | None

    def as_dict(self) -> dict[str, Any]:
        return {"from": self.speaker, "text": self.text, "at": self.at}


def _shown_user_text(text: str, buttons: Mapping[str, str]) -> str:
    """What the user did: a button's title instead of its payload; commands described."""
    if text.startswith("/"):
        if text in buttons:
            return buttons[text]
        return texts()["payloads"].get(text.split("{", 1)[0], text)
    return text


def lines(tracker: Mapping[str, Any]) -> list[Line]:
    """User, bot, operator and status messages since the last restart, masked, oldest first."""
    buttons: dict[str, str] = {}
    result: list[Line] = []
    for event in _current_events(tracker):
        kind = event.get("event")
        if kind == "user":
            text = event.get("text")
            if not isinstance(text, str) or (event.get("metadata") or {}).get("is_external"):
                continue
            result.append(Line("user", mask(_shown_user_text(text, buttons)), event.get("timestamp")))
        elif kind == "bot":
            data = event.get("data") or {}
            for button in data.get("buttons") or []:
                if isinstance(button, dict) and button.get("payload"):
                    buttons[str(button["payload"])] = str(button.get("title", ""))
            text = event.get("text")
            if not isinstance(text, str) or not text:
                continue
            custom = data.get("custom")
            if not isinstance(custom, dict):
                custom = {}
            if (event.get("metadata") or {}).get("handoff") == OPERATOR:
                speaker = "operator"
            elif custom.get("kind") == STATUS_KIND:
                speaker = "status"
            else:
                speaker = "bot"
            result.append(Line(speaker, mask(text), event.get("timestamp")))
    return result[-MAX_TRANSCRIPT:]


def last_user_line(tracker: Mapping[str, Any]) -> Line | None:
    return next((line for line in reversed(lines(tracker)) if line.speaker == "user"), None)


def user_lines_since(tracker: Mapping[str, Any], since: float) -> Iterable[Line]:
    return (line for line in lines(tracker) if line.speaker == "user" and (line.at or 0) >= since)


def with_safety(handoff_summary: HandoffSummary) -> HandoffSummary:
    """The summary of a conversation the hand-off store marked for a threat (a summary read before the mark, or
    from a tracker that lost it, must not hide it)."""
    if handoff_summary["safety"]:
        return handoff_summary
    return HandoffSummary(facts=handoff_summary["facts"], days_since_success=handoff_summary["days_since_success"],
                          safety=True, lines=[texts()["safety_threat"], *handoff_summary["lines"]])
