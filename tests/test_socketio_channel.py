"""The widget's socket.io channel, run for real: its Sanic app on a free loopback port, a fake bot behind it, and
python-socketio clients in front. No model, no Rasa server."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import shutil
import subprocess
import threading
import urllib.error
import urllib.request
import warnings
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import socketio
from rasa.core.channels.channel import UserMessage
from rasa.core.channels.socketio import SocketIOInput
from sanic import Sanic

from scripts import serve_widget
from weiquan.edge.channels.render import render_widget
from weiquan.edge.channels.socketio import (
    DEFAULT_ALLOWED_ORIGINS,
    WidgetSocketIOInput,
    WidgetSocketIOOutput,
    parse_origins,
    widget_texts,
)
from weiquan.ops.harness import free_port
from weiquan.services import build_services

REPLY_EMPTY = widget_texts()["empty"]
REPLY_MALFORMED = widget_texts()["malformed"]
REPLY_NO_SESSION = widget_texts()["no_session"]

PAGE = "http://127.0.0.1:8080"
WAIT_S = 5
_app_names = itertools.count()

# What the fake bot answers to "话术": one message with text that has a blank line, buttons and custom data.
SCRIPT_MESSAGE = {
    "text": "小二：您好，请问有什么可以帮您？\n\n你：我想投诉卖家恶意骚扰。",
    "buttons": [{"title": "有截图", "payload": '/inform{"evidence":"chat_screenshot"}'}],
    "custom": {"kind": "phone_script"},
}


@dataclass
class FakeBot:
    """Stands in for Rasa's agent: records what the channel forwards and answers through its output channel."""

    received: list[UserMessage] = field(default_factory=list)

    async def __call__(self, message: UserMessage) -> None:
        self.received.append(message)
        out = message.output_channel
        if message.text == "话术":
            await out.send_response(message.sender_id, dict(SCRIPT_MESSAGE))
        elif message.text == "custom":
            await out.send_custom_json(message.sender_id, {"kind": "safety"})
        else:
            await out.send_response(message.sender_id, {"text": f"收到：{message.text}"})


@dataclass
class Server:
    url: str
    bot: FakeBot


async def serve(channel: Any, bot: FakeBot, proxies: int = 0) -> AsyncIterator[Server]:
    """The channel's Sanic app on a free port; `proxies`: forwarding hops it trusts (SANIC_PROXIES_COUNT)."""
    Sanic.test_mode = True
    app = Sanic(f"socketio_test_{next(_app_names)}")
    app.config.PROXIES_COUNT = proxies
    app.blueprint(channel.blueprint(bot), url_prefix="/webhooks/socketio")
    port = free_port()
    server = await app.create_server(host="127.0.0.1", port=port, return_asyncio_server=True, access_log=False)
    await server.startup()
    await server.before_start()
    await server.after_start()
    try:
        yield Server(url=f"http://127.0.0.1:{port}", bot=bot)
    finally:
        await channel.sio.eio.shutdown()  # ends engine.io's ping tasks
        await server.before_stop()
        for connection in list(server.connections):
            connection.close()
        await server.close()
        await server.after_stop()
        for task in asyncio.all_tasks():  # engine.io's per-socket ping loops sleep 25 s after a disconnect
            if task.get_coro().__qualname__.endswith("_send_ping"):
                task.cancel()


def widget_channel(env: Mapping[str, str] | None = None, **overrides: Any) -> WidgetSocketIOInput:
    credentials = {
        "user_message_evt": "user_uttered",
        "bot_message_evt": "bot_uttered",
        "session_persistence": True,
        "metadata_key": "customData",
        "allowed_origins": PAGE,
        **overrides,
    }
    # The hand-off store (and the operator outbox the channel reads) where tests/conftest.py puts it, never var/.
    store = {"HANDOFF_STORE_URL": os.environ["HANDOFF_STORE_URL"]}
    return WidgetSocketIOInput.from_settings(credentials, build_services({**store, **({} if env is None else env)}))


@pytest_asyncio.fixture
async def server() -> AsyncIterator[Server]:
    async for running in serve(widget_channel(), FakeBot()):
        yield running


