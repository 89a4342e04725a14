"""The production shape is written once (deploy/topology.yml) and every recipe describes exactly it: `make
run-production` (scripts/run_all.py), deploy/compose.yml and deploy/k8s/, and the three HAProxy configurations.
Checked offline, no container engine needed:

- the same services (console and rasa-admin included), replicas, ports and settings in each recipe, and the proxies
  route the same public paths the same way (REST by sender, WeChat by openid, socket.io sticky);
- deploy/compose.yml: dclint (npm, `make deploy-tools`), which validates against the Compose schema it bundles, and
  the same schema through jsonschema here;
- deploy/k8s/*.yaml: kubernetes-validate (PyPI), strict, against the Kubernetes 1.28 schemas inside the package;
- then what must stay private does: only the proxy publishes a port on every interface, the Ingress routes only the
  channels and the widget page, Rasa's API only with a token from a Secret and never behind a public route, secrets
  only from the environment or Secrets, exact widget origins, and the HAProxy configurations pass `haproxy -c`.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.scripts import load_script

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
DCLINT = DEPLOY / "node_modules" / ".bin" / "dclint"
COMPOSE_SCHEMA = DEPLOY / "node_modules" / "dclint" / "schemas" / "compose.schema.json"
K8S_VERSION = "1.28.0"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
# Kubernetes labels each Deployment with its component; the topology's name for it:
K8S_COMPONENTS = {"router": "proxy", "rasa": "rasa", "rasa-admin": "rasa-admin", "actions": "actions",
                  "operator-console": "console", "widget": "widget", "analytics-consumer": "consumer"}
BALANCE = {"sender": "balance hash req.body,json_query('$.sender')", "openid": "balance url_param openid",
           "sticky": "balance source"}


# ---------------------------------------------------------------------------------------------- the one source
def topology() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "topology.yml").read_text(encoding="utf-8"))


def settings_of(service: str) -> set[str]:
    """The settings a topology service reads (groups expanded)."""
    shape = topology()
    names: set[str] = set()
    for item in shape["services"][service].get("env", []):
        names |= set(shape["groups"].get(item, [item]))
    return names


def secret_settings() -> set[str]:
    return {name for name, spec in topology()["settings"].items() if (spec or {}).get("secret")}


def site_settings() -> set[str]:
    return {name for name, spec in topology()["settings"].items() if (spec or {}).get("site")}


def test_the_topology_names_each_setting_it_uses() -> None:
    shape = topology()
    known = set(shape["settings"])
    for group, names in shape["groups"].items():
        assert set(names) <= known, group
    for service in shape["services"]:
        assert settings_of(service) <= known, service
    assert {route["to"] for route in shape["routes"]} <= set(shape["services"])


def test_the_topology_lists_every_hand_off_setting() -> None:
    """The action servers and the console must see the same hand-off settings: every one weiquan/handoff/settings.py
    reads is in the topology's `handoff` group (the store follows DB_* in production, so HANDOFF_STORE_URL is not)."""
    read = set(re.findall(r'"(HANDOFF_[A-Z_]+)"', (ROOT / "weiquan" / "handoff" / "settings.py").read_text()))
    assert read - {"HANDOFF_STORE_URL"} == set(topology()["groups"]["handoff"])


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yml").read_text(encoding="utf-8"))


def manifests() -> list[dict]:
    docs = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        docs += [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]
    return docs


def containers(doc: dict) -> list[dict]:
    return doc["spec"]["template"]["spec"]["containers"] if doc["kind"] == "Deployment" else []


def option(argv: list[str], name: str) -> str | None:
    """The value of `--name value` or `--name=value` in a command line."""
    for index, arg in enumerate(argv):
        if arg == name and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith(f"{name}="):
            return arg.split("=", 1)[1]
    return None


# ---------------------------------------------------------------------------------------------- make run-production
def production_rows(tmp_path: Path) -> tuple[Any, list[Any]]:
    run_all = load_script("run_all")
    options = run_all.parse(["--production", "--build-dir", str(tmp_path)])
    return options, run_all.production_table(options)


