"""The REST channel with input checks: POST /webhooks/rest/webhook {"sender": "...", "message": "..."}.

Who may call it: with `REST_TOKEN` set (production: the site's own backend holds it), only a request carrying
`Authorization: Bearer <REST_TOKEN>` (compared in constant time); any other gets a 401 before its body is read, so no
turn runs and nothing is stored. Without `REST_TOKEN` (`make run`, development) only a client on loopback is
served; anyone else gets a 403. The client address is the one the proxy forwarded when Sanic trusts it
(`SANIC_PROXIES_COUNT`), so a proxy on loopback does not open the channel to everyone behind it.

Rasa's own RestInput answers a body that is not a JSON object with a 500, a deeply nested one with a 500 too (its
`json.loads` raises RecursionError, which is no ValueError), and a body without "message" with an empty list; it reads
bodies up to Sanic's 100 MB. This one reads at most `max_body_bytes` and answers every bad request with a 4xx whose
JSON says what is wrong (`error`, English, for developers) and what to tell the buyer (`text`, from rest_texts.yml):

- 400: not JSON, invalid UTF-8, nested deeper than `max_json_depth`, not an object, `message` not a string (or not
  valid Unicode), `sender` not a short printable string;
- 413: a body over `max_body_bytes`, a message over `max_message_chars`;
- 429 (with Retry-After): more messages than `rate_per_sender` / `rate_per_address` allow (weiquan/edge/limits.py).

A typed `/intent{…}` is screened (weiquan/edge/limits.py: ShortcutPolicy). Otherwise it behaves like Rasa's (same URL,
same reply format), except that each bot message comes back as one entry.

REST cannot push: an operator's message (hand-off) is stored in the outbox (weiquan/stores/outbox.py) and comes first
in the reply to the buyer's next request, which marks it delivered.
"""
from __future__ import annotations

import hmac
import ipaddress
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from weiquan.core.texts import TextFile, load_text_file
from weiquan.edge import faults
from weiquan.edge.channels.render import render_rest
from weiquan.edge.limits import (
    BodyTooLarge,
    Limits,
    RateGate,
    is_valid_sender,
    is_valid_unicode,
    json_depth,
    read_body,
    shortcut_policy,
)
from weiquan.services import Services, default_services
from weiquan.stores.outbox import OutboxSource, pending_for, settle

logger = logging.getLogger(__name__)

MAX_MESSAGE_CHARS = 2000  # far above any real message; the widget and WeChat cap lower with a friendly reply
MAX_SENDER_CHARS = 128
TOKEN_ENV = "REST_TOKEN"
MIN_TOKEN_CHARS = 16
CHANNEL = "rest"
DEFAULT_LIMITS = Limits(max_message_chars=MAX_MESSAGE_CHARS, max_sender_chars=MAX_SENDER_CHARS)
TEXTS_PATH = Path(__file__).with_name("rest_texts.yml")


def rest_texts() -> TextFile:
    return load_text_file(TEXTS_PATH)


def bad_request(status: int, error: str, text: str = "malformed", headers: dict[str, str] | None = None,
                **details: Any) -> HTTPResponse:
    """A 4xx (or 503) JSON answer: `error` for developers, `text` (rest_texts.yml) for the buyer, and the details."""
    words = rest_texts()[text].format(**details)
    return response.json({"error": error, "text": words, **details}, status=status, headers=headers)


def check_body(body: Any, limits: Limits = DEFAULT_LIMITS) -> tuple[str, str] | HTTPResponse:
    """(sender, message) from a request body, or the 4xx answer that explains what is wrong."""
    if not isinstance(body, dict):
        return bad_request(400, "the body must be a JSON object with 'sender' and 'message'")
    sender, message = body.get("sender"), body.get("message")
    if not isinstance(message, str):
        return bad_request(400, "'message' must be a string")
    if not is_valid_unicode(message):
        return bad_request(400, "'message' is not valid Unicode")
    if not is_valid_sender(sender, limits.max_sender_chars):
        return bad_request(
            400, f"'sender' must be a non-empty printable string of at most {limits.max_sender_chars} characters"
        )
    if len(message) > limits.max_message_chars:
        return bad_request(413, "message too long", "too_long", max_chars=limits.max_message_chars)
    return sender, message


def client_address(request: Request) -> str:
    """The client's address: a proxy's forwarded address when Sanic is configured to trust it, else the peer."""
    return request.remote_addr or request.ip or ""


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def rest_token(env: Mapping[str, str]) -> str:
    """REST_TOKEN from the environment the composition root read; empty means "loopback only"."""
    token = (env.get(TOKEN_ENV) or "").strip()
    if token and len(token) < MIN_TOKEN_CHARS:
        raise ValueError(f"{TOKEN_ENV} must have at least {MIN_TOKEN_CHARS} characters")
    return token


