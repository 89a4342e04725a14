"""Read when a buyer's trade became 交易成功 from what they typed.

Pure functions: no clock, no I/O, no third-party imports. `today` is always passed in, so the same text gives the
same reading in tests, in the engine and in a replayed conversation.

A reading is a date *range* (earliest..latest possible 交易成功 date): buyers say "一个多月" or "上月底" far more often
than a clean number, and only the engine (with the rule data) knows which figure matters. Vague words widen the range
and set `approximate`; see docs/timeparse.md for every bound chosen here.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import date, timedelta
from functools import lru_cache
from math import ceil

OK = "ok"
UNKNOWN = "unknown"
FUTURE = "future"
TOO_OLD = "too_old"
NONSENSE = "nonsense"

# Plausibility bounds of the parser, not business rules: a typed date older than this is almost always a typo.
MAX_YEARS_BACK = 3
# Nobody counts a trade's age in days past a year (they say 一年多 / 去年); a bigger day count is a typo, a joke or a
# number that is not an age at all.
MAX_DAY_COUNT = 366
MAX_WEEK_COUNT = 53


@dataclass(frozen=True)
class TimeReading:
    text: str
    start: int
    end: int
    status: str
    earliest: date | None
    latest: date | None
    approximate: bool
    # A date typed without a year that would lie ahead this year, so it was read as last year's ("12月17日" typed on
    # 12月7日). The form confirms such a reading before it rules (actions/complaint.py); the parser only says so.
    year_moved_back: bool = False


# --------------------------------------------------------------------------------------------------------------
# Input: text as the NLU normalised it (weiquan/nlu/textnorm.py: simplified script, half-width digits and
# punctuation). Only the financial numerals stay for the number grammar: 壹贰叁 read as 一二三. One character in, one
# out, so offsets still point into the text given.

_NUMERALS = str.maketrans("壹贰叁参肆伍陆柒捌玖拾佰〇", "一二三三四五六七八九十百零")


def _normalise(text: str) -> str:
    return text.translate(_NUMERALS)


# --------------------------------------------------------------------------------------------------------------
# Numbers

_CN_DIGIT = {"零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CN_UNIT = {"十": 10, "百": 100, "千": 1000}
_CN_CHARS = "零一二两三四五六七八九十廿卅百千"


def cn_to_int(word: str) -> int | None:
    """Whole number typed in digits or Chinese numerals (十二, 二十三, 廿三, 两百, 二零二六); None if it is not one.

    Own code rather than cn2an: this is all buyers type, it keeps 廿/卅 and digit-by-digit years, and it costs no
    import (see docs/timeparse.md for the comparison).
    """
    if word.isdigit():
        return int(word)
    word = word.replace("廿", "二十").replace("卅", "三十")
    if not word or any(ch not in _CN_DIGIT and ch not in _CN_UNIT for ch in word):
        return None
    if (len(word) > 2 or "零" in word) and all(ch in _CN_DIGIT for ch in word):
        return int("".join(str(_CN_DIGIT[ch]) for ch in word))  # 二零二六 is a year read digit by digit
    total, current = 0, None
    for ch in word:
        if ch == "零":
            continue  # 两百零五: a placeholder between units
        if ch in _CN_DIGIT:
            if current is not None:
                return None  # 三四 without a unit between is a range, not a number
            current = _CN_DIGIT[ch]
        else:
            total += (1 if current is None else current) * _CN_UNIT[ch]
            current = None
    return total + (current or 0)


_PAIR = re.compile(r"^(?P<tens>(?:[一二三四五六七八九]?十)?)(?P<a>[一二两三四五六七八])(?P<b>[二两三四五六七八九])$")
_SPAN = re.compile(r"^(?P<a>\w+?)\s*[-~到至]\s*(?P<b>\w+)$")


@dataclass(frozen=True)
class _Quantity:
    low: float
    high: float
    vague: bool


def _quantity(word: str) -> _Quantity | None:
    """A count as typed: exact (十五), a pair (两三, 十一二), a range (3-5), or vague (十几, 二十多, 十来, 几)."""
    if word == "半":
        return _Quantity(0.5, 0.5, False)
    pair = _PAIR.match(word)
    if pair:
        tens = cn_to_int(pair["tens"]) if pair["tens"] else 0
        a, b = _CN_DIGIT[pair["a"]], _CN_DIGIT[pair["b"]]
        if tens is not None and (b == a + 1 or (a, b) == (3, 5)):
            return _Quantity(tens + a, tens + b, True)
        return None
    value = cn_to_int(word)
    if value is not None:
        return _Quantity(value, value, False)
    span = _SPAN.match(word)
    if span:
        low, high = cn_to_int(span["a"]), cn_to_int(span["b"])
        return _Quantity(low, high, True) if low is not None and high is not None and low <= high else None
    return _vague_quantity(word)


def _vague_quantity(word: str) -> _Quantity | None:
    if word == "几":
        return _Quantity(2, 9, True)
    if word == "几十":
        return _Quantity(20, 99, True)
    if word[-1] in "几多":  # 十几 / 二十多: the tens and any unit digit above them
        tens = cn_to_int(word[:-1])
        if tens is None:
            return None
        if tens >= 10 and tens % 10 == 0:
            return _Quantity(tens + 1, tens + 9, True)
        return _Quantity(tens, tens + 1, True)
    if word[-1] == "来":  # 十来天: about ten, more often a little over
        base = cn_to_int(word[:-1])
        return _Quantity(max(base - 1, 0), base + 3, True) if base is not None else None
    return None


# --------------------------------------------------------------------------------------------------------------
# Date arithmetic


def days_in_month(year: int, month: int) -> int:
    # Two lines of our own: importing the calendar module costs more than the whole parser.
    following = date(year + month // 12, month % 12 + 1, 1)
    return (following - timedelta(days=1)).day


def add_months(day: date, months: int) -> date:
    """Calendar months, clamping the day of month (03-31 minus one month is 02-28, or 02-29 in a leap year)."""
    years, month0 = divmod(day.month - 1 + months, 12)
    year = day.year + years
    return date(year, month0 + 1, min(day.day, days_in_month(year, month0 + 1)))


def _horizon(today: date) -> date:
    return add_months(today, -12 * MAX_YEARS_BACK)


def _days_ago(today: date, days: float) -> date:
    return today - timedelta(days=int(days))


def _safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _year_for(month: int, day: int, today: date) -> int:
    """A date typed without a year is this year's, unless that is still to come: then last year's."""
    return today.year - 1 if (month, day) > (today.month, today.day) else today.year


def _moved_back(span: _Span, year: int, today: date) -> _Span:
    """Mark a span whose year was not typed and was taken as last year's."""
    return replace(span, year_moved_back=True) if year < today.year and span.status == OK else span


