"""Faults on the real servers: the action server down or hung, the database unreachable or going away.

What the buyer must see: a short apology (domain.yml `utter_system_unavailable`) in seconds instead of minutes of
silence, and the conversation going on once the action server is back; with the database away, answers as usual and
a clear error in the log, and what was said meanwhile written once the database is back. Measured times are printed
(`pytest -s`).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Iterator

import psycopg2
import pytest
import yaml

from tests.e2e.test_rest_e2e import Conversation, post
from weiquan.ops.harness import ROOT, Bot, free_port, running_bot

pytestmark = pytest.mark.e2e
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
DOMAIN = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
APOLOGY = DOMAIN["responses"]["utter_system_unavailable"][0]["text"]
PLATFORM_QUESTION = "淘宝还是天猫"
STATUS_QUESTION = "状态"
# The README's promise, word for word (checked below): Rasa's own limit is 300 s; ours is 1.5 s for the call plus the
# turn itself. Change the README and the code together, never this bound alone.
APOLOGY_WITHIN_S = 3.0
PROMISE = f"costs the buyer at most {APOLOGY_WITHIN_S:g} s and an apology"


def test_the_readme_promises_the_bound_these_tests_hold() -> None:
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    assert PROMISE in readme


def timed_say(chat: Conversation, text: str) -> tuple[str, float]:
    started = time.monotonic()
    status, messages = post(chat.bot, {"sender": chat.sender, "message": text}, timeout=60)
    elapsed = time.monotonic() - started
    assert status == 200, messages
    return "\n".join(m.get("text", "") for m in messages), elapsed


@pytest.fixture(scope="module")
def fault_bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bot]:
    bot = Bot(workdir=tmp_path_factory.mktemp("faults"))
    yield from running_bot(bot)


def in_form(bot: Bot) -> Conversation:
    chat = Conversation(bot)
    assert PLATFORM_QUESTION in chat.say("卖家一直短信骚扰我")
    return chat


def test_action_server_down_the_buyer_gets_an_apology_and_goes_on_when_it_is_back(fault_bot: Bot) -> None:
    chat = in_form(fault_bot)
    fault_bot.stop("actions")
    try:
        reply, elapsed = timed_say(chat, "淘宝")
        print(f"\naction server down: apology after {elapsed:.2f} s")
        assert APOLOGY in reply and elapsed < APOLOGY_WITHIN_S
        assert PLATFORM_QUESTION in reply  # the unchecked answer was not taken: the form asks again
        assert "action_server.unavailable: cannot connect" in fault_bot.log("rasa")
    finally:
        fault_bot.start_actions()
    assert STATUS_QUESTION in chat.say("淘宝")  # back: the same answer now goes through


def test_action_server_hung_the_buyer_gets_an_apology_in_seconds(fault_bot: Bot) -> None:
    chat = in_form(fault_bot)
    actions = fault_bot.procs["actions"]
    os.kill(actions.pid, signal.SIGSTOP)  # accepts connections (the kernel does), never answers
    try:
        reply, elapsed = timed_say(chat, "淘宝")
        print(f"\naction server hung: apology after {elapsed:.2f} s")
        assert APOLOGY in reply and elapsed < APOLOGY_WITHIN_S
        assert "action_server.unavailable: no answer" in fault_bot.log("rasa")
    finally:
        os.kill(actions.pid, signal.SIGCONT)
    assert STATUS_QUESTION in chat.say("淘宝")


# ---------------------------------------------------------------------- the database


class TcpProxy:
    """A loopback TCP forwarder to PostgreSQL that the test can cut and restore, like a database going away."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        """Closes the port and every open connection: the database is gone."""
        with self._lock:
            for sock in [self._listener, *self._sockets]:
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)
                    sock.close()
            self._listener, self._sockets = None, []

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


def production_env(database: str, port: int) -> dict[str, str]:
    return {"DB_HOST": "127.0.0.1", "DB_PORT": str(port), "DB_NAME": database, "DB_USER": "postgres",
            "DB_PASSWORD": "", "REDIS_HOST": "127.0.0.1", "REDIS_PORT": "6379", "REDIS_DB": "9"}


def user_texts(database: str, sender: str) -> list[str]:
    import json

    with psycopg2.connect(dbname=database, **PG) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT data FROM events WHERE sender_id = %s AND type_name = 'user' ORDER BY id", (sender,))
        return [json.loads(row[0])["text"] for row in cursor.fetchall()]


def test_database_never_there_the_server_starts_and_answers(tmp_path_factory: pytest.TempPathFactory) -> None:
    closed = free_port()  # nothing listens here
    bot = Bot(workdir=tmp_path_factory.mktemp("no-database"), endpoints=ROOT / "endpoints.production.yml",
              extra_env=production_env("weiquan_nowhere", closed))
    for running in running_bot(bot):  # Rasa's own SQL store would wait here forever
        chat = Conversation(running)
        assert PLATFORM_QUESTION in chat.say("卖家一直短信骚扰我")
        assert STATUS_QUESTION in chat.say("淘宝")  # the conversation goes on from the server's memory
        log = running.log("rasa")
        assert "tracker_store.unavailable" in log and f"127.0.0.1:{closed}" in log
        assert log.count("tracker_store.unavailable") <= 2  # one clear error, not one per turn
        assert running.procs["rasa"].poll() is None


def test_database_going_away_and_coming_back(tmp_path_factory: pytest.TempPathFactory) -> None:
    database = f"weiquan_outage_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(dbname="postgres", **PG)
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {database}")
    proxy = TcpProxy((PG["host"], PG["port"]))
    proxy.start()
    bot = Bot(workdir=tmp_path_factory.mktemp("outage"), endpoints=ROOT / "endpoints.production.yml",
              extra_env=production_env(database, proxy.port))
    try:
        for running in running_bot(bot):
            chat = Conversation(running)
            assert PLATFORM_QUESTION in chat.say("卖家一直短信骚扰我")
            proxy.stop()
            assert STATUS_QUESTION in chat.say("淘宝")  # answered as usual while the database is away
            assert "tracker_store.unavailable" in running.log("rasa")
            proxy.start()
            time.sleep(6)  # the store tries the database again at most every 5 s
            assert "哪一天" in chat.say("交易成功了")
            assert user_texts(database, chat.sender) == ["卖家一直短信骚扰我", "淘宝", "交易成功了"]  # nothing lost
            assert "tracker_store.recovered" in running.log("rasa")
    finally:
        proxy.stop()
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        admin.close()


def test_an_outage_holds_at_most_10_000_conversations_then_writes_them(caplog: pytest.LogCaptureFixture) -> None:
    """docs/security.md: while the database is down a Rasa process keeps the conversations it serves, masked, at most
    10 000 (the oldest beyond that is dropped, and says so), and writes them once the database is back. The store
    with its default settings, as endpoints.production.yml builds it; 10 001 buyers of one message each."""
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    from weiquan.stores.tracker_store import PrivateSQLTrackerStore

    database = f"weiquan_cap_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(dbname="postgres", **PG)
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {database}")
    proxy = TcpProxy((PG["host"], PG["port"]))  # not started: the database is away from the first moment
    domain = Domain.load(str(ROOT / "domain.yml"))
    store = PrivateSQLTrackerStore(domain, dialect="postgresql", host="127.0.0.1", port=proxy.port, db=database,
                                   username=PG["user"])

    def one_message(sender: str) -> DialogueStateTracker:
        tracker = DialogueStateTracker(sender, domain.slots)
        tracker.update(UserUttered(f"卖家打我电话13812345678（{sender}）", {"name": "report_harassment"}))
        return tracker

    async def serve(senders: list[str]) -> None:
        for sender in senders:
            await store.save(one_message(sender))

    caplog.set_level(logging.INFO, logger="weiquan.stores.tracker_store")
    buyers = [f"outage-{n:05d}" for n in range(10_001)]
    try:
        asyncio.run(serve(buyers))
        assert "tracker_store.unavailable" in caplog.text
        assert caplog.text.count("tracker_store.dropped") == 1  # the oldest, beyond 10 000
        proxy.start()
        time.sleep(5.5)  # the store tries the database again at most every 5 s
        asyncio.run(serve(["back-0"] * 210))  # each save also writes up to 50 of the kept conversations
        assert "tracker_store.recovered" in caplog.text
        with psycopg2.connect(dbname=database, **PG) as connection, connection.cursor() as cursor:
            cursor.execute("SELECT DISTINCT sender_id FROM events")
            written = {row[0] for row in cursor.fetchall()}
            cursor.execute("SELECT data FROM events WHERE sender_id = %s", (buyers[-1],))
            kept = cursor.fetchone()[0]
        assert written == set(buyers[1:]) | {"back-0"}  # 10 000 held and written; the first one dropped
        assert "13812345678" not in kept and "138****5678" in kept  # held masked, written masked
    finally:
        proxy.stop()
        store.engine.dispose()
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        admin.close()
