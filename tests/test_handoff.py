"""Hand-off, the pure parts: the state machine, settings and availability, what a pause means for the slots, and
the operator's summary and transcript read from a tracker."""
from __future__ import annotations

from datetime import date, datetime
from datetime import time as clock_time

import pytest

from weiquan.core.clock import BEIJING
from weiquan.core.contracts import SuccessTime
from weiquan.handoff import pause, state, summary
from weiquan.handoff.settings import (
    OPERATOR_FRESH_S,
    SERVICE_FRESH_S,
    HandoffSettings,
    availability,
    parse_hours,
    within_hours,
)
from weiquan.handoff.state import Ending, Status, TransitionError

T0 = 1_800_000_000.0


def waiting(offline: bool = False) -> state.Handoff:
    return state.request(None, "u1", "socketio", T0, 600, offline=offline)


# --- the state machine --------------------------------------------------------------------------------------------


def test_a_request_waits_until_its_deadline() -> None:
    handoff = waiting()
    assert handoff.status is Status.WAITING and handoff.is_open
    assert handoff.deadline_at == T0 + 600 and handoff.channel == "socketio"


def test_asking_again_keeps_the_open_hand_off_and_its_place_in_the_queue() -> None:
    first = waiting()
    assert state.request(first, "u1", "socketio", T0 + 50, 600, offline=True) is first
    active = state.take_over(first, T0 + 60)
    assert state.request(active, "u1", "socketio", T0 + 70, 600, offline=False) is active


def test_a_closed_hand_off_can_be_asked_for_again() -> None:
    closed = state.release(state.take_over(waiting(), T0 + 1), T0 + 2)
    again = state.request(closed, "u1", "rest", T0 + 100, 60, offline=False)
    assert again.status is Status.WAITING and again.requested_at == T0 + 100 and again.ending is None


def test_take_over_then_release() -> None:
    active = state.take_over(waiting(), T0 + 5, "小王")
    assert (active.status, active.taken_at, active.operator) == (Status.ACTIVE, T0 + 5, "小王")
    closed = state.release(active, T0 + 9)
    assert (closed.status, closed.ending, closed.closed_at) == (Status.CLOSED, Ending.RELEASED, T0 + 9)


def test_a_waiting_hand_off_can_be_released_without_taking_it() -> None:
    assert state.release(waiting(), T0 + 1).ending is Ending.RELEASED


@pytest.mark.parametrize("move", [state.take_over, state.release, state.end, state.cancel])
def test_moves_on_a_missing_or_closed_hand_off_are_refused(move) -> None:
    closed = state.release(waiting(), T0 + 1)
    for handoff in (None, closed):
        with pytest.raises(TransitionError):
            move(handoff, T0 + 2)


def test_an_active_hand_off_cannot_be_taken_twice() -> None:
    with pytest.raises(TransitionError):
        state.take_over(state.take_over(waiting(), T0 + 1), T0 + 2)


def test_time_out_only_after_the_deadline_and_only_while_waiting() -> None:
    handoff = waiting()
    with pytest.raises(TransitionError):
        state.time_out(handoff, T0 + 599)
    assert state.time_out(handoff, T0 + 600).ending is Ending.TIMEOUT
    with pytest.raises(TransitionError):  # a person has it: no timer takes it away
        state.time_out(state.take_over(handoff, T0 + 1), T0 + 10_000)


def test_a_restart_ends_an_open_hand_off() -> None:
    assert state.end(state.take_over(waiting(), T0 + 1), T0 + 2).ending is Ending.RESTARTED


@pytest.mark.parametrize("taken", [False, True], ids=["waiting", "active"])
def test_the_user_can_cancel_an_open_hand_off(taken: bool) -> None:
    handoff = state.take_over(waiting(), T0 + 1) if taken else waiting()
    cancelled = state.cancel(handoff, T0 + 2)
    assert (cancelled.status, cancelled.ending, cancelled.closed_at) == (Status.CLOSED, Ending.CANCELLED, T0 + 2)