def test_run_production_starts_every_service_of_the_topology_with_its_settings(tmp_path: Path) -> None:
    options, rows = production_rows(tmp_path)
    shape = topology()["services"]
    kinds: dict[str, list[Any]] = {}
    for row in rows:
        kinds.setdefault(re.sub(r"\d+$", "", row.name), []).append(row)
    assert set(kinds) == set(shape), "run_all.py's production table and deploy/topology.yml list other services"
    for kind, spec in shape.items():
        assert len(kinds[kind]) == spec.get("replicas", 1), kind
        for row in kinds[kind]:
            # What run-production does not set itself is the site's own, passed on from the environment it runs in.
            missing = settings_of(kind) - set(row.env) - site_settings()
            assert not missing, f"run-production's {row.name} lacks {sorted(missing)}"
            assert ("--enable-api" in row.argv) == bool(spec.get("api")), row.name
    admin = kinds["rasa-admin"][0]
    assert option(admin.argv, "--auth-token") == options.rasa_token and option(admin.argv, "-i") == "127.0.0.1"
    console = kinds["console"][0]
    assert option(console.argv, "--rasa-url") == f"http://127.0.0.1:{options.admin_port}"
    # The analytics page reads what the consumer writes: both from the production endpoints (RabbitMQ → PostgreSQL).
    assert option(console.argv, "--endpoints") == option(kinds["consumer"][0].argv, "--endpoints") == options.endpoints
    assert "MaskingRabbitBroker" in yaml.safe_load((ROOT / options.endpoints).read_text())["event_broker"]["type"]
    assert kinds["rasa"][0].env["REST_TOKEN"] and kinds["rasa"][0].env["WIDGET_REDIS_URL"].startswith("redis://")


