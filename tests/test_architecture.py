"""The checklists of docs/architecture.md ("where a new rule question / channel / rule-set version goes"), kept honest:
every rule question, channel and rule set the project has must have each item done, and every file a checklist names
must exist. A new one that skips a step fails here with the step named."""
from __future__ import annotations

import importlib
import re
import string
from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml

from actions.faq import FAQ_RESPONSES
from actions.presenter import Presenter
from weiquan.core.engine import Case, assess
from weiquan.core.ruleset import RULESET_DIR, load_ruleset
from weiquan.core.texts import load_text_file
from weiquan.core.workdays import WeekdayCalendar
from weiquan.edge.channels import render

ROOT = Path(__file__).resolve().parents[1]
DOMAIN = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
ARCHITECTURE = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
CREDENTIALS = yaml.safe_load((ROOT / "credentials.yml").read_text(encoding="utf-8"))
TODAY = date(2026, 11, 24)


def checklist(title: str) -> str:
    start = ARCHITECTURE.index(f"### {title}")
    end = ARCHITECTURE.find("\n### ", start + 1)
    return ARCHITECTURE[start:] if end == -1 else ARCHITECTURE[start:end]


@pytest.mark.parametrize("title", ["Where a new rule question goes", "Where a new channel goes",
                                   "Where a new rule-set version goes"])
def test_every_file_a_checklist_names_exists(title: str) -> None:
    named = re.findall(r"`((?:[\w.-]+/)+[\w.-]*\.(?:py|yml|md|tmpl))`", checklist(title))
    assert named, "the checklist names its files"
    concrete = [path for path in named if "<" not in path]
    assert [path for path in concrete if not (ROOT / path).exists()] == []


# ------------------------------------------------------------------------------------------- rule questions

def rule_steps(rule_name: str) -> set[str]:
    rules = yaml.safe_load((ROOT / "data" / "rules" / "faq.yml").read_text(encoding="utf-8"))["rules"]
    rule = next(rule for rule in rules if rule["rule"] == rule_name)
    return {option["intent"] for option in rule["steps"][0]["or"]}


@pytest.mark.parametrize("intent", sorted(FAQ_RESPONSES))
def test_every_rule_question_has_its_checklist_done(intent: str) -> None:
    assert intent in DOMAIN["intents"], "1. the intent in domain.yml"
    for slot in DOMAIN["forms"]["complaint_form"]["required_slots"]:
        for mapping in DOMAIN["slots"][slot]["mappings"]:
            if mapping["type"] in ("from_entity", "from_text"):
                assert intent in mapping.get("not_intent", []), f"1. {slot}: not read as an answer to the form"
    training = (ROOT / "data" / "nlu" / "faq.yml").read_text(encoding="utf-8")
    held_out = [path.read_text(encoding="utf-8") for path in (ROOT / "tests" / "data").glob("nlu_*.yml")]
    assert f"intent: {intent}\n" in training, "2. training examples in data/nlu/faq.yml"
    assert any(f"intent: {intent}\n" in text for text in held_out), "2. held-out examples in tests/data/nlu_*.yml"
    for response in FAQ_RESPONSES[intent]:
        assert response in DOMAIN["responses"], "4. the answer in domain.yml"
    assert any("{rule_label}" in variation["text"] for response in FAQ_RESPONSES[intent]
               for variation in DOMAIN["responses"][response]), "4. the answer names {rule_label}"
    labels = load_text_file(ROOT / "actions" / "intent_labels.yml")["labels"]
    assert intent in labels, "6. a button title in actions/intent_labels.yml"
    assert intent in rule_steps("answer a rule question"), "7. the rule in data/rules/faq.yml"
    assert intent in rule_steps("answer a rule question in the middle of the form, then go on"), "7. in-form rule"
    stories = (ROOT / "tests" / "stories" / "faq.yml").read_text(encoding="utf-8")
    assert f"intent: {intent}\n" in stories, "8. a test story in tests/stories/faq.yml"


# --------------------------------------------------------------------------------------------------- channels

CHANNELS = [name for name in CREDENTIALS if name.startswith("weiquan.")]


def channel_class(path: str) -> type:
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


