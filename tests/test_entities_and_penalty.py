"""Issue 20, two of the slips a new buyer hit: evidence given as a list (有聊天截图和短信 kept only the first item;
negations and corrections read wrong), and the penalty answer that said 视为严重违规 twice in one sentence.
The value mapper is run on what the model tagged; the answers are filled from the rule data (no model).
"""
from __future__ import annotations

import re
from datetime import date

import pytest
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message

from actions.presenter import Presenter
from tests.test_consistency import DOMAIN
from weiquan.nlu.entity_values import EntityValueMapper, default_grammar, default_table
from weiquan.services import default_services

TODAY = date(2026, 12, 7)


# ------------------------------------------------------------------------------------ 1. evidence read as a list

def mapped(text: str, tagged: list[tuple[str, str, str]]) -> list[tuple[str, str]]:
    """The entities the value mapper leaves, given what the model tagged: (surface, entity, value)."""
    entities = []
    for surface, entity, value in tagged:
        start = text.index(surface)
        entities.append({"entity": entity, "start": start, "end": start + len(surface), "value": value,
                         "extractor": "DIETClassifier"})
    message = Message(data={TEXT: text, ENTITIES: entities})
    EntityValueMapper(default_table(), default_grammar()).process([message])
    return sorted((e["entity"], e["value"]) for e in message.get(ENTITIES))


@pytest.mark.parametrize(
    ("text", "tagged", "expected"),
    [
        # the slip: the model tags the first item only, the one after 和 was dropped
        ("有聊天截图和短信", [("聊天截图", "evidence", "chat_screenshot")],
         [("evidence", "chat_screenshot"), ("evidence", "sms_photo")]),
        # …or tags it as the harassment type
        ("有聊天截图和短信", [("聊天截图", "evidence", "chat_screenshot"), ("短信", "harassment_type", "sms")],
         [("evidence", "chat_screenshot"), ("evidence", "sms_photo")]),
        ("短信截图、通话记录、录音都留着", [("通话记录", "evidence", "call_log")],
         [("evidence", "call_log"), ("evidence", "recording"), ("evidence", "sms_photo")]),
        ("聊天记录以及通话清单", [("聊天记录", "evidence", "chat_screenshot")],
         [("evidence", "call_log"), ("evidence", "chat_screenshot")]),
        ("有截图，没有录音", [("截图", "evidence", "chat_screenshot"), ("录音", "evidence", "recording")],
         [("evidence", "chat_screenshot")]),
        ("录音没有，短信有", [("录音", "evidence", "recording"), ("短信", "evidence", "sms_photo")],
         [("evidence", "sms_photo")]),
        ("不是短信，是通话记录", [("短信", "harassment_type", "sms"), ("通话记录", "evidence", "call_log")],
         [("evidence", "call_log")]),
        ("不是截图，是录音", [("截图", "evidence", "chat_screenshot")], [("evidence", "recording")]),
        # said after a ruling: the model took the SMS for the harassment type
        ("对了，我还存了他发的短信", [("短信", "harassment_type", "sms")], [("evidence", "sms_photo")]),
        ("卖家不是发短信，是打电话骚扰", [("发短信", "harassment_type", "sms"), ("打电话", "harassment_type", "calls")],
         [("harassment_type", "calls")]),
        # not lists, not negations: left as the model read them
        ("卖家打电话和发短信", [("打电话", "harassment_type", "calls"), ("发短信", "harassment_type", "sms")],
         [("harassment_type", "calls"), ("harassment_type", "sms")]),
        ("卖家没完没了地打电话", [("打电话", "harassment_type", "calls")], [("harassment_type", "calls")]),
        ("卖家短信轰炸我，我有聊天截图",
         [("短信轰炸", "harassment_type", "sms"), ("聊天截图", "evidence", "chat_screenshot")],
         [("evidence", "chat_screenshot"), ("harassment_type", "sms")]),
    ],
)
def test_evidence_lists_negations_and_corrections_read_right(text: str, tagged: list, expected: list) -> None:
    assert mapped(text, tagged) == expected


# ------------------------------------------------------------------------------ 4. no answer says a clause twice

CLAUSES = re.compile(r"[，,；;：:（）()、]")
SENTENCES = re.compile(r"[。！？!?\n]")


def repeated_clauses(text: str) -> list[str]:
    """Clauses (4+ characters) said twice in one sentence, or said again inside another clause of it."""
    found = []
    for sentence in SENTENCES.split(text):
        clauses = [c.strip() for c in CLAUSES.split(sentence) if len(c.strip()) >= 4]
        for i, clause in enumerate(clauses):
            if any(clause in other for j, other in enumerate(clauses) if j != i):
                found.append(clause)
    return found


class Blank(dict):
    def __missing__(self, key: str) -> str:
        return f"<{key}>"


def test_the_clause_check_catches_the_penalty_slip() -> None:
    assert repeated_clauses("情节严重的视为严重违规，每次扣 48 分，视为严重违规，店铺可能被关停。") == ["视为严重违规"]


def test_no_answer_repeats_a_clause() -> None:
    variables = Blank(Presenter(default_services().rules, TODAY).rule_variables())
    for name, variations in DOMAIN["responses"].items():
        for variation in variations:
            text = (variation.get("text") or "").format_map(variables)
            assert not repeated_clauses(text), f"{name} says twice: {repeated_clauses(text)}\n{text}"
