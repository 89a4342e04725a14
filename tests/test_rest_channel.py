"""The guarded REST channel answers malformed bodies with a 4xx that says what is wrong."""
from __future__ import annotations

import pytest
from sanic.response import HTTPResponse

from weiquan.channels.rest import MAX_MESSAGE_CHARS, check_body


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
