"""No threat goes unanswered, and hand-offs end (issue 16), on the real servers: the action server, Rasa started
through weiquan.ops.serve (trained model, HTTP API on) and the operator console.

- A threat typed in each state — a form question pending, the buyer-or-seller question, waiting for a person, a
  person holding the conversation — over REST, WeChat's webhook and the widget in Chromium: the 110 advice arrives
  within ADVICE_BOUND_S, measured in the test from sending to the advice shown; while paused the console lists the
  conversation first, flagged, with the advice in the transcript, and the conversation stays paused.
- An operator who writes nothing: the conversation goes back to the queue (the buyer is told), then to the bot.
- 「不用人工了」 and its variants end a hand-off over WeChat; without one, a short answer.

Timers are moved in the store (as test_handoff_e2e.py does), not slept through; the console's sweep (every 2 s) acts.
"""
from __future__ import annotations

import hashlib
import itertools
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
import xmltodict
from playwright.sync_api import Browser, Page, expect, sync_playwright

from scripts.screenshots import BOT, INPUT, launch_chromium, loopback_only, open_widget, settle, widget_page_server
from weiquan.core.ruleset import load_ruleset
from weiquan.handoff.state import Status
from weiquan.ops.handoff_harness import HandoffBot, eventually, running, texts
from weiquan.ops.harness import WECHAT_TOKEN

pytestmark = pytest.mark.e2e

ADVICE_BOUND_S = 2.0  # issue 16: "The buyer gets the advice within 2 s"
POLICE = load_ruleset().contacts["police"]
THREAT = "卖家刚才说知道我家住哪，要上门弄死我"
COMPLAINT = "卖家一直短信骚扰我"
PLATFORM_QUESTION = "淘宝还是天猫"
AMBIGUOUS = "恶意骚扰怎么办"
ROLE_QUESTION = "卖家在骚扰你"
WAITING = "已转人工，请稍候"
FLAGGED = "提醒人工客服优先处理"
REQUEUED = "你的对话已经重新排队"
BUSY = "抱歉，客服暂时都在忙"
CANCELLED = "好的，人工服务已结束"
CANCEL_NONE = "现在没有在转人工"
STATES = ("form", "clarify", "waiting", "taken")
PAUSED_STATES = ("waiting", "taken")
LATENCIES: dict[tuple[str, str], float] = {}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HandoffBot]:
    bot = HandoffBot(workdir=tmp_path_factory.mktemp("handoff-safety"), extra_env={"HANDOFF_OPERATORS": "on"})
    with running(bot):
        bot.rest("e2e-warm-up", "你好")  # the first turn builds TensorFlow's graphs: keep it out of the timings
        yield bot


@pytest.fixture(scope="module", autouse=True)
def latency_table() -> Iterator[None]:
    yield
    if LATENCIES:
        print("\n\nadvice latency (send → advice shown), seconds:")
        for (channel, where), seconds in sorted(LATENCIES.items()):
            print(f"  {channel:8} {where:8} {seconds:.3f}")


def record(channel: str, where: str, seconds: float, answer: str) -> None:
    LATENCIES[(channel, where)] = seconds
    assert POLICE in answer, answer
    assert seconds < ADVICE_BOUND_S, f"{channel}, {where}: the advice took {seconds:.2f} s"


def new_sender(prefix: str) -> str:
    return f"e2e-{prefix}-{uuid.uuid4().hex[:8]}"


def listing(stack: HandoffBot, status: str) -> list[dict[str, Any]]:
    code, items = stack.console("GET", f"/api/conversations?status={status}")
    assert code == 200
    return items


def control_conversation(stack: HandoffBot, taken: bool) -> str:
    """A conversation that asked for a person earlier and reported no threat: the threatened one must pass it."""
    sender = new_sender("control")
    assert texts(stack.rest(sender, "转人工"))[0].startswith(WAITING)
    if taken:
        assert stack.console("POST", f"/api/conversations/{sender}/takeover")[0] == 200
    return sender


