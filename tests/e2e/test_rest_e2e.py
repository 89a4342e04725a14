"""Three complete conversations and bad input, through the REST channel of the real running servers."""
from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid

import pytest

pytestmark = pytest.mark.e2e


def post(bot, body: bytes | dict, timeout: float = 120) -> tuple[int, object]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(f"{bot.url}/webhooks/rest/webhook", data=data,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return reply.status, json.load(reply)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


class Conversation:
    def __init__(self, bot) -> None:
        self.bot, self.sender = bot, f"e2e-{uuid.uuid4().hex[:8]}"

    def say(self, text: str) -> str:
        status, messages = post(self.bot, {"sender": self.sender, "message": text})
        assert status == 200
        assert messages, f"no reply to {text!r}"
        return "\n".join(m.get("text", "") for m in messages)


def test_eligible_buyer_gets_both_filing_paths_with_links_and_a_last_day(bot) -> None:
    chat = Conversation(bot)
    assert "淘宝卖家" in chat.say("你好")
    reply = chat.say("淘宝买的，交易成功5天了，卖家天天打电话骂我")
    assert "证据" in reply  # platform, status, date and harassment were all in the first message
    ruling = chat.say("有聊天截图")
    assert "list_bought_items.htm" in ruling and "order_list.jhtml" in ruling
    assert "最晚投诉日" in ruling and "还剩 10 天" in ruling
    assert "依据：淘宝恶意骚扰规则（2013 年版）" in ruling
    assert "12 分" in ruling and "3 个工作日" in ruling


def test_buyer_past_the_window_gets_the_phone_script(bot) -> None:
    chat = Conversation(bot)
    assert "淘宝还是天猫" in chat.say("卖家一直短信骚扰我")
    assert "状态" in chat.say("淘宝")
    assert "哪一天" in chat.say("交易成功了")
    assert "已买到的宝贝" in chat.say("不记得了")  # tells how to look the date up, then asks again
    assert "证据" in chat.say("20天前")
    ruling = chat.say("没有证据")
    assert "超过了在线投诉的 15 天期限" in ruling
    assert "花名" in ruling and "录音" in ruling and "站内信" in ruling
    assert "list_bought_items.htm" not in ruling


def test_a_threat_leads_with_the_police(bot) -> None:
    chat = Conversation(bot)
    status, messages = post(bot, {"sender": chat.sender, "message": "卖家说知道我家住哪，要上门弄死我"})
    assert status == 200
    assert "110" in messages[0]["text"]
    assert "淘宝还是天猫" in messages[-1]["text"]  # then the complaint goes on


def test_a_correction_mid_form_is_taken(bot) -> None:
    chat = Conversation(bot)
    chat.say("淘宝买的，卖家天天发短信骂我")
    reply = chat.say("不对，是天猫")
    assert "证据" in reply  # Tmall needs no trade status or date
    ruling = chat.say("有截图")
    assert "非天猫" in ruling


@pytest.mark.parametrize("text", ["", "   ", "😡😡😡", "卖家骚扰我" * 300])
def test_odd_but_valid_messages_get_a_reply(bot, text: str) -> None:
    status, messages = post(bot, {"sender": f"odd-{uuid.uuid4().hex[:6]}", "message": text})
    assert status == 200
    assert messages and messages[0].get("text")


@pytest.mark.parametrize(
    ("body", "status"),
    [(b'{"sender": "x", "message":', 400), (b"[]", 400), (b'{"sender": "x"}', 400),
     (json.dumps({"sender": "x", "message": "骚" * 10_000}).encode(), 413)],
)
def test_broken_requests_get_a_4xx(bot, body: bytes, status: int) -> None:
    assert post(bot, body)[0] == status
