"""`make run`'s supervisor (scripts/run_all.py): a crashed server comes back while the others keep serving, and a stop
always frees every port — also when the stop signal arrives twice.

The supervisor runs exactly as `make run` starts it, on free ports and with its logs in a temporary folder.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from weiquan.ops.harness import ROOT, free_port, latest_model
from weiquan.ops.supervisor import port_is_free

pytestmark = pytest.mark.e2e
START_TIMEOUT_S = 300


@dataclass
class Run:
    proc: subprocess.Popen
    ports: dict[str, int]
    log_dir: Path
    output: Path

    def text(self) -> str:
        return self.output.read_text(encoding="utf-8", errors="replace")

    def service_pid(self, name: str) -> int:
        """The pid of one supervised server, read from /proc: the child of the supervisor running that server."""
        needle = {"actions": "actions", "rasa": "--credentials", "widget": "serve_widget.py"}[name]
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if int(stat[1]) == self.proc.pid and needle in cmdline:
                return int(entry.name)
        raise LookupError(f"no {name} process under supervisor {self.proc.pid}")


def rest(port: int, message: str, sender: str) -> list[dict]:
    body = json.dumps({"sender": sender, "message": message}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/webhooks/rest/webhook", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def wait_for(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise TimeoutError(what)


def start_run(tmp_path: Path) -> Run:
    latest_model()  # fails clearly when there is no model
    ports = {"rasa": free_port(), "actions": free_port(), "widget": free_port(), "console": free_port()}
    output = tmp_path / "run.out"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WECHAT_TOKEN": "", "WECHAT_APP_ID": "", "WECHAT_AES_KEY": "",
           "WECHAT_APP_SECRET": "", "WIDGET_ALLOWED_ORIGINS": f"http://127.0.0.1:{ports['widget']}"}
    env.pop("RASA_API_TOKEN", None)
    with open(output, "wb") as handle:
        proc = subprocess.Popen(
            [sys.executable, "scripts/run_all.py", "--rasa-port", str(ports["rasa"]), "--action-port",
             str(ports["actions"]), "--widget-port", str(ports["widget"]), "--console-port", str(ports["console"]),
             "--log-dir", str(tmp_path / "logs")],
            cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT)
    run = Run(proc, ports, tmp_path / "logs", output)
    try:
        wait_for(lambda: "Ctrl-C stops everything" in run.text() or proc.poll() is not None, START_TIMEOUT_S,
                 "make run did not come up")
    except TimeoutError:
        proc.kill()
        raise
    assert proc.poll() is None, run.text()
    return run


def stop_run(run: Run, signals: int = 1) -> int:
    for _ in range(signals):
        if run.proc.poll() is None:
            run.proc.send_signal(signal.SIGTERM)
            time.sleep(0.3)
    try:
        return run.proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        run.proc.kill()
        raise


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Run]:
    run = start_run(tmp_path)
    try:
        yield run
    finally:
        if run.proc.poll() is None:
            stop_run(run)


def test_a_killed_action_server_comes_back_and_rest_keeps_answering(running: Run) -> None:
    sender = f"sup-{uuid.uuid4().hex[:8]}"
    assert rest(running.ports["rasa"], "你好", sender)
    old = running.service_pid("actions")
    os.kill(old, signal.SIGKILL)
    # While the action server is down, the Rasa server and the widget page still answer.
    assert rest(running.ports["rasa"], "你好", sender)
    with urllib.request.urlopen(f"http://127.0.0.1:{running.ports['widget']}/", timeout=10) as page:
        assert page.status == 200
    wait_for(lambda: "actions is back" in running.text(), 120, "the action server was not restarted")
    assert running.service_pid("actions") != old
    assert "restart #1" in running.text()
    # A turn that needs the action server works again: a FAQ answer comes from a custom action.
    replies = rest(running.ports["rasa"], "过了15天还能投诉吗", sender)
    assert any("小二" in reply.get("text", "") for reply in replies), replies


@pytest.mark.parametrize("signals", [1, 2], ids=["SIGTERM", "SIGTERM twice"])
def test_a_stop_frees_every_port(tmp_path: Path, signals: int) -> None:
    run = start_run(tmp_path)
    pids = [run.service_pid(name) for name in ("actions", "rasa", "widget")]
    stop_run(run, signals)
    for name in ("rasa", "actions", "widget"):
        assert port_is_free(run.ports[name]), f"{name} still holds port {run.ports[name]}"
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
    assert "stopped." in run.text()
