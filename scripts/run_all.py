"""`make run`: start the action server, the Rasa server, the widget page and the operator console, print the URLs,
stop all on Ctrl-C.

A supervisor in Python rather than a shell `trap`: background jobs of a non-interactive shell ignore SIGINT, so a
trap-based recipe left servers running after Ctrl-C.
"""
from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from wait_ready import wait_all

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def start(args: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    handle = open(log, "ab")  # noqa: SIM115 - lives as long as the process
    return subprocess.Popen(args, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True, env=env)


def stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rasa-port", type=int, default=5005)
    parser.add_argument("--action-port", type=int, default=5055)
    parser.add_argument("--widget-port", type=int, default=8080)
    parser.add_argument("--endpoints", default="endpoints.yml")
    parser.add_argument("--console-port", type=int, default=8090)
    options = parser.parse_args()
    # Hand-off (docs/handoff.md): Rasa's HTTP API is on, with a token, for the operator console only; the console
    # wants its own token. Both are generated for this run unless set.
    operator_token = os.environ.get("OPERATOR_TOKEN") or secrets.token_urlsafe(24)
    rasa_token = os.environ.get("RASA_API_TOKEN") or secrets.token_urlsafe(24)
    console_env = {**os.environ, "OPERATOR_TOKEN": operator_token, "RASA_API_TOKEN": rasa_token}

    logs = ROOT / "var"
    logs.mkdir(exist_ok=True)
    rasa_url = f"http://localhost:{options.rasa_port}"
    procs = [
        start([str(BIN / "rasa"), "run", "actions", "--port", str(options.action_port)], logs / "actions.log"),
        # Loopback only, like the widget page and the console: the API is on. A public host puts a proxy in front
        # that forwards /webhooks/ and /socket.io/ only (docs/handoff.md).
        start([str(BIN / "rasa"), "run", "--port", str(options.rasa_port), "-i", "127.0.0.1", "--credentials",
               "credentials.yml", "--endpoints", options.endpoints, "--enable-api", "--auth-token", rasa_token],
              logs / "rasa.log"),
        start([sys.executable, "scripts/serve_widget.py", "--port", str(options.widget_port), "--server", rasa_url],
              logs / "widget.log"),
        start([sys.executable, "-m", "weiquan.handoff.console", "--port", str(options.console_port), "--rasa-url",
               f"http://127.0.0.1:{options.rasa_port}"], logs / "console.log", env=console_env),
    ]
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started from a shell that ignores it
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        ready = [f"http://localhost:{options.action_port}/health", f"{rasa_url}/webhooks/rest/",
                 f"http://localhost:{options.widget_port}/", f"http://localhost:{options.console_port}/healthz"]
        if wait_all(ready) != 0:
            return 1
        print(f"\n  Web chat widget : http://localhost:{options.widget_port}/")
        print(f"  REST channel    : POST {rasa_url}/webhooks/rest/webhook")
        print(f"  WeChat webhook  : {rasa_url}/webhooks/wechat/webhook (live when WECHAT_TOKEN is set)")
        print(f"  Action server   : http://localhost:{options.action_port}/webhook")
        print(f"  Operator console: http://localhost:{options.console_port}/#token={operator_token}")
        print(f"                    token {operator_token}"
              + ("" if os.environ.get("OPERATOR_TOKEN") else " (generated for this run; set OPERATOR_TOKEN to fix it)"))
        print("  Logs            : var/*.log — press Ctrl-C to stop\n", flush=True)
        while all(proc.poll() is None for proc in procs):
            time.sleep(1)
        print("a server stopped; see var/*.log", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stop(procs)
        print("stopped.")


if __name__ == "__main__":
    sys.exit(main())
