"""The servers the hand-off end-to-end tests run: the action server, Rasa with its HTTP API on (token auth,
loopback only) and the operator console, on free loopback ports, sharing one hand-off store.

Not a test module: tests/e2e/test_handoff_e2e.py and test_handoff_replicas.py build on it.
"""
from __future__ import annotations

import contextlib
import http.client
import json
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from weiquan.handoff.settings import store_url_from_env
from weiquan.ops.harness import START_TIMEOUT_S, Bot, free_port, latest_model, running_bot, wait_http
from weiquan.stores.handoff import SERVICE, SqlHandoffStore

OPERATOR_TOKEN = "e2e-operator-token-0123456789"
RASA_API_TOKEN = "e2e-rasa-api-token"


def http_json(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None,
              timeout: float = 120) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return reply.status, json.loads(reply.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def eventually(check: Callable[[], Any], timeout_s: float = 30, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.3)


@dataclass
class HandoffBot(Bot):
    """A Bot whose Rasa server has its HTTP API on (token auth, loopback), plus the operator console."""

    model: Path | None = None
    console_port: int = field(default_factory=free_port)

    def env(self) -> dict[str, str]:
        env = {**super().env(), "OPERATOR_TOKEN": OPERATOR_TOKEN, "RASA_API_TOKEN": RASA_API_TOKEN}
        env.pop("HANDOFF_STORE_URL", None)
        if "DB_HOST" not in self.extra_env:  # with the production settings the store follows DB_* (PostgreSQL)
            env["HANDOFF_STORE_URL"] = f"sqlite:///{self.workdir / 'handoff.db'}"
        return env

    @property
    def store_url(self) -> str:
        return store_url_from_env(self.env())

    def start_rasa(self, name: str = "rasa", port: int | None = None) -> None:
        port = port or self.rasa_port
        # Through weiquan.ops.serve, as make run starts it: its patches answer a threat while paused.
        args = [sys.executable, "-m", "weiquan.ops.serve", "run", "-m", str(self.model or latest_model()),
                "--port", str(port), "-i", "127.0.0.1", "--credentials", "credentials.yml",
                "--endpoints", str(self.write_endpoints()), "--enable-api", "--auth-token", RASA_API_TOKEN,
                *self.rasa_args]
        proc = self._spawn(name, args)
        wait_http(f"http://127.0.0.1:{port}/webhooks/rest/", START_TIMEOUT_S, proc)

    def start_console(self, rasa_port: int | None = None) -> None:
        args = [sys.executable, "-m", "weiquan.handoff.console", "--port", str(self.console_port),
                "--rasa-url", f"http://127.0.0.1:{rasa_port or self.rasa_port}"]
        proc = self._spawn("console", args)
        wait_http(f"{self.console_url}/healthz", 60, proc)

    @property
    def console_url(self) -> str:
        return f"http://127.0.0.1:{self.console_port}"

    # ---------------------------------------------------------------- talking to it

    def rest(self, sender: str, text: str, port: int | None = None) -> list[dict[str, Any]]:
        status, messages = http_json("POST", f"http://127.0.0.1:{port or self.rasa_port}/webhooks/rest/webhook",
                                     {"sender": sender, "message": text})
        assert status == 200, messages
        return messages

    def console(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return http_json(method, f"{self.console_url}{path}", body,
                         headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"})

    def conversation(self, sender: str) -> dict[str, Any]:
        status, detail = self.console("GET", f"/api/conversations/{quote(sender, safe='')}")
        assert status == 200, detail
        return detail

    def tracker(self, sender: str, port: int | None = None) -> dict[str, Any]:
        status, tracker = http_json(
            "GET", f"http://127.0.0.1:{port or self.rasa_port}/conversations/{quote(sender, safe='')}/tracker"
                   f"?token={RASA_API_TOKEN}")
        assert status == 200, tracker
        return tracker

    def store(self) -> SqlHandoffStore:
        return SqlHandoffStore(self.store_url)

    def wait_for_console_heartbeat(self) -> None:
        store = self.store()
        eventually(lambda: (store.seen(SERVICE) or 0) > time.time() - 10, 60, "the console's sweep")


@contextlib.contextmanager
def running(bot: HandoffBot) -> Iterator[HandoffBot]:
    """The action server, Rasa and the console started as `make run` starts them (the console's sweep seen), and
    every process stopped afterwards, whatever the test did."""
    with contextlib.contextmanager(running_bot)(bot):  # stops every process it started, the console's too
        bot.start_console()
        bot.wait_for_console_heartbeat()
        yield bot


@contextlib.contextmanager
def operator_online(bot: HandoffBot) -> Iterator[None]:
    """An operator with the console open: a live-updates stream held open, as the console page holds it."""
    connection = http.client.HTTPConnection("127.0.0.1", bot.console_port, timeout=60)
    connection.request("GET", "/api/events", headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"})
    reply = connection.getresponse()
    assert reply.status == 200
    reply.readline()  # the first heartbeat: the operator now counts as online
    stop = threading.Event()

    def drain() -> None:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            while not stop.is_set() and reply.readline():
                pass

    thread = threading.Thread(target=drain, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        connection.close()


def texts(messages: list[dict[str, Any]]) -> list[str]:
    return [message.get("text") or "" for message in messages]