# --------------------------------------------------------------------------------------------------------------
# Candidates: every rule proposes (span, range); the best non-overlapping ones become readings.


@dataclass(frozen=True)
class _Span:
    """What a rule found, before it is checked against today."""

    status: str
    earliest: date | None = None
    latest: date | None = None
    approximate: bool = False
    is_count: bool = False  # a bare duration (5天, 两周): the kind of number rule talk and event counts also use
    year_moved_back: bool = False  # see TimeReading


def _nonsense() -> _Span:
    return _Span(NONSENSE)


def _range(earliest: date, latest: date, approximate: bool = False, is_count: bool = False) -> _Span:
    return _Span(OK, earliest, latest, approximate, is_count)


def _finish(span: _Span, today: date) -> _Span:
    """Apply what only `today` can tell: future, too old, and clamping a range to what is possible."""
    if span.status != OK or span.earliest is None or span.latest is None:
        return span
    if span.earliest > today:
        return _Span(FUTURE, is_count=span.is_count)
    horizon = _horizon(today)
    if span.latest < horizon:
        return _Span(TOO_OLD, is_count=span.is_count)
    return _Span(OK, max(span.earliest, horizon), min(span.latest, today), span.approximate, span.is_count,
                 span.year_moved_back)


# --------------------------------------------------------------------------------------------------------------
# Rule: durations — 5天, 5天前, 二十多天, 一个多月, 半个月, 两周左右, 快一个月, 超过20天, 3个小时前

# Numeral runs are bounded and must start a run: a 5,000-character run of 一 must not cost quadratic time.
_QTY_CN = f"(?<![{_CN_CHARS}几])[{_CN_CHARS}几]{{1,8}}"
_QTY = (
    rf"(?:(?<![\d.])\d{{1,4}}(?:\s*[-~到至]\s*\d{{1,4}})?(?![\d.])(?:多|来)?"
    rf"|{_QTY_CN}(?:[到至]{_QTY_CN})?(?:多|来)?|半)"
)
_ABOUT = "大概|大约|大致|差不多|约莫|约|估计"
_NEARLY = "将近|接近|快要|快|差点|马上"
_UNDER = "不到|没到|还没到|还没有|还没|没有|不满|未满|不超过|没超过"
_OVER = "超过|超了|过了|不止|已超过"
_DURATION = re.compile(
    rf"(?<!第)(?P<pre>{_ABOUT}|{_NEARLY}|{_UNDER}|{_OVER}|好|前|这)?"
    rf"(?P<qty>{_QTY})(?P<ge>个)?(?P<more1>多|来)?(?P<half1>半)?"
    r"(?P<unit>天|日|星期|礼拜|周|月|年|小时|钟头|分钟)"
    r"(?P<more2>多)?(?P<half2>半)?"
    r"(?P<post>之前|以前|前|左右|上下|以上|开外|出头|不到|之后|以后|后)?"
)

_MONTHS_IN = {"月": 1, "年": 12}
_DAYS_IN = {"天": 1, "日": 1, "周": 7, "星期": 7, "礼拜": 7}