def test_an_idle_active_hand_off_goes_back_to_the_queue_keeping_its_place() -> None:
    active = state.take_over(waiting(), T0 + 5, "小王")
    requeued = state.requeue(active, T0 + 1000, 300)
    assert (requeued.status, requeued.operator, requeued.taken_at) == (Status.WAITING, None, None)
    assert (requeued.requested_at, requeued.requeued_at, requeued.deadline_at) == (T0, T0 + 1000, T0 + 1300)
    assert requeued.waiting_since == T0 + 1000 and waiting().waiting_since == T0
    with pytest.raises(TransitionError):  # the new wait then ends like any wait
        state.time_out(requeued, T0 + 1299)
    assert state.time_out(requeued, T0 + 1300).ending is Ending.TIMEOUT
    for not_active in (None, waiting(), state.release(waiting(), T0 + 1)):
        with pytest.raises(TransitionError):
            state.requeue(not_active, T0 + 1000, 300)


# --- settings and availability ------------------------------------------------------------------------------------


def at_beijing(hour: int, minute: int = 0) -> float:
    return datetime(2026, 11, 24, hour, minute, tzinfo=BEIJING).timestamp()


def test_settings_from_the_environment() -> None:
    settings = HandoffSettings.from_env({"HANDOFF_OPERATORS": "ON", "HANDOFF_WAIT_MINUTES": "2.5",
                                         "HANDOFF_HOURS": "09:00-12:00，13:30-21:00"})
    assert settings.operators == "on" and settings.wait_s == 150
    assert settings.hours == ((clock_time(9), clock_time(12)), (clock_time(13, 30), clock_time(21)))
    assert HandoffSettings.from_env({}).operators == "auto" and HandoffSettings.from_env({}).wait_s == 600


def test_the_idle_and_requeue_times_from_the_environment() -> None:
    defaults = HandoffSettings.from_env({})
    assert (defaults.idle_s, defaults.requeue_wait_s) == (900, 300)
    settings = HandoffSettings.from_env({"HANDOFF_IDLE_MINUTES": "20", "HANDOFF_REQUEUE_WAIT_MINUTES": "0.5"})
    assert (settings.idle_s, settings.requeue_wait_s) == (1200, 30)


@pytest.mark.parametrize("env", [{"HANDOFF_OPERATORS": "maybe"}, {"HANDOFF_WAIT_MINUTES": "ten"},
                                 {"HANDOFF_WAIT_MINUTES": "0"}, {"HANDOFF_HOURS": "9-18"},
                                 {"HANDOFF_IDLE_MINUTES": "-5"}, {"HANDOFF_IDLE_MINUTES": "nan"},
                                 {"HANDOFF_REQUEUE_WAIT_MINUTES": "soon"}, {"HANDOFF_REQUEUE_WAIT_MINUTES": "inf"},
                                 {"HANDOFF_HOURS": "25:00-26:00"}, {"HANDOFF_HOURS": "09:00-24:30"}])
def test_bad_settings_fail_at_start_with_the_variable_named(env: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="HANDOFF_"):
        HandoffSettings.from_env(env)


def test_the_store_follows_the_production_database_settings() -> None:
    assert HandoffSettings.from_env({}).store_url.startswith("sqlite:///")
    assert HandoffSettings.from_env({"HANDOFF_STORE_URL": "sqlite:////tmp/x.db"}).store_url == "sqlite:////tmp/x.db"
    url = HandoffSettings.from_env({"DB_HOST": "db", "DB_PORT": "5433", "DB_NAME": "rasa", "DB_USER": "bot",
                                    "DB_PASSWORD": "p@ss word"}).store_url
    assert url == "postgresql://bot:p%40ss%20word@db:5433/rasa"


def test_hours_are_beijing_time_and_may_cross_midnight() -> None:
    day = parse_hours("09:00-18:00")
    assert within_hours(day, at_beijing(9)) and within_hours(day, at_beijing(17, 59))
    assert not within_hours(day, at_beijing(8, 59)) and not within_hours(day, at_beijing(18, 1))
    night = parse_hours("22:00-02:00")
    assert within_hours(night, at_beijing(23)) and within_hours(night, at_beijing(1))
    assert not within_hours(night, at_beijing(12))
    assert within_hours(parse_hours("00:00-24:00"), at_beijing(23, 59))
    assert within_hours((), at_beijing(3))


