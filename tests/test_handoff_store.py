"""The hand-off store on SQLite (what `make run` uses) and on PostgreSQL (several servers; the local service at
127.0.0.1:5432 that CI has too): the same behaviour from both."""
from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timezone

import psycopg2
import pytest

from weiquan.handoff import state
from weiquan.handoff.state import Status
from weiquan.stores.handoff import OPERATOR, SERVICE, SqlHandoffStore

T0 = 1_800_000_000.0
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path) -> Iterator[SqlHandoffStore]:
    if request.param == "sqlite":
        made = SqlHandoffStore(f"sqlite:///{tmp_path / 'handoff.db'}")
        yield made
        made.close()
        return
    name = f"weiquan_handoff_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(dbname="postgres", **PG)
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {name}")
    made = SqlHandoffStore(f"postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{name}")
    yield made
    made.close()
    admin.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.close()


def new(sender: str = "u1", at: float = T0, channel: str = "socketio", offline: bool = False) -> state.Handoff:
    return state.request(None, sender, channel, at, 600, offline=offline)


def test_create_get_and_the_open_one_wins(store: SqlHandoffStore) -> None:
    first = store.create(new())
    assert store.get("u1") == first
    assert store.create(new(at=T0 + 5, channel="rest")) == first  # asking again keeps the open one
    assert store.get("nobody") is None


def test_a_closed_hand_off_is_reopened_by_a_new_request(store: SqlHandoffStore) -> None:
    first = store.create(new())
    assert store.replace(state.release(first, T0 + 1), expected=Status.WAITING)
    again = store.create(new(at=T0 + 100, channel="rest"))
    assert store.get("u1") == again and again.status is Status.WAITING and again.channel == "rest"


def test_moves_are_compare_and_set(store: SqlHandoffStore) -> None:
    handoff = store.create(new())
    taken = state.take_over(handoff, T0 + 1, "小王")
    assert store.replace(taken, expected=Status.WAITING)
    assert not store.replace(state.time_out(handoff, T0 + 700), expected=Status.WAITING)  # too late for the timer
    assert store.get("u1").operator == "小王"


