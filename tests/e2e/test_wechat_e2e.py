"""A whole complaint conversation through the real servers' WeChat webhook, as WeChat would send it: signed XML, once in
plaintext and once in safe mode. Needs a trained model (the `bot` fixture starts the servers with the WeChat settings
of tests/e2e/conftest.py).

The driver answers the bot the way a buyer would: it picks numbered-menu options by their titles and answers free-text
questions from a small table, until the bot gives its ruling.
"""
from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import xmltodict
import yaml
from wechatpy.crypto import WeChatCrypto

from weiquan.analytics.store import AnalyticsStore, database_url
from weiquan.core.texts import load_text_file
from weiquan.edge.channels.render import load_texts
from weiquan.ops.handoff_harness import eventually
from weiquan.ops.harness import ROOT, WECHAT_AES_KEY, WECHAT_APP_ID, WECHAT_TOKEN, Bot

pytestmark = pytest.mark.e2e

ACCOUNT = "gh_e2e_account"
FILING_LINK = "list_bought_items.htm"
MAX_TURNS = 12
WECHAT_WAIT_S = 5  # WeChat waits this long for a passive reply, then retries
WECHAT_ATTEMPTS = 3
TEXTS = load_texts()
# One numbered-menu line as the channel renders it (wechat_texts.yml: menu_item).
MENU_LINE = re.compile(
    "^" + re.escape(TEXTS.menu_item).replace(r"\{number\}", r"(\d+)").replace(r"\{title\}", "(.+)") + "$", re.MULTILINE
)
_msg_ids = itertools.count(int(time.time() * 1000))

# Menu options a buyer with the story below would pick, best first (matched against the option titles).
PREFERRED_OPTIONS = ("淘宝", "交易成功", "打电话", "电话", "辱骂", "旺旺聊天截图", "截图", "被卖家骚扰")
# Free-text answers to the bot's questions: (words in the question, the answer). First match wins.
ANSWERS = (
    (("哪一天", "哪天", "几天", "多久", "什么时候", "日期"), "{days}天前交易成功的"),
    (("淘宝还是天猫", "平台"), "淘宝"),
    (("状态", "确认收货"), "交易成功了"),
    (("具体做了什么", "怎么骚扰", "什么方式", "做了什么"), "天天打电话骂我"),
    (("证据", "截图", "举证"), "有旺旺聊天截图"),
)


# Every OpenID the end-to-end tests used: tests/e2e/test_zz_logs.py checks that none of them reached a log whole.
OPENIDS_USED: set[str] = set()


def real_openid(tag: str) -> str:
    """An OpenID shaped like WeChat's (28 characters of [A-Za-z0-9_-], starting with "o"), stable for a tag."""
    if len(tag) == 28 and tag.startswith("o") and re.fullmatch(r"[A-Za-z0-9_-]+", tag):
        return tag
    digest = base64.urlsafe_b64encode(hashlib.sha256(tag.encode()).digest()).decode().rstrip("=")
    return "o" + digest[:27]