def test_nobody_is_available_without_a_running_console() -> None:
    settings = HandoffSettings(operators="on")
    now = at_beijing(10)
    assert not availability(settings, now, None, now).service_up
    assert not availability(settings, now, now - SERVICE_FRESH_S - 1, now).service_up
    assert availability(settings, now, now - 1, None).operators_online  # "on": no console page needed


def test_auto_counts_operators_while_a_console_page_is_open() -> None:
    settings, now = HandoffSettings(operators="auto"), at_beijing(10)
    assert availability(settings, now, now, now - 5).operators_online
    assert not availability(settings, now, now, now - OPERATOR_FRESH_S - 1).operators_online
    assert not availability(settings, now, now, None).operators_online


def test_off_and_outside_the_hours_mean_leave_a_message() -> None:
    now = at_beijing(20)
    assert not availability(HandoffSettings(operators="off"), now, now, now).operators_online
    evening_closed = HandoffSettings(operators="on", hours=parse_hours("09:00-18:00"))
    result = availability(evening_closed, now, now, now)
    assert result.service_up and not result.operators_online


# --- what a pause means ------------------------------------------------------------------------------------------


def slot(name: str, value: object) -> dict:
    return {"event": "slot", "name": name, "value": value}


EVENTS_WITH_PAUSE = [
    {"event": "action", "name": "action_session_start"}, {"event": "session_started"},
    {"event": "action", "name": "action_listen"},
    {"event": "user", "text": "卖家老是发短信骚扰我"}, slot("harassment_type", ["sms"]),
    {"event": "action", "name": "complaint_form"}, slot("requested_slot", "platform"),
    {"event": "user", "text": "转人工"}, {"event": "action", "name": "action_request_human"}, {"event": "pause"},
    {"event": "user", "text": "淘宝买的，交易成功5天了，他还打电话"},
    slot("platform", "taobao"), slot("success_time", "5天"), slot("harassment_type", ["sms", "calls"]),
    {"event": "user", "text": "好的"},
]


def test_slots_filled_while_paused_are_put_back() -> None:
    current = {"platform": "taobao", "success_time": "5天", "harassment_type": ["sms", "calls"],
               "requested_slot": "platform"}
    assert pause.restored_slots(EVENTS_WITH_PAUSE, current) == {
        "harassment_type": ["sms"], "platform": None, "success_time": None}


def test_nothing_to_restore_without_a_pause_or_when_values_are_unchanged() -> None:
    assert pause.restored_slots(EVENTS_WITH_PAUSE[:8], {"platform": "x"}) == {}
    same = [*EVENTS_WITH_PAUSE[:10], slot("harassment_type", ["sms"])]
    assert pause.restored_slots(same, {"harassment_type": ["sms"]}) == {}


def test_a_threat_answered_while_paused_is_not_undone_on_release() -> None:
    events = [*EVENTS_WITH_PAUSE, {"event": "user", "text": "卖家说要上门弄死我"},
              {"event": "action", "name": "action_handoff_safety"},
              slot("safety_threat", True), slot("safety_advised", True)]
    current = {"platform": "taobao", "success_time": "5天", "harassment_type": ["sms", "calls"],
               "safety_threat": True, "safety_advised": True}
    restored = pause.restored_slots(events, current)
    assert "safety_threat" not in restored and "safety_advised" not in restored
    assert restored["platform"] is None  # what was extracted is still put back


def test_a_restart_and_an_expired_session_are_told_apart() -> None:
    restart = [{"event": "user", "text": "/restart"}, {"event": "action", "name": "action_restart"},
               {"event": "restart"}, {"event": "action", "name": "action_session_start"}]
    expired = [{"event": "user", "text": "在吗"}, {"event": "action", "name": "action_listen"},
               {"event": "action", "name": "action_session_start"}]
    assert pause.follows_restart(restart) and not pause.follows_restart(expired)
    assert not pause.follows_restart([])


