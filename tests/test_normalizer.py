"""The text normaliser: what it changes, the map back to what the user typed, and the two Rasa components."""
from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from weiquan.nlu.textnorm import (
    SHORTHAND_FILE,
    Normalized,
    ShorthandTable,
    load_shorthand,
    normalize,
)

NO_SHORTHAND = ShorthandTable({}, {})


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        # traditional -> simplified
        ("賣家騷擾我，還威脅我", "卖家骚扰我，还威胁我"),
        ("這個淘寶賣家", "这个淘宝卖家"),
        # full-width digits and letters -> half-width, ASCII lower-cased
        ("１５天", "15天"),
        ("交易成功２０天了", "交易成功20天了"),
        ("ＡＢＣ", "abc"),
        ("订单号１２３４５６７８９０１２３４５６７", "订单号12345678901234567"),
        # zero-width, bidi and control characters disappear
        ("骚\u200b扰", "骚扰"),
        ("\ufeff卖家\u200d\u200c骂我\u200e", "卖家骂我"),
        ("卖家\x00\x07骂我", "卖家骂我"),
        # emoji runs keep each emoji once; variation selectors and skin tones go
        ("气死了😡😡😡😡", "气死了😡"),
        ("😡 😡 🔪🔪 😡", "😡🔪"),
        ("❤️❤️", "❤"),
        ("👍🏻👍🏽", "👍"),
        # repeated punctuation is squeezed; ASCII punctuation next to Chinese becomes Chinese
        ("真的服了！！！！", "真的服了！"),
        ("还要多久??!!", "还要多久？！"),
        ("还要多久?", "还要多久？"),
        ("。。。……", "。…"),
        # whitespace: a pause between Chinese words becomes a comma; none next to punctuation or emoji or at the ends
        ("  卖家  一直 打电话  ", "卖家，一直，打电话"),
        ("买家投诉我骚扰 我是冤枉的", "买家投诉我骚扰，我是冤枉的"),
        ("骚扰 ！ 😡 😡", "骚扰！😡"),
        ("我 ， 好", "我，好"),
        ("A\u3000B", "a b"),
        ("淘宝 123", "淘宝 123"),
        # shorthand and typos from shorthand.yml
        ("tb卖家", "淘宝卖家"),
        ("TB 卖家", "淘宝卖家"),
        ("mj一直打电话，kf也不管", "卖家一直打电话，客服也不管"),
        ("在tm买的", "在天猫买的"),
        ("转rgkf", "转人工客服"),
        ("差频之后被骚忧", "差评之后被骚扰"),
        ("他威协我", "他威胁我"),
        ("他威協我", "他威胁我"),  # traditional first, then the typo
        # ASCII abbreviations only as whole ASCII words
        ("html页面", "html页面"),
        ("tbc", "tbc"),
        ("atm机", "atm机"),
        ("tb123", "tb123"),
        # things that must survive
        ("下午3:30", "下午3:30"),
        ("http://example.com/a", "http://example.com/a"),
        ('/inform{"platform":"taobao"}', '/inform{"platform":"taobao"}'),
        ("", ""),
        ("   ", ""),
        ("\u200b\u200b", ""),
    ],
)
def test_normalize(typed: str, expected: str) -> None:
    assert normalize(typed).text == expected


def test_empty_string_has_an_empty_map() -> None:
    norm = normalize("")
    assert norm == Normalized("", "", (), ())
    assert norm.to_original(0, 0) == (0, 0)
    assert norm.to_normalized(0, 0) is None


def test_every_character_maps_back_to_what_produced_it() -> None:
    typed = "ＴＢ賣家\u200b騷擾我！！！😡😡 mj 天天  打"
    norm = normalize(typed)
    assert norm.text == "淘宝卖家骚扰我！😡卖家天天，打"  # "mj 天天": the space only set off Latin letters
    pieces = [typed[s:e] for s, e in zip(norm.starts, norm.ends, strict=True)]
    assert pieces[:9] == ["ＴＢ", "ＴＢ", "賣", "家", "騷", "擾", "我", "！！！", "😡😡"]
    assert pieces[9:] == ["mj", "mj", "天", "天", "  ", "打"]


