"""A person takes over, on the real servers: the action server, Rasa (trained model, HTTP API on with a token) and
the operator console, through the REST channel (operator messages are kept in the transcript there) and, at the
end, the web widget and the console page in Chromium."""
from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import replace

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from scripts.screenshots import BOT, INPUT, launch_chromium, loopback_only, open_widget, widget_page_server
from weiquan.core.contracts import Delivery
from weiquan.handoff.state import Status
from weiquan.ops.handoff_harness import OPERATOR_TOKEN, HandoffBot, eventually, operator_online, running, texts
from weiquan.stores.handoff import OPERATOR
from weiquan.stores.outbox import OperatorOutbox

pytestmark = pytest.mark.e2e

WAITING = "已转人工，请稍候"
NOBODY = "现在没有人工客服在线"
CONNECTED = "客服已接入"
RELEASED = "人工客服已结束服务"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HandoffBot]:
    bot = HandoffBot(workdir=tmp_path_factory.mktemp("handoff"), extra_env={"HANDOFF_OPERATORS": "auto"})
    with running(bot):
        yield bot


def new_sender() -> str:
    return f"e2e-handoff-{uuid.uuid4().hex[:8]}"


def listed(stack: HandoffBot, sender: str, status: str = "all") -> dict | None:
    code, items = stack.console("GET", f"/api/conversations?status={status}")
    assert code == 200
    return next((item for item in items if item["sender_id"] == sender), None)


def transcript(stack: HandoffBot, sender: str) -> list[tuple[str, str]]:
    return [(line["from"], line["text"]) for line in stack.conversation(sender)["transcript"]]


def test_rest_round_trip_the_bot_is_silent_while_a_person_has_the_conversation(stack: HandoffBot) -> None:
    sender = new_sender()
    with operator_online(stack):
        answer = texts(stack.rest(sender, "转人工"))
    assert len(answer) == 1 and answer[0].startswith(WAITING)
    entry = listed(stack, sender, "waiting")
    assert entry and entry["channel"] == "rest" and entry["summary"]["lines"]
    assert stack.tracker(sender)["paused"] is True

    assert stack.rest(sender, "你好，有人吗") == []  # no fallback, no form, nothing
    assert stack.console("POST", f"/api/conversations/{sender}/takeover")[0] == 200
    assert stack.rest(sender, "卖家天天打电话骂我，交易成功5天了") == []  # not even a complaint starts the form
    code, sent = stack.console("POST", f"/api/conversations/{sender}/messages", {"text": "你好，我是客服小王。"})
    assert (code, sent["delivery"]) == (200, "stored")  # REST cannot push: the buyer's next reply carries it

    lines = transcript(stack, sender)
    assert ("user", "你好，有人吗") in lines and ("user", "卖家天天打电话骂我，交易成功5天了") in lines
    assert ("operator", "你好，我是客服小王。") in lines
    assert any(who == "status" and text.startswith(CONNECTED) for who, text in lines)
    eventually(lambda: listed(stack, sender)["last_user_message"] == "卖家天天打电话骂我，交易成功5天了",
               what="the list to show the last user message (the console's sweep)")

    assert stack.rest(sender, "在吗？") == [  # the buyer's next request: the operator's message comes with it
        {"recipient_id": sender, "text": "你好，我是客服小王。", "custom": {"kind": "operator", "label": "人工客服"}}]
    assert OperatorOutbox(stack.store_url).status(sent["message_id"]) is Delivery.DELIVERED
    assert stack.rest(sender, "好的") == []  # and only once

    assert stack.console("POST", f"/api/conversations/{sender}/release")[0] == 200
    assert stack.tracker(sender)["paused"] is False
    assert transcript(stack, sender)[-1][1].startswith(RELEASED)
    assert "不客气" in "".join(texts(stack.rest(sender, "谢谢")))  # the bot answers again


def test_mid_form_hand_off_then_the_form_picks_up_where_it_was(stack: HandoffBot) -> None:
    sender = new_sender()
    assert "淘宝还是天猫" in "".join(texts(stack.rest(sender, "卖家一直短信骚扰我")))
    with operator_online(stack):
        answer = texts(stack.rest(sender, "转人工"))
    assert len(answer) == 1 and answer[0].startswith(WAITING)  # the form does not ask its question again

    # The trap: while paused Rasa still extracts slots from what the user tells the person.
    assert stack.rest(sender, "淘宝买的，交易成功5天了") == []
    slots = stack.tracker(sender)["slots"]
    assert slots["platform"] == "taobao" and slots["success_time"]

    stack.console("POST", f"/api/conversations/{sender}/takeover")
    assert stack.console("POST", f"/api/conversations/{sender}/release")[0] == 200
    said = [text for who, text in transcript(stack, sender)[-2:]]
    assert said[0].startswith(RELEASED) and "淘宝还是天猫" in said[1]  # the pending question, asked again
    slots = stack.tracker(sender)["slots"]
    assert slots["platform"] is None and slots["success_time"] is None  # only what the form checked counts

    assert "状态" in "".join(texts(stack.rest(sender, "淘宝")))  # the answer is validated and the form goes on
    assert "哪一天" in "".join(texts(stack.rest(sender, "交易成功了")))


