"""`make run` and `make run-production`: start every server from one table, print the URLs, restart what crashes,
stop everything on Ctrl-C / SIGTERM (weiquan/ops/supervisor.py explains how). `make run` includes the operator
console (docs/handoff.md).

The tables below are the one place that says which processes run. To add a process, add a row.
"""
from __future__ import annotations

import argparse
import os
import secrets
import shutil
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from weiquan.ops.supervisor import Service, Supervisor  # noqa: E402

BIN = Path(sys.executable).parent
RASA = str(BIN / "rasa")
MODEL = "models/weiquan.tar.gz"
PRIVATE = {"SANIC_HOST": "127.0.0.1"}  # the action server listens on loopback only (rasa_sdk reads SANIC_HOST)


def run_endpoints(source: Path, action_url: str, target: Path) -> Path:
    """endpoints.yml with the action server's URL for the ports of this run (the file itself says 5055)."""
    endpoints = yaml.safe_load(source.read_text(encoding="utf-8"))
    endpoints["action_endpoint"]["url"] = action_url
    target.write_text(yaml.safe_dump(endpoints, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return target


def local_table(o: argparse.Namespace) -> list[Service]:
    """`make run`: one of each, SQLite tracker store, in-memory lock store. Needs neither PostgreSQL nor Redis."""
    rasa_url = f"http://127.0.0.1:{o.rasa_port}"
    endpoints = run_endpoints(ROOT / o.endpoints, f"http://127.0.0.1:{o.action_port}/webhook",
                              ROOT / "var" / "endpoints.run.yml")
    # Hand-off (docs/handoff.md): Rasa's HTTP API is on, with a token, for the operator console only, so Rasa listens
    # on loopback; a public host puts a proxy in front (make run-production). Both tokens are generated unless set.
    # "--auth-token=…" in one word: a generated token may start with "-", which argparse would take for an option.
    rasa_args = ["--port", str(o.rasa_port), "-i", "127.0.0.1", "--credentials", "credentials.yml", "--endpoints",
                 str(endpoints), "--enable-api", f"--auth-token={o.rasa_token}"]
    tokens = {"OPERATOR_TOKEN": o.operator_token, "RASA_API_TOKEN": o.rasa_token}
    return [
        Service("actions", [RASA, "run", "actions", "--port", str(o.action_port)], port=o.action_port, env=PRIVATE,
                ready_url=f"http://127.0.0.1:{o.action_port}/health", note="action server: rule data, calendar"),
        Service("rasa", [sys.executable, "-m", "weiquan.ops.serve", "run", "-m", MODEL, *rasa_args],
                port=o.rasa_port, ready_url=f"{rasa_url}/webhooks/rest/",
                note="Rasa: imports TensorFlow, loads the model"),
        Service("widget", [sys.executable, "scripts/serve_widget.py", "--port", str(o.widget_port),
                           "--server", f"http://localhost:{o.rasa_port}",
                           "--feedback-url", f"http://localhost:{o.console_port}/feedback"], port=o.widget_port,
                ready_url=f"http://127.0.0.1:{o.widget_port}/", note="widget page"),
        Service("console", [sys.executable, "-m", "weiquan.handoff.console", "--port", str(o.console_port),
                            "--rasa-url", rasa_url], port=o.console_port, env=tokens,
                ready_url=f"http://127.0.0.1:{o.console_port}/healthz", note="operator console"),
    ]


def local_banner(o: argparse.Namespace) -> None:
    rasa_url = f"http://localhost:{o.rasa_port}"
    print(f"\n  Web chat widget : http://localhost:{o.widget_port}/")
    print(f"  REST channel    : POST {rasa_url}/webhooks/rest/webhook")
    print(f"  WeChat webhook  : {rasa_url}/webhooks/wechat/webhook (live when WECHAT_TOKEN is set)")
    print(f"  Action server   : http://localhost:{o.action_port}/webhook")
    print(f"  Operator console: http://localhost:{o.console_port}/#token={o.operator_token}")
    print(f"                    token {o.operator_token}"
          + ("" if os.environ.get("OPERATOR_TOKEN") else " (generated for this run; set OPERATOR_TOKEN to fix it)"))
    print("  Logs            : var/*.log — a crashed server is restarted; Ctrl-C stops everything\n", flush=True)


def check_stores(o: argparse.Namespace) -> list[str]:
    """PostgreSQL (the database is created when missing) and Redis must answer before any Rasa replica starts."""
    import psycopg2
    import redis
    from psycopg2 import sql

    problems = []
    try:
        admin = psycopg2.connect(host=o.db_host, port=o.db_port, user=o.db_user, dbname="postgres", connect_timeout=3)
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (o.db_name,))
            if cursor.fetchone() is None:
                cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(o.db_name)))
                print(f"  created PostgreSQL database {o.db_name}")
        admin.close()
    except psycopg2.Error as error:
        problems.append(f"PostgreSQL at {o.db_host}:{o.db_port} does not answer: {str(error).strip()}")
    try:
        redis.Redis(host=o.redis_host, port=o.redis_port, socket_timeout=3).ping()
    except redis.RedisError as error:
        problems.append(f"Redis at {o.redis_host}:{o.redis_port} does not answer: {error}")
    return problems


