"""Limits at every edge: sizes, JSON depth, rates and typed shortcuts, on the real channels with a fake bot behind them
(no model). The same checks against the running servers are in tests/e2e/test_bad_input.py."""
from __future__ import annotations

import contextlib
import itertools
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import yaml
from rasa.core.channels.channel import UserMessage
from sanic import Sanic

from tests.test_socketio_channel import Client, FakeBot, serve, widget_channel
from tests.test_wechat_channel import AES_KEY, APP_ID, TOKEN, Harness, WeChatServer, run_app, text_xml
from tests.test_wechat_channel import FakeBot as WeChatBot
from tests.test_wechat_channel import serve as serve_wechat
from weiquan.edge.channels.rest import GuardedRestInput, rest_texts
from weiquan.edge.channels.socketio import widget_texts
from weiquan.edge.channels.wechat import WeChatInput, wechat_limit_texts
from weiquan.edge.limits import Limits, Rate, RateGate, RateLimiter, ShortcutPolicy, json_depth
from weiquan.ops.harness import ROOT

_apps = itertools.count()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# ---------------------------------------------------------------------- settings and counters


def test_rates_parse_and_refuse_nonsense() -> None:
    assert Rate.parse("20/60") == Rate(20, 60.0)
    assert Rate.parse(5) == Rate(5, 60.0)
    for bad in ("0/60", "x", "5/0", "-1/10"):
        with pytest.raises(ValueError):
            Rate.parse(bad)


def test_limits_come_from_credentials_then_environment_then_defaults() -> None:
    assert Limits.from_settings({}, 500, environ={}) == Limits(max_message_chars=500)
    env = {"LIMIT_RATE_PER_SENDER": "5/10", "LIMIT_MAX_JSON_DEPTH": "8"}
    limits = Limits.from_settings({"rate_per_sender": "3/10", "max_message_chars": 100}, 500, environ=env)
    assert limits.rate_per_sender == Rate(3, 10.0)  # credentials win
    assert limits.max_json_depth == 8  # then the environment
    assert limits.max_message_chars == 100 and limits.max_body_bytes == 64 * 1024
    unset = Limits.from_settings({"rate_per_sender": "${UNSET_VAR}"}, 500, environ={})
    assert unset.rate_per_sender == Rate(20, 60.0)
    with pytest.raises(ValueError):
        Limits.from_settings({"max_body_bytes": "0"}, 500, environ={})


def test_sliding_window_lets_a_sender_go_on_once_the_window_moves() -> None:
    clock = Clock()
    limiter = RateLimiter(Rate(3, 10.0), now=clock)
    for _ in range(3):
        assert limiter.wait_s("a") == 0
        limiter.record("a")
    assert limiter.wait_s("a") == pytest.approx(10.0)
    assert limiter.wait_s("b") == 0  # another sender is not affected
    clock.now += 10.01
    assert limiter.wait_s("a") == 0


def test_gate_counts_a_refused_message_against_nobody() -> None:
    clock = Clock()
    gate = RateGate(Limits(max_message_chars=10, rate_per_sender=Rate(2, 60), rate_per_address=Rate(3, 60)), clock)
    assert gate.check("s1", "1.2.3.4") is None and gate.check("s1", "1.2.3.4") is None
    assert gate.check("s1", "1.2.3.4").reason == "sender"
    assert gate.check("s2", "1.2.3.4") is None  # the refused one did not use up the address's third message
    refused = gate.check("s3", "1.2.3.4")
    assert refused.reason == "address" and refused.retry_after_s == 60


@pytest.mark.parametrize(
    ("text", "depth"),
    [("{}", 1), ('{"a": [1, {"b": []}]}', 4), ('{"a": "[[[[{{{{"}', 1), ('"[["', 0), ('{"a": "\\"[["}', 1),
     ("[" * 5000 + "]" * 5000, 5000)],
)
def test_json_depth_ignores_brackets_inside_strings(text: str, depth: int) -> None:
    assert json_depth(text) == depth
    assert json_depth(text.encode()) == depth


# ---------------------------------------------------------------------- typed shortcuts

POLICY = ShortcutPolicy.from_domain()


