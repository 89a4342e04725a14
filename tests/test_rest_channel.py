"""The guarded REST channel answers malformed bodies with a 4xx that says what is wrong."""
from __future__ import annotations

import pytest
from sanic.response import HTTPResponse

from weiquan.edge.channels.rest import MAX_MESSAGE_CHARS, WholeMessageCollector, check_body


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ([], 400),
        ("hello", 400),
        ({"sender": "u"}, 400),
        ({"sender": "u", "message": 5}, 400),
        ({"message": "你好"}, 400),
        ({"sender": "", "message": "你好"}, 400),
        ({"sender": "u" * 200, "message": "你好"}, 400),
        ({"sender": "u", "message": "骚" * (MAX_MESSAGE_CHARS + 1)}, 413),
    ],
)
def test_malformed_bodies_get_a_4xx(body, status: int) -> None:
    result = check_body(body)
    assert isinstance(result, HTTPResponse)
    assert result.status == status


@pytest.mark.parametrize("message", ["", "😡😡😡", "卖家骚扰我", "骚" * MAX_MESSAGE_CHARS])
def test_well_formed_bodies_pass(message: str) -> None:
    assert check_body({"sender": "u1", "message": message}) == ("u1", message)


async def test_each_bot_message_is_one_entry_with_its_custom_payload() -> None:
    collector = WholeMessageCollector()
    await collector.send_response("u1", {"text": "第一段\n\n第二段", "custom": {"kind": "phone_script"}})
    await collector.send_response("u1", {"text": "选一个", "buttons": [{"title": "淘宝", "payload": "/inform"}]})
    assert collector.messages == [
        {"recipient_id": "u1", "text": "第一段\n\n第二段", "custom": {"kind": "phone_script"}},
        {"recipient_id": "u1", "text": "选一个", "buttons": [{"title": "淘宝", "payload": "/inform"}]},
    ]