def haproxy_config(o: argparse.Namespace, target: Path) -> Path:
    """build/haproxy.cfg from deploy/haproxy.cfg.tmpl for this run's ports."""
    replicas = [o.replica_base + i for i in range(o.replicas)]
    actions = [o.action_base + i for i in range(o.action_servers)]

    def servers(ports: list[int], prefix: str, cookie: bool = False, track: str = "") -> str:
        # A backend that `track`s another shares its health checks: a replica is up or down for every route at once,
        # so /ready (which counts the REST backend) also means the widget and WeChat routes have their servers.
        health = (lambda name: f"track {track}/{name}") if track else (lambda name: "check")
        return "\n".join(f"    server {prefix}{i + 1} 127.0.0.1:{port} {health(f'{prefix}{i + 1}')}"
                         + (f" cookie r{i + 1}" if cookie else "") for i, port in enumerate(ports))

    text = (ROOT / "deploy" / "haproxy.cfg.tmpl").read_text(encoding="utf-8")
    for key, value in {
        "${PUBLIC_BIND}": f"{o.public_host}:{o.rasa_port}",
        "${ACTIONS_BIND}": f"127.0.0.1:{o.action_port}",
        "${READY_BIND}": f"127.0.0.1:{o.ready_port}",
        "${REPLICAS}": str(o.replicas),
        "${ACTION_COUNT}": str(o.action_servers),
        "${REST_SERVERS}": servers(replicas, "rasa"),
        "${WECHAT_SERVERS}": servers(replicas, "rasa", track="rest_replicas"),
        "${WIDGET_SERVERS}": servers(replicas, "rasa", cookie=True, track="rest_replicas"),
        "${ACTION_SERVERS}": servers(actions, "actions"),
    }.items():
        text = text.replace(key, value)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return target


