"""`make console-screenshot`: docs/screenshots/console.png, the operator console during a real hand-off.

Starts the action server, Rasa (latest model, HTTP API on with a token) and the console on free loopback ports,
plays two short conversations (one in the web widget, one through REST), takes the widget one over, and shoots the
console in Debian's headless Chromium. Nothing leaves this machine.
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from scripts.screenshots import (  # noqa: E402
    INPUT,
    launch_chromium,
    loopback_only,
    open_widget,
    say,
    widget_page_server,
)

OUT = ROOT / "docs" / "screenshots" / "console.png"


def main() -> int:
    from weiquan.ops.handoff_harness import OPERATOR_TOKEN, HandoffBot

    bot = HandoffBot(workdir=Path(tempfile.mkdtemp(prefix="weiquan-console-")), extra_env={"HANDOFF_OPERATORS": "on"})
    try:
        bot.start_actions()
        bot.start_rasa()
        bot.start_console()
        bot.wait_for_console_heartbeat()
        other = "rest-demo-0042"
        bot.rest(other, "卖家说知道我家住哪，要上门找我")
        bot.rest(other, "我想找真人聊聊")
        with widget_page_server(bot.widget_port, bot.url), sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            widget_context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
            loopback_only(widget_context)
            widget = widget_context.new_page()
            open_widget(widget, bot.widget_url + "/")
            say(widget, "淘宝买的，交易成功5天了，卖家天天打电话骂我")
            say(widget, "转人工")

            context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN")
            loopback_only(context)
            console = context.new_page()
            console.goto(f"{bot.console_url}/#token={OPERATOR_TOKEN}")
            expect(console.locator("#live")).to_have_text("实时更新中")
            console.locator("#list .entry--waiting").filter(has_text="网页").first.click()
            console.get_by_role("button", name="接入").click()
            expect(widget.locator(".wq-msg--status").last).to_contain_text("客服已接入")
            console.locator("#reply-text").fill("你好，我是客服小李。卖家最近一次打电话是什么时候？")
            console.locator("#reply-text").press("Enter")
            expect(widget.locator(".wq-msg--operator").last).to_be_visible()
            widget.locator(INPUT).fill("昨晚十点还在打，我的手机号13812345678也被他发到网上了")
            widget.locator(INPUT).press("Enter")
            expect(console.locator("#transcript .line--user .text").last).to_contain_text("138****5678")
            console.get_by_role("tab", name="全部").click()
            time.sleep(0.5)
            OUT.parent.mkdir(parents=True, exist_ok=True)
            console.screenshot(path=str(OUT))
            print(f"wrote {OUT.relative_to(ROOT)}")
            browser.close()
    finally:
        for name in list(bot.procs):
            bot.stop(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