def _duration(m: re.Match, today: date) -> _Span | None:
    pre, post, unit = m["pre"] or "", m["post"] or "", m["unit"]
    if not _duration_is_plausible(m, pre, post, unit):
        return None
    qty = _quantity(m["qty"])
    if qty is None:
        return None
    if m["more1"] == "来":  # 一个来月: about a month
        pre = pre or "大概"
    more = bool(m["more1"] == "多" or m["more2"])
    half = bool(m["half1"] or m["half2"])
    if unit in ("小时", "钟头", "分钟"):
        return _hours(qty, unit, today)
    if unit in _DAYS_IN:
        span = _day_span(qty, _DAYS_IN[unit], more, half, today)
    else:
        span = _month_span(qty, _MONTHS_IN[unit], more, half, today)
    if span.status != OK:
        return span
    return _modify(span, pre, post, today)


def _duration_is_plausible(m: re.Match, pre: str, post: str, unit: str) -> bool:
    if post in ("之后", "以后", "后"):
        return False  # 确认收货3天后卖家开始骚扰: counted from another event, not from today
    if m["qty"] == "半" and unit in ("天", "日"):
        return False  # 半天 means "a long while" (等了半天)
    if m["qty"] == "几" and pre not in ("好", "前", "这") and not post.endswith("前"):
        return False  # bare 几天 asks "how many days?"
    if pre in ("前", "这") and "几" not in m["qty"]:
        return False  # 前两天 / 这两天 are vaguer than two days: the day-word rule reads them
    if unit == "月" and not (m["ge"] or m["qty"] == "半"):
        return False  # 6月 is June; a duration of months needs 个 (一个月, 半个月 — 半月 also goes)
    if unit == "日" and not post.endswith("前"):
        return False  # 5日 is the 5th of a month; only 5日前 counts days
    if unit == "年" and not (post or pre or m["more1"] or m["more2"] or m["half2"] or m["qty"] == "半"):
        # 一年 inside a sentence is too often a warranty or a count; 一年了, or 一年 as the whole answer, is an age
        # (but 2025年 / 二零二五年 alone is a year: the year rule reads it).
        years = cn_to_int(m["qty"])
        return _next_char_is(m, "了啦") or (_only_filler(m.string, m) and years is not None and years < 100)
    return True


def _next_char_is(m: re.Match, chars: str) -> bool:
    text, end = m.string, m.end()
    return end < len(text) and text[end] in chars


def _day_span(qty: _Quantity, unit_days: int, more: bool, half: bool, today: date) -> _Span:
    low, high = qty.low * unit_days, qty.high * unit_days
    vague = qty.vague
    if half:  # 一天半 is one or two days back, 一周半 ten or eleven
        low, high, vague = low + unit_days / 2, high + unit_days / 2, True
    if more:
        # 5天多: five days and some hours; 一周多: more than a week, less than two
        low, high = (low, high + 1) if unit_days == 1 else (low + 1, high + unit_days - 1)
        vague = True
    if (unit_days == 1 and high > MAX_DAY_COUNT) or (unit_days > 1 and qty.high > MAX_WEEK_COUNT):
        return _nonsense()
    return _range(_days_ago(today, ceil(high)), _days_ago(today, int(low)), vague or low != high, is_count=True)


def _month_span(qty: _Quantity, unit_months: int, more: bool, half: bool, today: date) -> _Span:
    if qty.high * unit_months > 12 * 100:
        return _Span(TOO_OLD, is_count=True)
    if qty.low == 0.5:  # 半个月 / 半年
        return _half_unit(unit_months, more, today)
    low, high = int(qty.low * unit_months), int(qty.high * unit_months)
    if half:
        return _plus_half(low, high, unit_months, today)
    if more:
        # 一个多月: more than one month, less than two — calendar months, exclusive at both ends
        earliest = add_months(today, -(high + unit_months)) + timedelta(days=1)
        return _range(earliest, add_months(today, -low) - timedelta(days=1), True, is_count=True)
    return _range(add_months(today, -high), add_months(today, -low), qty.vague, is_count=True)


def _half_unit(unit_months: int, more: bool, today: date) -> _Span:
    if unit_months == 12:  # 半年: six calendar months; 半年多: six to twelve
        if more:
            earliest = add_months(today, -12) + timedelta(days=1)
            return _range(earliest, add_months(today, -6) - timedelta(days=1), True, is_count=True)
        return _range(add_months(today, -6), add_months(today, -6), True, is_count=True)
    # Half a calendar month is 14 to 15.5 days depending on the month; 半个多月 runs up to about three weeks and a half.
    if more:
        return _range(_days_ago(today, 24), _days_ago(today, 16), True, is_count=True)
    return _range(_days_ago(today, 16), _days_ago(today, 14), True, is_count=True)


def _plus_half(low: int, high: int, unit_months: int, today: date) -> _Span:
    """一个半月 / 一年半: the whole units plus half a unit, give or take the length of the months involved."""
    half_days = 15 if unit_months == 1 else 0
    half_months = 0 if unit_months == 1 else unit_months // 2
    latest = add_months(today, -(low + half_months)) - timedelta(days=half_days - 1 if half_days else 0)
    earliest = add_months(today, -(high + half_months)) - timedelta(days=half_days + 1 if half_days else 0)
    return _range(earliest, latest, True, is_count=True)


