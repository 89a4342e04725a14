"""Table-driven tests of weiquan.core.timeparse; the table lives in bench/timeparse_cases.py (the benchmark reads it
too)."""

from __future__ import annotations

import time
from datetime import date, timedelta

import pytest

from bench.timeparse_cases import CASES, HELD_OUT, Case
from weiquan.core.timeparse import (
    OK,
    TimeReading,
    add_months,
    cn_to_int,
    find_time_readings,
    find_time_spans,
    parse_success_time,
)
from weiquan.nlu.textnorm import normalize_text


def test_table_is_big_enough() -> None:
    assert len(CASES) >= 90


# The parser reads text as the NLU normalised it (simplified script, half-width): so do the tests.
CASES = [Case(**{**vars(c), "text": normalize_text(c.text),
                 "span": normalize_text(c.span) if c.span else c.span}) for c in CASES]
HELD_OUT = [Case(**{**vars(c), "text": normalize_text(c.text)}) for c in HELD_OUT]


@pytest.mark.parametrize("case", CASES, ids=[c.label for c in CASES])
def test_reading(case: Case) -> None:
    reading = parse_success_time(case.text, case.today)
    if case.status is None:
        assert reading is None, reading
        return
    assert reading is not None
    assert reading.status == case.status, reading
    if case.status == OK:
        assert case.ago is not None
        expected = (case.today - timedelta(days=case.ago[0]), case.today - timedelta(days=case.ago[1]))
        assert (reading.earliest, reading.latest) == expected, reading
    else:
        assert reading.earliest is None and reading.latest is None
    if case.approximate is not None:
        assert reading.approximate == case.approximate, reading
    if case.span is not None:
        assert reading.text == case.span, reading
    assert case.text[reading.start : reading.end] == reading.text


@pytest.mark.parametrize("case", [c for c in CASES if c.status is not None], ids=lambda c: c.label)
def test_span_is_found(case: Case) -> None:
    reading = parse_success_time(case.text, case.today)
    assert reading is not None
    assert (reading.start, reading.end) in find_time_spans(case.text)


@pytest.mark.parametrize("case", [c for c in CASES if c.status is None], ids=lambda c: c.label)
def test_no_span_where_no_time(case: Case) -> None:
    assert find_time_spans(case.text) == []


def test_spans_do_not_depend_on_today() -> None:
    for case in CASES:
        assert find_time_spans(case.text) == [(r.start, r.end) for r in find_time_readings(case.text, case.today)]


def test_reading_is_frozen() -> None:
    reading = parse_success_time("5天", date(2026, 6, 15))
    assert isinstance(reading, TimeReading)
    with pytest.raises(AttributeError):
        reading.status = "future"  # type: ignore[misc]


def test_the_reading_next_to_a_success_word_wins() -> None:
    text = "前天问过客服，上周三确认收货"
    readings = find_time_readings(text, date(2026, 6, 15))
    assert [r.text for r in readings] == ["前天", "上周三"]
    reading = parse_success_time(text, date(2026, 6, 15))
    assert reading is not None and reading.text == "上周三"


def test_a_time_in_a_clause_about_the_harassment_is_not_the_success_time() -> None:
    text = "卖家骚扰我，上周三确认收货，昨天又打电话"
    assert [r.text for r in find_time_readings(text, date(2026, 6, 15))] == ["上周三"]
    assert parse_success_time("今天卖家又打电话骂我", date(2026, 6, 15)) is None


@pytest.mark.parametrize(
    "word, value",
    [
        ("十二", 12),
        ("二十三", 23),
        ("两", 2),
        ("兩", None),
        ("廿", 20),
        ("廿三", 23),
        ("三十一", 31),
        ("十五", 15),
        ("一百", 100),
        ("两百零五", 205),
        ("二零二六", 2026),
        ("15", 15),
        ("两三", None),
        ("几", None),
    ],
)
def test_cn_to_int(word: str, value: int | None) -> None:
    assert cn_to_int(word) == value  # 兩 is folded to 两 before numbers are read, not here


@pytest.mark.parametrize(
    "day, months, expected",
    [
        (date(2026, 3, 31), -1, date(2026, 2, 28)),
        (date(2028, 3, 31), -1, date(2028, 2, 29)),
        (date(2027, 1, 3), -1, date(2026, 12, 3)),
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
        (date(2026, 6, 15), -24, date(2024, 6, 15)),
    ],
)
def test_add_months(day: date, months: int, expected: date) -> None:
    assert add_months(day, months) == expected


def test_no_clock_and_no_third_party_import() -> None:
    import weiquan.core.timeparse as module

    with open(module.__file__, encoding="utf-8") as handle:
        source = handle.read()
    for forbidden in ("date.today", "datetime.now", "time.time", "import cn2an", "import chinese_calendar"):
        assert forbidden not in source


LONG_MESSAGES = {
    "numeral_run": "一" * 5000,
    "ten_run": "十" * 5000,
    "digit_run": "1" * 5000,
    "weeks": "上周" * 2500,
    "dates": "6月1号，" * 1000,
    "sentences": "交易成功5天了，卖家打电话骂我。" * 300,
}


@pytest.mark.parametrize("text", LONG_MESSAGES.values(), ids=LONG_MESSAGES.keys())
def test_long_messages_stay_cheap(text: str) -> None:
    started = time.perf_counter()
    parse_success_time(text, date(2026, 6, 15))
    assert time.perf_counter() - started < 2.0  # generous: linear work is ~0.1 s here


def assert_reads_the_same_alone(case: Case) -> None:
    """What a reading reports as its text must carry its meaning alone: the form shows it back to the buyer
    ("「半个多月」我理解为…") and a correction repeats just those words."""
    reading = parse_success_time(case.text, case.today)
    assert reading is not None, case.text
    again = parse_success_time(reading.text, case.today)
    assert again is not None
    assert (again.status, again.earliest, again.latest, again.approximate) == (
        reading.status,
        reading.earliest,
        reading.latest,
        reading.approximate,
    )


@pytest.mark.parametrize("case", [c for c in CASES if c.status is not None], ids=lambda c: c.label)
def test_the_matched_text_alone_reads_the_same(case: Case) -> None:
    assert_reads_the_same_alone(case)


def test_the_held_out_readings_read_the_same_alone_too() -> None:
    """The held-out phrasings the parser misses are counted by `make bench-time`; those it reads must hold here."""
    read = [case for case in HELD_OUT if case.status is not None and parse_success_time(case.text, case.today)]
    assert len(read) >= 30
    for case in read:
        assert_reads_the_same_alone(case)
