"""Text normalisation for Chinese buyer messages, with a map back to what the user typed.

Pure Python (no Rasa import, so it is cheap to import and test). The Rasa components in normalizer.py run it first
in the NLU pipeline, for training data and live messages alike, so the model only ever sees normalised text.

Steps, in order (each keeps, for every output character, the span of original characters it came from):
1. drop invisible characters (zero-width, bidi marks, BOM, variation selectors, skin tones, control characters),
   fold compatibility forms (full-width ASCII, circled digits, ideographic space …) the NFKC way but keep the
   Chinese sentence punctuation ，！？：；（）～ and …, lower-case ASCII letters, turn any whitespace into a space;
2. traditional → simplified (OpenCC `t2s`);
3. shorthand and typos from shorthand.yml (ASCII abbreviations only as whole ASCII words: "html" stays "html");
4. ASCII , ! ? ; : ( ) ~ next to Chinese text or emoji become their Chinese forms;
5. whitespace: none at the ends; between two Chinese characters a space is a pause and becomes "，"; none next to
   emoji or ！？。…; elsewhere one space;
6. runs of expressive punctuation or emoji keep each distinct character once ("！！！！" → "！", "😡😡🔪" → "😡🔪").
"""
from __future__ import annotations

import bisect
import functools
import hashlib
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

SHORTHAND_FILE = Path(__file__).with_name("shorthand.yml")
INTENT_PREFIX = "/"  # "/intent{...}" payloads from buttons pass through untouched

# Kept full-width: the punctuation Chinese text is written with.
CHINESE_PUNCT = "，！？：；（）～"
ASCII_TO_CHINESE_PUNCT = dict(zip(",!?:;()~", CHINESE_PUNCT, strict=True))
KEEP_AS_IS = set(CHINESE_PUNCT) | {"…", "‥", "、", "。", "·"}
# Punctuation whose repetition only adds emphasis.
EXPRESSIVE_PUNCT = set("!?.,~！？，。、～…·—")
SKIN_TONES = range(0x1F3FB, 0x1F400)
ASCII_WORD = re.compile(r"[a-z0-9]+")

Span = tuple[int, int]


@dataclass(frozen=True)
class Normalized:
    """Normalised `text` of `original`; character i of `text` came from original[starts[i]:ends[i]]."""

    original: str
    text: str
    starts: tuple[int, ...]
    ends: tuple[int, ...]

    @property
    def changed(self) -> bool:
        return self.text != self.original

    def to_original(self, start: int, end: int) -> Span:
        """Maps a span of `text` to the span of `original` it came from."""
        if not 0 <= start <= end <= len(self.text):
            raise ValueError(f"span {start}:{end} outside normalised text of length {len(self.text)}")
        if start == end:
            pos = self.starts[start] if start < len(self.text) else len(self.original)
            return pos, pos
        return self.starts[start], self.ends[end - 1]

    def to_normalized(self, start: int, end: int) -> Span | None:
        """Maps a span of `original` to the smallest span of `text` covering it; None if it was all dropped."""
        if not 0 <= start < end <= len(self.original):
            return None
        first = bisect.bisect_right(self.ends, start)  # first output char ending after `start`
        last = bisect.bisect_left(self.starts, end) - 1  # last output char starting before `end`
        if first > last:
            return None
        return first, last + 1

    def original_value(self, start: int, end: int) -> str:
        """What the user typed for the normalised span, minus invisible characters and outer spaces."""
        o_start, o_end = self.to_original(start, end)
        return "".join(ch for ch in self.original[o_start:o_end] if not _is_invisible(ch)).strip()


@dataclass(frozen=True)
class ShorthandTable:
    """ASCII abbreviations (whole ASCII words only) and Chinese typos (anywhere), each mapped to a replacement."""

    abbreviations: Mapping[str, str]
    typos: Mapping[str, str]
    fingerprint: str = ""

    @functools.cached_property
    def pattern(self) -> re.Pattern[str] | None:
        keys = [(key, True) for key in self.abbreviations] + [(key, False) for key in self.typos]
        if not keys:
            return None
        keys.sort(key=lambda item: -len(item[0]))  # longest first: "rgkf" before "kf"
        parts = [
            rf"(?<![a-z0-9]){re.escape(key)}(?![a-z0-9])" if bounded else re.escape(key) for key, bounded in keys
        ]
        return re.compile("|".join(parts))

    def replacement(self, key: str) -> str:
        return self.abbreviations.get(key) or self.typos[key]