def domain_payloads() -> list[str]:
    """What the buttons send: Rasa's NLG turns the domain's doubled braces into single ones."""
    domain = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
    return [button["payload"].format() for variants in domain["responses"].values() for variant in variants
            for button in variant.get("buttons") or []]


def test_every_button_payload_of_the_domain_is_a_shortcut() -> None:
    payloads = domain_payloads()
    assert payloads, "domain.yml has buttons"
    for payload in payloads:
        assert POLICY.allows(payload), payload
        assert POLICY.screen(payload) == payload


@pytest.mark.parametrize(
    "payload",
    [
        '/inform{"platform": "taobao"}',
        '/report_harassment{"platform": "tmall", "success_time": "5天", "order_id": "2345****4567"}',  # clarify buttons
        '/inform{"harassment_type": ["calls", "sms"]}',
        "/request_human",
    ],
)
def test_buttons_of_the_clarifying_question_pass(payload: str) -> None:
    assert POLICY.screen(payload) == payload


@pytest.mark.parametrize(
    ("typed", "seen"),
    [
        ('/inform{"outcome":"file_online"}', 'inform{"outcome":"file_online"}'),  # not an entity: slot untouched
        ('/inform{"platform":"jd"}', 'inform{"platform":"jd"}'),  # outside the slot's values
        ('/inform{"platform":{"$ne":1}}', 'inform{"platform":{"$ne":1}}'),
        ('/inform{"evidence":"everything"}', 'inform{"evidence":"everything"}'),
        ("/session_start", "session_start"),
        ("/back", "back"),
        ("/nlu_fallback", "nlu_fallback"),
        ("/greet@0.01", "greet@0.01"),
        ("/buy_coupons", "buy_coupons"),
        ("///restart", "restart"),  # not what a button sends
        ("/restart@0.9", "restart@0.9"),
        ("/inform{not json}", "inform{not json}"),
        ("/", "/"),
        ("卖家/快递都在骚扰我", "卖家/快递都在骚扰我"),
    ],
)
def test_other_shortcuts_are_read_as_text(typed: str, seen: str) -> None:
    assert POLICY.screen(typed) == seen


def test_a_buyer_may_start_over() -> None:
    assert POLICY.screen("/restart") == "/restart"  # their own conversation; the store keeps what was said


# ---------------------------------------------------------------------- REST


@contextlib.asynccontextmanager
async def rest_server(channel: GuardedRestInput, bot: Callable[[UserMessage], Awaitable[Any]]) -> AsyncIterator[str]:
    Sanic.test_mode = True
    app = Sanic(f"rest_limits_{next(_apps)}")
    app.blueprint(channel.blueprint(bot), url_prefix="/webhooks/rest")
    async with run_app(app) as url:
        yield f"{url}/webhooks/rest/webhook"


