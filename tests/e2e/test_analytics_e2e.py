"""Analytics on the real running path (issue 17): the action server, Rasa (trained model, endpoints.yml with its event
broker) and the operator console; conversations played over REST reach the analytics store through Rasa's event
broker, masked, and the console's analytics API and CSV count them right."""
from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import sqlite3
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from weiquan.ops.handoff_harness import OPERATOR_TOKEN, HandoffBot, eventually, operator_online, running, texts

pytestmark = pytest.mark.e2e

PHONE = "13812345678"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HandoffBot]:
    workdir = tmp_path_factory.mktemp("analytics")
    bot = HandoffBot(workdir=workdir, extra_env={"ANALYTICS_DB": str(workdir / "analytics.db"),
                                                 "HANDOFF_OPERATORS": "auto"})
    with running(bot):
        yield bot


def figures(stack: HandoffBot) -> dict:
    code, body = stack.console("GET", "/api/analytics?days=1")
    assert code == 200, body
    return body


def test_conversations_over_rest_are_counted_on_the_analytics_page(stack: HandoffBot) -> None:
    run = uuid.uuid4().hex[:6]
    before = figures(stack)

    eligible = f"e2e-analytics-eligible-{run}"
    stack.rest(eligible, f"淘宝买的，交易成功5天了，卖家天天打电话骂我，我电话{PHONE}")
    ruling = texts(stack.rest(eligible, "有聊天截图"))
    assert any("还剩" in text for text in ruling), ruling  # the ruling within the window

    human = f"e2e-analytics-human-{run}"
    with operator_online(stack):  # an operator takes the hand-off, answers, and gives it back
        stack.rest(human, "转人工")
        assert stack.console("POST", f"/api/conversations/{human}/takeover")[0] == 200
        assert stack.console("POST", f"/api/conversations/{human}/messages", {"text": "你好，我是客服。"})[0] == 200
        assert stack.console("POST", f"/api/conversations/{human}/release")[0] == 200
    stack.rest(f"e2e-analytics-odd-{run}", "咕噜咕噜啊吧啊吧")

    after = eventually(lambda: (lambda now: now if now["conversations"] >= before["conversations"] + 3 else None)(
        figures(stack)), 30, "the analytics store to see the three conversations")
    assert after["conversations"] == before["conversations"] + 3
    assert after["outcomes"]["within_window"] == before["outcomes"]["within_window"] + 1
    assert after["handoffs"] == before["handoffs"] + 1
    times = eventually(lambda: (lambda now: now["handoff_times"] if now["handoff_times"]["taken"] > before[
        "handoff_times"]["taken"] else None)(figures(stack)), 30, "the taken hand-off in the analytics store")
    assert times["wait_median_s"] is not None and times["handling_median_s"] is not None
    assert after["unsure"]["messages"] >= before["unsure"]["messages"] + 1
    assert any(item["text"] == "咕噜咕噜啊吧啊吧" for item in after["unrecognised"]), after["unrecognised"]
    assert after["lost"] == 0
    assert sum(row["conversations"] for row in after["per_day"]) == after["conversations"]

    # The buyer rates the ruling from the widget's origin (as src/feedback.js sends it), stored with that answer.
    origin = stack.env()["WIDGET_ALLOWED_ORIGINS"].split()[0]
    rating = urllib.request.Request(f"{stack.console_url}/feedback", method="POST",
                                    data=json.dumps({"sender_id": eligible, "rating": "up"}).encode(),
                                    headers={"Origin": origin, "Content-Type": "text/plain;charset=UTF-8"})
    with urllib.request.urlopen(rating, timeout=30) as reply:
        assert reply.status == 204
    rated = figures(stack)
    assert rated["ratings"]["up"] == after["ratings"]["up"] + 1
    assert any(row["response"].startswith("utter_complaint_") and row["rating"] == "up" for row in rated["rated"])

    request = urllib.request.Request(f"{stack.console_url}/api/analytics.csv?days=1",
                                     headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"})
    with urllib.request.urlopen(request, timeout=30) as reply:
        rows = {(s, k): v for s, k, v in csv.reader(io.StringIO(reply.read().decode("utf-8-sig")))}
    assert rows[("total", "conversations")] == str(after["conversations"])
    assert rows[("outcome", "within_window")] == str(after["outcomes"]["within_window"])
    assert rows[("total", "handoffs")] == str(after["handoffs"])

    database = Path(stack.workdir / "analytics.db")
    with sqlite3.connect(database) as connection:
        stored = "\n".join(row[0] for row in connection.execute("SELECT data FROM analytics_events"))
    assert "138****5678" in stored and PHONE not in stored  # masked before it was stored


@contextlib.contextmanager
def analytics_page(stack: HandoffBot, height: int) -> Iterator[Any]:
    """The console's analytics page in Chromium with the operator's token, reaching nothing but loopback; afterwards
    the page threw no error and asked for nothing outside."""
    from playwright.sync_api import sync_playwright

    from scripts.screenshots import launch_chromium, loopback_only

    blocked: list[str] = []
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": height}, locale="zh-CN")
            loopback_only(context, blocked)
            page = context.new_page()
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(f"{stack.console_url}/analytics#token={OPERATOR_TOKEN}")
            yield page
        finally:
            browser.close()
    assert errors == [] and blocked == []


def test_the_analytics_page_draws_the_figures_and_an_operator_reviews_a_message_in_chromium(
        stack: HandoffBot) -> None:
    from playwright.sync_api import expect

    odd = "叽里咕噜这是啥子嘛"
    flowers = "买的鲜花送到全蔫了谁管啊"  # an other problem the bot has no pointer for: a new family
    stack.rest(f"e2e-analytics-page-{uuid.uuid4().hex[:6]}", odd)
    stack.rest(f"e2e-analytics-flowers-{uuid.uuid4().hex[:6]}", flowers)
    eventually(lambda: any(item["text"] == flowers for item in stack.console("GET", "/api/review")[1]["items"]), 30,
               "the other problem in the review inbox")
    with analytics_page(stack, 1400) as page:
        expect(page.locator("#t-conversations")).not_to_have_text("–")
        assert int(page.locator("#t-conversations").inner_text()) >= 1
        assert page.locator("#c-days").bounding_box()["height"] > 100  # chart.js drew into the canvas
        row = page.locator("#review tr", has_text=odd)
        expect(row).to_have_count(1)
        row.locator("select").select_option("out_of_scope")
        row.locator("input[type=checkbox]").focus()
        page.keyboard.press("x")  # ticked from the keyboard
        expect(row.locator("input[type=checkbox]")).to_be_checked()
        # ANALYTICS_SCREENSHOT=docs/screenshots/analytics.png keeps the picture of the page for the docs.
        shot = os.environ.get("ANALYTICS_SCREENSHOT") or str(stack.workdir / "analytics.png")
        page.screenshot(path=shot, full_page=True)
        row.locator("input[type=checkbox]").press("c")  # confirmed from the keyboard
        expect(page.locator("#review-notice")).to_have_text("已处理 1 条")
        expect(page.locator("#review tr", has_text=odd)).to_have_count(0)
        # A new other-problem family, from the keyboard: tick, f (goes to the empty name box), name it, Enter.
        flower_box = page.locator("#review tr", has_text=flowers).locator("input[type=checkbox]")
        flower_box.focus()
        page.keyboard.press("x")
        page.keyboard.press("f")
        expect(page.locator("#review-family")).to_be_focused()
        page.keyboard.type("鲜花枯萎")
        page.keyboard.press("Enter")
        expect(page.locator("#review-notice")).to_have_text("已处理 1 条")
        expect(page.locator("#families tr", has_text="鲜花枯萎")).to_have_count(1)
    code, listing = stack.console("GET", "/api/review")
    assert code == 200 and all(item["text"] not in (odd, flowers) for item in listing["items"])
    assert {"family": "鲜花枯萎", "messages": 1, "count": 1} in figures(stack)["new_families"]


def test_a_buyer_rates_a_ruling_in_the_widget_and_the_page_counts_it(stack: HandoffBot) -> None:
    """The widget on the demo page as `make run` serves it (scripts/serve_widget.py --feedback-url, the console's
    /feedback), talking to the real Rasa over socket.io: the ruling gets a 👍/👎 row, and the 👎 the browser sends
    to the console itself (cross-origin, from the widget's allowed origin) is counted with the ruling it rates."""
    from playwright.sync_api import expect, sync_playwright

    from scripts.screenshots import BOT, launch_chromium, loopback_only, open_widget, say, widget_page_server

    before = figures(stack)["ratings"]["down"]
    comment = f"说的期限和我看到的不一样 {uuid.uuid4().hex[:4]}"
    with widget_page_server(stack.widget_port, stack.url, f"{stack.console_url}/feedback"), \
            sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            context = browser.new_context(locale="zh-CN")
            loopback_only(context)
            page = context.new_page()
            open_widget(page, stack.widget_url + "/")
            assert page.locator(".wq-feedback").count() == 0  # a greeting is not rated
            say(page, "淘宝买的，交易成功5天了，卖家天天打电话骂我")
            say(page, "有聊天截图")
            expect(page.locator(BOT, has_text="还剩")).to_have_count(1)
            row = page.locator(".wq-feedback")
            expect(row).to_have_count(1)  # one per reply, under the first ruling card
            row.get_by_role("button", name="没帮助").click()
            expect(row).to_contain_text("谢谢你的反馈")
            # The optional comment: typed into the box the row now offers, sent with Enter, thanked for.
            box = row.get_by_role("textbox", name="补充说明（选填）")
            expect(box).to_have_attribute("maxlength", "200")
            box.fill(comment)
            box.press("Enter")
            expect(row).to_contain_text("收到你的补充")
            expect(page.locator(".wq-input")).to_be_enabled()  # the chat was never blocked
        finally:
            browser.close()
    after = eventually(lambda: (lambda now: now if any(c["comment"] == comment for c in now["comments"]) else None)(
        figures(stack)), 30, "the rating and its comment to reach the analytics store")
    assert after["ratings"]["down"] == before + 1  # the comment did not count the rating twice
    assert any(row["rating"] == "down" and row["response"].startswith("utter_complaint_") for row in after["rated"])
