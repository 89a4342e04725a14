"""Analytics in production (issue 17): MaskingRabbitBroker publishes masked events to RabbitMQ without stopping a turn
(buffered while RabbitMQ is away, then delivered, or counted lost), and the consumer writes them into the analytics
store in PostgreSQL, acknowledging only what it wrote. Against this machine's RabbitMQ (127.0.0.1:5672) and
PostgreSQL (127.0.0.1:5432): each test has a queue and a database of its own."""
from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import aio_pika
import psycopg2
import pytest
import sqlalchemy as sa
import yaml

from tests.test_privacy_store import CLEAR, DOMAIN, turn
from weiquan.analytics.broker import MaskingRabbitBroker
from weiquan.analytics.consumer import Consumer, build
from weiquan.analytics.rabbit import DEFAULT_URL, RabbitPublisher, settings
from weiquan.analytics.store import AnalyticsStore, url_from_endpoints
from weiquan.ops.harness import ROOT
from weiquan.stores.tracker_store import PrivateSQLTrackerStore

NOON = 1_795_000_000.0
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}


def rabbit_up() -> bool:
    async def probe() -> None:
        connection = await aio_pika.connect(DEFAULT_URL, timeout=3)
        await connection.close()

    try:
        asyncio.run(probe())
        return True
    except Exception:  # noqa: BLE001
        return False


RABBITMQ_UP = rabbit_up()


def test_the_production_store_is_the_conversations_database_and_rabbitmq_comes_from_the_environment() -> None:
    """endpoints.production.yml names no secret: the store follows DB_* (a password with @ and / still works), the
    broker's URL comes from RABBITMQ_URL."""
    section = yaml.safe_load((ROOT / "endpoints.production.yml").read_text(encoding="utf-8"))["event_broker"]
    env = {"DB_HOST": "db.example", "DB_PORT": "5433", "DB_NAME": "weiquan", "DB_USER": "bot", "DB_PASSWORD": "p@ss/w",
           "RABBITMQ_URL": "amqp://bot:secret@mq.example:5672/"}
    url = sa.engine.make_url(url_from_endpoints({"event_broker": section}, env))
    assert (url.drivername, url.host, url.port, url.database, url.username, url.password) == \
        ("postgresql", "db.example", 5433, "weiquan", "bot", "p@ss/w")
    assert settings(section, env) == ("amqp://bot:secret@mq.example:5672/", "weiquan_analytics")
    assert "secret" not in json.dumps(section) and "password" not in json.dumps(section)


@pytest.fixture()
def queue_name() -> Iterator[str]:
    if not RABBITMQ_UP:
        pytest.skip("no RabbitMQ on 127.0.0.1:5672")
    name = f"weiquan_test_{uuid.uuid4().hex[:10]}"
    yield name

    async def delete() -> None:
        connection = await aio_pika.connect(DEFAULT_URL)
        channel = await connection.channel()
        await channel.queue_delete(name)
        await connection.close()

    asyncio.run(delete())


@pytest.fixture()
def database() -> Iterator[str]:
    name = f"weiquan_analytics_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(dbname="postgres", **PG)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {name}")
    yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    with admin.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        cursor.execute(f"DROP DATABASE IF EXISTS {name}")
    admin.close()


async def queued(queue: str) -> list[dict[str, Any]]:
    """What waits in the queue (taken off it)."""
    connection = await aio_pika.connect(DEFAULT_URL)
    channel = await connection.channel()
    declared = await channel.declare_queue(queue, durable=True)
    bodies = []
    while (message := await declared.get(no_ack=True, fail=False)) is not None:
        bodies.append(json.loads(message.body))
    await connection.close()
    return bodies


async def publish_raw(queue: str, bodies: list[bytes]) -> None:
    connection = await aio_pika.connect(DEFAULT_URL)
    channel = await connection.channel()
    await channel.declare_queue(queue, durable=True)
    for body in bodies:
        await channel.default_exchange.publish(aio_pika.Message(body), routing_key=queue)
    await connection.close()


class Flaky:
    """RabbitMQ as the broker sees it, away until `back` is set (a closed port stands in while it is away)."""

    def __init__(self, queue: str) -> None:
        self.real = RabbitPublisher(DEFAULT_URL, queue, timeout_s=2)
        self.away = RabbitPublisher("amqp://guest:guest@127.0.0.1:1/", queue, timeout_s=1)
        self.back = False

    def add_events(self, rows: Any) -> int:
        return (self.real if self.back else self.away).add_events(rows)

    def add_loss(self, count: int, at: float) -> None:
        (self.real if self.back else self.away).add_loss(count, at)

    def close(self) -> None:
        self.real.close()
        self.away.close()