@dataclass
class WeChatUser:
    """One follower talking to the account through WeChat's servers (with an OpenID shaped like WeChat's)."""

    bot: Bot
    openid: str
    safe: bool
    crypto: WeChatCrypto = field(default_factory=lambda: WeChatCrypto(WECHAT_TOKEN, WECHAT_AES_KEY, WECHAT_APP_ID))
    transcript: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.openid = real_openid(self.openid)
        OPENIDS_USED.add(self.openid)

    @property
    def url(self) -> str:
        return f"{self.bot.url}/webhooks/wechat/webhook"

    def post(self, xml: str) -> str:
        """Delivers one message like WeChat does: 5 s per attempt, up to 3 attempts of the same message."""
        timestamp, nonce = str(int(time.time())), str(next(_msg_ids))
        args = {
            "signature": hashlib.sha1("".join(sorted([WECHAT_TOKEN, timestamp, nonce])).encode()).hexdigest(),
            "timestamp": timestamp,
            "nonce": nonce,
            "openid": self.openid,
        }
        body = xml
        if self.safe:
            sealed = xmltodict.parse(self.crypto.encrypt_message(xml, nonce, timestamp))["xml"]
            args.update(encrypt_type="aes", msg_signature=sealed["MsgSignature"])
            body = (
                f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
                f"<Encrypt><![CDATA[{sealed['Encrypt']}]]></Encrypt></xml>"
            )
        url = f"{self.url}?{urllib.parse.urlencode(args)}"
        for _ in range(WECHAT_ATTEMPTS):
            request = urllib.request.Request(url, data=body.encode("utf-8"), method="POST")
            try:
                with urllib.request.urlopen(request, timeout=WECHAT_WAIT_S) as response:
                    assert response.status == 200
                    answer = response.read().decode("utf-8")
                    break
            except TimeoutError:
                continue  # WeChat hangs up after 5 s and sends the same message again
        else:
            pytest.fail(f"no answer within {WECHAT_ATTEMPTS} attempts of {WECHAT_WAIT_S} s")
        assert answer not in ("success", ""), (
            "the answer missed the passive-reply window (or needed several messages), so it went to the "
            "customer-service API, which end-to-end tests cannot see; is the machine overloaded?"
        )
        if self.safe:
            sealed = xmltodict.parse(answer)["xml"]
            answer = self.crypto.decrypt_message(answer, sealed["MsgSignature"], sealed["TimeStamp"], sealed["Nonce"])
        reply = xmltodict.parse(answer)["xml"]
        assert reply["ToUserName"] == self.openid and reply["MsgType"] == "text"
        return str(reply["Content"])

    def text_xml(self, text: str) -> str:
        return (
            f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><FromUserName><![CDATA[{self.openid}]]></FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[{text}]]></Content><MsgId>{next(_msg_ids)}</MsgId></xml>"
        )

    def say(self, text: str) -> str:
        """Sends a text and returns the whole answer (fetching the further parts of a long one)."""
        parts = [self.post(self.text_xml(text))]
        while parts[-1].endswith(TEXTS.more_hint) and len(parts) < 10:
            parts.append(self.post(self.text_xml(TEXTS.more_keywords[0])))
        reply = "\n\n".join(parts)
        self.transcript.append((text, reply))
        return reply

    def subscribe(self) -> str:
        xml = (
            f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><FromUserName><![CDATA[{self.openid}]]></FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
            f"<Event><![CDATA[subscribe]]></Event><EventKey><![CDATA[]]></EventKey></xml>"
        )
        reply = self.post(xml)
        self.transcript.append(("<subscribe>", reply))
        return reply

    def dump(self) -> str:
        return "\n".join(f"买家：{said}\n助手：{reply}\n" for said, reply in self.transcript)


def next_answer(reply: str, days: int) -> str | None:
    """What the buyer says next: a menu number when the bot offers options, else an answer from the table."""
    options = {int(number): title for number, title in MENU_LINE.findall(reply)} if TEXTS.menu_hint in reply else {}
    if options:
        for wanted in PREFERRED_OPTIONS:
            for number, title in sorted(options.items()):
                if wanted in title:
                    return str(number)
        return "1"
    for words, answer in ANSWERS:
        if any(word in reply for word in words):
            return answer.format(days=days)
    return None  # the bot asked nothing a buyer with this story would know how to answer


def complain(user: WeChatUser, days: int, done: Callable[[str], bool]) -> str:
    greeting = user.subscribe()
    assert greeting.strip(), "the welcome on subscribe must come from the bot"
    reply = user.say(f"淘宝买的，交易成功{days}天了，卖家天天打电话骂我")
    replies = [reply]
    for _ in range(MAX_TURNS):
        if done("\n".join(replies)):
            return "\n".join(replies)
        answer = next_answer(reply, days)
        if answer is None:
            pytest.fail(f"the bot neither ruled nor asked a known question:\n{user.dump()}")
        reply = user.say(answer)
        replies.append(reply)
    pytest.fail(f"no ruling after {MAX_TURNS} turns:\n{user.dump()}")


