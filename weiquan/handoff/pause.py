"""What a pause means for the conversation's state, read from Rasa's events (the dicts Rasa sends the action server
and returns from its API). Pure functions.

While a conversation is paused, Rasa still runs `action_extract_slots` on every user message: what the user tells
the person fills the bot's slots, unvalidated (a date the form never checked, an answer to a question the form did
not ask). When the bot takes the conversation back it restores the slots to their values from before the pause and
asks its pending question again, so everything it relies on went through its own questions and checks.

Not the safety slots: a threat typed while paused is answered by the bot's own safety action (weiquan/ops/paused.py),
which sets them; no extraction does. Putting them back would forget the threat.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# Slots Rasa manages itself, never restored.
INTERNAL_SLOTS = frozenset({"requested_slot", "session_started_metadata"})
# Set only by the bot's safety actions (custom mappings), also while paused: what they record stays.
SAFETY_SLOTS = frozenset({"safety_threat", "safety_advised"})


def _last_index(events: Sequence[Mapping[str, Any]], kinds: set[str], before: int | None = None) -> int:
    end = len(events) if before is None else before
    for index in range(end - 1, -1, -1):
        if events[index].get("event") in kinds:
            return index
    return -1


def restored_slots(events: Sequence[Mapping[str, Any]], slots: Mapping[str, Any]) -> dict[str, Any]:
    """Slots set during the latest paused stretch whose value now differs from before it → the value from before.

    The stretch starts at the first `pause` after the last `resume` (the console pauses again when an operator takes
    over, and a new session pauses again after an expired one: those later pauses do not move the start).
    """
    end = len(events)
    boundary = _last_index(events, {"resume", "session_started", "restart"}, before=end)
    if boundary >= 0 and events[boundary].get("event") == "resume":  # the resume that ends this stretch
        end = boundary
        boundary = _last_index(events, {"resume", "session_started", "restart"}, before=end)
    start = next((index for index in range(boundary + 1, end) if events[index].get("event") == "pause"), -1)
    if start < 0:
        return {}
    replay_from = _last_index(events, {"session_started", "restart"}, before=start) + 1
    before: dict[str, Any] = {}
    for event in events[replay_from:start]:
        if event.get("event") == "slot":
            before[event["name"]] = event.get("value")
        elif event.get("event") == "reset_slots":
            before = {}
    touched = {event["name"] for event in events[start + 1:] if event.get("event") == "slot"}
    return {name: before.get(name) for name in sorted(touched - INTERNAL_SLOTS - SAFETY_SLOTS)
            if slots.get(name) != before.get(name)}


def follows_restart(events: Sequence[Mapping[str, Any]]) -> bool:
    """True when the session being started comes right after a `/restart` (not after the session expired)."""
    for event in reversed(events):
        kind = event.get("event")
        if kind == "action" and event.get("name") == "action_session_start":
            continue
        return kind == "restart"
    return False


def latest_user_metadata(events: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    index = _last_index(events, {"user"})
    metadata = events[index].get("metadata") if index >= 0 else None
    return metadata if isinstance(metadata, Mapping) else {}