async def post(url: str, body: bytes | dict) -> tuple[int, Any, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with aiohttp.ClientSession() as session, session.post(url, data=data) as response:
        return response.status, json.loads(await response.read() or b"null"), dict(response.headers)


class EchoBot:
    def __init__(self) -> None:
        self.texts: list[str] = []

    async def __call__(self, message: UserMessage) -> None:
        self.texts.append(message.text or "")
        if message.text == "崩":
            raise RuntimeError("the bot broke")
        await message.output_channel.send_response(message.sender_id, {"text": f"收到：{message.text}"})


async def test_rest_refuses_deep_huge_and_broken_bodies_with_a_clear_4xx() -> None:
    channel = GuardedRestInput(Limits(max_message_chars=2000, max_body_bytes=16384, max_json_depth=5))
    bot = EchoBot()
    async with rest_server(channel, bot) as url:
        deep = b'{"sender": "a", "message": "x", "metadata": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        status, answer, _ = await post(url, deep)
        assert status == 413  # too large before it is even parsed
        nested = {"sender": "a", "message": "hi", "metadata": {"a": [[[[[["deep"]]]]]]}}
        status, answer, _ = await post(url, nested)
        assert status == 400 and "nested" in answer["error"] and answer["text"] == rest_texts()["malformed"]
        assert (await post(url, b"\xff\xfe not utf-8"))[0] == 400
        assert (await post(url, b'{"sender": "a", "message": "\\ud800"}'))[0] == 400  # a lone surrogate
        assert (await post(url, {"sender": "a\x00b", "message": "hi"}))[0] == 400
        status, answer, _ = await post(url, {"sender": "a", "message": "骚" * 2001})
        assert status == 413 and "2000" in answer["text"]
        status, answer, _ = await post(url, {"sender": "a", "message": "崩"})
        assert status == 503 and answer["text"] == rest_texts()["unavailable"]
        assert (await post(url, {"sender": "a", "message": "你好", "metadata": {"a": [1]}}))[0] == 200
    assert bot.texts == ["崩", "你好"]


async def test_rest_rate_limit_answers_429_with_a_reason_and_a_chinese_text() -> None:
    limits = Limits(max_message_chars=2000, rate_per_sender=Rate(3, 60), rate_per_address=Rate(5, 60))
    channel = GuardedRestInput(limits)
    async with rest_server(channel, EchoBot()) as url:
        for _ in range(3):
            assert (await post(url, {"sender": "fast", "message": "你好"}))[0] == 200
        status, answer, headers = await post(url, {"sender": "fast", "message": "你好"})
        assert status == 429 and answer["error"] == "too many messages (per sender)"
        assert int(headers["Retry-After"]) == answer["retry_after_s"] > 0
        assert re.fullmatch(rest_texts()["too_many"].replace("{retry_after_s}", r"\d+"), answer["text"])
        assert (await post(url, {"sender": "other", "message": "你好"}))[0] == 200
        assert (await post(url, {"sender": "third", "message": "你好"}))[0] == 200
        status, answer, _ = await post(url, {"sender": "fourth", "message": "你好"})
        assert status == 429 and answer["error"] == "too many messages (per address)"


async def test_rest_screens_typed_shortcuts_but_passes_button_payloads() -> None:
    bot = EchoBot()
    async with rest_server(GuardedRestInput(), bot) as url:
        for text in ('/inform{"platform": "taobao"}', '/inform{"outcome":"file_online"}', "/restart"):
            assert (await post(url, {"sender": "s", "message": text}))[0] == 200
    assert bot.texts == ['/inform{"platform": "taobao"}', 'inform{"outcome":"file_online"}', "/restart"]


# ---------------------------------------------------------------------- widget (socket.io)


async def test_widget_answers_deep_packets_rate_limits_and_shortcuts_in_chinese() -> None:
    channel = widget_channel(rate_per_sender="3/60")
    async for server in serve(channel, FakeBot()):
        client = Client()
        await client.connect(server.url)
        try:
            session = await client.start_session()
            deep = "[" * 5000 + "]" * 5000
            await client.sio.eio.send(f'2["user_uttered",{{"message":"x","session_id":"{session}","m":{deep}}}]')
            assert (await client.next_bot())["text"] == widget_texts()["malformed"]
            await client.say("\ud800", session)  # a lone surrogate
            assert (await client.next_bot())["text"] == widget_texts()["malformed"]
            await client.say('/inform{"outcome":"file_online"}', session)
            assert (await client.next_bot())["text"] == '收到：inform{"outcome":"file_online"}'
            await client.say('/inform{"platform": "taobao"}', session)
            assert (await client.next_bot())["text"] == '收到：/inform{"platform": "taobao"}'
            await client.say("你好", session)
            assert (await client.next_bot())["text"] == "收到：你好"
            await client.say("还在吗", session)  # the fourth message in a minute
            too_many = (await client.next_bot())["text"]
            assert re.fullmatch(widget_texts()["too_many"].replace("{seconds}", r"\d+"), too_many)
        finally:
            await client.close()
    assert [m.text for m in server.bot.received] == ['inform{"outcome":"file_online"}',
                                                     '/inform{"platform": "taobao"}', "你好"]


async def test_widget_per_address_limit_counts_one_address_and_no_one_else() -> None:
    """Two pages open from one address (an office, a carrier's shared address) share its budget; a buyer from another
    address is not touched. The address is the one the proxy forwarded (SANIC_PROXIES_COUNT), as in production."""
    channel = widget_channel(rate_per_address="3/60")
    async for server in serve(channel, FakeBot(), proxies=1):
        first, second, elsewhere = Client(), Client(), Client()
        try:
            await first.connect(server.url, forwarded_for="203.0.113.10")
            await second.connect(server.url, forwarded_for="203.0.113.10")
            await elsewhere.connect(server.url, forwarded_for="198.51.100.20")
            one, two, other = (await first.start_session(), await second.start_session(),
                               await elsewhere.start_session())
            for client, session, text in ((first, one, "一"), (second, two, "二"), (first, one, "三")):
                await client.say(text, session)
                assert (await client.next_bot())["text"] == f"收到：{text}"
            await second.say("四", two)  # the fourth message from that address in a minute
            too_many = (await second.next_bot())["text"]
            assert re.fullmatch(widget_texts()["too_many"].replace("{seconds}", r"\d+"), too_many)
            for text in ("五", "六", "七"):
                await elsewhere.say(text, other)
                assert (await elsewhere.next_bot())["text"] == f"收到：{text}"
        finally:
            for client in (first, second, elsewhere):
                await client.close()
    assert [m.text for m in server.bot.received] == ["一", "二", "三", "五", "六", "七"]  # "四" never reached the bot


async def test_widget_says_sorry_when_the_bot_fails() -> None:
    class Broken(FakeBot):
        async def __call__(self, message: UserMessage) -> None:
            raise RuntimeError("down")

    async for server in serve(widget_channel(), Broken()):
        client = Client()
        await client.connect(server.url)
        try:
            session = await client.start_session()
            await client.say("你好", session)
            assert (await client.next_bot())["text"] == widget_texts()["unavailable"]
        finally:
            await client.close()


# ---------------------------------------------------------------------- WeChat


@pytest_asyncio.fixture
async def wechat() -> AsyncIterator[Callable[..., Awaitable[Harness]]]:
    async with contextlib.AsyncExitStack() as stack:

        async def start(**kwargs: Any) -> Harness:
            channel = WeChatInput(token=TOKEN, app_id=APP_ID, aes_key=AES_KEY, **kwargs)
            bot = WeChatBot()
            base_url = await stack.enter_async_context(serve_wechat(channel, bot))
            return Harness(channel, bot, WeChatServer(f"{base_url}/webhook"), base_url)

        yield start


async def test_wechat_rate_limit_is_per_buyer_and_retries_do_not_count(wechat) -> None:
    h: Harness = await wechat(limits=Limits(max_message_chars=500, rate_per_sender=Rate(2, 60)))
    retried = text_xml("oFast", "你好", msg_id=424242)
    assert await h.wechat.send(retried) == "收到：你好"
    assert await h.wechat.send(retried) == "收到：你好"  # WeChat's retry of the same message
    assert await h.wechat.send(text_xml("oFast", "在吗")) == "收到：在吗"
    too_many = await h.wechat.send(text_xml("oFast", "还在吗"))
    assert re.fullmatch(wechat_limit_texts()["too_many"].replace("{seconds}", r"\d+"), too_many)
    assert await h.wechat.send(text_xml("oOther", "你好")) == "收到：你好"
    assert h.bot.texts == ["你好", "在吗", "你好"]


async def test_wechat_refuses_an_address_that_keeps_forging_signatures(wechat) -> None:
    h: Harness = await wechat(limits=Limits(max_message_chars=500, rate_per_address=Rate(3, 60)))
    forged = {**h.wechat.args(), "signature": "0" * 40}
    for _ in range(3):
        assert (await h.wechat.post(text_xml("oX", "hi"), args=forged))[0] == 403
    assert (await h.wechat.post(text_xml("oX", "hi"), args=forged))[0] == 429
    assert (await h.wechat.post(text_xml("oX", "hi")))[0] == 429  # even a good signature, from that address


@pytest.mark.parametrize("depth", [50, 3000])
async def test_wechat_deeply_nested_xml_gets_a_4xx(wechat, depth: int) -> None:
    h: Harness = await wechat()
    xml = "<xml>" + "<a>" * depth + "x" + "</a>" * depth + "</xml>"
    status, _ = await h.wechat.post(xml)
    assert status in (400, 413)
    assert await h.wechat.send(text_xml("oAfter", "你好")) == "收到：你好"

