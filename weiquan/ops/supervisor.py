"""A small process supervisor for `make run` and `make run-production`.

Why our own and not honcho or supervisord (both on PyPI): honcho's model is "one process exits, stop them all" — the
very behaviour issue 12 asks to remove — and it has no restart. supervisord restarts, but with a fixed delay and a
retry limit after which the program stays FATAL, it needs its own ini file and a control socket, and it adds a
daemon to the project. What we need fits in this file: a declarative table of services, restart with exponential
back-off while the others keep serving, readiness with progress, and a stop that always completes.

Stopping, the rules:
- every service runs in its own process group (so Ctrl-C in the terminal reaches only the supervisor, and a stop
  reaches the service's children too); the kernel kills it if the supervisor itself dies (PR_SET_PDEATHSIG);
- the signal handlers never raise and never call sys.exit: they only set flags, so cleanup cannot be cut short;
- first SIGINT/SIGTERM: SIGTERM to every group, up to `grace_s` to exit, then SIGKILL;
- a second signal during shutdown: SIGKILL at once, and the wait goes on until every process has exited;
- finally every declared port is checked and any that is still taken is reported.
"""
from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

PR_SET_PDEATHSIG = 1


SECRET_OPTIONS = ("--auth-token", "--jwt-secret")  # Rasa's API token: in no log line (docs/security.md)


def printable(argv: list[str]) -> str:
    """A command line as the log shows it: the values of SECRET_OPTIONS replaced by ***."""
    shown: list[str] = []
    hide_next = False
    for arg in argv:
        name, equals, _ = arg.partition("=")
        if hide_next:
            shown.append("***")
        elif name in SECRET_OPTIONS and equals:
            shown.append(f"{name}=***")
        else:
            shown.append(arg)
        hide_next = not hide_next and arg in SECRET_OPTIONS
    return " ".join(shown)


@dataclass
class Service:
    """One row of the table: what to run, how to tell it is ready, which port it holds."""

    name: str
    argv: list[str]
    ready_url: str | None = None  # polled until it answers (any HTTP status below 500)
    port: int | None = None  # must be free before start and is checked after stop
    env: dict[str, str] = field(default_factory=dict)
    note: str = ""  # what it does while starting, shown in the progress line
    restart: bool = True


@dataclass
class _Running:
    service: Service
    proc: subprocess.Popen | None = None
    started_at: float = 0.0
    ready: bool = False
    restarts: int = 0
    next_start: float = 0.0  # when a crashed service may start again (back-off)


def _die_with_parent() -> None:  # runs in the child between fork and exec
    os.setsid()
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def answers(url: str, timeout_s: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s):
            return True
    except urllib.error.HTTPError as error:
        return error.code < 500
    except OSError:
        return False


