"""The review inbox (issue 17): what it lists from the stored events, how an operator decides through the console's
API, and `make export-reviewed`'s files (masked, de-duplicated, every fifth held out)."""
from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio
import yaml
from aiohttp.test_utils import TestClient
from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLReader

from tests.test_analytics import NOON, recorded
from tests.test_analytics_console import AUTH, client_for
from weiquan.analytics import review
from weiquan.analytics.store import AnalyticsStore, Review, database_url

PHONE = "13812345678"


def events() -> list[dict[str, Any]]:
    """The recorded conversations plus an unread message with a phone number in it."""
    extra = {"sender_id": "phone", "event": "user", "timestamp": NOON + 300, "text": f"你打{PHONE}问问",
             "parse_data": {"intent": {"name": "nlu_fallback", "confidence": 0.3},
                            "intent_ranking": [{"name": "nlu_fallback"}, {"name": "request_human"}]}}
    return sorted([*recorded(), extra], key=lambda event: event["timestamp"])


def test_the_inbox_lists_unsure_other_problem_and_handoff_messages_most_frequent_first() -> None:
    items = review.inbox(events())
    assert [item["text"] for item in items] == ["啊啊啊这个怎么弄", "你打138****5678问问", "转人工", "快递一直不到"]
    first = items[0]
    assert (first["count"], first["guess"], first["reasons"]) == (2, "report_harassment", ["unsure"])
    assert first["id"] == review.item_id("啊啊啊这个怎么弄")
    assert items[2]["reasons"] == ["handoff"] and items[3]["reasons"] == ["other_problem", "unsure"]
    assert [line["from"] for line in items[3]["context"]] == ["user", "bot"]
    assert PHONE not in str(items)
    assert [item["text"] for item in review.inbox(events(), decided=[first["id"]])][0] == "你打138****5678问问"


@pytest_asyncio.fixture
async def client(tmp_path: Path) -> AsyncIterator[tuple[TestClient, AnalyticsStore]]:
    store = AnalyticsStore(database_url(str(tmp_path / "analytics.db")))
    store.add_events(events())
    async with await client_for(tmp_path, store) as test_client:
        yield test_client, store


async def test_an_operator_confirms_corrects_and_dismisses_through_the_api(client) -> None:
    test_client, store = client
    assert (await test_client.get("/api/review")).status == 401
    listing = await (await test_client.get("/api/review", headers=AUTH)).json()
    assert "report_harassment" in listing["intents"]
    ids = {item["text"]: item["id"] for item in listing["items"]}
    confirm = await test_client.post(f"/api/review/{ids['啊啊啊这个怎么弄']}", headers=AUTH,
                                     json={"intent": "report_harassment"})
    assert confirm.status == 200
    bad = await test_client.post(f"/api/review/{ids['快递一直不到']}", headers=AUTH, json={"intent": "no_such"})
    assert bad.status == 400 and "domain.yml" in (await bad.json())["message"]
    assert (await test_client.post(f"/api/review/{ids['快递一直不到']}", headers=AUTH,
                                   json={"intent": "out_of_scope"})).status == 200
    assert (await test_client.post(f"/api/review/{ids['转人工']}", headers=AUTH, json={"dismiss": True})).status == 200
    assert (await test_client.post("/api/review/0000", headers=AUTH, json={"dismiss": True})).status == 404
    left = await (await test_client.get("/api/review", headers=AUTH)).json()
    assert [item["text"] for item in left["items"]] == ["你打138****5678问问"]
    assert {(r.text, r.intent) for r in store.reviews()} == {
        ("啊啊啊这个怎么弄", "report_harassment"), ("快递一直不到", "out_of_scope"), ("转人工", None)}


