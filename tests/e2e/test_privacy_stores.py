"""The tracker store's masking, `make forget` and `make purge-expired` on PostgreSQL (127.0.0.1:5432, trust auth), in a
throw-away database. tests/test_privacy_store.py runs the same on SQLite; no model is needed."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator

import psycopg2
import pytest

from tests.test_privacy_store import CLEAR, DOMAIN, SAID, fill, turn
from weiquan.ops.harness import ROOT
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
    assert retention.forget(endpoints(database), "new") == {"conversations": before["new"], "handoff": 0}
    cutoff, deleted = retention.purge_expired(endpoints(database), now=now, env={})
    after = senders(database)
    assert set(after) == {"both"} and 0 < after["both"] < before["both"]
    assert deleted == {"conversations": before["old"] + before["both"] - after["both"], "handoff": 0}
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
