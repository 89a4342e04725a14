"""WeChat protocol (weiquan/edge/channels/wechat.py, no HTTP): public signature vectors, the official safe-mode samples
(wechatpy's tests/test_crypto.py and WeChat's own WXBizMsgCrypt sample), round trips, forged and stale requests, safe
XML parsing, log masking and the bounded caches."""
from __future__ import annotations

import base64
import hashlib
import time

import pytest
import wechatpy.crypto
import xmltodict
from wechatpy.exceptions import InvalidSignatureException
from wechatpy.utils import check_signature

from weiquan.edge.channels.wechat import (
    Rejected,
    TtlCache,
    WeChatProtocol,
    safe_parse_xml,
)

# Public plain-signature vectors (engineering notes).
PLAIN_VECTORS = [
    ("test", "1410685589", "test", "f21891de399b4e33a1a93c9a7b8a8fffb5a443ff"),
    ("AAAAA", "1714036504", "1514711492", "f464b24fc39322e44b38aa78f5edd27bd1441696"),
]

# wechatpy tests/test_crypto.py: the official WXBizMsgCrypt constants (the enterprise flavour; the algorithm is the
# same for Official Accounts, with the corp id in the AppID's place).
WP_TOKEN = "123456"
WP_AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
WP_APP_ID = "wx49f0ab532d5d035a"
WP_ECHO = dict(
    signature="dd6b9c95b495b3f7e2901bfbc76c664930ffdb96",
    timestamp="1411443780",
    nonce="437374425",
    echostr="4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q==",
)
WP_ENCRYPTED = (
    "RgqEoJj5A4EMYlLvWO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPatfjsu6IHCrsTyeDXzF6Bv283dGymzxh6ydJ"
    "RvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD8XzaFYgm7iTdaXpXaG4+BiYyolBug/gYNx410cvkKR2/nPwBiT+P4hIiOAQqGp/Tyw"
    "ZBtDh1yCF2KOd0gpiMZ5jSw3e29mTvmUHzkVQiMS6td7vXUaWOMZnYZlF3So2SjHnwh4jYFxdgpkHHqIrH/54SNdshoQgWYEvccTKe7FS709/5t6"
    "NMxuGhcUGAPOQipvWTT4dShyqio7mlsl5noTrb++x6En749zCpQVhDpbV6GDnTbcX2e8K9QaNWHp91eBdCRxthuL0="
)
WP_DECRYPT_ARGS = dict(
    encrypt_type="aes",
    msg_signature="74d92dfeb87ba7c714f89d98870ae5eb62dff26d",
    timestamp="1411525903",
    nonce="461056294",
)
WP_REPLY = """<xml>
<MsgType><![CDATA[text]]></MsgType>
<Content><![CDATA[test]]></Content>
<FromUserName><![CDATA[wx49f0ab532d5d035a]]></FromUserName>
<ToUserName><![CDATA[messense]]></ToUserName>
<AgentID>1</AgentID>
<CreateTime>1411525903</CreateTime>
</xml>"""
WP_SEALED = """<xml>
<Encrypt><![CDATA[9s4gMv99m88kKTh/H8IdkOiMg6bisoy3ypwy9H4hvSPe9nsGaqyw5hhSjdYbcrKk+j3nba4HMOTzHrluLBYqxgNcBqGsL8GqxlhZgURnAtObvesEl5nZ+uBE8bviY0LWke8Zy9V/QYKxNV2FqllNXcfmstttyIkMKCCmVbCFM2JTF5wY0nFhHZSjPUL2Q1qvSUCUld+/WIXrx0oyKQmpB6o8NRrrNrsDf03oxI1p9FxUgMnwKKZeOA/uu+2IEvEBtb7muXsVbwbgX05UPPJvFurDXafG0RQyPR+mf1nDnAtQmmNOuiR5MIkdQ39xn1vWwi1O5oazPoQJz0nTYjxxEE8kv3kFxtAGVRe3ypD3WeK2XeFYFMNMpatF9XiKzHo3]]></Encrypt>
<MsgSignature><![CDATA[407518b7649e86ef23978113f92d27afa9296533]]></MsgSignature>
<TimeStamp>1411525903</TimeStamp>
<Nonce><![CDATA[461056294]]></Nonce>
</xml>"""

