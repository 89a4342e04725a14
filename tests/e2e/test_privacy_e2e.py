"""A phone number, an ID-card number, an order number and a street address, typed over REST, the widget and WeChat to
the real servers running at DEBUG level, appear in clear in no log file and nowhere in the tracker store: SQLite with
endpoints.yml's store, and PostgreSQL with endpoints.production.yml. The bot still works in the turn, and
`make forget` deletes a conversation from either store.
"""
from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg2
import pytest
import yaml

from tests.e2e.test_rest_e2e import Conversation
from tests.e2e.test_wechat_e2e import WeChatUser, warm_up
from tests.test_socketio_channel import Client
from weiquan.ops.harness import ROOT, Bot, running_bot

pytestmark = pytest.mark.e2e
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
COMPLAINT_START = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))["responses"][
    "utter_complaint_start"][0]["text"]


@dataclass(frozen=True)
class Secrets:
    """Personal data one buyer types; distinct per channel, so a leak names its channel."""

    phone: str
    id_card: str
    order: str
    address: str

    def messages(self) -> list[str]:
        return [f"我的手机号是{self.phone}，卖家天天打这个电话骂我", f"身份证号{self.id_card}也被他发到网上了",
                f"订单号{self.order}", f"他还说要寄东西到{self.address}"]

    def clear_forms(self) -> list[str]:
        # As typed, and as a JSON renderer that escapes non-ASCII characters would write them.
        values = [self.phone, self.id_card, self.order, self.address]
        return values + [json.dumps(value)[1:-1] for value in values if not value.isascii()]


REST = Secrets("13812345671", "110101199003071231", "2345678901234561", "杭州市西湖区文三路471号")
WIDGET = Secrets("13912345672", "320102198507154422", "2345678901234562", "幸福小区3栋2单元502室")
WECHAT = Secrets("15012345673", "44030419920229123X", "2345678901234563", "南京西路1266弄7号")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def any_store_bot(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bot]:
    """The servers at DEBUG level, with SQLite (endpoints.yml's store) or PostgreSQL (endpoints.production.yml)."""
    if request.param == "sqlite":
        yield request.getfixturevalue("debug_bot")
        return
    database = f"weiquan_privacy_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(dbname="postgres", **PG)
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {database}")
    env = {"DB_HOST": PG["host"], "DB_PORT": str(PG["port"]), "DB_NAME": database, "DB_USER": PG["user"],
           "DB_PASSWORD": "", "REDIS_HOST": "127.0.0.1", "REDIS_PORT": "6379", "REDIS_DB": "8"}
    bot = Bot(workdir=tmp_path_factory.mktemp("privacy-postgresql"), endpoints=ROOT / "endpoints.production.yml",
              extra_env=env, rasa_args=["--debug"], action_args=["--debug"])
    bot.store = "postgresql"  # type: ignore[attr-defined]
    try:
        yield from running_bot(bot)
    finally:
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        admin.close()


def rows(bot: Bot) -> list[tuple[str, str]]:
    """Every stored event as written: (sender id, JSON)."""
    if bot.store == "sqlite":  # type: ignore[attr-defined]
        with sqlite3.connect(bot.workdir / "tracker.db") as connection:
            return connection.execute("SELECT sender_id, data FROM events ORDER BY id").fetchall()
    with psycopg2.connect(dbname=bot.extra_env["DB_NAME"], **PG) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT sender_id, data FROM events ORDER BY id")
        return cursor.fetchall()


def stored(bot: Bot) -> str:
    return "\n".join(f"{sender}\t{data}" for sender, data in rows(bot))


def user_texts(bot: Bot, sender: str) -> list[str]:
    return [event["text"] for owner, data in rows(bot) if owner == sender
            for event in [json.loads(data)] if event["event"] == "user"]


def readable(dump: str) -> str:
    """The stored JSON with \\uXXXX decoded, so Chinese in clear would show even if escaped."""
    return "\n".join(json.dumps(json.loads(line.split("\t", 1)[1]), ensure_ascii=False) for line in dump.splitlines())


def all_logs(bot: Bot) -> str:
    return "\n".join(path.read_text(encoding="utf-8", errors="replace") for path in bot.workdir.glob("*.log"))


async def widget_conversation(bot: Bot, messages: list[str]) -> tuple[str, list[str]]:
    client = Client()
    await client.connect(bot.url, origin=bot.widget_url)
    replies: list[str] = []
    try:
        session = await client.start_session()
        for text in messages:
            await client.say(text, session)
            replies.append((await client.next_bot(timeout=60)).get("text", ""))
            while True:  # the rest of this turn's messages
                try:
                    replies.append((await client.next_bot(timeout=1.5)).get("text", ""))
                except asyncio.TimeoutError:
                    break
    finally:
        await client.close()
    return session, replies


def test_personal_data_is_in_no_log_and_masked_in_the_store(any_store_bot: Bot) -> None:
    warm_up(any_store_bot)
    rest = Conversation(any_store_bot)
    replies = [rest.say(text) for text in REST.messages()]
    assert all(replies)
    session, widget_replies = asyncio.run(widget_conversation(any_store_bot, WIDGET.messages()))
    assert len(widget_replies) >= len(WIDGET.messages())
    wechat = WeChatUser(any_store_bot, openid=f"oPrivacy{uuid.uuid4().hex[:8]}", safe=False)
    for text in WECHAT.messages():
        assert wechat.say(text)
    time.sleep(1)  # let the last log lines reach the files

    logs, dump = all_logs(any_store_bot), stored(any_store_bot)
    assert "processor.message.parse" in logs and "parse_data_text" in logs  # DEBUG really was on
    for channel, secrets in (("REST", REST), ("widget", WIDGET), ("WeChat", WECHAT)):
        for value in secrets.clear_forms():
            assert value not in logs, f"{channel}: {value!r} in a log file"
            assert value not in dump and value not in readable(dump), f"{channel}: {value!r} in the tracker store"
    # What they said is kept, masked: nothing is lost.
    kept = readable(dump)
    for sender in (rest.sender, session, wechat.openid):
        assert sender in dump
    for masked in ("138****5671", "139****5672", "150****5673", "2345****4561", "2345****4562", "110101********1231",
                   "[地址]"):
        assert masked in kept, masked


def test_the_bot_still_works_in_the_turn_and_the_conversation_goes_on(any_store_bot: Bot) -> None:
    chat = Conversation(any_store_bot)
    assert "证据" in chat.say(f"淘宝买的，交易成功5天了，卖家天天打电话骂我，我的电话{REST.phone}")
    ruling = chat.say("有聊天截图")  # a new turn: the history came back from the (masked) store
    assert "list_bought_items.htm" in ruling and "还剩 10 天" in ruling


def test_make_forget_deletes_the_conversation_from_the_store(any_store_bot: Bot) -> None:
    chat = Conversation(any_store_bot)
    chat.say("卖家一直短信骚扰我")
    assert chat.sender in stored(any_store_bot)
    env = any_store_bot.env()
    endpoints = any_store_bot.write_endpoints()  # the file the servers run with
    done = subprocess.run(["make", "-s", "forget", f"SENDER={chat.sender}", f"ENDPOINTS={endpoints}"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"of conversation '{chat.sender}' deleted" in done.stdout
    assert chat.sender not in stored(any_store_bot)
    assert COMPLAINT_START in chat.say("淘宝")  # the bot starts over: it no longer knows what was said
    assert user_texts(any_store_bot, chat.sender) == ["淘宝"]
