"""Personal data in text: mobile and landline numbers, ID-card numbers, order (and card) numbers, e-mail addresses and
street addresses, found and masked.

The one masking module of the project. Log lines (weiquan/edge/logmask.py), the tracker store
(weiquan/stores/tracker_store.py),
the rule entity extractor's phone value (weiquan/nlu/rule_entities.py) and the WeChat channel's own log lines all call
`mask`. Pure: no I/O, no Rasa, no logging.

What a masked text looks like (enough left to tell two numbers apart in a log, not enough to call anyone):

    13812345678            → 138****5678          (also +86 138 1234 5678, 138-1234-5678)
    0571-88886666          → 0571-****6666
    110101199003071234     → 110101********1234   (18-character ID card with a plausible birth date)
    2345678901234567       → 2345****4567         (any run of 15 or more digits: orders, old ID cards, bank cards)
    zhang.san@example.com  → z***@example.com
    文三路477号 / 幸福小区3栋2单元501室 / 5号楼3单元402  → [地址]

An address is masked when it has a street with a house number (…路/街/巷/弄/胡同 + 号), an estate or village with a
building, unit or room (…小区/花园/大厦/村 + 栋/单元/室/组…), or at least two building parts (3栋2单元501). Province,
city and district names alone are not personal and stay. A date such as "6月1号" is not an address.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

MASK = "****"
ADDRESS_MARK = "[地址]"

_DIGIT_CN = "零〇一二三四五六七八九十百千两"
# Characters that end a place name when reading leftwards from 路/小区/…: function words buyers put before an address
# (我住在…, 寄到…) and the suffixes of the administrative level above (…区文三路: the name is 文三).
_NAME_STOP = "在住是到我你他她它的了寄送往来去家址说和与跟给把被从于向省市区县镇乡旗"


def _cjk_without(excluded: str) -> str:
    """A character-class body for the CJK block minus `excluded` (re has no class subtraction)."""
    ranges, start = [], 0x4E00
    for code in sorted({ord(char) for char in excluded}):
        if code > start:
            ranges.append(f"{chr(start)}-{chr(code - 1)}")
        start = code + 1
    ranges.append(f"{chr(start)}-\u9fff")
    return "".join(ranges)


_NAME = rf"[{_cjk_without(_NAME_STOP)}A-Za-z]{{1,10}}"
_NUM = rf"(?:\d{{1,5}}|[{_DIGIT_CN}]{{1,6}})"
_BUILDING_NUM = rf"(?:[A-Za-z]?{_NUM}[A-Za-z]?|[A-Za-z])"
_ROAD = r"(?:大道|大街|胡同|路|街|巷|弄)"
_ESTATE = r"(?:小区|花园|公寓|大厦|新村|家园|社区|广场|苑|村)"
_HOUSE = r"(?:号院|号楼|号|弄)"
_BUILDING = r"(?:号楼|栋|幢|座|单元)"
_UNIT = rf"{_BUILDING_NUM}\s?(?:号楼|号院|号|栋|幢|座|单元|楼|层|室|组|户)"
_ROOM = r"(?:[-－—]\d{1,5}|\d{2,5}(?!\d))"
_TAIL = rf"(?:\s?(?:{_UNIT}|{_ROOM}))*"

_ADDRESS = re.compile(
    "|".join(
        (
            rf"{_NAME}{_ROAD}\s?{_NUM}\s?{_HOUSE}{_TAIL}",  # 文三路477号, 南京西路1266弄5号, 建国路八十八号院3号楼
            rf"{_NAME}{_ESTATE}(?:\s?(?:{_UNIT}|{_ROOM}))+",  # 幸福小区3栋2单元501室, 张庄村3组, 华星大厦5楼
            rf"{_BUILDING_NUM}\s?{_BUILDING}(?:\s?(?:{_UNIT}|{_ROOM}))+",  # 3栋2单元501, 5号楼3单元402室, A座1502
        )
    )
)

_ID_CARD = re.compile(
    r"(?<![0-9A-Za-z.])(\d{6})(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])(\d{3}[\dXx])(?![0-9A-Za-z])"
)
_LONG_DIGITS = re.compile(r"(?<![\d.])(\d{4})\d{7,}(\d{4})(?!\d)")  # not the decimals of a confidence
_MOBILE = re.compile(r"(?<![\d+.])((?:\+|00)?86[ -]?)?(1[3-9]\d)[ -]?\d{4}[ -]?(\d{4})(?!\d)")
_LANDLINE = re.compile(r"(?<![\d.])(0\d{2,3})([ -]?)\d{3,4}(\d{4})(?![\d.])")
_EMAIL = re.compile(r"(?<![A-Za-z0-9._%+-])([A-Za-z0-9])[A-Za-z0-9._%+-]*@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")


# The address pattern is costly on long texts: it runs only in windows around a number followed by 号/栋/单元/….
_ADDRESS_HINT = re.compile(rf"[\d{_DIGIT_CN}A-Za-z]\s?(?:号|栋|幢|座|单元|楼|层|室|组|户|弄)")
_WINDOW_BEFORE, _WINDOW_AFTER = 40, 80


def _mobile(match: re.Match[str]) -> str:
    prefix = match.group(1) or ""
    return f"{prefix}{match.group(2)}{MASK}{match.group(3)}"


Replacement = str | Callable[[re.Match[str]], str]

# Longest first: an 18-digit ID card must not be read as a mobile number plus digits.
_NUMBER_RULES: tuple[tuple[str, re.Pattern[str], Replacement], ...] = (
    ("id_card", _ID_CARD, r"\1********\2"),
    ("long_number", _LONG_DIGITS, rf"\1{MASK}\2"),
    ("mobile", _MOBILE, _mobile),
    ("landline", _LANDLINE, rf"\1\2{MASK}\3"),
    ("email", _EMAIL, r"\1***@\2"),
)
_ANY_DIGIT = re.compile(r"\d")
_REPEATED_ADDRESS = re.compile(rf"(?:{re.escape(ADDRESS_MARK)}\s?){{2,}}")


def _address_windows(text: str) -> list[tuple[int, int]]:
    """Disjoint (start, end) spans, right to left, that may hold an address."""
    windows: list[tuple[int, int]] = []
    for hint in _ADDRESS_HINT.finditer(text):
        start, end = max(0, hint.start() - _WINDOW_BEFORE), min(len(text), hint.end() + _WINDOW_AFTER)
        if windows and start <= windows[-1][1]:
            windows[-1] = (windows[-1][0], end)
        else:
            windows.append((start, end))
    return windows[::-1]


def _mask_addresses(text: str) -> str:
    for start, end in _address_windows(text):
        text = text[:start] + _ADDRESS.sub(ADDRESS_MARK, text[start:end]) + text[end:]
    return _REPEATED_ADDRESS.sub(ADDRESS_MARK, text)


def mask(text: str) -> str:
    """The text with every personal number and street address masked (idempotent)."""
    if not text:
        return text
    if _ANY_DIGIT.search(text):
        for _, pattern, replacement in _NUMBER_RULES:
            text = pattern.sub(replacement, text)
    elif "@" in text:
        text = _EMAIL.sub(r"\1***@\2", text)
    return _mask_addresses(text)


def mask_phone(number: str) -> str:
    """A phone number as it may be kept (an entity value): 13812345678 → 138****5678."""
    return mask(number)


def find(text: str) -> list[tuple[str, str]]:
    """(kind, matched text) for every piece `mask` would hide (for tests and reports)."""
    found: list[tuple[str, str]] = []
    for kind, pattern, replacement in _NUMBER_RULES:
        found.extend((kind, match.group(0)) for match in pattern.finditer(text))
        text = pattern.sub(replacement, text)
    for start, end in reversed(_address_windows(text)):
        found.extend(("address", match.group(0)) for match in _ADDRESS.finditer(text, start, end))
    return found


def mask_data(value: Any, keep: frozenset[str] = frozenset()) -> Any:
    """A masked copy of JSON-like data: every string inside dicts, lists and tuples is masked; `value` is untouched.

    Keys listed in `keep` keep their values as they are (identifiers such as a message id).
    """
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, Mapping):
        return {key: item if key in keep else mask_data(item, keep) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [mask_data(item, keep) for item in value]
    return value


# Serialised Rasa events: these keys hold identifiers and bookkeeping, never user text.
EVENT_KEYS_KEPT = frozenset({"event", "timestamp", "message_id", "policy", "confidence", "input_channel"})


def mask_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """A masked copy of one serialised Rasa event (user and bot text, parse data, entity and slot values, metadata)."""
    return mask_data(event, EVENT_KEYS_KEPT)