def _hours(qty: _Quantity, unit: str, today: date) -> _Span:
    hours = qty.high / 60 if unit == "分钟" else qty.high
    if hours > 24 * MAX_DAY_COUNT:
        return _nonsense()
    # Without the time of day, N hours ago is a date between floor(N/24) and ceil(N/24) days back.
    low = int(qty.low / 60 if unit == "分钟" else qty.low) // 24
    high = ceil(hours / 24)
    return _range(_days_ago(today, high), _days_ago(today, low), high != low or qty.vague, is_count=True)


def _modify(span: _Span, pre: str, post: str, today: date) -> _Span:
    """Words around a count: about (左右), nearly (快), under (不到), over (超过/以上)."""
    assert span.earliest is not None and span.latest is not None
    earliest, latest = span.earliest, span.latest
    nominal_days = (today - latest).days
    slack = timedelta(days=max(1, ceil(nominal_days / 7)))  # about a day either way per week of the figure
    if pre and re.fullmatch(_ABOUT, pre) or post in ("左右", "上下"):
        return _range(earliest - slack, latest + slack, True, is_count=True)
    if pre and re.fullmatch(_NEARLY, pre):
        return _range(latest + timedelta(days=1), latest + slack, True, is_count=True)
    if pre and re.fullmatch(_UNDER, pre) or post == "不到":
        if pre in ("不超过", "没超过"):
            return _range(earliest, today, True, is_count=True)
        return _range(latest + timedelta(days=1), today, True, is_count=True)
    if pre in ("超过", "超了", "不止", "已超过") or post in ("以上", "开外"):
        return _range(_horizon(today), earliest - timedelta(days=1), True, is_count=True)
    if post == "出头":
        return _range(earliest - timedelta(days=3), latest - timedelta(days=1), True, is_count=True)
    return span  # 过了N天 is read as N days: the buyer's own count


# --------------------------------------------------------------------------------------------------------------
# Rule: words for days — 今天 昨天 前天 大前天 明天, 前两天, 这两天, 刚确认收货

_DAY_WORDS = {
    "大前天": (3, 3),
    "大后天": (-3, -3),
    "今天": (0, 0),
    "今日": (0, 0),
    "今儿": (0, 0),
    "今早": (0, 0),
    "今晚": (0, 0),
    "昨天": (1, 1),
    "昨日": (1, 1),
    "昨儿": (1, 1),
    "昨晚": (1, 1),
    "昨夜": (1, 1),
    "前天": (2, 2),
    "前日": (2, 2),
    "前儿": (2, 2),
    "前晚": (2, 2),
    "明天": (-1, -1),
    "明日": (-1, -1),
    "后天": (-2, -2),
    "前两天": (3, 1),
    "这两天": (2, 0),
    "十天半个月": (15, 10),
    "刚": (0, 0),  # 刚确认收货 / 刚刚收到货: any 刚 + success verb
}
# 刚 needs the verb in the span: the form re-reads the span on its own.
_SUCCESS_VERB = r"(?:才)?(?:确认收货|确认了收货|确认|交易成功|收到货|收到|收货|签收|点了确认|点确认|成功)"
_DAY_WORD = re.compile(
    r"(?P<w>十天半个月|大前天|大后天|前两天|这两天|今天|今日|今儿|今早|今晚|昨天|昨日|昨儿|昨晚|昨夜|前天|前日|前儿|前晚"
    rf"|明天|明日|后天|(?<![天日儿早晚])(?:刚刚|刚才|刚){_SUCCESS_VERB})"
)


_TODAY_IS = re.compile(r"(?:已经|都|就)?是|(?:已经|都)?(?:交易成功|确认收货)?的?第")


def _day_word(m: re.Match, today: date) -> _Span | None:
    if m["w"] == "前日" and _next_char_is(m, "期"):
        return None
    if m["w"] in ("今天", "今日", "今儿") and (
        _TODAY_IS.match(m.string, m.end()) or m.string[max(0, m.start() - 1) : m.start()] in ("到", "至")
    ):
        return None  # 今天是第三天 / 确认收货到今天两周: today is the reference, the count is the reading
    far, near = _DAY_WORDS["刚" if m["w"].startswith("刚") else m["w"]]
    return _range(_days_ago(today, far), _days_ago(today, near), far != near)


# --------------------------------------------------------------------------------------------------------------
# Rule: 确认收货第三天 — the confirm day is day 1, so day N is N-1 days ago

_NTH_DAY = re.compile(rf"第(?P<n>\d{{1,4}}|[{_CN_CHARS}]{{1,8}})天(?!就|便|开始|起|时|的时候|晚上)")


_AFTER_OTHER_EVENT = re.compile(r"(?:后|以后|之后)的?$")


def _nth_day(m: re.Match, today: date) -> _Span | None:
    n = cn_to_int(m["n"])
    if n is None:
        return None
    before = m.string[max(0, m.start() - 8) : m.start()]
    if _AFTER_OTHER_EVENT.search(before) and not _SUCCESS_WORD.search(before):
        return None  # 差评后第二天: counted from something other than the success
    if n < 1 or n - 1 > MAX_DAY_COUNT:
        return _nonsense()
    return _range(_days_ago(today, n - 1), _days_ago(today, n - 1))