def production_table(o: argparse.Namespace) -> list[Service]:
    """`make run-production`: the several-machine shape on one machine (deploy/topology.yml; docs/deploy.md).

    HAProxy on the public port routes by conversation to REPLICAS Rasa servers (loopback only), which keep
    conversations in PostgreSQL, take per-conversation locks in Redis, share socket.io rooms through Redis, and call
    ACTION_SERVERS action servers through HAProxy's private loopback frontend. The operator console talks to one more
    Rasa server, `rasa-admin`, whose HTTP API (token required) is on loopback and behind no proxy. REST needs
    REST_TOKEN (generated for the run unless set).
    """
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    config = haproxy_config(o, ROOT / o.build_dir / "haproxy.cfg")
    database = {"DB_HOST": o.db_host, "DB_PORT": str(o.db_port), "DB_NAME": o.db_name, "DB_USER": o.db_user,
                "DB_PASSWORD": os.environ.get("DB_PASSWORD", "")}
    redis = {"REDIS_HOST": o.redis_host, "REDIS_PORT": str(o.redis_port), "REDIS_DB": str(o.redis_db),
             "WIDGET_REDIS_URL": f"redis://{o.redis_host}:{o.redis_port}/{o.redis_db}"}
    channels = {"ACTION_ENDPOINT_URL": f"http://127.0.0.1:{o.action_port}/webhook",
                "SANIC_PROXIES_COUNT": "1",  # the client address from HAProxy's forwardfor
                "REST_TOKEN": o.rest_token}
    analytics = {"RABBITMQ_URL": os.environ.get("RABBITMQ_URL") or "amqp://guest:guest@127.0.0.1:5672/"}
    rasa_env = {**database, **redis, **channels, **analytics}

    def rasa(name: str, port: int, *api: str, env: dict[str, str] | None = None) -> Service:
        return Service(
            name, [sys.executable, "-m", "weiquan.ops.serve", "run", "-m", MODEL, "-i", "127.0.0.1", "--port",
                   str(port), "--credentials", "credentials.yml", "--endpoints", o.endpoints, *api],
            port=port, env={**rasa_env, **(env or {})}, ready_url=f"http://127.0.0.1:{port}/webhooks/rest/",
            note="Rasa " + ("server with its HTTP API, for the console" if api else "replica")
            + ": imports TensorFlow, loads the model")

    rows = [Service("proxy", [haproxy, "-W", "-db", "-f", str(config)], port=o.rasa_port,
                    ready_url=f"http://127.0.0.1:{o.ready_port}/ready",
                    note="HAProxy: public routes only; ready when every replica passes its health check")]
    for i in range(o.action_servers):
        port = o.action_base + i
        rows.append(Service(f"actions{i + 1}", [RASA, "run", "actions", "--port", str(port)], port=port,
                            env={**PRIVATE, **database}, ready_url=f"http://127.0.0.1:{port}/health",
                            note="action server"))
    rows += [rasa(f"rasa{i + 1}", o.replica_base + i) for i in range(o.replicas)]
    # "--auth-token=…" in one word: a generated token may start with "-", which argparse would take for an option.
    rows.append(rasa("rasa-admin", o.admin_port, "--enable-api", f"--auth-token={o.rasa_token}",
                     env={"RASA_API_TOKEN": o.rasa_token, "SANIC_PROXIES_COUNT": "0"}))  # no proxy in front
    # The analytics consumer: RabbitMQ (the replicas' MaskingRabbitBroker) → the analytics tables in PostgreSQL.
    rows.append(Service("consumer", [sys.executable, "-m", "weiquan.analytics.consumer", "--port",
                                     str(o.consumer_port), "--endpoints", o.endpoints], port=o.consumer_port,
                        env={**database, **analytics}, ready_url=f"http://127.0.0.1:{o.consumer_port}/healthz",
                        note="analytics consumer: RabbitMQ → PostgreSQL"))
    rows.append(Service("console", [sys.executable, "-m", "weiquan.handoff.console", "--port", str(o.console_port),
                                    "--rasa-url", f"http://127.0.0.1:{o.admin_port}", "--endpoints", o.endpoints],
                        port=o.console_port,
                        env={**database, "OPERATOR_TOKEN": o.operator_token, "RASA_API_TOKEN": o.rasa_token,
                             "RASA_URL": f"http://127.0.0.1:{o.admin_port}", "CONSOLE_HOST": "127.0.0.1"},
                        ready_url=f"http://127.0.0.1:{o.console_port}/healthz", note="operator console"))
    rows.append(Service("widget", [sys.executable, "scripts/serve_widget.py", "--port", str(o.widget_port),
                                   "--server", f"http://localhost:{o.rasa_port}"], port=o.widget_port,
                        ready_url=f"http://127.0.0.1:{o.widget_port}/", note="widget page"))
    return rows