def load_shorthand(path: Path = SHORTHAND_FILE) -> ShorthandTable:
    """Loads and validates the shorthand table; a broken file raises ValueError."""
    raw = path.read_bytes()
    data = yaml.safe_load(raw) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    unknown = set(data) - {"version", "abbreviations", "typos"}
    if unknown:
        raise ValueError(f"{path}: unknown sections {sorted(unknown)}")
    abbreviations = _validated(path, "abbreviations", data.get("abbreviations") or {})
    typos = _validated(path, "typos", data.get("typos") or {})
    for key in abbreviations:
        if not ASCII_WORD.fullmatch(key):
            raise ValueError(f"{path}: abbreviation {key!r} must be lower-case ASCII letters/digits")
    for key in typos:
        if ASCII_WORD.search(key):
            raise ValueError(f"{path}: typo {key!r} contains ASCII; put abbreviations under `abbreviations`")
    clash = set(abbreviations) & set(typos)
    if clash:
        raise ValueError(f"{path}: keys in both sections: {sorted(clash)}")
    return ShorthandTable(abbreviations, typos, hashlib.sha256(raw).hexdigest())


def _validated(path: Path, section: str, table: object) -> dict[str, str]:
    if not isinstance(table, dict):
        raise ValueError(f"{path}: `{section}` must be a mapping")
    result: dict[str, str] = {}
    for key, value in table.items():
        if not isinstance(key, str) or not isinstance(value, str) or not key.strip() or not value.strip():
            raise ValueError(f"{path}: `{section}` entry {key!r}: {value!r} must map text to text")
        if key != key.strip() or value != value.strip():
            raise ValueError(f"{path}: `{section}` entry {key!r} has surrounding spaces")
        if key == value:
            raise ValueError(f"{path}: `{section}` entry {key!r} maps to itself")
        result[key] = value
    return result


@functools.lru_cache(maxsize=1)
def default_shorthand() -> ShorthandTable:
    return load_shorthand(SHORTHAND_FILE)


@functools.lru_cache(maxsize=4)
def _opencc(config: str) -> Callable[[str], str]:
    import opencc  # imported lazily: the C library loads its dictionaries on first use

    return opencc.OpenCC(config).convert


def normalize(text: str, shorthand: ShorthandTable | None = None, opencc_config: str | None = "t2s") -> Normalized:
    """Normalises `text` (see the module docstring); `shorthand` defaults to shorthand.yml, None config skips OpenCC."""
    table = default_shorthand() if shorthand is None else shorthand
    if not text or text.startswith(INTENT_PREFIX):
        return _identity(text)
    chars, spans = _fold_characters(text)
    if opencc_config:
        chars, spans = _convert_script(chars, spans, _opencc(opencc_config))
    chars, spans = _replace_shorthand(chars, spans, table)
    chars = _chinese_punctuation(chars)
    chars, spans = _squeeze_whitespace(chars, spans, text)
    chars, spans = _squeeze_runs(chars, spans)
    return Normalized(text, "".join(chars), tuple(s for s, _ in spans), tuple(e for _, e in spans))


def normalize_text(text: str) -> str:
    """Just the normalised string, with the default table (e.g. for a parser reading entity values)."""
    return normalize(text).text


def _identity(text: str) -> Normalized:
    return Normalized(text, text, tuple(range(len(text))), tuple(range(1, len(text) + 1)))


# ---------------------------------------------------------------- character classes
def _is_invisible(ch: str) -> bool:
    cp = ord(ch)
    if ch in "\t\n\r\v\f":
        return False  # whitespace, handled as a space
    if 0xFE00 <= cp <= 0xFE0F or 0xE0100 <= cp <= 0xE01EF or cp in SKIN_TONES:
        return True  # variation selectors and skin tones only decorate the emoji before them
    return unicodedata.category(ch) in ("Cc", "Cf", "Co", "Cs") and not ch.isspace()


def _is_ideograph(ch: str) -> bool:
    cp = ord(ch)
    return 0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x3134F or 0xF900 <= cp <= 0xFAFF


def _is_cjk(ch: str) -> bool:
    cp = ord(ch)
    return (
        _is_ideograph(ch)
        or 0x3000 <= cp <= 0x303F  # CJK punctuation
        or 0xFF00 <= cp <= 0xFFEF  # full-width forms (only the kept Chinese punctuation is left by now)
        or ch in "…‥·—"
    )


def _is_emoji(ch: str) -> bool:
    cp = ord(ch)
    # Python 3.10's Unicode data predates some emoji: the pictograph planes count whatever their category.
    return 0x1F000 <= cp <= 0x1FAFF or unicodedata.category(ch) == "So"


def _is_tight(ch: str) -> bool:
    return _is_cjk(ch) or _is_emoji(ch)


# ---------------------------------------------------------------- steps
def _fold_characters(text: str) -> tuple[list[str], list[Span]]:
    chars: list[str] = []
    spans: list[Span] = []
    for i, ch in enumerate(text):
        if _is_invisible(ch):
            continue
        if ch.isspace():
            folded = " "
        elif ch in KEEP_AS_IS or ch.isascii():
            folded = ch
        else:
            folded = unicodedata.normalize("NFKC", ch)
            if any(_is_invisible(c) for c in folded):
                folded = "".join(c for c in folded if not _is_invisible(c))
        for out in folded:
            if "A" <= out <= "Z":
                out = out.lower()
            elif out.isspace():
                out = " "
            chars.append(out)
            spans.append((i, i + 1))
    return chars, spans


