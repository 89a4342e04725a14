"""The tracker store's masking, `make forget` and `make purge-expired` on PostgreSQL (127.0.0.1:5432, trust auth), in a
throw-away database, for every store weiquan/stores/retention.py registers (conversations, the hand-off store, the
operator outbox) set up as in production. tests/test_privacy_store.py runs the same on SQLite; no model is needed."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator

import psycopg2
import pytest

from tests.test_privacy_store import CLEAR, DOMAIN, SAID, fill, only, turn
from weiquan.analytics.store import AnalyticsStore
from weiquan.handoff import state
from weiquan.ops.harness import ROOT
from weiquan.services import Services, build_services, default_services
from weiquan.stores import retention
from weiquan.stores.tracker_store import PrivateSQLTrackerStore

pytestmark = pytest.mark.e2e
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}


@pytest.fixture
def database() -> Iterator[str]:
    name = f"weiquan_store_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(dbname="postgres", **PG)
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {name}")
    try:
        yield name
    finally:
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


def store(database: str) -> PrivateSQLTrackerStore:
    return PrivateSQLTrackerStore(DOMAIN, dialect="postgresql", host=PG["host"], port=PG["port"], db=database,
                                  username=PG["user"])


def endpoints(database: str) -> dict:
    return {"tracker_store": {"type": "weiquan.stores.tracker_store.PrivateSQLTrackerStore", "dialect": "postgresql",
                              "url": PG["host"], "port": PG["port"], "db": database, "username": PG["user"],
                              "retention_days": 30}}


def rows(database: str) -> list[tuple[str, str]]:
    with psycopg2.connect(dbname=database, **PG) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT sender_id, data FROM events ORDER BY id")
        return cursor.fetchall()


def senders(database: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for sender, _ in rows(database):
        counts[sender] = counts.get(sender, 0) + 1
    return counts


async def test_postgresql_keeps_only_masked_data_and_the_turn_keeps_the_real_values(database: str) -> None:
    tracker = turn("pg-buyer")
    await store(database).save(tracker)
    stored = "\n".join(json.dumps(json.loads(data), ensure_ascii=False) for _, data in rows(database))
    for clear in CLEAR:
        assert clear not in stored
    assert "138****5678" in stored and "[地址]" in stored
    assert tracker.latest_message.text == SAID
    again = await store(database).retrieve("pg-buyer")
    assert again.get_slot("platform") == "taobao" and again.get_slot("order_id") == "2345****4567"


async def test_postgresql_forget_and_purge(database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RETENTION_DAYS", raising=False)
    now = time.time()
    await fill(store(database), now)
    before = senders(database)
    assert only(retention.forget(endpoints(database), "new"), conversations=before["new"])
    cutoff, deleted = retention.purge_expired(endpoints(database), now=now, env={})
    after = senders(database)
    assert set(after) == {"both"} and 0 < after["both"] < before["both"]
    assert only(deleted, conversations=before["old"] + before["both"] - after["both"])
    assert (await store(database).retrieve("both")).latest_message.text == "今天又打电话"


def test_make_targets_work_with_the_production_endpoints(database: str) -> None:
    asyncio.run(fill(store(database), time.time()))
    env = {"DB_HOST": PG["host"], "DB_PORT": str(PG["port"]), "DB_NAME": database, "DB_USER": PG["user"],
           "DB_PASSWORD": "", "REDIS_HOST": "127.0.0.1", "REDIS_PORT": "6379", "REDIS_DB": "0",
           "ACTION_ENDPOINT_URL": "http://127.0.0.1:1/webhook"}
    run_env = {**os.environ, **env}
    forget = subprocess.run(["make", "-s", "forget", "SENDER=new", "ENDPOINTS=endpoints.production.yml"], cwd=ROOT,
                            env=run_env, capture_output=True, text=True, timeout=300)
    assert forget.returncode == 0 and "conversations: 8 records of conversation 'new' deleted" in forget.stdout, (
        forget.stdout + forget.stderr)
    purge = subprocess.run(["make", "-s", "purge-expired", "ENDPOINTS=endpoints.production.yml"], cwd=ROOT,
                           env={**run_env, "RETENTION_DAYS": "30"}, capture_output=True, text=True, timeout=300)
    assert purge.returncode == 0 and "retention 30 days" in purge.stdout, purge.stdout + purge.stderr
    assert set(senders(database)) == {"both"}


# ---------------------------------------------------------------------- every registered store, on PostgreSQL

def production_env(database: str) -> dict[str, str]:
    """What `make run-production` and the deploy recipes give every process: DB_* and no HANDOFF_STORE_URL, so the
    hand-off store and the outbox follow DB_* to PostgreSQL as in production (never forced to SQLite)."""
    env = {**os.environ, "DB_HOST": PG["host"], "DB_PORT": str(PG["port"]), "DB_NAME": database,
           "DB_USER": PG["user"], "DB_PASSWORD": "", "REDIS_HOST": "127.0.0.1", "REDIS_PORT": "6379",
           "REDIS_DB": "0", "ACTION_ENDPOINT_URL": "http://127.0.0.1:1/webhook", "RETENTION_DAYS": "30"}
    env.pop("HANDOFF_STORE_URL", None)
    return env


def seed_conversations(services: Services, database: str, sender: str, at: float) -> None:
    asyncio.run(store(database).save(turn(sender, at=at)))


def held_conversations(services: Services, database: str, sender: str) -> int:
    return senders(database).get(sender, 0)


def seed_handoff(services: Services, database: str, sender: str, at: float) -> None:
    handoffs = services.handoff_store()
    opened = handoffs.create(state.request(None, sender, "socketio", at, 600, offline=True))
    handoffs.add_left_message(sender, f"请回电话{CLEAR[0]}", at + 1)
    handoffs.replace(state.release(opened, at + 60), expected=opened.status)  # purge keeps open ones


def held_handoff(services: Services, database: str, sender: str) -> int:
    handoffs = services.handoff_store()
    return (handoffs.get(sender) is not None) + len(handoffs.left_messages(sender))


def seed_outbox(services: Services, database: str, sender: str, at: float) -> None:
    services.outbox().add(uuid.uuid4().hex, sender, "socketio",
                          {"text": "客服留言", "custom": {"kind": "operator", "label": "人工客服"}}, at)


def held_outbox(services: Services, database: str, sender: str) -> int:
    return len(services.outbox().pending(sender))


def analytics(database: str) -> AnalyticsStore:
    return AnalyticsStore(f"postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{database}")


def seed_analytics(services: Services, database: str, sender: str, at: float) -> None:
    analytics(database).add_events([{"sender_id": sender, "event": "user", "text": "卖家骂我", "timestamp": at}])


def held_analytics(services: Services, database: str, sender: str) -> int:
    return sum(1 for row in analytics(database).events(0, time.time() + 86_400) if row["sender_id"] == sender)


# Every store weiquan/stores/retention.py registers, with how this test puts a buyer's data into it and counts what
# is left. A store registered without an entry here fails the test below: add its seeder.
SEEDERS: dict[str, tuple[Callable[..., None], Callable[..., int]]] = {
    "conversations": (seed_conversations, held_conversations),
    "handoff": (seed_handoff, held_handoff),
    "operator_outbox": (seed_outbox, held_outbox),
    "analytics": (seed_analytics, held_analytics),  # the consumer's tables (event_broker in endpoints.production.yml)
}


def make(target: str, env: dict[str, str], *args: str) -> str:
    done = subprocess.run(["make", "-s", target, *args, "ENDPOINTS=endpoints.production.yml"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def reported(output: str) -> dict[str, int]:
    return {line.split(":")[0]: int(line.split(": ")[1].split()[0]) for line in output.splitlines()
            if " records " in line}


def test_make_forget_and_purge_expired_reach_every_registered_store_on_postgresql(
        database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    env = production_env(database)
    for name in ("HANDOFF_STORE_URL", "RETENTION_DAYS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    default_services.cache_clear()
    registered = retention.registered_stores(retention.load_endpoints(ROOT / "endpoints.production.yml"))
    assert {store.name for store in registered} == set(SEEDERS), "a registered store has no seeder in this test"
    for each in registered:
        url = str(getattr(each, "url", "") or getattr(getattr(each, "store", None), "url", "") or each.engine.url)
        assert url.startswith("postgresql"), f"{each.name} is not on PostgreSQL here: {url}"
    services = build_services(env)
    now = time.time()
    for seed, _ in SEEDERS.values():
        seed(services, database, "forget-me", now)
        seed(services, database, "keep-me", now)
        seed(services, database, "expired", now - 40 * 86_400)
    for name, (_, held) in SEEDERS.items():
        assert held(services, database, "forget-me") > 0 and held(services, database, "expired") > 0, name

    forgotten = reported(make("forget", env, "SENDER=forget-me"))
    assert set(forgotten) == set(SEEDERS) and all(count > 0 for count in forgotten.values()), forgotten
    purged = reported(make("purge-expired", env))
    assert set(purged) == set(SEEDERS) and all(count > 0 for count in purged.values()), purged
    for name, (_, held) in SEEDERS.items():
        assert held(services, database, "forget-me") == 0, f"{name} still holds a forgotten conversation"
        assert held(services, database, "expired") == 0, f"{name} still holds an expired conversation"
        assert held(services, database, "keep-me") > 0, f"{name} lost a conversation it had to keep"
