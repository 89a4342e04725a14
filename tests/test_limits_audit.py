"""The supply-chain gate (scripts/audit.py): what fails it, what the allowlist covers, and that it never calls an
unchecked package clean. `make audit` runs it for real against the registries."""
from __future__ import annotations

import pytest

from scripts import audit
from scripts.audit import Check, Finding

ENTRIES = [
    {"id": "GHSA-aaaa", "package": "aiohttp", "version": "3.9.5", "ecosystem": "pypi"},
    {"id": "*", "package": "tensorflow", "version": "2.12.0", "ecosystem": "pypi"},
]


def finding(ids: set[str], package: str = "aiohttp", version: str = "3.9.5", ecosystem: str = "pypi") -> Finding:
    return Finding(frozenset(ids), package, version, ecosystem, "")


def test_an_entry_covers_its_id_or_alias_at_its_exact_version_only() -> None:
    assert audit.covered(finding({"PYSEC-1", "GHSA-aaaa"}), ENTRIES)
    assert not audit.covered(finding({"GHSA-bbbb"}), ENTRIES)
    assert not audit.covered(finding({"GHSA-aaaa"}, version="3.9.6"), ENTRIES)  # an upgrade needs a new review
    assert not audit.covered(finding({"GHSA-aaaa"}, ecosystem="npm"), ENTRIES)
    assert audit.covered(finding({"CVE-2099-1"}, package="TensorFlow", version="2.12.0"), ENTRIES)


def test_the_allowlist_is_complete_and_matches_what_is_installed() -> None:
    entries = audit.load_allowlist()
    assert entries and all(entry["why"].strip() for entry in entries)
    assert audit.stale(entries, audit.installed_python(), audit.locked_npm()) == []


@pytest.mark.parametrize(
    ("checks", "strict", "code"),
    [
        ([Check("x", 2, findings=[finding({"GHSA-aaaa"})])], "", 0),
        ([Check("x", 2, findings=[finding({"GHSA-bbbb"})])], "", 1),
        ([Check("x", 2, unchecked={"*": "service down"})], "", 0),
        ([Check("x", 2, unchecked={"*": "service down"})], "1", 1),
    ],
    ids=["triaged", "new finding", "unchecked", "unchecked, strict"],
)
def test_the_gate_fails_on_new_findings_and_in_strict_mode_on_unchecked_packages(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], checks: list[Check], strict: str, code: int
) -> None:
    monkeypatch.setattr(audit, "load_allowlist", lambda: ENTRIES)
    monkeypatch.setattr(audit, "installed_python", lambda: {"aiohttp": "3.9.5", "tensorflow": "2.12.0"})
    monkeypatch.setattr(audit, "locked_npm", lambda: {})
    for name in ("pip_audit", "npm_audit"):
        monkeypatch.setattr(audit, name, lambda total, _checks=checks: _checks[0])
    for name in ("yanked", "deprecated"):
        monkeypatch.setattr(audit, name, lambda packages: Check("marks", len(packages)))
    monkeypatch.setenv("AUDIT_STRICT", strict)
    assert audit.main() == code
    output = capsys.readouterr().out
    if checks[0].unchecked:
        assert "0 of 2 packages checked" in output and "NOT CHECKED: 2 packages: service down" in output
        assert "every package checked" not in output
