"""The WeChat channel run for real: its Sanic blueprint on a free loopback port, a scripted fake bot behind it (no
model, no Rasa server), signed XML in front — plaintext and safe mode. Also the customer-service API client against a
local fake of api.weixin.qq.com."""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import xmltodict
from aiohttp import web
from rasa.core.channels.channel import UserMessage
from rasa.core.run import configure_app, create_http_input_channels
from sanic import Sanic
from wechatpy.crypto import WeChatCrypto

from weiquan.core.clock import SystemClock
from weiquan.core.texts import load_text_file
from weiquan.edge.channels.render import WECHAT_TEXT_LIMIT_BYTES, load_texts, utf8_size
from weiquan.edge.channels.wechat import WeChatInput, broker_publisher
from weiquan.edge.channels.wechat_api import (
    CustomerServiceError,
    FakeCustomerServiceApi,
    WeChatCustomerServiceApi,
)
from weiquan.ops.harness import free_port
from weiquan.services import build_services

TOKEN = "unit-token"
APP_ID = "wx0123456789abcdef"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
ACCOUNT = "gh_test_account"
ROOT = Path(__file__).resolve().parents[1]
TEXTS = load_texts()
TAOBAO = '/inform{"platform":"taobao"}'
TMALL = '/inform{"platform":"tmall"}'
PLATFORM_BUTTONS = [{"title": "淘宝", "payload": TAOBAO}, {"title": "天猫", "payload": TMALL}]
FILING_URL = "http://trade.taobao.com/trade/itemlist/list_bought_items.htm"
GOLDEN = json.loads((ROOT / "tests" / "golden" / "contracts.json").read_text(encoding="utf-8"))
RULING_CARD = GOLDEN["cards"]["filing_steps"]
_app_names = itertools.count()
_msg_ids = itertools.count(10_000)
_nonces = itertools.count(1_000_000)


# ---------------------------------------------------------------- the fake bot


@dataclass
class FakeBot:
    """Stands in for Rasa's agent: records every turn and answers from a script; `gate` holds turns back."""

    received: list[UserMessage] = field(default_factory=list)
    gate: asyncio.Event | None = None
    started: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def texts(self) -> list[str]:
        return [message.text or "" for message in self.received]

    async def __call__(self, message: UserMessage) -> None:
        self.received.append(message)
        self.started.set()
        if self.gate is not None:
            await self.gate.wait()
        out = message.output_channel
        text = message.text or ""
        if text == "/greet":
            await out.send_response(message.sender_id, {"text": "你好，我是恶意骚扰维权助手。"})
        elif text == "平台":
            await out.send_response(
                message.sender_id,
                {"text": "在哪个平台买的？", "buttons": PLATFORM_BUTTONS},
            )
        elif text == TAOBAO:
            await out.send_response(message.sender_id, {"text": f"好的，淘宝。\n\n投诉入口：{FILING_URL}"})
        elif text == "长":
            for i in range(8):
                await out.send_response(message.sender_id, {"text": f"第{i}段：" + "请保留旺旺聊天截图。" * 25})
        elif text == "裁定":  # a ruling: text and its filing-steps card, as Rasa hands a bot message to a channel
            await out.send_response(message.sender_id, {"text": "还在期限内，可以在线投诉。", "custom": RULING_CARD,
                                                         "utter_action": "utter_complaint_file_online",
                                                         "timestamp": 1_700_000_000.5})
        elif text == "裁定加菜单":  # a ruling, then the bot's "anything else?" menu, as the real bot answers
            await out.send_response(message.sender_id, {"text": "还在期限内，可以在线投诉。", "custom": RULING_CARD,
                                                         "utter_action": "utter_complaint_file_online",
                                                         "timestamp": 1_700_000_001.0})
            await out.send_response(message.sender_id, {"text": "还有什么想问的吗？", "buttons": PLATFORM_BUTTONS})
        elif text == "长裁定":  # a ruling whose one part is full: no room left for the rating line
            await out.send_response(message.sender_id, {"text": "期" * 675, "custom": {"kind": "evidence"},
                                                         "utter_action": "utter_ask_evidence"})
        elif text == "崩":
            raise RuntimeError("the bot broke")
        elif text == "沉默":
            return
        else:
            await out.send_response(message.sender_id, {"text": f"收到：{text}"})


# ---------------------------------------------------------------- WeChat's side


@dataclass
class WeChatServer:
    """Builds requests the way WeChat's servers do and reads the passive replies."""

    url: str
    token: str = TOKEN
    now: Callable[[], float] = time.time
    crypto: WeChatCrypto = field(default_factory=lambda: WeChatCrypto(TOKEN, AES_KEY, APP_ID))

    def args(self, *, timestamp: int | None = None, nonce: str | None = None) -> dict[str, str]:
        ts = str(int(self.now()) if timestamp is None else timestamp)
        nonce = nonce or str(next(_nonces))
        signature = hashlib.sha1("".join(sorted([self.token, ts, nonce])).encode()).hexdigest()
        return {"signature": signature, "timestamp": ts, "nonce": nonce, "openid": "ignored"}

    async def post(
        self,
        xml: str,
        *,
        safe: bool = False,
        args: dict[str, str] | None = None,
        data: Any = None,
    ) -> tuple[int, str]:
        args = dict(args or self.args())
        body: Any = xml.encode("utf-8")
        if safe:
            sealed = xmltodict.parse(self.crypto.encrypt_message(xml, args["nonce"], args["timestamp"]))["xml"]
            args.update(encrypt_type="aes", msg_signature=sealed["MsgSignature"])
            body = (
                f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
                f"<Encrypt><![CDATA[{sealed['Encrypt']}]]></Encrypt></xml>"
            ).encode()
        async with (
            aiohttp.ClientSession() as session,
            session.post(self.url, params=args, data=body if data is None else data) as response,
        ):
            return response.status, await response.text()

    async def send(self, xml: str, *, safe: bool = False) -> str | None:
        """Posts one message and returns the passive reply's text, or None for "success"."""
        status, body = await self.post(xml, safe=safe)
        assert status == 200, body
        return self.read_reply(body, safe=safe)

    def read_reply(self, body: str, *, safe: bool = False) -> str | None:
        if body in ("success", ""):
            return None
        if safe:
            sealed = xmltodict.parse(body)["xml"]
            plain = self.crypto.decrypt_message(body, sealed["MsgSignature"], sealed["TimeStamp"], sealed["Nonce"])
            reply = xmltodict.parse(plain)["xml"]
        else:
            reply = xmltodict.parse(body)["xml"]
        assert reply["MsgType"] == "text" and reply["FromUserName"] == ACCOUNT
        return reply["Content"]


