"""The project's pieces name each other correctly: domain ↔ actions ↔ engine ↔ rule data ↔ README."""
from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from datetime import date
from pathlib import Path

import pytest
import yaml
from rasa_sdk.executor import ActionExecutor

import actions
from actions.presenter import Presenter
from scripts.validate_data import CODE_DIRS
from scripts.validate_data import responses_named_in_code as code_response_names
from weiquan.core.domain import form_slots
from weiquan.core.ruleset import load_ruleset
from weiquan.core.vocabulary import load_vocabulary

ROOT = Path(__file__).resolve().parent.parent
DOMAIN = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
VARIABLE = re.compile(r"\{([a-z_]+)\}")

# Variables responses may use besides the rule-set ones: set per case by the presenter or the form.
CASE_VARIABLES = {
    "day_count", "last_filing_date", "days_left", "handle_by", "finish_by", "earliest_deadline", "latest_deadline",
    "cutoff_date", "earliest_date", "latest_date", "success_time", "seller_deadline", "seller_days_left",
}


def story_response_names() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "data").rglob("*.yml"):
        names.update(re.findall(r"action: (utter_[a-z0-9_]+)", path.read_text(encoding="utf-8")))
    return names


def test_every_response_named_in_code_exists_in_the_domain() -> None:
    missing = code_response_names() - set(DOMAIN["responses"])
    assert not missing, f"responses used in code but not in domain.yml: {sorted(missing)}"


RASA_OWN = {"utter_default", "utter_restart"}  # said by Rasa's own fallback and action_restart


def test_every_domain_response_is_used_somewhere() -> None:
    asked = {f"utter_ask_{slot}" for form in DOMAIN["forms"].values() for slot in form["required_slots"]}
    used = code_response_names() | story_response_names() | asked | RASA_OWN
    unused = set(DOMAIN["responses"]) - used
    assert not unused, f"responses nobody utters: {sorted(unused)}"


def test_sdk_registers_exactly_the_domain_actions() -> None:
    executor = ActionExecutor()
    for module in pkgutil.iter_modules(actions.__path__):
        executor.register_package(f"actions.{module.name}")
    names = {next(iter(action)) if isinstance(action, dict) else action for action in DOMAIN["actions"]}
    assert set(executor.actions) == names


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
    known = set(Presenter(load_ruleset(), date(2026, 1, 1)).rule_variables()) | CASE_VARIABLES
    for name, variations in DOMAIN["responses"].items():
        for variation in variations:
            unknown = set(VARIABLE.findall(variation.get("text", ""))) - known
            assert not unknown, f"{name} uses unknown variables {sorted(unknown)}"


def rule_facts() -> tuple[set[str], set[str]]:
    """The rule data's numbers (every integer field) and its links and phone numbers."""
    rules = load_ruleset()
    numbers: set[str] = set()

    def walk(value: object) -> None:
        if isinstance(value, bool):
            return
        if isinstance(value, int):
            numbers.add(str(value))
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(yaml.safe_load((ROOT / "rulesets" / f"{rules.id}.yml").read_text(encoding="utf-8")))
    facts = set(rules.links.values()) | {value for value in rules.contacts.values() if value.isdigit()}
    return numbers, facts


def string_literals(path: Path, docstrings: bool = True) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip: set[int] = set()
    if not docstrings:
        for node in ast.walk(tree):
            body = getattr(node, "body", None)
            if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and isinstance(
                    body[0].value, ast.Constant):
                skip.add(id(body[0].value))
    return [node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip]


# A rule number as user text would carry it: "15天", "12 分", "3个工作日".
NUMBER_WITH_UNIT = re.compile(r"(?<!\d)(\d+)\s*(?:天|日|分|个?工作日|小时)")


def copied_facts(literals: list[str], numbers: set[str], facts: set[str]) -> list[str]:
    return [literal for literal in literals
            if any(fact in literal for fact in facts) or set(NUMBER_WITH_UNIT.findall(literal)) & numbers]


def test_no_rule_number_link_or_phone_number_is_written_into_python() -> None:
    """Every string literal in weiquan/ and actions/ (docstrings aside): a link or phone number of the rule data, or
    one of its numbers with a unit ("15天", "12分"), means a rule fact was copied into code instead of read."""
    numbers, facts = rule_facts()
    offenders = []
    for folder in CODE_DIRS:
        for path in (ROOT / folder).rglob("*.py"):
            offenders += [(path.name, literal)
                          for literal in copied_facts(string_literals(path, docstrings=False), numbers, facts)]
    assert not offenders, f"rule facts written into Python: {offenders}"


