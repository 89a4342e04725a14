"""An operator's message is "delivered" only when the buyer's side acknowledged it, otherwise "stored" and shown when
the buyer returns — on each channel run for real on a loopback port (fake bots behind them, no model), with the outbox
in a throw-away SQLite file (weiquan/stores/outbox.py). The console's side is in tests/test_handoff_console.py, the real
servers in tests/e2e/test_handoff_e2e.py and test_handoff_replicas.py."""
from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import socketio
from rasa.core.channels.channel import UserMessage
from sanic import Sanic

from tests.test_limits import _apps
from tests.test_socketio_channel import PAGE, WAIT_S, FakeBot, serve, widget_channel
from tests.test_wechat_channel import Harness, run_app, text_xml
from tests.test_wechat_channel import make as make  # noqa: F401 - the fixture
from weiquan.core.contracts import DELIVERY_ID, Delivery, OperatorMessage
from weiquan.edge.channels.rest import GuardedRestInput
from weiquan.edge.channels.wechat_api import FakeCustomerServiceApi
from weiquan.stores.outbox import OperatorOutbox

OPERATOR: OperatorMessage = {"text": "你好，我是人工客服小王，电话13812345678", "custom": {"kind": "operator",
                                                                                   "label": "人工客服"}}
REDIS_URL = "redis://127.0.0.1:6379/0"  # the Redis every machine (and CI) runs
SEEN_TEXT = "你好，我是人工客服小王，电话138****5678"  # the outbox keeps it masked, like every store
_moments = itertools.count(1000)


@pytest.fixture
def outbox(tmp_path: Path) -> OperatorOutbox:
    return OperatorOutbox(f"sqlite:///{tmp_path / 'handoff.db'}")


def queued(outbox: OperatorOutbox, sender: str, channel: str) -> tuple[str, dict[str, Any]]:
    """What the console does before Rasa passes the message on: the outbox entry, and the message as Rasa hands it
    to the output channel (the event's metadata merged in)."""
    delivery_id = uuid.uuid4().hex
    outbox.add(delivery_id, sender, channel, OPERATOR, next(_moments))
    return delivery_id, {**OPERATOR, "handoff": "operator", DELIVERY_ID: delivery_id}


class Widget:
    """The widget on a socket: acknowledges what it shows (as widget/src/widget.js does), or not."""

    def __init__(self, acknowledges: bool = True) -> None:
        client_class = socketio.AsyncClient if acknowledges else SilentClient
        self.sio = client_class(reconnection=False)
        self.bot: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.confirm: asyncio.Queue[str] = asyncio.Queue()
        self.sio.on("bot_uttered", self.bot.put_nowait)
        self.sio.on("session_confirm", self.confirm.put_nowait)

    async def open(self, url: str, session_id: str) -> None:
        await self.sio.connect(url, headers={"Origin": PAGE}, transports=["polling"], wait_timeout=WAIT_S)
        await self.sio.emit("session_request", {"session_id": session_id})
        assert await asyncio.wait_for(self.confirm.get(), WAIT_S) == session_id

    async def next(self, timeout: float = WAIT_S) -> dict[str, Any]:
        return await asyncio.wait_for(self.bot.get(), timeout)


class SilentClient(socketio.AsyncClient):
    """A socket that receives messages but never acknowledges them (a browser tab frozen in the background)."""

    async def _handle_event(self, namespace: str, id: Any, data: Any) -> None:
        await super()._handle_event(namespace, None, data)


# ---------------------------------------------------------------------- widget


async def test_widget_delivered_only_when_the_socket_acknowledged_it(outbox: OperatorOutbox) -> None:
    channel = widget_channel()
    channel.outbox = lambda: outbox
    async for server in serve(channel, FakeBot()):
        output = channel.get_output_channel()
        widget = Widget()
        await widget.open(server.url, "session-acknowledges")
        try:
            delivery_id, message = queued(outbox, "session-acknowledges", "socketio")
            await output.send_response("session-acknowledges", message)
            shown = await widget.next()
            assert (shown["text"], shown["id"]) == (OPERATOR["text"], delivery_id)  # live: the real text
            assert outbox.status(delivery_id) is Delivery.DELIVERED
        finally:
            await widget.sio.disconnect()

        silent = Widget(acknowledges=False)
        await silent.open(server.url, "session-silent")
        try:
            delivery_id, message = queued(outbox, "session-silent", "socketio")
            await output.send_response("session-silent", message)
            assert (await silent.next())["id"] == delivery_id  # it arrived, but nobody said it was shown
            assert outbox.status(delivery_id) is Delivery.STORED
        finally:
            await silent.sio.disconnect()

        nobody_id, message = queued(outbox, "session-gone", "socketio")
        await output.send_response("session-gone", message)  # the buyer closed the page
        assert outbox.status(nobody_id) is Delivery.STORED