def text_xml(openid: str, content: str, msg_id: int | None = None, created: int | None = None) -> str:
    msg_id = next(_msg_ids) if msg_id is None else msg_id
    created = int(time.time()) if created is None else created
    return (
        f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{created}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId></xml>"
    )


def event_xml(openid: str, event: str, created: int | None = None) -> str:
    created = int(time.time()) if created is None else created
    return (
        f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{created}</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[{event}]]></Event>"
        f"<EventKey><![CDATA[]]></EventKey></xml>"
    )


def media_xml(openid: str, msg_type: str) -> str:
    return (
        f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[{msg_type}]]></MsgType>"
        f"<MediaId><![CDATA[media_id]]></MediaId><PicUrl><![CDATA[http://mmbiz.qpic.cn/x]]></PicUrl>"
        f"<Format><![CDATA[amr]]></Format><MsgId>{next(_msg_ids)}</MsgId></xml>"
    )


# ---------------------------------------------------------------- harness


@dataclass
class Harness:
    channel: WeChatInput
    bot: FakeBot
    wechat: WeChatServer
    base_url: str


@contextlib.asynccontextmanager
async def serve(channel: WeChatInput, bot: Callable[[UserMessage], Awaitable[Any]]) -> AsyncIterator[str]:
    Sanic.test_mode = True
    app = Sanic(f"wechat_test_{next(_app_names)}")
    app.blueprint(channel.blueprint(bot), url_prefix="/webhooks/wechat")
    async with run_app(app) as url:
        yield f"{url}/webhooks/wechat"


@contextlib.asynccontextmanager
async def run_app(app: Sanic) -> AsyncIterator[str]:
    """Runs a Sanic app on a free loopback port, with its start and stop listeners."""
    app.config.MOTD = False
    port = free_port()
    server = await app.create_server(host="127.0.0.1", port=port, return_asyncio_server=True, access_log=False)
    assert server is not None
    await server.startup()
    await server.before_start()
    await server.after_start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await server.before_stop()  # the channel lets running turns finish here
        server.close()
        await server.wait_closed()
        await server.after_stop()


