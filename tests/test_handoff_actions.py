"""The hand-off actions with trackers built in the test, a real store in a temporary SQLite file, a fixed clock."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import (
    ActionExecuted,
    ActiveLoop,
    ConversationPaused,
    ConversationResumed,
    SessionStarted,
    SlotSet,
)
from rasa_sdk.executor import CollectingDispatcher

from actions.handoff import (
    ActionHandoffCancel,
    ActionHandoffResume,
    ActionHandoffSafety,
    ActionRequestHuman,
    ActionSessionStart,
)
from tests.test_consistency import DOMAIN
from weiquan.core.clock import FakeClock
from weiquan.handoff import state
from weiquan.handoff.settings import HandoffSettings
from weiquan.handoff.state import Ending, Status
from weiquan.services import default_services
from weiquan.stores.handoff import OPERATOR, SERVICE, SqlHandoffStore

NOW = 1_800_000_000.0
SERVICES = replace(default_services(), clock=FakeClock(NOW))


@pytest.fixture
def store(tmp_path) -> SqlHandoffStore:
    return SqlHandoffStore(f"sqlite:///{tmp_path / 'handoff.db'}")


def tracker(events: list[dict[str, Any]] | None = None, slots: dict[str, Any] | None = None,
            loop: str | None = None, channel: str = "socketio", paused: bool = False) -> Tracker:
    all_slots = {name: None for name in DOMAIN["slots"]} | {"requested_slot": None} | (slots or {})
    events = events or [{"event": "user", "text": "转人工", "timestamp": NOW - 1, "input_channel": channel}]
    latest = {"text": "转人工", "intent": {"name": "request_human", "confidence": 0.99}, "entities": []}
    return Tracker("u1", all_slots, latest, events, paused, None, {"name": loop} if loop else {}, "action_listen")


def said(dispatcher: CollectingDispatcher) -> list[str]:
    return [message["response"] for message in dispatcher.messages]


def action(cls, store: SqlHandoffStore, operators: str = "auto"):
    settings = HandoffSettings(operators=operators, wait_s=300)
    return cls(services=replace(SERVICES, handoff=settings, handoff_store_factory=lambda _: store))


async def test_without_a_running_console_the_bot_does_not_pause_and_points_to_taobao(store) -> None:
    dispatcher = CollectingDispatcher()
    events = await action(ActionRequestHuman, store).run(dispatcher, tracker(), DOMAIN)
    assert events == []  # nobody could hand it back: no pause, the form (if any) goes on
    assert said(dispatcher) == ["utter_handoff_unavailable", "utter_handoff_how"]
    assert dispatcher.messages[1]["hotline"]
    assert store.get("u1") is None


async def test_with_an_operator_online_the_conversation_waits_and_pauses(store) -> None:
    store.touch(SERVICE, NOW - 1)
    store.touch(OPERATOR, NOW - 5)
    dispatcher = CollectingDispatcher()
    slots = {"platform": "taobao", "harassment_type": ["calls"]}
    events = await action(ActionRequestHuman, store).run(dispatcher, tracker(slots=slots), DOMAIN)
    assert events == [ConversationPaused(), ActionExecuted("action_listen")]
    assert said(dispatcher) == ["utter_handoff_waiting"]
    handoff = store.get("u1")
    assert (handoff.status, handoff.channel, handoff.offline) == (Status.WAITING, "socketio", False)
    assert handoff.deadline_at == NOW + 300
    assert "平台：淘宝" in handoff.summary["lines"] and handoff.last_user_message == "转人工"


async def test_a_threat_reported_before_asking_for_a_person_marks_the_hand_off_at_once(store) -> None:
    store.touch(SERVICE, NOW - 1)
    slots = {"safety_threat": True, "harassment_type": ["threat"]}
    await action(ActionRequestHuman, store, operators="on").run(CollectingDispatcher(), tracker(slots=slots), DOMAIN)
    assert store.get("u1").safety_at == NOW and store.get("u1").summary["safety"] is True


async def test_with_nobody_online_the_user_is_invited_to_leave_a_message(store) -> None:
    store.touch(SERVICE, NOW - 1)
    dispatcher = CollectingDispatcher()
    events = await action(ActionRequestHuman, store).run(dispatcher, tracker(channel="rest"), DOMAIN)
    assert events == [ConversationPaused(), ActionExecuted("action_listen")]
    assert said(dispatcher) == ["utter_handoff_nobody"]
    assert store.get("u1").offline and store.get("u1").channel == "rest"


async def test_a_broken_store_never_breaks_the_conversation(tmp_path) -> None:
    broken = SqlHandoffStore(f"sqlite:///{tmp_path / 'x.db'}")
    broken.engine.dispose()
    (tmp_path / "x.db").unlink()
    (tmp_path / "x.db").mkdir()  # the file is now a directory: every query fails
    dispatcher = CollectingDispatcher()
    assert await action(ActionRequestHuman, broken).run(dispatcher, tracker(), DOMAIN) == []
    assert said(dispatcher)[0] == "utter_handoff_unavailable"


async def test_wechat_transfer_mode_hands_the_user_to_wechat_without_pausing(store) -> None:
    store.touch(SERVICE, NOW)
    events = [{"event": "user", "text": "转人工", "metadata": {"wechat": {"transfer_customer_service": True}}}]
    dispatcher = CollectingDispatcher()
    assert await action(ActionRequestHuman, store).run(dispatcher, tracker(events, channel="wechat"), DOMAIN) == []
    assert said(dispatcher) == ["utter_handoff_wechat_transfer"]
    assert store.get("u1") is None


PAUSED_IN_FORM = [
    {"event": "session_started"},
    {"event": "slot", "name": "harassment_type", "value": ["sms"]},
    {"event": "slot", "name": "requested_slot", "value": "platform"},
    {"event": "pause"},
    {"event": "user", "text": "淘宝买的，交易成功5天了"},
    {"event": "slot", "name": "platform", "value": "taobao"},
    {"event": "slot", "name": "success_time", "value": "5天"},
    {"event": "resume"},
]


async def test_release_mid_form_restores_the_slots_and_asks_the_pending_question_again(store) -> None:
    handoff = store.create(state.request(None, "u1", "socketio", NOW - 60, 300, offline=False))
    store.replace(state.release(state.take_over(handoff, NOW - 50), NOW - 1), expected=Status.WAITING)
    slots = {"harassment_type": ["sms"], "platform": "taobao", "success_time": "5天", "requested_slot": "platform"}
    dispatcher = CollectingDispatcher()
    events = await action(ActionHandoffResume, store).run(
        dispatcher, tracker(PAUSED_IN_FORM, slots, loop="complaint_form"), DOMAIN)
    assert said(dispatcher) == ["utter_handoff_released", "utter_ask_platform"]
    assert events == [SlotSet("platform", None), SlotSet("success_time", None), ActiveLoop("complaint_form"),
                      ActionExecuted("action_listen")]


async def test_release_outside_the_form_just_says_the_bot_is_back(store) -> None:
    dispatcher = CollectingDispatcher()
    events = await action(ActionHandoffResume, store).run(dispatcher, tracker([{"event": "pause"}]), DOMAIN)
    assert said(dispatcher) == ["utter_handoff_released"]
    assert events == [ActionExecuted("action_listen")]


@pytest.mark.parametrize(("offline", "expected"), [
    (True, ["utter_handoff_timeout_offline"]),
    (False, ["utter_handoff_timeout_busy", "utter_handoff_offer"]),
])
async def test_a_timed_out_wait_says_why_the_bot_is_back(store, offline: bool, expected: list[str]) -> None:
    handoff = store.create(state.request(None, "u1", "rest", NOW - 400, 300, offline=offline))
    store.replace(state.time_out(handoff, NOW), expected=Status.WAITING)
    dispatcher = CollectingDispatcher()
    await action(ActionHandoffResume, store).run(dispatcher, tracker([{"event": "pause"}]), DOMAIN)
    assert said(dispatcher) == expected




async def test_an_expired_session_keeps_the_bot_paused_while_a_person_has_it(store) -> None:
    handoff = store.create(state.request(None, "u1", "socketio", NOW - 90_000, 300, offline=False))
    store.replace(state.take_over(handoff, NOW - 89_000), expected=Status.WAITING)
    events = [{"event": "user", "text": "在吗"}, {"event": "action", "name": "action_listen"}]
    dispatcher = CollectingDispatcher()
    result = await action(ActionSessionStart, store).run(dispatcher, tracker(events), DOMAIN)
    assert result == [SessionStarted(), ConversationPaused(), ActionExecuted("action_listen")]
    assert dispatcher.messages == [] and store.get("u1").status is Status.ACTIVE


async def test_restart_ends_the_hand_off_and_says_so(store) -> None:
    handoff = store.create(state.request(None, "u1", "socketio", NOW - 90, 300, offline=False))
    store.replace(state.take_over(handoff, NOW - 80), expected=Status.WAITING)
    events = [{"event": "user", "text": "/restart"}, {"event": "action", "name": "action_restart"},
              {"event": "restart"}, {"event": "action", "name": "action_session_start"}]
    dispatcher = CollectingDispatcher()
    result = await action(ActionSessionStart, store).run(dispatcher, tracker(events), DOMAIN)
    assert result == [SessionStarted(), ActionExecuted("action_listen")]
    assert said(dispatcher) == ["utter_handoff_ended"]
    assert (store.get("u1").status, store.get("u1").ending) == (Status.CLOSED, Ending.RESTARTED)


async def test_a_new_session_without_a_hand_off_is_rasas_default(store) -> None:
    dispatcher = CollectingDispatcher()
    result = await action(ActionSessionStart, store).run(dispatcher, tracker([]), DOMAIN)
    assert result == [SessionStarted(), ActionExecuted("action_listen")] and dispatcher.messages == []


# --- a threat, and 「不用人工了」, while paused (run by weiquan/ops/paused.py) --------------------------------------

THREAT_WHILE_PAUSED = [
    {"event": "session_started"},
    {"event": "slot", "name": "harassment_type", "value": ["calls"]},
    {"event": "slot", "name": "requested_slot", "value": "platform"},
    {"event": "user", "text": "转人工", "timestamp": NOW - 60},
    {"event": "pause"},
    {"event": "user", "text": "卖家刚才说知道我家住哪，要上门弄死我", "timestamp": NOW - 1},
]


@pytest.mark.parametrize("taken", [False, True], ids=["waiting", "taken over"])
async def test_a_threat_while_paused_gets_the_police_first_and_marks_the_hand_off(store, taken: bool) -> None:
    handoff = store.create(state.request(None, "u1", "socketio", NOW - 60, 300, offline=False))
    if taken:
        store.replace(state.take_over(handoff, NOW - 30, "小王"), expected=Status.WAITING)
    store.create(state.request(None, "u0", "socketio", NOW - 90, 300, offline=False))  # asked earlier, no threat
    dispatcher = CollectingDispatcher()
    events = await action(ActionHandoffSafety, store).run(
        dispatcher, tracker(THREAT_WHILE_PAUSED, {"harassment_type": ["calls"]}, paused=True), DOMAIN)
    assert said(dispatcher) == ["utter_safety_police_first", "utter_handoff_safety_flagged"]
    advice = dispatcher.messages[0]
    assert advice["police"] == SERVICES.rules.contacts["police"] and advice["custom"]["kind"] == "safety"
    # Stays paused (no ConversationResumed), records the threat, listens.
    assert events == [SlotSet("safety_threat", True), SlotSet("safety_advised", True), ActionExecuted("action_listen")]
    marked = store.get("u1")
    assert marked.safety_at == NOW and marked.status is (Status.ACTIVE if taken else Status.WAITING)
    assert marked.summary["safety"] is True and marked.summary["lines"][0].startswith("⚠️")
    assert marked.last_user_message == "卖家刚才说知道我家住哪，要上门弄死我"
    first = store.handoffs([Status.ACTIVE if taken else Status.WAITING])[0]
    assert first.sender_id == "u1"


async def test_a_threat_while_paused_is_answered_even_when_the_store_is_broken(tmp_path) -> None:
    broken = SqlHandoffStore(f"sqlite:///{tmp_path / 'x.db'}")
    broken.engine.dispose()
    (tmp_path / "x.db").unlink()
    (tmp_path / "x.db").mkdir()
    dispatcher = CollectingDispatcher()
    events = await action(ActionHandoffSafety, broken).run(dispatcher, tracker(THREAT_WHILE_PAUSED, paused=True),
                                                           DOMAIN)
    assert said(dispatcher) == ["utter_safety_police_first"]
    assert SlotSet("safety_threat", True) in events


@pytest.mark.parametrize("taken", [False, True], ids=["waiting", "taken over"])
async def test_cancel_while_paused_ends_the_hand_off_and_the_form_asks_again(store, taken: bool) -> None:
    handoff = store.create(state.request(None, "u1", "wechat", NOW - 60, 300, offline=False))
    if taken:
        store.replace(state.take_over(handoff, NOW - 30), expected=Status.WAITING)
    events = [*PAUSED_IN_FORM[:-1], {"event": "user", "text": "不用人工了"}]  # still paused: no resume yet
    slots = {"harassment_type": ["sms"], "platform": "taobao", "success_time": "5天", "requested_slot": "platform"}
    dispatcher = CollectingDispatcher()
    result = await action(ActionHandoffCancel, store).run(
        dispatcher, tracker(events, slots, loop="complaint_form", paused=True), DOMAIN)
    assert said(dispatcher) == ["utter_handoff_cancelled", "utter_ask_platform"]
    assert result == [ConversationResumed(), SlotSet("platform", None), SlotSet("success_time", None),
                      ActiveLoop("complaint_form"), ActionExecuted("action_listen")]
    assert (store.get("u1").status, store.get("u1").ending) == (Status.CLOSED, Ending.CANCELLED)


async def test_cancel_while_paused_without_an_open_hand_off_still_gives_the_bot_back(store) -> None:
    dispatcher = CollectingDispatcher()
    result = await action(ActionHandoffCancel, store).run(dispatcher, tracker([{"event": "pause"}], paused=True),
                                                          DOMAIN)
    assert said(dispatcher) == ["utter_handoff_cancelled"]
    assert result == [ConversationResumed(), ActionExecuted("action_listen")]


async def test_cancel_without_a_hand_off_is_a_short_answer(store) -> None:
    dispatcher = CollectingDispatcher()
    assert await action(ActionHandoffCancel, store).run(dispatcher, tracker(loop="complaint_form"), DOMAIN) == []
    assert said(dispatcher) == ["utter_handoff_cancel_none"]  # and the rule lets the form ask again
    closed = store.create(state.request(None, "u1", "rest", NOW - 60, 300, offline=False))
    store.replace(state.release(closed, NOW - 5), expected=Status.WAITING)
    dispatcher = CollectingDispatcher()
    assert await action(ActionHandoffCancel, store).run(dispatcher, tracker(), DOMAIN) == []
    assert said(dispatcher) == ["utter_handoff_cancel_none"] and store.get("u1").ending is Ending.RELEASED


async def test_cancel_of_an_open_hand_off_the_bot_was_not_paused_for_closes_it(store) -> None:
    store.create(state.request(None, "u1", "rest", NOW - 60, 300, offline=False))
    dispatcher = CollectingDispatcher()
    assert await action(ActionHandoffCancel, store).run(dispatcher, tracker(), DOMAIN) == []
    assert said(dispatcher) == ["utter_handoff_cancelled"] and store.get("u1").ending is Ending.CANCELLED


def test_the_offer_is_one_button_that_asks_for_a_person() -> None:
    buttons = DOMAIN["responses"]["utter_handoff_offer"][0]["buttons"]
    assert [button["payload"] for button in buttons] == ["/request_human"]


def test_status_lines_are_marked_for_the_widget() -> None:
    states = {name: DOMAIN["responses"][name][0]["custom"]["state"] for name in (
        "utter_handoff_waiting", "utter_handoff_nobody", "utter_handoff_connected", "utter_handoff_released",
        "utter_handoff_timeout_busy", "utter_handoff_timeout_offline", "utter_handoff_ended",
        "utter_handoff_requeued", "utter_handoff_cancelled")}
    assert states["utter_handoff_waiting"] == "waiting" and states["utter_handoff_connected"] == "connected"
    assert DOMAIN["responses"]["utter_handoff_waiting"][0]["text"].startswith("已转人工，请稍候")
    assert DOMAIN["responses"]["utter_handoff_connected"][0]["text"].startswith("客服已接入")
    assert (states["utter_handoff_requeued"], states["utter_handoff_cancelled"]) == ("waiting", "released")
