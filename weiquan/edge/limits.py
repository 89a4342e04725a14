"""What every channel (REST, widget, WeChat) checks before a message reaches Rasa: sizes, JSON depth, message length,
rates per conversation and per client address, and what a typed `/intent{…}` shortcut may do.

Settings, for each channel, come from its block in credentials.yml, else the environment, else the defaults below:

| credentials key     | environment               | default        | meaning                                      |
|---------------------|---------------------------|----------------|----------------------------------------------|
| `max_body_bytes`    | `LIMIT_MAX_BODY_BYTES`    | 65536          | request body (REST, WeChat) / socket.io frame |
| `max_json_depth`    | `LIMIT_MAX_JSON_DEPTH`    | 20             | nesting of a JSON body                       |
| `rate_per_sender`   | `LIMIT_RATE_PER_SENDER`   | 20/60          | messages per conversation per 60 s           |
| `rate_per_address`  | `LIMIT_RATE_PER_ADDRESS`  | 300/60         | messages per client address per 60 s         |

plus each channel's own message-length cap (`max_message_chars`: REST 2000, widget 500, WeChat 500).

Rates are counted in the memory of each Rasa process. Behind a proxy that routes by conversation, all messages of one
conversation reach the same replica, so the per-conversation limit holds exactly; one address's conversations may be
spread over N replicas, so the per-address limit is at most N times the setting. The address is the TCP peer unless
Sanic is told to trust a proxy's forwarding header (`SANIC_PROXIES_COUNT=1` or `SANIC_REAL_IP_HEADER`).
"""
from __future__ import annotations

import json
import re
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeGuard

import yaml

from weiquan.core.vocabulary import load_vocabulary

DOMAIN_PATH = Path(__file__).resolve().parents[2] / "domain.yml"
ENV_PREFIX = "LIMIT_"


@dataclass(frozen=True)
class Rate:
    count: int
    per_s: float

    @classmethod
    def parse(cls, value: Any) -> Rate:
        """'20/60' (20 messages per 60 s) or '20' (per minute)."""
        text = str(value).strip()
        count, _, per = text.partition("/")
        try:
            rate = cls(int(count), float(per) if per else 60.0)
        except ValueError:
            raise ValueError(f"a rate looks like 20/60 (messages per seconds), not {value!r}") from None
        if rate.count < 1 or rate.per_s <= 0:
            raise ValueError(f"a rate needs at least 1 message in a positive time, not {value!r}")
        return rate


@dataclass(frozen=True)
class Limits:
    max_message_chars: int
    max_body_bytes: int = 64 * 1024
    max_json_depth: int = 20
    max_sender_chars: int = 128
    rate_per_sender: Rate = field(default_factory=lambda: Rate(20, 60.0))
    rate_per_address: Rate = field(default_factory=lambda: Rate(300, 60.0))

    @classmethod
    def from_settings(
        cls, credentials: Mapping[str, Any] | None, max_message_chars: int, environ: Mapping[str, str]
    ) -> Limits:
        credentials = credentials or {}

        def setting(key: str) -> Any:
            value = credentials.get(key)
            if value is None or str(value).strip() == "" or str(value).startswith("${"):
                value = environ.get(ENV_PREFIX + key.upper())
            return None if value is None or str(value).strip() == "" else value

        defaults = cls(max_message_chars=max_message_chars)
        chosen: dict[str, Any] = {}
        for key in ("max_message_chars", "max_body_bytes", "max_json_depth"):
            value = setting(key) if key != "max_message_chars" else credentials.get(key)
            if value is not None and value != "":
                chosen[key] = int(value)
                if chosen[key] < 1:
                    raise ValueError(f"{key} must be positive, not {value!r}")
        for key in ("rate_per_sender", "rate_per_address"):
            value = setting(key)
            if value is not None:
                chosen[key] = Rate.parse(value)
        return cls(**{**defaults.__dict__, **chosen})


# ---------------------------------------------------------------------- rates