@pytest_asyncio.fixture
async def make() -> AsyncIterator[Callable[..., Awaitable[Harness]]]:
    """Starts a channel built with the given keyword arguments (token, app_id and aes_key default to the test ones)."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(**kwargs: Any) -> Harness:
            kwargs.setdefault("token", TOKEN)
            kwargs.setdefault("app_id", APP_ID)
            kwargs.setdefault("aes_key", AES_KEY)
            bot = kwargs.pop("bot", None) or FakeBot()
            channel = WeChatInput(**kwargs)
            base_url = await stack.enter_async_context(serve(channel, bot))
            return Harness(channel, bot, WeChatServer(f"{base_url}/webhook"), base_url)

        yield start


async def wait_for_log(caplog: pytest.LogCaptureFixture, needle: str, timeout_s: float = 5) -> None:
    deadline = time.monotonic() + timeout_s
    while needle not in caplog.text:
        assert time.monotonic() < deadline, f"no log line with {needle!r}"
        await asyncio.sleep(0.01)


def open_gate(bot: FakeBot) -> None:
    assert bot.gate is not None
    bot.gate.set()


# ---------------------------------------------------------------- configuration and URL check


@pytest.mark.asyncio
async def test_url_check_echoes_echostr(make: Callable[..., Awaitable[Harness]]) -> None:
    h = await make()
    async with aiohttp.ClientSession() as session:
        async with session.get(h.wechat.url, params={**h.wechat.args(), "echostr": "7342856159"}) as response:
            assert (response.status, await response.text()) == (200, "7342856159")
        forged = {**h.wechat.args(), "echostr": "1", "signature": "0" * 40}
        async with session.get(h.wechat.url, params=forged) as response:
            assert response.status == 403
        stale = {**h.wechat.args(timestamp=int(time.time()) - 3600), "echostr": "1"}
        async with session.get(h.wechat.url, params=stale) as response:
            assert response.status == 403
        async with session.get(h.base_url + "/") as response:
            assert (await response.json()) == {"status": "ok"}


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("settings", "explanation"),
    [({"token": ""}, "WECHAT_TOKEN is not set"), ({"aes_key": "too-short"}, "misconfigured")],
)
async def test_channel_off_or_misconfigured_answers_503_and_the_server_lives(
    make: Callable[..., Awaitable[Harness]], settings: dict[str, str], explanation: str
) -> None:
    h = await make(**settings)
    async with aiohttp.ClientSession() as session:
        for method in ("GET", "POST"):
            async with session.request(method, h.wechat.url, params=h.wechat.args(), data=b"<xml/>") as response:
                assert response.status == 503
                assert explanation in await response.text()
        async with session.get(h.base_url + "/") as response:
            assert (await response.json()) == {"status": "off"}
    assert h.bot.received == []


def test_from_credentials_reads_the_credentials_keys() -> None:
    off = WeChatInput.from_credentials({"token": "", "app_id": "", "aes_key": "", "app_secret": ""})
    assert off.protocol is None and off.api is None and "WECHAT_TOKEN" in off.unavailable
    assert WeChatInput.from_credentials(None).protocol is None
    plain = WeChatInput.from_credentials({"token": "t", "app_id": APP_ID, "aes_key": "", "app_secret": ""})
    assert plain.protocol is not None and plain.protocol.crypto is None and plain.api is None
    full = WeChatInput.from_credentials({"token": "t", "app_id": APP_ID, "aes_key": AES_KEY, "app_secret": "s"})
    assert full.protocol is not None and full.protocol.crypto is not None
    assert isinstance(full.api, WeChatCustomerServiceApi)
    assert WeChatInput.name() == "wechat"


def test_quoted_environment_placeholders_are_expanded() -> None:
    """Rasa leaves a quoted "${VAR}" as it is; the channel reads the variable itself, unset meaning empty."""
    channel = WeChatInput.from_settings(
        {"token": "${WECHAT_TOKEN}", "app_id": APP_ID, "aes_key": "", "app_secret": "${WECHAT_APP_SECRET}"},
        build_services({"WECHAT_TOKEN": "from-env"}),
    )
    assert channel.protocol is not None and channel.protocol.token == "from-env"
    assert channel.api is None  # the unset secret counts as empty
    off = WeChatInput.from_settings({"token": "${WECHAT_TOKEN}"}, build_services({"WECHAT_TOKEN": ""}))
    assert off.protocol is None


@pytest.mark.asyncio
@pytest.mark.parametrize("token", ["e2e-token", ""], ids=["live", "off"])
async def test_credentials_yml_wires_the_channel_into_rasa(monkeypatch: pytest.MonkeyPatch, token: str) -> None:
    """Rasa's own loader reads credentials.yml (values from the environment) and mounts /webhooks/wechat/webhook."""
    settings = {
        "WECHAT_TOKEN": token, "WECHAT_APP_ID": APP_ID, "WECHAT_AES_KEY": AES_KEY, "WECHAT_APP_SECRET": "s3cret"
    }
    for name, value in {**settings, "WIDGET_ALLOWED_ORIGINS": "http://127.0.0.1:1"}.items():
        monkeypatch.setenv(name, value)
    [channel] = create_http_input_channels("weiquan.edge.channels.wechat.WeChatInput", str(ROOT / "credentials.yml"))
    assert isinstance(channel, WeChatInput)
    Sanic.test_mode = True
    app = configure_app([channel], enable_api=False)
    bot = FakeBot()
    app.ctx.agent = SimpleNamespace(handle_message=bot)
    async with run_app(app) as url:
        crypto = WeChatCrypto(token or "unused", AES_KEY, APP_ID)
        wechat = WeChatServer(f"{url}/webhooks/wechat/webhook", token=token, crypto=crypto)
        if token:
            assert isinstance(channel.api, WeChatCustomerServiceApi)
            assert await wechat.send(text_xml("oRasa", "你好"), safe=True) == "收到：你好"
            assert await wechat.send(text_xml("oRasa", "再见")) == "收到：再见"
            assert [m.sender_id for m in bot.received] == ["oRasa", "oRasa"]
        else:
            status, body = await wechat.post(text_xml("oRasa", "你好"))
            assert (status, body) == (503, "WeChat channel is off: WECHAT_TOKEN is not set.")


# ---------------------------------------------------------------- refusals


@pytest.mark.asyncio
async def test_forged_and_stale_posts_are_403_and_reach_no_one(make: Callable[..., Awaitable[Harness]]) -> None:
    h = await make()
    xml = text_xml("oBuyer", "你好")
    good = h.wechat.args()
    for args in (
        {**good, "signature": "0" * 40},
        {k: v for k, v in good.items() if k != "signature"},
        h.wechat.args(timestamp=int(time.time()) - 301),
        h.wechat.args(timestamp=int(time.time()) + 3600),
        {**good, "nonce": "other"},
    ):
        status, _ = await h.wechat.post(xml, args=args)
        assert status == 403
    # Safe mode: a valid `signature` but a forged `msg_signature`.
    status, _ = await h.wechat.post(xml, args={**good, "encrypt_type": "aes", "msg_signature": "0" * 40},
                                    data=b"<xml><Encrypt>AAAA</Encrypt></xml>")
    assert status == 403
    assert h.bot.received == []


@pytest.mark.asyncio
async def test_a_signed_query_cannot_carry_another_body(make: Callable[..., Awaitable[Harness]]) -> None:
    h = await make()
    args = h.wechat.args(nonce="captured")
    xml = text_xml("oBuyer", "你好", msg_id=4242)
    assert (await h.wechat.post(xml, args=args))[0] == 200
    assert (await h.wechat.post(xml, args=args))[0] == 200  # WeChat resending the same message
    status, _ = await h.wechat.post(text_xml("oVictim", "伪造的消息"), args=args)
    assert status == 403
    assert h.bot.texts == ["你好"]


@pytest.mark.asyncio
async def test_stale_check_uses_the_injected_clock(make: Callable[..., Awaitable[Harness]]) -> None:
    h = await make(now=lambda: 2_000_000_000.0, max_skew_s=60)
    h.wechat.now = lambda: 2_000_000_000.0
    assert await h.wechat.send(text_xml("oBuyer", "你好")) == "收到：你好"
    status, _ = await h.wechat.post(text_xml("oBuyer", "你好"), args=h.wechat.args(timestamp=2_000_000_000 - 61))
    assert status == 403


@pytest.mark.asyncio
async def test_encrypted_post_without_a_key_is_403(make: Callable[..., Awaitable[Harness]]) -> None:
    h = await make(aes_key="")
    status, _ = await h.wechat.post(text_xml("oBuyer", "你好"), safe=True)
    assert status == 403
    assert await h.wechat.send(text_xml("oBuyer", "你好")) == "收到：你好"  # plaintext still works


