"""`make run-production` (scripts/run_all.py --production) and its failure drills, on the real services.

One production shape for the whole module — HAProxy, two Rasa replicas, the console's Rasa server and the console,
two action servers, PostgreSQL (a database of its own) and Redis (a database number of its own) — on free ports,
started exactly as `make run-production` starts it, with a per-address limit of ADDRESS_LIMIT messages a minute so
that the drill can pass it. The drills run in this order: routing and the REST token, the per-address limit behind
the proxy, two replicas at once, kill -9 a replica under load, Redis down, then a restart of everything (last: it
stops the shape).
"""
from __future__ import annotations

import concurrent.futures
import http.client
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2
import pytest
import redis

from weiquan.ops.harness import ROOT, free_port, latest_model
from weiquan.ops.supervisor import port_is_free

pytestmark = pytest.mark.e2e
DB = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
REDIS_DB = 9
START_TIMEOUT_S = 900
# The exact command that starts this machine's Redis (/work/.library/env/machines/python-svc.md).
REDIS_START = ["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379", "--save", "",
               "--appendonly", "no", "--dir", "/var/lib/redis", "--logfile", "/var/log/redis/ci.log"]
COMPLAINT = ["淘宝买的，交易成功5天了，卖家天天打电话骂我", "有聊天截图"]
REST_TOKEN = "drill-rest-token-0123456789abcdef"
ADDRESS_LIMIT = 40  # messages per client address and minute, in each replica (LIMIT_RATE_PER_ADDRESS)


def free_block(count: int) -> int:
    for _ in range(200):
        base = free_port()
        if all(port_is_free(base + i) for i in range(count)):
            return base
    raise RuntimeError("no block of free ports")


@dataclass
class Production:
    workdir: Path
    database: str
    public: int = field(default_factory=free_port)
    actions: int = field(default_factory=free_port)
    widget: int = field(default_factory=free_port)
    ready: int = field(default_factory=free_port)
    console: int = field(default_factory=free_port)
    admin: int = field(default_factory=free_port)
    replica_base: int = field(default_factory=lambda: free_block(2))
    action_base: int = field(default_factory=lambda: free_block(2))
    proc: subprocess.Popen | None = None
    starts: int = 0

    @property
    def replicas(self) -> list[int]:
        return [self.replica_base, self.replica_base + 1]

    def output(self) -> str:
        return (self.workdir / f"run{self.starts}.out").read_text(encoding="utf-8", errors="replace")

    def start(self) -> None:
        self.starts += 1
        env = {**os.environ, "PYTHONPATH": str(ROOT), "WECHAT_TOKEN": "", "WECHAT_APP_ID": "", "WECHAT_AES_KEY": "",
               "WECHAT_APP_SECRET": "", "WIDGET_ALLOWED_ORIGINS": f"http://127.0.0.1:{self.widget}",
               "REST_TOKEN": REST_TOKEN, "LIMIT_RATE_PER_ADDRESS": f"{ADDRESS_LIMIT}/60"}
        env.pop("HANDOFF_STORE_URL", None)  # the hand-off store follows DB_* (PostgreSQL), as in production
        args = [sys.executable, "scripts/run_all.py", "--production", "--replicas", "2", "--rasa-port",
                str(self.public), "--action-port", str(self.actions), "--widget-port", str(self.widget),
                "--replica-base", str(self.replica_base), "--action-base", str(self.action_base), "--ready-port",
                str(self.ready), "--console-port", str(self.console), "--admin-port", str(self.admin), "--public-host",
                "127.0.0.1", "--build-dir", str(self.workdir / "build"), "--log-dir", str(self.workdir / "logs"),
                "--db-name", self.database, "--redis-db", str(REDIS_DB)]
        with open(self.workdir / f"run{self.starts}.out", "wb") as out:
            self.proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_S
        while "Ctrl-C stops everything" not in self.output():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("run-production did not come up:\n" + self.output())
            time.sleep(1)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def replica_pid(self, port: int) -> int:
        for pid in Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split():
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"--port" in argv and argv[argv.index(b"--port") + 1] == str(port).encode():
                return int(pid)
        raise LookupError(f"no replica on port {port}")

    def log(self, name: str) -> str:
        return (self.workdir / "logs" / f"{name}.log").read_text(encoding="utf-8", errors="replace")


