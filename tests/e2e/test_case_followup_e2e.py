"""Issue 20's slips as a buyer meets them over REST on the real servers.

- A date typed without a year that would still lie ahead ("12月17日" typed on 12月7日) is confirmed with one question
  that names the year; it is never ruled on silently as a year ago.
- After a ruling, more evidence or a corrected fact updates the same case's ruling; only "另一个订单" starts the form
  again from its first question.
- Two items joined by 和 ("有聊天截图和短信") are both ticked.
- The penalty answer says 视为严重违规 once.
"""
from __future__ import annotations

from datetime import timedelta

import pytest

from tests.e2e.test_dialogue_e2e import (
    DATE_QUESTION,
    EVIDENCE_QUESTION,
    PLATFORM_QUESTION,
    STATUS_QUESTION,
    Chat,
    today,
)

pytestmark = pytest.mark.e2e

CONFIRM = "想跟你确认一下"
RULED = "最晚投诉日"  # within the window
PHONE = "花名"  # past it: the phone script


def test_a_date_still_to_come_this_year_is_confirmed_with_its_year_before_any_ruling(bot) -> None:
    chat = Chat(bot)
    assert DATE_QUESTION in chat.say("淘宝卖家天天打电话骂我，已经交易成功了")
    ahead = (today() + timedelta(days=10)).date()
    check = chat.say(f"{ahead.month}月{ahead.day}日交易成功的")
    assert CONFIRM in check and f"{ahead.year - 1}年{ahead.month}月{ahead.day}日" in check
    assert RULED not in check and PHONE not in check
    assert {"是的", "不是"} <= set(chat.buttons())
    again = chat.say("不是")
    assert "带上年份" in again and DATE_QUESTION in again  # asked for the date once more, not ruled on
    assert EVIDENCE_QUESTION in chat.say("5天前")


def test_a_yes_to_the_check_takes_the_date(bot) -> None:
    chat = Chat(bot)
    chat.say("淘宝卖家天天打电话骂我，已经交易成功了")
    ahead = (today() + timedelta(days=10)).date()
    assert CONFIRM in chat.say(f"{ahead.month}月{ahead.day}号确认收货的")
    assert EVIDENCE_QUESTION in chat.say("是的")


def test_evidence_added_after_a_ruling_updates_that_ruling_and_only_another_order_starts_over(bot) -> None:
    chat = Chat(bot)
    assert EVIDENCE_QUESTION in chat.say("淘宝买的，交易成功5天了，卖家一直打电话骂我")
    first = chat.say("没有")
    assert RULED in first and first.count("✅") == 0
    update = chat.say("有短信")
    assert RULED in update and update.count("✅") == 1  # the same case, with the SMS ticked
    assert PLATFORM_QUESTION not in update and STATUS_QUESTION not in update and EVIDENCE_QUESTION not in update
    more = chat.say("还有旺旺聊天截图")
    assert more.count("✅") == 2
    new_case = chat.say("还有另一个订单，那个卖家也天天打电话")
    assert PLATFORM_QUESTION in new_case and RULED not in new_case


def test_a_corrected_platform_after_a_ruling_gives_the_tmall_answer(bot) -> None:
    chat = Chat(bot)
    chat.say("淘宝买的，交易成功5天了，卖家一直打电话骂我")
    assert RULED in chat.say("有短信")
    corrected = chat.say("不对，是天猫")
    assert "天猫" in corrected and PLATFORM_QUESTION not in corrected and RULED not in corrected


def test_two_items_joined_by_he_are_both_ticked(bot) -> None:
    chat = Chat(bot)
    assert EVIDENCE_QUESTION in chat.say("淘宝买的，交易成功5天了，卖家一直打电话骂我")
    ruling = chat.say("有聊天截图和短信")
    assert RULED in ruling and ruling.count("✅") == 2


def test_the_penalty_answer_says_serious_violation_once(bot) -> None:
    reply = Chat(bot).say("卖家会受到什么处罚")
    assert "48 分" in reply and reply.count("视为严重违规") == 1
