"""Analytics in the production shape (issue 17), on the real services: `make run-production` (two Rasa replicas behind
HAProxy, PostgreSQL, Redis) with each replica's MaskingRabbitBroker publishing to this machine's RabbitMQ and the
analytics consumer writing into PostgreSQL. Conversations played over REST reach the console's analytics API with the
right counts; with RabbitMQ stopped (`rabbitmqctl stop_app`) for about 10 s the buyers' turns still answer in normal
time, and once it is back their events arrive (or are counted lost). RabbitMQ is always started again."""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator

import psycopg2
import pytest

from tests.e2e.test_production_drills import COMPLAINT, DB, Production, post
from weiquan.ops.harness import free_port, latest_model

pytestmark = pytest.mark.e2e
OPERATOR_TOKEN = "analytics-production-operator-token"
PHONE = "13812345678"
OUTAGE_S = 10


def rabbitmqctl(*command: str) -> None:
    subprocess.run(["rabbitmqctl", *command], check=True, capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Production]:
    latest_model()
    settings = {"RABBITMQ_QUEUE": f"weiquan_analytics_e2e_{uuid.uuid4().hex[:8]}", "OPERATOR_TOKEN": OPERATOR_TOKEN,
                "CONSUMER_PORT": str(free_port())}
    saved = {key: os.environ.get(key) for key in settings}
    os.environ.update(settings)  # run_all passes its environment on to every service
    name = f"weiquan_analytics_{uuid.uuid4().hex[:8]}"
    shape = Production(workdir=tmp_path_factory.mktemp("analytics-production"), database=name)
    try:
        shape.start()
        yield shape
    finally:
        shape.stop()
        rabbitmqctl("delete_queue", settings["RABBITMQ_QUEUE"])
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        admin = psycopg2.connect(dbname="postgres", **DB)
        admin.autocommit = True
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


def figures(shape: Production) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{shape.console}/api/analytics?days=1",
                                     headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"})
    with urllib.request.urlopen(request, timeout=30) as reply:
        return json.loads(reply.read())


def wait_for(shape: Production, done, timeout_s: float = 90) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        now = figures(shape)
        if done(now) or time.monotonic() > deadline:
            return now
        time.sleep(1)


def complaint(shape: Production, sender: str, number: int) -> list[float]:
    """The two turns of a complaint that gets a ruling within the window, from a loopback address of its own (each
    buyer, as if from another machine: the per-address limit stays out of the way); the seconds each turn took."""
    took = []
    source = f"127.0.{70 + number // 200}.{number % 200 + 1}"
    for text in (f"{COMPLAINT[0]}，我电话{PHONE}", COMPLAINT[1]):
        started = time.monotonic()
        status, replies = post(shape.public, sender, text, source=source)
        took.append(time.monotonic() - started)
        assert status == 200 and replies, (sender, text, status, replies)
    return took


def stored(database: str) -> str:
    with psycopg2.connect(dbname=database, **DB) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT data FROM analytics_events")
        return "\n".join(row[0] for row in cursor.fetchall())


def test_conversations_reach_the_analytics_page_through_rabbitmq_even_across_an_outage(
        production: Production) -> None:
    run = uuid.uuid4().hex[:6]
    # Senders hashed onto both replicas (HAProxy balances REST by sender): enough conversations that both get some.
    before = [f"before-{run}-{n}" for n in range(6)]
    normal = [seconds for number, sender in enumerate(before) for seconds in complaint(production, sender, number)]
    # The answer leaves before the events are published (the broker's thread): wait until the last ruling is in.
    counted = wait_for(production, lambda now: now["outcomes"].get("within_window", 0) >= len(before))
    assert counted["conversations"] == len(before), counted
    assert counted["outcomes"].get("within_window") == len(before), counted["outcomes"]
    assert counted["lost"] == 0
    text = stored(production.database)
    assert "138****5678" in text and PHONE not in text  # masked before it left the replica

    # Buyers keep coming for the whole outage: a new complaint every ~0.3 s while RabbitMQ is stopped.
    during: list[str] = []
    outage: list[float] = []
    rabbitmqctl("stop_app")
    try:
        stopped = time.monotonic()
        while time.monotonic() - stopped < OUTAGE_S:
            during.append(f"outage-{run}-{len(during)}")
            outage += complaint(production, during[-1], len(before) + len(during))
            time.sleep(0.3)
    finally:
        rabbitmqctl("start_app")
    print(f"{len(during)} complaints ({len(outage)} turns) while RabbitMQ was stopped")
    print(f"turn seconds: before median {statistics.median(normal):.2f} max {max(normal):.2f}; "
          f"during the outage median {statistics.median(outage):.2f} max {max(outage):.2f}")
    # In normal time: no turn waits for RabbitMQ (a publish that did would take its connect timeout or fail).
    assert statistics.median(outage) <= 2 * statistics.median(normal) + 0.5, (normal, outage)
    assert max(outage) <= max(normal) + 3.0, (normal, outage)

    total = len(before) + len(during)
    after = wait_for(production, lambda now: now["outcomes"].get("within_window", 0) >= total or now["lost"], 120)
    print(f"after the outage: conversations {after['conversations']}, lost events {after['lost']}")
    assert after["conversations"] == total and after["lost"] == 0, after  # buffered, then delivered
    assert after["outcomes"].get("within_window") == total
