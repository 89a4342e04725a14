"""`rasa data validate --fail-on-warnings`, with one documented extension.

Rasa 3.6's validator counts a response as used only when a story or rule names it; it cannot see responses that
custom actions utter (rasa#11843 and friends), so every response chosen by the rules engine would be reported as
unused and fail the gate; nor does it see the `utter_ask_<slot>` questions that forms ask. This wrapper runs the real
CLI unchanged except that those two kinds count as used: responses named as string literals in actions/ or weiquan/
(or in the tables the actions read, actions/*.yml), and `utter_ask_<slot>` for the slots a form requires.
tests/test_consistency.py checks the other direction: every such name exists in domain.yml.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESPONSE_LITERAL = re.compile(r"""["'](utter_[a-z0-9_]+)["']""")
RESPONSE_IN_TABLE = re.compile(r"response: (utter_[a-z0-9_]+)")
CODE_DIRS = ("actions", "weiquan")
READERS_ONLY = ("weiquan/analytics",)  # name responses to count them in the analytics store; they utter nothing


def responses_named_in_code() -> set[str]:
    names: set[str] = set()
    for folder in CODE_DIRS:
        for path in (ROOT / folder).rglob("*.py"):
            if path.relative_to(ROOT).as_posix().startswith(READERS_ONLY):
                continue
            names.update(RESPONSE_LITERAL.findall(path.read_text(encoding="utf-8")))
    for path in (ROOT / "actions").glob("*.yml"):  # tables the actions read (e.g. the clarify pairs)
        names.update(RESPONSE_IN_TABLE.findall(path.read_text(encoding="utf-8")))
    return names


def form_questions() -> set[str]:
    import yaml

    domain = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
    return {f"utter_ask_{slot}" for form in (domain.get("forms") or {}).values() for slot in form["required_slots"]}


def main() -> int:
    from rasa import __main__ as rasa_cli
    from rasa.validator import Validator

    used_by_actions = responses_named_in_code() | form_questions()
    original = Validator._gather_utterance_actions

    def gather_without_action_responses(self: Validator) -> set[str]:
        return original(self) - used_by_actions

    Validator._gather_utterance_actions = gather_without_action_responses  # type: ignore[method-assign]
    sys.argv = ["rasa", "data", "validate", "--fail-on-warnings"]
    rasa_cli.main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
