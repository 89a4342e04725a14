"""Analytics (issue 17): the event broker masks what it stores and never stops a turn; the figures and the CSV are
computed right from a recorded event list; make forget / purge-expired reach the analytics store."""
from __future__ import annotations

import csv
import io
import json
import sqlite3
import time
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from rasa.shared.core.events import ActionExecuted, ActiveLoop, BotUttered, SessionStarted, SlotSet, UserUttered

from tests.test_privacy_store import CLEAR, DOMAIN, only, readable, turn
from weiquan.analytics import figures
from weiquan.analytics.broker import MaskingSQLBroker
from weiquan.analytics.store import AnalyticsStore, database_url
from weiquan.core.clock import BEIJING
from weiquan.stores import retention
from weiquan.stores.tracker_store import PrivateSQLTrackerStore

DAY = date(2026, 11, 24)
NOON = datetime(2026, 11, 24, 12, tzinfo=BEIJING).timestamp()


def stored(db: Path) -> str:
    with sqlite3.connect(db) as connection:
        return "\n".join(row[0] for row in connection.execute("SELECT data FROM analytics_events ORDER BY id"))


async def test_the_broker_stores_every_event_of_a_turn_masked(tmp_path: Path) -> None:
    db = tmp_path / "analytics.db"
    broker = MaskingSQLBroker(AnalyticsStore(database_url(str(db))))
    store = PrivateSQLTrackerStore(DOMAIN, dialect="sqlite", db=str(tmp_path / "tracker.db"), event_broker=broker)
    tracker = turn("buyer-1")
    await store.save(tracker)
    assert broker.flush()
    text = readable(stored(db))
    assert len(text.splitlines()) == len(tracker.events) == broker.written
    for clear in CLEAR:
        assert clear not in text
    assert "138****5678" in text and "[地址]" in text
    with sqlite3.connect(db) as connection:
        assert {row[0] for row in connection.execute("SELECT sender_id FROM analytics_events")} == {"buyer-1"}
    await broker.close()


async def test_a_turn_publishes_only_its_new_events_without_loading_the_tracker_twice(tmp_path: Path) -> None:
    db = tmp_path / "analytics.db"
    broker = MaskingSQLBroker(AnalyticsStore(database_url(str(db))), linger_s=0)
    store = PrivateSQLTrackerStore(DOMAIN, dialect="sqlite", db=str(tmp_path / "tracker.db"), event_broker=broker)
    first = turn("buyer-4")
    await store.save(first)
    tracker = await store.retrieve("buyer-4")  # the next turn loads the conversation once, as Rasa does
    assert tracker is not None
    tracker.update(UserUttered("还有短信", {"name": "inform", "confidence": 0.9}, timestamp=NOON + 60))
    loads = 0
    load = store._retrieve

    async def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal loads
        loads += 1
        return await load(*args, **kwargs)

    store._retrieve = counted  # type: ignore[method-assign]
    await store.save(tracker)
    assert broker.flush()
    assert loads == 0  # Rasa's own stream_events loads the whole tracker again on every save
    assert broker.written == len(first.events) + 1
    assert "还有短信" in readable(stored(db)).splitlines()[-1]  # the new event, once: written counts it
    await broker.close()


class BrokenStore(AnalyticsStore):
    """An analytics store whose database is away until `back` is set."""

    back = False

    def add_events(self, rows: Any) -> int:
        if not self.back:
            raise OSError("database is away")
        return super().add_events(rows)


async def test_a_store_that_is_away_never_stops_the_turn_and_gets_the_events_when_it_is_back(tmp_path: Path) -> None:
    analytics = BrokenStore(database_url(str(tmp_path / "analytics.db")))
    broker = MaskingSQLBroker(analytics, retry_after_s=0.05)
    store = PrivateSQLTrackerStore(DOMAIN, dialect="sqlite", db=str(tmp_path / "tracker.db"), event_broker=broker)
    first, second = turn("buyer-2"), turn("buyer-3", at=NOON)
    started = time.perf_counter()
    await store.save(first)  # does not raise, does not wait for the analytics store
    await store.save(second)
    assert time.perf_counter() - started < 5
    assert (await store.retrieve("buyer-2")).get_slot("platform") == "taobao"  # the conversation itself is kept
    assert not broker.flush(timeout_s=0.3) and broker.written == 0

    analytics.back = True
    assert broker.flush()
    assert broker.written == len(first.events) + len(second.events) and broker.lost == 0
    assert analytics.lost(0, time.time() + 86_400) == 0
    await broker.close()


