"""WeChat Official Account (公众号) channel at /webhooks/wechat/webhook, built on wechatpy.

Flow of one POST: check `signature` and the timestamp's age (403) → read the body, at most `max_body_bytes` (413) →
refuse any DTD, parse with xmltodict (entities disabled) → in safe mode (`encrypt_type=aes`) check `msg_signature` and
decrypt (403 / 400) → answer:

- text: sent to Rasa as the buyer's OpenID; a numbered answer ("1", "２", "1.") to the last menu becomes that button's
  payload; empty text gets `ask_for_text`, text over `max_text_chars` gets `too_long`, "继续" fetches the next part of a
  long answer (when there is no customer-service API);
- `subscribe` event: `/greet` is sent to Rasa, so the welcome comes from the domain; other events: no reply;
- images, voice, video, location, links, files…: `ask_for_text` (evidence is uploaded on Taobao, not to us).

The 5-second rule: every Rasa turn runs as its own task, keyed by MsgId (events: FromUserName + CreateTime + Event),
so a retry of the same message waits for the same turn and never runs it again; turns are never cancelled. A request
waits up to `reply_timeout_s` (4 s), then answers `success` and the answer is pushed through the customer-service API
when the turn ends. Without that API a request holds on for `hold_timeout_s` (> 5 s) instead, so WeChat hangs up and
retries, and the retry (same turn) delivers the answer passively: at most `max_attempts` requests, about 14 s in all.

One passive reply carries one text message. An answer that needs several messages (over 2048 bytes) is pushed, in
order, through the customer-service API; without the API the first part is the reply and "继续" fetches the next.

Hand-off to a person (docs/handoff.md): an operator's messages leave through `get_output_channel()`, i.e. the
customer-service message API, which WeChat accepts only within 48 hours of the user's last message (the console checks
that before sending). WeChat's acceptance marks the message delivered in the outbox (weiquan/stores/outbox.py);
without the API, or when WeChat refuses it, it stays stored and goes out with the answer to the buyer's next message
(pushed, or the first part of the passive reply), which marks it delivered then. With
`transfer_customer_service: true`, asking for a person answers with WeChat's own `transfer_customer_service` reply
instead: WeChat's customer-service tools take the user, and the bot does not pause.

Ratings (docs/analytics.md): a reply with a ruling or a rule answer (weiquan/analytics/feedback.py RATED_KINDS) ends
with `rating_prompt` ("回复 1 有帮助，2 没帮助") when the Rasa server has the analytics event broker, or, when the reply
ends with a numbered menu (its numbers are the menu's), with `rating_prompt_with_menu` (words or 👍/👎). The buyer's
next message, if it is 1/2 (any form; not after a menu), 👍/👎, WeChat's own thumbs or the words, is published through
that broker as a `feedback` event on the rated answer and thanked for (`rating_thanks_up` / `_down`); it is not sent
to Rasa. Any other message drops the offer and goes to Rasa as usual; "继续" (the next part of a long answer) keeps it.

State kept in this process (turns for dedupe, the last menu, pending parts and the rating offered per OpenID, recently
seen signatures) is bounded and expires. With several Rasa replicas, route each buyer to one replica — hash on the
`openid` query parameter WeChat adds to every POST — or a retry, a menu answer or a rating may land on a replica that
never saw the turn.
"""
from __future__ import annotations

import asyncio
import binascii
import hashlib
import hmac
import logging
import re
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar
from xml.parsers.expat import ExpatError

import xmltodict
from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.messages import BaseMessage
from wechatpy.replies import TextReply, TransferCustomerServiceReply
from wechatpy.utils import WeChatSigner

from weiquan.analytics.feedback import rated_message, rating_event
from weiquan.core.contracts import DELIVERY_ID
from weiquan.core.privacy import mask
from weiquan.core.texts import TextFile, load_text_file
from weiquan.edge import faults
from weiquan.edge.channels.render import (
    WECHAT_TEXT_LIMIT_BYTES,
    RenderedReply,
    WeChatTexts,
    load_texts,
    parse_menu_choice,
    render_wechat,
    utf8_size,
)
from weiquan.edge.channels.rest import WholeMessageCollector
from weiquan.edge.channels.wechat_api import CustomerServiceApi, CustomerServiceError
from weiquan.edge.limits import BodyTooLarge, Limits, RateGate, RateLimiter, read_body
from weiquan.services import Services, default_services
from weiquan.stores.outbox import OutboxSource, Pending, pending_for, settle

logger = logging.getLogger(__name__)

