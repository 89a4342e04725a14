"""The guarded REST channel answers malformed bodies with a 4xx that says what is wrong, and serves only the bearer
of REST_TOKEN (or, without one, loopback clients)."""
from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from sanic import Sanic
from sanic.response import HTTPResponse

from tests.test_limits import EchoBot, _apps
from tests.test_wechat_channel import run_app
from weiquan.edge.channels.rest import (
    MAX_MESSAGE_CHARS,
    GuardedRestInput,
    WholeMessageCollector,
    check_body,
    rest_texts,
    rest_token,
)


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


# ---------------------------------------------------------------------- who may call it (REST_TOKEN)

TOKEN = "rest-token-for-the-unit-tests"


@contextlib.asynccontextmanager
async def rest_app(channel: GuardedRestInput, bot: EchoBot, proxies: int = 0) -> AsyncIterator[str]:
    Sanic.test_mode = True
    app = Sanic(f"rest_access_{next(_apps)}")
    app.config.PROXIES_COUNT = proxies  # as SANIC_PROXIES_COUNT sets it behind HAProxy
    app.blueprint(channel.blueprint(bot), url_prefix="/webhooks/rest")
    async with run_app(app) as url:
        yield f"{url}/webhooks/rest/webhook"


async def call(url: str, headers: dict[str, str]) -> tuple[int, dict]:
    body = json.dumps({"sender": "buyer", "message": "你好"}).encode()
    async with aiohttp.ClientSession() as session, session.post(url, data=body, headers=headers) as response:
        return response.status, json.loads(await response.read() or b"null")


async def test_with_a_token_only_the_bearer_of_it_is_served_and_nothing_else_reaches_the_bot() -> None:
    bot = EchoBot()
    async with rest_app(GuardedRestInput(token=TOKEN), bot) as url:
        for headers in ({}, {"Authorization": "Bearer wrong-token-of-the-same-size!"}, {"Authorization": TOKEN},
                        {"Authorization": f"Basic {TOKEN}"}, {"Authorization": f"Bearer {TOKEN}x"}):
            status, answer = await call(url, headers)
            assert status == 401 and answer["text"] == rest_texts()["unauthorized"], headers
        assert bot.texts == []  # no turn ran for any of them
        status, answer = await call(url, {"Authorization": f"Bearer {TOKEN}"})
        assert status == 200 and answer == [{"recipient_id": "buyer", "text": "收到：你好"}]
    assert bot.texts == ["你好"]


async def test_without_a_token_only_loopback_clients_are_served() -> None:
    bot = EchoBot()
    async with rest_app(GuardedRestInput(), bot, proxies=1) as url:
        assert (await call(url, {}))[0] == 200  # make run: a client on this machine
        assert (await call(url, {"X-Forwarded-For": "127.0.0.1"}))[0] == 200
        status, answer = await call(url, {"X-Forwarded-For": "203.0.113.7"})  # a buyer behind the proxy
        assert status == 403 and answer["text"] == rest_texts()["unauthorized"]
    assert bot.texts == ["你好", "你好"]


def test_a_short_token_is_refused_at_start_up() -> None:
    assert rest_token({"REST_TOKEN": f" {TOKEN} "}) == TOKEN
    assert rest_token({}) == ""
    with pytest.raises(ValueError, match="REST_TOKEN"):
        rest_token({"REST_TOKEN": "short"})