def bearer_matches(header: str | None, token: str) -> bool:
    scheme, _, provided = (header or "").partition(" ")
    # compare_digest on bytes of any length: the time does not depend on how much of the token was right.
    return scheme.lower() == "bearer" and hmac.compare_digest(provided.strip().encode(), token.encode())


def refuse_caller(request: Request, token: str) -> HTTPResponse | None:
    """None when the caller may use the channel, else the 401/403 answer (nothing of the body is read)."""
    if token:
        if bearer_matches(request.headers.get("authorization"), token):
            return None
        logger.warning("rest.unauthorized: a request without the right REST token (from %s)", client_address(request))
        return bad_request(401, "unauthorized: send Authorization: Bearer <REST_TOKEN>", "unauthorized",
                           headers={"WWW-Authenticate": 'Bearer realm="weiquan-rest"'})
    if is_loopback(client_address(request)):
        return None
    logger.warning("rest.refused: REST_TOKEN is not set, so only loopback clients are served (from %s)",
                   client_address(request))
    return bad_request(403, "REST_TOKEN is not set: the REST channel serves loopback clients only", "unauthorized")


class WholeMessageCollector(CollectingOutputChannel):
    """Keeps each bot message whole, as Rasa hands it over (text, buttons and card together); channels render them.

    Rasa's collector splits text at blank lines and files `custom` as a separate entry without text.
    """

    async def send_response(self, recipient_id: str, message: dict[str, Any]) -> None:
        await self._persist_message({"recipient_id": recipient_id, **message})


class GuardedRestInput(RestInput):
    topic = "rest"  # the word its files use: rest_texts.yml, render_rest, tests/e2e/test_rest_*.py

    @classmethod
    def name(cls) -> str:
        return "rest"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> InputChannel:
        return cls.from_settings(credentials, default_services())

    @classmethod
    def from_settings(cls, credentials: Mapping[str, Any] | None, services: Services) -> GuardedRestInput:
        """The channel from credentials.yml's section and the process's services (the environment read once): the
        limits, REST_TOKEN, and the operator outbox."""
        return cls(Limits.from_settings(credentials, MAX_MESSAGE_CHARS, services.env), token=rest_token(services.env),
                   outbox=services.outbox, now=services.clock.now)

    def __init__(self, limits: Limits = DEFAULT_LIMITS, token: str = "",
                 outbox: OutboxSource | None = None, now: Callable[[], float] | None = None) -> None:
        self.limits = limits
        self.gate = RateGate(limits)
        self.token = token
        self.outbox = outbox  # operator messages until a reply carried them (None: no hand-off here)
        self.now = now or default_services().clock.now
        logger.info("rest.access: %s", "a Bearer token is required (REST_TOKEN)" if token
                    else "no REST_TOKEN: loopback clients only")

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        hook = Blueprint(f"custom_webhook_{type(self).__name__}", __name__)
        hook.listener("after_server_start")(faults.on_server_start)

        @hook.route("/", methods=["GET"])
        async def health(request: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @hook.route("/webhook", methods=["POST"], stream=True)
        async def receive(request: Request) -> HTTPResponse:
            refused_caller = refuse_caller(request, self.token)
            if refused_caller is not None:
                return refused_caller
            try:
                raw = await read_body(request, self.limits.max_body_bytes)
            except BodyTooLarge:
                return bad_request(413, "body too large", "too_large", max_bytes=self.limits.max_body_bytes)
            if json_depth(raw) > self.limits.max_json_depth:
                return bad_request(400, "the JSON body is nested too deeply", max_depth=self.limits.max_json_depth)
            try:
                body = json.loads(raw or b"")
            except (ValueError, UnicodeDecodeError, RecursionError):
                return bad_request(400, "the body is not valid JSON")
            checked = check_body(body, self.limits)
            if isinstance(checked, HTTPResponse):
                return checked
            sender, message = checked
            refused = self.gate.check(sender, client_address(request))
            if refused is not None:
                logger.info("rest.rate_limited by %s for %d s", refused.reason, refused.retry_after_s)
                wait = refused.retry_after_s
                return bad_request(429, f"too many messages (per {refused.reason})", "too_many",
                                   headers={"Retry-After": str(wait)}, retry_after_s=wait)
            metadata = body.get("metadata")
            collector = WholeMessageCollector()
            try:
                await on_new_message(
                    UserMessage(shortcut_policy().screen(message), collector, sender, input_channel=self.name(),
                                metadata=metadata if isinstance(metadata, dict) else None)
                )
            except Exception:
                logger.exception("rest.turn_failed")
                return bad_request(503, "the bot could not answer this message", "unavailable")
            earlier = pending_for(self.outbox, sender, CHANNEL)
            answer = response.json(
                [{"recipient_id": sender, **render_rest(message)}
                 for message in [dict(pending.message) for pending in earlier] + collector.messages]
            )
            settle(self.outbox, (pending.id for pending in earlier), self.now())
            return answer

        return hook