# Text files the bot, the console or the widget show, outside the rule data: training and test data hold what buyers
# type ("交易成功15天了") and are not scanned.
TEXT_SCAN_SKIP = {"rulesets", "data", "tests", "node_modules", "dist", "build", "models", "results", ".venv", ".git"}
# A rule number or contact that stands in such a file for another reason, with the reason.
NOT_RULE_FACTS = {
    ("domain.yml", "「5天前」"): "an example of how to answer the date question",
    ("domain.yml", "「11月3日」"): "an example date",
    ("weiquan/handoff/texts.yml", "48 小时"): "WeChat's customer-service message window, not a platform rule",
    ("weiquan/nlu/problem_patterns.yml", "9510211"): "recognises a buyer who names the hotline",
}
JS_STRING = re.compile(r"""(["'`])((?:\\.|(?!\1).)*)\1""")


def yaml_text_literals(path: Path) -> list[str]:
    found: list[str] = []

    def walk(value: object) -> None:
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
        walk(document)
    return found


def text_literals(path: Path) -> list[str]:
    if path.suffix in (".yml", ".yaml"):
        return yaml_text_literals(path)
    return [match.group(2) for match in JS_STRING.finditer(path.read_text(encoding="utf-8"))]


def test_no_rule_fact_is_written_into_a_text_file_or_the_widget() -> None:
    """Every YAML file and every JS file outside rulesets/ (and outside training and test data): a rule number with a
    unit, a link or a phone number of the rule data means a fact was copied instead of read from the rule data."""
    numbers, facts = rule_facts()
    offenders = []
    for path in sorted(ROOT.rglob("*")):
        relative = path.relative_to(ROOT)
        if path.suffix not in (".yml", ".yaml", ".js", ".mjs") or TEXT_SCAN_SKIP & set(relative.parts):
            continue
        for literal in copied_facts(text_literals(path), numbers, facts):
            if not any(file == relative.as_posix() and snippet in literal for file, snippet in NOT_RULE_FACTS):
                offenders.append((relative.as_posix(), literal))
    assert not offenders, f"rule facts written into text files: {offenders}"


def test_the_text_file_scan_sees_yaml_and_js(tmp_path: Path) -> None:
    numbers, facts = rule_facts()
    planted = tmp_path / "texts.yml"
    planted.write_text('version: "3.1"\nnote: 在 15 天期限内\nnested: {police: 请拨打 110}\n', encoding="utf-8")
    script = tmp_path / "card.js"
    script.write_text('const a = "最晚 15 天"; const b = `热线 9510211`; const c = "共 20 项";\n', encoding="utf-8")
    assert len(copied_facts(text_literals(planted), numbers, facts)) == 2
    assert len(copied_facts(text_literals(script), numbers, facts)) == 2


def test_the_rule_fact_scan_catches_a_copied_fact(tmp_path: Path) -> None:
    numbers, facts = rule_facts()
    assert {"15", "12", "48", "3", "5"} <= numbers and {"110", "9510211"} <= facts
    planted = tmp_path / "planted.py"
    link = load_ruleset().link("appeal_form")
    planted.write_text(f'"""Docstring."""\nA = "交易成功后15天内可以投诉"\nB = "{link}"\nC = "热线 9510211"\n'
                       'D = r"\\d{{1,3}}天"\n', encoding="utf-8")
    assert len(copied_facts(string_literals(planted, docstrings=False), numbers, facts)) == 3


VOCABULARY = load_vocabulary()


def button_codes(response: str, entity: str) -> dict[str, str]:
    """code → title of the buttons of a response whose payload sets `entity`."""
    found = {}
    for button in DOMAIN["responses"][response][0].get("buttons", []):
        # Rasa fills {variables} in buttons too, turning the payload's doubled braces into single ones
        match = re.search(r'\{"' + entity + r'": "([a-z_]+)"\}', button["payload"].format())
        if match:
            found[match.group(1)] = button["title"]
    return found


@pytest.mark.parametrize(
    ("response", "entity", "lists"),
    [
        ("utter_ask_platform", "platform", ("platform",)),
        ("utter_ask_trade_status", "trade_status", ("trade_status",)),
        ("utter_ask_harassment_type", "harassment_type", ("harassment_type",)),
        ("utter_ask_evidence", "evidence", ("evidence", "evidence_answers")),
    ],
)
def test_form_buttons_carry_the_vocabulary_codes_and_titles(response: str, entity: str, lists: tuple[str, ...]) -> None:
    expected = {code: title for name in lists for code, title in VOCABULARY.buttons(name).items()}
    assert button_codes(response, entity) == expected


@pytest.mark.parametrize("slot", ["platform", "trade_status", "problem"])
def test_categorical_slots_allow_exactly_the_vocabulary_codes(slot: str) -> None:
    assert DOMAIN["slots"][slot]["values"] == list(VOCABULARY.codes(slot))


def test_every_problem_code_has_its_own_pointer() -> None:
    variations = DOMAIN["responses"]["utter_out_of_scope"]
    conditioned = {v["condition"][0]["value"] for v in variations if v.get("condition")}
    assert conditioned | {"other"} == set(VOCABULARY.codes("problem"))
    assert any(not v.get("condition") for v in variations), "a pointer for any other problem"