async def test_the_broker_publishes_every_event_of_a_turn_masked(tmp_path: Any, queue_name: str) -> None:
    broker = MaskingRabbitBroker(RabbitPublisher(DEFAULT_URL, queue_name))
    store = PrivateSQLTrackerStore(DOMAIN, dialect="sqlite", db=str(tmp_path / "tracker.db"), event_broker=broker)
    tracker = turn("buyer-1")
    await store.save(tracker)
    assert broker.flush()
    await broker.close()
    messages = await queued(queue_name)
    assert len(messages) == len(tracker.events) == broker.written
    text = json.dumps(messages, ensure_ascii=False)
    assert not any(value in text for value in CLEAR), "a personal number reached RabbitMQ in clear"
    assert {m["sender_id"] for m in messages} == {"buyer-1"}
    assert "138****5678" in text and "[地址]" in text


async def test_rabbitmq_away_costs_no_turn_and_the_events_arrive_when_it_is_back(tmp_path: Any,
                                                                                 queue_name: str) -> None:
    rabbit = Flaky(queue_name)
    broker = MaskingRabbitBroker(rabbit, retry_after_s=0.05)
    store = PrivateSQLTrackerStore(DOMAIN, dialect="sqlite", db=str(tmp_path / "tracker.db"), event_broker=broker)
    started = time.monotonic()
    await store.save(turn("buyer-2"))  # does not raise, does not wait for RabbitMQ
    assert time.monotonic() - started < 1.0
    assert not broker.flush(timeout_s=0.5) and broker.written == 0
    rabbit.back = True
    assert broker.flush()
    await broker.close()
    assert len(await queued(queue_name)) == broker.written > 0 and broker.lost == 0


async def test_beyond_the_buffer_events_are_lost_and_the_count_travels_to_the_store(queue_name: str,
                                                                                    database: str) -> None:
    rabbit = Flaky(queue_name)
    broker = MaskingRabbitBroker(rabbit, retry_after_s=0.05, max_buffered=3)
    for second in range(8):
        broker.publish({"sender_id": "x", "event": "user", "text": "你好", "timestamp": NOON + second})
    time.sleep(0.5)
    rabbit.back = True
    assert broker.flush()
    await broker.close()
    assert (broker.written, broker.lost) == (3, 5)
    analytics = AnalyticsStore(database)
    consumer = Consumer(DEFAULT_URL, queue_name, analytics, wait_s=0.05)
    await run_until(consumer, lambda: consumer.written >= 3 and consumer.losses >= 5)
    assert analytics.lost(0, NOON + 86_400) == 5  # what the analytics page shows
    assert len(analytics.events(0, NOON + 86_400)) == 3


async def run_until(consumer: Consumer, done: Any, timeout_s: float = 20) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    deadline = time.monotonic() + timeout_s
    while not done() and time.monotonic() < deadline and not task.done():
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 10)
    assert done(), consumer.status()


async def test_the_consumer_writes_masked_events_into_postgresql_and_acknowledges_them(queue_name: str,
                                                                                       database: str) -> None:
    clear = {"sender_id": "buyer-3", "event": "user", "text": "卖家打我电话13812345678骂我", "timestamp": NOON}
    await publish_raw(queue_name, [json.dumps(clear, ensure_ascii=False).encode(), b"not json"])
    endpoints = {"event_broker": {"type": "weiquan.analytics.broker.MaskingRabbitBroker", "queue": "ignored",
                                  "dialect": "postgresql"}}
    name = database.rsplit("/", 1)[1]
    consumer = build(endpoints, {"RABBITMQ_QUEUE": queue_name, "DB_HOST": "127.0.0.1", "DB_PORT": "5432",
                                 "DB_USER": "postgres", "DB_NAME": name})
    consumer.wait_s = 0.05
    await run_until(consumer, lambda: consumer.written == 1 and consumer.rejected == 1)
    (row,) = consumer.store.events(0, NOON + 1)
    assert row["sender_id"] == "buyer-3" and "13812345678" not in json.dumps(row, ensure_ascii=False)
    assert await queued(queue_name) == []  # acknowledged (and the bad one rejected), nothing left


class DownStore(AnalyticsStore):
    """The PostgreSQL analytics store, away until `back` is set."""

    back = False

    def add_events(self, rows: Any) -> int:
        if not self.back:
            raise ConnectionError("database away")
        return super().add_events(rows)


async def test_a_database_outage_means_no_acknowledgement_and_a_retry(queue_name: str, database: str) -> None:
    event = {"sender_id": "buyer-4", "event": "user", "text": "你好", "timestamp": NOON}
    await publish_raw(queue_name, [json.dumps(event).encode()])
    store = DownStore(database)
    consumer = Consumer(DEFAULT_URL, queue_name, store, wait_s=0.05, retry_after_s=0.1)
    await run_until(consumer, lambda: consumer.retries >= 2)  # stops while the database is away: nothing acknowledged
    assert consumer.written == 0
    assert [m["sender_id"] for m in await queued(queue_name)] == ["buyer-4"]  # still in RabbitMQ
    await publish_raw(queue_name, [json.dumps(event).encode()])
    store.back = True
    consumer = Consumer(DEFAULT_URL, queue_name, store, wait_s=0.05, retry_after_s=0.1)
    await run_until(consumer, lambda: consumer.written == 1)
    assert [row["sender_id"] for row in store.events(0, NOON + 1)] == ["buyer-4"]
