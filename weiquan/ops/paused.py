"""While a conversation is paused (a hand-off: waiting for a person, or a person has it), a few intents still get the
bot's answer. Installed into the Rasa server by weiquan/ops/serve.py.

Rasa 3.6 (`rasa/core/processor.py`): for a paused tracker `handle_message` still parses the message, stores it and
runs `action_extract_slots`, but `_run_prediction_loop` predicts nothing (`_should_handle_message` lets only
`/restart` through). So a threat typed while waiting for a person got no answer at all, and a buyer who no longer
wanted a person could not say so (WeChat buyers cannot send `/restart`).

The patch wraps `MessageProcessor._run_prediction_loop`. When the tracker is paused, the message that just arrived
has one of the intents below, and the running model's domain has its action, it runs that ONE action through the
processor's own `_run_action`, with the message's output channel, and predicts nothing else:

- the answer goes out like any bot answer on every channel (REST's collecting channel returns it in the HTTP reply,
  socket.io emits it, WeChat replies passively or pushes it) and is stored in the tracker, so the operator sees it
  in the transcript;
- the action is an ordinary custom action on the action server (actions/handoff.py), logged as `ActionExecuted`
  with the policy name `PAUSED_POLICY`; its events are applied as for any action;
- every other message of a paused conversation is handled exactly as before (stored, no answer), and nothing
  changes for a conversation that is not paused.

`action_handoff_safety` leaves the conversation paused; `action_handoff_cancel` resumes it (`ConversationResumed`
among its events). Both end with `action_listen`, so the next message starts from the state Rasa expects.
"""
from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)

# Intent of a message that arrives while paused → the one action run for it.
PAUSED_ACTIONS = {
    "report_safety_threat": "action_handoff_safety",
    "cancel_handoff": "action_handoff_cancel",
}
PAUSED_POLICY = "PausedConversationAnswer"  # the policy name Rasa logs on the action's ActionExecuted event
_installed: dict[str, Any] = {}


def paused_action(tracker: Any, action_names: Any) -> str | None:
    """The action to run for the message that just arrived in a paused conversation, or None.

    `tracker` is Rasa's DialogueStateTracker; `action_names` the domain's action names. "Just arrived": no action
    has run since the latest user message (the processor calls the prediction loop once per message).
    """
    if not tracker.is_paused() or tracker.latest_message is None:
        return None
    action = PAUSED_ACTIONS.get(str((tracker.latest_message.intent or {}).get("name")))
    if action is None:
        return None
    if action not in action_names:
        logger.warning("paused.no_action %s: the model's domain lacks it (retrain)", action)
        return None
    for event in reversed(tracker.events):
        kind = type(event).__name__
        if kind == "UserUttered":
            return action
        if kind == "ActionExecuted":
            return None
    return None


def install() -> None:
    """Wrap the processor's prediction loop (idempotent)."""
    if _installed:
        return
    from rasa.core.policies.policy import PolicyPrediction
    from rasa.core.processor import MessageProcessor

    original = MessageProcessor._run_prediction_loop
    _installed["loop"] = original

    async def _run_prediction_loop(self: MessageProcessor, output_channel: Any, tracker: Any) -> None:
        action_name = paused_action(tracker, self.domain.action_names_or_texts)
        if action_name is None:
            return await original(self, output_channel, tracker)
        logger.debug("paused.answer %s for a %s message", action_name, tracker.latest_message.intent.get("name"))
        prediction = PolicyPrediction.for_action_name(self.domain, action_name, PAUSED_POLICY)
        await self._run_action(self._get_action(action_name), tracker, output_channel, self.nlg, prediction)
        return None

    MessageProcessor._run_prediction_loop = _run_prediction_loop  # type: ignore[method-assign]