def warm_up(bot: Bot) -> None:
    """The first turn after start-up is slow (TensorFlow builds its graphs); keep it out of the 4-second window."""
    data = json.dumps({"sender": "e2e-warm-up", "message": "你好"}).encode("utf-8")
    request = urllib.request.Request(
        f"{bot.url}/webhooks/rest/webhook", data=data, headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        assert response.status == 200


@pytest.mark.parametrize("safe", [False, True], ids=["plaintext", "safe-mode"])
def test_eligible_complaint_gets_the_filing_link(bot: Bot, safe: bool) -> None:
    warm_up(bot)
    user = WeChatUser(bot, openid=f"oE2E-eligible-{'safe' if safe else 'plain'}-{int(time.time())}", safe=safe)
    ruling = complain(user, days=5, done=lambda text: FILING_LINK in text)
    assert FILING_LINK in ruling, user.dump()


@pytest.mark.parametrize("safe", [False, True], ids=["plaintext", "safe-mode"])
def test_complaint_past_the_window_gets_the_phone_script(bot: Bot, safe: bool) -> None:
    warm_up(bot)
    user = WeChatUser(bot, openid=f"oE2E-late-{'safe' if safe else 'plain'}-{int(time.time())}", safe=safe)
    ruling = complain(user, days=20, done=lambda text: "小二" in text and "花名" in text)
    assert "小二" in ruling and "花名" in ruling, user.dump()


def analytics_store(bot: Bot) -> AnalyticsStore:
    """The analytics store the running server's event broker writes (its endpoints file, $ANALYTICS_DB first)."""
    endpoints = yaml.safe_load(bot.write_endpoints().read_text(encoding="utf-8"))
    db = bot.env().get("ANALYTICS_DB") or str(endpoints["event_broker"]["db"])
    path = Path(db) if "://" in db or Path(db).is_absolute() else ROOT / db  # the servers run in the checkout
    return AnalyticsStore(database_url(str(path)))


def test_a_buyer_rates_the_ruling_and_it_is_stored_not_sent_to_the_bot(bot: Bot) -> None:
    """The ruling's reply ends with its numbered "anything else?" menu, so it asks for 👍/👎 (or the words) rather than
    numbers; the buyer's 👍 is stored as a rating of the ruling through the server's event broker and thanked for, and
    never reaches the bot; the next message ("1": the menu's first option) goes to the bot as usual."""
    warm_up(bot)
    rating = load_text_file(ROOT / "weiquan" / "edge" / "channels" / "wechat_texts.yml")
    user = WeChatUser(bot, openid=f"oE2E-rating-{int(time.time())}", safe=True)
    ruling = complain(user, days=5, done=lambda text: FILING_LINK in text)
    asked = rating["rating_prompt_with_menu"] if TEXTS.menu_hint in ruling.split(FILING_LINK)[-1] else rating[
        "rating_prompt"]
    assert ruling.rstrip().endswith(asked), user.dump()
    assert user.say("👍") == rating["rating_thanks_up"], user.dump()
    store = analytics_store(bot)
    stored = eventually(lambda: store.latest_event(user.openid, "feedback"), 30, "the rating in the analytics store")
    assert stored["rating"] == "up" and stored["channel"] == "wechat", stored
    assert str(stored["rated_response"]).startswith("utter_complaint_"), stored
    said = [event.get("text") for event in store.events(0, time.time() + 60)
            if event["sender_id"] == user.openid and event.get("event") == "user"]
    assert "👍" not in said, said  # the rating never reached Rasa as a message
    assert user.say("1") not in (rating["rating_thanks_up"], rating["rating_thanks_down"]), user.dump()


def test_forged_request_is_refused_by_the_running_server(bot: Bot) -> None:
    request = urllib.request.Request(
        f"{bot.url}/webhooks/wechat/webhook?signature={'0' * 40}&timestamp={int(time.time())}&nonce=1",
        data=b"<xml/>",
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 403
