"""The console's analytics page and API, run for real on a loopback port: the figures and the CSV come from the
analytics store (never Rasa: the fake Rasa here knows no conversation), behind the same operator token."""
from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from tests.test_analytics import NOON, recorded
from weiquan.analytics.store import AnalyticsStore, database_url
from weiquan.core.clock import FakeClock
from weiquan.handoff.console import create_app
from weiquan.handoff.rasa_api import FakeRasa
from weiquan.handoff.service import HandoffService
from weiquan.handoff.settings import HandoffSettings
from weiquan.stores.handoff import SqlHandoffStore

TOKEN = "operator-token-for-tests-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
WIDGET = "http://127.0.0.1:8080"


async def client_for(tmp_path: Path, analytics: AnalyticsStore | None) -> TestClient:
    clock = FakeClock(NOON + 3600)  # 2026-11-24, Beijing
    service = HandoffService(SqlHandoffStore(f"sqlite:///{tmp_path / 'handoff.db'}"), FakeRasa(clock),
                             HandoffSettings(), clock)
    return TestClient(TestServer(create_app(service, TOKEN, sweep_interval_s=3600, analytics=analytics,
                                            widget_origins=frozenset({WIDGET}))))


@pytest_asyncio.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient]:
    store = AnalyticsStore(database_url(str(tmp_path / "analytics.db")))
    store.add_events(recorded())
    store.add_loss(2, NOON)
    async with await client_for(tmp_path, store) as test_client:
        yield test_client


@pytest.mark.parametrize("path", ["/api/analytics?days=7", "/api/analytics.csv?days=7"])
async def test_the_figures_need_the_operator_token(client: TestClient, path: str) -> None:
    assert (await client.get(path)).status == 401
    assert (await client.get(path, headers={"Authorization": "Bearer wrong"})).status == 401


async def test_the_api_gives_the_figures_of_the_chosen_period(client: TestClient) -> None:
    reply = await client.get("/api/analytics?days=1", headers=AUTH)
    assert reply.status == 200
    today = await reply.json()
    assert (today["from"], today["to"], today["conversations"]) == ("2026-11-24", "2026-11-24", 4)
    assert today["outcomes"]["within_window"] == 1 and today["outcomes"]["past_window"] == 0
    week = await (await client.get("/api/analytics?days=7", headers=AUTH)).json()
    assert week["conversations"] == 5 and week["outcomes"]["past_window"] == 1 and len(week["per_day"]) == 7
    assert week["handoffs"] == 1 and week["unsure"]["fallback"] == 2 and week["lost"] == 2
    assert week["unrecognised"][0] == {"text": "啊啊啊这个怎么弄", "count": 2, "guess": "report_harassment"}


async def test_the_csv_export_carries_the_same_figures(client: TestClient) -> None:
    reply = await client.get("/api/analytics.csv?days=7", headers=AUTH)
    assert reply.status == 200 and reply.headers["Content-Type"].startswith("text/csv")
    assert "2026-11-18-2026-11-24.csv" in reply.headers["Content-Disposition"]
    rows = {(s, k): v for s, k, v in csv.reader(io.StringIO((await reply.text()).lstrip("\ufeff")))}
    assert rows[("total", "conversations")] == "5" and rows[("outcome", "past_window")] == "1"
    assert rows[("total", "lost_events")] == "2"


@pytest.mark.parametrize("days", ["0", "367", "七", "-3"])
async def test_a_bad_period_is_400_in_chinese(client: TestClient, days: str) -> None:
    reply = await client.get(f"/api/analytics?days={days}", headers=AUTH)
    assert reply.status == 400 and "1 到 366" in (await reply.json())["message"]


async def test_without_an_analytics_store_the_api_says_so(tmp_path: Path) -> None:
    async with await client_for(tmp_path, None) as test_client:
        reply = await test_client.get("/api/analytics", headers=AUTH)
        assert reply.status == 503 and "event_broker" in (await reply.json())["message"]


async def test_the_page_is_served_locally_with_its_chart_library_and_a_strict_csp(client: TestClient) -> None:
    reply = await client.get("/analytics")
    page = await reply.text()
    assert reply.status == 200 and "服务统计" in page and '<script src="/static/analytics.js"' in page
    assert "http" not in page.replace('href="/', "")  # nothing from another host
    assert "default-src 'none'" in reply.headers["Content-Security-Policy"]
    script = await (await client.get("/static/analytics.js")).text()
    assert "bundles chart.js 4." in script and "/api/analytics" in script
    assert not any(sink in script for sink in (".innerHTML", ".outerHTML", "insertAdjacentHTML", "document.write",
                                               "eval("))
    assert 'href="/analytics"' in await (await client.get("/")).text()


