"""Every rule file loads; a broken one fails here, not in a conversation."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from weiquan.core.ruleset import RULESET_DIR, RuleSetError, available_rulesets, load_ruleset, parse_ruleset

SEED_FILE = RULESET_DIR / "taobao_2013.yml"


@pytest.mark.parametrize("ruleset_id", available_rulesets())
def test_every_rule_file_loads(ruleset_id: str) -> None:
    rules = load_ruleset(ruleset_id)
    assert rules.id == ruleset_id
    assert rules.label


def test_seed_numbers_are_the_seeds() -> None:
    rules = load_ruleset("taobao_2013")
    assert rules.eligibility.window_days == 15
    assert (rules.penalty.ordinary_points, rules.penalty.serious_points) == (12, 48)
    assert (rules.processing.handle_within_workdays, rules.processing.finish_within_workdays) == (3, 5)
    assert rules.processing.seller_evidence_days == 3
    assert rules.eligibility.platforms_online == ("taobao",)
    assert [item.code for item in rules.seller_evidence][-1] == "call_log"
    assert len(rules.filing_paths) == 2


def _seed() -> dict:
    return yaml.safe_load(Path(SEED_FILE).read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    "breakage",
    [
        lambda d: d["eligibility"].pop("window_days"),
        lambda d: d["eligibility"].__setitem__("window_days", "15"),
        lambda d: d["penalty"].__setitem__("serious_candidates", ["stalking"]),
        lambda d: d["filing_paths"][0].__setitem__("link", "nowhere"),
        lambda d: d["evidence"]["buyer"][0].__setitem__("code", "selfie"),
        lambda d: d.__setitem__("rule_centre", "missing_link"),
        lambda d: d.__setitem__("phone_script", []),
        lambda d: d.__setitem__("links_may_have_moved", "yes"),
    ],
)
def test_broken_rule_data_is_rejected(breakage) -> None:
    data = copy.deepcopy(_seed())
    breakage(data)
    with pytest.raises(RuleSetError):
        parse_ruleset(data)
