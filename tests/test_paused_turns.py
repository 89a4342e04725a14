"""weiquan/ops/paused.py: which message of a paused conversation still gets one action, and that the wrapped
prediction loop runs exactly that action (with the message's output channel) and nothing else, with Rasa's own
trackers and domain. The real servers: tests/e2e/test_handoff_safety_e2e.py."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from rasa.core.processor import MessageProcessor
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, ConversationPaused, Event, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from weiquan.ops import paused

DOMAIN = Domain.load(str(Path(__file__).resolve().parents[1] / "domain.yml"))
ACTIONS = DOMAIN.action_names_or_texts


def user(intent: str, text: str = "…") -> UserUttered:
    return UserUttered(text, {"name": intent, "confidence": 0.99})


def conversation(*events: Event, pause: bool = True) -> DialogueStateTracker:
    start: list[Event] = [ActionExecuted("action_listen"), user("request_human"),
                          ActionExecuted("action_request_human")]
    if pause:
        start.append(ConversationPaused())
    return DialogueStateTracker.from_events("u1", [*start, ActionExecuted("action_listen"), *events], domain=DOMAIN)


@pytest.mark.parametrize(("intent", "expected"), [
    ("report_safety_threat", "action_handoff_safety"),
    ("cancel_handoff", "action_handoff_cancel"),
    ("inform", None),
    ("request_human", None),
    ("restart", None),  # Rasa itself lets /restart through a pause
])
def test_which_paused_message_gets_an_action(intent: str, expected: str | None) -> None:
    # action_extract_slots' events come after the message and before the loop: they do not count as an action.
    tracker = conversation(user(intent), SlotSet("platform", "taobao"))
    assert paused.paused_action(tracker, ACTIONS) == expected


def test_nothing_changes_for_a_conversation_that_is_not_paused() -> None:
    assert paused.paused_action(conversation(user("report_safety_threat"), pause=False), ACTIONS) is None


def test_a_message_already_answered_is_not_answered_twice() -> None:
    tracker = conversation(user("report_safety_threat"), ActionExecuted("action_handoff_safety"))
    assert paused.paused_action(tracker, ACTIONS) is None


def test_a_model_without_the_action_leaves_rasas_behaviour() -> None:
    tracker = conversation(user("report_safety_threat"))
    assert paused.paused_action(tracker, [a for a in ACTIONS if a != "action_handoff_safety"]) is None


class FakeProcessor:
    """What the wrapped loop uses of Rasa's MessageProcessor; records the actions it runs."""

    def __init__(self) -> None:
        self.domain = DOMAIN
        self.nlg = object()
        self.ran: list[tuple[str, Any, str | None]] = []

    def _get_action(self, name: str) -> Any:
        return SimpleNamespace(name=lambda: name)

    async def _run_action(self, action: Any, tracker: Any, output_channel: Any, nlg: Any, prediction: Any) -> bool:
        self.ran.append((action.name(), output_channel, prediction.policy_name))
        assert DOMAIN.action_names_or_texts[prediction.max_confidence_index] == action.name()
        return True


@pytest.fixture
def wrapped(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """paused.install() over a stand-in for Rasa's own loop, undone after the test."""
    original_calls: list[Any] = []

    async def original(self: Any, output_channel: Any, tracker: Any) -> None:
        original_calls.append(tracker)

    monkeypatch.setattr(MessageProcessor, "_run_prediction_loop", original)
    monkeypatch.setattr(paused, "_installed", {})
    paused.install()
    paused.install()  # idempotent: wraps once
    assert paused._installed["loop"] is original
    return original_calls


async def test_the_wrapped_loop_runs_one_action_on_the_messages_channel(wrapped: list[Any]) -> None:
    processor, channel = FakeProcessor(), object()
    await MessageProcessor._run_prediction_loop(processor, channel, conversation(user("report_safety_threat")))
    assert processor.ran == [("action_handoff_safety", channel, paused.PAUSED_POLICY)]
    assert wrapped == []  # no prediction at all


async def test_the_wrapped_loop_leaves_every_other_turn_to_rasa(wrapped: list[Any]) -> None:
    processor = FakeProcessor()
    for tracker in (conversation(user("inform")), conversation(user("report_safety_threat"), pause=False)):
        await MessageProcessor._run_prediction_loop(processor, object(), tracker)
    assert processor.ran == [] and len(wrapped) == 2
