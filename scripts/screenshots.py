"""`make screenshots`: desktop (1280×800) and mobile (390×844) PNGs of the widget after a short real conversation.

Starts the action server, the Rasa server (latest model in models/) and the demo page on free loopback ports, drives
Debian's headless Chromium through Playwright, and writes docs/screenshots/widget-desktop.png and widget-mobile.png.
The browser helpers here are shared with tests/e2e/test_widget_browser.py.
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from http.server import ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from playwright.sync_api import (  # noqa: E402
    Browser,
    BrowserContext,
    Page,
    Playwright,
    Route,
    ViewportSize,
    sync_playwright,
)

from scripts.serve_widget import make_server  # noqa: E402

CHROMIUM = "/usr/bin/chromium"  # Debian's package (`make browser`); `playwright install` is never used
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
OUT = ROOT / "docs" / "screenshots"
DESKTOP = ViewportSize(width=1280, height=800)
MOBILE = ViewportSize(width=390, height=844)

# What the widget's DOM looks like to a test (Playwright's CSS selectors pierce its open shadow root).
BOT = ".wq-msg--bot"
USER = ".wq-msg--user"
INPUT = ".wq-input"
# Answers to prefer when the bot offers buttons, first match wins; otherwise the first button.
PREFERRED_ANSWERS = ("旺旺聊天截图", "截图", "交易成功", "淘宝", "打电话")
ELIGIBLE = "淘宝买的，交易成功5天了，卖家天天打电话骂我"
PAST_WINDOW = "淘宝买的，交易成功20天了，卖家天天打电话骂我"


def launch_chromium(playwright: Playwright) -> Browser:
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: run `make browser` (apt-get install chromium fonts-noto-cjk)")
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


def loopback_only(context: BrowserContext, blocked: list[str] | None = None) -> None:
    """Abort every request that would leave this machine (and note it in `blocked`)."""

    def handle(route: Route) -> None:
        url = route.request.url
        if url.startswith(("data:", "blob:")) or urlsplit(url).hostname in LOOPBACK:
            route.continue_()
        else:
            if blocked is not None:
                blocked.append(url)
            route.abort()

    context.route("**/*", handle)


@contextmanager
def widget_page_server(port: int, rasa_url: str, feedback_url: str = "") -> Iterator[ThreadingHTTPServer]:
    """The demo page (scripts/serve_widget.py) in a background thread."""
    httpd = make_server("127.0.0.1", port, rasa_url, quiet=True, feedback_url=feedback_url)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def settle(page: Page, before: int, timeout_s: float = 30, quiet_s: float = 0.8) -> int:
    """Wait for the bot to answer (more than `before` bot messages) and to stop sending; return the new count."""
    page.locator(BOT).nth(before).wait_for(timeout=timeout_s * 1000)
    count, stable_since = page.locator(BOT).count(), time.monotonic()
    while time.monotonic() - stable_since < quiet_s:
        time.sleep(0.1)
        now = page.locator(BOT).count()
        if now != count:
            count, stable_since = now, time.monotonic()
    return count


def open_widget(page: Page, url: str) -> int:
    """Load the demo page and wait for the greeting; returns the number of bot messages shown."""
    page.goto(url)
    return settle(page, 0)


def say(page: Page, text: str) -> int:
    before = page.locator(BOT).count()
    page.locator(INPUT).fill(text)
    page.locator(INPUT).press("Enter")
    return settle(page, before)


def transcript(page: Page) -> str:
    return "\n".join(f"- {line}" for line in page.locator(".wq-msg").all_inner_texts())


def answer_until(
    page: Page, done: Callable[[], bool], preferred: Sequence[str] = PREFERRED_ANSWERS, rounds: int = 8
) -> None:
    """Click the bot's quick replies (preferred titles first) until `done()`; fail with the transcript."""
    for _ in range(rounds):
        if done():
            return
        buttons = page.locator(".wq-quick-btn:enabled")
        titles = buttons.all_inner_texts()
        if not titles:
            break
        choice = next((t for p in preferred for t in titles if p in t), titles[0])
        before = page.locator(BOT).count()
        buttons.filter(has_text=choice).first.click()
        settle(page, before)
    if not done():
        raise AssertionError(f"the conversation did not get there:\n{transcript(page)}")


def filing_link(page: Page):  # noqa: ANN201 - a Locator
    return page.locator('a.wq-link[href*="list_bought_items.htm"]')


def shoot(browser: Browser, url: str, viewport: ViewportSize, mobile: bool, opening: str, done_selector: str,
          out: Path):
    context = browser.new_context(
        viewport=viewport,
        device_scale_factor=2 if mobile else 1,
        is_mobile=mobile,
        has_touch=mobile,
        locale="zh-CN",
    )
    loopback_only(context)
    page = context.new_page()
    open_widget(page, url)
    say(page, opening)
    answer_until(page, lambda: page.locator(done_selector).count() > 0)
    # show the card from its top, with a little of the conversation above it
    page.locator(done_selector).last.evaluate(
        "card => { card.scrollIntoView({block: 'start'}); card.closest('.wq-log').scrollTop -= 70; }"
    )
    time.sleep(0.3)
    page.screenshot(path=str(out))
    context.close()
    print(f"wrote {out.relative_to(ROOT)}")


def main() -> int:
    from weiquan.ops.harness import Bot  # the same servers the end-to-end tests start

    OUT.mkdir(parents=True, exist_ok=True)
    bot = Bot(workdir=Path(tempfile.mkdtemp(prefix="weiquan-shots-")))
    try:
        bot.start_actions()
        bot.start_rasa()
        with widget_page_server(bot.widget_port, bot.url), sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            shoot(
                browser, bot.widget_url, DESKTOP, False, ELIGIBLE, f"{BOT} .wq-card--steps", OUT / "widget-desktop.png"
            )
            shoot(browser, bot.widget_url, MOBILE, True, PAST_WINDOW, ".wq-card--script", OUT / "widget-mobile.png")
            browser.close()
    finally:
        for name in list(bot.procs):
            bot.stop(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