@pytest.mark.asyncio
async def test_oversized_bodies_are_413(make: Callable[..., Awaitable[Harness]]) -> None:
    h = await make(max_body_bytes=4096)
    status, _ = await h.wechat.post(text_xml("oBuyer", "骚" * 2000))
    assert status == 413

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: the cap applies while reading
        for _ in range(10):
            yield b"<!-- padding -->" * 64

    status, _ = await h.wechat.post("", data=chunked())
    assert status == 413
    assert h.bot.received == []


@pytest.mark.asyncio
async def test_billion_laughs_is_refused_quickly(make: Callable[..., Awaitable[Harness]]) -> None:
    from tests.test_wechat_protocol import BILLION_LAUGHS, XXE

    h = await make()
    started = time.monotonic()
    for body in (BILLION_LAUGHS, XXE, b"<xml><unclosed>"):
        status, _ = await h.wechat.post("", data=body)
        assert status == 400
    assert time.monotonic() - started < 2
    assert h.bot.received == []
    assert await h.wechat.send(text_xml("oBuyer", "还活着吗")) == "收到：还活着吗"


# ---------------------------------------------------------------- messages


@pytest.mark.asyncio
@pytest.mark.parametrize("safe", [False, True], ids=["plaintext", "safe-mode"])
async def test_text_goes_to_rasa_as_the_openid(make: Callable[..., Awaitable[Harness]], safe: bool) -> None:
    h = await make()
    reply = await h.wechat.send(text_xml("oBuyer-1", "卖家天天打电话骂我", msg_id=555), safe=safe)
    assert reply == "收到：卖家天天打电话骂我"
    [message] = h.bot.received
    assert message.sender_id == "oBuyer-1"
    assert message.input_channel == "wechat"
    assert message.metadata == {"wechat": {"msg_id": "555", "msg_type": "text"}}


@pytest.mark.asyncio
@pytest.mark.parametrize("safe", [False, True], ids=["plaintext", "safe-mode"])
async def test_subscribe_sends_greet_and_the_bot_answers(make: Callable[..., Awaitable[Harness]], safe: bool) -> None:
    h = await make()
    assert await h.wechat.send(event_xml("oNew", "subscribe"), safe=safe) == "你好，我是恶意骚扰维权助手。"
    assert h.bot.texts == ["/greet"] and h.bot.received[0].sender_id == "oNew"
    assert await h.wechat.send(event_xml("oNew", "unsubscribe"), safe=safe) is None
    assert await h.wechat.send(event_xml("oNew", "CLICK"), safe=safe) is None
    assert h.bot.texts == ["/greet"]


@pytest.mark.asyncio
@pytest.mark.parametrize("msg_type", ["image", "voice", "video", "shortvideo", "location", "link", "file"])
async def test_non_text_messages_get_asked_for_text(make: Callable[..., Awaitable[Harness]], msg_type: str) -> None:
    h = await make()
    assert await h.wechat.send(media_xml("oBuyer", msg_type)) == TEXTS.ask_for_text
    assert h.bot.received == []


@pytest.mark.asyncio
async def test_awkward_texts_never_crash(make: Callable[..., Awaitable[Harness]]) -> None:
    h = await make()
    assert await h.wechat.send(text_xml("oBuyer", "")) == TEXTS.ask_for_text
    assert await h.wechat.send(text_xml("oBuyer", "   ")) == TEXTS.ask_for_text
    assert await h.wechat.send(text_xml("oBuyer", "///")) == TEXTS.ask_for_text
    assert await h.wechat.send(text_xml("oBuyer", "😀😡🙏")) == "收到：😀😡🙏"
    assert await h.wechat.send(text_xml("oBuyer", "/::)")) == "收到：::)"  # WeChat's emoji code is not an intent
    assert await h.wechat.send(text_xml("oBuyer", '/inform{"platform":"tmall"}')) == '收到：inform{"platform":"tmall"}'
    too_long = await h.wechat.send(text_xml("oBuyer", "骚扰" * 5000))
    assert too_long == TEXTS.too_long.format(max_chars=500)
    assert h.bot.texts == ["😀😡🙏", "::)", 'inform{"platform":"tmall"}']


