"""`make audit`: known vulnerabilities in what we ship — the Python packages installed in .venv and the widget's npm
packages (widget/package-lock.json) — checked against audit-allowlist.yml, the reviewed list of accepted findings.

Four checks, each saying how much it could check:

1. pip-audit (build/audit-venv, its own venv: it needs newer packages than Rasa 3.6 allows) on .venv's site-packages,
   asking PyPI's advisory data (`--vulnerability-service pypi`, the per-release JSON);
2. `npm audit --package-lock-only` for widget/, asking the npm registry's advisory endpoint;
3. the registries' own marks, read from the plain package pages: a PyPI release that was yanked, an npm version that
   was deprecated (maintainers use both to warn about broken or unsafe releases);
4. the allowlist itself: every entry names a package and version; an entry whose package is no longer at that
   version is reported stale, so an upgrade brings the triage back for review.

A finding that the allowlist does not cover fails the audit. A package that could not be checked (the advisory service
did not answer for it, as happens on networks that reach only a registry mirror) is counted and named, never passed off
as "no known vulnerabilities"; with AUDIT_STRICT=1 that fails the audit too.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
PIP_AUDIT = ROOT / "build" / "audit-venv" / "bin" / "pip-audit"
ALLOWLIST = ROOT / "audit-allowlist.yml"
WIDGET = ROOT / "widget"
PYPI = "https://pypi.org/pypi/{name}/json"
NPM = "https://registry.npmjs.org/{name}"
TIMEOUT_S = 20


@dataclass(frozen=True)
class Finding:
    ids: frozenset[str]  # the advisory's id and aliases, or "yanked" / "deprecated"
    package: str
    version: str
    ecosystem: str  # "pypi" or "npm"
    summary: str


@dataclass
class Check:
    name: str
    total: int = 0
    unchecked: dict[str, str] = field(default_factory=dict)  # package → why
    findings: list[Finding] = field(default_factory=list)

    @property
    def checked(self) -> int:
        return 0 if "*" in self.unchecked else self.total - len(self.unchecked)


def normalise(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def installed_python() -> dict[str, str]:
    return {normalise(dist.metadata["Name"]): dist.version for dist in metadata.distributions()}


def locked_npm() -> dict[str, str]:
    lock = json.loads((WIDGET / "package-lock.json").read_text(encoding="utf-8"))
    packages: dict[str, str] = {}
    for path, entry in lock.get("packages", {}).items():
        if path and "version" in entry:
            packages[f"{path.rsplit('node_modules/', 1)[-1]}@{entry['version']}"] = entry["version"]
    return packages


def fetch_json(url: str) -> Any:
    with urllib.request.urlopen(urllib.request.Request(url, headers={"Accept": "application/json"}),
                                timeout=TIMEOUT_S) as response:
        return json.load(response)


# ---------------------------------------------------------------------- 1. pip-audit


def pip_audit(total: int) -> Check:
    check = Check("pip-audit (PyPI advisories)", total=total)
    if not PIP_AUDIT.exists():
        check.unchecked["*"] = f"{PIP_AUDIT} is missing (make audit installs it)"
        return check
    site_packages = sysconfig.get_paths()["purelib"]
    done = subprocess.run(
        [str(PIP_AUDIT), "--path", site_packages, "--vulnerability-service", "pypi", "--format", "json",
         "--progress-spinner", "off", "--aliases", "on", "--desc", "off", "--timeout", str(TIMEOUT_S)],
        capture_output=True, text=True, timeout=1800,
    )
    try:
        report = json.loads(done.stdout)
    except ValueError:
        check.unchecked["*"] = f"pip-audit failed: {(done.stderr or done.stdout).strip()[-300:]}"
        return check
    for dependency in report.get("dependencies", []):
        name, version = normalise(dependency["name"]), dependency.get("version", "?")
        if dependency.get("skip_reason"):
            check.unchecked[name] = dependency["skip_reason"]
        for vuln in dependency.get("vulns", []):
            ids = frozenset([vuln["id"], *vuln.get("aliases", [])])
            fixed = ", ".join(vuln.get("fix_versions") or []) or "none"
            check.findings.append(Finding(ids, name, version, "pypi", f"fixed in {fixed}"))
    return check


# ---------------------------------------------------------------------- 2. npm audit


def npm_audit(total: int) -> Check:
    check = Check("npm audit (npm advisories)", total=total)
    try:
        done = subprocess.run(["npm", "audit", "--json", "--package-lock-only"], cwd=WIDGET, capture_output=True,
                              text=True, timeout=300)
        report = json.loads(done.stdout or "{}")
    except (OSError, ValueError, subprocess.TimeoutExpired) as error:
        check.unchecked["*"] = f"npm audit did not run: {error}"
        return check
    if "error" in report or "message" in report:
        reason = (report.get("error") or {}).get("summary") or report.get("message") or "npm audit failed"
        check.unchecked["*"] = f"the registry's advisory endpoint did not answer: {reason}"
        return check
    for name, vulnerability in (report.get("vulnerabilities") or {}).items():
        for via in vulnerability.get("via", []):
            if isinstance(via, dict):
                named: list[str] = [via.get("url", "").rsplit("/", 1)[-1], str(via.get("source", ""))]
                ids = frozenset(name for name in named if name)
                check.findings.append(Finding(ids, name, vulnerability.get("range", "?"), "npm",
                                              via.get("title", "")))
    return check


# ---------------------------------------------------------------------- 3. registry marks


def yanked(packages: dict[str, str]) -> Check:
    check = Check("PyPI yanked releases", total=len(packages))

    def one(item: tuple[str, str]) -> None:
        name, version = item
        try:
            files = fetch_json(PYPI.format(name=name)).get("releases", {}).get(version)
        except (urllib.error.URLError, TimeoutError, ValueError) as error:
            check.unchecked[name] = f"PyPI page not read: {error}"
            return
        if files is None:
            check.unchecked[name] = f"{version} is not on PyPI's page for {name}"
        elif files and all(file.get("yanked") for file in files):
            reason = next((file.get("yanked_reason") for file in files if file.get("yanked_reason")), "")
            check.findings.append(Finding(frozenset({"yanked"}), name, version, "pypi", reason or "no reason given"))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, sorted(packages.items())))
    return check


def deprecated(packages: dict[str, str]) -> Check:
    check = Check("npm deprecated versions", total=len(packages))
    for key, version in sorted(packages.items()):
        name = key.rsplit("@", 1)[0]
        try:
            info = fetch_json(NPM.format(name=name.replace("/", "%2f"))).get("versions", {}).get(version)
        except (urllib.error.URLError, TimeoutError, ValueError) as error:
            check.unchecked[key] = f"registry page not read: {error}"
            continue
        if info is None:
            check.unchecked[key] = "version not on the registry"
        elif info.get("deprecated"):
            check.findings.append(Finding(frozenset({"deprecated"}), name, version, "npm", str(info["deprecated"])))
    return check


# ---------------------------------------------------------------------- allowlist


def load_allowlist() -> list[dict[str, Any]]:
    entries = yaml.safe_load(ALLOWLIST.read_text(encoding="utf-8")).get("accepted") or []
    for entry in entries:
        missing = {"id", "package", "version", "ecosystem", "reachable", "why", "reviewed"} - set(entry)
        if missing:
            raise SystemExit(f"{ALLOWLIST}: entry {entry.get('id')} lacks {sorted(missing)}")
    return entries


def covered(finding: Finding, entries: list[dict[str, Any]]) -> bool:
    return any(
        entry["ecosystem"] == finding.ecosystem
        and normalise(entry["package"]) == normalise(finding.package)
        and str(entry["version"]) == finding.version
        and (entry["id"] == "*" or entry["id"] in finding.ids)
        for entry in entries
    )


def stale(entries: list[dict[str, Any]], python: dict[str, str], npm: dict[str, str]) -> list[str]:
    npm_versions = {key.rsplit("@", 1)[0]: version for key, version in npm.items()}
    out = []
    for entry in entries:
        installed = (python.get(normalise(entry["package"])) if entry["ecosystem"] == "pypi"
                     else npm_versions.get(entry["package"]))
        if installed != str(entry["version"]):
            out.append(f"{entry['package']} {entry['version']} ({entry['id']}): now {installed or 'not installed'}")
    return out


def main() -> int:
    python, npm = installed_python(), locked_npm()
    entries = load_allowlist()
    checks = [pip_audit(len(python)), npm_audit(len(npm)), yanked(python), deprecated(npm)]
    failed = False
    for check in checks:
        print(f"\n== {check.name}: {check.checked} of {check.total} packages checked")
        if check.unchecked:
            reasons = sorted({why.split(":")[0] for why in check.unchecked.values()})
            print(f"   NOT CHECKED: {check.total - check.checked} packages: {'; '.join(reasons)}")
        for finding in check.findings:
            accepted = covered(finding, entries)
            failed |= not accepted
            mark = "accepted (audit-allowlist.yml)" if accepted else "NOT ACCEPTED"
            print(f"   {mark}: {finding.package} {finding.version} {sorted(finding.ids)} {finding.summary}")
    old = stale(entries, python, npm)
    if old:
        print("\n== audit-allowlist.yml entries for versions no longer installed (review and remove):")
        print("\n".join(f"   {line}" for line in old))
    unchecked = any(check.unchecked for check in checks)
    print()
    if failed:
        print("audit FAILED: a finding above is not in audit-allowlist.yml (upgrade, or triage it there)")
        return 1
    if unchecked and os.environ.get("AUDIT_STRICT") == "1":
        print("audit FAILED (AUDIT_STRICT=1): some packages could not be checked")
        return 1
    print("audit passed" + (": no finding outside the allowlist among what could be checked; see NOT CHECKED above"
                            if unchecked else ": every package checked, every finding triaged"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
