
"""Per-channel rendering of the bot's messages: every difference between channels lives here.

Input is one bot message as Rasa hands it to an output channel: `text` (plain, URLs as written), optional `buttons` /
`quick_replies` ([{"title", "payload"}] or [{"title", "url"}]), optional `custom` — a card built by
actions/presenter.py (filing steps, phone script, evidence checklist; its data is not in `text`) — and optional
`image` / `attachment`.

- Web widget: `render_widget` keeps text, quick replies and the card together in one payload; the widget draws the
  card from its data and never parses text.
- REST (and `rasa shell`): `render_rest` gives one entry per message, the card written out as text after `text`
  (`card_text`, formats in cards.yml) and kept as data in `custom`.
- WeChat: `render_wechat` turns everything into plain text. Cards are written out as for REST, buttons become a
  numbered menu (the buyer answers `1`, `２`, `1.` …; `parse_menu_choice` maps the answer back to the payload), Markdown
  links become "title：URL", and the text is split into chunks of at most `WECHAT_TEXT_LIMIT_BYTES` UTF-8 bytes, at
  paragraph, then line, then sentence boundaries, never inside a URL.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from weiquan.core.texts import load_text_file

# WeChat's limit for one text message (passive reply or customer-service message): 2048 bytes of UTF-8.
WECHAT_TEXT_LIMIT_BYTES = 2048
TEXTS_PATH = Path(__file__).with_name("wechat_texts.yml")
CARDS_PATH = Path(__file__).with_name("cards.yml")

# RFC 3986 characters only, so a URL ends where Chinese text or full-width punctuation starts.
URL_RE = re.compile(r"https?://[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")
MARKDOWN_LINK_RE = re.compile(r"\[([^\]\n]+)\]\((https?://[^)\s]+)\)")
# A sentence piece ends after Chinese or Western sentence punctuation or whitespace.
SENTENCE_RE = re.compile(r"[^。！？；!?;，,\s]*(?:[。！？；!?;，,]+\s*|\s+)|[^。！？；!?;，,\s]+")
MENU_CHOICE_RE = re.compile(r"[(\[【〔]?\s*(\d{1,3})\s*[)\]】〕]?\s*[.。、,，:：]?")


@dataclass(frozen=True)
class WeChatTexts:
    """The channel's own sentences (wechat_texts.yml)."""

    ask_for_text: str
    too_long: str
    sorry: str
    menu_item: str
    menu_hint: str
    link_item: str
    more_hint: str
    more_keywords: tuple[str, ...]


@cache
def load_texts(path: Path = TEXTS_PATH) -> WeChatTexts:
    """Loads and checks the channel's texts once: a broken file fails at start-up and in tests, not mid-conversation."""
    data = load_text_file(path)
    values: dict[str, Any] = {}
    for name in WeChatTexts.__dataclass_fields__:
        value = data.get(name)
        if name == "more_keywords":
            if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
                raise ValueError(f"{path}: {name} must be a non-empty list of strings")
            values[name] = tuple(value)
        elif not isinstance(value, str) or not value.strip():
            raise ValueError(f"{path}: {name} must be a non-empty string")
        else:
            values[name] = value.strip()
    texts = WeChatTexts(**values)
    # Fail early on a placeholder typo rather than on a buyer's message.
    texts.menu_item.format(number=1, title="")
    texts.link_item.format(title="", url="")
    texts.too_long.format(max_chars=1)
    return texts


@dataclass(frozen=True)
class RenderedReply:
    """One bot turn as WeChat text: `chunks` are separate messages, `menu` the button payloads in numbered order."""

    chunks: list[str]
    menu: list[str]


@cache
def card_formats(path: Path = CARDS_PATH) -> dict[str, str]:
    """How cards are written as plain text (cards.yml), checked once so a placeholder typo fails at start-up."""
    formats = {key: str(value) for key, value in load_text_file(path).items()}
    formats["path"].format(number=1, title="", url="")
    formats["step"].format(number=1, text="")
    formats["script_line"].format(name="", text="")
    formats["evidence_item"].format(number=1, mark="", label="", link="")
    formats["evidence_link"].format(url="")
    return formats