def test_metadata_of_the_latest_user_message() -> None:
    events = [{"event": "user", "metadata": {"wechat": {"transfer_customer_service": True}}},
              {"event": "action", "name": "action_listen"}]
    assert pause.latest_user_metadata(events)["wechat"]["transfer_customer_service"] is True
    assert pause.latest_user_metadata([]) == {}


# --- summary and transcript ---------------------------------------------------------------------------------------

TODAY = date(2026, 11, 24)


def read_time(said: str, earliest: str, latest: str) -> dict[str, str | None]:
    """The success_time slot as the form sets it once it has read the words."""
    return SuccessTime(said, date.fromisoformat(earliest), date.fromisoformat(latest)).to_slot()


def test_words_the_form_has_not_read_yet_are_shown_without_a_day_count() -> None:
    result = summary.summarize({"events": [slot("success_time", "上个月")]}, TODAY)
    assert result["days_since_success"] is None
    assert "交易成功：用户说「上个月」" in result["lines"]


def test_summary_shows_what_the_bot_learned_in_chinese_even_after_the_form_reset() -> None:
    events = [
        slot("platform", "taobao"), slot("trade_status", "success"), slot("success_time", "5天前"),
        slot("success_time", read_time("5天前", "2026-11-19", "2026-11-19")),
        slot("harassment_type", ["calls", "im_insult"]), slot("evidence", ["chat_screenshot"]),
        slot("outcome", "file_online"),
        slot("platform", None), slot("harassment_type", None),  # action_reset_complaint after the ruling
    ]
    result = summary.summarize({"events": events, "slots": {"outcome": "file_online"}}, TODAY)
    assert result["facts"]["platform"] == "taobao" and result["days_since_success"] == [5, 5]
    assert result["lines"] == [
        "平台：淘宝", "订单状态：交易成功", "交易成功：5 天前（用户说「5天前」）", "骚扰方式：打电话骚扰、旺旺上辱骂",
        "已有证据：旺旺聊天截图", "目前结论：在线投诉期限内，已告诉用户如何在线投诉"]
    assert not result["safety"]


def test_summary_of_a_vague_date_a_threat_and_unknowns() -> None:
    events = [slot("success_time", "半个多月前"),
              slot("success_time", read_time("半个多月前", "2026-11-01", "2026-11-08")), slot("safety_threat", True)]
    result = summary.summarize({"events": events}, TODAY)
    assert result["safety"] and result["lines"][0].startswith("⚠️")
    assert "交易成功：16–23 天前（用户说「半个多月前」）" in result["lines"]
    assert "平台：还不知道" in result["lines"]


def test_a_restart_or_new_session_starts_the_summary_afresh() -> None:
    events = [slot("platform", "tmall"), {"event": "restart"}, slot("trade_status", "closed")]
    facts = summary.summarize({"events": events}, TODAY)["facts"]
    assert facts["platform"] is None and facts["trade_status"] == "closed"


def test_phone_and_id_numbers_are_masked_in_summary_and_transcript() -> None:
    events = [slot("success_time", "13812345678说的那天"),
              {"event": "user", "text": "我电话13812345678，身份证110101199003071234", "timestamp": 1.0}]
    tracker = {"events": events}
    assert "13812345678" not in str(summary.summarize(tracker, TODAY))
    line = summary.last_user_line(tracker)
    assert line is not None and "138****5678" in line.text and "110101********1234" in line.text