def post(port: int, sender: str, message: str, path: str = "/webhooks/rest/webhook",
         timeout: float = 60, source: str | None = None, token: str | None = REST_TOKEN) -> tuple[int, object]:
    """One REST message, as the site's backend sends it (with the REST token); `source` is the client's own loopback
    address (127.x.y.z), as if from another machine."""
    body = json.dumps({"sender": sender, "message": message}).encode()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout,
                                            source_address=(source, 0) if source else None)
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    try:
        connection.request("POST", path, body, headers)
        response = connection.getresponse()
        answer = response.read()
        if response.status >= 400:
            return response.status, answer.decode(errors="replace")
        return response.status, json.loads(answer or b"null")
    except (OSError, http.client.HTTPException) as error:
        return 0, str(error)
    finally:
        connection.close()


def get(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=20) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def events(database: str, sender: str) -> list[dict]:
    with psycopg2.connect(dbname=database, **DB) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT data FROM events WHERE sender_id = %s ORDER BY id", (sender,))
        return [json.loads(row[0]) for row in cursor.fetchall()]


def user_texts(database: str, sender: str) -> list[str]:
    return [e.get("text", "") for e in events(database, sender) if e["event"] == "user"]


def turns_do_not_overlap(stored: list[dict]) -> bool:
    """After each user message the bot finishes its turn (action_listen) before the next user message is stored."""
    waiting = False
    for event in stored:
        if event["event"] == "user":
            if waiting:
                return False
            waiting = True
        elif event["event"] == "action" and event.get("name") == "action_listen":
            waiting = False
    return True


def listen_addresses(port: int) -> set[str]:
    """The local addresses on which something listens on `port` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.rsplit(":", 1)
            if state == "0A" and int(hex_port, 16) == port:
                found.add("127.0.0.1" if address == "0100007F" else address)
    return found


def redis_up() -> bool:
    try:
        return bool(redis.Redis(host="127.0.0.1", port=6379, socket_timeout=2).ping())
    except redis.RedisError:
        return False


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Production]:
    latest_model()
    name = f"weiquan_drill_{uuid.uuid4().hex[:8]}"
    shape = Production(workdir=tmp_path_factory.mktemp("production"), database=name)
    shape.start()
    try:
        yield shape
    finally:
        shape.stop()
        admin = psycopg2.connect(dbname="postgres", **DB)
        admin.autocommit = True
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


def test_the_proxy_serves_the_channels_and_hides_rasas_api(production: Production) -> None:
    status, replies = post(production.public, f"route-{uuid.uuid4().hex[:8]}", "你好")
    assert status == 200 and replies, replies
    assert get(production.public, "/socket.io/?EIO=4&transport=polling") == 200
    assert get(production.public, "/webhooks/wechat/webhook?openid=o1&signature=x&timestamp=1&nonce=1") != 404
    for private in ("/", "/status", "/version", "/model", "/conversations/x/tracker", "/model/parse"):
        assert get(production.public, private) == 404, private
    # The replicas, the console's Rasa API, the console and the action servers listen on loopback only.
    for port in (*production.replicas, production.admin, production.console, production.action_base,
                 production.action_base + 1):
        assert listen_addresses(port) == {"127.0.0.1"}, port


def test_rest_through_the_proxy_needs_the_token_and_without_it_nothing_is_said_or_kept(production: Production) -> None:
    """From another machine's address, as anyone on the internet would call it."""
    for token in (None, "", "drill-rest-token-0123456789abcdeX", REST_TOKEN[:-1]):
        sender = f"intruder-{uuid.uuid4().hex[:8]}"
        status, body = post(production.public, sender, "淘宝买的，交易成功5天了，卖家天天打电话骂我",
                            source="127.0.0.99", token=token)
        assert status == 401 and "最晚投诉日" not in str(body) and "证据" not in str(body), (token, body)
        assert events(production.database, sender) == [], "a refused request must leave no conversation"
    sender = f"backend-{uuid.uuid4().hex[:8]}"
    status, replies = post(production.public, sender, "你好", source="127.0.0.99")
    assert status == 200 and replies
    assert user_texts(production.database, sender) == ["你好"]