class Client:
    """A python-socketio client that queues what the server sends."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.bot: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.confirm: asyncio.Queue[str] = asyncio.Queue()
        self.sio.on("bot_uttered", self.bot.put_nowait)
        self.sio.on("session_confirm", self.confirm.put_nowait)

    async def connect(self, url: str, origin: str | None = PAGE, transports: list | None = None,
                      forwarded_for: str | None = None) -> None:
        headers = {"Origin": origin} if origin else {}
        if forwarded_for:  # as a proxy in front of the server adds it
            headers["X-Forwarded-For"] = forwarded_for
        await self.sio.connect(url, headers=headers, transports=transports or ["polling"], wait_timeout=WAIT_S)

    async def start_session(self, session_id: str | None = None) -> str:
        await self.sio.emit("session_request", {"session_id": session_id})
        return await asyncio.wait_for(self.confirm.get(), WAIT_S)

    async def say(self, text: Any, session_id: str | None, **extra: Any) -> None:
        await self.sio.emit("user_uttered", {"message": text, "session_id": session_id, **extra})

    async def next_bot(self, timeout: float = WAIT_S) -> dict[str, Any]:
        return await asyncio.wait_for(self.bot.get(), timeout)

    async def close(self) -> None:
        await self.sio.disconnect()


@pytest.fixture
def websocket_client(monkeypatch: pytest.MonkeyPatch) -> None:
    """python-engineio 4.15's *client* passes `aiohttp.ClientWSTimeout` (aiohttp >= 3.10); Rasa pins aiohttp 3.9.5,
    whose ws_connect takes the close timeout as a float. Only the test client needs this; the server does not."""
    if not hasattr(aiohttp, "ClientWSTimeout"):
        monkeypatch.setattr(aiohttp, "ClientWSTimeout", lambda ws_close: ws_close, raising=False)


@pytest_asyncio.fixture
async def client() -> AsyncIterator[Client]:
    made = Client()
    yield made
    await made.close()


# --- pure helpers ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [
        ("", set(DEFAULT_ALLOWED_ORIGINS)),
        (None, set(DEFAULT_ALLOWED_ORIGINS)),
        ("http://a.example:8080 https://b.example", {"http://a.example:8080", "https://b.example"}),
        ("http://a.example, https://B.example/", {"http://a.example", "https://b.example"}),
        (["http://127.0.0.1:9000"], {"http://127.0.0.1:9000"}),
    ],
)
def test_parse_origins(value: Any, expected: set) -> None:
    assert parse_origins(value) == expected


def test_a_quoted_environment_variable_in_the_origins_is_expanded() -> None:
    env = {"WIDGET_ALLOWED_ORIGINS": "http://127.0.0.1:9000 http://localhost:9000"}
    channel = widget_channel(env=env, allowed_origins="${WIDGET_ALLOWED_ORIGINS}")
    assert channel.allowed_origins == {"http://127.0.0.1:9000", "http://localhost:9000"}
    with pytest.raises(ValueError):  # unset: refused loudly, not silently "allow nothing" or "allow all"
        widget_channel(env={}, allowed_origins="${WIDGET_ALLOWED_ORIGINS}")


@pytest.mark.parametrize("value", ["*", "http://*.example.com", "localhost:8080", "http://a.example/chat"])
def test_parse_origins_refuses_patterns_and_paths(value: str) -> None:
    with pytest.raises(ValueError):
        parse_origins(value)


def test_from_credentials_reads_our_keys() -> None:
    channel = widget_channel(allowed_origins="http://x.example:1", max_message_chars="20")
    assert channel.allowed_origins == {"http://x.example:1"}
    assert channel.max_message_chars == 20
    assert channel.metadata_key == "customData"
    assert channel.session_persistence is True
    assert channel.origin_allowed("http://x.example:1")
    assert not channel.origin_allowed("http://x.example:2")
    assert not channel.origin_allowed(None)


def test_payload_keeps_one_message_whole() -> None:
    payload = render_widget(dict(SCRIPT_MESSAGE))
    assert payload == {
        "text": SCRIPT_MESSAGE["text"],
        "quick_replies": [
            {"content_type": "text", "title": "有截图", "payload": '/inform{"evidence":"chat_screenshot"}'}
        ],
        "custom": {"kind": "phone_script"},
    }


def test_payload_of_image_and_of_nothing() -> None:
    assert render_widget({"image": "http://x/a.png"}) == {
        "attachment": {"type": "image", "payload": {"src": "http://x/a.png"}}
    }
    assert render_widget({"text": "", "template_name": "utter_x"}) is None


# --- the channel over a real socket ---------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("transport", ["polling", "websocket"])
async def test_conversation_round_trip(server: Server, client: Client, websocket_client: None, transport: str) -> None:
    await client.connect(server.url, transports=[transport])
    session_id = await client.start_session()
    assert len(session_id) == 32

    await client.say("你好", session_id, customData={"page": "demo"})
    assert await client.next_bot() == {"text": "收到：你好"}
    [message] = server.bot.received
    assert message.sender_id == session_id
    assert message.input_channel == "socketio"
    assert message.metadata == {"page": "demo"}


@pytest.mark.asyncio
async def test_one_bot_uttered_per_message_with_text_buttons_and_custom(server: Server, client: Client) -> None:
    await client.connect(server.url)
    session_id = await client.start_session()
    await client.say("话术", session_id)
    reply = await client.next_bot()
    assert reply["text"] == SCRIPT_MESSAGE["text"]  # not split on the blank line
    assert reply["custom"] == {"kind": "phone_script"}
    assert [button["title"] for button in reply["quick_replies"]] == ["有截图"]
    with pytest.raises(asyncio.TimeoutError):
        await client.next_bot(timeout=0.5)


@pytest.mark.asyncio
async def test_custom_json_alone_is_sent_as_custom(server: Server, client: Client) -> None:
    await client.connect(server.url)
    session_id = await client.start_session()
    await client.say("custom", session_id)
    assert await client.next_bot() == {"custom": {"kind": "safety"}}


@pytest.mark.asyncio
async def test_a_reload_keeps_the_session(server: Server, client: Client) -> None:
    await client.connect(server.url)
    session_id = await client.start_session()
    await client.close()

    reloaded = Client()
    try:
        await reloaded.connect(server.url)
        assert await reloaded.start_session(session_id) == session_id
        await reloaded.say("还在吗", session_id)
        assert await reloaded.next_bot() == {"text": "收到：还在吗"}
    finally:
        await reloaded.close()
    assert {message.sender_id for message in server.bot.received} == {session_id}


@pytest.mark.asyncio
async def test_every_tab_of_a_session_sees_the_reply(server: Server, client: Client) -> None:
    await client.connect(server.url)
    session_id = await client.start_session()
    other_tab = Client()
    try:
        await other_tab.connect(server.url)
        await other_tab.start_session(session_id)
        await client.say("你好", session_id)
        assert await client.next_bot() == {"text": "收到：你好"}
        assert await other_tab.next_bot() == {"text": "收到：你好"}
    finally:
        await other_tab.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("requested", ["../../etc", "短", "x" * 65, 42, ""])
async def test_an_unusable_session_id_gets_a_fresh_one(server: Server, client: Client, requested: Any) -> None:
    await client.connect(server.url)
    session_id = await client.start_session(requested)
    assert session_id != requested and len(session_id) == 32


@pytest.mark.asyncio
async def test_a_socket_speaks_only_for_its_confirmed_session(server: Server, client: Client) -> None:
    await client.connect(server.url)
    mine = await client.start_session()
    await client.say("你好", "someone_elses_session_id")
    await client.next_bot()
    assert [message.sender_id for message in server.bot.received] == [mine]


@pytest.mark.asyncio
async def test_a_client_without_session_request_is_adopted_or_told(server: Server, client: Client) -> None:
    await client.connect(server.url)
    await client.say("你好", None)
    assert await client.next_bot() == {"text": REPLY_NO_SESSION}
    assert server.bot.received == []

    await client.say("你好", "a1b2c3d4e5f6a7b8")  # Rasa's stock widget protocol: the id in the message
    assert await client.next_bot() == {"text": "收到：你好"}
    assert server.bot.received[0].sender_id == "a1b2c3d4e5f6a7b8"


@pytest.mark.asyncio
async def test_over_long_message_gets_a_friendly_reply_and_is_not_forwarded(server: Server, client: Client) -> None:
    await client.connect(server.url)
    session_id = await client.start_session()
    await client.say("骂" * 501, session_id)
    reply = await client.next_bot()
    assert "500" in reply["text"] and "分几次" in reply["text"]
    assert server.bot.received == []

    await client.say("骂" * 500, session_id)
    await client.next_bot()
    assert len(server.bot.received[0].text) == 500


@pytest.mark.asyncio
async def test_the_cap_comes_from_the_credentials(client: Client) -> None:
    async for running in serve(widget_channel(max_message_chars=10), FakeBot()):
        await client.connect(running.url)
        session_id = await client.start_session()
        await client.say("一二三四五六七八九十一", session_id)
        assert "10" in (await client.next_bot())["text"]
        assert running.bot.received == []
        await client.close()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "payload, answer",
    [
        ("just a string", REPLY_MALFORMED),
        ({"message": 12}, REPLY_MALFORMED),
        ({"message": ["a"]}, REPLY_MALFORMED),
        ({"session_id": "x"}, REPLY_MALFORMED),
        ({"message": "   \n"}, REPLY_EMPTY),
    ],
)
async def test_malformed_events_get_a_friendly_reply(server: Server, client: Client, payload: Any, answer: str) -> None:
    await client.connect(server.url)
    await client.start_session()
    await client.sio.emit("user_uttered", payload)
    assert await client.next_bot() == {"text": answer}
    assert server.bot.received == []


@pytest.mark.asyncio
@pytest.mark.parametrize("metadata, expected", [('{"a": 1}', {"a": 1}), ("{not json", {}), (["x"], {}), (None, {})])
async def test_metadata_is_a_dict_or_nothing(server: Server, client: Client, metadata: Any, expected: dict) -> None:
    await client.connect(server.url)
    session_id = await client.start_session()
    await client.say("你好", session_id, customData=metadata)
    await client.next_bot()
    assert server.bot.received[0].metadata == expected


@pytest.mark.asyncio
@pytest.mark.parametrize("transports", [["websocket"], ["polling"]])
async def test_foreign_origin_is_refused(
    server: Server, client: Client, websocket_client: None, transports: list
) -> None:
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(server.url, origin="http://evil.example", transports=transports)
    assert not client.sio.connected


@pytest.mark.asyncio
@pytest.mark.parametrize("origin", [PAGE, None])
async def test_allowed_origin_and_originless_clients_connect_by_polling(
    server: Server, client: Client, origin: str | None
) -> None:
    await client.connect(server.url, origin=origin, transports=["polling"])
    session_id = await client.start_session()
    await client.say("你好", session_id)
    assert await client.next_bot() == {"text": "收到：你好"}


@pytest.mark.asyncio
async def test_cors_header_only_for_allowed_origins(server: Server) -> None:
    url = f"{server.url}/socket.io/?EIO=4&transport=polling"
    async with aiohttp.ClientSession() as http:
        async with http.get(url, headers={"Origin": PAGE}) as allowed:
            assert allowed.status == 200
            assert allowed.headers["Access-Control-Allow-Origin"] == PAGE
        async with http.get(url, headers={"Origin": "http://evil.example"}) as foreign:
            assert foreign.status == 400
            assert "Access-Control-Allow-Origin" not in foreign.headers


@pytest.mark.asyncio
async def test_health_route(server: Server) -> None:
    async with aiohttp.ClientSession() as http, http.get(f"{server.url}/webhooks/socketio/") as answer:
        assert await answer.json() == {"status": "ok"}


# --- rasa#13027: python-socketio >= 5.10 made enter_room a coroutine ------------------------------------------


@pytest.fixture
def coroutine_rooms(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make enter_room/leave_room coroutines, as python-socketio 5.10+ has them, on the pinned 5.9.0."""
    for name in ("enter_room", "leave_room"):
        original = getattr(socketio.AsyncServer, name)

        async def as_coroutine(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(socketio.AsyncServer, name, as_coroutine)


@pytest.mark.asyncio
async def test_replies_arrive_when_enter_room_is_a_coroutine(coroutine_rooms: None, client: Client) -> None:
    async for running in serve(widget_channel(), FakeBot()):
        await client.connect(running.url)
        session_id = await client.start_session()
        await client.start_session(session_id)  # a second request for the same session (leave/enter) is fine
        await client.say("你好", session_id)
        assert await client.next_bot() == {"text": "收到：你好"}
        await client.close()


@pytest.mark.asyncio
async def test_rasa_stock_channel_loses_replies_there(coroutine_rooms: None, client: Client) -> None:
    """The control: the test above reproduces the bug, since Rasa's own channel fails it."""
    stock = SocketIOInput(session_persistence=True, metadata_key="customData")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "coroutine ... was never awaited" is the bug itself
        async for running in serve(stock, FakeBot()):
            await client.connect(running.url)
            session_id = await client.start_session()
            await client.say("你好", session_id)
            with pytest.raises(asyncio.TimeoutError):
                await client.next_bot(timeout=1)
            assert len(running.bot.received) == 1
            await client.close()


def test_output_channel_name_and_namespace() -> None:
    output = WidgetSocketIOOutput(socketio.AsyncServer(async_mode="asgi"), "bot_uttered", namespace="/chat")
    assert output.name() == "socketio"
    assert output.namespace == "/chat"


# --- what the browser gets: the committed widget bundle and the demo page server ----------------------------------

WIDGET = Path(__file__).resolve().parents[1] / "widget"


def test_committed_bundle_is_local_and_includes_socket_io_client_4() -> None:
    bundle = (WIDGET / "dist" / "weiquan-widget.js").read_text(encoding="utf-8")
    css = (WIDGET / "dist" / "weiquan-widget.css").read_text(encoding="utf-8")
    lock = json.loads((WIDGET / "package-lock.json").read_text(encoding="utf-8"))
    version = lock["packages"]["node_modules/socket.io-client"]["version"]
    assert version.startswith("4.")
    assert f"bundles socket.io-client {version}" in bundle.splitlines()[0]
    for text in (bundle, css):
        assert "@import" not in text and "fonts.g" not in text and "cdn" not in text.lower()
        assert not re.search(r"url\(\s*['\"]?(https?:)?//", text)


def test_committed_bundle_matches_the_source() -> None:
    """The committed widget/dist is what widget/src builds to (make test-unit runs `npm ci` first)."""
    assert shutil.which("node"), "Node.js is needed to check the widget bundle"
    assert (WIDGET / "node_modules" / "esbuild").is_dir(), "run `make widget-deps` (npm ci in widget/)"
    result = subprocess.run(["node", "build.mjs", "--check"], cwd=WIDGET, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_the_widget_draws_the_presenters_real_cards() -> None:
    """widget/test/ draws every card of tests/golden/contracts.json with src/render.js (jsdom), so a card whose shape
    the Python side changed fails here too."""
    assert (WIDGET / "node_modules" / "jsdom").is_dir(), "run `make widget-deps` (npm ci in widget/)"
    result = subprocess.run(["npm", "test", "--silent"], cwd=WIDGET, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout


def test_demo_server_csp_allows_only_itself_and_the_rasa_server() -> None:
    csp = serve_widget.content_security_policy(serve_widget.server_origin("http://localhost:5005/"))
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "style-src 'self'" in csp
    assert "connect-src 'self' http://localhost:5005 ws://localhost:5005" in csp
    assert "wss://bot.example" in serve_widget.content_security_policy("https://bot.example")


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "http://a.example/path", "http://a.example; script-src *", "localhost:5005", ""]
)
def test_demo_server_refuses_a_server_url_that_is_not_an_origin(url: str) -> None:
    with pytest.raises(ValueError):
        serve_widget.server_origin(url)


def test_make_runs_demo_page_offers_ratings_to_the_console_and_lets_the_page_reach_it() -> None:
    httpd = serve_widget.make_server("127.0.0.1", 0, "http://127.0.0.1:5005", quiet=True,
                                     feedback_url="http://localhost:8090/feedback")
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{httpd.server_address[1]}/config.js") as config:
            assert '"feedbackUrl": "http://localhost:8090/feedback"' in config.read().decode()
            assert "connect-src 'self' http://127.0.0.1:5005 ws://127.0.0.1:5005 http://localhost:8090" in (
                config.headers["Content-Security-Policy"])
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)
    with pytest.raises(ValueError):
        serve_widget.feedback_target("http://localhost:8090/api/conversations")


def test_demo_server_serves_only_its_files() -> None:
    httpd = serve_widget.make_server("127.0.0.1", 0, "http://127.0.0.1:5005", quiet=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        with urllib.request.urlopen(f"{base}/") as page:
            assert page.headers["Content-Type"] == "text/html; charset=utf-8"
            assert "connect-src 'self' http://127.0.0.1:5005" in page.headers["Content-Security-Policy"]
            assert page.headers["X-Content-Type-Options"] == "nosniff"
        with urllib.request.urlopen(f"{base}/config.js") as config:
            assert config.read().decode() == (
                'window.WeiquanWidgetConfig = {"serverUrl": "http://127.0.0.1:5005", "open": true};\n'
            )
        with urllib.request.urlopen(f"{base}/weiquan-widget.js") as bundle:
            assert bundle.headers["Content-Type"] == "text/javascript; charset=utf-8"
        for path in ("/../credentials.yml", "/widget/package.json", "/dist/weiquan-widget.js"):
            with pytest.raises(urllib.error.HTTPError) as missing:
                urllib.request.urlopen(f"{base}{path}")
            assert missing.value.code == 404
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)