# --- buyers' ratings (weiquan/analytics/feedback.py) ---------------------------------------------------------------


async def rate(client: TestClient, body: object, origin: str = WIDGET) -> int:
    headers = {"Origin": origin, "Content-Type": "text/plain;charset=UTF-8"}
    reply = await client.post("/feedback", data=json.dumps(body, ensure_ascii=False), headers=headers)
    return reply.status


async def test_a_rating_from_the_widget_is_stored_with_the_answer_it_rates_and_counted(client: TestClient) -> None:
    assert await rate(client, {"sender_id": "eligible", "rating": "up"}) == 204
    assert await rate(client, {"sender_id": "lost", "rating": "down", "comment": "没用，我电话13812345678"}) == 204
    week = await (await client.get("/api/analytics?days=7", headers=AUTH)).json()
    assert week["ratings"] == {"up": 1, "down": 1}
    assert {"response": "utter_complaint_file_online", "rating": "up", "count": 1} in week["rated"]
    inbox = await (await client.get("/api/review", headers=AUTH)).json()
    assert "rated_down" in next(item for item in inbox["items"] if item["text"] == "转人工")["reasons"]


async def test_a_comment_after_a_rating_is_kept_with_it_and_not_counted_twice(client: TestClient) -> None:
    assert await rate(client, {"sender_id": "lost", "rating": "down"}) == 204
    assert await rate(client, {"sender_id": "lost", "rating": "down", "comment": "没说清楚，我电话13812345678"}) == 204
    # a comment with no rating before it (another client sending both at once) is a rating with its comment
    assert await rate(client, {"sender_id": "eligible", "rating": "up", "comment": "很清楚"}) == 204
    week = await (await client.get("/api/analytics?days=7", headers=AUTH)).json()
    assert week["ratings"] == {"up": 1, "down": 1}
    assert [(row["rating"], row["comment"]) for row in week["comments"]] == [
        ("up", "很清楚"), ("down", "没说清楚，我电话138****5678")]
    csv_text = await (await client.get("/api/analytics.csv?days=7", headers=AUTH)).text()
    assert "comment,down,没说清楚，我电话138****5678" in csv_text and "13812345678" not in csv_text
    inbox = await (await client.get("/api/review", headers=AUTH)).json()
    rated_down = next(item for item in inbox["items"] if "rated_down" in item["reasons"])
    assert rated_down["comments"] == ["没说清楚，我电话138****5678"]  # the operator reads it beside the message


def test_the_widget_and_the_console_agree_on_the_longest_comment() -> None:
    import re

    from weiquan.analytics.feedback import MAX_COMMENT_CHARS

    source = (Path(__file__).parents[1] / "widget" / "src" / "feedback.js").read_text(encoding="utf-8")
    assert re.search(r"export const MAX_COMMENT_CHARS = (\d+);", source).group(1) == str(MAX_COMMENT_CHARS)


@pytest.mark.parametrize(("body", "origin", "status"), [
    ({"sender_id": "eligible", "rating": "up"}, "http://evil.example", 403),
    ({"sender_id": "eligible", "rating": "meh"}, WIDGET, 400),
    ({"sender_id": "nobody", "rating": "up"}, WIDGET, 400),  # no bot message to rate
    ({"sender_id": "eligible", "rating": "up", "comment": "长" * 201}, WIDGET, 400),
    (["not", "an", "object"], WIDGET, 400),
])
async def test_a_rating_from_elsewhere_or_malformed_is_refused(client: TestClient, body, origin, status) -> None:
    assert await rate(client, body, origin) == status
    week = await (await client.get("/api/analytics?days=7", headers=AUTH)).json()
    assert week["ratings"] == {"up": 0, "down": 0}


async def test_ratings_past_the_rate_limit_or_too_big_get_4xx_and_are_not_stored(client: TestClient) -> None:
    from weiquan.analytics.feedback import RATE_PER_SENDER

    statuses = [await rate(client, {"sender_id": "eligible", "rating": "up"}) for _ in range(RATE_PER_SENDER.count + 2)]
    assert statuses[:RATE_PER_SENDER.count] == [204] * RATE_PER_SENDER.count
    assert statuses[RATE_PER_SENDER.count:] == [429, 429]
    big = await client.post("/feedback", data="x" * 5000, headers={"Origin": WIDGET})
    assert big.status == 413
    week = await (await client.get("/api/analytics?days=7", headers=AUTH)).json()
    assert week["ratings"] == {"up": RATE_PER_SENDER.count, "down": 0}
