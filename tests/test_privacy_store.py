"""The tracker store masks before it writes, keeps the conversation going while the database is away, and forgets and
purges on request (SQLite here; tests/e2e/test_privacy_stores.py repeats the store tests on PostgreSQL)."""
from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, SessionStarted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from weiquan.ops.harness import ROOT
from weiquan.stores import retention
from weiquan.stores.tracker_store import PrivateSQLTrackerStore, resolve_retention_days

DOMAIN = Domain.load(str(ROOT / "domain.yml"))
PHONE, ORDER, ID_CARD, ADDRESS = "13812345678", "2345678901234567", "110101199003071234", "文三路477号"
SAID = f"卖家打我电话{PHONE}，订单{ORDER}，身份证{ID_CARD}，寄到{ADDRESS}"
CLEAR = (PHONE, ORDER, ID_CARD, ADDRESS)


def turn(sender: str, text: str = SAID, at: float | None = None) -> DialogueStateTracker:
    """A tracker after one user turn with personal data everywhere it can be: text, entities, slots, the bot's echo."""
    at = time.time() if at is None else at
    tracker = DialogueStateTracker(sender, DOMAIN.slots)
    parse_data = {
        "text": text,
        "intent": {"name": "report_harassment", "confidence": 0.9},
        "entities": [{"entity": "order_id", "value": ORDER, "start": 0, "end": 16},
                     {"entity": "phone", "value": PHONE, "start": 0, "end": 11}],
    }
    events = [
        ActionExecuted("action_session_start", timestamp=at),
        SessionStarted(timestamp=at),
        ActionExecuted("action_listen", timestamp=at),
        UserUttered(text, parse_data["intent"], parse_data["entities"], parse_data, timestamp=at + 1,
                    metadata={"page": ADDRESS}),
        SlotSet("order_id", ORDER, timestamp=at + 1),
        SlotSet("platform", "taobao", timestamp=at + 1),
        BotUttered(f"收到，订单{ORDER}", timestamp=at + 2),
        ActionExecuted("action_listen", timestamp=at + 2),
    ]
    for event in events:
        tracker.update(event)
    return tracker


def stored_data(db: Path) -> str:
    with sqlite3.connect(db) as connection:
        return "\n".join(row[0] for row in connection.execute("SELECT data FROM events ORDER BY id"))


def readable(text: str) -> str:
    """Stored JSON with its \\uXXXX escapes decoded, so a Chinese address in clear would show."""
    return "\n".join(json.dumps(json.loads(line), ensure_ascii=False) for line in text.splitlines())


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Callable[..., PrivateSQLTrackerStore]:
    def make(**kwargs) -> PrivateSQLTrackerStore:
        return PrivateSQLTrackerStore(DOMAIN, dialect="sqlite", db=str(tmp_path / "data" / "tracker.db"), **kwargs)

    return make


async def test_personal_data_is_masked_in_the_store_but_not_in_the_turn(sqlite_store, tmp_path: Path) -> None:
    store = sqlite_store()
    tracker = turn("buyer-1")
    await store.save(tracker)

    stored = readable(stored_data(tmp_path / "data" / "tracker.db"))
    for clear in CLEAR:
        assert clear not in stored
    assert "138****5678" in stored and "2345****4567" in stored and "[地址]" in stored
    # The tracker of this turn keeps the real values (the action server gets them) …
    assert tracker.latest_message.text == SAID
    assert tracker.get_slot("order_id") == ORDER
    # … and the next turn starts from the masked history, with the dialogue state intact.
    again = await store.retrieve("buyer-1")
    assert again.get_slot("platform") == "taobao"
    assert again.get_slot("order_id") == "2345****4567"
    assert PHONE not in again.latest_message.text
    assert len(again.events) == len(tracker.events)


async def test_only_new_events_are_written_on_the_next_turn(sqlite_store, tmp_path: Path) -> None:
    store = sqlite_store()
    tracker = turn("buyer-2")
    await store.save(tracker)
    tracker = await store.retrieve("buyer-2")
    tracker.update(UserUttered("淘宝", {"name": "inform", "confidence": 1.0}))
    await store.save(tracker)
    assert stored_data(tmp_path / "data" / "tracker.db").count('"event": "user"') == 2


