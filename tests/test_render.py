"""Per-channel rendering (weiquan/edge/channels/render.py): WeChat text, numbered menus, splitting; the web
pass-through."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.golden import golden
from weiquan.edge.channels.render import (
    TEXTS_PATH,
    URL_RE,
    WECHAT_TEXT_LIMIT_BYTES,
    card_text,
    load_texts,
    parse_menu_choice,
    plain_text,
    render_rest,
    render_wechat,
    render_widget,
    split_text,
    utf8_size,
)

TAOBAO = '/inform{"platform":"taobao"}'
TMALL = '/inform{"platform":"tmall"}'
PLATFORM_BUTTONS = [{"title": "淘宝", "payload": TAOBAO}, {"title": "天猫", "payload": TMALL}]
FILING_URL = "http://trade.taobao.com/trade/itemlist/list_bought_items.htm"
TEXTS = load_texts()


def item(number: int, title: str) -> str:
    return TEXTS.menu_item.format(number=number, title=title)


def test_texts_file_loads_with_every_key() -> None:
    assert TEXTS.ask_for_text and TEXTS.menu_hint and TEXTS.more_keywords
    assert "{max_chars}" in (TEXTS_PATH.read_text(encoding="utf-8"))


def test_a_broken_texts_file_fails_loudly(tmp_path: Path) -> None:
    broken = tmp_path / "texts.yml"
    broken.write_text('version: "3.1"\nask_for_text: "x"\n', encoding="utf-8")
    with pytest.raises(ValueError, match="too_long"):
        load_texts(broken)
    unversioned = tmp_path / "unversioned.yml"
    unversioned.write_text(TEXTS_PATH.read_text(encoding="utf-8").replace('version: "3.1"', ""), encoding="utf-8")
    with pytest.raises(ValueError, match="version"):
        load_texts(unversioned)
    bad_placeholder = tmp_path / "placeholder.yml"
    good = TEXTS_PATH.read_text(encoding="utf-8")
    bad_placeholder.write_text(good.replace("{number}", "{num}"), encoding="utf-8")
    with pytest.raises(KeyError):
        load_texts(bad_placeholder)


def test_plain_text_messages_are_joined_as_paragraphs() -> None:
    reply = render_wechat([{"text": "第一段"}, {"text": "第二段\n第二行"}])
    assert reply.chunks == ["第一段\n\n第二段\n第二行"]
    assert reply.menu == []


def test_buttons_become_a_numbered_menu_with_a_hint() -> None:
    messages = [
        {"text": "先确认一下。"},
        {"text": "在哪个平台买的？", "buttons": PLATFORM_BUTTONS},
    ]
    reply = render_wechat(messages)
    assert reply.menu == [TAOBAO, TMALL]
    options = f"{item(1, '淘宝')}\n{item(2, '天猫')}"
    assert reply.chunks == [f"先确认一下。\n\n在哪个平台买的？\n{options}\n{TEXTS.menu_hint}"]


def test_menus_of_several_messages_are_numbered_on_and_hinted_once() -> None:
    messages = [
        {"text": "问题一", "buttons": [{"title": "甲", "payload": "/a"}]},
        {"text": "问题二", "buttons": [{"title": "乙", "payload": "/b"}, {"title": "丙", "payload": "/c"}]},
    ]
    reply = render_wechat(messages)
    assert reply.menu == ["/a", "/b", "/c"]
    text = reply.chunks[0]
    assert item(1, "甲") in text and item(2, "乙") in text and item(3, "丙") in text
    assert text.count(TEXTS.menu_hint) == 1 and text.endswith(TEXTS.menu_hint)


def test_quick_replies_count_as_buttons() -> None:
    reply = render_wechat([{"text": "有证据吗？", "quick_replies": [{"title": "有", "payload": "/affirm"}]}])
    assert reply.menu == ["/affirm"]


def test_link_buttons_and_markdown_links_become_plain_urls() -> None:
    messages = [
        {"text": f"打开[已买到的宝贝]({FILING_URL})找到订单。"},
        {"text": "或者：", "buttons": [{"title": "去投诉", "url": FILING_URL}, {"title": "维权中心", "payload": "http://support.taobao.com/x"}]},
    ]
    reply = render_wechat(messages)
    assert reply.menu == []  # links are not menu options
    text = reply.chunks[0]
    assert f"已买到的宝贝：{FILING_URL}" in text
    assert f"去投诉：{FILING_URL}" in text and "维权中心：http://support.taobao.com/x" in text
    assert "](" not in text and TEXTS.menu_hint not in text


def test_a_malformed_card_is_skipped_not_fatal() -> None:
    messages = [{"text": "话术："}, {"custom": {"kind": "phone_script", "lines": ["x", {"name": "你", "text": "好"}]}},
                {"custom": {"kind": "evidence", "items": "not a list"}}, {"custom": {"kind": "filing_steps",
                                                                                   "paths": [None]}}]
    reply = render_wechat(messages)
    assert reply.chunks == ["话术：\n\n你：好"]


def test_images_and_attachments_are_shown_as_addresses() -> None:
    reply = render_wechat([{"image": "https://example.com/a.png"}, {"attachment": {"payload": {"src": "https://e.com/b"}}}])
    assert reply.chunks == ["https://example.com/a.png\n\nhttps://e.com/b"]


def test_empty_turn_renders_nothing() -> None:
    assert render_wechat([]).chunks == []
    assert render_wechat([{"text": "   "}, {"custom": {"kind": "safety"}}]).chunks == []


def test_cdata_terminator_in_bot_text_is_defused() -> None:
    assert "]]>" not in render_wechat([{"text": "a]]>b"}]).chunks[0]


def test_widget_rendering_keeps_real_buttons_and_the_card_as_data() -> None:
    message = {"text": "平台？", "buttons": [{"title": "淘宝", "payload": TAOBAO}], "custom": {"kind": "safety"}}
    assert render_widget(message) == {
        "text": "平台？",
        "quick_replies": [{"content_type": "text", "title": "淘宝", "payload": TAOBAO}],
        "custom": {"kind": "safety"},
    }


# ---------------------------------------------------------------- cards written out for text-only channels

FILING = {"kind": "filing_steps", "paths": [
    {"title": "从订单发起", "url": FILING_URL, "steps": ["打开「已买到的宝贝」", "点「投诉卖家」"]},
    {"title": "从维权中心发起", "url": "http://support.example/rights", "steps": ["点「我要发起维权」"]},
]}
SCRIPT = {"kind": "phone_script", "lines": [
    {"speaker": "agent", "name": "小二", "text": "您好"},
    {"speaker": "you", "name": "你", "text": "我这边也录音"},
    {"speaker": "lawyer", "name": "律师", "text": "a speaker the renderer has never seen"},
]}
EVIDENCE = {"kind": "evidence", "items": [
    {"code": "chat_screenshot", "label": "旺旺聊天截图", "url": "http://howto.example/1", "have": True},
    {"code": "sms_photo", "label": "短信截图", "url": None, "have": False},
]}


def test_filing_steps_are_numbered_paths_with_their_links_and_sub_steps() -> None:
    assert card_text(FILING).splitlines() == [
        f"1. 从订单发起：{FILING_URL}", "  1) 打开「已买到的宝贝」", "  2) 点「投诉卖家」",
        "2. 从维权中心发起：http://support.example/rights", "  1) 点「我要发起维权」",
    ]


def test_every_script_line_keeps_its_speaker_whoever_it_is() -> None:
    assert card_text(SCRIPT).splitlines() == ["小二：您好", "你：我这边也录音",
                                              "律师：a speaker the renderer has never seen"]


def test_evidence_ticks_what_the_buyer_has_and_keeps_the_how_to_link() -> None:
    lines = card_text(EVIDENCE).splitlines()
    assert lines == ["1. ✅ 旺旺聊天截图 http://howto.example/1", "2. 短信截图"]


def test_unknown_or_missing_cards_write_nothing() -> None:
    assert card_text(None) == card_text({"kind": "poster"}) == card_text("text") == ""
    assert plain_text({"text": "只有文字"}) == "只有文字"


def test_rest_entry_has_the_card_written_out_and_kept_as_data() -> None:
    entry = render_rest({"text": "两种方式：", "custom": FILING, "buttons": [{"title": "淘宝", "payload": TAOBAO}],
                         "utter_action": "utter_x"})
    assert entry["text"].startswith("两种方式：\n1. 从订单发起") and FILING_URL in entry["text"]
    assert entry["custom"] == FILING and entry["buttons"] == [{"title": "淘宝", "payload": TAOBAO}]
    assert "utter_action" not in entry


def test_wechat_writes_the_card_under_the_text() -> None:
    reply = render_wechat([{"text": "打电话时可以这样说：", "custom": SCRIPT}])
    assert reply.chunks == [
        "打电话时可以这样说：\n小二：您好\n你：我这边也录音\n律师：a speaker the renderer has never seen"]


# ---------------------------------------------------------------- the presenter's real cards (tests/golden/)

GOLDEN = golden()["cards"]


def test_the_real_filing_card_is_written_out_whole() -> None:
    text = card_text(GOLDEN["filing_steps"])
    for number, path in enumerate(GOLDEN["filing_steps"]["paths"], start=1):
        assert f"{number}. {path['title']}：{path['url']}" in text
        assert all(step in text for step in path["steps"])


def test_the_real_phone_script_keeps_every_line_with_its_speaker() -> None:
    assert card_text(GOLDEN["phone_script"]).splitlines() == [
        f"{line['name']}：{line['text']}" for line in GOLDEN["phone_script"]["lines"]]


def test_the_real_evidence_card_ticks_exactly_what_the_buyer_has() -> None:
    lines = card_text(GOLDEN["evidence"]).splitlines()
    items = GOLDEN["evidence"]["items"]
    assert len(lines) == len(items)
    for line, item in zip(lines, items, strict=True):
        assert item["label"] in line and ("✅" in line) == item["have"]
        assert item["url"] is None or item["url"] in line


@pytest.mark.parametrize("kind", sorted(GOLDEN))
def test_every_real_card_reaches_rest_as_data_and_wechat_as_text(kind: str) -> None:
    card = GOLDEN[kind]
    entry = render_rest({"text": "导语", "custom": card})
    assert entry["custom"] == card and entry["text"].startswith("导语")
    reply = render_wechat([{"text": "导语", "custom": card}])
    assert reply.chunks and reply.chunks[0].startswith("导语")
    assert render_widget({"text": "导语", "custom": card})["custom"] == card


# ---------------------------------------------------------------- splitting


def test_short_text_is_one_chunk() -> None:
    assert split_text("你好") == ["你好"]
    assert split_text("  \n ") == []


def test_long_answer_is_split_at_paragraphs_under_the_byte_limit() -> None:
    paragraphs = [f"第{i}段：" + "卖家骚扰我，" * 40 for i in range(12)]  # ~ 12 × 730 bytes
    chunks = render_wechat([{"text": p} for p in paragraphs]).chunks
    assert len(chunks) > 1
    assert all(utf8_size(chunk) <= WECHAT_TEXT_LIMIT_BYTES for chunk in chunks)
    assert [p for chunk in chunks for p in chunk.split("\n\n")] == paragraphs  # whole paragraphs, in order


def test_chunks_are_packed_not_one_paragraph_each() -> None:
    chunks = split_text("\n\n".join(["短段落"] * 50), max_bytes=100)
    assert all(utf8_size(c) <= 100 for c in chunks)
    # 9 paragraphs of 9 bytes + 8 blank-line separators = 97 bytes fit in each chunk: 50 paragraphs → 6 chunks.
    assert [c.count("短段落") for c in chunks] == [9, 9, 9, 9, 9, 5]


@pytest.mark.parametrize("limit", [64, 100, 157, 500, WECHAT_TEXT_LIMIT_BYTES])
def test_urls_are_never_cut(limit: int) -> None:
    urls = [FILING_URL, "http://support.taobao.com/myservice/rights/right_main.htm", "http://form.taobao.com/script/fullview.htm?id=122"]
    line = "".join(f"第{i}步，打开{urls[i % 3]}，然后点投诉。" for i in range(60))  # one long line, no breaks
    chunks = split_text(line, max_bytes=limit)
    assert all(utf8_size(c) <= limit for c in chunks)
    found = [url for chunk in chunks for url in URL_RE.findall(chunk)]
    assert found.count(urls[0]) == 20 and all(url in urls for url in found)
    assert "".join(chunks) == line  # nothing lost or added


def test_long_lines_break_at_line_ends_then_sentences() -> None:
    text = "\n".join(["一行文字。" * 10] * 10)  # 10 lines of 150 bytes, no blank lines
    chunks = split_text(text, max_bytes=400)
    assert all(utf8_size(c) <= 400 and c.endswith("。") for c in chunks)
    assert all(line == "一行文字。" * 10 for c in chunks for line in c.split("\n"))


def test_text_without_any_break_is_cut_at_character_boundaries() -> None:
    text = "骚" * 10_000
    chunks = split_text(text)
    assert "".join(chunks) == text
    assert all(utf8_size(c) <= WECHAT_TEXT_LIMIT_BYTES for c in chunks)
    assert utf8_size(chunks[0]) == WECHAT_TEXT_LIMIT_BYTES - WECHAT_TEXT_LIMIT_BYTES % 3


def test_split_refuses_a_silly_limit() -> None:
    with pytest.raises(ValueError):
        split_text("abc", max_bytes=3)


# ---------------------------------------------------------------- numbered answers


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("1", TAOBAO), ("2", TMALL), ("２", TMALL), ("1.", TAOBAO), ("1。", TAOBAO), ("2、", TMALL),
        (" 1 ", TAOBAO), ("(2)", TMALL), ("（2）", TMALL), ("①", TAOBAO), ("1．", TAOBAO), ("01", TAOBAO),
        ("【2】", TMALL), ("[1]", TAOBAO), ("〔1〕", TAOBAO),
    ],
)
def test_numbered_answers_pick_the_payload(answer: str, expected: str) -> None:
    assert parse_menu_choice(answer, [TAOBAO, TMALL]) == expected


@pytest.mark.parametrize("answer", ["3", "0", "1个", "选1", "12345", "", "淘宝", "1 2"])
def test_other_answers_are_ordinary_text(answer: str) -> None:
    assert parse_menu_choice(answer, [TAOBAO, TMALL]) is None


def test_no_menu_no_choice() -> None:
    assert parse_menu_choice("1", []) is None


def test_menu_lines_follow_the_texts_file() -> None:
    reply = render_wechat([{"text": "?", "buttons": [{"title": "淘宝", "payload": TAOBAO}]}])
    assert re.search(rf"^{re.escape(item(1, '淘宝'))}$", reply.chunks[0], re.MULTILINE)
    # Whatever the format, the buyer can type back exactly what the menu shows.
    assert parse_menu_choice(item(1, "").strip(), [TAOBAO]) == TAOBAO