def assert_flagged_first(stack: HandoffBot, sender: str, control: str, status: str) -> None:
    """The console: the conversation is flagged, listed before every conversation without a threat, and the advice
    is in its transcript; the bot is still paused."""
    items = listing(stack, status)  # marked by the action before the advice went out: no waiting for the sweep
    order = [item["sender_id"] for item in items]
    flagged = {item["sender_id"] for item in items if item["safety_at"]}
    assert sender in flagged and control not in flagged
    assert order.index(sender) < order.index(control)
    assert all(other in flagged for other in order[:order.index(sender)])  # only other threats before it
    entry = items[order.index(sender)]
    assert entry["summary"]["safety"] is True and entry["summary"]["lines"][0].startswith("⚠️")
    detail = stack.conversation(sender)
    assert detail["paused"] is True and detail["status"] == status
    assert any(line["from"] == "bot" and POLICE in line["text"] for line in detail["transcript"])
    assert ("user", THREAT) in [(line["from"], line["text"]) for line in detail["transcript"]]


def close(stack: HandoffBot, *senders: str) -> None:
    for sender in senders:
        stack.console("POST", f"/api/conversations/{sender}/release")


# --- REST -----------------------------------------------------------------------------------------------------------


def rest_into(stack: HandoffBot, sender: str, where: str) -> None:
    if where == "form":
        assert PLATFORM_QUESTION in "".join(texts(stack.rest(sender, COMPLAINT)))
    elif where == "clarify":
        assert ROLE_QUESTION in "".join(texts(stack.rest(sender, AMBIGUOUS)))
    else:
        assert "".join(texts(stack.rest(sender, "转人工"))).startswith(WAITING)
        if where == "taken":
            assert stack.console("POST", f"/api/conversations/{sender}/takeover")[0] == 200


@pytest.mark.parametrize("where", STATES)
def test_rest_a_threat_gets_the_advice_at_once_in_every_state(stack: HandoffBot, where: str) -> None:
    control = control_conversation(stack, where == "taken") if where in PAUSED_STATES else None
    sender = new_sender(f"rest-{where}")
    rest_into(stack, sender, where)
    started = time.monotonic()
    messages = stack.rest(sender, THREAT)
    elapsed = time.monotonic() - started
    answer = "\n".join(texts(messages))
    record("rest", where, elapsed, answer)
    assert messages[0]["custom"]["kind"] == "safety"  # the advice first, with its safety card
    if where == "form":
        assert PLATFORM_QUESTION in answer  # then the form goes on
    if control is not None:
        assert FLAGGED in answer
        assert_flagged_first(stack, sender, control, "waiting" if where == "waiting" else "active")
        assert stack.tracker(sender)["slots"]["safety_threat"] is True
        close(stack, sender, control)
        assert stack.tracker(sender)["slots"]["safety_threat"] is True  # the hand-back keeps the threat


def test_rest_a_threat_before_asking_for_a_person_puts_the_conversation_first(stack: HandoffBot) -> None:
    control = control_conversation(stack, taken=False)
    sender = new_sender("rest-earlier")
    rest_into(stack, sender, "form")
    assert POLICE in "".join(texts(stack.rest(sender, THREAT)))
    assert "".join(texts(stack.rest(sender, "转人工"))).startswith(WAITING)
    order = [item["sender_id"] for item in listing(stack, "waiting")]
    assert order.index(sender) < order.index(control)
    close(stack, sender, control)


def test_an_operator_sees_the_threat_and_can_still_answer(stack: HandoffBot) -> None:
    sender = new_sender("rest-operator")
    rest_into(stack, sender, "taken")
    stack.rest(sender, THREAT)
    code, sent = stack.console("POST", f"/api/conversations/{sender}/messages", {"text": "我在，请先确认自己安全。"})
    assert code == 200 and sent["sent"] is True and sent["delivery"] == "stored"  # REST cannot push
    # Paused as before: the person answers, not the bot. The reply carries only the operator's message, which REST
    # could not push (docs/handoff.md: delivered with the buyer's next request).
    operator = {"kind": "operator", "label": "人工客服"}
    assert stack.rest(sender, "好的，我已经报警了") == [
        {"recipient_id": sender, "text": "我在，请先确认自己安全。", "custom": operator}]
    close(stack, sender)


# --- WeChat ---------------------------------------------------------------------------------------------------------

