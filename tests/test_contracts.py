"""The contracts of weiquan/core/contracts.py, and the golden file every consumer reads (tests/golden/).

The golden file is written here from the real producers; a producer whose output changes shape fails this test (or
mypy) until the golden file is regenerated on purpose, and then every consumer's test draws the new shape.
"""
from __future__ import annotations

import json
import os
from dataclasses import replace
from datetime import date
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.complaint import ValidateComplaintForm
from actions.presenter import Presenter
from tests.golden import GOLDEN_FILE, golden
from tests.test_consistency import DOMAIN
from weiquan.core.clock import FixedClock
from weiquan.core.contracts import ContractError, SuccessTime, card_fields, check_card
from weiquan.core.domain import response_cards
from weiquan.core.engine import evidence_checks
from weiquan.handoff import summary
from weiquan.handoff.service import operator_event, status_event
from weiquan.services import default_services

TODAY = date(2026, 11, 24)
SERVICES = replace(default_services(), clock=FixedClock(TODAY))


def test_a_success_time_goes_through_the_slot_and_back() -> None:
    exact = SuccessTime("5天前", date(2026, 11, 19), date(2026, 11, 19))
    assert SuccessTime.from_slot(exact.to_slot()) == exact
    assert exact.days_since(TODAY) == (5, 5)
    vague = SuccessTime("半个多月前", date(2026, 11, 1), date(2026, 11, 8))
    assert vague.days_since(TODAY) == (16, 23)
    assert SuccessTime.from_slot(SuccessTime.unknown().to_slot()) == SuccessTime(None, None, None)
    assert SuccessTime.unknown().days_since(TODAY) is None


@pytest.mark.parametrize("value", [None, "5天前"])
def test_a_slot_the_form_has_not_read_yet_is_not_a_success_time(value: Any) -> None:
    assert SuccessTime.from_slot(value) is None


@pytest.mark.parametrize("value", [
    {"said": "5天", "earliest": "2026-11-19"},  # the old shape's missing key
    {"said": "5天", "earliest": "2026-11-19", "latest": None},  # half a range
    {"said": "5天", "earliest": "2026-11-20", "latest": "2026-11-19"},  # backwards
    {"said": "5天", "earliest": "19.11.2026", "latest": "19.11.2026"},
    {"said": 5, "earliest": None, "latest": None},
    ["5天"],
])
def test_a_slot_of_another_shape_fails_loudly(value: Any) -> None:
    with pytest.raises(ContractError):
        SuccessTime.from_slot(value)


def test_a_card_of_another_shape_fails_the_check() -> None:
    with pytest.raises(ContractError):
        check_card({"kind": "filing_steps", "steps": []})
    with pytest.raises(ContractError):
        check_card({"kind": "poster"})


def test_every_card_kind_the_domain_declares_is_a_contract_type() -> None:
    assert set(response_cards().values()) <= set(card_fields())


# ---------------------------------------------------------------------------------------- the golden file

def form_tracker(text: str) -> Tracker:
    slots = {name: None for name in DOMAIN["slots"]} | {"requested_slot": "success_time", "success_time": text}
    latest = {"text": text, "intent": {"name": "inform", "confidence": 0.9}, "entities": []}
    return Tracker("golden", slots, latest, [], False, None, {"name": "complaint_form"}, "action_listen")


def produced() -> dict[str, Any]:
    """Each contract, made by the code that makes it in production."""
    rules = SERVICES.rules
    presenter = Presenter(rules, TODAY)
    have = [rules.buyer_evidence[0].code]
    checks = evidence_checks(rules.buyer_evidence, have)
    cards: dict[str, Any] = {
        "filing_steps": presenter.card("utter_complaint_filing_steps"),
        "phone_script": presenter.card("utter_complaint_phone_script"),
        "evidence": presenter.card("utter_complaint_evidence_checklist", checks),
        "safety": presenter.card("utter_safety_police_first"),
        "operator": operator_event("你好，我是人工客服。", "小王")["data"]["custom"],
        "handoff_status": status_event(DOMAIN["responses"]["utter_handoff_connected"][0],
                                       "utter_handoff_connected")["data"]["custom"],
    }
    form = ValidateComplaintForm(SERVICES)
    slot = form.validate_success_time("交易成功5天了", CollectingDispatcher(), form_tracker("交易成功5天了"), DOMAIN)
    tracker = {"events": [{"event": "slot", "name": "platform", "value": "taobao"},
                          {"event": "slot", "name": "success_time", "value": slot["success_time"]},
                          {"event": "slot", "name": "evidence", "value": have}]}
    return {"today": TODAY.isoformat(), "cards": cards, "success_time": slot["success_time"],
            "summary": summary.summarize(tracker, TODAY)}


def test_the_golden_file_is_what_the_producers_make_now() -> None:
    made = json.loads(json.dumps(produced(), ensure_ascii=False))
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN_FILE.write_text(json.dumps(made, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    assert made == golden(), "a producer changed a contract's shape or content: UPDATE_GOLDEN=1 after review"


def test_the_golden_cards_and_values_have_their_contract_shapes() -> None:
    data = golden()
    assert set(data["cards"]) == set(card_fields())
    for kind, card in data["cards"].items():
        assert check_card(card) == kind
    assert SuccessTime.from_slot(data["success_time"]) == SuccessTime("5天", date(2026, 11, 19), date(2026, 11, 19))
    assert data["summary"]["days_since_success"] == [5, 5]
    assert any("5 天前" in line for line in data["summary"]["lines"])