# --------------------------------------------------------------------------------------------------------------
# Rule: weeks — 上周三, 上上周五, 这周一, 周日, 上周, 上周末, 下周

_WEEKDAY = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6, "末": 5}
_WEEK = re.compile(
    r"(?<!每)(?P<rel>上上个?|上个?|这个?|本|下个?)?(?P<w>周|星期|礼拜)(?P<d>[一二三四五六日天末]|[1-7](?![\d.]))?"
    r"(?!次|个|条|遍|回|通|内|里|期)"
)


def _week(m: re.Match, today: date) -> _Span | None:
    rel, day = (m["rel"] or "").rstrip("个"), m["d"]
    if not rel and not day:
        return None  # a bare 周 / 星期 is part of something else
    monday = today - timedelta(days=today.weekday())
    offset = {"上上": -2, "上": -1, "这": 0, "本": 0, "下": 1, "": 0}[rel]
    week_start = monday + timedelta(weeks=offset)
    if day is None:  # 上周: any day of that week
        return _range(week_start, week_start + timedelta(days=6), True)
    index = int(day) - 1 if day.isdigit() else _WEEKDAY[day]
    if day == "末":  # 周末: Saturday or Sunday
        start = week_start + timedelta(days=5)
        if not rel and start > today:
            start -= timedelta(weeks=1)
        return _range(start, start + timedelta(days=1), True)
    target = week_start + timedelta(days=index)
    if not rel and target > today:
        target -= timedelta(weeks=1)  # 周三 alone: the most recent Wednesday
    return _range(target, target)


# --------------------------------------------------------------------------------------------------------------
# Rule: months relative to today — 上个月1号, 上月底, 这个月初, 上个月, 上上个月中旬

_MONTH_PART = "初|头|底|末|尾|中旬|上旬|下旬|中|份"
_REL_MONTH = re.compile(
    rf"(?P<rel>上上个?月|上个?月|这个?月|本月|下个?月)(?:的)?"
    rf"(?:(?P<d>\d{{1,2}}|[{_CN_CHARS}]{{1,3}})(?:号|日)|月?(?P<part>{_MONTH_PART}))?"
)


def _rel_month(m: re.Match, today: date) -> _Span | None:
    rel = m["rel"].replace("个", "").rstrip("月")
    offset = {"上上": -2, "上": -1, "这": 0, "本": 0, "下": 1}[rel]
    first = add_months(today.replace(day=1), offset)
    return _month_day_or_part(first.year, first.month, m["d"], m["part"])


def _month_day_or_part(year: int, month: int, day_word: str | None, part: str | None) -> _Span:
    if day_word is not None:
        day = cn_to_int(day_word)
        found = _safe_date(year, month, day) if day is not None else None
        return _range(found, found) if found else _nonsense()
    first_day, last_day = _part_bounds(part or "", days_in_month(year, month))
    return _range(date(year, month, first_day), date(year, month, last_day), True)


def _part_bounds(part: str, month_days: int) -> tuple[int, int]:
    """月初 days 1–5, 月中 10–20, 月底 the last 5 days; 上/中/下旬 the usual thirds; no part: the whole month."""
    if part in ("初", "头"):
        return 1, 5
    if part in ("底", "末", "尾"):
        return month_days - 4, month_days
    if part == "中":
        return 10, 20
    if part == "上旬":
        return 1, 10
    if part == "中旬":
        return 11, 20
    if part == "下旬":
        return 21, month_days
    return 1, month_days


# --------------------------------------------------------------------------------------------------------------
# Rule: absolute dates — 2026-06-01, 2026/6/1, 2026年6月1日, 去年11月11日, 6月1号, 六月初, 6.1, 15号

_YEAR_WORD = r"今年|去年|前年|明年|\d{4}年|\d{2}年(?=\d{1,2}月|[" + _CN_CHARS + r"]{1,2}月)|[零一二三四五六七八九]{4}年"
_ISO_DATE = re.compile(r"(?<![\d.])(?P<y>\d{4})[-/.年](?P<m>\d{1,2})[-/.月](?P<d>\d{1,2})(?:日|号)?(?![\d.])")
_CN_DATE = re.compile(
    rf"(?P<y>{_YEAR_WORD})?(?<![\d.])(?P<m>\d{{1,2}}|[{_CN_CHARS}]{{1,3}})月"
    rf"(?:(?P<d>\d{{1,2}}|[{_CN_CHARS}]{{1,3}})(?![\d.])(?:号|日)?|(?P<part>{_MONTH_PART}))?"
)
_DOT_DATE = re.compile(
    r"(?<![\d.¥$￥])(?P<m>\d{1,2})[./](?P<d>\d{1,2})(?![\d.%])"
    r"(?!\s*(?:元|块|钱|折|万|千|米|斤|公斤|克|倍|寸|分|个|天|周|年|月|小时|岁|号线|G|g|k|K|m|M|w|W))(?:号|日)?"
)
_DAY_OF_MONTH = re.compile(
    rf"(?<![\d.第月])(?P<d>\d{{1,2}}|[{_CN_CHARS}]{{1,3}})(?:号|日)(?!码|楼|线|柜|店|门|床|位|机|口|台|仓|链接|宝贝|客服|单|元|三餐|游)"
)
_YEAR_ONLY = re.compile(r"(?P<y>去年|前年|明年|\d{4}年|[零一二三四五六七八九]{4}年)(?!\d|[" + _CN_CHARS + r"]{1,3}月)")


