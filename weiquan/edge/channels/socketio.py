"""Socket.io channel for the web widget: Rasa's channel, fixed and guarded.

Rasa 3.6.21's `SocketIOInput` has three problems for us:

* it calls `sio.enter_room()` without `await`; from python-socketio 5.10 that is a coroutine, so with
  `session_persistence: true` the socket never joins its session's room and bot replies silently never arrive
  (rasa#13027). We await it when it is awaitable, so this works on the pinned 5.9.0 and on later versions;
* it accepts any origin (`cors_allowed_origins=[]`) and any message size (engine.io's 1 MB frame limit aside);
* its output channel splits text on blank lines and sends `custom` as a separate (and malformed) event, while the
  widget needs each bot message whole: one `bot_uttered` carrying `text`, `quick_replies` and `custom` together.

Operator messages (docs/handoff.md) reach the user through `get_output_channel()`: Rasa's API emits to the room named
after the conversation. With several workers or replicas that room may live in another process: give the channel a
`redis_url` and every server shares one python-socketio `AsyncRedisManager`, so an emit anywhere reaches the socket
wherever it is connected (in-memory when empty). python-socketio pickles what it publishes: keep that Redis private.

Delivery (weiquan/stores/outbox.py): an operator's message is emitted with a socket.io acknowledgement request (which
python-socketio carries back across servers through the same Redis); the widget acknowledges once it shows it, and
only then is the message marked delivered. Without an acknowledgement within `ACK_TIMEOUT_S` it stays stored, and is
sent again (and acknowledged) when a socket asks for that session again (`session_request`: the buyer is back).

Security choices: the page's Origin must be one of the configured exact origins (no patterns, no `*`); a request
without an Origin header (a non-browser client, which could forge one anyway) is let through. A socket talks for the
session it confirmed with `session_request`, not for whatever `session_id` a later message names. User text is never
logged here.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeGuard

import rasa.core.channels.channel
from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from rasa.core.channels.socketio import SocketBlueprint, SocketIOInput, SocketIOOutput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from socketio import AsyncManager, AsyncRedisManager, AsyncServer
from socketio.asyncio_pubsub_manager import AsyncPubSubManager

from weiquan.core.contracts import DELIVERY_ID
from weiquan.core.texts import TextFile, load_text_file
from weiquan.edge import faults
from weiquan.edge.channels.render import render_widget
from weiquan.edge.limits import Limits, RateGate, is_valid_unicode, json_depth, shortcut_policy
from weiquan.services import Services, default_services, expand_env
from weiquan.stores.outbox import OutboxSource, pending_for, settle

logger = logging.getLogger(__name__)

DEFAULT_ALLOWED_ORIGINS = ("http://localhost:8080", "http://127.0.0.1:8080")
DEFAULT_MAX_MESSAGE_CHARS = 500
# engine.io drops a connection whose frame exceeds this; far above any message under the character cap
# (500 characters are at most ~3 kB of JSON), far below engine.io's 1 MB default.
MAX_FRAME_BYTES = 64 * 1024
SESSION_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{8,64}")
ORIGIN_PATTERN = re.compile(r"https?://[a-z0-9.\-\[\]:]+")

TEXTS_PATH = Path(__file__).with_name("widget_texts.yml")
# A socket.io packet that cannot be decoded safely (too deep, not JSON) arrives as this event, answered `malformed`.
MALFORMED_EVENT = "weiquan_malformed_packet"
CHANNEL = "socketio"
# How long an operator's message waits for the widget's acknowledgement before it counts as stored: the console waits
# this long at most for its answer. Through Redis an acknowledgement takes milliseconds.
ACK_TIMEOUT_S = 2.0


def widget_texts() -> TextFile:
    """What the widget shows instead of forwarding a message Rasa should not see (read once, on first use)."""
    return load_text_file(TEXTS_PATH)


def parse_origins(value: Any) -> frozenset[str]:
    """Exact origins from a space- or comma-separated string (or a list); empty means the local demo page."""
    if isinstance(value, str):
        items = re.split(r"[\s,]+", value)
    elif isinstance(value, Iterable):
        items = [str(item) for item in value]
    else:
        items = []
    origins = {item.strip().rstrip("/").lower() for item in items if item and item.strip()}
    bad = sorted(origin for origin in origins if not ORIGIN_PATTERN.fullmatch(origin))
    if bad:
        raise ValueError(
            f"allowed_origins must list exact origins like http://localhost:8080 (no paths, patterns or '*'): {bad}"
        )
    return frozenset(origins) if origins else frozenset(DEFAULT_ALLOWED_ORIGINS)


class DepthCheckedJson:
    """The json module python-socketio decodes packets with, refusing nesting deeper than `max_depth`.

    Plain `json.loads` raises RecursionError on a deeply nested packet: python-socketio logs a traceback and drops the
    message, so the buyer gets no answer. Here such a packet (and one that is not JSON) becomes the event
    MALFORMED_EVENT, which the channel answers with a short request to send text again.
    """

    def __init__(self, max_depth: int) -> None:
        self.max_depth = max_depth

    @staticmethod
    def dumps(*args: Any, **kwargs: Any) -> str:
        return json.dumps(*args, **kwargs)

    def loads(self, text: str | bytes, **kwargs: Any) -> Any:
        if json_depth(text) > self.max_depth:
            return [MALFORMED_EVENT, "too deep"]
        try:
            return json.loads(text, **kwargs)
        except (ValueError, RecursionError):
            return [MALFORMED_EVENT, "not JSON"]


def is_valid_session_id(value: Any) -> TypeGuard[str]:
    return isinstance(value, str) and SESSION_ID_PATTERN.fullmatch(value) is not None


async def _maybe_await(result: Any) -> None:
    """python-socketio < 5.10 returns None from enter_room/leave_room, later versions a coroutine (rasa#13027)."""
    if inspect.isawaitable(result):
        await result


def client_manager(redis_url: str) -> AsyncManager:
    """Rooms shared by every server through Redis pub/sub when `redis_url` is set, else kept in this process."""
    if not redis_url:
        return AsyncManager()
    logger.info("socket.io rooms are shared through Redis")
    return AsyncRedisManager(redis_url)


class WidgetSocketIOOutput(SocketIOOutput):
    """Emits exactly one `bot_uttered` per bot message (Rasa's splits text and mangles custom JSON); an operator's
    message (one with a delivery id) is marked delivered in the outbox once a socket acknowledges it."""

    def __init__(self, sio: AsyncServer, bot_message_evt: str, namespace: str | None = None,
                 outbox: OutboxSource | None = None, now: Callable[[], float] | None = None,
                 ack_timeout_s: float = ACK_TIMEOUT_S) -> None:
        super().__init__(sio, bot_message_evt)
        self.namespace = namespace
        self.outbox = outbox
        self.now = now or default_services().clock.now
        self.ack_timeout_s = ack_timeout_s

    async def _send_message(self, socket_id: str, response: Any) -> None:
        await self.sio.emit(self.bot_message_evt, response, room=socket_id, namespace=self.namespace)

    async def send_response(self, recipient_id: str, message: dict[str, Any]) -> None:
        payload = render_widget(message)
        if not payload:
            return
        delivery_id = message.get(DELIVERY_ID)
        if not delivery_id or self.outbox is None:
            await self._send_message(recipient_id, payload)
            return
        if await emit_acknowledged(self.sio, self.bot_message_evt, {**payload, "id": delivery_id}, recipient_id,
                                   self.namespace, self.ack_timeout_s):
            settle(self.outbox, [delivery_id], self.now())

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        await self.send_response(recipient_id, {"text": text})

    async def send_text_with_buttons(
        self, recipient_id: str, text: str, buttons: list[dict[str, Any]], **kwargs: Any
    ) -> None:
        await self.send_response(recipient_id, {"text": text, "buttons": buttons})

    async def send_quick_replies(
        self, recipient_id: str, text: str, quick_replies: list[dict[str, Any]], **kwargs: Any
    ) -> None:
        await self.send_response(recipient_id, {"text": text, "quick_replies": quick_replies})

    async def send_custom_json(self, recipient_id: str, json_message: dict[str, Any], **kwargs: Any) -> None:
        await self.send_response(recipient_id, {"custom": json_message})


async def emit_acknowledged(sio: AsyncServer, event: str, payload: dict[str, Any], room: str, namespace: str | None,
                            timeout_s: float) -> bool:
    """Emits to a room asking for an acknowledgement; True when a socket acknowledged it within `timeout_s`."""
    manager = sio.manager
    if not isinstance(manager, AsyncPubSubManager) and not manager.rooms.get(namespace or "/", {}).get(room):
        return False  # rooms are all in this process, and nobody is in this one: no need to wait
    acknowledged = asyncio.get_running_loop().create_future()

    def on_ack(*_: Any) -> None:
        if not acknowledged.done():
            acknowledged.set_result(True)

    started = time.monotonic()
    await sio.emit(event, payload, room=room, namespace=namespace, callback=on_ack)
    try:
        await asyncio.wait_for(acknowledged, timeout_s)
    except asyncio.TimeoutError:
        logger.info("widget.not_acknowledged within %.1f s: the operator's message stays stored", timeout_s)
        return False
    logger.debug("widget.acknowledged after %.0f ms", (time.monotonic() - started) * 1000)
    return True


class WidgetSocketIOInput(SocketIOInput):
    """Rasa's socket.io input channel with awaited rooms, an origin allowlist and a message length cap."""

    topic = "widget"  # the word its files use: widget_texts.yml, render_widget, tests/e2e/test_widget_*.py

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> InputChannel:
        return cls.from_settings(credentials, default_services())

    @classmethod
    def from_settings(cls, credentials: Mapping[str, Any] | None, services: Services) -> WidgetSocketIOInput:
        """The channel from credentials.yml's section and the environment the composition root read. Rasa expands
        ${VAR} only in unquoted YAML scalars; a quoted "${VAR}" arrives as written and is expanded here."""
        credentials = credentials or {}
        env = services.env

        def expanded(value: Any) -> Any:
            return expand_env(value, env) if isinstance(value, str) else value

        return cls(
            user_message_evt=credentials.get("user_message_evt", "user_uttered"),
            bot_message_evt=credentials.get("bot_message_evt", "bot_uttered"),
            namespace=credentials.get("namespace"),
            session_persistence=credentials.get("session_persistence", False),
            socketio_path=credentials.get("socketio_path", "/socket.io"),
            jwt_key=credentials.get("jwt_key"),
            jwt_method=credentials.get("jwt_method", "HS256"),
            metadata_key=credentials.get("metadata_key", "metadata"),
            allowed_origins=expanded(credentials.get("allowed_origins")),
            max_message_chars=int(credentials.get("max_message_chars") or DEFAULT_MAX_MESSAGE_CHARS),
            limits=Limits.from_settings(credentials, DEFAULT_MAX_MESSAGE_CHARS, env),
            redis_url=expanded(credentials.get("redis_url")),
            outbox=services.outbox,
            now=services.clock.now,
        )

    def __init__(
        self,
        user_message_evt: str = "user_uttered",
        bot_message_evt: str = "bot_uttered",
        namespace: str | None = None,
        session_persistence: bool = False,
        socketio_path: str | None = "/socket.io",
        jwt_key: str | None = None,
        jwt_method: str | None = "HS256",
        metadata_key: str | None = "metadata",
        allowed_origins: Any = None,
        max_message_chars: int = DEFAULT_MAX_MESSAGE_CHARS,
        limits: Limits | None = None,
        redis_url: str | None = None,
        outbox: OutboxSource | None = None,
        now: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(
            user_message_evt,
            bot_message_evt,
            namespace,
            session_persistence,
            socketio_path,
            jwt_key,
            jwt_method,
            metadata_key,
        )
        self.allowed_origins = parse_origins(allowed_origins)
        if max_message_chars < 1:
            raise ValueError("max_message_chars must be positive")
        self.max_message_chars = max_message_chars
        self.limits = limits or Limits(max_message_chars=max_message_chars, max_body_bytes=MAX_FRAME_BYTES)
        self.gate = RateGate(self.limits)
        self.redis_url = str(redis_url or "").strip()
        if "${" in self.redis_url:  # a quoted "${VAR}" whose variable is unset: no Redis
            self.redis_url = ""
        self.outbox = outbox  # operator messages until a socket acknowledged them (None: no hand-off here)
        self.now = now or default_services().clock.now

    def origin_allowed(self, origin: str | None, environ: dict | None = None) -> bool:
        """Engine.io calls this for every request that carries an Origin header (and to set CORS headers)."""
        return origin is not None and origin.rstrip("/").lower() in self.allowed_origins

    def get_output_channel(self) -> OutputChannel | None:
        if self.sio is None:
            return super().get_output_channel()  # warns, returns None
        return WidgetSocketIOOutput(self.sio, self.bot_message_evt, self.namespace, outbox=self.outbox, now=self.now)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        # Engine.io answers a request from a foreign origin with 400 before any socket.io event, and sends CORS
        # headers only to allowed origins, so polling works cross-origin without opening CORS to everyone.
        sio = AsyncServer(
            async_mode="sanic",
            cors_allowed_origins=self.origin_allowed,
            max_http_buffer_size=min(MAX_FRAME_BYTES, self.limits.max_body_bytes),
            json=DepthCheckedJson(self.limits.max_json_depth),
            client_manager=client_manager(self.redis_url),
        )
        socketio_webhook = SocketBlueprint(sio, self.socketio_path, "socketio_webhook", __name__)
        socketio_webhook.listener("after_server_start")(faults.on_server_start)
        self.sio = sio

        @socketio_webhook.listener("after_server_start")
        async def listen_to_shared_rooms(*_: Any) -> None:
            # python-socketio subscribes to Redis on a server's first socket connection only. A server without sockets
            # of its own (the console's rasa-admin) would then never hear the acknowledgements of the operator
            # messages it emits through the other servers: subscribe at start instead.
            if not sio.manager_initialized:
                sio.manager_initialized = True
                sio.manager.initialize()
        namespace = self.namespace

        async def reply(sid: str, text: str) -> None:
            await sio.emit(self.bot_message_evt, {"text": text}, room=sid, namespace=namespace)

        async def join_session(sid: str, session_id: str) -> None:
            session = await sio.get_session(sid, namespace=namespace)
            previous = session.get("session_id")
            if self.session_persistence:
                if previous and previous != session_id:
                    await _maybe_await(sio.leave_room(sid, previous, namespace=namespace))
                await _maybe_await(sio.enter_room(sid, session_id, namespace=namespace))
            session["session_id"] = session_id
            await sio.save_session(sid, session, namespace=namespace)

        @socketio_webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @sio.on("connect", namespace=namespace)
        async def connect(sid: str, environ: dict, auth: dict | None = None) -> bool:
            origin = environ.get("HTTP_ORIGIN")
            if origin and not self.origin_allowed(origin):
                logger.warning("Refused a socket.io connection from origin %s.", origin)
                return False
            if self.jwt_key:
                token = auth.get("token") if isinstance(auth, dict) else None
                payload = (
                    rasa.core.channels.channel.decode_bearer_token(token, self.jwt_key, self.jwt_algorithm)
                    if token
                    else None
                )
                if not payload:
                    return False
            request = environ.get("sanic.request")
            address = (request.remote_addr or request.ip) if request is not None else ""
            await sio.save_session(sid, {"address": address or ""}, namespace=namespace)
            logger.debug("User %s connected to the socket.io endpoint.", sid)
            return True

        @sio.on("disconnect", namespace=namespace)
        async def disconnect(sid: str) -> None:
            logger.debug("User %s disconnected from the socket.io endpoint.", sid)

        async def deliver_pending(sid: str, session_id: str) -> None:
            """The buyer is back: operator messages their socket never acknowledged, oldest first."""
            for message in pending_for(self.outbox, session_id, CHANNEL):
                rendered = render_widget(dict(message.message))
                if not rendered:
                    continue
                payload = {**rendered, "id": message.id}
                if await emit_acknowledged(sio, self.bot_message_evt, payload, sid, namespace, ACK_TIMEOUT_S):
                    settle(self.outbox, [message.id], self.now())

        @sio.on("session_request", namespace=namespace)
        async def session_request(sid: str, data: Any = None) -> None:
            requested = data.get("session_id") if isinstance(data, dict) else None
            session_id = requested if is_valid_session_id(requested) else uuid.uuid4().hex
            await join_session(sid, session_id)
            await sio.emit("session_confirm", session_id, room=sid, namespace=namespace)
            if is_valid_session_id(requested):
                await deliver_pending(sid, session_id)

        @sio.on(MALFORMED_EVENT, namespace=namespace)
        async def malformed(sid: str, reason: Any = None) -> None:
            logger.info("Refused a socket.io packet from %s: %s.", sid, reason)
            await reply(sid, widget_texts()["malformed"])

        @sio.on(self.user_message_evt, namespace=namespace)
        async def handle_message(sid: str, data: Any = None) -> None:
            if (
                not isinstance(data, dict)
                or not isinstance(data.get("message"), str)
                or not is_valid_unicode(data["message"])
            ):
                await reply(sid, widget_texts()["malformed"])
                return
            text = data["message"]
            if not text.strip():
                await reply(sid, widget_texts()["empty"])
                return
            if len(text) > self.max_message_chars:
                logger.info("Refused a %d-character message from %s.", len(text), sid)
                await reply(sid, widget_texts()["too_long"].format(limit=self.max_message_chars))
                return

            if self.session_persistence:
                session = await sio.get_session(sid, namespace=namespace)
                sender_id = session.get("session_id")
                if not sender_id:
                    # A client that skipped session_request (Rasa's stock channel allows this): adopt its id.
                    if not is_valid_session_id(data.get("session_id")):
                        await reply(sid, widget_texts()["no_session"])
                        return
                    sender_id = data["session_id"]
                    await join_session(sid, sender_id)
            else:
                sender_id = sid

            session = await sio.get_session(sid, namespace=namespace)
            refused = self.gate.check(sender_id, session.get("address"))
            if refused is not None:
                logger.info("Rate limit (%s) for a widget conversation: %d s.", refused.reason, refused.retry_after_s)
                await reply(sid, widget_texts()["too_many"].format(seconds=refused.retry_after_s))
                return

            metadata = data.get(self.metadata_key) or {}
            if isinstance(metadata, str):
                try:
                    metadata = json.loads(metadata)
                except ValueError:
                    metadata = {}
            if not isinstance(metadata, dict):
                metadata = {}

            try:
                await on_new_message(
                    UserMessage(
                        shortcut_policy().screen(text),
                        WidgetSocketIOOutput(sio, self.bot_message_evt, namespace),
                        sender_id,
                        input_channel=self.name(),
                        metadata=metadata,
                    )
                )
            except Exception:
                logger.exception("The bot failed on a widget message.")
                await reply(sid, widget_texts()["unavailable"])

        return socketio_webhook