_msg_ids = itertools.count(int(time.time() * 1000))


def wechat(stack: HandoffBot, openid: str, text: str) -> str | None:
    """One plaintext text message as WeChat posts it; the passive reply's text, or None for "success" (no reply)."""
    timestamp, nonce = str(int(time.time())), str(next(_msg_ids))
    args = {"signature": hashlib.sha1("".join(sorted([WECHAT_TOKEN, timestamp, nonce])).encode()).hexdigest(),
            "timestamp": timestamp, "nonce": nonce, "openid": openid}
    xml = (f"<xml><ToUserName><![CDATA[gh_e2e]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
           f"<CreateTime>{timestamp}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
           f"<Content><![CDATA[{text}]]></Content><MsgId>{next(_msg_ids)}</MsgId></xml>")
    request = urllib.request.Request(f"{stack.url}/webhooks/wechat/webhook?{urllib.parse.urlencode(args)}",
                                     data=xml.encode(), method="POST")
    with urllib.request.urlopen(request, timeout=10) as reply:
        body = reply.read().decode()
    if body in ("success", ""):
        return None
    return str(xmltodict.parse(body)["xml"]["Content"])


def wechat_into(stack: HandoffBot, openid: str, where: str) -> None:
    if where == "form":
        assert PLATFORM_QUESTION in (wechat(stack, openid, COMPLAINT) or "")
    elif where == "clarify":
        assert ROLE_QUESTION in (wechat(stack, openid, AMBIGUOUS) or "")
    else:
        assert (wechat(stack, openid, "转人工") or "").startswith(WAITING)
        assert wechat(stack, openid, "有人吗") is None  # paused: no reply
        if where == "taken":
            assert stack.console("POST", f"/api/conversations/{openid}/takeover")[0] == 200


@pytest.mark.parametrize("where", STATES)
def test_wechat_a_threat_gets_the_advice_at_once_in_every_state(stack: HandoffBot, where: str) -> None:
    control = control_conversation(stack, where == "taken") if where in PAUSED_STATES else None
    openid = new_sender(f"wx-{where}")
    wechat_into(stack, openid, where)
    started = time.monotonic()
    answer = wechat(stack, openid, THREAT) or ""
    record("wechat", where, time.monotonic() - started, answer)
    if control is not None:
        assert FLAGGED in answer
        assert_flagged_first(stack, openid, control, "waiting" if where == "waiting" else "active")
        close(stack, openid, control)


@pytest.mark.parametrize("where", ["waiting", "taken"])
def test_wechat_no_more_person_ends_the_hand_off_and_the_bot_is_back(stack: HandoffBot, where: str) -> None:
    openid = new_sender(f"wx-cancel-{where}")
    assert PLATFORM_QUESTION in (wechat(stack, openid, COMPLAINT) or "")
    wechat_into(stack, openid, where)
    answer = wechat(stack, openid, "不用人工了") or ""
    assert answer.startswith(CANCELLED) and PLATFORM_QUESTION in answer  # the pending question, asked again
    entry = stack.conversation(openid)
    assert (entry["status"], entry["ending"], entry["paused"]) == ("closed", "cancelled", False)
    assert "订单现在是什么状态" in (wechat(stack, openid, "淘宝") or "")  # the form goes on, the answer validated
    code, _ = stack.console("POST", f"/api/conversations/{openid}/messages", {"text": "还在吗"})
    assert code == 409  # the operator is told the conversation is no longer theirs


@pytest.mark.parametrize("said", ["不需要人工了", "算了不用转人工", "我自己来吧"])
def test_wechat_variants_of_no_more_person(stack: HandoffBot, said: str) -> None:
    openid = new_sender("wx-variant")
    wechat_into(stack, openid, "waiting")
    assert (wechat(stack, openid, said) or "").startswith(CANCELLED)
    assert stack.conversation(openid)["ending"] == "cancelled"


def test_wechat_no_more_person_without_a_hand_off_is_a_short_answer(stack: HandoffBot) -> None:
    openid = new_sender("wx-none")
    assert CANCEL_NONE in (wechat(stack, openid, "不用人工了") or "")
    assert PLATFORM_QUESTION in (wechat(stack, openid, COMPLAINT) or "")
    answer = wechat(stack, openid, "不用转人工了") or ""
    assert CANCEL_NONE in answer and PLATFORM_QUESTION in answer  # in the form: the question again
    assert stack.tracker(openid)["slots"]["platform"] is None  # and the words filled no answer


