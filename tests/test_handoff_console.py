"""The operator console's HTTP side, run for real on a loopback port: its JSON API (auth, every move, errors), the
sweep (left messages, timeouts), live updates and the page's security headers. Rasa is the offline `FakeRasa`; the
store is a real SQLite file."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import date

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from weiquan.core.clock import FakeClock
from weiquan.handoff import state, summary
from weiquan.handoff.console import create_app, token_matches
from weiquan.handoff.rasa_api import FakeRasa
from weiquan.handoff.service import HandoffService
from weiquan.handoff.settings import HandoffSettings
from weiquan.handoff.state import Ending, Status
from weiquan.stores.handoff import OPERATOR, SERVICE, SqlHandoffStore
from weiquan.stores.outbox import OperatorOutbox

TOKEN = "operator-token-for-tests-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CONNECTED = {"text": "客服已接入，接下来由真人为你服务。", "custom": {"kind": "handoff_status", "state": "connected"}}
REQUEUED = {"text": "刚才的客服暂时离开了，你的对话已经重新排队。",
            "custom": {"kind": "handoff_status", "state": "waiting"}}
IDLE_S, REQUEUE_WAIT_S = 900.0, 300.0


START = 1_800_000_000.0


@dataclass
class Console:
    client: TestClient
    store: SqlHandoffStore
    rasa: FakeRasa
    clock: FakeClock
    service: HandoffService

    def ask(self, sender: str = "u1", channel: str = "socketio", offline: bool = False, wait_s: float = 600) -> None:
        """What action_request_human does: queue the conversation and pause it."""
        self.rasa.conversation(sender, channel)["paused"] = True
        self.rasa.user_says(sender, "转人工", at=self.clock.at - 1)
        self.store.create(state.request(None, sender, channel, self.clock.at, wait_s, offline=offline))


@pytest_asyncio.fixture
async def console(tmp_path) -> AsyncIterator[Console]:
    store = SqlHandoffStore(f"sqlite:///{tmp_path / 'handoff.db'}")
    outbox = OperatorOutbox(f"sqlite:///{tmp_path / 'handoff.db'}")
    clock = FakeClock(START)
    rasa = FakeRasa(clock, {"utter_handoff_connected": CONNECTED, "utter_handoff_requeued": REQUEUED}, outbox=outbox)
    rasa.reachable = {"u1", "w1"}  # a live widget socket, a WeChat user the API reaches
    service = HandoffService(store, rasa, HandoffSettings(idle_s=IDLE_S, requeue_wait_s=REQUEUE_WAIT_S), clock,
                             outbox=outbox)
    app = create_app(service, TOKEN, sweep_interval_s=3600, poll_interval_s=0.05, heartbeat_s=0.1)
    async with TestClient(TestServer(app)) as client:
        yield Console(client, store, rasa, clock, service)


# --- authentication -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer"}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Bearer {TOKEN}x"},
    {"Authorization": f"Basic {TOKEN}"}, {"Authorization": TOKEN}, {"X-Token": TOKEN},
])
@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/api/conversations?status=all"), ("GET", "/api/conversations/u1"), ("GET", "/api/events"),
    ("POST", "/api/conversations/u1/takeover"), ("POST", "/api/conversations/u1/messages"),
    ("POST", "/api/conversations/u1/release"),
])
async def test_every_api_call_without_the_right_token_is_401(console: Console, headers, method, path) -> None:
    console.ask()
    reply = await console.client.request(method, path, headers=headers, json={"text": "hi"})
    assert reply.status == 401
    assert reply.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await reply.json())["error"] == "unauthorized"
    assert console.store.get("u1").status is Status.WAITING and console.rasa.delivered == []


def test_token_comparison() -> None:
    assert token_matches(f"Bearer {TOKEN}", TOKEN) and token_matches(f"bearer  {TOKEN}", TOKEN)
    assert not token_matches(f"Bearer {TOKEN[:-1]}", TOKEN) and not token_matches(None, TOKEN)
    assert not token_matches("Bearer 令牌", TOKEN)  # non-ASCII does not crash the comparison


def test_a_short_operator_token_is_refused_at_start(tmp_path) -> None:
    clock = FakeClock(START)
    store = SqlHandoffStore(f"sqlite:///{tmp_path / 'h.db'}")
    service = HandoffService(store, FakeRasa(clock), HandoffSettings(), clock)
    with pytest.raises(ValueError, match="OPERATOR_TOKEN"):
        create_app(service, "short")


# --- the page -----------------------------------------------------------------------------------------------------


async def test_the_page_is_chinese_served_with_a_strict_csp_and_needs_no_token(console: Console) -> None:
    reply = await console.client.get("/")
    assert reply.status == 200
    page = await reply.text()
    assert '<html lang="zh-CN">' in page and "人工客服台" in page and "innerHTML" not in page
    csp = reply.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "connect-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    script = await (await console.client.get("/static/console.js")).text()
    assert not any(sink in script for sink in (".innerHTML", ".outerHTML", "insertAdjacentHTML", "document.write",
                                               "eval(")) and "textContent" in script
    assert (await console.client.get("/static/other.js")).status == 404


# --- the API ------------------------------------------------------------------------------------------------------


async def test_list_by_status_with_summary_and_last_user_message(console: Console) -> None:
    console.ask("u1")
    console.ask("u2", channel="wechat")
    await console.service.sweep()  # reads the trackers: last user message, summary
    reply = await console.client.get("/api/conversations?status=waiting", headers=AUTH)
    assert reply.status == 200 and reply.headers["Cache-Control"] == "no-store"
    listed = await reply.json()
    assert [item["sender_id"] for item in listed] == ["u1", "u2"]
    first = listed[0]
    assert set(first) >= {"sender_id", "channel", "status", "since", "summary", "last_user_message"}
    assert (first["channel"], first["status"], first["last_user_message"]) == ("socketio", "waiting", "转人工")
    assert first["since"].endswith("+08:00") and "平台：还不知道" in first["summary"]["lines"]
    assert await (await console.client.get("/api/conversations?status=active", headers=AUTH)).json() == []
    assert len(await (await console.client.get("/api/conversations?status=all", headers=AUTH)).json()) == 2
    bad = await console.client.get("/api/conversations?status=closed", headers=AUTH)
    assert bad.status == 400


async def test_take_over_send_release_round_trip(console: Console) -> None:
    console.ask()
    reply = await console.client.post("/api/conversations/u1/takeover", headers=AUTH, json={"operator": "小王"})
    assert reply.status == 200 and (await reply.json())["status"] == "active"
    pause, connected = console.rasa.conversation("u1")["events"][-2:]
    assert pause["event"] == "pause" and connected["text"].startswith("客服已接入")
    assert connected["data"]["custom"] == {"kind": "handoff_status", "state": "connected"}

    reply = await console.client.post("/api/conversations/u1/messages", headers=AUTH, json={"text": " 你好，我是客服 "})
    sent = await reply.json()
    assert (sent["sent"], sent["delivery"]) == (True, "delivered")  # the buyer's socket acknowledged it
    assert console.service.outbox.pending("u1") == []
    sender, channel, event = console.rasa.delivered[-1]
    assert event["metadata"]["delivery_id"] == sent["message_id"]
    assert (sender, channel, event["text"]) == ("u1", "socketio", "你好，我是客服")
    assert event["metadata"]["handoff"] == "operator" and event["data"]["custom"]["kind"] == "operator"
    assert event["data"]["custom"]["label"] == "人工客服"

    detail = await (await console.client.get("/api/conversations/u1", headers=AUTH)).json()
    assert [(line["from"], line["text"]) for line in detail["transcript"]][-2:] == [
        ("status", CONNECTED["text"]), ("operator", "你好，我是客服")]

    console.rasa.reachable.discard("u1")  # the buyer closed the page: nothing acknowledges the next one
    reply = await console.client.post("/api/conversations/u1/messages", headers=AUTH, json={"text": "还在吗"})
    sent = await reply.json()
    assert sent["delivery"] == "stored"
    assert [(m.id, m.message["text"]) for m in console.service.outbox.pending("u1")] == [(sent["message_id"], "还在吗")]

    reply = await console.client.post("/api/conversations/u1/release", headers=AUTH)
    assert reply.status == 200 and (await reply.json())["status"] == "closed"
    assert console.rasa.conversation("u1")["paused"] is False
    assert console.rasa.executed == [("u1", "action_handoff_resume", "socketio")]
    assert console.store.get("u1").ending is Ending.RELEASED


async def test_moves_out_of_order_are_409_with_a_chinese_reason(console: Console) -> None:
    console.ask()
    early = await console.client.post("/api/conversations/u1/messages", headers=AUTH, json={"text": "在吗"})
    assert early.status == 409 and (await early.json())["message"] == "请先接入这个会话再回复。"
    assert (await console.client.post("/api/conversations/u1/takeover", headers=AUTH)).status == 200
    twice = await console.client.post("/api/conversations/u1/takeover", headers=AUTH)
    assert twice.status == 409 and "不在等待中" in (await twice.json())["message"]
    assert (await console.client.post("/api/conversations/u1/release", headers=AUTH)).status == 200
    again = await console.client.post("/api/conversations/u1/release", headers=AUTH)
    assert again.status == 409
    for path in ("takeover", "messages", "release"):
        missing = await console.client.post(f"/api/conversations/nobody/{path}", headers=AUTH, json={"text": "x"})
        assert missing.status == 404
    assert (await console.client.get("/api/conversations/nobody", headers=AUTH)).status == 404


async def test_bad_message_bodies_get_a_4xx(console: Console) -> None:
    console.ask()
    await console.client.post("/api/conversations/u1/takeover", headers=AUTH)
    url = "/api/conversations/u1/messages"
    too_long = ('{"text": "%s"}' % ("字" * 1001)).encode()
    cases = [(b"{broken", 400), (b"[]", 400), (b'{"text": ""}', 400), (b'{"text": 5}', 400),
             (b'{"text": "   "}', 400), (too_long, 413)]
    for body, status in cases:
        reply = await console.client.post(url, headers={**AUTH, "Content-Type": "application/json"}, data=body)
        assert reply.status == status, body[:20]
        assert (await reply.json())["message"]
    huge = await console.client.post(url, headers=AUTH, data=b"x" * 100_000)
    assert huge.status == 413
    assert [e for _, _, e in console.rasa.delivered if e["metadata"]["handoff"] == "operator"] == []


async def test_sender_ids_with_slashes_and_chinese_work(console: Console) -> None:
    console.ask("rest/用户 1")
    reply = await console.client.post("/api/conversations/rest%2F%E7%94%A8%E6%88%B7%201/takeover", headers=AUTH)
    assert reply.status == 200 and (await reply.json())["sender_id"] == "rest/用户 1"


async def test_html_is_returned_as_data_never_interpreted(console: Console) -> None:
    console.ask()
    console.rasa.user_says("u1", "<img src=x onerror=alert(1)>")
    await console.service.sweep()
    listed = await (await console.client.get("/api/conversations?status=all", headers=AUTH)).json()
    assert listed[0]["last_user_message"] == "<img src=x onerror=alert(1)>"


async def test_rest_messages_are_stored_and_wechat_respects_the_48_hour_window(console: Console) -> None:
    console.ask("r1", channel="rest")
    await console.client.post("/api/conversations/r1/takeover", headers=AUTH)
    reply = await console.client.post("/api/conversations/r1/messages", headers=AUTH, json={"text": "收到"})
    assert (await reply.json())["delivery"] == "stored"  # REST cannot push: it is shown in the next reply

    console.ask("w1", channel="wechat")
    await console.client.post("/api/conversations/w1/takeover", headers=AUTH)
    ok = await console.client.post("/api/conversations/w1/messages", headers=AUTH, json={"text": "你好"})
    assert (await ok.json())["delivery"] == "delivered"  # WeChat's API accepted it
    console.clock.at += 48 * 3600 + 60  # the user wrote nothing for two days
    late = await console.client.post("/api/conversations/w1/messages", headers=AUTH, json={"text": "还在吗"})
    assert late.status == 409 and "48 小时" in (await late.json())["message"]
    assert [e["text"] for s, _, e in console.rasa.delivered if s == "w1"][-1] == "你好"


async def test_when_rasa_is_down_a_move_is_undone_and_says_so(console: Console) -> None:
    console.ask()
    console.rasa.down = True
    reply = await console.client.post("/api/conversations/u1/takeover", headers=AUTH)
    assert reply.status == 502 and "连不上" in (await reply.json())["message"]
    assert console.store.get("u1").status is Status.WAITING  # nothing half-done
    console.rasa.down = False
    await console.client.post("/api/conversations/u1/takeover", headers=AUTH)
    console.rasa.down = True
    assert (await console.client.post("/api/conversations/u1/release", headers=AUTH)).status == 502
    assert console.store.get("u1").status is Status.ACTIVE
    sent = await console.client.post("/api/conversations/u1/messages", headers=AUTH, json={"text": "你好"})
    assert sent.status == 502 and console.service.outbox.pending("u1") == []  # nothing to show the buyer later
    detail = await (await console.client.get("/api/conversations/u1", headers=AUTH)).json()
    assert detail["rasa_reachable"] is False


# --- the sweep ----------------------------------------------------------------------------------------------------


async def test_sweep_keeps_left_messages_and_gives_a_waiting_conversation_back_after_the_wait(console) -> None:
    console.ask(offline=True, wait_s=300)
    console.rasa.user_says("u1", "我想请客服回个电话", at=console.clock.at + 10)
    console.clock.at += 20
    await console.service.sweep()
    assert console.store.seen(SERVICE) == console.clock.at  # the action server now knows a console runs
    assert [m.text for m in console.store.left_messages("u1")] == ["我想请客服回个电话"]
    detail = await (await console.client.get("/api/conversations/u1", headers=AUTH)).json()
    assert detail["left"][0]["text"] == "我想请客服回个电话" and detail["offline"] is True
    assert console.rasa.executed == []

    console.clock.at += 300
    await console.service.sweep()
    assert console.store.get("u1").ending is Ending.TIMEOUT
    assert console.rasa.executed == [("u1", "action_handoff_resume", "socketio")]
    assert console.rasa.conversation("u1")["paused"] is False
    assert [m.text for m in console.store.left_messages("u1")] == ["我想请客服回个电话"]  # kept after closing


async def test_what_was_left_just_before_a_release_is_kept(console: Console) -> None:
    console.ask(offline=True)
    console.rasa.user_says("u1", "请尽快联系我", at=console.clock.at + 1)  # no sweep since
    assert (await console.client.post("/api/conversations/u1/release", headers=AUTH)).status == 200
    assert [m.text for m in console.store.left_messages("u1")] == ["请尽快联系我"]


async def test_a_conversation_whose_operator_keeps_writing_stays_with_them(console: Console) -> None:
    console.ask(wait_s=60)
    await console.client.post("/api/conversations/u1/takeover", headers=AUTH)
    for _ in range(6):  # an hour and a half, an operator message every quarter of an hour less a minute
        console.clock.at += IDLE_S - 60
        await console.service.sweep()
        assert console.store.get("u1").status is Status.ACTIVE
        await console.client.post("/api/conversations/u1/messages", headers=AUTH, json={"text": "我还在看，请稍等"})
    assert console.rasa.executed == []  # the waiting deadline long past: never timed out while a person has it


async def take_over_and_walk_away(console: Console, sender: str = "u1") -> None:
    console.ask(sender, wait_s=60)
    await console.client.post(f"/api/conversations/{sender}/takeover", headers=AUTH, json={"operator": "小王"})
    console.rasa.user_says(sender, "你好，在吗", at=console.clock.at + 5)  # the user writing does not count
    console.clock.at += IDLE_S - 1
    await console.service.sweep()
    assert console.store.get(sender).status is Status.ACTIVE
    console.clock.at += 1


async def test_an_idle_operator_puts_the_conversation_back_in_the_queue_then_the_bot_takes_it(console) -> None:
    await take_over_and_walk_away(console)
    requeued_at = console.clock.at
    await console.service.sweep()
    handoff = console.store.get("u1")
    assert (handoff.status, handoff.operator, handoff.requeued_at) == (Status.WAITING, None, requeued_at)
    assert handoff.deadline_at == requeued_at + REQUEUE_WAIT_S
    sender, channel, told = console.rasa.delivered[-1]  # the user is told, through their channel
    assert (sender, channel, told["text"]) == ("u1", "socketio", REQUEUED["text"])
    assert told["metadata"] == {"handoff": "status", "response": "utter_handoff_requeued"}
    listed = await (await console.client.get("/api/conversations?status=waiting", headers=AUTH)).json()
    assert listed[0]["sender_id"] == "u1" and listed[0]["since"] == listed[0]["requeued_at"]
    assert console.rasa.conversation("u1")["paused"] is True  # still waiting for a person, not the bot

    console.rasa.user_says("u1", "怎么没人了", at=console.clock.at + 10)
    console.clock.at += 20
    await console.service.sweep()
    # What the user wrote to the operator is not a left message; what they wrote since the requeue is.
    assert [m.text for m in console.store.left_messages("u1")] == ["怎么没人了"]

    console.clock.at = requeued_at + REQUEUE_WAIT_S
    await console.service.sweep()
    assert console.store.get("u1").ending is Ending.TIMEOUT  # the time-out path: the bot says so (actions)
    assert console.rasa.executed == [("u1", "action_handoff_resume", "socketio")]
    assert console.rasa.conversation("u1")["paused"] is False


async def test_another_operator_can_take_a_requeued_conversation(console: Console) -> None:
    await take_over_and_walk_away(console)
    await console.service.sweep()
    reply = await console.client.post("/api/conversations/u1/takeover", headers=AUTH, json={"operator": "小李"})
    assert reply.status == 200 and console.store.get("u1").operator == "小李"
    console.clock.at += IDLE_S - 1
    await console.service.sweep()
    assert console.store.get("u1").status is Status.ACTIVE  # idle counted from the new take-over


async def test_a_requeue_the_user_could_not_be_told_of_is_tried_again(console: Console) -> None:
    await take_over_and_walk_away(console)
    console.rasa.down = True
    await console.service.sweep()
    assert console.store.get("u1").status is Status.ACTIVE
    console.rasa.down = False
    await console.service.sweep()
    assert console.store.get("u1").status is Status.WAITING
    assert console.rasa.delivered[-1][2]["text"] == REQUEUED["text"]


async def test_a_threat_seen_in_the_tracker_marks_the_conversation_and_puts_it_first(console: Console) -> None:
    for sender in ("u1", "u2", "u3"):
        console.ask(sender)
        console.clock.at += 1
    await console.client.post("/api/conversations/u3/takeover", headers=AUTH)
    console.ask("u4")
    await console.client.post("/api/conversations/u4/takeover", headers=AUTH)
    for sender in ("u2", "u4"):  # what action_handoff_safety leaves in a paused tracker
        console.rasa.user_says(sender, "卖家说知道我家住哪，要上门")
        console.rasa.conversation(sender)["events"].append({"event": "slot", "name": "safety_threat", "value": True})
    await console.service.sweep()
    waiting = await (await console.client.get("/api/conversations?status=waiting", headers=AUTH)).json()
    active = await (await console.client.get("/api/conversations?status=active", headers=AUTH)).json()
    assert [item["sender_id"] for item in waiting] == ["u2", "u1"]
    assert [item["sender_id"] for item in active] == ["u4", "u3"]
    assert waiting[0]["summary"]["safety"] is True and waiting[0]["safety_at"]
    assert waiting[0]["summary"]["lines"][0].startswith("⚠️")
    assert waiting[1]["summary"]["safety"] is False and waiting[1]["safety_at"] is None


async def test_a_marked_conversation_shows_the_threat_whatever_its_stored_summary_says(console: Console) -> None:
    console.ask()
    console.store.note_activity("u1", "转人工", START, summary.summarize({}, date(2027, 1, 15)))
    console.store.flag_safety("u1", START + 1)
    detail = await (await console.client.get("/api/conversations/u1", headers=AUTH)).json()
    assert detail["summary"]["safety"] is True and detail["summary"]["lines"][0].startswith("⚠️")


async def test_a_failed_timeout_is_retried_on_the_next_sweep(console: Console) -> None:
    console.ask(wait_s=60)
    console.clock.at += 61
    console.rasa.down = True
    await console.service.sweep()
    assert console.store.get("u1").status is Status.WAITING
    console.rasa.down = False
    await console.service.sweep()
    assert console.store.get("u1").ending is Ending.TIMEOUT


# --- live updates -------------------------------------------------------------------------------------------------


async def test_events_stream_announces_changes_and_marks_an_operator_online(console: Console) -> None:
    reply = await console.client.get("/api/events", headers=AUTH)
    assert reply.headers["Content-Type"].startswith("text/event-stream")

    async def next_change() -> str:
        while True:
            line = (await reply.content.readline()).decode()
            if line.startswith("event: changed"):
                return line

    await asyncio.wait_for(next_change(), 5)  # the current version, at once
    assert console.store.seen(OPERATOR) == console.clock.at
    console.ask()  # a new conversation in the queue
    await asyncio.wait_for(next_change(), 5)
    reply.close()


def test_entry_of_a_closed_hand_off(tmp_path) -> None:
    store = SqlHandoffStore(f"sqlite:///{tmp_path / 'h.db'}")
    clock = FakeClock(START)
    service = HandoffService(store, FakeRasa(clock), HandoffSettings(), clock)
    handoff = store.create(state.request(None, "u1", "rest", 1_800_000_000.0, 60, offline=False))
    closed = state.release(handoff, 1_800_000_100.0)
    entry = service.entry(replace(closed))
    assert entry["status"] == "closed" and entry["ending"] == "released" and entry["deadline_at"] is None
    assert entry["since"] == "2027-01-15T16:01:40+08:00"