@pytest.mark.asyncio
async def test_phone_numbers_never_reach_the_log(
    make: Callable[..., Awaitable[Harness]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    h = await make(api=FakeCustomerServiceApi(fail_with=45015), reply_timeout_s=0.05)
    await h.wechat.send(text_xml("oBuyer", "卖家13812345678天天打电话"))
    await h.wechat.send(text_xml("oBuyer", "崩 13812345678"))
    await h.channel.drain()
    assert "13812345678" not in caplog.text


# ---------------------------------------------------------------- numbered menus


@pytest.mark.asyncio
@pytest.mark.parametrize("safe", [False, True], ids=["plaintext", "safe-mode"])
async def test_numbered_menu_answers_send_the_payload(make: Callable[..., Awaitable[Harness]], safe: bool) -> None:
    h = await make()
    menu = await h.wechat.send(text_xml("oBuyer", "平台"), safe=safe)
    options = "\n".join(TEXTS.menu_item.format(number=n, title=t) for n, t in ((1, "淘宝"), (2, "天猫")))
    assert menu == f"在哪个平台买的？\n{options}\n{TEXTS.menu_hint}"
    assert await h.wechat.send(text_xml("oBuyer", "1"), safe=safe) == f"好的，淘宝。\n\n投诉入口：{FILING_URL}"
    assert h.bot.texts[-1] == TAOBAO
    # That answer had no buttons: "1" is plain text again.
    assert await h.wechat.send(text_xml("oBuyer", "1"), safe=safe) == "收到：1"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("answer", "sent"), [("２", TMALL), ("1.", TAOBAO), ("（2）", TMALL), ("3", "3"), ("淘宝", "淘宝")]
)
async def test_menu_answer_variants(make: Callable[..., Awaitable[Harness]], answer: str, sent: str) -> None:
    h = await make()
    await h.wechat.send(text_xml("oBuyer", "平台"))
    await h.wechat.send(text_xml("oBuyer", answer))
    assert h.bot.texts == ["平台", sent]


@pytest.mark.asyncio
async def test_menus_belong_to_one_buyer_and_expire(make: Callable[..., Awaitable[Harness]]) -> None:
    now = [time.time()]
    h = await make(now=lambda: now[0], memory_ttl_s=600)
    await h.wechat.send(text_xml("oAlice", "平台"))
    await h.wechat.send(text_xml("oBob", "1"))
    assert h.bot.texts[-1] == "1"  # Bob never saw a menu
    now[0] += 601
    h.wechat.now = lambda: now[0]
    await h.wechat.send(text_xml("oAlice", "1", created=int(now[0])))
    assert h.bot.texts[-1] == "1"  # Alice's menu expired


# ---------------------------------------------------------------- the 5-second rule


@pytest.mark.asyncio
async def test_retries_of_one_msgid_share_one_turn(
    make: Callable[..., Awaitable[Harness]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="weiquan.edge.channels.wechat")
    bot = FakeBot(gate=asyncio.Event())
    h = await make(bot=bot, api=FakeCustomerServiceApi(), reply_timeout_s=5)
    xml = text_xml("oBuyer", "你好", msg_id=777)
    first = asyncio.create_task(h.wechat.send(xml))
    await asyncio.wait_for(bot.started.wait(), 5)
    second = asyncio.create_task(h.wechat.send(xml))  # WeChat's retry while the turn is still running
    await wait_for_log(caplog, "wechat.retry")
    open_gate(bot)
    assert await first == await second == "收到：你好"
    assert await h.wechat.send(xml) == "收到：你好"  # a late retry gets the same answer again
    assert h.bot.texts == ["你好"]


@pytest.mark.asyncio
@pytest.mark.parametrize("safe", [False, True], ids=["plaintext", "safe-mode"])
async def test_slow_turn_answers_success_and_pushes_through_the_api(
    make: Callable[..., Awaitable[Harness]], safe: bool
) -> None:
    api = FakeCustomerServiceApi()
    bot = FakeBot(gate=asyncio.Event())
    h = await make(bot=bot, api=api, reply_timeout_s=0.1)
    xml = text_xml("oSlow", "你好", msg_id=888)
    started = time.monotonic()
    assert await h.wechat.send(xml, safe=safe) is None  # "success" after the reply timeout
    assert time.monotonic() - started < 2
    assert api.sent == []
    assert await h.wechat.send(xml, safe=safe) is None  # a retry neither waits nor runs the turn again
    open_gate(bot)
    assert await api.wait_for(1) == [("oSlow", "收到：你好")]
    await h.channel.drain()
    assert h.bot.texts == ["你好"] and len(api.sent) == 1


@pytest.mark.asyncio
async def test_without_api_a_slow_turn_is_delivered_to_wechats_retry(make: Callable[..., Awaitable[Harness]]) -> None:
    bot = FakeBot(gate=asyncio.Event())
    h = await make(bot=bot, api=None, reply_timeout_s=0.05, hold_timeout_s=0.1, max_attempts=3)
    xml = text_xml("oSlow", "你好", msg_id=999)
    assert await h.wechat.send(xml) is None  # attempt 1 held, then gave up (WeChat would have hung up and retried)
    open_gate(bot)
    await h.channel.drain()
    assert await h.wechat.send(xml) == "收到：你好"  # attempt 2: same turn, answered passively
    assert h.bot.texts == ["你好"]


@pytest.mark.asyncio
async def test_without_api_the_last_attempt_does_not_hold(make: Callable[..., Awaitable[Harness]]) -> None:
    bot = FakeBot(gate=asyncio.Event())
    h = await make(bot=bot, api=None, reply_timeout_s=0.05, hold_timeout_s=3, max_attempts=2)
    xml = text_xml("oSlow", "你好", msg_id=1001)
    first = asyncio.create_task(h.wechat.send(xml))
    await asyncio.wait_for(bot.started.wait(), 5)
    started = time.monotonic()
    assert await h.wechat.send(xml) is None  # attempt 2 of 2 waits only reply_timeout_s
    assert time.monotonic() - started < 1
    open_gate(bot)
    assert await first == "收到：你好"  # attempt 1 was still holding and gets the answer
    assert h.bot.texts == ["你好"]


@pytest.mark.asyncio
async def test_events_are_deduplicated_by_sender_and_time(make: Callable[..., Awaitable[Harness]]) -> None:
    h = await make()
    created = int(time.time())
    for _ in range(3):
        assert await h.wechat.send(event_xml("oNew", "subscribe", created)) == "你好，我是恶意骚扰维权助手。"
    assert await h.wechat.send(event_xml("oNew", "subscribe", created + 1)) is not None
    assert h.bot.texts == ["/greet", "/greet"]


# ---------------------------------------------------------------- long answers, failures


@pytest.mark.asyncio
async def test_long_answer_is_pushed_in_parts_through_the_api(make: Callable[..., Awaitable[Harness]]) -> None:
    api = FakeCustomerServiceApi()
    h = await make(api=api)
    assert await h.wechat.send(text_xml("oBuyer", "长")) is None
    await h.channel.drain()
    parts = [content for _, content in api.sent]
    assert len(parts) >= 2 and all(utf8_size(p) <= WECHAT_TEXT_LIMIT_BYTES for p in parts)
    assert [line[:3] for p in parts for line in p.split("\n\n")] == [f"第{i}段" for i in range(8)]  # all, in order


@pytest.mark.asyncio
@pytest.mark.parametrize("safe", [False, True], ids=["plaintext", "safe-mode"])
async def test_long_answer_without_api_continues_on_request(
    make: Callable[..., Awaitable[Harness]], safe: bool
) -> None:
    h = await make(api=None)
    more = TEXTS.more_keywords[0]
    parts = [await h.wechat.send(text_xml("oBuyer", "长"), safe=safe)]
    while parts[-1] and parts[-1].endswith(TEXTS.more_hint):
        xml = text_xml("oBuyer", more)
        parts.append(await h.wechat.send(xml, safe=safe))
        assert await h.wechat.send(xml, safe=safe) == parts[-1]  # a retry of this "继续" gets the same part
        assert len(parts) < 10
    assert len(parts) >= 2 and all(p and utf8_size(p) <= WECHAT_TEXT_LIMIT_BYTES for p in parts)
    paragraphs = [line[:3] for p in parts for line in p.split("\n\n") if line != TEXTS.more_hint]
    assert paragraphs == [f"第{i}段" for i in range(8)]
    assert h.bot.texts == ["长"]  # the parts come from memory, not from new turns
    assert await h.wechat.send(text_xml("oBuyer", more), safe=safe) == f"收到：{more}"  # nothing pending: plain text


@pytest.mark.asyncio
async def test_a_failing_turn_gets_an_apology_and_the_channel_goes_on(make: Callable[..., Awaitable[Harness]]) -> None:
    h = await make()
    assert await h.wechat.send(text_xml("oBuyer", "崩")) == TEXTS.sorry
    assert await h.wechat.send(text_xml("oBuyer", "沉默")) is None  # the bot said nothing: "success"
    assert await h.wechat.send(text_xml("oBuyer", "你好")) == "收到：你好"


@pytest.mark.asyncio
async def test_push_failures_are_logged_not_raised(
    make: Callable[..., Awaitable[Harness]], caplog: pytest.LogCaptureFixture
) -> None:
    api = FakeCustomerServiceApi(fail_with=45015)
    bot = FakeBot(gate=asyncio.Event())
    h = await make(bot=bot, api=api, reply_timeout_s=0.05)
    assert await h.wechat.send(text_xml("oBuyer", "你好")) is None
    open_gate(bot)
    await h.channel.drain()
    assert "45015" in caplog.text
    assert await h.wechat.send(text_xml("oBuyer", "再来")) == "收到：再来"


# ---------------------------------------------------------------- the real customer-service client


@dataclass
class FakeWeChatApi:
    """A loopback stand-in for api.weixin.qq.com: hands out tokens, accepts messages, can expire tokens."""

    tokens_issued: int = 0
    messages: list[dict[str, Any]] = field(default_factory=list)
    raw_bodies: list[bytes] = field(default_factory=list)
    revoked: set[str] = field(default_factory=set)
    fail_with: int | None = None

    async def stable_token(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body != {"grant_type": "client_credential", "appid": APP_ID, "secret": "s3cret"}:
            return web.json_response({"errcode": 40013, "errmsg": "invalid appid"})
        self.tokens_issued += 1
        return web.json_response({"access_token": f"token-{self.tokens_issued}", "expires_in": 7200})

    async def send(self, request: web.Request) -> web.Response:
        token = request.query.get("access_token", "")
        if token in self.revoked or not token.startswith("token-"):
            return web.json_response({"errcode": 40001, "errmsg": "invalid credential"})
        if self.fail_with:
            return web.json_response({"errcode": self.fail_with, "errmsg": "response out of time limit"})
        self.raw_bodies.append(await request.read())
        self.messages.append(await request.json())
        return web.json_response({"errcode": 0, "errmsg": "ok"})


@pytest_asyncio.fixture
async def wechat_api() -> AsyncIterator[tuple[FakeWeChatApi, str]]:
    fake = FakeWeChatApi()
    app = web.Application()
    app.router.add_post("/cgi-bin/stable_token", fake.stable_token)
    app.router.add_post("/cgi-bin/message/custom/send", fake.send)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    yield fake, f"http://127.0.0.1:{port}"
    await runner.cleanup()


@pytest.mark.asyncio
async def test_api_client_caches_the_token_until_it_expires(wechat_api: tuple[FakeWeChatApi, str]) -> None:
    fake, url = wechat_api
    now = [1000.0]
    client = WeChatCustomerServiceApi(APP_ID, "s3cret", base_url=url, now=lambda: now[0])
    try:
        await asyncio.gather(*(client.send_text("oBuyer", f"第{i}条") for i in range(5)))
        assert fake.tokens_issued == 1  # concurrent sends share one fetch
        now[0] += 7200 - 301
        await client.send_text("oBuyer", "还在有效期内")
        assert fake.tokens_issued == 1
        now[0] += 2  # within the refresh margin: fetch again
        await client.send_text("oBuyer", "快过期了")
        assert fake.tokens_issued == 2
        assert fake.messages[-1] == {"touser": "oBuyer", "msgtype": "text", "text": {"content": "快过期了"}}
        assert "快过期了".encode() in fake.raw_bodies[-1]  # UTF-8, not \\u escapes
    finally:
        await client.close()


@pytest.mark.asyncio
async def test_api_client_refreshes_a_revoked_token_once(wechat_api: tuple[FakeWeChatApi, str]) -> None:
    fake, url = wechat_api
    client = WeChatCustomerServiceApi(APP_ID, "s3cret", base_url=url, now=SystemClock().now)
    try:
        await client.send_text("oBuyer", "一")
        fake.revoked.add("token-1")
        await client.send_text("oBuyer", "二")
        assert fake.tokens_issued == 2 and [m["text"]["content"] for m in fake.messages] == ["一", "二"]
        fake.fail_with = 45015
        with pytest.raises(CustomerServiceError) as error:
            await client.send_text("oBuyer", "三")
        assert error.value.errcode == 45015
    finally:
        await client.close()


@pytest.mark.asyncio
async def test_api_client_reports_bad_credentials_and_unreachable_hosts(wechat_api: tuple[FakeWeChatApi, str]) -> None:
    _, url = wechat_api
    wrong = WeChatCustomerServiceApi(APP_ID, "wrong", base_url=url, now=SystemClock().now)
    unreachable = WeChatCustomerServiceApi(APP_ID, "s3cret", base_url=f"http://127.0.0.1:{free_port()}", timeout_s=2,
                                           now=SystemClock().now)
    try:
        with pytest.raises(CustomerServiceError) as error:
            await wrong.send_text("oBuyer", "x")
        assert error.value.errcode == 40013
        with pytest.raises(CustomerServiceError) as error:
            await unreachable.send_text("oBuyer", "x")
        assert error.value.errcode == -1
    finally:
        await wrong.close()
        await unreachable.close()


@pytest.mark.asyncio
async def test_channel_pushes_through_the_real_client(
    make: Callable[..., Awaitable[Harness]], wechat_api: tuple[FakeWeChatApi, str]
) -> None:
    fake, url = wechat_api
    bot = FakeBot(gate=asyncio.Event())
    api = WeChatCustomerServiceApi(APP_ID, "s3cret", base_url=url, now=SystemClock().now)
    h = await make(bot=bot, api=api, reply_timeout_s=0.05)
    assert await h.wechat.send(text_xml("oBuyer", "你好")) is None
    open_gate(bot)
    await h.channel.drain()
    assert fake.messages == [{"touser": "oBuyer", "msgtype": "text", "text": {"content": "收到：你好"}}]
    assert json.loads(fake.raw_bodies[0])["touser"] == "oBuyer"


# ---------------------------------------------------------------- what the channel remembers, and for how long


@pytest.mark.asyncio
async def test_menus_and_unsent_parts_are_kept_one_hour_and_retries_are_recognised_for_five_minutes(
    make: Callable[..., Awaitable[Harness]],
) -> None:
    """docs/security.md: the WeChat channel's memory (the last numbered menu and an answer's unsent parts) is kept one
    hour; WeChat's retries of a message are recognised for five minutes. With the channel's default settings, as
    credentials.yml builds it, and a clock the test moves."""
    now = [time.time()]
    h = await make(api=None, now=lambda: now[0])
    h.wechat.now = lambda: now[0]

    def later(seconds: float) -> int:
        now[0] += seconds
        return int(now[0])

    await h.wechat.send(text_xml("oMemory", "平台", created=int(now[0])))
    await h.wechat.send(text_xml("oMemory", "1", created=later(3599)))
    assert h.bot.texts[-1] == TAOBAO  # 59 min 59 s later the menu still counts
    await h.wechat.send(text_xml("oMemory", "平台", created=int(now[0])))
    await h.wechat.send(text_xml("oMemory", "1", created=later(3601)))
    assert h.bot.texts[-1] == "1"  # an hour later it is forgotten: "1" is just text

    more = TEXTS.more_keywords[0]
    first = await h.wechat.send(text_xml("oMemory", "长", created=int(now[0])))
    assert first and first.endswith(TEXTS.more_hint)
    assert (await h.wechat.send(text_xml("oMemory", more, created=later(3599)))).startswith("第")  # a part
    assert await h.wechat.send(text_xml("oMemory", more, created=later(3601))) == f"收到：{more}"  # forgotten

    turns = len(h.bot.texts)
    retried = text_xml("oMemory", "你好", msg_id=4242, created=int(now[0]))
    assert await h.wechat.send(retried) == "收到：你好"
    later(299)
    assert await h.wechat.send(retried) == "收到：你好" and len(h.bot.texts) == turns + 1  # the same turn
    later(2)
    assert await h.wechat.send(retried) == "收到：你好" and len(h.bot.texts) == turns + 2  # remembered no longer


# ---------------------------------------------------------------- ratings (docs/analytics.md)

RATING_TEXTS = load_text_file(ROOT / "weiquan" / "edge" / "channels" / "wechat_texts.yml")


@pytest.mark.asyncio
@pytest.mark.parametrize("safe", [False, True], ids=["plaintext", "safe-mode"])
async def test_a_ruling_asks_for_a_rating_and_the_answer_is_stored_not_sent_to_the_bot(
        make: Callable[..., Awaitable[Harness]], safe: bool) -> None:
    rated: list[dict[str, Any]] = []
    h = await make(feedback=rated.append)
    ruling = await h.wechat.send(text_xml("oBuyer", "裁定"), safe=safe)
    assert ruling is not None and ruling.endswith(f"\n\n{RATING_TEXTS['rating_prompt']}")
    assert "还在期限内" in ruling and "回复 1 有帮助" in ruling
    answer = text_xml("oBuyer", "1")
    assert await h.wechat.send(answer, safe=safe) == RATING_TEXTS["rating_thanks_up"]
    assert await h.wechat.send(answer, safe=safe) == RATING_TEXTS["rating_thanks_up"]  # WeChat's retry: same thanks
    assert h.bot.texts == ["裁定"]  # the rating never reached the bot
    assert len(rated) == 1
    row = rated[0]
    assert (row["sender_id"], row["event"], row["rating"], row["channel"]) == ("oBuyer", "feedback", "up", "wechat")
    assert (row["rated_response"], row["rated_at"]) == ("utter_complaint_file_online", 1_700_000_000.5)
    # Only the message right after the ruling rates it: "1" now goes to the bot.
    assert await h.wechat.send(text_xml("oBuyer", "1"), safe=safe) == "收到：1"


@pytest.mark.asyncio
@pytest.mark.parametrize(("answer", "rating"), [
    ("2", "down"), ("２", "down"), ("1.", "up"), ("【2】", "down"), ("👍", "up"), ("👍🏻", "up"), ("👎", "down"),
    ("[强]", "up"), ("[弱]", "down"), ("/:strong", "up"), (" 没帮助 ", "down"),
])
async def test_rating_answers_in_every_form(make: Callable[..., Awaitable[Harness]], answer: str, rating: str) -> None:
    rated: list[dict[str, Any]] = []
    h = await make(feedback=rated.append)
    await h.wechat.send(text_xml("oBuyer", "裁定"))
    assert await h.wechat.send(text_xml("oBuyer", answer)) == RATING_TEXTS[f"rating_thanks_{rating}"]
    assert [row["rating"] for row in rated] == [rating] and h.bot.texts == ["裁定"]


@pytest.mark.asyncio
async def test_anything_else_after_a_ruling_goes_to_the_bot_as_usual(make: Callable[..., Awaitable[Harness]]) -> None:
    rated: list[dict[str, Any]] = []
    h = await make(feedback=rated.append)
    await h.wechat.send(text_xml("oBuyer", "裁定"))
    assert await h.wechat.send(text_xml("oBuyer", "3")) == "收到：3"
    assert await h.wechat.send(text_xml("oBuyer", "1")) == "收到：1"
    # another buyer's "1" never rates this buyer's ruling; a plain answer asks for no rating
    await h.wechat.send(text_xml("oAlice", "裁定"))
    assert await h.wechat.send(text_xml("oBob", "1")) == "收到：1"
    plain = await h.wechat.send(text_xml("oCarol", "你好"))
    assert plain == "收到：你好"
    assert rated == [] and h.bot.texts == ["裁定", "3", "1", "裁定", "1", "你好"]


@pytest.mark.asyncio
async def test_without_an_analytics_broker_no_rating_is_asked(make: Callable[..., Awaitable[Harness]]) -> None:
    h = await make()  # the fake app has no Rasa agent, so no event broker
    ruling = await h.wechat.send(text_xml("oBuyer", "裁定"))
    assert ruling is not None and RATING_TEXTS["rating_prompt"] not in ruling
    assert await h.wechat.send(text_xml("oBuyer", "1")) == "收到：1"


@pytest.mark.asyncio
async def test_a_rating_that_cannot_be_stored_is_still_thanked(
        make: Callable[..., Awaitable[Harness]], caplog: pytest.LogCaptureFixture) -> None:
    def broken(_: dict[str, Any]) -> None:
        raise RuntimeError("store away")

    h = await make(feedback=broken)
    await h.wechat.send(text_xml("oBuyer", "裁定"))
    with caplog.at_level(logging.ERROR):
        assert await h.wechat.send(text_xml("oBuyer", "2")) == RATING_TEXTS["rating_thanks_down"]
    assert "wechat.rating_not_stored" in caplog.text and h.bot.texts == ["裁定"]


def test_the_channel_finds_the_rasa_servers_event_broker() -> None:
    published: list[dict[str, Any]] = []

    class AnalyticsBroker:  # stands in for weiquan.analytics.broker's brokers
        def publish(self, event: dict[str, Any]) -> None:
            published.append(event)

    AnalyticsBroker.__module__ = "weiquan.analytics.broker"
    broker = AnalyticsBroker()
    def app(event_broker: Any) -> SimpleNamespace:
        return SimpleNamespace(ctx=SimpleNamespace(agent=SimpleNamespace(
            tracker_store=SimpleNamespace(event_broker=event_broker))))

    publish = broker_publisher(app(broker))
    assert publish is not None
    publish({"event": "feedback"})
    assert published == [{"event": "feedback"}]
    assert broker_publisher(SimpleNamespace(ctx=SimpleNamespace())) is None
    assert broker_publisher(app(None)) is None
    assert broker_publisher(app(SimpleNamespace(publish=published.append))) is None  # another kind of broker


@pytest.mark.asyncio
async def test_no_rating_is_asked_when_the_answer_leaves_no_room_for_it(
        make: Callable[..., Awaitable[Harness]]) -> None:
    rated: list[dict[str, Any]] = []
    h = await make(feedback=rated.append, api=FakeCustomerServiceApi())
    full = await h.wechat.send(text_xml("oBuyer", "长裁定"))
    assert full is not None and RATING_TEXTS["rating_prompt"] not in full  # still one passive reply, not pushed
    assert await h.wechat.send(text_xml("oBuyer", "1")) == "收到：1" and rated == []


@pytest.mark.asyncio
async def test_after_a_ruling_with_a_menu_numbers_choose_and_thumbs_or_words_rate(
        make: Callable[..., Awaitable[Harness]]) -> None:
    rated: list[dict[str, Any]] = []
    h = await make(feedback=rated.append)
    ruling = await h.wechat.send(text_xml("oBuyer", "裁定加菜单"))
    assert ruling is not None and ruling.endswith(f"{TEXTS.menu_hint}\n\n{RATING_TEXTS['rating_prompt_with_menu']}")
    assert RATING_TEXTS["rating_prompt"] not in ruling
    await h.wechat.send(text_xml("oBuyer", "1"))  # the menu's first option, not a rating
    assert h.bot.texts == ["裁定加菜单", TAOBAO] and rated == []
    await h.wechat.send(text_xml("oBuyer", "裁定加菜单"))
    assert await h.wechat.send(text_xml("oBuyer", "[强]")) == RATING_TEXTS["rating_thanks_up"]
    await h.wechat.send(text_xml("oBuyer", "裁定加菜单"))
    assert await h.wechat.send(text_xml("oBuyer", "没帮助")) == RATING_TEXTS["rating_thanks_down"]
    assert [row["rating"] for row in rated] == ["up", "down"]
    assert h.bot.texts == ["裁定加菜单", TAOBAO, "裁定加菜单", "裁定加菜单"]
