"""What the trained NLU hands the dialogue for real-style messages (needs a trained model in models/).

The fields the lead's actions read: `normalized_text`, a normalised `success_time`, evidence values including the
new `all`, the `problem` of an other-problem message, and no seller answer for a buyer's passive message.
"""
from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bench import nlu_eval

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def parse() -> Any:
    model = nlu_eval.latest_model(nlu_eval.MODELS_DIR)
    if model is None:
        pytest.skip(f"no trained model in {nlu_eval.MODELS_DIR}: run `make train` first")
    agent = nlu_eval.load_agent(model)
    return lambda text: asyncio.run(agent.parse_message(text))


def values(result: dict[str, Any], entity: str) -> list[str]:
    return [e["value"] for e in result.get("entities") or [] if e["entity"] == entity]


def test_normalized_text_and_a_normalised_success_time(parse) -> None:
    result = parse("淘寶買的，交易成功兩週前，賣家天天打電話")
    assert result["text"] == "淘寶買的，交易成功兩週前，賣家天天打電話"  # what the user typed
    assert result["normalized_text"] == "淘宝买的，交易成功两周前，卖家天天打电话"
    assert values(result, "success_time") and all(not set("兩週") & set(v) for v in values(result, "success_time"))


@pytest.mark.parametrize("text", ["被店家骚扰了怎么办", "被卖家缠上了", "被淘宝卖家骚扰", "被卖家骂了"])
def test_a_buyers_passive_message_never_gets_the_seller_answer(parse, text: str) -> None:
    assert parse(text)["intent"]["name"] not in {"seller_accused", "ask_penalty"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("都有", {"all"}),
        ("啥也没留", {"none"}),
        ("通话记录和录音都有", {"call_log", "recording"}),  # the items, not "all"
    ],
)
def test_free_evidence_answers(parse, text: str, expected: set[str]) -> None:
    # "短信" alone is a harassment type as often as a piece of evidence; the NLU cannot know which without the
    # question, so the form reads it from the question it asked (test_actions::test_evidence_named_in_any_words,
    # and end to end tests/e2e/test_dialogue_e2e.py: "手机里存着他的短信" is ticked).
    assert set(values(parse(text), "evidence")) == expected


def test_an_other_problem_gets_its_problem_and_no_complaint(parse) -> None:
    result = parse("买的羽绒服跑绒跑得厉害，卖家不给退，说过了七天")
    assert result["intent"]["name"] == "out_of_scope"
    assert values(result, "problem") in (["quality"], ["refund"])


def test_a_veiled_threat_is_a_safety_threat(parse) -> None:
    result = parse("卖家说你家那辆白车还想要吗，我停在楼下的")
    assert result["intent"]["name"] == "report_safety_threat"
    assert result.get("nlu_hesitation") is None
