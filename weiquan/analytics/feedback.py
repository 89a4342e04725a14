"""Buyers' 👍/👎 after a ruling or a rule answer: what the widget sends, checked, masked and stored with the turn it
rates (the newest bot message of that conversation in the analytics store).

The operator console serves `POST /feedback` (weiquan/handoff/console.py): no token (buyers have none), only from the
widget's own origins (`WIDGET_ALLOWED_ORIGINS`), a small body `{"sender_id", "rating": "up"|"down", "comment"?}` sent
as text/plain so no preflight is needed. A rating never blocks the conversation: the widget does not wait for it.

The widget's optional comment comes as a second POST with the same rating and a `comment`: when the conversation's last
rating already rates the same bot message with that rating, the comment is stored beside it (`feedback_comment`, not
counted as a rating again); otherwise the body is a rating with its comment (counted once).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from weiquan.analytics.figures import FEEDBACK, FEEDBACK_COMMENT, RESPONSE_KEY, response_of
from weiquan.analytics.store import AnalyticsStore
from weiquan.core.privacy import mask
from weiquan.edge.limits import Limits, Rate, RateGate

RATINGS = ("up", "down")
# The cards of a ruling or a rule answer: what the widget (widget/src/feedback.js RATED_KINDS) and WeChat ask to rate.
RATED_KINDS = frozenset({"filing_steps", "phone_script", "evidence"})
MAX_SENDER_CHARS = 128
MAX_COMMENT_CHARS = 200
MAX_BODY_BYTES = 4096  # a rating with the longest comment, escaped, fits several times over
# Nobody rates more than a few answers a minute (a rating and its comment are two posts); one address may be a whole
# office behind one NAT. Past these the console answers 429: the widget does not wait for it, the chat goes on.
RATE_PER_SENDER = Rate(10, 60.0)
RATE_PER_ADDRESS = Rate(120, 60.0)


def rate_gate(now: Callable[[], float]) -> RateGate:
    """The limits of `POST /feedback`, per conversation and per address (weiquan/edge/limits.py)."""
    return RateGate(Limits(max_message_chars=MAX_COMMENT_CHARS, rate_per_sender=RATE_PER_SENDER,
                           rate_per_address=RATE_PER_ADDRESS), now=now)


class BadFeedback(ValueError):
    pass


def record(body: Any, store: AnalyticsStore, now: float) -> dict[str, Any]:
    """Checks a rating, stores it (masked) with the bot message it rates, and returns what was stored."""
    if not isinstance(body, Mapping):
        raise BadFeedback("not an object")
    sender, rating, comment = body.get("sender_id"), body.get("rating"), body.get("comment") or ""
    if not isinstance(sender, str) or not 0 < len(sender) <= MAX_SENDER_CHARS:
        raise BadFeedback("sender_id")
    if rating not in RATINGS:
        raise BadFeedback("rating")
    if not isinstance(comment, str) or len(comment) > MAX_COMMENT_CHARS:
        raise BadFeedback("comment")
    rated = store.latest_bot_message(sender)
    if rated is None:
        raise BadFeedback("no bot message to rate")
    comment = mask(comment.strip())
    kind = FEEDBACK
    if comment:
        earlier = store.latest_event(sender, FEEDBACK)
        if earlier and earlier.get("rating") == rating and earlier.get("rated_at") == rated.get("timestamp"):
            kind = FEEDBACK_COMMENT  # the comment to a rating already counted
    row = {"sender_id": sender, "event": kind, "timestamp": now, "rating": rating, "comment": comment,
           "rated_response": response_of(rated), "rated_at": rated.get("timestamp"), "rated_text": rated.get("text")}
    store.add_events([row])
    return row


def rated_message(messages: Any) -> dict[str, Any] | None:
    """The first ruling or rule answer among a turn's bot messages (as Rasa hands them to a channel: text, `custom`
    card, the response name and the timestamp of the stored bot event), or None."""
    for message in messages or []:
        custom = message.get("custom") if isinstance(message, Mapping) else None
        if isinstance(custom, Mapping) and custom.get("kind") in RATED_KINDS:
            return dict(message)
    return None


def rating_event(sender_id: str, rating: str, rated: Mapping[str, Any], now: float, channel: str) -> dict[str, Any]:
    """A rating given in a channel that knows the message it rates (WeChat), as the event broker publishes it; the
    broker masks it like every event. A message handed to a channel carries its response name at the top level
    (Rasa merges the bot event's metadata into it)."""
    if rating not in RATINGS:
        raise BadFeedback("rating")
    return {"sender_id": sender_id, "event": FEEDBACK, "timestamp": now, "rating": rating, "comment": "",
            "rated_response": rated.get(RESPONSE_KEY), "rated_at": rated.get("timestamp"),
            "rated_text": rated.get("text"), "channel": channel}