def test_export_writes_masked_new_examples_and_keeps_every_fifth_apart(tmp_path: Path) -> None:
    (tmp_path / "data" / "nlu").mkdir(parents=True)
    (tmp_path / "data" / "nlu" / "faq.yml").write_text(
        'version: "3.1"\nnlu:\n  - intent: ask_evidence\n    examples: |\n      - 要什么[证据](topic)\n',
        encoding="utf-8")
    reviews = [Review(f"k{n}", f"卖家第{n}次打我电话{PHONE}", None, "report_harassment", n, False) for n in range(6)]
    reviews += [Review("dup", "要什么证据", None, "ask_evidence", 7, False),
                Review("gone", "随便", None, None, 8, False), Review("old", "早就导出了", None, "greet", 9, True)]
    done = review.export_reviewed(reviews, tmp_path)
    assert (done.train, done.heldout, done.duplicates) == (5, 1, 1)
    assert set(done.keys) == {f"k{n}" for n in range(6)} | {"dup"}
    train = (tmp_path / review.REVIEWED).read_text(encoding="utf-8")
    heldout = (tmp_path / review.HELDOUT).read_text(encoding="utf-8")
    assert PHONE not in train + heldout and "138****5678" in train
    assert "卖家第4次" in heldout and "卖家第4次" not in train and "要什么证据" not in train
    assert len(RasaYAMLReader().reads(train).intent_examples) == 5  # Rasa reads it as training data
    assert yaml.safe_load(heldout)["version"] == "3.1"
    again = review.export_reviewed([*reviews[:6]], tmp_path)  # already in the files: nothing new
    assert (again.train, again.heldout, again.duplicates) == (0, 0, 6)


def export_project(tmp_path: Path, monkeypatch) -> tuple[Path, AnalyticsStore]:
    """An endpoints file whose analytics store is a fresh SQLite file, as `make export-reviewed` reads it."""
    from weiquan.services import default_services

    monkeypatch.delenv("ANALYTICS_DB", raising=False)
    default_services.cache_clear()
    db = tmp_path / "analytics.db"
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text(f"event_broker:\n  type: weiquan.analytics.broker.MaskingSQLBroker\n  db: {db}\n",
                         encoding="utf-8")
    return endpoints, AnalyticsStore(database_url(str(db)))


def test_make_export_reviewed_exports_each_confirmed_message_once(tmp_path: Path,
                                                                  monkeypatch, capsys) -> None:
    endpoints, store = export_project(tmp_path, monkeypatch)
    store.decide("a", f"卖家骂我还打我电话{PHONE}", "report_harassment", "report_harassment", NOON)
    store.decide("b", "随便说说", None, None, NOON)
    args = ["export", "--endpoints", str(endpoints), "--root", str(tmp_path)]
    assert review.main(args) == 0
    assert "1 into data/nlu/reviewed.yml" in capsys.readouterr().out
    written = (tmp_path / review.REVIEWED).read_text(encoding="utf-8")
    assert "138****5678" in written and PHONE not in written
    assert [r.exported for r in store.reviews()] == [True, False]
    assert review.main(args) == 0 and "0 into data/nlu/reviewed.yml" in capsys.readouterr().out
    assert (tmp_path / review.REVIEWED).read_text(encoding="utf-8") == written


# ---------------------------------------------------------------------- new "other problem" families