def test_nlu_synonyms_map_only_to_vocabulary_codes() -> None:
    data = yaml.safe_load((ROOT / "data" / "nlu" / "synonyms.yml").read_text(encoding="utf-8"))
    known = {code for terms in VOCABULARY.lists.values() for code in (t.code for t in terms)}
    values = {block["synonym"] for block in data["nlu"] if "synonym" in block}
    assert values <= known, f"synonyms map to codes the bot does not know: {sorted(values - known)}"


def test_every_form_question_has_what_the_bot_needs_to_ask_it_give_up_and_summarise_it() -> None:
    """A slot added to the form in domain.yml needs nothing else in Python: its question, the value the form records
    after two unread answers, and its line in the console summary all derive from the domain (weiquan/core/domain.py).
    What a new slot does need is data, and this names what is missing."""
    from weiquan.core.contracts import SummaryFacts
    from weiquan.core.domain import SLOT_CONTRACTS, give_up_value, question
    from weiquan.handoff.summary import fact_slots, texts

    for slot in form_slots():
        assert question(slot) in DOMAIN["responses"], f"{slot}: no {question(slot)} response to ask it"
        recorded = give_up_value(slot)
        spec = DOMAIN["slots"][slot]
        if slot in SLOT_CONTRACTS:
            assert SLOT_CONTRACTS[slot].from_slot(recorded) is not None
        elif spec["type"] == "categorical":
            assert recorded in spec["values"], f"{slot}: its values need {recorded!r} for a question given up"
        else:
            assert spec["type"] == "list" and recorded == ["unknown"]
        assert slot in texts()["fields"], f"{slot}: the console summary needs a field name in handoff/texts.yml"
    assert set(fact_slots()) == set(SummaryFacts.__annotations__), "SummaryFacts must list every fact slot"


def test_every_ruling_and_rule_answer_names_the_rule_version() -> None:
    from actions.faq import FAQ_RESPONSES

    rulings = {"utter_complaint_file_online", "utter_complaint_phone_support", "utter_complaint_tmall",
               "utter_complaint_wait_for_success", "utter_complaint_either_phone", "utter_complaint_closed_trade",
               "utter_seller_options"}
    answers = {responses[0] for responses in FAQ_RESPONSES.values()}
    for name in sorted(rulings | answers):
        assert "{rule_label}" in DOMAIN["responses"][name][0]["text"], name


def test_every_yaml_data_file_declares_version_3_1() -> None:
    files = [*(ROOT / "data").rglob("*.yml"), *(ROOT / "rulesets").glob("*.yml"), *(ROOT / "tests").rglob("*.yml"),
             ROOT / "domain.yml"]
    # The outside helper's threat sets (issue 16) are copied in unchanged, in their own format (version "1").
    handed_over = {ROOT / "tests" / "data" / name
                   for name in ("safety_eval.yml", "safety_final.yml", "safety_final2.yml", "safety_final3.yml")}
    for path in [path for path in files if path not in handed_over]:
        assert yaml.safe_load(path.read_text(encoding="utf-8")).get("version") == "3.1", path


README_PATH = re.compile(r"`((?:[\w.-]+/)*[\w.-]+\.(?:py|yml|yaml|md|txt|json|js|css|html|png|toml|lock)|[\w.-]+/)`")


def repo_names() -> set[str]:
    """Base names of everything in the repo, for the file map's short names (`rest.py` in `weiquan/edge/channels/`)."""
    skip = {".venv", ".git", "node_modules", "models", "build", "var", "results"}
    return {path.name for path in ROOT.rglob("*") if not skip & set(path.relative_to(ROOT).parts)}


def test_every_path_named_in_the_readme_exists() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    names = repo_names()
    missing = [p for p in README_PATH.findall(text)
               if not (ROOT / p).exists() and not ("/" not in p.rstrip("/") and p.rstrip("/") in names)]
    assert not missing, f"README names paths that do not exist: {missing}"


async def test_buttons_leave_rasa_with_the_payload_a_click_must_send() -> None:
    """Rasa fills {variables} in buttons: the domain doubles the payload's braces so that the NLG (slots filled, as in
    every real turn) hands out the plain JSON shortcut, with no interpolation error per button."""
    from rasa.core.nlg.response import TemplatedNaturalLanguageGenerator
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.trackers import DialogueStateTracker

    domain = Domain.load(str(ROOT / "domain.yml"))
    nlg = TemplatedNaturalLanguageGenerator(domain.responses)
    tracker = DialogueStateTracker.from_events("buttons", [], domain.slots)
    for response in ("utter_ask_platform", "utter_ask_evidence", "utter_ask_harassment_type"):
        message = await nlg.generate(response, tracker, "rest")
        payloads = [button["payload"] for button in message["buttons"]]
        assert all(payload.count("{") <= 1 and payload.count("}") <= 1 for payload in payloads), payloads
    message = await nlg.generate("utter_ask_platform", tracker, "rest")
    assert message["buttons"][0]["payload"] == '/inform{"platform": "taobao"}'