class RateLimiter:
    """A sliding window per key (a conversation or an address), bounded in keys; refused attempts are not counted."""

    def __init__(self, rate: Rate, max_keys: int = 100_000, now: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self._max_keys = max_keys
        self._now = now
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()

    def wait_s(self, key: str) -> float:
        """0 when `key` may send now, else the seconds until it may."""
        hits = self._hits.get(key)
        if not hits:
            return 0.0
        now = self._now()
        while hits and hits[0] <= now - self.rate.per_s:
            hits.popleft()
        return 0.0 if len(hits) < self.rate.count else hits[0] + self.rate.per_s - now

    def record(self, key: str) -> None:
        hits = self._hits.setdefault(key, deque())
        hits.append(self._now())
        self._hits.move_to_end(key)
        while len(self._hits) > self._max_keys:
            self._hits.popitem(last=False)


@dataclass(frozen=True)
class Refusal:
    reason: str  # "sender" or "address"
    retry_after_s: int


class RateGate:
    """Per-conversation and per-address limits together: a message counts against both, or against neither."""

    def __init__(self, limits: Limits, now: Callable[[], float] = time.monotonic) -> None:
        self.senders = RateLimiter(limits.rate_per_sender, now=now)
        self.addresses = RateLimiter(limits.rate_per_address, now=now)

    def check(self, sender: str, address: str | None) -> Refusal | None:
        waits = [("sender", self.senders.wait_s(sender))]
        if address:
            waits.append(("address", self.addresses.wait_s(address)))
        reason, wait = max(waits, key=lambda item: item[1])
        if wait > 0:
            return Refusal(reason, max(1, round(wait + 0.5)))
        self.senders.record(sender)
        if address:
            self.addresses.record(address)
        return None


# ---------------------------------------------------------------------- JSON and text

_JSON_STRING = re.compile(r'"(?:\\.|[^"\\])*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def json_depth(raw: str | bytes) -> int:
    """How deeply a JSON text nests arrays and objects, without parsing it (json.loads recurses: a deep body would
    raise RecursionError, which is not a ValueError)."""
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    depth = deepest = 0
    for bracket in _BRACKET.finditer(_JSON_STRING.sub('""', text)):
        if bracket.group() in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def is_valid_unicode(text: str) -> bool:
    """False for strings that cannot be written as UTF-8 (lone surrogates from JSON escapes like "\\ud800")."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def is_valid_sender(sender: Any, max_chars: int) -> TypeGuard[str]:
    """A conversation id: a non-blank string, at most `max_chars`, no control characters, valid Unicode."""
    return (
        isinstance(sender, str)
        and bool(sender.strip())
        and len(sender) <= max_chars
        and not _CONTROL.search(sender)
        and is_valid_unicode(sender)
    )


# ---------------------------------------------------------------------- typed shortcuts

_SHORTCUT = re.compile(r"/(?P<intent>[A-Za-z_][A-Za-z0-9_]*)(?P<entities>\{.*\})?", re.DOTALL)
MAX_ENTITY_VALUE_CHARS = 200
USER_DEFAULT_INTENTS = frozenset({"restart"})  # Rasa's own intents a user may send: start over (docs/handoff.md)


@dataclass(frozen=True)
class ShortcutPolicy:
    """What a message written as `/intent{"entity": "value"}` may do.

    The widget's buttons send such payloads (`/inform{"platform": "taobao"}`, `/request_human`), and so do the buttons
    of the clarifying question, which carry the entities already understood. A buyer can type the same text, so a
    shortcut is taken as one only when a button could have sent it, or it is `/restart` (the buyer starts their own
    conversation over; the store keeps what was said): an intent of our domain (not Rasa's `session_start`, `back`,
    nor `nlu_fallback`), no confidence (`@0.9`), entities of our domain whose values are
    short strings (lists of them), within the slot's values where the slot is categorical (`platform: jd` is not).
    Anything else starting with "/" is read as ordinary text with the slashes taken off: the NLU reads it, the buyer
    gets an answer, and the text is kept like any other.
    """

    intents: frozenset[str]
    entities: frozenset[str]
    values: Mapping[str, frozenset[str]]

    @classmethod
    def from_domain(cls, path: Path = DOMAIN_PATH) -> ShortcutPolicy:
        domain = yaml.safe_load(path.read_text(encoding="utf-8"))

        def names(items: list[Any] | None) -> frozenset[str]:  # entries are names or {name: {options}}
            return frozenset(next(iter(item)) if isinstance(item, dict) else str(item) for item in items or [])

        vocabulary = load_vocabulary()
        values: dict[str, frozenset[str]] = {
            "harassment_type": frozenset(vocabulary.codes("harassment_type")),
            "evidence": frozenset(vocabulary.codes("evidence") + vocabulary.codes("evidence_answers")),
        }
        for slot, spec in (domain.get("slots") or {}).items():
            if (spec or {}).get("type") == "categorical":
                values[slot] = frozenset(str(value) for value in spec.get("values") or [])
        return cls(intents=names(domain.get("intents")) | USER_DEFAULT_INTENTS, entities=names(domain.get("entities")),
                   values=values)

    def allows(self, text: str) -> bool:
        match = _SHORTCUT.fullmatch(text.strip())
        if match is None or match.group("intent") not in self.intents:
            return False
        if match.group("entities") is None:
            return True
        try:
            entities = json.loads(match.group("entities"))
        except (ValueError, RecursionError):
            return False
        return isinstance(entities, dict) and all(self._entity_ok(name, value) for name, value in entities.items())

    def _entity_ok(self, name: str, value: Any) -> bool:
        if name not in self.entities:
            return False
        items = value if isinstance(value, list) else [value]
        if not items or not all(isinstance(item, str) and 0 < len(item) <= MAX_ENTITY_VALUE_CHARS for item in items):
            return False
        allowed = self.values.get(name)
        return allowed is None or set(items) <= allowed

    def screen(self, text: str) -> str:
        """The text as Rasa should see it: an allowed shortcut as is, any other leading "/" removed."""
        stripped = text.strip()
        if not stripped.startswith("/") or self.allows(stripped):
            return text
        return stripped.lstrip("/").strip() or stripped


@lru_cache(maxsize=1)
def shortcut_policy() -> ShortcutPolicy:
    return ShortcutPolicy.from_domain()


# ---------------------------------------------------------------------- bodies


class BodyTooLarge(Exception):
    """A request body over the channel's `max_body_bytes`."""


async def read_body(request: Any, max_bytes: int) -> bytes:
    """A Sanic request's body, read as it streams in and refused as soon as it passes `max_bytes` (REST, WeChat)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise BodyTooLarge
    if request.stream is None:  # Sanic read the body already (not a streamed route)
        whole = bytes(request.body or b"")
        if len(whole) > max_bytes:
            raise BodyTooLarge
        return whole
    body = bytearray()
    while True:
        chunk = await request.stream.read()
        if chunk is None:
            return bytes(body)
        body += chunk
        if len(body) > max_bytes:
            raise BodyTooLarge