def _year_of(word: str | None, today: date) -> int | None:
    if not word:
        return None
    word = word.rstrip("年")
    relative = {"今": 0, "去": -1, "前": -2, "明": 1}
    if word in relative:
        return today.year + relative[word]
    number = cn_to_int(word)
    if number is None:
        return None
    if number < 100:  # 26年 is 2026, 99年 is 1999
        return number + 2000 if number + 2000 <= today.year else number + 1900
    return number


def _iso_date(m: re.Match, today: date) -> _Span | None:
    found = _safe_date(int(m["y"]), int(m["m"]), int(m["d"]))
    return _range(found, found) if found else _nonsense()


def _cn_date(m: re.Match, today: date) -> _Span | None:
    month = cn_to_int(m["m"])
    if month is None:
        return None
    if not 1 <= month <= 12:
        return _nonsense()
    year = _year_of(m["y"], today)
    if year is not None and year < 1:
        return _nonsense()
    if m["d"] is not None:
        day = cn_to_int(m["d"])
        if day is None:
            return None
        typed = year is not None
        if year is None:
            year = _year_for(month, day, today)
        found = _safe_date(year, month, day)
        span = _range(found, found) if found else _nonsense()
        return span if typed else _moved_back(span, year, today)
    if m["part"] is None and not m["y"] and not _month_alone_is_date(m):
        return None
    if year is None:
        year = _year_for(month, 1, today)
        return _moved_back(_month_day_or_part(year, month, None, m["part"]), year, today)
    return _month_day_or_part(year, month, None, m["part"])


def _month_alone_is_date(m: re.Match) -> bool:
    # 6月 alone is June only when a particle says so (6月确认收货的 is rarer than 6月份 / 6月的时候 / 6月那会).
    rest = m.string[m.end() : m.end() + 3]
    if _only_filler(m.string, m):
        return True  # the whole answer is "5月"
    # ... and at the very end of a message (大概是5月), where nothing else can follow it.
    return not rest or rest[0] in "的那时中初底末份" or rest.startswith(("确认", "收货", "交易", "签收"))


def _dot_date(m: re.Match, today: date) -> _Span | None:
    month, day = int(m["m"]), int(m["d"])
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return None  # 3.50 is a price, not a date
    year = _year_for(month, day, today)
    found = _safe_date(year, month, day)
    return _moved_back(_range(found, found), year, today) if found else _nonsense()


def _day_of_month(m: re.Match, today: date) -> _Span | None:
    day = cn_to_int(m["d"])
    if day is None:
        return None
    if not 1 <= day <= 31:
        return _nonsense()
    first = today.replace(day=1) if day <= today.day else add_months(today.replace(day=1), -1)
    found = _safe_date(first.year, first.month, day)
    return _range(found, found) if found else _nonsense()


def _year_only(m: re.Match, today: date) -> _Span | None:
    year = _year_of(m["y"], today)
    if year is None or year < 1:
        return None
    return _range(date(year, 1, 1), date(year, 12, 31), True)


# --------------------------------------------------------------------------------------------------------------
# Rule: festivals — 双十一那天, 去年双十二, 国庆期间, 五一的时候, 今年618

# (month, day) of the day itself, and the usual holiday or sale period around it.
_FESTIVALS: dict[str, tuple[tuple[int, int], tuple[int, int], tuple[int, int]]] = {
    "双十一": ((11, 11), (11, 10), (11, 12)),
    "双十二": ((12, 12), (12, 11), (12, 13)),
    "六一八": ((6, 18), (6, 16), (6, 20)),
    "元旦": ((1, 1), (1, 1), (1, 3)),
    "国庆": ((10, 1), (10, 1), (10, 7)),
    "五一": ((5, 1), (5, 1), (5, 5)),
    "圣诞": ((12, 25), (12, 24), (12, 26)),
    "情人节": ((2, 14), (2, 13), (2, 15)),
    "妇女节": ((3, 8), (3, 7), (3, 9)),
    "儿童节": ((6, 1), (5, 31), (6, 2)),
}
_FESTIVAL_ALIAS = {
    "双11": "双十一",
    "双12": "双十二",
    "618": "六一八",
    "劳动节": "五一",
    "三八节": "妇女节",
    "国庆节": "国庆",
    "圣诞节": "圣诞",
    "五一节": "五一",
}
_PERIOD_WORDS = "期间|假期|长假|黄金周|那几天|前后|左右|那会儿|那会|那阵子|的时候"
_FESTIVAL = re.compile(
    rf"(?P<y>今年|去年|前年|明年|(?<!\d)\d{{4}}年|(?<!\d)\d{{2}}年)?"
    r"(?P<f>双十一|双11|双十二|双12|六一八|(?<!\d)618(?!\d)|元旦|国庆节|国庆|五一节|五一|劳动节|圣诞节|圣诞|情人节"
    r"|妇女节|三八节|儿童节)"
    rf"(?P<p>那天|当天|{_PERIOD_WORDS})?"
)
_MULTI_DAY = ("国庆", "五一", "元旦")


