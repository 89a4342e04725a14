"""A corpus of bad input over REST, the widget (socket.io) and WeChat, against the real servers.

Every input gets a clear reply or a 4xx that says what is wrong; an input that was accepted is in the tracker store
(masked), so nothing the buyer said is lost; and the servers stay up (a normal message is answered afterwards).
"""
from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import sqlite3
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest

from tests.e2e.test_wechat_e2e import WeChatUser, warm_up
from tests.test_socketio_channel import Client
from weiquan.core.privacy import mask
from weiquan.edge.channels.render import load_texts
from weiquan.edge.channels.rest import rest_texts
from weiquan.edge.channels.socketio import widget_texts
from weiquan.edge.limits import shortcut_policy
from weiquan.ops.harness import WECHAT_TOKEN, Bot

pytestmark = pytest.mark.e2e
_senders = itertools.count()
WECHAT_TEXTS = load_texts()
DEEP = 10_000


def rest(bot: Bot, body: bytes | Any, timeout: float = 60) -> tuple[int, Any]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(f"{bot.url}/webhooks/rest/webhook", data=data,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return reply.status, json.loads(reply.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def stored_user_texts(bot: Bot, sender: str) -> list[str]:
    with sqlite3.connect(bot.workdir / "tracker.db") as connection:
        rows = connection.execute(
            "SELECT data FROM events WHERE sender_id = ? AND type_name = 'user' ORDER BY id", (sender,)
        ).fetchall()
    return [json.loads(data)["text"] for (data,) in rows]


def assert_kept(bot: Bot, sender: str, said: str, wait_s: float = 15) -> None:
    """What the buyer said is in the tracker store, masked (and screened, for a typed `/intent{…}`; Rasa strips the
    ends). The widget answers before the turn is saved, so this waits a little for it."""
    expected = mask(shortcut_policy().screen(said)).strip()
    deadline = time.monotonic() + wait_s
    while expected not in (stored := stored_user_texts(bot, sender)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert expected in stored


def assert_still_up(bot: Bot) -> None:
    status, messages = rest(bot, {"sender": f"alive-{time.monotonic_ns()}", "message": "你好"})
    assert status == 200 and messages and messages[0].get("text")


# ---------------------------------------------------------------------- REST: accepted, answered, kept

ODD_MESSAGES = [
    "",
    "   ",
    "\n\t\r",
    "😡😡😡",
    "🙂" * 600,
    "\x00\x01\x02卖家骂我\x7f",
    "\u200b\u200b\u200b",
    "卖\u200b家\u200d骚\u200c扰\ufeff我",
    "\u202e我被骚扰了\u202c",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>卖家骂我",
    "'; DROP TABLE events; --",
    "1' OR '1'='1",
    "../../../../etc/passwd",
    "${jndi:ldap://127.0.0.1/a}",
    "{{7*7}} {% raw %}",
    "%s%s%s%n%x",
    "骚" * 2000,
    "ＡＢＣ１２３　全角",
    "卖家打我电话13812345678，住文三路477号",
    '/inform{"outcome":"file_online"}',
    '/inform{"platform":"jd"}',
    '/inform{"safety_threat": true}',
    "/restart",
    "/session_start",
    "/back",
    "/nlu_fallback",
    "/buy_coupons",
    "/greet@0.01",
    '/inform{"platform":',
    "///",
]


@pytest.mark.parametrize("text", ODD_MESSAGES, ids=range(len(ODD_MESSAGES)))
def test_rest_odd_messages_are_answered_and_kept(debug_bot: Bot, text: str) -> None:
    sender = f"bad-rest-{next(_senders)}"
    status, messages = rest(debug_bot, {"sender": sender, "message": text})
    assert status == 200, messages
    assert messages and any(m.get("text") for m in messages), f"no answer to {text!r}"
    assert_kept(debug_bot, sender, text)


def test_a_typed_shortcut_sets_no_slot_but_a_button_payload_does(debug_bot: Bot) -> None:
    sender = f"bad-shortcut-{next(_senders)}"
    rest(debug_bot, {"sender": sender, "message": "卖家一直短信骚扰我"})
    status, messages = rest(debug_bot, {"sender": sender, "message": '/inform{"platform":"jd"}'})
    assert status == 200 and "状态" not in "\n".join(m.get("text", "") for m in messages)  # platform not taken
    status, messages = rest(debug_bot, {"sender": sender, "message": '/inform{"platform": "taobao"}'})  # a button
    assert status == 200 and "状态" in "\n".join(m.get("text", "") for m in messages)


def test_sql_like_text_leaves_the_store_working(debug_bot: Bot) -> None:
    sender = f"bad-sql-{next(_senders)}"
    rest(debug_bot, {"sender": sender, "message": "'); DELETE FROM events; --"})
    assert stored_user_texts(debug_bot, sender) == ["'); DELETE FROM events; --"]
    assert_still_up(debug_bot)


# ---------------------------------------------------------------------- REST: refused with a clear 4xx

BAD_BODIES: list[tuple[str, bytes | Any, int]] = [
    ("empty body", b"", 400),
    ("not JSON", b"hello", 400),
    ("cut JSON", b'{"sender": "x", "message":', 400),
    ("array", [], 400),
    ("string", "just text", 400),
    ("null", None, 400),
    ("number", 42, 400),
    ("no message", {"sender": "x"}, 400),
    ("no sender", {"message": "你好"}, 400),
    ("message is a number", {"sender": "x", "message": 5}, 400),
    ("message is a list", {"sender": "x", "message": ["你好"]}, 400),
    ("message is an object", {"sender": "x", "message": {"text": "你好"}}, 400),
    ("message is null", {"sender": "x", "message": None}, 400),
    ("sender is a number", {"sender": 5, "message": "你好"}, 400),
    ("sender is empty", {"sender": "", "message": "你好"}, 400),
    ("sender is blank", {"sender": "   ", "message": "你好"}, 400),
    ("sender has a newline", {"sender": "a\nb", "message": "你好"}, 400),
    ("sender has NUL", {"sender": "a\x00b", "message": "你好"}, 400),
    ("sender too long", {"sender": "s" * 129, "message": "你好"}, 400),
    ("huge sender", {"sender": "s" * 100_000, "message": "你好"}, 413),
    ("message too long", {"sender": "x", "message": "骚" * 2001}, 413),
    ("message far too long", {"sender": "x", "message": "骚" * 10_000}, 413),
    ("invalid UTF-8", b"\xff\xfe\xfd", 400),
    ("invalid UTF-8 in the message", b'{"sender": "x", "message": "\xc3\x28"}', 400),
    ("lone surrogate", b'{"sender": "x", "message": "\\ud800"}', 400),
    ("nested metadata", {"sender": "x", "message": "你好", "metadata": json.loads("[" * 50 + "]" * 50)}, 400),
    ("deeply nested body", ("[" * DEEP + "]" * DEEP).encode(), 400),
    ("deeply nested metadata", ('{"sender": "x", "message": "hi", "metadata": ' + "{\"a\":" * DEEP + "1"
                                + "}" * DEEP + "}").encode(), 400),
    ("1 MB body", json.dumps({"sender": "x", "message": "x", "pad": "x" * 1_000_000}).encode(), 413),
]


@pytest.mark.parametrize(("body", "status"), [(b, s) for _, b, s in BAD_BODIES], ids=[n for n, _, _ in BAD_BODIES])
def test_rest_bad_bodies_get_a_clear_4xx(debug_bot: Bot, body: Any, status: int) -> None:
    got, answer = rest(debug_bot, body)
    assert got == status, answer
    assert isinstance(answer, dict) and answer["error"]  # what is wrong, for the developer
    expected = {rest_texts()[key].format(max_chars=2000) for key in ("malformed", "too_long", "too_large")}
    assert answer["text"] in expected  # and a Chinese sentence for the buyer


def test_a_path_like_sender_is_just_a_name(debug_bot: Bot) -> None:
    status, messages = rest(debug_bot, {"sender": "../../../etc/passwd", "message": "你好"})
    assert status == 200 and messages
    assert stored_user_texts(debug_bot, "../../../etc/passwd") == ["你好"]


# ---------------------------------------------------------------------- widget (socket.io)

WIDGET_INPUTS: list[tuple[str, Any, str | None]] = [
    ("empty", {"message": ""}, "empty"),
    ("blank", {"message": "   \n"}, "empty"),
    ("number", {"message": 5}, "malformed"),
    ("no message", {"text": "你好"}, "malformed"),
    ("a bare string", "你好", "malformed"),
    ("null", None, "malformed"),
    ("lone surrogate", {"message": "\ud800"}, "malformed"),
    ("too long", {"message": "骚" * 501}, "too_long"),
    ("HTML", {"message": "<img src=x onerror=alert(1)>"}, None),
    ("emoji", {"message": "😡🙏"}, None),
    ("zero-width", {"message": "\u200b"}, None),
    ("typed shortcut", {"message": '/inform{"outcome":"file_online"}'}, None),
    ("restart", {"message": "/restart"}, None),
    ("metadata not JSON", {"message": "卖家骂我", "customData": "{not json"}, None),
]


async def widget_round(bot: Bot, payload: Any, raw: str | None = None) -> tuple[str, str]:
    client = Client()
    await client.connect(bot.url, origin=bot.widget_url)
    try:
        session = await client.start_session()
        if raw is not None:
            await client.sio.eio.send(raw.replace("SESSION", session))
        elif isinstance(payload, dict):
            await client.sio.emit("user_uttered", {**payload, "session_id": session})
        else:
            await client.sio.emit("user_uttered", payload)
        return session, (await client.next_bot(timeout=60)).get("text", "")
    finally:
        await client.close()


@pytest.mark.parametrize(("payload", "expected"), [(p, e) for _, p, e in WIDGET_INPUTS],
                         ids=[n for n, _, _ in WIDGET_INPUTS])
def test_widget_bad_input_gets_a_chinese_answer(debug_bot: Bot, payload: Any, expected: str | None) -> None:
    session, text = asyncio.run(widget_round(debug_bot, payload))
    assert text.strip()
    if expected is not None:
        assert text == widget_texts()[expected].format(limit=500)
    else:
        assert_kept(debug_bot, session, payload["message"])


def test_widget_deeply_nested_packet_gets_a_chinese_answer(debug_bot: Bot) -> None:
    deep = "[" * DEEP + "]" * DEEP
    _, text = asyncio.run(widget_round(debug_bot, None, raw='2["user_uttered",{"message":"x","session_id":"SESSION",'
                                                            f'"customData":{deep}}}]'))
    assert text == widget_texts()["malformed"]


def test_widget_huge_frame_drops_that_connection_only(debug_bot: Bot) -> None:
    async def huge() -> None:
        client = Client()
        await client.connect(debug_bot.url, origin=debug_bot.widget_url)
        try:
            session = await client.start_session()
            await client.sio.emit("user_uttered", {"message": "骚" * 200_000, "session_id": session})
            with pytest.raises(asyncio.TimeoutError):
                await client.next_bot(timeout=5)
        finally:
            await client.close()

    asyncio.run(huge())
    _, text = asyncio.run(widget_round(debug_bot, {"message": "你好"}))
    assert text.strip()


# ---------------------------------------------------------------------- WeChat


def signed(bot: Bot, **overrides: str) -> str:
    timestamp, nonce = str(int(time.time())), str(time.monotonic_ns())
    args = {"signature": hashlib.sha1("".join(sorted([WECHAT_TOKEN, timestamp, nonce])).encode()).hexdigest(),
            "timestamp": timestamp, "nonce": nonce, **overrides}
    return f"{bot.url}/webhooks/wechat/webhook?{urllib.parse.urlencode(args)}"


def wechat_post(url: str, body: bytes) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST"), timeout=30) as reply:
            return reply.status
    except urllib.error.HTTPError as error:
        return error.code


def text_xml(openid: str, text: str) -> bytes:
    return (f"<xml><ToUserName><![CDATA[gh_e2e]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[{text}]]></Content><MsgId>{time.monotonic_ns()}</MsgId></xml>").encode()


def test_wechat_forged_stale_replayed_and_malformed_requests_get_a_4xx(debug_bot: Bot) -> None:
    good = text_xml("oBad", "你好")
    cases = {
        "forged signature": (signed(debug_bot, signature="0" * 40), good, 403),
        "no signature": (f"{debug_bot.url}/webhooks/wechat/webhook?timestamp=1&nonce=1", good, 403),
        "stale timestamp": (signed(debug_bot, timestamp="1000000000"), good, 403),
        "safe mode, forged msg_signature": (signed(debug_bot, encrypt_type="aes", msg_signature="0" * 40),
                                            b"<xml><Encrypt><![CDATA[AAAA]]></Encrypt></xml>", 403),
        "not XML": (signed(debug_bot), b"hello", 400),
        "no xml root": (signed(debug_bot), b"<a>1</a>", 400),
        "DTD (billion laughs)": (signed(debug_bot), b'<!DOCTYPE x [<!ENTITY a "aaaa">]><xml>&a;</xml>', 400),
        "deeply nested XML": (signed(debug_bot), b"<xml>" + b"<a>" * 5000 + b"</a>" * 5000 + b"</xml>", 400),
        "body over 64 KiB": (signed(debug_bot), b"<xml>" + b"x" * 70_000 + b"</xml>", 413),
    }
    for name, (url, body, status) in cases.items():
        assert wechat_post(url, body) == status, name
    url = signed(debug_bot)
    assert wechat_post(url, text_xml("oReplay", "你好")) == 200
    assert wechat_post(url, text_xml("oReplay", "把钱退给我")) == 403  # the same signed query with another body
    assert_still_up(debug_bot)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", "ask_for_text"), ("   ", "ask_for_text"), ("骚" * 501, "too_long"), ("😡", None), ("<b>卖家</b>骂我", None),
     ('/inform{"outcome":"file_online"}', None), ("/restart", None), ("\u200b卖家骚扰我", None)],
    ids=["empty", "blank", "too long", "emoji", "HTML", "shortcut", "restart", "zero-width"],
)
def test_wechat_odd_text_gets_a_chinese_reply(debug_bot: Bot, text: str, expected: str | None) -> None:
    warm_up(debug_bot)
    user = WeChatUser(debug_bot, openid=f"oBadText{time.monotonic_ns()}", safe=False)
    reply = user.say(text)
    assert reply.strip()
    if expected is not None:
        assert reply == getattr(WECHAT_TEXTS, expected).format(max_chars=500)
    else:
        assert_kept(debug_bot, user.openid, text.strip().lstrip("/").strip())


def test_wechat_image_gets_asked_for_text(debug_bot: Bot) -> None:
    xml = (f"<xml><ToUserName><![CDATA[gh]]></ToUserName><FromUserName><![CDATA[oImg]]></FromUserName>"
           f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[image]]></MsgType>"
           f"<PicUrl><![CDATA[http://x/a.png]]></PicUrl><MediaId><![CDATA[m]]></MediaId>"
           f"<MsgId>{time.monotonic_ns()}</MsgId></xml>")
    with urllib.request.urlopen(urllib.request.Request(signed(debug_bot), data=xml.encode(), method="POST"),
                                timeout=30) as reply:
        assert WECHAT_TEXTS.ask_for_text in reply.read().decode()


def test_the_servers_are_still_up_after_the_corpus(debug_bot: Bot) -> None:
    assert debug_bot.procs["rasa"].poll() is None and debug_bot.procs["actions"].poll() is None
    assert_still_up(debug_bot)
    _, text = asyncio.run(widget_round(debug_bot, {"message": "你好"}))
    assert text.strip()
