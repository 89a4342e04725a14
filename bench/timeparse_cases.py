"""The table of success-time expressions: used by tests/test_timeparse.py and bench/timeparse.py.

Each row: the text as a buyer would type it (alone or inside a sentence), the day it is read on, the expected status
(None: no time expression at all) and, for "ok", the expected range as (earliest, latest) in days before `today`.
`approximate` and `span` are checked only when given.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class Case:
    text: str
    status: str | None
    ago: tuple[int, int] | None = None  # (earliest, latest) as days before today
    today: date = date(2026, 6, 15)
    approximate: bool | None = None
    span: str | None = None
    group: str = ""

    @property
    def label(self) -> str:
        return f"{self.text}@{self.today.isoformat()}"


MON = date(2026, 6, 15)  # a Monday
THU = date(2026, 6, 18)
NEW_YEAR = date(2027, 1, 3)  # a Sunday, just after a year change
NATIONAL_DAY = date(2026, 10, 5)  # inside the National Day holiday
LEAP = date(2028, 3, 5)
MAR_31 = date(2026, 3, 31)
JUL = date(2026, 7, 10)


def _rows(group: str, *rows: Case) -> list[Case]:
    return [Case(r.text, r.status, r.ago, r.today, r.approximate, r.span, group) for r in rows]


OK, UNKNOWN, FUTURE, TOO_OLD, NONSENSE = "ok", "unknown", "future", "too_old", "nonsense"

CASES: list[Case] = [
    *_rows(
        "count",
        Case("5天", OK, (5, 5), approximate=False, span="5天"),
        Case("5天前", OK, (5, 5), span="5天前"),
        Case("交易成功五天了", OK, (5, 5), span="五天"),
        Case("确认收货5天了", OK, (5, 5), span="5天"),
        Case("0天", OK, (0, 0)),
        Case("十二天", OK, (12, 12)),
        Case("二十三天前", OK, (23, 23)),
        Case("两天前", OK, (2, 2)),
        Case("廿天", OK, (20, 20)),
        Case("廿三天", OK, (23, 23)),
        Case("三十一天", OK, (31, 31)),
        Case("十五天了", OK, (15, 15)),
        Case("十六天了", OK, (16, 16)),
        Case("１５天", OK, (15, 15)),
        Case("兩天", OK, (2, 2)),
        Case("交易成功已经二十天了", OK, (20, 20)),
        Case("5日前", OK, (5, 5)),
        Case("一百天", OK, (100, 100)),
        Case("366天", OK, (366, 366)),
        Case("367天", NONSENSE),
        Case("999天", NONSENSE),
        Case("过了15天还能投诉吗", OK, (15, 15)),  # a rule question; read as 15 days (docs/timeparse.md)
    ),
    *_rows(
        "week",
        Case("一周", OK, (7, 7), approximate=False),
        Case("两周", OK, (14, 14)),
        Case("一个星期", OK, (7, 7)),
        Case("两个礼拜了", OK, (14, 14)),
        Case("兩週前", OK, (14, 14)),
        Case("三周前", OK, (21, 21)),
        Case("一周多", OK, (13, 8), approximate=True),
        Case("99周", NONSENSE),
    ),
    *_rows(
        "month",
        Case("半个月", OK, (16, 14), approximate=True),
        Case("半个多月", OK, (24, 16), approximate=True),
        Case("一个多月", OK, (60, 32), approximate=True),  # 2026-04-16 .. 2026-05-14
        Case("一个月", OK, (31, 31), approximate=False),
        Case("两个月前", OK, (61, 61)),
        Case("一个半月", OK, (47, 45), approximate=True),
        Case("半年前", OK, (182, 182), approximate=True),
        Case("一年多", OK, (729, 366), approximate=True),
        Case("两年前", OK, (730, 730)),
        Case("三年前", OK, (1096, 1096)),
        Case("三年多了", TOO_OLD),
        Case("五年前", TOO_OLD),
        Case("一个月前", OK, (31, 31), today=MAR_31),  # 03-31 minus a month is 02-28
    ),
    *_rows(
        "vague",
        Case("十几天", OK, (19, 11), approximate=True),
        Case("二十多天", OK, (29, 21), approximate=True),
        Case("两三天", OK, (3, 2), approximate=True),
        Case("十来天", OK, (13, 9), approximate=True),
        Case("好几天了", OK, (9, 2), approximate=True),
        Case("前几天", OK, (9, 2), approximate=True),
        Case("一两个月", OK, (61, 31), approximate=True),
        Case("3-5天", OK, (5, 3), approximate=True),
        Case("大概两周", OK, (16, 12), approximate=True),
        Case("两周左右", OK, (16, 12), approximate=True),
        Case("20天左右", OK, (23, 17), approximate=True),
        Case("快一个月了", OK, (30, 26), approximate=True),
        Case("超过20天了", OK, (1096, 21), approximate=True),
        Case("20天以上", OK, (1096, 21), approximate=True),
        Case("不到10天", OK, (9, 0), approximate=True),
        Case("5天多", OK, (6, 5), approximate=True),
        Case("20天出头", OK, (23, 21), approximate=True),
        Case("3个小时前", OK, (1, 0), approximate=True),
        Case("半小时前刚确认", OK, (1, 0), approximate=True),
    ),
    *_rows(
        "day_word",
        Case("昨天", OK, (1, 1), approximate=False),
        Case("前天", OK, (2, 2)),
        Case("大前天", OK, (3, 3), span="大前天"),
        Case("今天刚确认收货", OK, (0, 0), span="今天"),
        Case("刚确认收货", OK, (0, 0)),
        Case("昨天晚上确认的", OK, (1, 1)),
        Case("前两天", OK, (3, 1), approximate=True),
        Case("这两天刚收到货", OK, (2, 0), approximate=True),
        Case("明天", FUTURE),
        Case("后天确认收货", FUTURE),
    ),
    *_rows(
        "weekday",
        Case("上周三", OK, (5, 5), span="上周三"),
        Case("上上周五", OK, (10, 10)),
        Case("上周日", OK, (1, 1)),
        Case("上个星期天", OK, (1, 1)),
        Case("礼拜五", OK, (3, 3)),  # the most recent Friday
        Case("这周一", OK, (0, 0)),
        Case("这周三", FUTURE),
        Case("下周一", FUTURE),
        Case("上周", OK, (7, 1), approximate=True),
        Case("上周末", OK, (2, 1), approximate=True),
        Case("上周三", OK, (8, 8), today=THU),
        Case("周三确认收货的", OK, (1, 1), today=THU),
        Case("上周三", OK, (11, 11), today=NEW_YEAR),  # 2026-12-23, across the year change
    ),
    *_rows(
        "relative_month",
        Case("上个月1号", OK, (45, 45)),
        Case("上月底", OK, (19, 15), approximate=True),
        Case("上个月月底", OK, (19, 15), approximate=True),
        Case("这个月初", OK, (14, 10), approximate=True),
        Case("上个月", OK, (45, 15), approximate=True),
        Case("上上个月中旬", OK, (65, 56), approximate=True),
        Case("下个月", FUTURE),
        Case("上个月31号", NONSENSE, today=JUL),  # June has 30 days
        Case("上个月1号", OK, (33, 33), today=NEW_YEAR),  # 2026-12-01
        Case("上月底", OK, (7, 3), today=NEW_YEAR, approximate=True),
        Case("上个月", OK, (33, 3), today=NEW_YEAR, approximate=True),
    ),
    *_rows(
        "absolute",
        Case("6月1号", OK, (14, 14), approximate=False),
        Case("六月一号", OK, (14, 14)),
        Case("6.1", OK, (14, 14)),
        Case("6/1", OK, (14, 14)),
        Case("2026-06-01", OK, (14, 14)),
        Case("2026/6/1", OK, (14, 14)),
        Case("2026.6.1", OK, (14, 14)),
        Case("2026年6月1日", OK, (14, 14)),
        Case("26年6月1号", OK, (14, 14)),
        Case("二零二六年六月一日", OK, (14, 14)),
        Case("11月11日", OK, (216, 216)),  # this year's is still to come: 2025-11-11
        Case("十一月十一日", OK, (216, 216)),
        Case("6月20号", OK, (360, 360)),  # 2025-06-20
        Case("15号", OK, (0, 0)),
        Case("15號", OK, (0, 0)),
        Case("20号确认收货", OK, (26, 26)),  # 2026-05-20
        Case("三十一号", OK, (15, 15)),  # 2026-05-31
        Case("31号", NONSENSE, today=JUL),  # June 31st does not exist
        Case("6月初", OK, (14, 10), approximate=True),
        Case("5月底", OK, (19, 15), approximate=True),
        Case("5月份", OK, (45, 15), approximate=True),
        Case("6月份", OK, (14, 0), approximate=True),
        Case("2025年", OK, (530, 166), approximate=True),
        Case("去年", OK, (530, 166), approximate=True),
        Case("2月30日", NONSENSE),
        Case("2026-02-30", NONSENSE),
        Case("13月5号", NONSENSE),
        Case("13月", NONSENSE),
        Case("2027-01-01", FUTURE),
        Case("明年1月1号", FUTURE),
        Case("2020年6月1日", TOO_OLD),
        Case("2023年6月15日", OK, (1096, 1096)),  # exactly three years back still counts
        Case("2023年6月14日", TOO_OLD),
        Case("12月25号", OK, (9, 9), today=NEW_YEAR),
        Case("5天前", OK, (5, 5), today=NEW_YEAR),
    ),
    *_rows(
        "leap_day",
        Case("2024-02-29", OK, (837, 837)),
        Case("2026-02-29", NONSENSE),
        Case("2月29号", OK, (5, 5), today=LEAP),
        Case("2月29日", NONSENSE, today=date(2027, 3, 10)),
        Case("2月29日", OK, (316, 316), today=date(2029, 1, 10)),  # 2028-02-29
        Case("一个月前", OK, (31, 31), today=date(2028, 3, 31)),  # 2028-02-29
        Case("一年前", OK, (366, 366), today=date(2028, 2, 29)),  # 2027-02-28
    ),
    *_rows(
        "festival",
        Case("双十一那天", OK, (216, 216), span="双十一那天"),
        Case("双11", OK, (216, 216)),
        Case("去年双十二", OK, (185, 185)),
        Case("今年618", FUTURE),
        Case("618那天", OK, (362, 362)),
        Case("五一", OK, (45, 41), approximate=True),
        Case("圣诞节", OK, (9, 9), today=NEW_YEAR),
        Case("元旦", OK, (2, 0), today=NEW_YEAR, approximate=True),
        Case("元旦那天", OK, (2, 2), today=NEW_YEAR),
        Case("双十二", OK, (22, 22), today=NEW_YEAR),
        Case("去年双十一", OK, (53, 53), today=NEW_YEAR),
        Case("国庆期间", OK, (4, 0), today=NATIONAL_DAY, approximate=True),
        Case("国庆节那天", OK, (4, 4), today=NATIONAL_DAY),
        Case("3天前", OK, (3, 3), today=NATIONAL_DAY),
        Case("國慶期間", OK, (257, 251), approximate=True),
    ),
    *_rows(
        "nth_day",
        Case("确认收货第三天", OK, (2, 2), span="第三天"),
        Case("今天是交易成功第十天", OK, (9, 9)),
        Case("第1天", OK, (0, 0)),
        Case("第0天", NONSENSE),
    ),
    *_rows(
        "unknown",
        Case("不知道", UNKNOWN),
        Case("不记得了", UNKNOWN),
        Case("忘了", UNKNOWN),
        Case("记不清了", UNKNOWN),
        Case("記不清了", UNKNOWN),
        Case("我也不记得哪天确认收货的", UNKNOWN),
        Case("忘记什么时候确认收货了", UNKNOWN),
        Case("真的查不到", UNKNOWN),  # told where to look, and could not find it
        Case("没找到啊", UNKNOWN),
        Case("不记得具体哪天了，大概十天前", OK, (12, 8), approximate=True),
    ),
    *_rows(
        "sentence",
        Case("淘宝买的，交易成功20天了，卖家一直短信骚扰我", OK, (20, 20), span="20天"),
        Case("卖家骚扰我3天了，交易成功10天", OK, (10, 10), span="10天"),
        Case("我是上周三确认收货的，卖家天天打电话骂我", OK, (5, 5)),
        Case("双十一那天买的，11月15号确认收货，然后一直被骚扰", OK, (16, 16), today=date(2026, 12, 1)),
        Case("订单号1234567890123456，交易成功5天", OK, (5, 5)),
        Case("卖家电话13812345678一直打，确认收货两周了", OK, (14, 14)),
        Case("花了50块买的，收货一个多月了", OK, (60, 32)),
        Case("确认收货后卖家一天打20个电话，已经十天了", OK, (10, 10)),
        Case("6月1日交易成功的，今天卖家发短信骂我", OK, (14, 14), span="6月1日"),
        Case("大概是上个月底吧", OK, (19, 15), span="上个月底"),
        Case("确认收货有一个礼拜了", OK, (7, 7)),
        Case("已经过了十五天", OK, (15, 15)),
        Case("超过15天了怎么办", OK, (1096, 16), approximate=True),
        Case("前天问过客服，上周三确认收货", OK, (5, 5), span="上周三"),
    ),
    *_rows(
        "more_forms",
        Case("差不多半个月了", OK, (18, 12), approximate=True),
        Case("两个多星期", OK, (20, 15), approximate=True),
        Case("三四天了", OK, (4, 3), approximate=True),
        Case("十五六天", OK, (16, 15), approximate=True),
        Case("十天半个月", OK, (15, 10), approximate=True),
        Case("一个来月", OK, (36, 26), approximate=True),
        Case("快两个礼拜了", OK, (13, 12), approximate=True),
        Case("過了兩個禮拜", OK, (14, 14)),
        Case("5月", OK, (45, 15), approximate=True),
        Case("去年11月", OK, (226, 197), approximate=True),
        Case("26年双十一", FUTURE),
        Case("3.15那天", OK, (92, 92)),
        Case("12.12", OK, (185, 185)),
        Case("第三天了", OK, (2, 2)),
        Case("一年了", OK, (365, 365)),
    ),
    *_rows(
        "not_a_time",
        Case("订单号3212345678901234567", None),
        Case("13812345678", None),
        Case("50块", None),
        Case("30元", None),
        Case("价格6.5元", None),
        Case("打了20个电话", None),
        Case("十几条短信", None),
        Case("15天举报期是怎么算的", None),
        Case("投诉期限是15天吗", None),
        Case("15天内可以投诉吗", None),
        Case("一天打20个电话", None),
        Case("三天两头打电话骚扰", None),
        Case("支持7天无理由退货", None),
        Case("卖家骚扰了我三天", None),
        Case("连续5天打电话", None),
        Case("还有3天就超过了", None),
        Case("确认收货3天后卖家开始骚扰", None),
        Case("我等了5天他才发货", None),
        Case("24小时内发货", None),
        Case("收到货第一天就打电话骂我", None),
        Case("每周三都打电话", None),
        Case("不知道怎么投诉", None),
        Case("不知道什么时候能处理", None),
        Case("卖家一直骚扰我怎么办", None),
        Case("今天卖家又打电话骂我", None),
        Case("退款3天了", None),
        Case("差评后第二天", None),
        Case("一号店买的", None),
        Case("12.12元", None),
        Case("评分4.8分", None),
        Case("卖家一天到晚打电话", None),
        Case("保修一年", None),
        Case("交易成功十五天后还能投诉吗", None),
    ),
]


# Written after the parser, as buyers might phrase things, and deliberately NOT tuned against: the benchmark scores
# it separately to estimate how the parser does on wording it was not written for. The tests do not assert it.
HELD_OUT: list[Case] = _rows(
    "held_out",
    Case("我是前天确认的收货", OK, (2, 2)),
    Case("十号左右确认收货的", OK, (6, 4)),
    Case("收货快三周了", OK, (20, 18)),
    Case("都一个月零三天了", OK, (34, 34)),
    Case("上礼拜二", OK, (6, 6)),
    Case("礼拜一收的货", OK, (0, 0)),
    Case("5号签收的", OK, (10, 10)),
    Case("五月二十号", OK, (26, 26)),
    Case("5月20日那天确认的", OK, (26, 26)),
    Case("二十来天了吧", OK, (23, 19)),
    Case("估计有十七八天了", OK, (21, 14)),
    Case("一个礼拜前", OK, (7, 7)),
    Case("半个月前吧", OK, (16, 14)),
    Case("交易成功才三天", OK, (3, 3)),
    Case("确认收货刚好15天", OK, (15, 15)),
    Case("昨天下午点的确认收货", OK, (1, 1)),
    Case("上个月中旬", OK, (35, 26)),
    Case("上个月二十几号", OK, (25, 17)),
    Case("大概是4月底", OK, (50, 46)),
    Case("2026年5月3号确认收货", OK, (43, 43)),
    Case("2026.5.3", OK, (43, 43)),
    Case("5/3确认的", OK, (43, 43)),
    Case("前几天刚确认", OK, (9, 2)),
    Case("确认收货一星期了", OK, (7, 7)),
    Case("两个多礼拜", OK, (20, 15)),
    Case("三个礼拜", OK, (21, 21)),
    Case("收到货差不多二十天", OK, (23, 17)),
    Case("订单是上周五完成的", OK, (3, 3)),
    Case("好像是31号", OK, (15, 15)),
    Case("今天刚收到货，确认了", OK, (0, 0)),
    Case("我也忘了具体哪天", UNKNOWN),
    Case("这个记不太清了", UNKNOWN),
    Case("不清楚，应该有一阵子了", UNKNOWN),
    Case("卖家天天打电话，我6号确认收货的", OK, (9, 9)),
    Case("他打了我二十多个电话", None),
    Case("我买的东西39.9元", None),
    Case("我的订单号是2384728347283748231", None),
    Case("投诉要在几天内", None),
    Case("交易成功多少天内可以投诉", None),
    Case("卖家说3天内给我答复", None),
    Case("去年12月底确认的", OK, (170, 166)),
    Case("元旦前后", OK, (9, 7), today=date(2027, 1, 10)),
    Case("交易成功已经一周多了", OK, (13, 8)),
    Case("确认收货到今天整整两周", OK, (14, 14)),
    Case("签收第十五天", OK, (14, 14)),
    Case("交易成功第16天了", OK, (15, 15)),
)