def test_the_per_address_limit_behind_the_proxy_stops_one_noisy_address_and_no_one_else(
        production: Production) -> None:
    """Buyers from a few addresses (shared office or mobile-carrier addresses) and one noisy address sending more than
    both replicas together allow it. Were the forwarded address ignored, everyone would share HAProxy's address
    and all would be refused; were the limit not applied, the noisy one would never be."""
    quiet = [f"127.0.{40 + n}.1" for n in range(3)]
    noisy = "127.0.50.1"
    refused: dict[str, list[object]] = {address: [] for address in [*quiet, noisy]}
    answered: dict[str, int] = {address: 0 for address in [*quiet, noisy]}
    lock = threading.Lock()

    def buyer(address: str, number: int) -> None:
        sender = f"quiet-{number}-{uuid.uuid4().hex[:8]}"
        for text in COMPLAINT:
            status, body = post(production.public, sender, text, source=address)
            with lock:
                if status == 200:
                    answered[address] += 1
                else:
                    refused[address].append((status, body))

    def noisy_client(number: int) -> None:
        for _ in range(ADDRESS_LIMIT * 2 // 4 + 10):  # more than both replicas allow in all, over 4 threads
            status, body = post(production.public, f"noisy-{number}-{uuid.uuid4().hex[:8]}", "你好", source=noisy)
            with lock:
                if status == 200:
                    answered[noisy] += 1
                else:
                    refused[noisy].append((status, body))

    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        futures = [pool.submit(noisy_client, n) for n in range(4)]
        futures += [pool.submit(buyer, address, n) for n in range(8) for address in quiet]
        for future in futures:
            future.result()
    for address in quiet:
        assert refused[address] == [] and answered[address] == 8 * len(COMPLAINT), (address, refused[address])
    assert refused[noisy], "the noisy address was never limited"
    assert all(status == 429 and "per address" in str(body) for status, body in refused[noisy]), refused[noisy][:3]
    assert answered[noisy] <= 2 * ADDRESS_LIMIT  # at most the setting in each replica


def test_one_conversation_sticks_to_one_replica(production: Production) -> None:
    sender = f"sticky-{uuid.uuid4().hex[:8]}"
    before = production.log("proxy").count("rest_replicas/")
    for text in ("你好", "你是机器人吗", "谢谢", "再见"):
        assert post(production.public, sender, text)[0] == 200
    def routed() -> list[str]:
        return [line for line in production.log("proxy").splitlines() if "rest_replicas/" in line][before:]

    deadline = time.monotonic() + 5  # HAProxy writes a request's line when its connection ends, a moment later
    while len(routed()) < 4 and time.monotonic() < deadline:
        time.sleep(0.1)
    lines = routed()
    servers = {line.split("rest_replicas/")[1].split()[0] for line in lines}
    assert len(lines) == 4 and len(servers) == 1, lines


def test_messages_at_two_replicas_at_once_are_handled_one_turn_at_a_time(production: Production) -> None:
    sender = f"both-{uuid.uuid4().hex[:8]}"
    rounds = [("你好", "谢谢"), ("你是机器人吗", "再见"), ("你好呀", "谢谢你"), ("在吗", "好的谢谢")]
    for first, second in rounds:
        barrier = threading.Barrier(2)

        def send(port: int, text: str, barrier: threading.Barrier = barrier) -> int:
            barrier.wait()
            return post(port, sender, text)[0]

        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            results = list(pool.map(send, production.replicas, (first, second)))
        assert results == [200, 200]
    stored = events(production.database, sender)
    texts = [e["text"] for e in stored if e["event"] == "user"]
    assert sorted(texts) == sorted(text for pair in rounds for text in pair)  # none lost, none twice
    assert turns_do_not_overlap(stored), [(e["event"], e.get("name") or e.get("text")) for e in stored]


def test_kill_9_of_a_replica_under_load_loses_and_doubles_nothing(production: Production) -> None:
    victim = production.replica_pid(production.replicas[0])
    results: list[tuple[str, str, int, float, float]] = []
    stop_at = time.monotonic() + 14
    kill_at: list[float] = []
    conversations = itertools.count()

    def user(number: int) -> None:
        while time.monotonic() < stop_at:
            sender = f"kill-{number}-{uuid.uuid4().hex[:8]}"
            conversation = next(conversations)
            for text in COMPLAINT:
                began = time.monotonic()
                # Each conversation from an address of its own: the rate limits (ADDRESS_LIMIT per address a minute)
                # see it only through HAProxy's X-Forwarded-For; were it HAProxy's own address, these buyers would
                # share one budget and get 429s.
                status, _ = post(production.public, sender, text,
                                 source=f"127.1.{conversation // 250}.{conversation % 250 + 1}")
                results.append((sender, text, status, began, time.monotonic()))
                if status != 200:
                    break  # a real client would retry later; the conversation stops here

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(user, n) for n in range(8)]
        time.sleep(4)
        kill_at.append(time.monotonic())
        os.kill(victim, signal.SIGKILL)
        for future in futures:
            future.result()
    failed = [r for r in results if r[2] != 200]
    # Errors only for requests that were in flight when the replica died. Dying takes a moment: a connection the
    # kernel accepted on the replica's socket in the milliseconds after the signal is in flight too (it is reset),
    # so "in flight" is "overlaps the half second after the kill"; nothing that starts later may fail.
    dying = (kill_at[0], kill_at[0] + 0.5)
    assert all(r[3] < dying[1] and r[4] > dying[0] for r in failed), (kill_at, failed)
    assert len(failed) <= 8
    assert len([r for r in results if r[2] == 200 and r[3] > kill_at[0]]) > 10  # the other replica took over
    for sender in {r[0] for r in results}:
        stored = user_texts(production.database, sender)
        answered = [r[1] for r in results if r[0] == sender and r[2] == 200]
        assert len(stored) == len(set(stored)), (sender, stored)  # nothing doubled
        assert all(text in stored for text in answered), (sender, stored, answered)  # nothing answered is lost
    # The supervisor brings the killed replica back while the other one serves.
    deadline = time.monotonic() + 600
    while "rasa1 is back" not in production.output():
        assert time.monotonic() < deadline, production.output()
        time.sleep(2)