def _festival(m: re.Match, today: date) -> _Span | None:
    name = _FESTIVAL_ALIAS.get(m["f"], m["f"])
    if m["f"] == "618" and not (m["y"] or m["p"]):
        return None  # a bare 618 is as likely a price or a count
    (day_m, day_d), (from_m, from_d), (to_m, to_d) = _FESTIVALS[name]
    period = m["p"] is not None and m["p"] not in ("那天", "当天")
    if name in _MULTI_DAY and m["p"] is None and not m["f"].endswith("节"):
        period = True  # 国庆 alone is the holiday week; 国庆节 / 国庆那天 is the day
    year = _year_of(m["y"], today)
    typed = year is not None
    if year is None:
        year = _year_for(from_m if period else day_m, from_d if period else day_d, today)
    if year < 1:
        return _nonsense()
    if period:
        span = _range(date(year, from_m, from_d), date(year, to_m, to_d), True)
    else:
        span = _range(date(year, day_m, day_d), date(year, day_m, day_d))
    return span if typed else _moved_back(span, year, today)


# --------------------------------------------------------------------------------------------------------------
# Rule: the buyer does not know — 不记得了, 忘了哪天, 记不清什么时候确认收货的

_UNSURE = re.compile(
    r"(?:不|没)(?:太|怎么|大)?(?:知道|记得|清楚|确定|晓得|记住|印象)|忘了|忘记了?|记不清楚?|记不得|记不住|记不太清"
    r"|想不起来?|搞不清楚?|说不清楚?|说不准"
    r"|(?:查|找|看)不(?:到|着)|没(?:查|找|看)到"  # looked it up and could not find it
)
# Asking back about a past date; 什么时候能处理 is about the future and does not count.
_TIME_QUESTION = re.compile(
    r"(?:哪天|哪一天|哪号|几号|几月|什么时候|啥时候|多久了|多少天了|几天了|具体时间|日期)(?!能|可以|会|才|处理|到账|有结果|回复)"
)
_SUCCESS_WORD = re.compile(
    r"交易成功|确认收货|确认了收货|确认收到|已收货|收到货|收的货|收货|签收|交易完成|订单完成|完成交易|点了确认|点确认|确认的"
)
_FILLER = set("了啊呢吧呀哦噢额呃嗯诶哎唉嘛啦我也都真还是的具体时间，。！？,.!?~ …")


def _unsure_spans(text: str) -> Iterator[tuple[int, int]]:
    for m in _UNSURE.finditer(text):
        clause = _clause_of(text, m.start())
        whole = text[clause[0] : clause[1]]
        if _TIME_QUESTION.search(whole) or _SUCCESS_WORD.search(whole) or _only_filler(text, m):
            yield m.start(), m.end()


def _only_filler(text: str, m: re.Match) -> bool:
    return all(ch in _FILLER for ch in text[: m.start()] + text[m.end() :])


# --------------------------------------------------------------------------------------------------------------
# Context: counts that are not the age of the trade

_CLAUSE_BREAK = re.compile(r"[，,。！!？?；;、\n]")
# Rule talk (15天内, 15天举报期, 7天无理由) and counts of something else (一天打20个电话, 三天两头, 等了3天).
_NOT_AGE_AFTER = re.compile(
    r"(?:内|之内|以内|里|期|期限|时效|有效|举报期|投诉期|为限|无理由|自动|包退|包换|保修|质保|到晚|两头|发货|到货|到账"
    r"|的期限|的时间限制|的限制|的规定|的时效|的举报期|的投诉期"
    r"|(?:就|都|要|能)?(?:打|发|骂|来|收到|接到)(?!货)"
    r"|[\d一二两三四五六七八九十几好]+\s*(?:个|次|条|通|遍|回))"
)
_NOT_AGE_BEFORE = re.compile(
    r"(?:每|连续|连着|一连|持续|骚扰|骚扰了|打了|骂了|等了|还有|还剩|剩下|只剩|剩|规定|期限|时效|期限是|时效是|要求|延长|超时"
    r"|保修|质保|期)(?:我|了|是|为|有|都|的)?$"
)


@dataclass(frozen=True)
class _Clause:
    start: int
    end: int
    anchored: bool  # holds a success word (交易成功, 确认收货 …)
    other_event: bool  # talks about the harassment or another step of the order


@lru_cache(maxsize=8)
def _clauses(text: str) -> tuple[_Clause, ...]:
    """The text cut at punctuation, each piece looked at once (long messages must stay linear)."""
    cuts = [b.start() for b in _CLAUSE_BREAK.finditer(text)]
    bounds = zip([0] + [c + 1 for c in cuts], cuts + [len(text)], strict=True)
    return tuple(
        _Clause(start, end, bool(_SUCCESS_WORD.search(text, start, end)), bool(_OTHER_EVENT.search(text, start, end)))
        for start, end in bounds
    )