def _records(value: Any) -> list[Mapping[str, Any]]:
    """The mappings of a card's list field; anything malformed is skipped rather than failing the turn."""
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def card_text(card: Any) -> str:
    """A card's data written out as plain lines; "" for no card or a kind this version does not know."""
    if not isinstance(card, Mapping):
        return ""
    formats = card_formats()
    lines: list[str] = []
    kind = card.get("kind")
    if kind == "filing_steps":
        for number, path in enumerate(_records(card.get("paths")), start=1):
            lines.append(formats["path"].format(number=number, title=path.get("title", ""), url=path.get("url", "")))
            steps = path.get("steps")
            lines += [formats["step"].format(number=step_no, text=step)
                      for step_no, step in enumerate(steps if isinstance(steps, list) else [], start=1)]
    elif kind == "phone_script":
        lines += [formats["script_line"].format(name=line.get("name", ""), text=line.get("text", ""))
                  for line in _records(card.get("lines"))]
    elif kind == "evidence":
        for number, item in enumerate(_records(card.get("items")), start=1):
            link = formats["evidence_link"].format(url=item["url"]) if item.get("url") else ""
            mark = formats["have_mark"] if item.get("have") else ""
            lines.append(formats["evidence_item"].format(number=number, mark=mark, label=item.get("label", ""),
                                                         link=link))
    return "\n".join(lines)


def plain_text(message: Mapping[str, Any]) -> str:
    """The message's text followed by its card written out: what a text-only channel shows."""
    text = message.get("text") if isinstance(message.get("text"), str) else ""
    return "\n".join(part for part in (text, card_text(message.get("custom"))) if part)