async def test_an_operator_marks_a_new_other_problem_family_and_the_figures_count_it(client) -> None:
    test_client, store = client
    listing = await (await test_client.get("/api/review", headers=AUTH)).json()
    ids = {item["text"]: item["id"] for item in listing["items"]}
    for bad in ("", "   ", "很长" * 11, 12, None, "响铃\x07"):
        reply = await test_client.post(f"/api/review/{ids['快递一直不到']}", headers=AUTH, json={"family": bad})
        assert reply.status == 400, bad
        assert "类别" in (await reply.json())["message"]
    reply = await test_client.post(f"/api/review/{ids['快递一直不到']}", headers=AUTH, json={"family": " 物流 慢 "})
    assert reply.status == 200
    assert await reply.json() == {"id": ids["快递一直不到"], "intent": "out_of_scope", "dismissed": False,
                                  "family": "物流 慢"}
    assert (await test_client.post(f"/api/review/{ids['啊啊啊这个怎么弄']}", headers=AUTH,
                                   json={"family": "物流 慢"})).status == 200
    left = await (await test_client.get("/api/review", headers=AUTH)).json()
    assert {item["text"] for item in left["items"]} == {"你打138****5678问问", "转人工"}
    assert {(r.text, r.intent, r.family) for r in store.reviews()} == {
        ("快递一直不到", "out_of_scope", "物流 慢"), ("啊啊啊这个怎么弄", "out_of_scope", "物流 慢")}
    week = await (await test_client.get("/api/analytics?days=7", headers=AUTH)).json()
    # two messages in the family; buyers wrote them three times that week (啊啊啊这个怎么弄 twice)
    assert week["new_families"] == [{"family": "物流 慢", "messages": 2, "count": 3}]
    csv_text = await (await test_client.get("/api/analytics.csv?days=7", headers=AUTH)).text()
    assert "new_family,物流 慢,3" in csv_text
    # a later decision replaces the family
    store.decide(ids["快递一直不到"], "快递一直不到", None, "out_of_scope", 1.0)
    assert [r.family for r in store.reviews() if r.text == "快递一直不到"] == [None]


def test_families_count_the_messages_of_the_period() -> None:
    reviews = [Review(review.item_id("快递一直不到"), "快递一直不到", None, "out_of_scope", 1, False, "物流"),
               Review(review.item_id("没来过"), "没来过", None, "out_of_scope", 2, False, "物流"),
               Review(review.item_id("想退款"), "想退款", None, "out_of_scope", 3, False, "退款"),
               Review("x", "随便", None, "greet", 4, False)]
    assert review.families(events(), reviews) == [{"family": "物流", "messages": 2, "count": 1},
                                                  {"family": "退款", "messages": 1, "count": 0}]
    assert review.families(events(), reviews[3:]) == []


def test_export_writes_a_family_as_out_of_scope_and_lists_the_families(tmp_path: Path, monkeypatch,
                                                                       capsys) -> None:
    endpoints, store = export_project(tmp_path, monkeypatch)
    store.decide("a", "买的花到了全蔫了能赔吗", None, "out_of_scope", NOON, family="鲜花枯萎")
    store.decide("b", "花送到的时候都枯了", None, "out_of_scope", NOON + 1, family="鲜花枯萎")
    store.decide("c", "卖家一直发广告短信给我", "report_harassment", "report_harassment", NOON + 2)
    assert review.main(["export", "--endpoints", str(endpoints), "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "3 into data/nlu/reviewed.yml" in out and "「鲜花枯萎」: 2 as out_of_scope" in out
    written = yaml.safe_load((tmp_path / review.REVIEWED).read_text(encoding="utf-8"))
    by_intent = {block["intent"]: block["examples"] for block in written["nlu"]}
    assert "买的花到了全蔫了能赔吗" in by_intent["out_of_scope"] and "花送到的时候都枯了" in by_intent["out_of_scope"]
    assert review.main(["export", "--endpoints", str(endpoints), "--root", str(tmp_path)]) == 0
    assert "鲜花枯萎" not in capsys.readouterr().out  # listed when exported, not again


def test_a_wechat_thumbs_down_puts_the_ruled_message_in_the_inbox() -> None:
    from weiquan.analytics.feedback import rating_event

    ruling = next(e for e in events() if e["sender_id"] == "eligible" and e["event"] == "bot")
    # as the WeChat channel publishes it: the bot message as handed to the channel (response name at the top level)
    rated = {"text": ruling["text"], "utter_action": "utter_complaint_file_online", "timestamp": ruling["timestamp"]}
    thumbs = rating_event("eligible", "down", rated, NOON + 30, "wechat")
    assert (thumbs["rated_response"], thumbs["rated_at"]) == ("utter_complaint_file_online", ruling["timestamp"])
    items = review.inbox(sorted([*events(), thumbs], key=lambda event: event["timestamp"]))
    item = next(item for item in items if item["text"] == "卖家天天打电话骂我，交易成功5天了")
    assert item["reasons"] == ["rated_down"] and item["comments"] == []