@pytest.mark.parametrize("path", CHANNELS)
def test_every_channel_has_its_checklist_done(path: str) -> None:
    channel = channel_class(path)
    topic = channel.topic
    assert "from_settings" in vars(channel), "1. from_settings(credentials, services), no environment of its own"
    texts = ROOT / "weiquan" / "edge" / "channels" / f"{topic}_texts.yml"
    assert load_text_file(texts), f"1. its sentences in {texts.name}"
    assert hasattr(render, f"render_{topic}"), "3. render_<topic> in render.py"
    route = "/socket.io/" if channel.name() == "socketio" else f"/webhooks/{channel.name()}/"
    assert route in (ROOT / "deploy" / "haproxy.cfg.tmpl").read_text(encoding="utf-8"), "4. its HAProxy route"
    assert list((ROOT / "tests" / "e2e").glob(f"test_{topic}*.py")), "5. an end-to-end test"
    bad_input = (ROOT / "tests" / "e2e" / "test_bad_input.py").read_text(encoding="utf-8")
    assert f"def test_{topic}_" in bad_input, "5. its rows in the bad-input corpus"
    docs = "".join((ROOT / "docs" / name).read_text(encoding="utf-8") for name in ("channels.md", "widget.md"))
    assert channel.name() in docs.lower() or path in docs, "6. its documentation"


# ------------------------------------------------------------------------------------------------- rule sets

RULESETS = sorted(path.stem for path in RULESET_DIR.glob("*.yml"))


def canonical_cases(window: int) -> list[Case]:
    def days(n: int) -> date:
        return TODAY - timedelta(days=n)

    return [
        Case("taobao", "success", days(3), days(3), ("calls",), ("chat_screenshot",)),
        Case("taobao", "success", days(window), days(window)),
        Case("taobao", "success", days(window + 1), days(window + 1), ("threat",), (), safety_threat=True),
        Case("taobao", "success", None, None, gave_up=("success_time",)),
        Case("tmall", None),
        Case("taobao", "shipped"),
        Case("taobao", "closed"),
    ]


@pytest.mark.parametrize("ruleset_id", RULESETS)
def test_every_rule_set_rules_every_canonical_case_and_fills_every_response(ruleset_id: str) -> None:
    rules = load_ruleset(ruleset_id)
    labels = {load_ruleset(other).label for other in RULESETS if other != ruleset_id}
    assert rules.label not in labels, "1. its own label (the version the bot names)"
    presenter = Presenter(rules, TODAY)
    for case in canonical_cases(rules.eligibility.window_days):
        decision = assess(case, rules, TODAY, WeekdayCalendar())
        variables = presenter.decision_variables(decision)
        for response in decision.responses:
            for variation in DOMAIN["responses"][response]:
                needed = {field for _, field, _, _ in string.Formatter().parse(variation["text"]) if field}
                assert needed <= set(variables), f"{response} needs {sorted(needed - set(variables))}"


# The one composition root (issue 18): inside weiquan/ and actions/, only the clock reads the wall clock and only the
# composition root reads the environment; weiquan/ops/ is the server harness (it starts processes with an environment).
WALL_CLOCK = re.compile(r"\btime\.time\(|\bdatetime\.(?:now|utcnow|today)\(|\bdate\.today\(")
ENVIRONMENT = re.compile(r"\bos\.environ\b|\bos\.getenv\(|\bfrom os import (?:environ|getenv)\b")
ROOT_READERS = {"weiquan/core/clock.py": WALL_CLOCK, "weiquan/services.py": ENVIRONMENT}


def project_modules() -> list[Path]:
    return sorted(p for folder in ("weiquan", "actions") for p in (ROOT / folder).rglob("*.py")
                  if "ops" not in p.relative_to(ROOT).parts)


@pytest.mark.parametrize("pattern", [WALL_CLOCK, ENVIRONMENT], ids=["wall clock", "environment"])
def test_only_the_clock_and_the_composition_root_read_the_clock_and_the_environment(pattern: re.Pattern[str]) -> None:
    readers = []
    for path in project_modules():
        name = path.relative_to(ROOT).as_posix()
        code = "\n".join(line.split("#")[0] for line in path.read_text(encoding="utf-8").splitlines())
        code = re.sub(r'"""[\s\S]*?"""', "", code)  # docstrings may name them
        if pattern.search(code) and ROOT_READERS.get(name) is not pattern:
            readers.append(name)
    assert len(project_modules()) > 40
    assert readers == [], f"read {pattern.pattern} outside the clock / services.py: {readers}"