def test_the_summary_of_a_conversation_taken_over_counts_the_days_since_success(stack: HandoffBot) -> None:
    sender = new_sender()
    assert "证据" in "".join(texts(stack.rest(sender, "淘宝买的，交易成功5天了，卖家天天打电话骂我")))
    with operator_online(stack):
        assert texts(stack.rest(sender, "转人工"))[0].startswith(WAITING)
    assert stack.console("POST", f"/api/conversations/{sender}/takeover")[0] == 200
    summary = stack.conversation(sender)["summary"]
    assert summary["days_since_success"] == [5, 5]
    when = next(line for line in summary["lines"] if line.startswith("交易成功："))
    assert when.startswith("交易成功：5 天前（用户说「") and "{" not in when  # the count, never the raw slot
    assert stack.console("POST", f"/api/conversations/{sender}/release")[0] == 200


def test_restart_while_paused_ends_the_hand_off_and_says_so(stack: HandoffBot) -> None:
    sender = new_sender()
    with operator_online(stack):
        stack.rest(sender, "转人工")
    stack.console("POST", f"/api/conversations/{sender}/takeover")
    answer = texts(stack.rest(sender, "/restart"))
    assert any(text.startswith("对话已重新开始") for text in answer)
    entry = listed(stack, sender)
    assert (entry["status"], entry["ending"]) == ("closed", "restarted")
    assert stack.tracker(sender)["paused"] is False
    assert "恶意骚扰维权助手" in "".join(texts(stack.rest(sender, "你好")))
    code, body = stack.console("POST", f"/api/conversations/{sender}/messages", {"text": "还在吗"})
    assert code == 409  # the operator is told the conversation is no longer theirs


def test_nobody_online_leave_a_message_and_the_bot_takes_it_back_after_the_wait(stack: HandoffBot) -> None:
    store = stack.store()
    store.touch(OPERATOR, 0.0)  # nobody has had the console open for a long time
    sender = new_sender()
    answer = texts(stack.rest(sender, "我要找人工"))
    assert len(answer) == 1 and answer[0].startswith(NOBODY)
    assert stack.rest(sender, "卖家天天打电话，请客服回电话") == []
    eventually(lambda: stack.conversation(sender)["left"], what="the left message in the console")
    assert stack.conversation(sender)["left"][0]["text"] == "卖家天天打电话，请客服回电话"
    assert listed(stack, sender, "waiting")["offline"] is True

    # Time passes: the configured wait is over (moved, not slept through).
    handoff = store.get(sender)
    assert store.replace(replace(handoff, deadline_at=time.time() - 1), expected=Status.WAITING)
    eventually(lambda: listed(stack, sender)["status"] == "closed", what="the bot taking the conversation back")
    assert listed(stack, sender)["ending"] == "timeout"
    eventually(lambda: transcript(stack, sender)[-1][1].startswith("你的留言已经转给客服"), what="the bot saying so")
    assert stack.tracker(sender)["paused"] is False
    assert stack.rest(sender, "谢谢")  # the bot answers again
    assert stack.conversation(sender)["left"][0]["text"] == "卖家天天打电话，请客服回电话"  # still shown


def test_console_api_needs_the_token(stack: HandoffBot) -> None:
    from weiquan.ops.handoff_harness import http_json

    for headers in ({}, {"Authorization": "Bearer nope"}):
        assert http_json("GET", f"{stack.console_url}/api/conversations?status=all", headers=headers)[0] == 401
    # Rasa's own API refuses calls without its token too.
    assert http_json("GET", f"{stack.url}/conversations/x/tracker")[0] == 401


# --- the full round trip in Chromium: widget and console ---------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = launch_chromium(playwright)
        yield launched
        launched.close()


def new_page(browser: Browser, width: int = 1280, height: int = 800) -> Page:
    context = browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN")
    loopback_only(context)
    return context.new_page()