# --- the timers -----------------------------------------------------------------------------------------------------


def test_an_idle_operator_sends_it_back_to_the_queue_then_to_the_bot(stack: HandoffBot) -> None:
    sender = new_sender("rest-idle")
    rest_into(stack, sender, "taken")
    store = stack.store()
    idle_s = float(stack.env().get("HANDOFF_IDLE_MINUTES") or 15) * 60
    taken = store.get(sender)
    assert store.replace(replace(taken, taken_at=time.time() - idle_s - 1), expected=Status.ACTIVE)

    eventually(lambda: stack.conversation(sender)["status"] == "waiting", 15, "the requeue")
    lines = [(line["from"], line["text"]) for line in stack.conversation(sender)["transcript"]]
    assert lines[-1][0] == "status" and REQUEUED in lines[-1][1]  # the buyer is told
    assert stack.tracker(sender)["paused"] is True
    assert stack.rest(sender, "好吧，我再等等") == []

    waiting = store.get(sender)
    assert waiting.requeued_at and waiting.operator is None
    assert store.replace(replace(waiting, deadline_at=time.time() - 1), expected=Status.WAITING)
    eventually(lambda: stack.conversation(sender)["status"] == "closed", 15, "the bot taking it back")
    assert stack.conversation(sender)["ending"] == "timeout"
    eventually(lambda: any(BUSY in line["text"] for line in stack.conversation(sender)["transcript"][-3:]), 15,
               "the bot saying so")
    assert stack.tracker(sender)["paused"] is False
    assert "不客气" in "".join(texts(stack.rest(sender, "谢谢")))


# --- the widget in Chromium -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = launch_chromium(playwright)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def widget(stack: HandoffBot) -> Iterator[str]:
    with widget_page_server(stack.widget_port, stack.url):
        yield stack.widget_url + "/"


def widget_sender(page: Page) -> str:
    return str(page.evaluate(
        "() => Object.keys(localStorage).filter(k => k.endsWith(':session')).map(k => localStorage.getItem(k))[0]"))


def type_and_wait(page: Page, text: str, until: Callable[[], Any]) -> None:
    page.locator(INPUT).fill(text)
    page.locator(INPUT).press("Enter")
    until()


@pytest.mark.parametrize("where", STATES)
def test_widget_a_threat_gets_the_advice_at_once_in_every_state(
    stack: HandoffBot, browser: Browser, widget: str, where: str
) -> None:
    control = control_conversation(stack, where == "taken") if where in PAUSED_STATES else None
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    loopback_only(context)
    page = context.new_page()
    try:
        count = open_widget(page, widget)
        opening = {"form": COMPLAINT, "clarify": AMBIGUOUS}.get(where, "转人工")
        expected = {"form": PLATFORM_QUESTION, "clarify": ROLE_QUESTION}.get(where, WAITING)
        page.locator(INPUT).fill(opening)
        page.locator(INPUT).press("Enter")
        count = settle(page, count)
        expect(page.locator(BOT).last).to_contain_text(expected)
        sender = widget_sender(page)
        if where == "taken":
            assert stack.console("POST", f"/api/conversations/{sender}/takeover")[0] == 200
            expect(page.locator(".wq-msg--status").last).to_contain_text("客服已接入")
            count = page.locator(BOT).count()

        advice = page.locator(BOT).nth(count)
        page.locator(INPUT).fill(THREAT)
        started = time.monotonic()
        page.locator(INPUT).press("Enter")
        expect(advice.locator(".wq-card--safety")).to_be_visible(timeout=10_000)
        record("widget", where, time.monotonic() - started, advice.inner_text())
        if control is not None:
            expect(page.locator(BOT).nth(count + 1)).to_contain_text(FLAGGED)
            assert_flagged_first(stack, sender, control, "waiting" if where == "waiting" else "active")
            close(stack, sender, control)
    finally:
        context.close()