def _convert_script(chars: list[str], spans: list[Span], convert: Callable[[str], str]) -> tuple[list[str], list[Span]]:
    joined = "".join(chars)
    converted = convert(joined)
    if converted == joined:
        return chars, spans
    if len(converted) == len(joined):
        return list(converted), spans
    # A phrase changed length: convert character by character so the map stays exact.
    out_chars: list[str] = []
    out_spans: list[Span] = []
    for ch, span in zip(chars, spans, strict=True):
        for out in convert(ch):
            out_chars.append(out)
            out_spans.append(span)
    return out_chars, out_spans


def _replace_shorthand(chars: list[str], spans: list[Span], table: ShorthandTable) -> tuple[list[str], list[Span]]:
    pattern = table.pattern
    if pattern is None:
        return chars, spans
    joined = "".join(chars)
    out_chars: list[str] = []
    out_spans: list[Span] = []
    done = 0
    for match in pattern.finditer(joined):
        start, end = match.span()
        out_chars.extend(chars[done:start])
        out_spans.extend(spans[done:start])
        whole = (spans[start][0], spans[end - 1][1])
        for out in table.replacement(match.group()):
            out_chars.append(out)
            out_spans.append(whole)
        done = end
    if done == 0:
        return chars, spans
    out_chars.extend(chars[done:])
    out_spans.extend(spans[done:])
    return out_chars, out_spans


def _chinese_punctuation(chars: list[str]) -> list[str]:
    # A cluster of punctuation and spaces ("?!", " ...? ") follows the Chinese text or emoji it touches or holds,
    # as a whole, so squeezing it later cannot change the decision; "12:30" and "http://" touch none and stay ASCII.
    out = list(chars)
    n = len(chars)
    i = 0
    while i < n:
        if not _in_punct_cluster(chars[i]):
            i += 1
            continue
        j = i
        while j < n and _in_punct_cluster(chars[j]):
            j += 1
        touches = (i > 0 and _is_tight(chars[i - 1])) or (j < n and _is_tight(chars[j]))
        if touches or any(_is_tight(ch) for ch in chars[i:j]):
            for k in range(i, j):
                out[k] = ASCII_TO_CHINESE_PUNCT.get(chars[k], chars[k])
        i = j
    return out


def _in_punct_cluster(ch: str) -> bool:
    return ch == " " or ch in ASCII_TO_CHINESE_PUNCT or ch in EXPRESSIVE_PUNCT


def _squeeze_whitespace(chars: list[str], spans: list[Span], typed: str) -> tuple[list[str], list[Span]]:
    out_chars: list[str] = []
    out_spans: list[Span] = []
    n = len(chars)
    i = 0
    while i < n:
        if chars[i] != " ":
            out_chars.append(chars[i])
            out_spans.append(spans[i])
            i += 1
            continue
        j = i
        while j < n and chars[j] == " ":
            j += 1
        whole = (spans[i][0], spans[j - 1][1])
        if i == 0 or j == n:
            pass  # no space at either end
        elif _is_ideograph(typed[spans[i - 1][1] - 1]) and _is_ideograph(typed[spans[j][0]]):
            # Between Chinese words the user typed a space as a pause, instead of a comma: "投诉我骚扰 我是冤枉的".
            # ("tb 卖家" is not a pause: its space only set off the Latin letters.)
            out_chars.append("，")
            out_spans.append(whole)
        elif not (_hugs(chars[i - 1]) and _hugs(chars[j])):
            out_chars.append(" ")
            out_spans.append(whole)
        i = j
    return out_chars, out_spans


def _hugs(ch: str) -> bool:
    """Chinese text, emoji and expressive punctuation need no space between them."""
    return _is_tight(ch) or ch in EXPRESSIVE_PUNCT


def _squeeze_runs(chars: list[str], spans: list[Span]) -> tuple[list[str], list[Span]]:
    out_chars: list[str] = []
    out_spans: list[Span] = []
    n = len(chars)
    i = 0
    while i < n:
        kind = _run_kind(chars[i])
        if kind is None:
            out_chars.append(chars[i])
            out_spans.append(spans[i])
            i += 1
            continue
        j = i
        while j < n and _run_kind(chars[j]) == kind:
            j += 1
        # Each distinct character of the run once, in order; each keeps the span of its whole stretch of the run.
        seen: dict[str, int] = {}
        for k in range(i, j):
            if chars[k] not in seen:
                seen[chars[k]] = len(out_chars)
                out_chars.append(chars[k])
                out_spans.append(spans[k])
        whole = (spans[i][0], spans[j - 1][1])
        first = seen[chars[i]]
        last = len(out_chars) - 1
        out_spans[first] = (whole[0], out_spans[first][1])
        out_spans[last] = (out_spans[last][0], whole[1])
        i = j
    return out_chars, out_spans


def _run_kind(ch: str) -> str | None:
    if ch in EXPRESSIVE_PUNCT:
        return "punct"
    if _is_emoji(ch):
        return "emoji"
    return None