def production_banner(o: argparse.Namespace) -> None:
    public = f"http://localhost:{o.rasa_port}"
    print(f"\n  Web chat widget : http://localhost:{o.widget_port}/  (socket.io through HAProxy, sticky)")
    print(f"  REST channel    : POST {public}/webhooks/rest/webhook  (routed by sender; needs the REST token)")
    # A token the operator set is theirs already: only a generated one is shown (on this terminal, in no log file).
    print("                    Authorization: Bearer " + ("$REST_TOKEN" if os.environ.get("REST_TOKEN") else
                                                           f"{o.rest_token}  (generated for this run; set REST_TOKEN "
                                                           "to fix it)"))
    print(f"  WeChat webhook  : {public}/webhooks/wechat/webhook  (routed by openid)")
    print(f"  Operator console: http://localhost:{o.console_port}/#token={o.operator_token}  (loopback only)")
    print(f"  Rasa replicas   : {o.replicas} on 127.0.0.1:{o.replica_base}… (private), "
          f"{o.action_servers} action servers behind 127.0.0.1:{o.action_port}, "
          f"the console's Rasa API on 127.0.0.1:{o.admin_port}")
    print(f"  Analytics       : RabbitMQ → consumer (http://127.0.0.1:{o.consumer_port}/healthz) → PostgreSQL; "
          "the console's 服务统计 page")
    print(f"  Routing table   : http://127.0.0.1:{o.ready_port}/stats (loopback only)")
    print(f"  Stores          : PostgreSQL {o.db_host}:{o.db_port}/{o.db_name}, Redis {o.redis_host}:{o.redis_port}"
          f" db {o.redis_db}")
    print("  Logs            : var/*.log — a crashed server is restarted; Ctrl-C stops everything\n", flush=True)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rasa-port", type=int, default=5005)
    parser.add_argument("--action-port", type=int, default=5055)
    parser.add_argument("--widget-port", type=int, default=8080)
    parser.add_argument("--console-port", type=int, default=8090)
    parser.add_argument("--endpoints", default="endpoints.yml")
    parser.add_argument("--log-dir", default="var")
    parser.add_argument("--production", action="store_true", help="the several-machine shape (make run-production)")
    parser.add_argument("--replicas", type=int, default=int(os.environ.get("REPLICAS", "2")))
    parser.add_argument("--action-servers", type=int, default=int(os.environ.get("ACTION_SERVERS", "2")))
    parser.add_argument("--replica-base", type=int, default=5105, help="first Rasa replica port (loopback)")
    parser.add_argument("--ready-port", type=int, default=5006, help="HAProxy's private /ready and /stats (loopback)")
    parser.add_argument("--action-base", type=int, default=5155, help="first action server port (loopback)")
    parser.add_argument("--admin-port", type=int, default=5104, help="the console's Rasa API (loopback, production)")
    parser.add_argument("--consumer-port", type=int, default=int(os.environ.get("CONSUMER_PORT", "5103")),
                        help="the analytics consumer's /healthz (loopback, production)")
    parser.add_argument("--public-host", default="0.0.0.0", help="where HAProxy listens for the public routes")
    parser.add_argument("--build-dir", default="build")
    parser.add_argument("--db-host", default=os.environ.get("DB_HOST", "127.0.0.1"))
    parser.add_argument("--db-port", type=int, default=int(os.environ.get("DB_PORT", "5432")))
    parser.add_argument("--db-name", default=os.environ.get("DB_NAME", "weiquan"))
    parser.add_argument("--db-user", default=os.environ.get("DB_USER", "postgres"))
    parser.add_argument("--redis-host", default=os.environ.get("REDIS_HOST", "127.0.0.1"))
    parser.add_argument("--redis-port", type=int, default=int(os.environ.get("REDIS_PORT", "6379")))
    parser.add_argument("--redis-db", type=int, default=int(os.environ.get("REDIS_DB", "1")))
    options = parser.parse_args(argv)
    options.operator_token = os.environ.get("OPERATOR_TOKEN") or secrets.token_urlsafe(24)
    options.rasa_token = os.environ.get("RASA_API_TOKEN") or secrets.token_urlsafe(24)
    # REST: open on loopback for `make run` unless REST_TOKEN is set; the production shape always needs a token.
    options.rest_token = os.environ.get("REST_TOKEN") or (secrets.token_urlsafe(24) if options.production else "")
    if options.production and options.endpoints == "endpoints.yml":
        options.endpoints = "endpoints.production.yml"
    return options


def main(argv: list[str] | None = None) -> int:
    options = parse(argv)
    log_dir = ROOT / options.log_dir
    log_dir.mkdir(parents=True, exist_ok=True)
    (ROOT / "var").mkdir(exist_ok=True)
    if options.production:
        problems = check_stores(options)
        if problems:
            print("\n".join(problems) + "\nmake run-production needs both (make run needs neither).", file=sys.stderr)
            return 1
        supervisor = Supervisor(production_table(options), log_dir=log_dir, cwd=ROOT, env=os.environ)
        return supervisor.run(banner=lambda: production_banner(options))
    supervisor = Supervisor(local_table(options), log_dir=log_dir, cwd=ROOT, env=os.environ)
    return supervisor.run(banner=lambda: local_banner(options))


if __name__ == "__main__":
    sys.exit(main())