def test_spans_map_both_ways() -> None:
    typed = "那個ｔｂ賣家\u200b騷擾我"
    norm = normalize(typed)
    assert norm.text == "那个淘宝卖家骚扰我"
    start = norm.text.index("骚扰")
    o_start, o_end = norm.to_original(start, start + 2)
    assert typed[o_start:o_end] == "騷擾"
    assert norm.original_value(start, start + 2) == "騷擾"
    # "卖家骚扰" spans the zero-width space: the original span includes it, the value does not
    start = norm.text.index("卖家")
    o_start, o_end = norm.to_original(start, start + 4)
    assert typed[o_start:o_end] == "賣家\u200b騷擾"
    assert norm.original_value(start, start + 4) == "賣家騷擾"
    # and back: the shorthand maps as a whole, a dropped character maps to nothing
    tb = typed.index("ｔｂ")
    assert norm.to_normalized(tb, tb + 2) == (2, 4)
    assert norm.to_normalized(tb, tb + 1) == (2, 4)
    zw = typed.index("\u200b")
    assert norm.to_normalized(zw, zw + 1) is None


def test_to_original_rejects_spans_outside_the_text() -> None:
    with pytest.raises(ValueError):
        normalize("卖家").to_original(1, 5)


def test_map_invariants_on_random_text() -> None:
    pool = list("卖家骚扰我威脅電話 ，！!?？。…😡🔪\u200b\ufe0fＴＢtbmjkf１５abc") + ["\U0001F3FB", "  "]
    rng = random.Random(7)
    for _ in range(2000):
        typed = "".join(rng.choice(pool) for _ in range(rng.randint(0, 40)))
        norm = normalize(typed)
        assert len(norm.starts) == len(norm.ends) == len(norm.text)
        assert all(0 <= s < e <= len(typed) for s, e in zip(norm.starts, norm.ends, strict=True))
        assert list(norm.starts) == sorted(norm.starts) and list(norm.ends) == sorted(norm.ends)
        for i in range(len(norm.text)):
            o_start, o_end = norm.to_original(i, i + 1)
            back = norm.to_normalized(o_start, o_end)
            assert back is not None and back[0] <= i < back[1]
        assert normalize(norm.text).text == norm.text  # idempotent


def test_long_message_is_fast_and_mapped() -> None:
    typed = ("賣家騷擾我！！😡😡 tb １５天\u200b" * 700)[:10_000]
    assert len(typed) == 10_000
    started = time.perf_counter()
    norm = normalize(typed)
    assert time.perf_counter() - started < 1.0
    assert "賣" not in norm.text and "\u200b" not in norm.text and "！！" not in norm.text
    assert len(norm.starts) == len(norm.text)
    assert norm.to_original(0, len(norm.text)) == (0, 10_000)