async def test_database_away_the_conversation_goes_on_from_memory_and_is_written_later(
    sqlite_store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = sqlite_store(retry_after_s=0)
    await store.save(turn("buyer-3"))
    folder, away = tmp_path / "data", tmp_path / "away"
    folder.rename(away)  # the database file is gone: every connection fails

    with caplog.at_level(logging.ERROR):
        tracker = await store.retrieve("buyer-3")  # read before it went: not in memory, so a fresh start
        assert tracker is None
        fresh = turn("buyer-3", text="卖家又打电话了")
        await store.save(fresh)
        kept = await store.retrieve("buyer-3")  # this turn was kept in memory
    assert kept is not None and kept.latest_message.text == "卖家又打电话了"
    assert "tracker_store.unavailable" in caplog.text and "sqlite database" in caplog.text
    assert caplog.text.count("tracker_store.unavailable") == 1  # one clear error, not one per turn

    kept.update(UserUttered("淘宝", {"name": "inform", "confidence": 1.0}))
    await store.save(kept)
    away.rename(folder)
    kept = await store.retrieve("buyer-3")
    kept.update(UserUttered("交易成功了", {"name": "inform", "confidence": 1.0}))
    await store.save(kept)  # the database is back: everything said meanwhile is written

    stored = readable(stored_data(folder / "tracker.db"))
    for text in ("卖家又打电话了", "淘宝", "交易成功了"):
        assert f'"text": "{text}"' in stored
    assert not store._kept


async def test_a_database_that_never_answers_does_not_stop_the_server_starting(caplog) -> None:
    started = time.monotonic()
    with caplog.at_level(logging.ERROR):
        store = PrivateSQLTrackerStore(DOMAIN, dialect="postgresql", host="127.0.0.1", port=1, db="nothing",
                                       username="postgres")
    assert time.monotonic() - started < 10  # Rasa's own SQL store retries here forever
    assert "tracker_store.unavailable" in caplog.text and "127.0.0.1:1" in caplog.text
    await store.save(turn("buyer-4"))
    assert (await store.retrieve("buyer-4")).get_slot("platform") == "taobao"


def test_retention_period_comes_from_the_environment_then_the_endpoints_then_thirty_days() -> None:
    assert resolve_retention_days(None, {}) == 30
    assert resolve_retention_days(7, {}) == 7
    assert resolve_retention_days(7, {"RETENTION_DAYS": "90"}) == 90
    assert resolve_retention_days("", {"RETENTION_DAYS": ""}) == 30
    for bad in ("0", "-1", "soon"):
        with pytest.raises(ValueError):
            resolve_retention_days(bad, {})


# ---------------------------------------------------------------------- forget and purge


def sqlite_endpoints(db: Path, days: float = 30) -> dict:
    return {"tracker_store": {"type": "weiquan.stores.tracker_store.PrivateSQLTrackerStore", "dialect": "sqlite",
                              "db": str(db), "retention_days": days}}


def only(deleted: dict[str, int], **expected: int) -> bool:
    """What forget or purge reported: the counts named, and nothing from any other registered store."""
    return {name: count for name, count in deleted.items() if count or name in expected} == expected


async def fill(store: PrivateSQLTrackerStore, now: float) -> None:
    """old: idle for 40 days; both: a session 40 days ago and one today; new: today only."""
    await store.save(turn("old", at=now - 40 * 86_400))
    both = turn("both", at=now - 40 * 86_400)
    for event in turn("both", text="今天又打电话", at=now).events:
        both.update(event)
    await store.save(both)
    await store.save(turn("new", at=now))


def senders(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as connection:
        return dict(connection.execute("SELECT sender_id, COUNT(*) FROM events GROUP BY sender_id").fetchall())


async def test_forget_deletes_one_conversation_and_nothing_else(sqlite_store, tmp_path: Path) -> None:
    db = tmp_path / "data" / "tracker.db"
    store = sqlite_store()
    await fill(store, time.time())
    before = senders(db)
    assert only(retention.forget(sqlite_endpoints(db), "both"), conversations=before["both"])
    assert senders(db) == {"old": before["old"], "new": before["new"]}
    assert await store.retrieve("both") is None


async def test_purge_deletes_idle_conversations_and_old_sessions_but_keeps_the_current_one(
    sqlite_store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RETENTION_DAYS", raising=False)
    db = tmp_path / "data" / "tracker.db"
    store = sqlite_store()
    now = time.time()
    await fill(store, now)
    before = senders(db)
    cutoff, deleted = retention.purge_expired(sqlite_endpoints(db, days=30), now=now, env={})
    assert cutoff == pytest.approx(now - 30 * 86_400)
    after = senders(db)
    assert "old" not in after and after["new"] == before["new"]
    assert 0 < after["both"] < before["both"]
    assert only(deleted, conversations=sum(before.values()) - sum(after.values()))
    current = await store.retrieve("both")
    assert current.latest_message.text == "今天又打电话" and current.get_slot("platform") == "taobao"


def test_forget_and_purge_refuse_a_store_they_cannot_clean() -> None:
    forgotten = retention.forget({"tracker_store": None}, "x")
    assert only(forgotten) and "conversations" not in forgotten  # conversations in memory only
    with pytest.raises(NotImplementedError):
        retention.forget({"tracker_store": {"type": "redis"}}, "x")


def test_make_forget_and_purge_expired_work_on_the_endpoints_file(tmp_path: Path) -> None:
    import asyncio
    import subprocess

    db = tmp_path / "data" / "tracker.db"
    store = PrivateSQLTrackerStore(DOMAIN, dialect="sqlite", db=str(db))
    asyncio.run(fill(store, time.time()))
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text(
        "tracker_store:\n  type: weiquan.stores.tracker_store.PrivateSQLTrackerStore\n  dialect: sqlite\n"
        f"  db: {db}\n  retention_days: 30\n",
        encoding="utf-8",
    )
    forget = subprocess.run(["make", "-s", "forget", "SENDER=new; rm -rf /", f"ENDPOINTS={endpoints}"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert forget.returncode == 0, forget.stderr
    assert "conversations: 0 records of conversation 'new; rm -rf /' deleted" in forget.stdout
    forget = subprocess.run(["make", "-s", "forget", "SENDER=new", f"ENDPOINTS={endpoints}"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert forget.returncode == 0 and "conversations: 8 records" in forget.stdout, forget.stdout + forget.stderr
    purge = subprocess.run(["make", "-s", "purge-expired", f"ENDPOINTS={endpoints}"], cwd=ROOT, capture_output=True,
                           text=True, timeout=300)
    assert purge.returncode == 0 and "retention 30 days" in purge.stdout, purge.stdout + purge.stderr
    assert set(senders(db)) == {"both"}
    usage = subprocess.run(["make", "-s", "forget", f"ENDPOINTS={endpoints}"], cwd=ROOT, capture_output=True,
                           text=True, timeout=300)
    assert usage.returncode != 0 and "SENDER" in usage.stdout + usage.stderr


def test_forget_and_purge_reach_the_hand_off_store_too(sqlite_store, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from weiquan.handoff import state
    from weiquan.services import default_services

    monkeypatch.delenv("RETENTION_DAYS", raising=False)
    handoffs = default_services().handoff_store()  # HANDOFF_STORE_URL: a SQLite file in tmp_path (tests/conftest.py)
    now = time.time()
    for sender in ("someone", "other"):
        handoffs.create(state.request(None, sender, "socketio", now, 600, offline=True))
        handoffs.add_left_message(sender, "请联系我", now)
    old = handoffs.create(state.request(None, "old", "rest", now - 90 * 86_400, 600, offline=False))
    handoffs.replace(state.release(old, now - 90 * 86_400 + 60), expected=old.status)
    db = tmp_path / "data" / "tracker.db"
    sqlite_store()
    assert only(retention.forget(sqlite_endpoints(db), "someone"), conversations=0, handoff=2)
    assert handoffs.get("someone") is None and handoffs.left_messages("someone") == []
    assert handoffs.get("other") is not None
    _, deleted = retention.purge_expired(sqlite_endpoints(db, days=30), now=now, env={})
    assert deleted["handoff"] == 1 and handoffs.get("old") is None and handoffs.get("other") is not None
