"""Analytics on the real running path (issue 17): the action server, Rasa (trained model, endpoints.yml with its event
broker) and the operator console; conversations played over REST reach the analytics store through Rasa's event
broker, masked, and the console's analytics API and CSV count them right."""
from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from weiquan.ops.handoff_harness import OPERATOR_TOKEN, HandoffBot, eventually, texts

pytestmark = pytest.mark.e2e

PHONE = "13812345678"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HandoffBot]:
    workdir = tmp_path_factory.mktemp("analytics")
    bot = HandoffBot(workdir=workdir, extra_env={"ANALYTICS_DB": str(workdir / "analytics.db")})
    try:
        bot.start_actions()
        bot.start_rasa()
        bot.start_console()
        yield bot
    finally:
        for name in list(bot.procs):
            bot.stop(name)


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

    stack.rest(f"e2e-analytics-human-{run}", "转人工")
    stack.rest(f"e2e-analytics-odd-{run}", "咕噜咕噜啊吧啊吧")

    after = eventually(lambda: (lambda now: now if now["conversations"] >= before["conversations"] + 3 else None)(
        figures(stack)), 30, "the analytics store to see the three conversations")
    assert after["conversations"] == before["conversations"] + 3
    assert after["outcomes"]["within_window"] == before["outcomes"]["within_window"] + 1
    assert after["handoffs"] == before["handoffs"] + 1
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


def test_the_analytics_page_draws_the_figures_and_an_operator_reviews_a_message_in_chromium(
        stack: HandoffBot) -> None:
    from playwright.sync_api import expect, sync_playwright

    from scripts.screenshots import launch_chromium, loopback_only

    odd = "叽里咕噜这是啥子嘛"
    stack.rest(f"e2e-analytics-page-{uuid.uuid4().hex[:6]}", odd)
    blocked: list[str] = []
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 1400}, locale="zh-CN")
            loopback_only(context, blocked)
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(f"{stack.console_url}/analytics#token={OPERATOR_TOKEN}")
            expect(page.locator("#t-conversations")).not_to_have_text("–")
            assert int(page.locator("#t-conversations").inner_text()) >= 1
            assert page.locator("#c-days").bounding_box()["height"] > 100  # chart.js drew into the canvas
            row = page.locator("#review tr", has_text=odd)
            expect(row).to_have_count(1)
            row.locator("select").select_option("out_of_scope")
            row.locator("input[type=checkbox]").check()
            # ANALYTICS_SCREENSHOT=docs/screenshots/analytics.png keeps the picture of the page for the docs.
            shot = os.environ.get("ANALYTICS_SCREENSHOT") or str(stack.workdir / "analytics.png")
            page.screenshot(path=shot, full_page=True)
            page.locator("#review-confirm").click()
            expect(page.locator("#review-notice")).to_have_text("已处理 1 条")
            expect(page.locator("#review tr", has_text=odd)).to_have_count(0)
            assert errors == [] and blocked == []
        finally:
            browser.close()
    code, listing = stack.console("GET", "/api/review")
    assert code == 200 and all(item["text"] != odd for item in listing["items"])