async def test_widget_shows_what_was_stored_when_the_buyer_returns(outbox: OperatorOutbox) -> None:
    channel = widget_channel()
    channel.outbox = lambda: outbox
    async for server in serve(channel, FakeBot()):
        first, message = queued(outbox, "session-returns", "socketio")
        await channel.get_output_channel().send_response("session-returns", message)
        second, _ = queued(outbox, "session-returns", "socketio")
        queued(outbox, "session-returns", "rest")  # another channel's: not this socket's to show
        assert outbox.status(first) is Delivery.STORED
        widget = Widget()
        await widget.open(server.url, "session-returns")  # the buyer opens the page again
        try:
            shown = [await widget.next(), await widget.next()]
            assert [(m["id"], m["text"], m["custom"]["kind"]) for m in shown] == [
                (first, SEEN_TEXT, "operator"), (second, SEEN_TEXT, "operator")]
            for _ in range(50):
                if outbox.status(second) is Delivery.DELIVERED:
                    break
                await asyncio.sleep(0.05)
            assert outbox.status(first) is outbox.status(second) is Delivery.DELIVERED
            assert [m.channel for m in outbox.pending("session-returns")] == ["rest"]
            with pytest.raises(asyncio.TimeoutError):
                await widget.next(timeout=0.5)  # nothing else, and nothing twice
        finally:
            await widget.sio.disconnect()


# ---------------------------------------------------------------------- WeChat


async def test_wechat_delivered_when_the_api_accepted_it_else_sent_with_the_next_answer(
        make, outbox: OperatorOutbox) -> None:  # noqa: F811
    api = FakeCustomerServiceApi()
    h: Harness = await make(api=api, outbox=lambda: outbox)
    output = h.channel.get_output_channel()
    delivery_id, message = queued(outbox, "openid-ok", "wechat")
    await output.send_response("openid-ok", message)
    assert outbox.status(delivery_id) is Delivery.DELIVERED and api.sent[-1][0] == "openid-ok"

    api.fail_with = 45015  # the 48-hour window closed: WeChat refuses it
    refused, message = queued(outbox, "openid-late", "wechat")
    await output.send_response("openid-late", message)
    assert outbox.status(refused) is Delivery.STORED

    api.fail_with = None  # the buyer writes again: the stored message comes first in the answer
    assert await h.wechat.send(text_xml("openid-late", "你好")) == f"{SEEN_TEXT}\n\n收到：你好"
    assert outbox.status(refused) is Delivery.DELIVERED
    again, _ = queued(outbox, "openid-late", "wechat")
    assert await h.wechat.send(text_xml("openid-late", "长")) is None  # too long for one reply: all pushed
    await h.channel.drain()
    assert [text for openid, text in api.sent if openid == "openid-late"][0].startswith(f"{SEEN_TEXT}\n\n第0段")
    assert outbox.status(again) is Delivery.DELIVERED


async def test_wechat_without_the_api_the_next_passive_reply_carries_it(make, outbox: OperatorOutbox) -> None:  # noqa: F811
    h: Harness = await make(outbox=lambda: outbox)
    assert h.channel.get_output_channel() is None  # Rasa can only store it
    delivery_id, _ = queued(outbox, "openid-passive", "wechat")
    reply = await h.wechat.send(text_xml("openid-passive", "你好"))
    assert reply is not None and reply.startswith(SEEN_TEXT) and "收到：你好" in reply
    assert outbox.status(delivery_id) is Delivery.DELIVERED
    assert await h.wechat.send(text_xml("openid-passive", "再见")) == "收到：再见"  # once only


# ---------------------------------------------------------------------- REST


class EchoBot:
    async def __call__(self, message: UserMessage) -> None:
        await message.output_channel.send_response(message.sender_id, {"text": f"收到：{message.text}"})


@contextlib.asynccontextmanager
async def rest_app(channel: GuardedRestInput) -> AsyncIterator[str]:
    Sanic.test_mode = True
    app = Sanic(f"rest_delivery_{next(_apps)}")
    app.blueprint(channel.blueprint(EchoBot()), url_prefix="/webhooks/rest")
    async with run_app(app) as url:
        yield f"{url}/webhooks/rest/webhook"


async def test_rest_the_next_reply_carries_what_was_stored(outbox: OperatorOutbox) -> None:
    delivery_id, _ = queued(outbox, "rest-buyer", "rest")
    async with rest_app(GuardedRestInput(outbox=lambda: outbox)) as url, aiohttp.ClientSession() as session:
        async def say(text: str) -> list[dict[str, Any]]:
            async with session.post(url, data=json.dumps({"sender": "rest-buyer", "message": text})) as response:
                assert response.status == 200
                return await response.json()

        assert [m["text"] for m in await say("在吗")] == [SEEN_TEXT, "收到：在吗"]
        assert outbox.status(delivery_id) is Delivery.DELIVERED
        assert [m["text"] for m in await say("好的")] == ["收到：好的"]


async def test_widget_acknowledgement_comes_back_through_redis_to_a_server_without_sockets(
        outbox: OperatorOutbox) -> None:
    """The console's Rasa server (rasa-admin) holds no socket: the buyer's socket is on a replica, the emit and its
    acknowledgement travel through Redis (WIDGET_REDIS_URL)."""
    replica = widget_channel(redis_url=REDIS_URL)
    admin = widget_channel(redis_url=REDIS_URL)
    admin.outbox = lambda: outbox
    async with contextlib.AsyncExitStack() as stack:
        on_replica = await stack.enter_async_context(contextlib.asynccontextmanager(serve)(replica, FakeBot()))
        await stack.enter_async_context(contextlib.asynccontextmanager(serve)(admin, FakeBot()))
        widget = Widget()
        await widget.open(on_replica.url, "session-on-a-replica")
        stack.push_async_callback(widget.sio.disconnect)
        delivery_id, message = queued(outbox, "session-on-a-replica", "socketio")
        await admin.get_output_channel().send_response("session-on-a-replica", message)
        assert (await widget.next())["id"] == delivery_id
        assert outbox.status(delivery_id) is Delivery.DELIVERED
