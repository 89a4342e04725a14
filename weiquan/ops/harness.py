"""The server harness the end-to-end tests and the scripts share: the real action server and Rasa server, started
as `make run` starts them, on free loopback ports.

Needs a trained model in models/ (`make train`). Conversations are kept in a throw-away SQLite file so a test can
restart the Rasa server and find the history again. tests/e2e/conftest.py turns it into fixtures; scripts/ (the
screenshots) use it directly: no script imports tests/.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
RASA = str(Path(sys.executable).with_name("rasa"))
START_TIMEOUT_S = int(os.environ.get("E2E_START_TIMEOUT_S", "240"))  # raise it on a loaded machine

# Channel settings the servers see in end-to-end tests (public test values, never real secrets).
WECHAT_TOKEN = "e2e-token"
WECHAT_APP_ID = "wx0123456789abcdef"
WECHAT_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"  # 43 characters, as WeChat issues them
WECHAT_APP_SECRET = "e2e-secret"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout_s: float, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(1)
    raise TimeoutError(f"{url} did not answer within {timeout_s} s")


def latest_model() -> Path:
    models = sorted((ROOT / "models").glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)
    if not models:
        raise FileNotFoundError("no trained model in models/: run `make train` (make test does it for you)")
    return models[-1]


@dataclass
class Bot:
    """Handles on the two running servers; `url` is the Rasa server's base URL."""

    workdir: Path
    rasa_port: int = field(default_factory=free_port)
    action_port: int = field(default_factory=free_port)
    widget_port: int = field(default_factory=free_port)  # reserved for the widget page, allowed as an origin
    endpoints: Path | None = None  # default: SQLite in workdir; give endpoints.production.yml to test PostgreSQL/Redis
    extra_env: dict[str, str] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    rasa_args: list[str] = field(default_factory=list)  # e.g. ["--debug"]
    action_args: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.rasa_port}"

    @property
    def widget_url(self) -> str:
        return f"http://127.0.0.1:{self.widget_port}"

    def env(self) -> dict[str, str]:
        origins = f"http://127.0.0.1:{self.widget_port} http://localhost:{self.widget_port}"
        env = {
            **os.environ,
            "WECHAT_TOKEN": WECHAT_TOKEN,
            "WECHAT_APP_ID": WECHAT_APP_ID,
            "WECHAT_AES_KEY": WECHAT_AES_KEY,
            "WECHAT_APP_SECRET": WECHAT_APP_SECRET,
            "WIDGET_ALLOWED_ORIGINS": origins,
            "PYTHONPATH": str(ROOT),
            "ACTION_ENDPOINT_URL": f"http://127.0.0.1:{self.action_port}/webhook",
            # The hand-off store and the operator outbox: the test's own SQLite file (never the checkout's var/), or
            # PostgreSQL from DB_* when the test gives the production settings.
            "HANDOFF_STORE_URL": f"sqlite:///{self.workdir / 'handoff.db'}",
            **self.extra_env,
        }
        if "DB_HOST" in self.extra_env and "HANDOFF_STORE_URL" not in self.extra_env:
            del env["HANDOFF_STORE_URL"]
        return env

    def write_endpoints(self) -> Path:
        """The project's endpoints.yml (the same stores and settings `make run` uses), pointed at this test's ports
        and throw-away SQLite files."""
        if self.endpoints is not None:
            return self.endpoints
        endpoints = yaml.safe_load((ROOT / "endpoints.yml").read_text(encoding="utf-8"))
        endpoints["action_endpoint"]["url"] = f"http://127.0.0.1:{self.action_port}/webhook"
        endpoints["tracker_store"]["db"] = str(self.workdir / "tracker.db")
        if "event_broker" in endpoints:  # the analytics store, too, is this test's own, never the checkout's var/
            endpoints["event_broker"]["db"] = str(self.workdir / "analytics.db")
        path = self.workdir / "endpoints.yml"
        path.write_text(yaml.safe_dump(endpoints, allow_unicode=True), encoding="utf-8")
        return path

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(args, cwd=ROOT, env=self.env(), stdout=log, stderr=subprocess.STDOUT)
        self.procs[name] = proc
        return proc

    def start_actions(self) -> None:
        proc = self._spawn("actions", [RASA, "run", "actions", "--port", str(self.action_port), *self.action_args])
        wait_http(f"http://127.0.0.1:{self.action_port}/health", START_TIMEOUT_S, proc)

    def start_rasa(self) -> None:
        # As `make run` starts it: `rasa run` through weiquan.ops.serve (docs/deploy.md).
        args = [sys.executable, "-m", "weiquan.ops.serve", "run", "-m", str(latest_model()),
                "--port", str(self.rasa_port), "-i", "127.0.0.1",
                "--credentials", "credentials.yml", "--endpoints", str(self.write_endpoints()), *self.rasa_args]
        proc = self._spawn("rasa", args)
        wait_http(f"{self.url}/webhooks/rest/", START_TIMEOUT_S, proc)

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()

    def restart_rasa(self) -> None:
        self.stop("rasa")
        self.start_rasa()

    def log(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text(encoding="utf-8", errors="replace")


def running_bot(bot: Bot) -> Iterator[Bot]:
    try:
        bot.start_actions()
        bot.start_rasa()
        yield bot
    finally:
        for name in list(bot.procs):
            bot.stop(name)
