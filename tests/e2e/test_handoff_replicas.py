"""Two Rasa servers, as behind a load balancer: conversations in PostgreSQL, locks in Redis, socket.io rooms shared
through Redis. The widget's socket is held by one server while the console talks to the other, and an operator's
message still reaches it. Also the session-expiry trap, with a model whose sessions expire after 6 seconds.

The model is core-only (rules, no NLU: messages are `/intent` payloads), trained from a copy of domain.yml with a
short `session_expiration_time`; it is cached under build/ by the hash of what it is trained from.
"""
from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import psycopg2
import pytest
import socketio
import yaml

from weiquan.core.contracts import Delivery
from weiquan.ops.handoff_harness import HandoffBot, eventually, texts
from weiquan.ops.harness import ROOT, free_port
from weiquan.stores.outbox import OperatorOutbox

pytestmark = pytest.mark.e2e

SESSION_MINUTES = 0.1  # six seconds
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
REDIS_DB = 8
CACHE = ROOT / "build" / "handoff-e2e"


def short_session_model() -> Path:
    sources = [ROOT / "domain.yml", ROOT / "config.yml", *sorted((ROOT / "data" / "rules").glob("*.yml")),
               *sorted((ROOT / "data" / "stories").glob("*.yml"))]
    digest = hashlib.sha256(b"".join(path.read_bytes() for path in sources)).hexdigest()[:16]
    model = CACHE / f"core-short-session-{digest}.tar.gz"
    if model.exists():
        return model
    CACHE.mkdir(parents=True, exist_ok=True)
    domain = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
    domain["session_config"]["session_expiration_time"] = SESSION_MINUTES
    domain_path = CACHE / "domain-short-session.yml"
    domain_path.write_text(yaml.safe_dump(domain, allow_unicode=True), encoding="utf-8")
    subprocess.run([str(Path(sys.executable).with_name("rasa")), "train", "core", "--domain", str(domain_path),
                    "--stories", "data", "--config", "config.yml", "--out", str(CACHE),
                    "--fixed-model-name", model.name.removesuffix(".tar.gz")], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    return model


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HandoffBot]:
    database = f"weiquan_handoff_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(dbname="postgres", **PG)
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {database}")
    env = {"DB_HOST": PG["host"], "DB_PORT": str(PG["port"]), "DB_NAME": database, "DB_USER": PG["user"],
           "DB_PASSWORD": "", "REDIS_HOST": "127.0.0.1", "REDIS_PORT": "6379", "REDIS_DB": str(REDIS_DB),
           "WIDGET_REDIS_URL": f"redis://127.0.0.1:6379/{REDIS_DB}", "HANDOFF_OPERATORS": "on"}
    bot = HandoffBot(workdir=tmp_path_factory.mktemp("replicas"), endpoints=ROOT / "endpoints.production.yml",
                     extra_env=env, model=short_session_model())
    bot.other_port = free_port()  # type: ignore[attr-defined]
    try:
        bot.start_actions()
        bot.start_rasa("rasa")
        bot.start_rasa("rasa-b", port=bot.other_port)  # type: ignore[attr-defined]
        bot.start_console(rasa_port=bot.other_port)  # type: ignore[attr-defined]  # the console talks to B only
        bot.wait_for_console_heartbeat()
        yield bot
    finally:
        for name in list(bot.procs):
            bot.stop(name)
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        admin.close()


