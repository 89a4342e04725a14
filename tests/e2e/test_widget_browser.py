"""The web widget in Debian's headless Chromium (Playwright), every request off this machine blocked.

Two layers:
* against a scripted bot behind our real socket.io channel (no model; seconds): rendering, escaping, IME, keyboard,
  mobile layout, reload, reconnect, origin guard;
* against the real servers (`bot` fixture, needs a trained model): complete conversations.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright
from rasa.core.channels.channel import UserMessage
from sanic import Sanic

from scripts.screenshots import (
    BOT,
    ELIGIBLE,
    INPUT,
    MOBILE,
    PAST_WINDOW,
    USER,
    answer_until,
    filing_link,
    launch_chromium,
    loopback_only,
    open_widget,
    say,
    settle,
    widget_page_server,
)
from tests.golden import golden
from weiquan.edge.channels.socketio import WidgetSocketIOInput
from weiquan.ops.harness import Bot, free_port

pytestmark = pytest.mark.e2e

INJECTION = "<img src=x onerror=alert(1)>"
# The cards the presenter really sends (tests/golden/contracts.json, written from actions/presenter.py).
CARDS = golden()["cards"]
FILING, EVIDENCE = CARDS["filing_steps"], CARDS["evidence"]
FILING_URL, RIGHTS_URL = FILING["paths"][0]["url"], FILING["paths"][1]["url"]
# A speaker the widget has never heard of: drawn and copied like the others (no names in the JS).
SCRIPT_LINES = [*CARDS["phone_script"]["lines"], {"speaker": "supervisor", "name": "值班主管", "text": "我来跟进。"}]
RULE_URL = "https://rule.taobao.com/detail-1.htm"
_names = itertools.count()

# The scripted bot: payload or text → the messages Rasa would send (the shapes domain.yml produces).
GREETING = {
    "text": "你好！我是恶意骚扰维权助手。",
    "buttons": [
        {"title": "我被卖家骚扰了", "payload": "/report_harassment"},
        {"title": "过了投诉期怎么办", "payload": "/ask_deadline_passed"},
    ],
}
SCRIPT: dict[str, list[dict[str, Any]]] = {
    "/greet": [GREETING],
    "/report_harassment": [
        {
            "text": "这笔订单是在淘宝还是天猫买的？",
            "buttons": [
                {"title": "淘宝", "payload": '/inform{"platform": "taobao"}'},
                {"title": "天猫", "payload": '/inform{"platform": "tmall"}'},
            ],
        }
    ],
    '/inform{"platform": "taobao"}': [
        {  # the card shape actions/presenter.py sends: the text is only the lead-in
            "text": f"好消息：还在期限内。（打不开时看规则原文 {RULE_URL}。）",
            "custom": FILING,
        },
        {"text": "还有别的问题吗？"},
    ],
    "话术": [
        {
            "text": "打电话时可以这样说：",
            "custom": {**CARDS["phone_script"], "lines": SCRIPT_LINES},
        }
    ],
    "证据": [
        {
            "text": "提交时请附上这些凭证（打勾的是你已经有的）：",
            "custom": EVIDENCE,
        }
    ],
    "威胁": [
        {"text": "你的人身安全最重要。如果感到有危险，请立刻拨打 110 报警。", "custom": CARDS["safety"]},
        {"text": "同时把威胁内容保存好。"},
    ],
}


@dataclass
class ScriptedBot:
    received: list[UserMessage] = field(default_factory=list)

    async def __call__(self, message: UserMessage) -> None:
        self.received.append(message)
        await asyncio.sleep(0.3)  # long enough to see the typing indicator
        for answer in SCRIPT.get(message.text or "", [{"text": f"你说的是：{message.text}"}]):
            await message.output_channel.send_response(message.sender_id, json.loads(json.dumps(answer)))


class ChannelServer:
    """Our socket.io channel (the code under test) with the scripted bot, in a thread; can stop and start again."""

    def __init__(self, allowed_origins: str) -> None:
        self.port = free_port()
        self.allowed_origins = allowed_origins
        self.bot = ScriptedBot()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        assert ready.wait(15), "the channel server did not start"

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        Sanic.test_mode = True
        app = Sanic(f"widget_browser_{next(_names)}")
        self._channel = WidgetSocketIOInput.from_credentials(
            {"session_persistence": True, "metadata_key": "customData", "allowed_origins": self.allowed_origins}
        )
        app.blueprint(self._channel.blueprint(self.bot), url_prefix="/webhooks/socketio")
        server = loop.run_until_complete(
            app.create_server(host="127.0.0.1", port=self.port, return_asyncio_server=True, access_log=False)
        )
        loop.run_until_complete(server.startup())
        loop.run_until_complete(server.after_start())
        self._server = server
        ready.set()
        loop.run_forever()
        loop.close()

    async def _shutdown(self) -> None:
        await self._channel.sio.eio.shutdown()
        for connection in list(self._server.connections):
            connection.close()
        await self._server.close()
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task():
                task.cancel()

    def stop(self) -> None:
        if self._thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._thread = None


@dataclass
class Stack:
    channel: ChannelServer
    page_url: str


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    launched = launch_chromium(playwright)
    yield launched
    launched.close()


@pytest.fixture(scope="module")
def scripted() -> Iterator[Stack]:
    page_port = free_port()
    origin = f"http://127.0.0.1:{page_port}"
    channel = ChannelServer(allowed_origins=origin)
    channel.start()
    with widget_page_server(page_port, channel.url):
        yield Stack(channel=channel, page_url=origin + "/")
    channel.stop()


@dataclass
class Tab:
    page: Page
    blocked: list[str]
    dialogs: list[str]
    errors: list[str]


def new_tab(browser: Browser, viewport: dict | None = None, mobile: bool = False) -> Tab:
    context = browser.new_context(
        viewport=viewport or {"width": 1280, "height": 800}, is_mobile=mobile, has_touch=mobile, locale="zh-CN"
    )
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    tab = Tab(page=context.new_page(), blocked=[], dialogs=[], errors=[])
    loopback_only(context, tab.blocked)
    tab.page.on("dialog", lambda dialog: (tab.dialogs.append(dialog.message), dialog.dismiss()))
    tab.page.on("pageerror", lambda error: tab.errors.append(str(error)))
    tab.page.on("console", lambda msg: tab.errors.append(msg.text) if msg.type == "error" else None)
    return tab


@pytest.fixture
def tab(browser: Browser) -> Iterator[Tab]:
    made = new_tab(browser)
    yield made
    made.page.context.close()


def user_texts(page: Page) -> list[str]:
    return [text.removeprefix("我说：").strip() for text in page.locator(USER).all_inner_texts()]


# --- the widget against the scripted bot --------------------------------------------------------------------------


def test_demo_page_is_chinese_open_and_fully_local(scripted: Stack, tab: Tab) -> None:
    page = tab.page
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    response = page.goto(scripted.page_url)
    assert response is not None
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and f"connect-src 'self' {scripted.channel.url}" in csp

    expect(page.locator(BOT).first).to_contain_text("你好！我是恶意骚扰维权助手。")
    expect(page.get_by_role("dialog", name="恶意骚扰维权助手")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.get_by_role("button", name="发送")).to_be_visible()
    assert tab.blocked == []
    assert all(re.match(r"(http|ws)://127\.0\.0\.1:\d+/", url) for url in requests), requests
    assert tab.errors == []


def test_quick_reply_sends_payload_shows_title_and_steps_render_as_links(scripted: Stack, tab: Tab) -> None:
    page = tab.page
    count = open_widget(page, scripted.page_url)
    page.get_by_role("button", name="我被卖家骚扰了").click()
    count = settle(page, count)
    page.get_by_role("button", name="淘宝").click()
    settle(page, count)

    assert user_texts(page) == ["我被卖家骚扰了", "淘宝"]
    assert scripted.channel.bot.received[-1].text == '/inform{"platform": "taobao"}'
    expect(page.get_by_role("button", name="天猫")).to_be_disabled()  # an answered question's buttons retire

    paths = page.locator(".wq-card--steps ol.wq-steps > li")
    expect(paths).to_have_count(len(FILING["paths"]))
    steps = FILING["paths"][0]["steps"]
    expect(paths.nth(0).locator("ol.wq-substeps > li")).to_have_count(len(steps))
    expect(paths.nth(0).locator("ol.wq-substeps > li").nth(1)).to_have_text(steps[1])
    expect(paths.nth(1).locator("a.wq-link")).to_have_text(RIGHTS_URL)
    expect(page.locator(f'a.wq-link[href="{RULE_URL}"]')).to_have_text(RULE_URL)  # the 。 is not in the link
    link = filing_link(page)
    expect(link).to_have_text(FILING_URL)
    expect(link).to_have_attribute("target", "_blank")
    assert set(link.get_attribute("rel").split()) >= {"noopener", "noreferrer"}
    with page.context.expect_page() as opened:
        link.click()
    assert opened.value.evaluate("window.opener") is None  # rel=noopener: the new tab cannot reach this page
    assert tab.blocked == [FILING_URL]  # it did try to load the link (and the test blocked it)


def test_html_from_user_and_bot_is_shown_as_text(scripted: Stack, tab: Tab) -> None:
    page = tab.page
    open_widget(page, scripted.page_url)
    say(page, INJECTION)
    assert user_texts(page)[-1] == INJECTION
    expect(page.locator(BOT).last).to_contain_text(f"你说的是：{INJECTION}")
    assert page.locator(".wq-log img").count() == 0
    assert tab.dialogs == []


def test_phone_script_card_copies_the_dialogue(scripted: Stack, tab: Tab) -> None:
    page = tab.page
    open_widget(page, scripted.page_url)
    say(page, "话术")
    card = page.locator(".wq-card--script")
    expect(card).to_contain_text("电话沟通话术")
    expect(card).to_contain_text("打电话时可以这样说：")
    agent = next(line for line in SCRIPT_LINES if line["speaker"] == "agent")
    you = next(line for line in SCRIPT_LINES if line["speaker"] == "you")
    expect(card.locator(".wq-line--agent").first).to_contain_text(f"{agent['name']}：{agent['text']}")
    expect(card.locator(".wq-line--you").first).to_contain_text(f"{you['name']}：{you['text']}")
    expect(card.locator('[data-speaker="supervisor"]')).to_contain_text("值班主管：我来跟进。")
    card.get_by_role("button", name="复制话术").click()
    expect(card.locator(".wq-copy")).to_have_text("已复制 ✓")
    assert page.evaluate("navigator.clipboard.readText()") == "\n".join(
        f"{line['name']}：{line['text']}" for line in SCRIPT_LINES)


def test_evidence_card_ticks_what_the_buyer_has(scripted: Stack, tab: Tab) -> None:
    page = tab.page
    open_widget(page, scripted.page_url)
    say(page, "证据")
    items = page.locator(".wq-card--evidence ol.wq-evidence > li")
    expect(items).to_have_count(len(EVIDENCE["items"]))
    for index, item in enumerate(EVIDENCE["items"]):
        expect(items.nth(index)).to_contain_text(item["label"])
        expect(items.nth(index).locator(".wq-have")).to_have_count(1 if item["have"] else 0)
        if item["url"]:
            expect(items.nth(index).locator("a.wq-link")).to_have_attribute("href", item["url"])


def test_safety_message_is_a_prominent_card(scripted: Stack, tab: Tab) -> None:
    page = tab.page
    count = open_widget(page, scripted.page_url)
    say(page, "威胁")
    first_answer = page.locator(BOT).nth(count)
    expect(first_answer.locator(".wq-card--safety")).to_contain_text("110")
    border = first_answer.locator(".wq-card--safety").evaluate("e => getComputedStyle(e).borderTopColor")
    assert border == "rgb(198, 40, 40)"


def test_typing_indicator_shows_while_the_bot_works(scripted: Stack, tab: Tab) -> None:
    page = tab.page
    open_widget(page, scripted.page_url)
    page.locator(INPUT).fill("在吗")
    page.locator(INPUT).press("Enter")
    expect(page.locator(".wq-typing")).to_be_visible()
    expect(page.locator(BOT).last).to_contain_text("你说的是：在吗")
    expect(page.locator(".wq-typing")).to_be_hidden()


def test_enter_during_ime_composition_does_not_send(scripted: Stack, tab: Tab) -> None:
    page = tab.page
    open_widget(page, scripted.page_url)
    box = page.locator(INPUT)
    box.fill("weiquan")
    box.dispatch_event("compositionstart")
    box.evaluate(
        "e => e.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', keyCode: 229, isComposing: true,"
        " bubbles: true, composed: true}))"
    )
    box.dispatch_event("compositionend")
    box.fill("维权")
    box.evaluate(  # Safari sends the confirming Enter after compositionend, still as keyCode 229
        "e => e.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', keyCode: 229, bubbles: true,"
        " composed: true}))"
    )
    page.wait_for_timeout(300)
    assert user_texts(page) == []
    expect(box).to_have_value("维权")
    box.press("Enter")
    expect(page.locator(USER)).to_have_count(1)
    assert user_texts(page) == ["维权"]


def test_shift_enter_is_a_new_line_and_the_length_is_capped(scripted: Stack, tab: Tab) -> None:
    page = tab.page
    open_widget(page, scripted.page_url)
    box = page.locator(INPUT)
    box.type("第一行")
    box.press("Shift+Enter")
    box.type("第二行")
    expect(box).to_have_value("第一行\n第二行")
    box.fill("")
    box.press_sequentially("骂" * 10)
    box.evaluate("e => { e.value = ''; }")
    page.keyboard.insert_text("骂" * 600)
    assert len(box.input_value()) == 500
    expect(page.locator(".wq-counter")).to_have_text("还可输入 0 字")


def test_reload_keeps_history_and_session(scripted: Stack, tab: Tab) -> None:
    page = tab.page
    open_widget(page, scripted.page_url)
    say(page, "第一句")
    before = page.locator(".wq-msg").all_inner_texts()
    session = page.evaluate("Object.entries(localStorage).find(([k]) => k.endsWith(':session'))[1]")

    page.reload()
    expect(page.locator(".wq-msg")).to_have_count(len(before))
    assert page.locator(".wq-msg").all_inner_texts() == before
    say(page, "第二句")
    senders = {m.sender_id for m in scripted.channel.bot.received if m.text in ("第一句", "第二句")}
    assert senders == {session}
    # the greeting is not sent again on reload
    assert [m.text for m in scripted.channel.bot.received if m.sender_id == session].count("/greet") == 1


def test_new_chat_clears_this_browser_and_starts_a_new_session(scripted: Stack, tab: Tab) -> None:
    page = tab.page
    open_widget(page, scripted.page_url)
    say(page, "旧对话")
    old = page.evaluate("Object.entries(localStorage).find(([k]) => k.endsWith(':session'))[1]")
    page.get_by_role("button", name="清除本机聊天记录，开始新对话").click()
    settle(page, 0)
    expect(page.locator(USER)).to_have_count(0)
    new = page.evaluate("Object.entries(localStorage).find(([k]) => k.endsWith(':session'))[1]")
    assert new != old


def test_keyboard_and_screen_reader_basics(scripted: Stack, tab: Tab) -> None:
    page = tab.page
    count = open_widget(page, scripted.page_url)
    expect(page.get_by_role("log", name="对话记录")).to_be_visible()
    expect(page.get_by_role("textbox", name="输入你的问题")).to_be_visible()
    expect(page.locator(BOT).first.locator(".wq-sr")).to_have_text("助手说：")

    page.locator(INPUT).focus()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="发送")).to_be_focused()
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")  # back from the input to the last quick reply
    expect(page.get_by_role("button", name="过了投诉期怎么办")).to_be_focused()
    page.keyboard.press("Enter")
    settle(page, count)
    assert user_texts(page) == ["过了投诉期怎么办"]

    page.locator(INPUT).focus()
    page.keyboard.press("Escape")
    launcher = page.get_by_role("button", name="打开维权助手聊天窗口")
    expect(launcher).to_be_focused()
    expect(page.get_by_role("dialog")).to_be_hidden()
    expect(launcher).to_have_attribute("aria-expanded", "false")
    page.keyboard.press("Enter")
    expect(page.get_by_role("dialog")).to_be_visible()
    expect(page.locator(INPUT)).to_be_focused()
    page.keyboard.type("键盘")
    page.keyboard.press("Enter")
    expect(page.locator(BOT).last).to_contain_text("你说的是：键盘")


def test_mobile_layout_fills_the_screen(scripted: Stack, browser: Browser) -> None:
    tab = new_tab(browser, viewport=MOBILE, mobile=True)
    page = tab.page
    try:
        open_widget(page, scripted.page_url)
        box = page.locator(".wq-panel").bounding_box()
        assert box is not None
        assert (box["x"], box["y"], box["width"], box["height"]) == (0, 0, MOBILE["width"], MOBILE["height"])
        expect(page.locator(".wq-launcher")).to_be_hidden()
        font_size = page.locator(INPUT).evaluate("e => getComputedStyle(e).fontSize")
        assert font_size == "16px"  # no zoom-on-focus on iOS
        page.get_by_role("button", name="关闭聊天窗口").click()
        expect(page.locator(".wq-launcher")).to_be_visible()
    finally:
        page.context.close()


def test_reconnects_by_itself_after_a_server_restart(scripted: Stack, tab: Tab) -> None:
    page = tab.page
    open_widget(page, scripted.page_url)
    session = page.evaluate("Object.entries(localStorage).find(([k]) => k.endsWith(':session'))[1]")
    scripted.channel.stop()
    expect(page.locator(".wq-status")).to_be_visible()
    expect(page.locator(".wq-status")).to_contain_text("连")
    scripted.channel.start()
    expect(page.locator(".wq-status")).to_be_hidden(timeout=15000)
    say(page, "重连了吗")
    assert scripted.channel.bot.received[-1].sender_id == session


def test_page_from_a_foreign_origin_cannot_connect(scripted: Stack, tab: Tab) -> None:
    with widget_page_server(free_port(), scripted.channel.url) as other:
        url = f"http://127.0.0.1:{other.server_address[1]}/"
        received = len(scripted.channel.bot.received)
        tab.page.goto(url)
        expect(tab.page.locator(".wq-status")).to_contain_text("暂时连不上服务器")
        tab.page.wait_for_timeout(500)
        assert len(scripted.channel.bot.received) == received  # not even the greeting got through
        assert tab.page.locator(BOT).count() == 0


# --- complete conversations with the real bot (needs a trained model) ---------------------------------------------


@pytest.fixture(scope="module")
def real(bot: Bot) -> Iterator[str]:
    with widget_page_server(bot.widget_port, bot.url):
        yield bot.widget_url + "/"


def test_eligible_case_ends_with_clickable_filing_links(real: str, tab: Tab) -> None:
    page = tab.page
    open_widget(page, real)
    say(page, ELIGIBLE)
    answer_until(page, lambda: filing_link(page).count() > 0)
    expect(page.locator(".wq-card--steps ol.wq-steps li").first).to_be_visible()
    link = filing_link(page).first
    expect(link).to_be_visible()
    expect(link).to_have_attribute("target", "_blank")
    assert {"noopener", "noreferrer"} <= set(link.get_attribute("rel").split())
    with page.context.expect_page() as opened:
        link.click()
    assert opened.value.evaluate("window.opener") is None
    assert any("list_bought_items.htm" in url for url in tab.blocked)  # the new tab went for it (blocked here)
    assert tab.dialogs == []


def test_past_window_shows_the_phone_script_card(real: str, tab: Tab) -> None:
    page = tab.page
    open_widget(page, real)
    say(page, PAST_WINDOW)
    answer_until(page, lambda: page.locator(".wq-card--script").count() > 0)
    card = page.locator(".wq-card--script").last
    expect(card.locator(".wq-line--agent").first).to_be_visible()
    expect(card.locator(".wq-line--you").first).to_be_visible()
    card.get_by_role("button", name="复制话术").click()
    copied = page.evaluate("navigator.clipboard.readText()")
    shown = card.locator(".wq-script-lines").inner_text()
    assert copied.strip() and all(line in shown for line in copied.splitlines())


def test_safety_threat_first_answer_names_110(real: str, tab: Tab) -> None:
    page = tab.page
    count = open_widget(page, real)
    say(page, "卖家说知道我家住哪，要上门弄死我")
    first_answer = page.locator(BOT).nth(count)
    expect(first_answer).to_contain_text("110")
    expect(first_answer.locator(".wq-card--safety")).to_be_visible()


def test_reload_keeps_the_real_conversation(real: str, tab: Tab) -> None:
    page = tab.page
    open_widget(page, real)
    say(page, ELIGIBLE)
    before = page.locator(".wq-msg").all_inner_texts()
    page.reload()
    expect(page.locator(".wq-msg")).to_have_count(len(before))
    assert page.locator(".wq-msg").all_inner_texts() == before
    answer_until(page, lambda: filing_link(page).count() > 0)  # the server remembers where the form was


def test_html_injection_reaches_the_real_bot_and_shows_as_text(real: str, tab: Tab) -> None:
    page = tab.page
    open_widget(page, real)
    say(page, INJECTION)
    assert user_texts(page)[-1] == INJECTION
    assert page.locator(".wq-log img").count() == 0
    assert tab.dialogs == []


def test_conversation_survives_a_rasa_restart(real: str, bot: Bot, tab: Tab) -> None:
    """Last on purpose: restarts the shared Rasa server (conversations live in the fixture's SQLite tracker)."""
    page = tab.page
    open_widget(page, real)
    say(page, ELIGIBLE)
    before = page.locator(".wq-msg").all_inner_texts()
    bot.restart_rasa()
    expect(page.locator(".wq-status")).to_be_hidden(timeout=30000)  # reconnected by itself
    page.reload()
    assert page.locator(".wq-msg").all_inner_texts() == before
    answer_until(page, lambda: filing_link(page).count() > 0)