def test_concurrent_requests_store_one_hand_off(store: SqlHandoffStore) -> None:
    results: list[state.Handoff] = []
    threads = [threading.Thread(target=lambda i=i: results.append(store.create(new(at=T0 + i)))) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({result.requested_at for result in results}) == 1
    assert len(store.handoffs()) == 1


def test_list_puts_waiting_first_oldest_first_then_active_then_recently_closed(store: SqlHandoffStore) -> None:
    for index, sender in enumerate(["a", "b", "c", "d", "e"]):
        store.create(new(sender, at=T0 + index))
    store.replace(state.take_over(store.get("a"), T0 + 10), expected=Status.WAITING)
    store.replace(state.release(store.get("d"), T0 + 11), expected=Status.WAITING)
    store.replace(state.release(store.get("e"), T0 + 12), expected=Status.WAITING)
    assert [h.sender_id for h in store.handoffs()] == ["b", "c", "a", "e", "d"]
    assert [h.sender_id for h in store.handoffs([Status.WAITING])] == ["b", "c"]
    assert [h.sender_id for h in store.handoffs([Status.ACTIVE])] == ["a"]


def test_threats_come_first_among_the_waiting_and_among_the_active(store: SqlHandoffStore) -> None:
    for index, sender in enumerate(["a", "b", "c", "d", "e"]):
        store.create(new(sender, at=T0 + index))
    for sender in ("d", "e"):
        store.replace(state.take_over(store.get(sender), T0 + 10), expected=Status.WAITING)
    version = store.version()
    assert store.flag_safety("c", T0 + 20) and store.flag_safety("e", T0 + 21)
    assert store.version() > version  # the console's live update sees it
    assert [h.sender_id for h in store.handoffs()] == ["c", "a", "b", "e", "d"]
    assert [h.sender_id for h in store.handoffs([Status.WAITING])] == ["c", "a", "b"]
    assert [h.sender_id for h in store.handoffs([Status.ACTIVE])] == ["e", "d"]
    assert store.flag_safety("a", T0 + 30)  # among flagged ones, the oldest request first
    assert [h.sender_id for h in store.handoffs([Status.WAITING])] == ["a", "c", "b"]


def test_the_first_threat_is_kept_and_a_closed_hand_off_is_not_marked(store: SqlHandoffStore) -> None:
    store.create(new("a"))
    assert store.flag_safety("a", T0 + 5)
    assert not store.flag_safety("a", T0 + 9)
    assert store.get("a").safety_at == T0 + 5
    store.create(new("b"))
    store.replace(state.release(store.get("b"), T0 + 1), expected=Status.WAITING)
    assert not store.flag_safety("b", T0 + 5) and store.get("b").safety_at is None
    assert not store.flag_safety("nobody", T0 + 5)


def test_a_requeued_hand_off_is_stored_with_its_new_wait(store: SqlHandoffStore) -> None:
    handoff = store.create(new())
    taken = state.take_over(handoff, T0 + 10, "小王")
    store.replace(taken, expected=Status.WAITING)
    assert store.replace(state.requeue(taken, T0 + 100, 300), expected=Status.ACTIVE)
    stored = store.get("u1")
    assert (stored.status, stored.operator, stored.requeued_at, stored.deadline_at) == (
        Status.WAITING, None, T0 + 100, T0 + 400)
    assert stored.requested_at == T0  # its place in the queue


def test_a_queue_table_from_an_earlier_version_gets_the_new_columns(store: SqlHandoffStore) -> None:
    """A database created before the threat mark and the requeue: the store adds the columns, old rows still read."""
    import sqlalchemy as sa

    from weiquan.stores import handoff as module

    store.create(new("old"))
    with store.engine.begin() as tx:
        for column in module.ADDED_COLUMNS:
            tx.execute(sa.text(f"ALTER TABLE handoff_queue DROP COLUMN {column}"))
    store.close()
    reopened = SqlHandoffStore(store.url)
    assert reopened.get("old").status is Status.WAITING and reopened.get("old").safety_at is None
    assert reopened.flag_safety("old", T0 + 1) and reopened.get("old").safety_at == T0 + 1
    SqlHandoffStore(store.url).close()  # a second start finds nothing to add
    reopened.close()


def test_activity_summary_and_left_messages(store: SqlHandoffStore) -> None:
    store.create(new())
    version = store.version()
    summary = {"lines": ["平台：淘宝"], "safety": False}
    assert store.note_activity("u1", "在吗", T0 + 3, summary)
    assert store.version() > version
    assert not store.note_activity("u1", "在吗", T0 + 3, summary)  # nothing changed: no live update
    assert store.get("u1").summary == summary and store.get("u1").last_user_message == "在吗"
    assert store.add_left_message("u1", "请回电话", T0 + 4)
    assert not store.add_left_message("u1", "请回电话", T0 + 4)  # the sweep sees it again: kept once
    assert store.add_left_message("u1", "谢谢", T0 + 5)
    assert [m.text for m in store.left_messages("u1")] == ["请回电话", "谢谢"]


def test_heartbeats(store: SqlHandoffStore) -> None:
    assert store.seen(SERVICE) is None
    store.touch(SERVICE, T0)
    store.touch(SERVICE, T0 + 2)
    store.touch(OPERATOR, T0 + 1)
    assert (store.seen(SERVICE), store.seen(OPERATOR)) == (T0 + 2, T0 + 1)


def test_forget_deletes_one_conversation_and_nothing_else(store: SqlHandoffStore) -> None:
    store.create(new("u1"))
    store.create(new("u2"))
    store.add_left_message("u1", "留言", T0)
    store.add_left_message("u2", "留言", T0)
    assert store.forget("u1") == 2
    assert store.get("u1") is None and store.left_messages("u1") == []
    assert store.get("u2") is not None and len(store.left_messages("u2")) == 1
    assert store.forget("u1") == 0


def test_purge_before_deletes_old_closed_hand_offs_and_old_left_messages_only(store: SqlHandoffStore) -> None:
    cutoff = datetime.fromtimestamp(T0 + 1000, timezone.utc)
    old_closed = store.create(new("old", at=T0))
    store.replace(state.release(old_closed, T0 + 10), expected=Status.WAITING)
    recent_closed = store.create(new("recent", at=T0))
    store.replace(state.release(recent_closed, T0 + 2000), expected=Status.WAITING)
    store.create(new("open", at=T0))  # still waiting: never purged, or the bot would stay paused
    store.add_left_message("open", "很久以前", T0 + 5)
    store.add_left_message("open", "刚才", T0 + 1500)
    assert store.purge_before(cutoff) == 2
    assert store.get("old") is None and store.get("recent") is not None and store.get("open") is not None
    assert [m.text for m in store.left_messages("open")] == ["刚才"]
    assert store.purge_before(cutoff.replace(tzinfo=None)) == 0  # naive datetimes are read as UTC


def test_two_processes_share_one_file(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    actions_side, console_side = SqlHandoffStore(url), SqlHandoffStore(url)
    actions_side.create(new())
    assert console_side.replace(state.take_over(console_side.get("u1"), T0 + 1), expected=Status.WAITING)
    assert actions_side.get("u1").status is Status.ACTIVE
    assert replace(actions_side.get("u1"), updated_at=0) == replace(console_side.get("u1"), updated_at=0)


def test_only_sqlite_and_postgresql() -> None:
    with pytest.raises(ValueError):
        SqlHandoffStore("mysql://x@localhost/db")