GREET_PAYLOAD = "/greet"
SUBSCRIBE_EVENTS = frozenset({"subscribe", "subscribe_scan"})
PLACEHOLDER_RE = re.compile(r"\$\{(\w+)\}")
DTD_RE = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
AES_KEY_LENGTH = 43
SHUTDOWN_GRACE_S = 10.0
TRANSFER_ANSWER = "\x00transfer_customer_service"  # never a text a bot turn can produce
CHANNEL = "wechat"
RATING_CHOICES = ["up", "down"]  # "1" rates up, "2" down (rating_prompt says so)
EMOJI_MODIFIERS = re.compile("[\ufe0f\U0001f3fb-\U0001f3ff]")  # 👍🏻 is 👍

K = TypeVar("K")
V = TypeVar("V")


def short_id(openid: str) -> str:
    """OpenIDs are pseudonymous but stable; logs only need enough to tell buyers apart."""
    return f"{openid[:6]}…" if len(openid) > 6 else openid


class Rejected(Exception):
    """A request we refuse; `status` is the HTTP status, `reason` a short English explanation for the log and body."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class TtlCache(Generic[K, V]):
    """A small insertion-ordered map whose entries expire after `ttl_s` and whose size is capped (oldest go first)."""

    def __init__(self, ttl_s: float, max_items: int, now: Callable[[], float]) -> None:
        self._ttl_s = ttl_s
        self._max_items = max_items
        self._now = now
        self._items: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def get(self, key: K) -> V | None:
        self._expire()
        item = self._items.get(key)
        return item[1] if item else None

    def put(self, key: K, value: V) -> None:
        self._items.pop(key, None)
        self._items[key] = (self._now() + self._ttl_s, value)
        self._expire()
        while len(self._items) > self._max_items:
            self._items.popitem(last=False)

    def pop(self, key: K) -> V | None:
        self._expire()  # an expired entry is gone, also for pop
        item = self._items.pop(key, None)
        return item[1] if item else None

    def __len__(self) -> int:
        self._expire()
        return len(self._items)

    def _expire(self) -> None:
        now = self._now()
        while self._items:
            key, (expires_at, _) = next(iter(self._items.items()))
            if expires_at > now:
                break
            del self._items[key]


class WeChatProtocol:
    """Verification, decryption and parsing of WeChat's callbacks, and sealing of replies; no web framework involved."""

    def __init__(
        self,
        token: str,
        app_id: str = "",
        aes_key: str = "",
        *,
        max_skew_s: float = 300.0,
        now: Callable[[], float] | None = None,
    ) -> None:
        if not token:
            raise ValueError("token is empty")
        self.token = token
        self.max_skew_s = max_skew_s
        self._now = now or default_services().clock.now
        self.crypto: WeChatCrypto | None = None
        if aes_key:
            if len(aes_key) != AES_KEY_LENGTH:
                raise ValueError(f"the EncodingAESKey must have {AES_KEY_LENGTH} characters, not {len(aes_key)}")
            if not app_id:
                raise ValueError("safe mode (an EncodingAESKey) needs the AppID too")
            try:
                self.crypto = WeChatCrypto(token, aes_key, app_id)
            except (binascii.Error, ValueError, AssertionError) as error:
                raise ValueError("the EncodingAESKey is not valid base64") from error

    def signature(self, *parts: str) -> str:
        signer = WeChatSigner()
        signer.add_data(self.token, *parts)
        return signer.signature

    def check_request(self, args: Mapping[str, str]) -> None:
        """Checks `signature` (sha1 of the sorted token, timestamp and nonce) and the timestamp's age; 403 if not."""
        signature, timestamp, nonce = (args.get(name, "") for name in ("signature", "timestamp", "nonce"))
        if not (signature and timestamp and nonce):
            raise Rejected(403, "missing signature, timestamp or nonce")
        if not hmac.compare_digest(self.signature(timestamp, nonce), signature.lower()):
            raise Rejected(403, "bad signature")
        try:
            sent_at = int(timestamp)
        except ValueError:
            raise Rejected(403, "bad timestamp") from None
        if abs(self._now() - sent_at) > self.max_skew_s:
            raise Rejected(403, "stale timestamp")

    def verify_url(self, args: Mapping[str, str]) -> str:
        """The server-address check (GET): returns `echostr` once the signature checks out."""
        self.check_request(args)
        echostr = args.get("echostr", "")
        if not echostr:
            raise Rejected(400, "missing echostr")
        return echostr

    def open_message(self, body: bytes, args: Mapping[str, str]) -> BaseMessage:
        """Turns a checked request body into a wechatpy message, decrypting it in safe mode."""
        outer = safe_parse_xml(body)
        if args.get("encrypt_type", "raw").lower() == "aes":
            inner = self.decrypt(outer, args)
            safe_parse_xml(inner.encode("utf-8"))
            xml = inner
        else:
            xml = body.decode("utf-8")
        try:
            message = parse_message(xml)
            # wechatpy converts fields lazily; touch them here so a garbled field is a 400, not a crash later.
            valid = isinstance(message.source, str) and bool(message.source) and isinstance(message.type, str)
            message.id, message.time  # noqa: B018
        except (KeyError, TypeError, AttributeError, ValueError, ExpatError) as error:
            raise Rejected(400, f"not a WeChat message ({type(error).__name__})") from None
        if not valid:
            raise Rejected(400, "message without FromUserName or MsgType")
        return message

    def decrypt(self, outer: Mapping[str, Any], args: Mapping[str, str]) -> str:
        if self.crypto is None:
            raise Rejected(403, "encrypted message but no EncodingAESKey configured")
        encrypt = outer.get("Encrypt")
        msg_signature = args.get("msg_signature", "")
        if not isinstance(encrypt, str) or not encrypt or not msg_signature:
            raise Rejected(403, "missing Encrypt or msg_signature")
        timestamp, nonce = args.get("timestamp", ""), args.get("nonce", "")
        if not hmac.compare_digest(self.signature(timestamp, nonce, encrypt), msg_signature.lower()):
            raise Rejected(403, "bad msg_signature")
        try:
            return self.crypto.decrypt_message({"Encrypt": encrypt}, msg_signature.lower(), timestamp, nonce)
        except InvalidSignatureException:
            raise Rejected(403, "bad msg_signature") from None
        except InvalidAppIdException:
            raise Rejected(403, "message for another AppID") from None
        except Exception as error:  # noqa: BLE001 - any garbage ciphertext is the sender's fault
            raise Rejected(400, f"cannot decrypt ({type(error).__name__})") from None

    def seal(self, reply_xml: str, args: Mapping[str, str]) -> str:
        """Encrypts a passive reply when the request was encrypted (same nonce, our own timestamp)."""
        if self.crypto is None or args.get("encrypt_type", "raw").lower() != "aes":
            return reply_xml
        return self.crypto.encrypt_message(reply_xml, args.get("nonce", ""), str(int(self._now())))