def test_transcript_speakers_and_button_titles() -> None:
    events = [
        {"event": "user", "text": "/greet", "timestamp": 1.0},
        {"event": "bot", "text": "你好！", "timestamp": 2.0,
         "data": {"buttons": [{"title": "找人工客服", "payload": "/request_human"}]}},
        {"event": "user", "text": "/request_human", "timestamp": 3.0},
        {"event": "bot", "text": "已转人工，请稍候。", "timestamp": 4.0,
         "data": {"custom": {"kind": "handoff_status", "state": "waiting"}}},
        {"event": "user", "text": "EXTERNAL: x", "metadata": {"is_external": True}, "timestamp": 4.5},
        {"event": "bot", "text": "我是客服小王", "timestamp": 5.0, "metadata": {"handoff": "operator"},
         "data": {"custom": {"kind": "operator"}}},
        {"event": "bot", "text": None, "timestamp": 6.0},
    ]
    lines = [(line.speaker, line.text) for line in summary.lines({"events": events})]
    assert lines == [("user", "（打开了聊天窗口）"), ("bot", "你好！"), ("user", "找人工客服"),
                     ("status", "已转人工，请稍候。"), ("operator", "我是客服小王")]
    assert [line.text for line in summary.user_lines_since({"events": events}, 2.5)] == ["找人工客服"]


def test_the_operators_pause_and_the_resume_do_not_move_the_start_of_the_stretch() -> None:
    events = [*EVENTS_WITH_PAUSE, {"event": "pause"}, {"event": "bot", "text": "客服已接入"},
              {"event": "user", "text": "是天猫"}, slot("platform", "tmall"), {"event": "resume"}]
    current = {"platform": "tmall", "success_time": "5天", "harassment_type": ["sms", "calls"]}
    assert pause.restored_slots(events, current) == {
        "harassment_type": ["sms"], "platform": None, "success_time": None}


def test_an_earlier_finished_stretch_is_left_alone() -> None:
    earlier = [{"event": "session_started"}, {"event": "pause"}, slot("platform", "tmall"), {"event": "resume"},
               {"event": "user", "text": "淘宝"}, slot("platform", "taobao"), {"event": "pause"},
               {"event": "user", "text": "好"}, {"event": "resume"}]
    assert pause.restored_slots(earlier, {"platform": "taobao"}) == {}


def test_after_an_expired_session_the_stretch_starts_at_the_reasserted_pause() -> None:
    events = [{"event": "session_started"}, slot("platform", "tmall"), {"event": "pause"},
              {"event": "session_started"}, {"event": "pause"}, {"event": "user", "text": "淘宝"},
              slot("platform", "taobao")]
    assert pause.restored_slots(events, {"platform": "taobao"}) == {"platform": None}


def test_the_summary_leaves_out_what_was_extracted_while_paused() -> None:
    events = [slot("success_time", read_time("5天", "2026-11-19", "2026-11-19")),
              slot("harassment_type", ["calls"]), {"event": "pause"},
              {"event": "user", "text": "昨晚还在打，还把我的信息发到网上了"},
              slot("success_time", "昨晚"), slot("harassment_type", ["info_leak"])]
    paused_slots = {"success_time": "昨晚", "harassment_type": ["info_leak"]}
    lines = summary.summarize({"events": events, "slots": paused_slots}, TODAY)["lines"]
    assert "交易成功：5 天前（用户说「5天」）" in lines and "骚扰方式：打电话骚扰" in lines
    resumed = [*events, {"event": "resume"}, slot("platform", "taobao")]
    assert "平台：淘宝" in summary.summarize({"events": resumed}, TODAY)["lines"]


def test_a_threat_while_paused_is_in_the_summary_though_other_facts_then_are_not() -> None:
    events = [slot("platform", "taobao"), {"event": "pause"}, {"event": "user", "text": "他说要找人上门"},
              slot("trade_status", "success"), slot("safety_threat", True)]
    result = summary.summarize({"events": events, "slots": {"safety_threat": True, "trade_status": "success"}},
                               TODAY)
    assert result["safety"] is True and result["lines"][0].startswith("⚠️")
    assert "订单状态：还不知道" in result["lines"] and "平台：淘宝" in result["lines"]
    from_slots_only = summary.summarize({"events": [{"event": "pause"}], "slots": {"safety_threat": True}}, TODAY)
    assert from_slots_only["safety"] is True


def test_with_safety_marks_a_summary_once() -> None:
    plain = summary.summarize({}, TODAY)
    marked = summary.with_safety(plain)
    assert marked["safety"] is True and marked["lines"] == [summary.texts()["safety_threat"], *plain["lines"]]
    assert summary.with_safety(marked) is marked and plain["safety"] is False
