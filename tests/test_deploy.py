"""The many-machine recipe (deploy/) is valid and secure by default — checked offline, no container engine needed.

- deploy/compose.yml: dclint (npm, `make deploy-tools`), which validates against the Compose schema it bundles, and
  the same schema through jsonschema here;
- deploy/k8s/*.yaml: kubernetes-validate (PyPI), strict, against the Kubernetes 1.28 schemas inside the package;
- then what must stay private does: only the proxy publishes a port, the Ingress routes only WeChat, socket.io and the
  widget page, Rasa's API only with a token from a Secret and never behind a public route, secrets only from the
  environment or Secrets, exact widget origins, and the HAProxy configurations pass `haproxy -c`.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
DCLINT = DEPLOY / "node_modules" / ".bin" / "dclint"
COMPOSE_SCHEMA = DEPLOY / "node_modules" / "dclint" / "schemas" / "compose.schema.json"
K8S_VERSION = "1.28.0"
SECRET_NAMES = {"DB_PASSWORD", "WECHAT_TOKEN", "WECHAT_APP_ID", "WECHAT_AES_KEY", "WECHAT_APP_SECRET", "RASA_API_TOKEN"}


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yml").read_text(encoding="utf-8"))


def manifests() -> list[dict]:
    docs = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        docs += [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]
    return docs


def containers(doc: dict) -> list[dict]:
    return doc["spec"]["template"]["spec"]["containers"] if doc["kind"] == "Deployment" else []


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


def test_compose_publishes_only_the_proxy_and_keeps_secrets_in_the_environment() -> None:
    services = compose()["services"]
    assert [name for name, service in services.items() if service.get("ports")] == ["proxy"]
    for name, service in services.items():
        environment = service.get("environment", {})
        for key, value in environment.items():
            if key in SECRET_NAMES or "PASSWORD" in key:
                assert str(value).startswith("${"), f"{name}.{key} must come from the environment"
        command = service.get("command", [])
        if "--enable-api" in command:
            assert "--auth-token" in command and command[command.index("--auth-token") + 1].startswith("${"), name
            assert "profiles" in service and not service.get("ports"), name
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


def test_kubernetes_exposes_only_public_paths_and_keeps_the_api_private() -> None:
    docs = manifests()
    assert all(d["spec"].get("type", "ClusterIP") == "ClusterIP" for d in docs if d["kind"] == "Service")
    ingress = next(d for d in docs if d["kind"] == "Ingress")
    paths = {p["path"] for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]}
    assert paths == {"/webhooks/wechat/", "/socket.io/", "/", "/static/"}
    backends = {p["backend"]["service"]["name"] for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]}
    assert backends == {"weiquan-public", "weiquan-widget"}  # never the REST service, Rasa or the admin API
    assert ingress["spec"]["tls"]
    for doc in docs:
        for container in containers(doc):
            args = container.get("args", [])
            if "--enable-api" in args:
                assert args[args.index("--auth-token") + 1] == "$(RASA_API_TOKEN)"
                token = next(e for e in container["env"] if e["name"] == "RASA_API_TOKEN")
                assert "secretKeyRef" in token["valueFrom"]
            for variable in container.get("env", []):
                if variable["name"] in SECRET_NAMES and variable["name"] != "RASA_API_TOKEN" or \
                        "PASSWORD" in variable["name"]:
                    assert "secretKeyRef" in variable.get("valueFrom", {}) or variable.get("value") == "", variable
    assert not any(d["kind"] == "Secret" for d in docs), "secrets are created outside git"
    policies = {d["metadata"]["name"]: d for d in docs if d["kind"] == "NetworkPolicy"}
    assert policies["default-deny-ingress"]["spec"]["podSelector"] == {}
    config = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "weiquan-settings")
    origins = config["data"]["WIDGET_ALLOWED_ORIGINS"].split()
    assert origins and all(re.fullmatch(r"https://[a-z0-9.-]+", origin) for origin in origins)


# ---------------------------------------------------------------------------------------------- HAProxy
def haproxy_configs(tmp_path: Path) -> list[Path]:
    router = next(d for d in manifests() if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "weiquan-router")
    in_cluster = tmp_path / "router.cfg"
    in_cluster.write_text(router["data"]["haproxy.cfg"], encoding="utf-8")
    return [DEPLOY / "haproxy.compose.cfg", in_cluster]


def test_haproxy_configurations_are_valid_and_route_only_public_paths(tmp_path: Path) -> None:
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    assert Path(haproxy).exists(), "run `make proxy`"
    for config in haproxy_configs(tmp_path):
        done = subprocess.run([haproxy, "-c", "-f", str(config)], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        text = config.read_text(encoding="utf-8")
        public = re.split(r"\n\s*(?:frontend|backend|resolvers) ", text.split("frontend public", 1)[1])[0]
        assert "rest" not in public, "REST must not be routed by the public frontend"
        assert "default_backend not_public" in public