def test_widget_and_console_round_trip_in_chromium(stack: HandoffBot, browser: Browser) -> None:
    with widget_page_server(stack.widget_port, stack.url):
        console = new_page(browser, 1400, 900)
        console.goto(f"{stack.console_url}/#token={OPERATOR_TOKEN}")
        expect(console.locator("#live")).to_have_text("实时更新中")  # live updates on: the operator is online
        assert "token" not in console.url  # the token left the address bar

        widget = new_page(browser)
        bot_count = open_widget(widget, stack.widget_url + "/")
        widget.get_by_role("button", name="找人工客服").click()  # the greeting's button
        status = widget.locator(".wq-msg--status").last
        expect(status).to_contain_text(WAITING)
        expect(widget.locator(".wq-typing")).to_be_hidden()

        entry = console.locator("#list .entry--waiting").first  # appears without a reload
        expect(entry).to_be_visible()
        expect(entry.locator(".channel")).to_have_text("网页")
        entry.click()
        console.get_by_role("button", name="接入").click()
        expect(widget.locator(".wq-msg--status").last).to_contain_text(CONNECTED)

        before = widget.locator(BOT).count()
        widget.locator(INPUT).fill("你好，卖家天天打电话，我想问问怎么投诉")
        widget.locator(INPUT).press("Enter")
        asked = "你好，卖家天天打电话，我想问问怎么投诉"
        expect(console.locator("#transcript .line--user .text").last).to_have_text(asked)
        widget.wait_for_timeout(1500)
        assert widget.locator(BOT).count() == before  # the operator answers this one: the bot stays silent, no form
        expect(widget.locator(".wq-typing")).to_be_hidden()  # and does not pretend to type
        # A threat is the one thing the bot still answers while a person holds the conversation (issue 16).
        widget.locator(INPUT).fill("卖家说知道我家住哪，要上门弄死我")
        widget.locator(INPUT).press("Enter")
        expect(widget.locator(BOT).nth(before).locator(".wq-card--safety")).to_be_visible(timeout=10_000)

        box = console.locator("#reply-text").bounding_box()
        assert box and box["y"] + box["height"] <= 900  # the reply box stays on screen; the transcript scrolls
        console.locator("#reply-text").fill("你好，我是客服小王，先别着急。")
        console.locator("#reply-text").press("Enter")
        operator = widget.locator(".wq-msg--operator").last
        expect(operator).to_contain_text("你好，我是客服小王，先别着急。")
        expect(operator.locator(".wq-operator-tag")).to_have_text("人工客服")
        expect(operator.locator(".wq-sr")).to_have_text("人工客服说：")
        expect(console.locator("#notice")).to_contain_text("已送达")  # the widget acknowledged it on screen

        # The buyer closes the page: the next message cannot be delivered, and the console says so.
        context = widget.context
        widget.close()
        console.locator("#reply-text").fill("你还在吗？我先把处理办法写在这里。")
        console.locator("#reply-text").press("Enter")
        expect(console.locator("#notice")).to_contain_text("已保存，但用户现在没有收到")
        # The buyer comes back (same browser, same conversation): the message is shown, once, and delivered.
        widget = context.new_page()
        widget.goto(stack.widget_url + "/")
        expect(widget.locator(".wq-msg--operator").last).to_contain_text("你还在吗？我先把处理办法写在这里。")
        outbox = OperatorOutbox(stack.store_url)
        active = [h for h in stack.store().handoffs([Status.ACTIVE]) if h.channel == "socketio"]
        eventually(lambda: all(outbox.pending(h.sender_id) == [] for h in active), 10, "the widget's acknowledgement")
        widget.reload()  # a reload draws the history once; nothing is delivered twice
        expect(widget.locator(".wq-msg--operator")).to_have_count(2)

        console.get_by_role("button", name="交还机器人").click()
        expect(widget.locator(".wq-msg--status").last).to_contain_text(RELEASED)
        count = widget.locator(BOT).count()
        widget.locator(INPUT).fill("谢谢")
        widget.locator(INPUT).press("Enter")
        expect(widget.locator(BOT).nth(count)).to_contain_text("不客气")  # the bot answers again
        expect(console.locator("#conv-meta")).to_contain_text("已交还机器人")
        assert bot_count >= 1
        widget.context.close()
        console.context.close()


def test_console_page_asks_for_the_token_and_refuses_a_wrong_one(stack: HandoffBot, browser: Browser) -> None:
    page = new_page(browser)
    page.goto(stack.console_url + "/")
    expect(page.get_by_label("客服令牌")).to_be_visible()
    page.get_by_label("客服令牌").fill("wrong-token")
    page.get_by_role("button", name="进入").click()
    expect(page.locator("#login-error")).to_have_text("令牌不对，请重新输入。")
    page.get_by_label("客服令牌").fill(OPERATOR_TOKEN)
    page.get_by_role("button", name="进入").click()
    expect(page.locator("#live")).to_have_text("实时更新中")
    expect(page.locator("#login")).to_be_hidden()
    expect(page.get_by_role("tab", name="等待中")).to_be_visible()
    page.context.close()
