"""The project's pieces name each other correctly: domain ↔ actions ↔ engine ↔ rule data ↔ README."""
from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import yaml
from rasa_sdk.executor import ActionExecutor

import actions
from weiquan.engine import rule_variables
from weiquan.ruleset import load_ruleset

ROOT = Path(__file__).resolve().parent.parent
DOMAIN = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
RESPONSE_LITERAL = re.compile(r"""["'](utter_[a-z0-9_]+)["']""")
VARIABLE = re.compile(r"\{([a-z_]+)\}")
CODE_DIRS = ("actions", "weiquan")

# Variables responses may use besides the rule-set ones: set per case by the engine or the form.
CASE_VARIABLES = {
    "evidence_checklist", "day_count", "last_filing_date", "days_left", "handle_by", "finish_by",
    "earliest_deadline", "latest_deadline", "earliest_date", "latest_date", "success_time",
    "seller_deadline", "seller_days_left",
}


def code_response_names() -> set[str]:
    names: set[str] = set()
    for folder in CODE_DIRS:
        for path in (ROOT / folder).rglob("*.py"):
            names.update(RESPONSE_LITERAL.findall(path.read_text(encoding="utf-8")))
    return names


def story_response_names() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "data").rglob("*.yml"):
        names.update(re.findall(r"action: (utter_[a-z0-9_]+)", path.read_text(encoding="utf-8")))
    return names


def test_every_response_named_in_code_exists_in_the_domain() -> None:
    missing = code_response_names() - set(DOMAIN["responses"])
    assert not missing, f"responses used in code but not in domain.yml: {sorted(missing)}"


def test_every_domain_response_is_used_somewhere() -> None:
    asked = {f"utter_ask_{slot}" for slot in DOMAIN["slots"]} | {f"utter_invalid_{slot}" for slot in DOMAIN["slots"]}
    used = code_response_names() | story_response_names() | asked | {"utter_default"}
    unused = set(DOMAIN["responses"]) - used
    assert not unused, f"responses nobody utters: {sorted(unused)}"


def test_sdk_registers_exactly_the_domain_actions() -> None:
    executor = ActionExecutor()
    for module in pkgutil.iter_modules(actions.__path__):
        executor.register_package(f"actions.{module.name}")
    assert set(executor.actions) == set(DOMAIN["actions"])


def test_action_class_names_follow_action_names() -> None:
    for module in pkgutil.iter_modules(actions.__path__):
        mod = importlib.import_module(f"actions.{module.name}")
        for obj in vars(mod).values():
            if isinstance(obj, type) and obj.__module__ == mod.__name__ and hasattr(obj, "name"):
                try:
                    action_name = obj().name()
                except TypeError:
                    continue
                expected = "".join(part.capitalize() for part in action_name.split("_"))
                assert obj.__name__ == expected, f"{obj.__name__} should be called {expected}"


def test_response_variables_are_filled_by_rule_data_or_the_engine() -> None:
    known = set(rule_variables(load_ruleset())) | CASE_VARIABLES
    for name, variations in DOMAIN["responses"].items():
        for variation in variations:
            unknown = set(VARIABLE.findall(variation.get("text", ""))) - known
            assert not unknown, f"{name} uses unknown variables {sorted(unknown)}"


def test_no_rule_number_or_link_is_written_into_python() -> None:
    rules = load_ruleset()
    links = set(rules.links.values())
    for folder in CODE_DIRS:
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            assert not any(link in text for link in links), f"{path} hard-codes a rule link"
            assert "9510211" not in text and "12分" not in text and "48分" not in text, f"{path} hard-codes a rule fact"


def test_every_ruling_names_the_rule_version() -> None:
    for name in ("utter_complaint_file_online", "utter_complaint_phone_support", "utter_complaint_tmall",
                 "utter_complaint_wait_for_success", "utter_seller_options", "utter_faq_penalty"):
        assert "{rule_label}" in DOMAIN["responses"][name][0]["text"], name


def test_every_yaml_data_file_declares_version_3_1() -> None:
    files = [*(ROOT / "data").rglob("*.yml"), *(ROOT / "rulesets").glob("*.yml"), *(ROOT / "tests").rglob("*.yml"),
             ROOT / "domain.yml"]
    for path in files:
        assert yaml.safe_load(path.read_text(encoding="utf-8")).get("version") == "3.1", path


README_PATH = re.compile(r"`((?:[\w.-]+/)*[\w.-]+\.(?:py|yml|yaml|md|txt|json|js|css|html|png|toml|lock)|[\w.-]+/)`")


def repo_names() -> set[str]:
    """Base names of everything in the repo, for the file map's short names (`rest.py` in `weiquan/channels/`)."""
    skip = {".venv", ".git", "node_modules", "models", "build", "var", "results"}
    return {path.name for path in ROOT.rglob("*") if not skip & set(path.relative_to(ROOT).parts)}


def test_every_path_named_in_the_readme_exists() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    names = repo_names()
    missing = [p for p in README_PATH.findall(text)
               if not (ROOT / p).exists() and not ("/" not in p.rstrip("/") and p.rstrip("/") in names)]
    assert not missing, f"README names paths that do not exist: {missing}"