def message_buttons(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [dict(button) for button in _buttons(message)]


def render_rest(message: Mapping[str, Any]) -> dict[str, Any]:
    """One REST reply entry: the text with its card written out, the buttons, and the card as data."""
    entry: dict[str, Any] = {}
    text = plain_text(message)
    if text:
        entry["text"] = text
    for key in ("image", "attachment", "custom"):
        if message.get(key):
            entry[key] = message[key]
    buttons = message_buttons(message)
    if buttons:
        entry["buttons"] = buttons
    return entry


def render_widget(message: Mapping[str, Any]) -> dict[str, Any] | None:
    """One bot message as the widget receives it: text, quick replies and the card kept together."""
    payload: dict[str, Any] = {}
    if message.get("text"):
        payload["text"] = message["text"]
    buttons = message_buttons(message)
    if buttons:
        payload["quick_replies"] = [
            {"content_type": "text", "title": button.get("title", ""), "payload": button.get("payload", "")}
            for button in buttons
        ]
    if message.get("custom"):
        payload["custom"] = message["custom"]
    if message.get("image"):
        payload["attachment"] = {"type": "image", "payload": {"src": message["image"]}}
    elif message.get("attachment"):
        payload["attachment"] = message["attachment"]
    elif message.get("elements"):
        payload["attachment"] = {
            "type": "template",
            "payload": {"template_type": "generic", "elements": message["elements"]},
        }
    return payload or None


def render_wechat(
    messages: Sequence[Mapping[str, Any]],
    max_bytes: int = WECHAT_TEXT_LIMIT_BYTES,
    texts: WeChatTexts | None = None,
) -> RenderedReply:
    """Renders one turn for WeChat: plain text chunks of at most `max_bytes` UTF-8 bytes and the numbered menu."""
    texts = texts or load_texts()
    paragraphs: list[str] = []
    menu: list[str] = []
    last_menu_paragraph = -1
    for message in messages:
        text = _plain_text(plain_text(message), texts)
        lines: list[str] = []
        menu_before = len(menu)
        for button in _buttons(message):
            title = str(button.get("title") or "").strip()
            payload = button.get("payload")
            url = button.get("url") or (payload if isinstance(payload, str) and URL_RE.fullmatch(payload) else None)
            if url:
                lines.append(texts.link_item.format(title=title or url, url=url) if title else str(url))
            elif isinstance(payload, str) and payload.strip():
                menu.append(payload.strip())
                lines.append(texts.menu_item.format(number=len(menu), title=title or payload.strip()))
        if lines:
            # The question and its options stay in one paragraph so a split never separates them.
            paragraphs.append("\n".join([text, *lines]) if text else "\n".join(lines))
            if len(menu) > menu_before:
                last_menu_paragraph = len(paragraphs) - 1
        elif text:
            paragraphs.append(text)
        for media in _media_urls(message):
            paragraphs.append(media)
    if menu and last_menu_paragraph >= 0:
        paragraphs[last_menu_paragraph] += "\n" + texts.menu_hint
    return RenderedReply(chunks=split_text("\n\n".join(paragraphs), max_bytes), menu=menu)


def parse_menu_choice(text: str, menu: Sequence[str]) -> str | None:
    """Maps a numbered answer ("1", "２", "1.", "（2）", "【2】", "①") to its payload; other text is not a choice."""
    if not menu or not text:
        return None
    match = MENU_CHOICE_RE.fullmatch(unicodedata.normalize("NFKC", text).strip())
    if not match:
        return None
    number = int(match.group(1))
    return menu[number - 1] if 1 <= number <= len(menu) else None


def utf8_size(text: str) -> int:
    return len(text.encode("utf-8"))


def split_text(text: str, max_bytes: int = WECHAT_TEXT_LIMIT_BYTES) -> list[str]:
    """Splits text into chunks of at most `max_bytes` UTF-8 bytes, packing as much as fits into each chunk.

    Prefers blank lines, then line breaks, then sentence ends; a URL is never cut unless it alone exceeds the limit.
    """
    if max_bytes < 16:
        raise ValueError("max_bytes is too small to hold any text")
    text = text.strip()
    if not text:
        return []
    return [chunk for chunk in (c.strip() for c in _split(text, max_bytes, 0)) if chunk]


_SEPARATORS = ("\n\n", "\n")


def _split(text: str, max_bytes: int, level: int) -> list[str]:
    if utf8_size(text) <= max_bytes:
        return [text]
    if level < len(_SEPARATORS):
        separator = _SEPARATORS[level]
        parts = [part for part in text.split(separator) if part.strip()]
        if len(parts) <= 1:
            return _split(text, max_bytes, level + 1)
        pieces: list[str] = []
        for part in parts:
            pieces.extend(_split(part, max_bytes, level + 1))
        return _pack(pieces, separator, max_bytes)
    return _pack(list(_atoms(text, max_bytes)), "", max_bytes)


def _pack(pieces: Iterable[str], separator: str, max_bytes: int) -> list[str]:
    chunks: list[str] = []
    current = ""
    for piece in pieces:
        candidate = f"{current}{separator}{piece}" if current else piece
        if utf8_size(candidate) <= max_bytes:
            current = candidate
        else:
            if current:
                chunks.append(current)
            current = piece
    if current:
        chunks.append(current)
    return chunks


def _atoms(line: str, max_bytes: int) -> Iterable[str]:
    """Unbreakable pieces of one long line: whole URLs, and sentence pieces of the text between them."""
    position = 0
    for match in URL_RE.finditer(line):
        yield from _sentences(line[position : match.start()], max_bytes)
        yield from _hard_cut(match.group(0), max_bytes)  # only a URL longer than a whole message is cut
        position = match.end()
    yield from _sentences(line[position:], max_bytes)


def _sentences(text: str, max_bytes: int) -> Iterable[str]:
    for piece in SENTENCE_RE.findall(text):
        yield from _hard_cut(piece, max_bytes)


def _hard_cut(text: str, max_bytes: int) -> Iterable[str]:
    """Cuts at character (never byte) boundaries; the last resort for a run of text without any break."""
    current = ""
    for char in text:
        if utf8_size(current + char) > max_bytes:
            yield current
            current = char
        else:
            current += char
    if current:
        yield current


def _plain_text(value: Any, texts: WeChatTexts) -> str:
    if not isinstance(value, str):
        return ""
    text = MARKDOWN_LINK_RE.sub(lambda m: texts.link_item.format(title=m.group(1), url=m.group(2)), value)
    # Passive replies wrap the text in CDATA; a literal "]]>" would end it early.
    return text.replace("]]>", "]] >").strip()


def _buttons(message: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    buttons = message.get("buttons") or message.get("quick_replies") or []
    return [button for button in buttons if isinstance(button, Mapping)]


def _media_urls(message: Mapping[str, Any]) -> Iterable[str]:
    for key in ("image", "attachment"):
        value = message.get(key)
        if isinstance(value, Mapping):  # e.g. {"type": "image", "payload": {"src": "https://…"}}
            payload = value.get("payload")
            value = (payload.get("src") or payload.get("url")) if isinstance(payload, Mapping) else value.get("url")
        if isinstance(value, str) and value.strip():
            yield value.strip()

