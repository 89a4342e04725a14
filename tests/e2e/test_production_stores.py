"""endpoints.production.yml works: conversations land in PostgreSQL and survive a Rasa restart; Redis holds the locks.

Uses the PostgreSQL (127.0.0.1:5432, trust auth) and Redis (127.0.0.1:6379) that run on every machine here.
"""
from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import psycopg2
import pytest
import redis

from tests.e2e.test_rest_e2e import Conversation
from weiquan.ops.harness import ROOT, Bot, running_bot

pytestmark = pytest.mark.e2e
DB = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
REDIS_DB = 7  # a database number nothing else here uses, so its clients are ours


@pytest.fixture(scope="module")
def production_bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bot]:
    name = f"weiquan_e2e_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(dbname="postgres", **DB)
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {name}")
    env = {"DB_HOST": DB["host"], "DB_PORT": str(DB["port"]), "DB_NAME": name, "DB_USER": DB["user"],
           "DB_PASSWORD": "", "REDIS_HOST": "127.0.0.1", "REDIS_PORT": "6379", "REDIS_DB": str(REDIS_DB)}
    bot = Bot(workdir=tmp_path_factory.mktemp("production"), endpoints=ROOT / "endpoints.production.yml",
              extra_env=env)
    bot.database = name  # type: ignore[attr-defined]
    yield from running_bot(bot)
    admin.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.close()


def stored_texts(database: str, sender: str) -> list[str]:
    with psycopg2.connect(dbname=database, **DB) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT data FROM events WHERE sender_id = %s AND type_name = 'user' ORDER BY id", (sender,))
        return [json.loads(row[0]).get("text", "") for row in cursor.fetchall()]


def test_conversation_is_kept_in_postgresql_and_survives_a_restart(production_bot: Bot) -> None:
    chat = Conversation(production_bot)
    chat.say("卖家一直短信骚扰我")
    assert "状态" in chat.say("淘宝")
    assert any("短信骚扰" in text for text in stored_texts(production_bot.database, chat.sender))
    production_bot.restart_rasa()
    assert "哪一天" in chat.say("交易成功了")  # the form picked up where it was, from PostgreSQL


def test_redis_lock_store_is_in_use(production_bot: Bot) -> None:
    Conversation(production_bot).say("你好")  # a turn takes the conversation's lock in Redis
    clients = redis.Redis(host="127.0.0.1").client_list()
    assert any(int(client.get("db", -1)) == REDIS_DB for client in clients)