# ---------------------------------------------------------------------------------------------- Compose
def test_compose_passes_dclint_and_its_schema() -> None:
    assert DCLINT.exists(), "run `make deploy-tools` (make test-unit does it)"
    done = subprocess.run([str(DCLINT), "--quiet", "--color", "false", str(DEPLOY / "compose.yml")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    schema = json.loads(COMPOSE_SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft7Validator(schema).validate(compose())


def test_dclint_rejects_a_broken_compose_file(tmp_path: Path) -> None:
    broken = compose()
    broken["services"]["rasa"]["ports"] = [{"target": "not-a-port"}]
    path = tmp_path / "compose.yml"
    path.write_text(yaml.safe_dump(broken), encoding="utf-8")
    done = subprocess.run([str(DCLINT), "--quiet", "--color", "false", str(path)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode != 0


def test_compose_describes_the_topology() -> None:
    services = compose()["services"]
    shape = topology()["services"]
    assert set(services) - {"postgres", "redis", "rabbitmq"} == set(shape)
    for name, spec in shape.items():
        service = services[name]
        assert service.get("deploy", {}).get("replicas", 1) == spec.get("replicas", 1), name
        environment = service.get("environment", {})
        missing = settings_of(name) - set(environment)
        assert not missing, f"compose.yml's {name} lacks {sorted(missing)}"
        for key in (secret_settings() | site_settings()) & set(environment):
            assert str(environment[key]).startswith("${"), f"{name}.{key} must come from the environment"
        command = service.get("command", [])
        if name == "proxy":
            assert f"bind :{spec['port']}" in (DEPLOY / "haproxy.compose.cfg").read_text(encoding="utf-8")
        else:
            assert option(command, "--port") == str(spec["port"]), name
        assert ("--enable-api" in command) == bool(spec.get("api")), name
    actions_url = services["rasa"]["environment"]["ACTION_ENDPOINT_URL"]
    assert actions_url == f"http://proxy:{shape['actions']['port']}/webhook"
    assert f"bind :{shape['actions']['port']}" in (DEPLOY / "haproxy.compose.cfg").read_text(encoding="utf-8")
    assert services["console"]["environment"]["RASA_URL"] == f"http://rasa-admin:{shape['rasa-admin']['port']}"


def test_compose_publishes_only_the_proxy_and_keeps_secrets_in_the_environment() -> None:
    services = compose()["services"]
    public = [name for name, service in services.items()
              if any(not str(port).startswith("127.0.0.1:") for port in service.get("ports", []))]
    assert public == ["proxy"]  # the console is on the host's loopback only
    for name, service in services.items():
        for key, value in service.get("environment", {}).items():
            if key in secret_settings() or "PASSWORD" in key:
                assert str(value).startswith("${"), f"{name}.{key} must come from the environment"
        command = service.get("command", [])
        if "--enable-api" in command:
            assert option(command, "--auth-token").startswith("${") and not service.get("ports"), name
    origins = services["rasa"]["environment"]["WIDGET_ALLOWED_ORIGINS"]
    assert "*" not in origins


# ---------------------------------------------------------------------------------------------- Kubernetes
@pytest.mark.parametrize("doc", manifests(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_kubernetes_manifest_is_valid(doc: dict) -> None:
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_kubernetes_validate_rejects_a_misspelt_field() -> None:
    broken = json.loads(json.dumps(next(d for d in manifests() if d["kind"] == "Deployment")))
    broken["spec"]["replica"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_kubernetes_describes_the_topology() -> None:
    docs = manifests()
    config = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "weiquan-settings")
    deployments = {K8S_COMPONENTS[d["metadata"]["labels"]["app.kubernetes.io/component"]]: d
                   for d in docs if d["kind"] == "Deployment"}
    shape = topology()["services"]
    assert set(deployments) == set(shape)
    for name, spec in shape.items():
        deployment = deployments[name]
        if name == "proxy":  # stateless, and every copy routes alike: Kubernetes may run more for availability
            assert deployment["spec"]["replicas"] >= spec.get("replicas", 1)
        else:
            assert deployment["spec"]["replicas"] == spec.get("replicas", 1), name
        (container,) = containers(deployment)
        ports = [port["containerPort"] for port in container["ports"]]
        assert ports == [spec["port"]], name
        available = {variable["name"] for variable in container.get("env", [])}
        if any("configMapRef" in source for source in container.get("envFrom", [])):
            available |= set(config["data"])
        missing = settings_of(name) - available
        assert not missing, f"k8s {name} lacks {sorted(missing)}"
        for variable in container.get("env", []):
            if variable["name"] in secret_settings() and variable["name"] != "SANIC_PROXIES_COUNT":
                assert "secretKeyRef" in variable.get("valueFrom", {}), (name, variable)
        assert ("--enable-api" in container.get("args", [])) == bool(spec.get("api")), name
    assert not secret_settings() & set(config["data"]), "secrets belong in the Secret, not the ConfigMap"
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    actions_port = shape["actions"]["port"]
    assert config["data"]["ACTION_ENDPOINT_URL"] == \
        f"http://weiquan-actions.weiquan.svc.cluster.local:{actions_port}/webhook"
    assert services["weiquan-actions"]["spec"]["ports"][0]["port"] == actions_port
    assert config["data"]["RASA_URL"] == \
        f"http://weiquan-rasa-admin.weiquan.svc.cluster.local:{shape['rasa-admin']['port']}"


def test_kubernetes_exposes_only_public_paths_and_keeps_the_api_private() -> None:
    docs = manifests()
    assert all(d["spec"].get("type", "ClusterIP") == "ClusterIP" for d in docs if d["kind"] == "Service")
    ingress = next(d for d in docs if d["kind"] == "Ingress")
    routes = {p["path"]: p["backend"]["service"]["name"] for rule in ingress["spec"]["rules"]
              for p in rule["http"]["paths"]}
    channels = {route["path"] for route in topology()["routes"]}
    assert routes == {**{path: "weiquan-public" for path in channels}, "/": "weiquan-widget",
                      "/static/": "weiquan-widget"}  # never Rasa, the admin API or the console
    assert ingress["spec"]["tls"]
    for doc in docs:
        for container in containers(doc):
            args = container.get("args", [])
            if "--enable-api" in args:
                assert args[args.index("--auth-token") + 1] == "$(RASA_API_TOKEN)"
                token = next(e for e in container["env"] if e["name"] == "RASA_API_TOKEN")
                assert "secretKeyRef" in token["valueFrom"]
            for variable in container.get("env", []):
                if variable["name"] in secret_settings() or "PASSWORD" in variable["name"]:
                    assert "secretKeyRef" in variable.get("valueFrom", {}), variable
    assert not any(d["kind"] == "Secret" for d in docs), "secrets are created outside git"
    policies = {d["metadata"]["name"]: d for d in docs if d["kind"] == "NetworkPolicy"}
    assert policies["default-deny-ingress"]["spec"]["podSelector"] == {}
    assert {"rasa-admin-from-console", "console-from-operators"} <= set(policies)
    config = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "weiquan-settings")
    origins = config["data"]["WIDGET_ALLOWED_ORIGINS"].split()
    assert origins and all(re.fullmatch(r"https://[a-z0-9.-]+", origin) for origin in origins)


# ---------------------------------------------------------------------------------------------- HAProxy
def sections(text: str) -> dict[str, list[str]]:
    """An HAProxy configuration as {"frontend public": [its lines], "backend rest_replicas": [...], …}: a section starts
    on a line that is not indented; comments and blank lines are left out."""
    found: dict[str, list[str]] = {}
    current = ""
    for raw in text.splitlines():
        line = raw if raw.strip().startswith("log-format") else raw.split("#", 1)[0]
        if not line.strip():
            continue
        if not line[0].isspace():
            current = " ".join(line.split()[:2])
            found[current] = []
        else:
            found[current].append(" ".join(line.split()))
    return found


def public_routes(text: str) -> dict[str, list[str]]:
    """{path prefix: the lines of the backend the public frontend sends it to}."""
    config = sections(text)
    public = config["frontend public"]
    acls = {}
    for line in public:
        match = re.fullmatch(r"acl (\w+) path_beg (.+)", line)
        if match:
            acls[match.group(1)] = match.group(2).split()
    routes = {}
    for line in public:
        match = re.fullmatch(r"use_backend (\w+) if (\w+)", line)
        if match:
            for path in acls.get(match.group(2), []):
                routes[path] = config[f"backend {match.group(1)}"]
    assert "default_backend not_public" in public
    return routes


def haproxy_configs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """{recipe: (its HAProxy configuration, how its servers name a Rasa server)}."""
    router = next(d for d in manifests() if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "weiquan-router")
    in_cluster = tmp_path / "router.cfg"
    in_cluster.write_text(router["data"]["haproxy.cfg"], encoding="utf-8")
    run_all = load_script("run_all")
    options = run_all.parse(["--production", "--replica-base", "6105"])
    template = run_all.haproxy_config(options, tmp_path / "run-production.cfg")
    port = topology()["services"]["rasa"]["port"]
    return {"run-production": (template, r"127\.0\.0\.1:610[56]"), "compose": (DEPLOY / "haproxy.compose.cfg",
                                                                         rf" rasa:{port} "),
            "k8s": (in_cluster, rf" weiquan-rasa-pods\.weiquan\.svc\.cluster\.local:{port} ")}


def test_every_proxy_routes_the_topologys_paths_the_same_way_and_nothing_else(tmp_path: Path) -> None:
    assert Path(HAPROXY).exists(), "run `make proxy`"
    for recipe, (config, rasa_server) in haproxy_configs(tmp_path).items():
        done = subprocess.run([HAPROXY, "-c", "-f", str(config)], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, recipe + done.stdout + done.stderr
        text = config.read_text(encoding="utf-8")
        routes = public_routes(text)
        pages = {path for path, backend in routes.items() if any(" widget:" in line for line in backend)}
        assert set(routes) - pages == {route["path"] for route in topology()["routes"]}, recipe
        for route in topology()["routes"]:
            backend = routes[route["path"]]
            assert BALANCE[route["by"]] in backend, (recipe, route)
            if route["by"] == "sticky":
                assert any(line.startswith("cookie WQ_REPLICA") for line in backend), recipe
            servers = [line for line in backend if line.startswith(("server ", "server-template "))]
            assert servers and all(re.search(rasa_server, line) for line in servers), (recipe, servers)
        logged = " ".join(sections(text)["defaults"])
        assert not re.search(r"%(\{[^}]*\})?(r|HU)(?![a-zA-Z])|option httplog", logged), \
            f"{recipe}: the request line's query string (WeChat's OpenID) would be logged"