def test_redis_down_is_clear_logged_and_recovered(production: Production) -> None:
    sender = f"redis-{uuid.uuid4().hex[:8]}"
    assert post(production.public, sender, "你好")[0] == 200
    subprocess.run(["redis-cli", "-p", "6379", "shutdown", "nosave"], check=False, capture_output=True)
    try:
        deadline = time.monotonic() + 10
        while redis_up() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not redis_up()
        status, body = post(production.public, sender, "谢谢", timeout=30)
        # Never silent: an HTTP error the client sees, or a polite reply.
        assert status >= 500 or (status == 200 and body), (status, body)
        logs = production.log("rasa1") + production.log("rasa2")
        assert "lock_store.unavailable" in logs
        assert production.proc.poll() is None
    finally:
        if not redis_up():
            subprocess.run(REDIS_START, check=True)
        deadline = time.monotonic() + 20
        while not redis_up() and time.monotonic() < deadline:
            time.sleep(0.2)
    assert redis_up()
    status, replies = post(production.public, sender, "谢谢")
    assert status == 200 and replies, (status, replies)  # recovered without a restart
    assert "谢谢" in user_texts(production.database, sender)


def test_restart_everything_and_conversations_resume(production: Production) -> None:
    sender = f"resume-{uuid.uuid4().hex[:8]}"
    status, replies = post(production.public, sender, COMPLAINT[0])
    assert status == 200 and any("证据" in (r.get("text") or "") for r in replies), replies
    production.stop()
    for port in (production.public, *production.replicas, production.widget):
        assert port_is_free(port), port
    production.start()
    status, replies = post(production.public, sender, COMPLAINT[1])
    assert status == 200, replies
    assert any("最晚投诉日" in (r.get("text") or "") for r in replies), replies  # the form picked up where it was