class Supervisor:
    BACKOFF_START_S = 1.0
    BACKOFF_MAX_S = 30.0
    STABLE_AFTER_S = 60.0  # a service up this long has its back-off reset

    def __init__(self, services: Sequence[Service], log_dir: Path, cwd: Path, env: Mapping[str, str],
                 grace_s: float = 20.0, out: Callable[[str], None] | None = None) -> None:
        self.rows = [_Running(service) for service in services]
        self.env = dict(env)  # what every child starts from (the launcher's environment), plus its own settings
        self.log_dir = log_dir
        self.cwd = cwd
        self.grace_s = grace_s
        self.out = out or (lambda line: print(line, flush=True))
        self.signals = 0
        self.timings_file = log_dir / "startup-times.json"

    # ----------------------------------------------------------------------------------------------- signals
    def _on_signal(self, signum: int, _frame: object) -> None:
        self.signals += 1
        if self.signals == 1:
            self.out(f"\n{signal.Signals(signum).name}: stopping every server …")
        else:
            self.out(f"{signal.Signals(signum).name} again: killing what is left")
            self._kill_all(signal.SIGKILL)

    def install_signal_handlers(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, self._on_signal)

    # ----------------------------------------------------------------------------------------------- processes
    def _start(self, row: _Running) -> None:
        service = row.service
        log = open(self.log_dir / f"{service.name}.log", "ab")  # noqa: SIM115 - handed to the child
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} start {printable(service.argv)}\n".encode())
        log.flush()
        row.proc = subprocess.Popen(service.argv, cwd=self.cwd, env={**self.env, **service.env}, stdout=log,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    preexec_fn=_die_with_parent)  # noqa: PLW1509
        log.close()
        row.started_at = time.monotonic()
        row.ready = False

    def _signal_group(self, row: _Running, signum: int) -> None:
        if row.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(row.proc.pid, signum)

    def _kill_all(self, signum: int) -> None:
        for row in self.rows:
            if row.proc is not None and row.proc.poll() is None:
                self._signal_group(row, signum)

    def stop_all(self) -> list[str]:
        """Stop every service; return the ports still taken afterwards (should be none)."""
        self._kill_all(signal.SIGTERM)
        deadline = time.monotonic() + self.grace_s
        while any(row.proc is not None and row.proc.poll() is None for row in self.rows):
            if time.monotonic() > deadline:
                self.out(f"still running after {self.grace_s:.0f} s: killing")
                self._kill_all(signal.SIGKILL)
                deadline = time.monotonic() + 3600
            time.sleep(0.1)
        for row in self.rows:  # children of a service that outlived it (same process group)
            self._signal_group(row, signal.SIGKILL)
        taken: list[str] = []
        for row in self.rows:
            port = row.service.port
            if port is None:
                continue
            for _ in range(50):  # the kernel may need a moment to release a listening socket
                if port_is_free(port):
                    break
                time.sleep(0.1)
            else:
                taken.append(f"{row.service.name}:{port}")
        return taken

    # ----------------------------------------------------------------------------------------------- start-up
    def _timings(self) -> dict[str, float]:
        try:
            return json.loads(self.timings_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def _record_timing(self, name: str, seconds: float) -> None:
        timings = self._timings()
        timings[name] = round(seconds, 1)
        self.timings_file.write_text(json.dumps(timings, indent=1, sort_keys=True), encoding="utf-8")

    def check_ports(self) -> list[str]:
        return [f"{row.service.name} needs port {row.service.port}, which another process holds"
                for row in self.rows if row.service.port is not None and not port_is_free(row.service.port)]

    def start_all(self, timeout_s: float = 420.0) -> bool:
        """Start everything and wait until every service answers, printing progress. False if stopped or failed."""
        timings = self._timings()
        for row in self.rows:
            self._start(row)
            last = timings.get(row.service.name)
            hint = f"last start took {last:.0f} s" if last else "first start: no timing yet"
            self.out(f"  starting {row.service.name:<10} {row.service.note} ({hint})")
        began = time.monotonic()
        next_report = began + 10
        while not self.signals:
            pending = [(row, row.service.ready_url) for row in self.rows if row.service.ready_url and not row.ready]
            for row, url in pending:
                if row.proc is not None and row.proc.poll() is not None:
                    self.out(f"  {row.service.name} exited with {row.proc.returncode} while starting; "
                             f"see {self.log_dir.name}/{row.service.name}.log")
                    return False
                if url and answers(url, timeout_s=1.0):
                    row.ready = True
                    took = time.monotonic() - row.started_at
                    self._record_timing(row.service.name, took)
                    self.out(f"  ready    {row.service.name:<10} after {took:.0f} s")
            if not [row for row in self.rows if row.service.ready_url and not row.ready]:
                return True
            now = time.monotonic()
            if now > began + timeout_s:
                self.out(f"  gave up after {timeout_s:.0f} s; see {self.log_dir.name}/*.log")
                return False
            if now >= next_report:
                waiting = ", ".join(row.service.name for row in self.rows if row.service.ready_url and not row.ready)
                self.out(f"  … {now - began:.0f} s, still starting: {waiting}")
                next_report = now + 10
            time.sleep(0.5)
        return False

    # ----------------------------------------------------------------------------------------------- watching
    def watch(self, poll_s: float = 0.5) -> None:
        """Restart crashed services with exponential back-off until a signal arrives."""
        while not self.signals:
            now = time.monotonic()
            for row in self.rows:
                proc = row.proc
                if proc is not None and proc.poll() is None:
                    if not row.ready and row.service.ready_url and answers(row.service.ready_url, 0.5):
                        row.ready = True
                        self.out(f"{row.service.name} is back after {now - row.started_at:.0f} s")
                    if row.restarts and now - row.started_at > self.STABLE_AFTER_S:
                        row.restarts = 0
                    continue
                if proc is not None:  # it just died
                    self._signal_group(row, signal.SIGKILL)  # its children go with it
                    row.proc = None
                    if not row.service.restart:
                        continue
                    delay = min(self.BACKOFF_MAX_S, self.BACKOFF_START_S * 2 ** row.restarts)
                    row.restarts += 1
                    row.next_start = now + delay
                    self.out(f"{row.service.name} exited with {proc.returncode}; restart #{row.restarts} in "
                             f"{delay:.0f} s (the others keep serving; see {self.log_dir.name}/{row.service.name}.log)")
                elif row.service.restart and now >= row.next_start and not self.signals:
                    self._start(row)
            time.sleep(poll_s)

    def run(self, banner: Callable[[], None] | None = None) -> int:
        """Start, print the banner, watch; stop everything however we leave. Returns the exit code."""
        self.install_signal_handlers()
        problems = self.check_ports()
        if problems:
            for problem in problems:
                self.out(problem)
            return 1
        code = 0
        try:
            if self.start_all():
                if banner:
                    banner()
                self.watch()
            elif not self.signals:
                code = 1
        finally:
            taken = self.stop_all()
            if taken:
                self.out(f"ports still taken after stopping: {', '.join(taken)}")
                code = code or 1
            self.out("stopped.")
        return code