def safe_parse_xml(body: bytes) -> dict[str, Any]:
    """Parses a callback body: no DTD at all (WeChat never sends one), entities disabled, a single <xml> root."""
    if DTD_RE.search(body):
        raise Rejected(400, "XML with a DTD is not accepted")
    try:
        document = xmltodict.parse(body, disable_entities=True)
    except (ExpatError, ValueError) as error:
        raise Rejected(400, f"malformed XML ({type(error).__name__})") from None
    root = document.get("xml") if isinstance(document, dict) else None
    if not isinstance(root, dict):
        raise Rejected(400, "XML without an <xml> root")
    return root


@dataclass
class _Turn:
    """One Rasa turn shared by WeChat's attempts (retries) of the same message."""

    task: asyncio.Task[RenderedReply]
    attempts: int = 0
    pushed: bool = False  # the answer goes (or went) through the customer-service API: attempts answer "success"
    operator_ids: tuple[str, ...] = ()  # operator messages the buyer had not seen, sent first in this answer


class WeChatInput(InputChannel):
    """Rasa input channel for a WeChat Official Account; live when `token` is non-empty."""

    topic = "wechat"  # the word its files use: wechat_texts.yml, render_wechat, tests/e2e/test_wechat_*.py

    @classmethod
    def name(cls) -> str:
        return "wechat"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> WeChatInput:
        return cls.from_settings(credentials, default_services())

    @classmethod
    def from_settings(cls, credentials: Mapping[str, Any] | None, services: Services) -> WeChatInput:
        """The channel from credentials.yml's section and the process's services (environment, clock, API)."""
        credentials = credentials or {}

        def value(key: str) -> str:
            raw = credentials.get(key)
            text = "" if raw is None else str(raw).strip()
            # Rasa expands ${VAR} only in unquoted YAML scalars (and refuses to start when VAR is unset); a quoted
            # "${VAR}" arrives verbatim. Expand it here, an unset variable meaning "empty", so either form works.
            placeholder = PLACEHOLDER_RE.fullmatch(text)
            return services.env.get(placeholder.group(1), "").strip() if placeholder else text

        app_id, app_secret = value("app_id"), value("app_secret")
        api = services.customer_service_api(app_id, app_secret) if value("token") else None
        limits = Limits.from_settings(credentials, int(credentials.get("max_message_chars") or 500), services.env)
        transfer = value("transfer_customer_service").lower() in ("1", "true", "yes", "on")
        return cls(token=value("token"), app_id=app_id, aes_key=value("aes_key"), app_secret=app_secret, api=api,
                   limits=limits, transfer_customer_service=transfer, now=services.clock.now,
                   outbox=services.outbox)

    def __init__(
        self,
        token: str = "",
        app_id: str = "",
        aes_key: str = "",
        app_secret: str = "",
        *,
        api: CustomerServiceApi | None = None,
        now: Callable[[], float] | None = None,
        texts: WeChatTexts | None = None,
        reply_timeout_s: float = 4.0,
        hold_timeout_s: float = 6.0,
        max_attempts: int = 3,
        max_skew_s: float = 300.0,
        max_body_bytes: int = 64 * 1024,
        max_text_chars: int = 500,
        turn_ttl_s: float = 300.0,
        max_turns: int = 10_000,
        memory_ttl_s: float = 3600.0,
        max_memory: int = 50_000,
        limits: Limits | None = None,
        transfer_customer_service: bool = False,
        outbox: OutboxSource | None = None,
        feedback: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        # Where a buyer's rating goes: the Rasa server's event broker (found on the first request), or what a test
        # gives; None: no broker, so no rating is asked for.
        self.feedback = feedback
        self._broker_looked_up = feedback is not None
        self.rating_texts = wechat_rating_texts()
        self.transfer_customer_service = transfer_customer_service
        self.outbox = outbox  # operator messages until WeChat accepted them (None: no hand-off here)
        now = now or default_services().clock.now
        if limits is not None:
            max_body_bytes, max_text_chars = limits.max_body_bytes, limits.max_message_chars
        # Per OpenID: new messages (WeChat's retries of one message count once). Per address: forged requests only,
        # since every genuine request comes from WeChat's own servers, shared by all buyers.
        self.limits = limits or Limits(max_message_chars=max_text_chars, max_body_bytes=max_body_bytes)
        self.gate = RateGate(self.limits, now=now)
        self.forgers = RateLimiter(self.limits.rate_per_address, now=now)
        self.app_id = app_id
        self.app_secret = app_secret
        self.api = api
        self._now = now
        self.texts = texts or load_texts()
        self.reply_timeout_s = reply_timeout_s
        self.hold_timeout_s = hold_timeout_s
        self.max_attempts = max_attempts
        self.max_body_bytes = max_body_bytes
        self.max_text_chars = max_text_chars
        self._turns: TtlCache[str, _Turn] = TtlCache(turn_ttl_s, max_turns, now)
        self._menus: TtlCache[str, list[str]] = TtlCache(memory_ttl_s, max_memory, now)
        self._pending: TtlCache[str, list[str]] = TtlCache(memory_ttl_s, max_memory, now)
        self._part_replies: TtlCache[str, str] = TtlCache(turn_ttl_s, max_turns, now)
        self._signed_requests: TtlCache[str, str] = TtlCache(2 * max_skew_s, 5 * max_turns, now)
        self._rating_offers: TtlCache[str, dict[str, Any]] = TtlCache(memory_ttl_s, max_memory, now)
        self._rating_replies: TtlCache[str, str] = TtlCache(turn_ttl_s, max_turns, now)
        self._background: set[asyncio.Task[Any]] = set()
        # Leave room for the "reply 继续" line when parts are fetched one by one instead of pushed.
        reserve = 0 if api else utf8_size(self.texts.more_hint) + 2
        self.chunk_bytes = WECHAT_TEXT_LIMIT_BYTES - reserve

        self.protocol: WeChatProtocol | None = None
        self.unavailable = ""
        if not token:
            self.unavailable = "WeChat channel is off: WECHAT_TOKEN is not set."
            logger.info("wechat.off: WECHAT_TOKEN is empty; /webhooks/wechat/webhook answers 503")
            return
        try:
            self.protocol = WeChatProtocol(token, app_id, aes_key, max_skew_s=max_skew_s, now=now)
        except ValueError as error:
            self.unavailable = "WeChat channel is misconfigured; see the server log."
            logger.error("wechat.misconfigured: %s; /webhooks/wechat/webhook answers 503", error)
            return
        logger.info(
            "wechat.on: safe mode %s, customer-service API %s",
            "available" if self.protocol.crypto else "off (no WECHAT_AES_KEY)",
            "on" if api else "off (no WECHAT_APP_ID/WECHAT_APP_SECRET)",
        )

    # ---------------------------------------------------------------- HTTP

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = Blueprint(f"wechat_webhook_{id(self)}", __name__)
        webhook.listener("after_server_start")(faults.on_server_start)

        @webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok" if self.protocol else "off"})

        @webhook.route("/webhook", methods=["GET"])
        async def verify(request: Request) -> HTTPResponse:
            if self.protocol is None:
                return response.text(self.unavailable, status=503)
            try:
                return response.text(self.protocol.verify_url(_args(request)))
            except Rejected as rejected:
                return self._refuse(request, rejected)

        @webhook.route("/webhook", methods=["POST"], stream=True)
        async def receive(request: Request) -> HTTPResponse:
            if self.protocol is None:
                return response.text(self.unavailable, status=503)
            args = _args(request)
            address = request.remote_addr or request.ip or ""
            wait = self.forgers.wait_s(address)
            if wait > 0:
                logger.warning("wechat.rate_limited: forged requests from %s; refused for %.0f s", address, wait)
                return response.text("too many forged requests", status=429, headers={"Retry-After": str(round(wait))})
            try:
                self.protocol.check_request(args)
                body = await self._read_body(request)
                self._check_replay(args, body)
                message = self.protocol.open_message(body, args)
            except Rejected as rejected:
                return self._refuse(request, rejected)
            if not self._broker_looked_up:
                self._broker_looked_up = True
                self.feedback = broker_publisher(request.app)
            answer = await self.answer(message, on_new_message)
            if not answer:
                return response.text("success")
            if answer == TRANSFER_ANSWER:
                reply = TransferCustomerServiceReply(message=message, time=int(self._now())).render()
                return response.text(self.protocol.seal(reply, args), content_type="application/xml")
            reply = TextReply(message=message, content=answer, time=int(self._now())).render()
            return response.text(self.protocol.seal(reply, args), content_type="application/xml")

        @webhook.listener("before_server_stop")
        async def finish_turns(*_: Any) -> None:
            # Let running turns and their pushes finish on a graceful shutdown (never cut a turn).
            try:
                await asyncio.wait_for(self.drain(), SHUTDOWN_GRACE_S)
            except asyncio.TimeoutError:
                logger.warning("wechat.shutdown: %d turns or pushes still running", len(self._background))

        @webhook.listener("after_server_stop")
        async def close_api(*_: Any) -> None:
            if self.api is not None:
                await self.api.close()

        return webhook

    async def _read_body(self, request: Request) -> bytes:
        try:
            return await read_body(request, self.max_body_bytes)
        except BodyTooLarge:
            raise Rejected(413, "body too large") from None

    def _check_replay(self, args: Mapping[str, str], body: bytes) -> None:
        """In plaintext mode `signature` covers only token, timestamp and nonce, not the body: within the timestamp
        window, a captured query could carry a forged body. A signed query is accepted again only with the same body
        (a retry of the same message). In safe mode `msg_signature` covers the encrypted body already."""
        if args.get("encrypt_type", "raw").lower() == "aes":
            return
        key = f"{args.get('timestamp')}:{args.get('nonce')}:{args.get('signature')}"
        digest = hashlib.sha256(body).hexdigest()
        seen = self._signed_requests.get(key)
        if seen is not None and seen != digest:
            raise Rejected(403, "signature replayed with another body")
        self._signed_requests.put(key, digest)

    def _refuse(self, request: Request, rejected: Rejected) -> HTTPResponse:
        if rejected.status == 403:
            self.forgers.record(request.remote_addr or request.ip or "")
        logger.warning("wechat.rejected %s: %s (from %s)", rejected.status, rejected.reason, request.ip)
        return response.text(rejected.reason, status=rejected.status)

    # ---------------------------------------------------------------- conversation

    async def answer(
        self, message: BaseMessage, on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> str | None:
        """The passive reply for one checked message, or None for "success" (nothing to say, or pushed later)."""
        openid = str(message.source)
        if message.type == "event":
            event = str(getattr(message, "event", "")).lower()
            if event in SUBSCRIBE_EVENTS:
                key = f"event:{openid}:{message.time}:{event}"
                return await self._converse(key, openid, GREET_PAYLOAD, on_new_message, message)
            if event == "unsubscribe":
                self._menus.pop(openid)
                self._pending.pop(openid)
            return None
        if message.type != "text":
            return self.texts.ask_for_text
        content = getattr(message, "content", "")
        text = content.strip() if isinstance(content, str) else ""
        key = f"msg:{message.id}" if message.id else f"text:{openid}:{message.time}"
        thanked = self._rating_replies.get(key)  # a retry of a rating gets the same thanks, and is not a message
        if thanked is not None:
            return thanked
        if text not in self.texts.more_keywords:
            offered = self._rating_offers.pop(openid)  # only the message right after the rated answer
            rating = self._rating_of(text, numbers=offered["numbers"]) if offered is not None else None
            if offered is not None and rating is not None:
                return self._rate(key, openid, rating, offered["rated"])
        if text in self.texts.more_keywords:
            earlier = self._part_replies.get(key)  # a retry of "继续" gets the same part, not the one after
            if earlier is not None:
                return earlier
            pending = self._pending.pop(openid)
            if pending:
                part = self._passive_parts(openid, pending)
                self._part_replies.put(key, part)
                return part
        if len(text) > self.max_text_chars:
            return self.texts.too_long.format(max_chars=self.max_text_chars)
        payload = parse_menu_choice(text, self._menus.get(openid) or [])
        # Typed text never reaches Rasa as "/intent{…}": that is reserved for menu payloads (and WeChat's own emoji
        # codes such as "/::)" start with a slash too).
        to_rasa = payload or text.lstrip("/").strip()
        if not to_rasa:
            return self.texts.ask_for_text
        return await self._converse(key, openid, to_rasa, on_new_message, message)

    async def _converse(
        self,
        key: str,
        openid: str,
        text: str,
        on_new_message: Callable[[UserMessage], Awaitable[Any]],
        message: BaseMessage,
    ) -> str | None:
        turn = self._turns.get(key)
        if turn is None:
            refused = self.gate.check(openid, None)
            if refused is not None:
                logger.info("wechat.rate_limited %s for %d s", short_id(openid), refused.retry_after_s)
                return wechat_limit_texts()["too_many"].format(seconds=refused.retry_after_s)
            metadata = {"wechat": {"msg_id": str(message.id or ""), "msg_type": message.type}}
            if self.transfer_customer_service:  # tells action_request_human that WeChat's own service takes over
                metadata["wechat"]["transfer_customer_service"] = True
            waiting = self._operator_messages(openid)
            task = asyncio.create_task(self._run_turn(openid, text, metadata, on_new_message, waiting))
            self._keep(task)
            turn = _Turn(task=task, operator_ids=tuple(m.id for m in waiting))
            self._turns.put(key, turn)
        else:
            logger.info("wechat.retry %s for %s", key, short_id(openid))
        turn.attempts += 1
        if turn.pushed:
            return None
        last_chance = self.api is not None or turn.attempts >= self.max_attempts
        timeout = self.reply_timeout_s if last_chance else self.hold_timeout_s
        try:
            await asyncio.wait_for(asyncio.shield(turn.task), timeout)
        except asyncio.TimeoutError:
            self._too_slow(turn, openid, key)
            return None
        except asyncio.CancelledError:  # WeChat hung up; the turn goes on
            self._too_slow(turn, openid, key)
            raise
        except Exception:  # noqa: BLE001 - logged once in _run_turn
            return self.texts.sorry
        if turn.pushed:  # another attempt gave up waiting and handed the answer to the API meanwhile
            return None
        chunks = turn.task.result().chunks
        if len(chunks) > 1 and self.api is not None:
            self._push(turn, openid)
            return None
        self._settle(turn.operator_ids)  # they are in this passive reply (or its first part)
        if len(chunks) <= 1:
            return chunks[0] if chunks else None
        return self._passive_parts(openid, chunks)

    async def _run_turn(
        self,
        openid: str,
        text: str,
        metadata: dict[str, Any],
        on_new_message: Callable[[UserMessage], Awaitable[Any]],
        waiting: list[Pending] | None = None,
    ) -> RenderedReply:
        collector = WholeMessageCollector()
        started = time.monotonic()
        try:
            await on_new_message(
                UserMessage(text, collector, openid, input_channel=self.name(), metadata=metadata)
            )
        except Exception:
            logger.exception("wechat.turn_failed for %s", short_id(openid))
            raise
        if self.transfer_customer_service and asks_for_transfer(collector.messages):
            return RenderedReply(chunks=[TRANSFER_ANSWER], menu=[])
        # Operator messages the buyer has not seen yet come first, then this turn's answer.
        earlier = [dict(pending.message) for pending in waiting or []]
        rendered = render_wechat(earlier + collector.messages, max_bytes=self.chunk_bytes, texts=self.texts)
        if collector.messages:  # the newest answer decides what "1" means from now on
            if rendered.menu:
                self._menus.put(openid, rendered.menu)
            else:
                self._menus.pop(openid)
            self._pending.pop(openid)
            self._rating_offers.pop(openid)
            rated = rated_message(collector.messages)
            asking = (self._ask_rating(rendered) if rated is not None and rendered.chunks and self.feedback is not None
                      else None)
            if asking is not None:
                rendered = asking
                self._rating_offers.put(openid, {"rated": rated, "numbers": not rendered.menu})
        logger.debug(
            "wechat.turn %s: %.0f ms, %d parts, menu of %d",
            short_id(openid), (time.monotonic() - started) * 1000, len(rendered.chunks), len(rendered.menu),
        )
        return rendered

    # ---------------------------------------------------------------- ratings

    def _ask_rating(self, rendered: RenderedReply) -> RenderedReply | None:
        """The reply with the rating line at the end of its last part (after a numbered menu, the line that asks for
        words or thumbs, not numbers); None when that part has no room for it (a part of its own would turn a passive
        reply into pushed messages: then no rating is asked)."""
        prompt = self.rating_texts["rating_prompt_with_menu" if rendered.menu else "rating_prompt"].strip()
        joined = f"{rendered.chunks[-1]}\n\n{prompt}"
        if utf8_size(joined) > self.chunk_bytes:
            return None
        return RenderedReply(chunks=[*rendered.chunks[:-1], joined], menu=rendered.menu)

    def _rating_of(self, text: str, numbers: bool) -> str | None:
        """"up"/"down" for an answer to the rating line (1/2 in any form when `numbers`, 👍/👎, WeChat's thumbs, the
        words), else None."""
        choice = parse_menu_choice(text, RATING_CHOICES) if numbers else None
        if choice is not None:
            return choice
        word = EMOJI_MODIFIERS.sub("", unicodedata.normalize("NFKC", text)).strip()
        for rating in RATING_CHOICES:
            if word in self.rating_texts[f"rating_{rating}"]:
                return rating
        return None

    def _rate(self, key: str, openid: str, rating: str, rated: dict[str, Any]) -> str:
        """Publishes the rating (never fails the buyer's request) and returns the thanks."""
        try:
            if self.feedback is None:  # never: a rating is offered only with somewhere to put it
                raise RuntimeError("no analytics event broker")
            self.feedback(rating_event(openid, rating, rated, self._now(), CHANNEL))
        except Exception:  # noqa: BLE001 - a rating that cannot be stored is not counted; the buyer is thanked
            logger.exception("wechat.rating_not_stored for %s", short_id(openid))
        else:
            logger.info("wechat.rated %s by %s", rating, short_id(openid))
        thanks = self.rating_texts[f"rating_thanks_{rating}"].strip()
        self._rating_replies.put(key, thanks)
        return thanks

    def _too_slow(self, turn: _Turn, openid: str, key: str) -> None:
        if self.api is not None:
            self._push(turn, openid)
        elif turn.attempts >= self.max_attempts:
            logger.warning("wechat.answer_lost %s: no answer after %d attempts and no API", key, turn.attempts)
        else:
            logger.info("wechat.hold %s: attempt %d timed out; WeChat will retry", key, turn.attempts)

    def _push(self, turn: _Turn, openid: str) -> None:
        if turn.pushed:
            return
        turn.pushed = True
        self._keep(asyncio.create_task(self._deliver(turn, openid)))

    async def _deliver(self, turn: _Turn, openid: str) -> None:
        assert self.api is not None
        try:
            chunks = (await asyncio.shield(turn.task)).chunks
        except Exception:  # noqa: BLE001 - logged in _run_turn
            chunks = [self.texts.sorry]
        try:
            for chunk in chunks:
                if chunk != TRANSFER_ANSWER:  # a transfer is a passive reply only; too late for it here
                    await self.api.send_text(openid, chunk)
        except CustomerServiceError as error:
            logger.error("wechat.push_failed for %s: %s", short_id(openid), mask(str(error)))
        else:
            self._settle(turn.operator_ids)

    def _operator_messages(self, openid: str) -> list[Pending]:
        return pending_for(self.outbox, openid, CHANNEL)

    def _settle(self, delivery_ids: tuple[str, ...]) -> None:
        settle(self.outbox, delivery_ids, self._now())

    def get_output_channel(self) -> OutputChannel | None:
        """Where Rasa's API sends an operator's message: the customer-service API (None without it: the message is
        only stored, and goes out with the answer to the buyer's next message)."""
        return WeChatPushOutput(self.api, self.texts, self.outbox, self._now) if self.api is not None else None

    def _passive_parts(self, openid: str, chunks: list[str]) -> str:
        """First part now; the rest waits for "继续"."""
        if len(chunks) > 1:
            self._pending.put(openid, chunks[1:])
            return f"{chunks[0]}\n\n{self.texts.more_hint}"
        return chunks[0]

    def _keep(self, task: asyncio.Task[Any]) -> None:
        # The event loop holds tasks weakly; keep them alive until they finish.
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        task.add_done_callback(_consume_exception)

    async def drain(self) -> None:
        """Waits for running turns and pushes (tests, and a graceful shutdown)."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)


def wechat_limit_texts() -> TextFile:
    """The rate-limit sentence (wechat_texts.yml; the rest of that file is read into render.WeChatTexts)."""
    texts = load_text_file(Path(__file__).with_name("wechat_texts.yml"))
    texts["too_many"].format(seconds=1)  # a placeholder typo fails here, at start-up, not on a buyer's message
    return texts


def wechat_rating_texts() -> TextFile:
    """The rating line, the answers that rate and the thanks (wechat_texts.yml), checked at start-up."""
    texts = load_text_file(Path(__file__).with_name("wechat_texts.yml"))
    for name in ("rating_prompt", "rating_prompt_with_menu", "rating_thanks_up", "rating_thanks_down"):
        if not isinstance(texts[name], str) or not texts[name].strip():
            raise ValueError(f"wechat_texts.yml: {name} must be a non-empty string")
    for name in ("rating_up", "rating_down"):
        if not isinstance(texts[name], list) or not all(isinstance(word, str) and word for word in texts[name]):
            raise ValueError(f"wechat_texts.yml: {name} must be a list of non-empty strings")
    return texts


def broker_publisher(app: Any) -> Callable[[dict[str, Any]], None] | None:
    """The Rasa server's analytics event broker's `publish` (weiquan/analytics/broker.py: it masks what it gets and
    stores it, or sends it to RabbitMQ for the consumer), or None: without it, or with another kind of broker (which
    would not know a rating), no rating is asked for."""
    agent = getattr(getattr(app, "ctx", None), "agent", None)
    broker = getattr(getattr(agent, "tracker_store", None), "event_broker", None)
    if broker is None or not type(broker).__module__.startswith("weiquan.analytics."):
        return None
    return broker.publish


def asks_for_transfer(messages: list[dict[str, Any]]) -> bool:
    """The bot's hand-off line for WeChat's own customer service (domain.yml `utter_handoff_wechat_transfer`)."""
    return any((m.get("custom") or {}).get("kind") == "handoff_status"
               and (m.get("custom") or {}).get("state") == "transfer" for m in messages)


class WeChatPushOutput(OutputChannel):
    """An operator's (or the bot's) messages outside a webhook request, through the customer-service message API;
    WeChat's acceptance of an operator's message marks it delivered in the outbox."""

    @classmethod
    def name(cls) -> str:
        return "wechat"

    def __init__(self, api: CustomerServiceApi, texts: WeChatTexts, outbox: OutboxSource | None = None,
                 now: Callable[[], float] | None = None) -> None:
        self.api = api
        self.texts = texts
        self.outbox = outbox
        self._now = now or default_services().clock.now

    async def send_response(self, recipient_id: str, message: dict[str, Any]) -> None:
        try:
            for chunk in render_wechat([message], texts=self.texts).chunks:
                await self.api.send_text(recipient_id, chunk)
        except CustomerServiceError as error:  # e.g. 45015: the 48-hour window closed; the outbox keeps it
            logger.error("wechat.push_failed for %s: %s", short_id(recipient_id), mask(str(error)))
            return
        delivery_id = message.get(DELIVERY_ID)
        if delivery_id:
            settle(self.outbox, (str(delivery_id),), self._now())

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        await self.send_response(recipient_id, {"text": text})


def _consume_exception(task: asyncio.Task[Any]) -> None:
    # A failed turn is logged in _run_turn and answered with `sorry`; mark it retrieved so asyncio does not warn.
    if not task.cancelled():
        task.exception()


def _args(request: Request) -> dict[str, str]:
    return {name: values[0] for name, values in request.args.items() if values}