class Widget:
    """What the widget does on the socket (python-socketio client, websocket transport like the widget)."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.sio.on("bot_uttered", self.received.put_nowait)
        self.session_id = f"replica-{uuid.uuid4().hex[:12]}"

    async def connect(self, url: str, origin: str) -> None:
        if not hasattr(aiohttp, "ClientWSTimeout"):  # engine.io's client vs Rasa's aiohttp (see the socket tests)
            aiohttp.ClientWSTimeout = lambda ws_close: ws_close  # type: ignore[attr-defined]
        confirmed: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.sio.on("session_confirm", lambda sid: confirmed.done() or confirmed.set_result(sid))
        await self.sio.connect(url, headers={"Origin": origin}, transports=["websocket"], wait_timeout=30)
        await self.sio.emit("session_request", {"session_id": self.session_id})
        assert await asyncio.wait_for(confirmed, 30) == self.session_id

    async def say(self, text: str) -> None:
        await self.sio.emit("user_uttered", {"message": text, "session_id": self.session_id})

    async def next(self, timeout: float = 60) -> dict[str, Any]:
        return await asyncio.wait_for(self.received.get(), timeout)


async def in_thread(function: Any, *args: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, function, *args)


async def test_an_operator_message_reaches_the_socket_held_by_the_other_server(replicas: HandoffBot) -> None:
    widget = Widget()
    await widget.connect(replicas.url, replicas.widget_url)  # the socket lives on server A
    try:
        await widget.say("/request_human")
        waiting = await widget.next()
        assert waiting["text"].startswith("已转人工") and waiting["custom"]["kind"] == "handoff_status"

        sender = widget.session_id
        code, entry = await in_thread(replicas.console, "POST", f"/api/conversations/{sender}/takeover")
        assert code == 200 and entry["channel"] == "socketio"
        connected = await widget.next()  # emitted by server B, delivered by server A through Redis
        assert connected["text"].startswith("客服已接入")

        code, sent = await in_thread(replicas.console, "POST", f"/api/conversations/{sender}/messages",
                                     {"text": "你好，我是客服小王。"})
        # The socket on server A acknowledged it; the acknowledgement came back to server B through Redis.
        assert (code, sent["delivery"]) == (200, "delivered")
        operator = await widget.next()
        assert operator == {"text": "你好，我是客服小王。", "custom": {"kind": "operator", "label": "人工客服"},
                            "id": sent["message_id"]}

        # The buyer's page is closed: the next message is only stored, and the console is told so …
        await widget.sio.disconnect()
        code, sent = await in_thread(replicas.console, "POST", f"/api/conversations/{sender}/messages",
                                     {"text": "我先把处理办法写在这里。"})
        assert (code, sent["delivery"]) == (200, "stored")
        # … until the buyer comes back, this time on server B: the message is shown there, and counted delivered.
        widget = Widget()
        widget.session_id = sender
        await widget.connect(f"http://127.0.0.1:{replicas.other_port}", replicas.widget_url)  # type: ignore[attr-defined]
        again = await widget.next()
        assert (again["text"], again["id"]) == ("我先把处理办法写在这里。", sent["message_id"])
        outbox = OperatorOutbox(replicas.store_url)
        for _ in range(100):  # the socket acknowledges from this event loop: wait without blocking it
            if outbox.status(sent["message_id"]) is Delivery.DELIVERED:
                break
            await asyncio.sleep(0.1)
        assert outbox.status(sent["message_id"]) is Delivery.DELIVERED

        await in_thread(replicas.console, "POST", f"/api/conversations/{sender}/release")
        assert (await widget.next())["text"].startswith("人工客服已结束服务")
        await widget.say("/greet")
        assert "恶意骚扰维权助手" in (await widget.next())["text"]  # the bot is back
    finally:
        await widget.sio.disconnect()


def test_an_expired_session_keeps_the_bot_paused_while_a_person_has_it(replicas: HandoffBot) -> None:
    sender = f"e2e-expiry-{uuid.uuid4().hex[:8]}"
    assert texts(replicas.rest(sender, "/request_human"))[0].startswith("已转人工")
    assert replicas.console("POST", f"/api/conversations/{sender}/takeover")[0] == 200
    time.sleep(SESSION_MINUTES * 60 + 2)  # the session expires: Rasa starts a new one, which clears the pause …
    assert replicas.rest(sender, "/greet") == []  # … and action_session_start asserted it again: no greeting
    tracker = replicas.tracker(sender)
    assert tracker["paused"] is True
    assert any(event["event"] == "session_started" for event in tracker["events"][-6:])
    assert ("user", "（打开了聊天窗口）") in [(line["from"], line["text"])
                                           for line in replicas.conversation(sender)["transcript"]]
    assert replicas.console("POST", f"/api/conversations/{sender}/release")[0] == 200
    assert "恶意骚扰维权助手" in "".join(texts(replicas.rest(sender, "/greet")))


def test_the_hand_off_store_is_in_postgresql(replicas: HandoffBot) -> None:
    sender = f"e2e-pg-{uuid.uuid4().hex[:8]}"
    replicas.rest(sender, "/request_human", port=replicas.other_port)  # type: ignore[attr-defined]
    eventually(lambda: any(item["sender_id"] == sender for item in
                           replicas.console("GET", "/api/conversations?status=waiting")[1]), what="the queue")
    assert replicas.store().url.startswith("postgresql://")  # no HANDOFF_STORE_URL: it followed DB_*
    assert replicas.store().get(sender).channel == "rest"
    replicas.console("POST", f"/api/conversations/{sender}/release")