# WeChat's own Official Account sample (WXBizMsgCrypt "spamtest"), a text message from a follower.
MP_TOKEN = "spamtest"
MP_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
MP_APP_ID = "wx2c2769f8efd9abc2"
MP_BODY = (
    "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName><FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]>"
    "</FromUserName><CreateTime>1409735668</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[abcdteT]]>"
    "</Content><MsgId>6054768590064713728</MsgId><Encrypt><![CDATA[hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655H"
    "uD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWN"
    "lZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCO"
    "p3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo"
    "5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE=]]></Encrypt></xml>"
)
MP_ARGS = dict(
    encrypt_type="aes",
    msg_signature="5d197aaffba7e9b25a30732f161a50dee96bd5fa",
    timestamp="1409735669",
    nonce="1320562132",
)

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE xml [
 <!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
 <!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;"><!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;">
 <!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;"><!ENTITY g "&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;">
 <!ENTITY h "&g;&g;&g;&g;&g;&g;&g;&g;&g;&g;"><!ENTITY i "&h;&h;&h;&h;&h;&h;&h;&h;&h;&h;">
]>
<xml><ToUserName>gh</ToUserName><FromUserName>o1</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>&i;</Content><MsgId>1</MsgId></xml>"""
XXE = b"""<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<xml><FromUserName>o1</FromUserName><MsgType>text</MsgType><Content>&x;</Content></xml>"""


def clock(at: float):
    return lambda: at


def signed(token: str, timestamp: str, nonce: str) -> dict[str, str]:
    return {"signature": hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest(),
            "timestamp": timestamp, "nonce": nonce}


# ---------------------------------------------------------------- plain signatures


@pytest.mark.parametrize(("token", "timestamp", "nonce", "expected"), PLAIN_VECTORS)
def test_public_signature_vectors(token: str, timestamp: str, nonce: str, expected: str) -> None:
    protocol = WeChatProtocol(token, now=clock(int(timestamp)))
    assert protocol.signature(timestamp, nonce) == expected
    check_signature(token, expected, timestamp, nonce)  # wechatpy agrees
    protocol.check_request({"signature": expected, "timestamp": timestamp, "nonce": nonce})
    protocol.check_request({"signature": expected.upper(), "timestamp": timestamp, "nonce": nonce})


@pytest.mark.parametrize(("token", "timestamp", "nonce", "expected"), PLAIN_VECTORS)
def test_url_check_echoes_echostr(token: str, timestamp: str, nonce: str, expected: str) -> None:
    protocol = WeChatProtocol(token, now=clock(int(timestamp) + 5))
    args = {"signature": expected, "timestamp": timestamp, "nonce": nonce, "echostr": "4242"}
    assert protocol.verify_url(args) == "4242"
    with pytest.raises(Rejected) as missing:
        protocol.verify_url({**args, "echostr": ""})
    assert missing.value.status == 400


@pytest.mark.parametrize(
    "change",
    [
        {"signature": "0" * 40},
        {"nonce": "tesu"},
        {"timestamp": "1410685590"},
        {"signature": ""},
        {"nonce": ""},
        {"timestamp": "abc"},
    ],
)
def test_forged_requests_are_403(change: dict[str, str]) -> None:
    protocol = WeChatProtocol("test", now=clock(1410685589))
    args = {"signature": PLAIN_VECTORS[0][3], "timestamp": "1410685589", "nonce": "test", **change}
    with pytest.raises(Rejected) as rejected:
        protocol.check_request(args)
    assert rejected.value.status == 403


def test_wrong_token_is_403() -> None:
    with pytest.raises(Rejected):
        WeChatProtocol("other", now=clock(1410685589)).check_request(
            {"signature": PLAIN_VECTORS[0][3], "timestamp": "1410685589", "nonce": "test"}
        )


@pytest.mark.parametrize(
    ("skew", "accepted"), [(0, True), (300, True), (-300, True), (301, False), (-301, False), (86_400, False)]
)
def test_stale_and_future_timestamps(skew: int, accepted: bool) -> None:
    protocol = WeChatProtocol("test", now=clock(1410685589 + skew), max_skew_s=300)
    args = {"signature": PLAIN_VECTORS[0][3], "timestamp": "1410685589", "nonce": "test"}
    if accepted:
        protocol.check_request(args)
    else:
        with pytest.raises(Rejected, match="stale"):
            protocol.check_request(args)


# ---------------------------------------------------------------- safe mode: official samples


def test_wechatpy_sample_url_check_signature_and_echostr() -> None:
    protocol = WeChatProtocol(WP_TOKEN, WP_APP_ID, WP_AES_KEY)
    assert protocol.signature(WP_ECHO["timestamp"], WP_ECHO["nonce"], WP_ECHO["echostr"]) == WP_ECHO["signature"]
    assert protocol.crypto is not None
    # The sample's echostr is itself encrypted (the enterprise URL check); it decrypts to a number for our AppID.
    echo = protocol.crypto._check_signature(  # noqa: SLF001 - wechatpy's own decryption of the sample
        WP_ECHO["signature"], WP_ECHO["timestamp"], WP_ECHO["nonce"], WP_ECHO["echostr"], wechatpy.crypto.PrpCrypto
    )
    assert echo.isdigit()
    with pytest.raises(InvalidSignatureException):
        protocol.crypto._check_signature(  # noqa: SLF001
            WP_ECHO["signature"], WP_ECHO["timestamp"], "437374424", WP_ECHO["echostr"], wechatpy.crypto.PrpCrypto
        )


def test_wechatpy_sample_decrypts_through_our_protocol() -> None:
    protocol = WeChatProtocol(WP_TOKEN, WP_APP_ID, WP_AES_KEY)
    body = (
        f"<xml><ToUserName><![CDATA[{WP_APP_ID}]]></ToUserName><Encrypt><![CDATA[{WP_ENCRYPTED}]]></Encrypt>"
        "<AgentID><![CDATA[1]]></AgentID></xml>"
    )
    message = protocol.open_message(body.encode(), WP_DECRYPT_ARGS)
    assert (message.type, message.content, message.source) == ("text", "test", "messense")


def test_wechatpy_sample_encryption_is_reproduced(monkeypatch: pytest.MonkeyPatch) -> None:
    class FixedRandom(wechatpy.crypto.PrpCrypto):
        def get_random_string(self) -> str:
            return "1234567890123456"

    monkeypatch.setattr(wechatpy.crypto, "PrpCrypto", FixedRandom)
    protocol = WeChatProtocol(WP_TOKEN, WP_APP_ID, WP_AES_KEY, now=clock(1411525903))
    assert protocol.seal(WP_REPLY, {"encrypt_type": "aes", "nonce": "461056294"}) == WP_SEALED
    assert protocol.seal(WP_REPLY, {"nonce": "461056294"}) == WP_REPLY  # plaintext request, plaintext reply


def test_official_account_sample_decrypts() -> None:
    protocol = WeChatProtocol(MP_TOKEN, MP_APP_ID, MP_AES_KEY)
    message = protocol.open_message(MP_BODY.encode(), MP_ARGS)
    assert message.type == "text"
    assert message.content == "abcdteT"
    assert message.source == "oyORnuP8q7ou2gfYjqLzSIWZf0rs"
    assert message.id == 6054768590064713728


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"msg_signature": "5d197aaffba7e9b25a30732f161a50dee96bd5fb"}, 403),
        ({"msg_signature": ""}, 403),
        ({"nonce": "1320562133"}, 403),
    ],
)
def test_forged_safe_mode_requests_are_refused(change: dict[str, str], status: int) -> None:
    protocol = WeChatProtocol(MP_TOKEN, MP_APP_ID, MP_AES_KEY)
    with pytest.raises(Rejected) as rejected:
        protocol.open_message(MP_BODY.encode(), {**MP_ARGS, **change})
    assert rejected.value.status == status


def test_message_for_another_app_is_refused() -> None:
    protocol = WeChatProtocol(MP_TOKEN, "wx0000000000000000", MP_AES_KEY)
    with pytest.raises(Rejected, match="another AppID") as rejected:
        protocol.open_message(MP_BODY.encode(), MP_ARGS)
    assert rejected.value.status == 403


def test_encrypted_message_without_a_key_is_refused() -> None:
    with pytest.raises(Rejected) as rejected:
        WeChatProtocol(MP_TOKEN).open_message(MP_BODY.encode(), MP_ARGS)
    assert rejected.value.status == 403


def test_garbage_ciphertext_with_a_valid_msg_signature_is_400() -> None:
    protocol = WeChatProtocol(MP_TOKEN, MP_APP_ID, MP_AES_KEY)
    for garbage in ("bm90IGEgYmxvY2s=", "!!!", base64.b64encode(b"x" * 32).decode()):
        msg_signature = protocol.signature(MP_ARGS["timestamp"], MP_ARGS["nonce"], garbage)
        body = f"<xml><Encrypt><![CDATA[{garbage}]]></Encrypt></xml>".encode()
        with pytest.raises(Rejected) as rejected:
            protocol.open_message(body, {**MP_ARGS, "msg_signature": msg_signature})
        assert rejected.value.status in (400, 403)


# ---------------------------------------------------------------- safe mode: our own round trips


@pytest.mark.parametrize("remainder", range(32))
def test_encrypt_decrypt_round_trip_at_every_length_mod_32(remainder: int) -> None:
    """Plaintext = 16 random + 4 length + XML + AppID, padded to 32-byte blocks: exercise every padding length."""
    protocol = WeChatProtocol(MP_TOKEN, MP_APP_ID, MP_AES_KEY, now=clock(1_700_000_000))
    base = (
        "<xml><ToUserName>gh_1</ToUserName><FromUserName>oBuyer</FromUserName><CreateTime>1700000000</CreateTime>"
        "<MsgType>text</MsgType><Content>{}</Content><MsgId>7</MsgId></xml>"
    )
    overhead = 16 + 4 + len(MP_APP_ID) + len(base.format("").encode())
    content = "卖" * 10 + "a" * ((remainder - overhead - 30) % 32)  # 卖 is 3 bytes
    xml = base.format(content)
    plaintext_length = 16 + 4 + len(xml.encode()) + len(MP_APP_ID)
    assert plaintext_length % 32 == remainder
    sealed = xmltodict.parse(protocol.seal(xml, {"encrypt_type": "aes", "nonce": "n0nce"}))["xml"]
    ciphertext = base64.b64decode(sealed["Encrypt"])
    # PKCS#7 to 32-byte blocks: always at least one byte of padding, a whole block when the length is a multiple of 32.
    assert len(ciphertext) % 32 == 0 and len(ciphertext) >= plaintext_length + 1
    assert protocol.signature(sealed["TimeStamp"], sealed["Nonce"], sealed["Encrypt"]) == sealed["MsgSignature"]
    args = {"encrypt_type": "aes", "msg_signature": sealed["MsgSignature"], "timestamp": sealed["TimeStamp"]}
    args["nonce"] = "n0nce"
    message = protocol.open_message(f"<xml><Encrypt><![CDATA[{sealed['Encrypt']}]]></Encrypt></xml>".encode(), args)
    assert message.content == content


# ---------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    ("app_id", "aes_key", "problem"),
    [("wx1", "short", "43 characters"), ("", MP_AES_KEY, "AppID"), ("wx1", "!" * 43, "base64")],
)
def test_bad_safe_mode_configuration_is_refused(app_id: str, aes_key: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        WeChatProtocol("token", app_id, aes_key)


def test_empty_token_is_refused() -> None:
    with pytest.raises(ValueError):
        WeChatProtocol("")


# ---------------------------------------------------------------- XML safety


def test_billion_laughs_is_refused_fast() -> None:
    started = time.monotonic()
    with pytest.raises(Rejected) as rejected:
        safe_parse_xml(BILLION_LAUGHS)
    assert rejected.value.status == 400 and time.monotonic() - started < 1


def test_entities_are_refused_even_past_the_dtd_check(monkeypatch: pytest.MonkeyPatch) -> None:
    import weiquan.edge.channels.wechat as wechat

    monkeypatch.setattr(wechat, "DTD_RE", wechat.re.compile(rb"(?!)"))  # a DTD check that never fires
    for body in (BILLION_LAUGHS, XXE):
        with pytest.raises(Rejected) as rejected:
            safe_parse_xml(body)
        assert rejected.value.status == 400


@pytest.mark.parametrize(
    "body", [XXE, b"<xml><a>", b"not xml", b"<other/>", b"<xml>text</xml>", b"", "<xml>\u00e9</xml>".encode("latin-1")]
)
def test_malformed_or_hostile_xml_is_400(body: bytes) -> None:
    with pytest.raises(Rejected) as rejected:
        safe_parse_xml(body)
    assert rejected.value.status == 400


def test_encrypted_payload_with_a_dtd_is_refused() -> None:
    protocol = WeChatProtocol(MP_TOKEN, MP_APP_ID, MP_AES_KEY, now=clock(1_700_000_000))
    sealed = xmltodict.parse(protocol.seal(BILLION_LAUGHS.decode(), {"encrypt_type": "aes", "nonce": "n"}))["xml"]
    args = {"encrypt_type": "aes", "msg_signature": sealed["MsgSignature"], "timestamp": sealed["TimeStamp"]}
    args["nonce"] = "n"
    with pytest.raises(Rejected) as rejected:
        protocol.open_message(f"<xml><Encrypt>{sealed['Encrypt']}</Encrypt></xml>".encode(), args)
    assert rejected.value.status == 400


@pytest.mark.parametrize(
    "body",
    [
        b"<xml><FromUserName>o1</FromUserName><Content>x</Content></xml>",  # no MsgType
        b"<xml><MsgType>text</MsgType><Content>x</Content></xml>",  # no FromUserName
        b"<xml><FromUserName>o1</FromUserName><MsgType>text</MsgType><MsgId>abc</MsgId></xml>",  # bad MsgId
        b"<xml><FromUserName>o1</FromUserName><MsgType>text</MsgType><CreateTime>x</CreateTime></xml>",
        b"<xml><FromUserName><a>1</a></FromUserName><MsgType>text</MsgType></xml>",
    ],
)
def test_incomplete_messages_are_400(body: bytes) -> None:
    with pytest.raises(Rejected) as rejected:
        WeChatProtocol("t").open_message(body, {})
    assert rejected.value.status == 400


# ---------------------------------------------------------------- helpers


def test_ttl_cache_expires_and_stays_bounded() -> None:
    now = [0.0]
    cache: TtlCache[str, int] = TtlCache(ttl_s=10, max_items=3, now=lambda: now[0])
    for i, key in enumerate("abcd"):
        cache.put(key, i)
    assert len(cache) == 3 and cache.get("a") is None and cache.get("d") == 3
    now[0] = 9.9
    assert cache.get("b") == 1
    cache.put("b", 11)  # refreshed entries live on
    now[0] = 10.5
    assert cache.get("c") is None and cache.get("b") == 11
    assert cache.pop("b") == 11 and len(cache) == 0
    cache.put("e", 5)
    now[0] = 21.0
    assert cache.pop("e") is None  # an expired entry is gone, also for pop (the "继续" parts of an answer)
