"""Operator messages on each channel, with the channels run for real on loopback ports and fake bots behind them:
- widget: a message emitted by *another* server reaches the user's socket through Redis (python-socketio's
  AsyncRedisManager; the local Redis at 127.0.0.1:6379 that CI has too), and does not without it;
- WeChat: an operator's message goes out through the customer-service API; `transfer_customer_service` hands the
  user to WeChat's own customer service."""
from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
import xmltodict
from rasa.core.channels.channel import UserMessage
from socketio import AsyncManager, AsyncRedisManager

from tests.test_socketio_channel import Client, FakeBot, serve, widget_channel
from tests.test_wechat_channel import Harness, text_xml
from tests.test_wechat_channel import make as make  # noqa: F401 - the fixture
from weiquan.edge.channels.socketio import client_manager
from weiquan.edge.channels.wechat import WeChatInput, WeChatPushOutput
from weiquan.edge.channels.wechat_api import CustomerServiceError, FakeCustomerServiceApi
from weiquan.services import build_services

REDIS_URL = "redis://127.0.0.1:6379/0"
OPERATOR_MESSAGE = {"text": "你好，我是人工客服小王。", "custom": {"kind": "operator", "label": "人工客服"}}


def test_rooms_are_in_memory_unless_a_redis_url_is_set() -> None:
    assert type(client_manager("")) is AsyncManager
    assert isinstance(client_manager(REDIS_URL), AsyncRedisManager)
    assert widget_channel(env={}, redis_url="${WIDGET_REDIS_URL}").redis_url == ""  # quoted and unset: in-memory
    redis = widget_channel(env={"WIDGET_REDIS_URL": REDIS_URL}, redis_url="${WIDGET_REDIS_URL}")
    assert redis.redis_url == REDIS_URL


async def operator_message_reaches_socket_on_other_server(redis_url: str) -> dict[str, Any] | None:
    """Client on server A; the operator's message is sent through server B's output channel (as Rasa's API does
    when the console's call lands on another replica). Returns what the client received, or None."""
    a, b = widget_channel(redis_url=redis_url), widget_channel(redis_url=redis_url)
    async with contextlib.AsyncExitStack() as stack:
        server_a = await stack.enter_async_context(contextlib.asynccontextmanager(serve)(a, FakeBot()))
        await stack.enter_async_context(contextlib.asynccontextmanager(serve)(b, FakeBot()))
        client = Client()
        stack.push_async_callback(client.close)
        await client.connect(server_a.url)
        session = await client.start_session("handoff-session-0001")
        output = b.get_output_channel()
        for _ in range(10):  # server A subscribes to Redis on its first connection; give it a moment
            await output.send_response(session, dict(OPERATOR_MESSAGE))
            with contextlib.suppress(asyncio.TimeoutError):
                return await client.next_bot(timeout=0.5)
        return None


async def test_an_operator_message_sent_through_another_server_reaches_the_socket_via_redis() -> None:
    assert await operator_message_reaches_socket_on_other_server(REDIS_URL) == OPERATOR_MESSAGE


async def test_without_redis_the_other_server_cannot_reach_the_socket() -> None:
    assert await operator_message_reaches_socket_on_other_server("") is None


# --- WeChat -------------------------------------------------------------------------------------------------------


async def test_wechat_operator_messages_use_the_customer_service_api() -> None:
    api = FakeCustomerServiceApi()
    output = WeChatInput(token="t", api=api).get_output_channel()
    assert isinstance(output, WeChatPushOutput) and output.name() == "wechat"
    await output.send_response("openid-1", dict(OPERATOR_MESSAGE))
    assert api.sent == [("openid-1", "你好，我是人工客服小王。")]
    assert WeChatInput(token="t").get_output_channel() is None  # no API: Rasa keeps the message in the transcript


async def test_a_refused_push_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    output = WeChatInput(token="t", api=FakeCustomerServiceApi(fail_with=45015)).get_output_channel()
    await output.send_response("openid-1", {"text": "超过48小时了"})
    assert "45015" in caplog.text
    with pytest.raises(CustomerServiceError):  # the fake really fails, so the test above means something
        await FakeCustomerServiceApi(fail_with=45015).send_text("o", "x")


class HandoffBot(FakeBot):
    async def __call__(self, message: UserMessage) -> None:
        self.received.append(message)
        if message.text == "转人工":
            await message.output_channel.send_response(message.sender_id, {
                "text": "正在为你转接微信人工客服，请稍候。",
                "custom": {"kind": "handoff_status", "state": "transfer"}})
        else:
            await message.output_channel.send_response(message.sender_id, {"text": f"收到：{message.text}"})


async def test_transfer_customer_service_setting_hands_the_user_to_wechat(make) -> None:  # noqa: F811
    h: Harness = await make(bot=HandoffBot(), transfer_customer_service=True)
    status, body = await h.wechat.post(text_xml("openid-9", "转人工"))
    reply = xmltodict.parse(body)["xml"]
    assert status == 200 and reply["MsgType"] == "transfer_customer_service" and reply["ToUserName"] == "openid-9"
    metadata = h.bot.received[-1].metadata["wechat"]
    assert metadata["transfer_customer_service"] is True  # the action knows not to pause
    assert await h.wechat.send(text_xml("openid-9", "你好")) == "收到：你好"


async def test_without_the_setting_the_hand_off_line_is_an_ordinary_text_reply(make) -> None:  # noqa: F811
    h: Harness = await make(bot=HandoffBot())
    assert await h.wechat.send(text_xml("openid-9", "转人工")) == "正在为你转接微信人工客服，请稍候。"
    assert "transfer_customer_service" not in h.bot.received[-1].metadata["wechat"]


def test_the_setting_is_read_from_credentials() -> None:
    credentials = {"token": "t", "transfer_customer_service": "${WECHAT_TRANSFER_CUSTOMER_SERVICE}"}
    on = build_services({"WECHAT_TRANSFER_CUSTOMER_SERVICE": "true"})
    assert WeChatInput.from_settings(credentials, on).transfer_customer_service
    assert not WeChatInput.from_settings(credentials, build_services({})).transfer_customer_service