@lru_cache(maxsize=8)
def _clause_starts(text: str) -> tuple[int, ...]:
    return tuple(c.start for c in _clauses(text))


def _clause_at(text: str, index: int) -> _Clause:
    return _clauses(text)[bisect_right(_clause_starts(text), index) - 1]


def _clause_of(text: str, index: int) -> tuple[int, int]:
    clause = _clause_at(text, index)
    return clause.start, clause.end


def _is_age(text: str, start: int, end: int) -> bool:
    clause_start, _ = _clause_of(text, start)
    before = text[max(clause_start, start - 5) : start]
    return not (_NOT_AGE_AFTER.match(text, end) or _NOT_AGE_BEFORE.search(before))


# A clause about the harassment itself (今天卖家又打电话骂我) or another step of the order (退款3天了): its time is
# not the success time unless a success word sits in the same clause.
_OTHER_EVENT = re.compile(r"打电话|打了|来电|电话|短信|骂|骚扰|威胁|恐吓|辱骂|找上门|上门|寄了|发消息|退款|退货|发货")


def _about_other_event(text: str, start: int) -> bool:
    clause = _clause_at(text, start)
    return clause.other_event and not clause.anchored


def _anchored(text: str, start: int) -> bool:
    return _clause_at(text, start).anchored


# --------------------------------------------------------------------------------------------------------------
# Putting it together

_Rule = Callable[[re.Match, date], _Span | None]
_RULES: tuple[tuple[re.Pattern, _Rule], ...] = (
    (_ISO_DATE, _iso_date),
    (_FESTIVAL, _festival),
    (_CN_DATE, _cn_date),
    (_REL_MONTH, _rel_month),
    (_DOT_DATE, _dot_date),
    (_NTH_DAY, _nth_day),
    (_DURATION, _duration),
    (_DAY_WORD, _day_word),
    (_WEEK, _week),
    (_DAY_OF_MONTH, _day_of_month),
    (_YEAR_ONLY, _year_only),
)


@dataclass(frozen=True)
class _Found:
    start: int
    end: int
    span: _Span
    order: int  # rule order breaks ties between equally long matches


def _candidates(text: str, today: date) -> Iterator[_Found]:
    for order, (pattern, rule) in enumerate(_RULES):
        for m in pattern.finditer(text):
            if m.end() == m.start():
                continue
            span = rule(m, today)
            if span is not None:
                yield _Found(m.start(), m.end(), span, order)


def _leftmost_longest(found: list[_Found]) -> list[_Found]:
    chosen: list[_Found] = []
    for item in sorted(found, key=lambda f: (f.start, -(f.end - f.start), f.order)):
        if not chosen or item.start >= chosen[-1].end:
            chosen.append(item)
    return chosen


def _readings(text: str, today: date) -> list[TimeReading]:
    norm = _normalise(text)
    found = _leftmost_longest(list(_candidates(norm, today)))
    readings = []
    for item in found:
        if item.span.is_count and not _is_age(norm, item.start, item.end):
            continue
        if _about_other_event(norm, item.start):
            continue
        span = _finish(item.span, today)
        readings.append(
            TimeReading(
                text[item.start : item.end],
                item.start,
                item.end,
                span.status,
                span.earliest,
                span.latest,
                span.approximate,
                span.year_moved_back,
            )
        )
    taken = [(r.start, r.end) for r in readings]
    for start, end in _unsure_spans(norm):
        if all(end <= s or start >= e for s, e in taken):
            readings.append(TimeReading(text[start:end], start, end, UNKNOWN, None, None, False))
    return sorted(readings, key=lambda r: r.start)


def find_time_readings(text: str, today: date) -> list[TimeReading]:
    """Every time expression in `text`, in order, each read against `today` (unknown ones included)."""
    return _readings(text, today)


def parse_success_time(text: str, today: date) -> TimeReading | None:
    """The reading that most likely says when the trade succeeded; None when the text holds no time expression.

    Preference: a reading in the same clause as a success word (交易成功, 确认收货 …), then the first reading; an
    "I don't know" only when nothing else was said.
    """
    readings = _readings(text, today)
    if not readings:
        return None
    norm = _normalise(text)
    known = [r for r in readings if r.status != UNKNOWN]
    if not known:
        return readings[0]
    anchored = [r for r in known if _anchored(norm, r.start)]
    return (anchored or known)[0]


def find_time_spans(text: str) -> list[tuple[int, int]]:
    """Character offsets of every time expression, for the NLU entity extractor.

    Which text counts as a time expression does not depend on the date, so any fixed date gives the same spans.
    """
    return [(r.start, r.end) for r in _readings(text, _SPAN_REFERENCE_DAY)]


# Only used to run the rules in find_time_spans; spans do not depend on it.
_SPAN_REFERENCE_DAY = date(2000, 6, 15)