async def test_beyond_the_buffer_events_are_lost_counted_and_shown_once_the_store_is_back(tmp_path: Path) -> None:
    analytics = BrokenStore(database_url(str(tmp_path / "analytics.db")))
    broker = MaskingSQLBroker(analytics, retry_after_s=0.05, max_buffered=3)
    for second in range(8):
        broker.publish({"sender_id": "x", "event": "user", "text": "你好", "timestamp": NOON + second})
    time.sleep(0.3)
    analytics.back = True
    assert broker.flush()
    assert (broker.written, broker.lost) == (3, 5)
    assert analytics.lost(0, time.time() + 86_400) == 5  # what the analytics page shows
    await broker.close()


async def test_events_still_waiting_when_the_server_stops_are_counted_lost(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    broker = MaskingSQLBroker(AnalyticsStore(f"sqlite:///{tmp_path / 'file' / 'analytics.db'}"), retry_after_s=0.05,
                              close_timeout_s=2)
    for second in range(3):
        broker.publish({"sender_id": "x", "event": "user", "text": "你好", "timestamp": NOON + second})
    await broker.close()
    assert (broker.written, broker.lost) == (0, 3)


# ---------------------------------------------------------------------- figures from a recorded event list


def recorded() -> list[dict[str, Any]]:
    """Five conversations on two days, as Rasa publishes them: a ruling within the window after the form, a seller, a
    buyer the bot did not understand twice (then asked to clarify) who asked for a person, one who left the form at
    the date question, and one on the day before."""

    def user(text: str, intent: str, confidence: float, at: float, ranking: list[str] | None = None) -> UserUttered:
        parse = {"text": text, "intent": {"name": intent, "confidence": confidence}, "entities": [],
                 "intent_ranking": [{"name": name, "confidence": 0.3} for name in (ranking or [intent])]}
        return UserUttered(text, parse["intent"], [], parse, timestamp=at)

    conversations: dict[str, list[Any]] = {
        "eligible": [SessionStarted(timestamp=NOON),
                     user("卖家天天打电话骂我，交易成功5天了", "report_harassment", 0.95, NOON),
                     ActiveLoop("complaint_form", timestamp=NOON),
                     SlotSet("requested_slot", "evidence", timestamp=NOON),
                     ActiveLoop(None, timestamp=NOON + 1),
                     ActionExecuted("action_assess_complaint", timestamp=NOON + 1),
                     SlotSet("outcome", "file_online", timestamp=NOON + 1),
                     BotUttered("好消息", metadata={"utter_action": "utter_complaint_file_online"},
                                timestamp=NOON + 1)],
        "seller": [user("我是卖家，买家投诉我骚扰", "seller_accused", 0.9, NOON + 60),
                   ActionExecuted("action_advise_seller", timestamp=NOON + 61)],
        "lost": [user("啊啊啊这个怎么弄", "nlu_fallback", 0.4, NOON + 120, ["nlu_fallback", "report_harassment"]),
                 ActionExecuted("action_clarify", timestamp=NOON + 121),
                 user("啊啊啊这个怎么弄", "nlu_fallback", 0.3, NOON + 180, ["nlu_fallback", "report_harassment"]),
                 user("快递一直不到", "out_of_scope", 0.5, NOON + 200),
                 BotUttered("这个问题", metadata={"utter_action": "utter_out_of_scope"}, timestamp=NOON + 201),
                 user("转人工", "request_human", 0.99, NOON + 240),
                 ActionExecuted("action_request_human", timestamp=NOON + 241),
                 BotUttered("客服已接入", {"custom": {"kind": "handoff_status", "state": "connected"}},
                            timestamp=NOON + 361),
                 BotUttered("你好，我是客服", {"custom": {"kind": "operator", "label": "人工客服"}},
                            timestamp=NOON + 370),
                 BotUttered("人工客服已结束服务", {"custom": {"kind": "handoff_status", "state": "released"}},
                            timestamp=NOON + 961)],
        "quit": [user("卖家老发短信骚扰我", "report_harassment", 0.9, NOON + 400),
                 ActiveLoop("complaint_form", timestamp=NOON + 400),
                 SlotSet("requested_slot", "platform", timestamp=NOON + 400),
                 SlotSet("requested_slot", "success_time", timestamp=NOON + 460)],
        "yesterday": [user("过了二十天了还能投诉吗", "ask_deadline_passed", 0.9, NOON - 86_400),
                      SlotSet("outcome", "phone_support", timestamp=NOON - 86_400 + 1)],
    }
    events = [{"sender_id": sender, **event.as_dict()} for sender, items in conversations.items() for event in items]
    return sorted(events, key=lambda event: event["timestamp"])


def test_figures_count_conversations_outcomes_unsure_handoffs_and_unrecognised() -> None:
    result = figures.compute(recorded(), date(2026, 11, 23), 2, BEIJING, lost=3)
    assert result["per_day"] == [{"day": "2026-11-23", "conversations": 1}, {"day": "2026-11-24", "conversations": 4}]
    assert result["conversations"] == 5 and result["messages"] == 8
    assert result["outcomes"] == {"within_window": 1, "past_window": 1, "seller": 1, "other_problem": 1, "safety": 0}
    assert result["handoffs"] == 1 and result["lost"] == 3
    assert result["handoff_times"] == {"taken": 1, "wait_median_s": 120.0, "handling_median_s": 600.0}
    assert result["unsure"] == {"messages": 3, "fallback": 2, "clarify": 1, "low_confidence": 1, "share": 0.375}
    assert result["form"] == {"started": 2, "ruled": 1, "stopped_at": {"success_time": 1}}
    assert result["unrecognised"][0] == {"text": "啊啊啊这个怎么弄", "count": 2, "guess": "report_harassment"}
    assert result["unrecognised"][1]["text"] == "快递一直不到"


def test_figures_keep_to_the_period() -> None:
    result = figures.compute(recorded(), DAY, 1, BEIJING)
    assert result["conversations"] == 4 and result["outcomes"]["past_window"] == 0
    assert result["per_day"] == [{"day": "2026-11-24", "conversations": 4}]


def test_the_csv_has_the_same_figures() -> None:
    result = figures.compute(recorded(), date(2026, 11, 23), 2, BEIJING)
    text = figures.to_csv(result)
    assert text.startswith("\ufeff")
    rows = {(section, key): value for section, key, value in csv.reader(io.StringIO(text.lstrip("\ufeff")))}
    assert rows[("total", "conversations")] == "5"
    assert rows[("conversations_per_day", "2026-11-24")] == "4"
    assert rows[("form", "started")] == "2" and rows[("form_stopped_at", "success_time")] == "1"
    assert rows[("handoff", "wait_median_s")] == "120.0"
    assert rows[("outcome", "within_window")] == "1" and rows[("outcome", "seller")] == "1"
    assert rows[("unsure", "fallback")] == "2" and rows[("total", "handoffs")] == "1"
    assert rows[("unrecognised", "啊啊啊这个怎么弄")] == "2"


# ---------------------------------------------------------------------- make forget / purge-expired


def analytics_endpoints(db: Path) -> dict[str, Any]:
    return {"tracker_store": None,
            "event_broker": {"type": "weiquan.analytics.broker.MaskingSQLBroker", "db": str(db)}}


def test_forget_and_purge_reach_the_analytics_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANALYTICS_DB", raising=False)
    monkeypatch.delenv("RETENTION_DAYS", raising=False)
    db = tmp_path / "analytics.db"
    store = AnalyticsStore(database_url(str(db)))
    now = time.time()
    store.add_events([{"sender_id": "someone", "event": "user", "text": "a", "timestamp": now},
                      {"sender_id": "someone", "event": "bot", "text": "b", "timestamp": now},
                      {"sender_id": "other", "event": "user", "text": "c", "timestamp": now},
                      {"sender_id": "old", "event": "user", "text": "d", "timestamp": now - 40 * 86_400}])
    assert only(retention.forget(analytics_endpoints(db), "someone"), analytics=2)
    _, deleted = retention.purge_expired(analytics_endpoints(db), now=now, env={})
    assert only(deleted, analytics=1)
    assert [json.loads(line)["text"] for line in stored(db).splitlines()] == ["c"]


def test_without_a_broker_there_is_no_analytics_store_to_clean(tmp_path: Path) -> None:
    assert "analytics" not in retention.forget({"tracker_store": None}, "x")