def test_shorthand_table_loads_and_is_stable() -> None:
    table = load_shorthand(SHORTHAND_FILE)
    assert table.abbreviations["tb"] == "淘宝" and table.typos["骚忧"] == "骚扰"
    for key in table.typos:
        assert normalize(key, NO_SHORTHAND).text == key, f"typo key {key!r} never matches: not normalised form"
    for value in [*table.abbreviations.values(), *table.typos.values()]:
        assert normalize(value).text == value, f"replacement {value!r} would be rewritten again"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("abbreviations:\n  TB: 淘宝\n", "lower-case ASCII"),
        ("typos:\n  tb卖: 淘宝卖\n", "contains ASCII"),
        ("typos:\n  差频: 差频\n", "maps to itself"),
        ("typos:\n  差频: ''\n", "must map text to text"),
        ("typo:\n  差频: 差评\n", "unknown sections"),
        ("- tb\n", "mapping at the top level"),
    ],
)
def test_broken_shorthand_file_fails_loudly(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "shorthand.yml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        load_shorthand(path)


# ---------------------------------------------------------------- the Rasa components
@pytest.fixture(scope="module")
def components():
    from rasa.engine.graph import ExecutionContext, GraphSchema
    from rasa.engine.storage.local_model_storage import LocalModelStorage
    from rasa.engine.storage.resource import Resource

    from weiquan.nlu import normalizer

    def build(tmp: Path):
        storage = LocalModelStorage(tmp)
        context = ExecutionContext(GraphSchema({}), "test")
        resource = Resource("normalizer")
        config = normalizer.ChineseTextNormalizer.get_default_config()
        norm = normalizer.ChineseTextNormalizer.create(config, storage, resource, context)
        restorer = normalizer.OriginalTextRestorer.create(
            normalizer.OriginalTextRestorer.get_default_config(), storage, Resource("restorer"), context
        )
        return normalizer, norm, restorer, storage, resource, context, config

    return build


def fake_extractor(message, entity: str, surface: str, value: str | None = None, processors=None) -> None:
    """Stands in for DIET / the synonym mapper: finds `surface` in the (normalised) text the model sees."""
    text = message.get("text")
    start = text.index(surface)
    found = {"entity": entity, "start": start, "end": start + len(surface), "value": value or surface}
    if processors:
        found["processors"] = processors
    message.set("entities", [*message.get("entities", []), found], add_to_output=True)


def test_components_point_entities_at_what_the_user_typed(components, tmp_path: Path) -> None:
    from rasa.shared.nlu.training_data.message import Message

    _, norm, restorer, *_ = components(tmp_path)
    typed = "那個ＴＢ賣家\u200b天天騷擾我！！！😡😡，交易成功１５天了，訂單１２３４５６７８９０１２３４５６"
    message = Message(data={"text": typed})
    norm.process([message])
    seen = message.get("text")
    assert seen == "那个淘宝卖家天天骚扰我！😡，交易成功15天了，订单1234567890123456"
    assert message.get("original_text") == typed

    fake_extractor(message, "platform", "淘宝", value="taobao", processors=["EntitySynonymMapper"])
    fake_extractor(message, "harassment_type", "骚扰")
    fake_extractor(message, "success_time", "15天")
    fake_extractor(message, "order_id", "1234567890123456")
    restorer.process([message])

    assert message.get("text") == typed
    entities = {e["entity"]: e for e in message.get("entities")}
    for entity in entities.values():
        assert entity["start"] < entity["end"] <= len(typed)
    spans = {name: typed[e["start"] : e["end"]] for name, e in entities.items()}
    assert spans == {
        "platform": "ＴＢ",
        "harassment_type": "騷擾",
        "success_time": "１５天",
        "order_id": "１２３４５６７８９０１２３４５６",
    }
    assert entities["platform"]["value"] == "taobao"  # a synonym's canonical value stays
    assert entities["harassment_type"]["value"] == "騷擾"  # otherwise what the user typed
    assert entities["success_time"]["value"] == "15天"  # normalised: the action server parses it (issue 13)
    assert entities["order_id"]["value"] == "1234567890123456"  # listed in keep_normalized_value
    output = message.as_dict(only_output_properties=True)
    assert output["text"] == typed
    assert output["normalized_text"] == seen  # what the model saw, for the action server's parsers


def test_restorer_maps_tokens_and_leaves_unchanged_text_alone(components, tmp_path: Path) -> None:
    from rasa.nlu.tokenizers.tokenizer import Token
    from rasa.shared.nlu.training_data.message import Message

    _, norm, restorer, *_ = components(tmp_path)
    message = Message(data={"text": "賣家 騷擾"})
    norm.process([message])
    assert message.get("text") == "卖家，骚扰"
    message.set("text_tokens", [Token("卖家", 0), Token("，", 2), Token("骚扰", 3)])
    restorer.process([message])
    tokens = [(t.start, t.end, t.text) for t in message.get("text_tokens")]
    assert tokens == [(0, 2, "賣家"), (2, 3, " "), (3, 5, "騷擾")]

    plain = Message(data={"text": "卖家骚扰我"})
    norm.process([plain])
    fake_extractor(plain, "harassment_type", "骚扰")
    restorer.process([plain])
    assert plain.get("text") == "卖家骚扰我"
    assert plain.get("entities")[0] == {"entity": "harassment_type", "start": 2, "end": 4, "value": "骚扰"}


def test_training_data_is_normalised_with_its_annotations(components, tmp_path: Path) -> None:
    from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLReader

    _, norm, *_ = components(tmp_path)
    data = RasaYAMLReader().reads(
        'version: "3.1"\n'
        "nlu:\n"
        "- intent: report_harassment\n"
        "  examples: |\n"
        "    - [ＴＢ](platform:taobao)賣家[騷擾](harassment_type)我！！！\n"
        "    - 卖家[打电话](harassment_type:calls)骚扰我\n"
        "- synonym: taobao\n"
        "  examples: |\n"
        "    - 淘寶\n"
    )
    norm.process_training_data(data)
    first, second = data.training_examples[0], data.training_examples[1]
    assert first.get("text") == "淘宝卖家骚扰我！"
    assert [(e["start"], e["end"], e["value"]) for e in first.get("entities")] == [
        (0, 2, "taobao"),
        (4, 6, "骚扰"),  # the annotated text itself was the value: it follows the text
    ]
    assert second.get("text") == "卖家打电话骚扰我"
    assert second.get("entities")[0]["value"] == "calls"
    assert data.entity_synonyms["淘宝"] == "taobao" and data.entity_synonyms["淘寶"] == "taobao"


def test_the_model_keeps_its_own_shorthand_table(components, tmp_path: Path) -> None:
    from rasa.shared.nlu.training_data.training_data import TrainingData

    normalizer, norm, _, storage, resource, context, config = components(tmp_path)
    norm.train(TrainingData())
    loaded = normalizer.ChineseTextNormalizer.load(config, storage, resource, context)
    assert loaded.normalize("tb卖家差频").text == "淘宝卖家差评"
    assert normalizer.ChineseTextNormalizer.fingerprint_addon(config)
