"""The NLU components added for real-world text, on messages written the way buyers and sellers write.

Table-driven and model-free: the problem rules, the role cues and the hesitation decision are pure functions; the
safety rules run through the spaCy rule pipeline that `make setup` builds; the components are driven with Rasa
Messages as the pipeline would hand them over.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from weiquan.nlu import hesitation, problem
from weiquan.nlu.textnorm import normalize_text


# ---------------------------------------------------------------- problem entity
@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("买的卫衣洗了一次就起球，做工太差了", "quality"),
        ("电水壶用了三天底座就漏水", "quality"),
        ("申请退款一个礼拜了商家就是不处理", "refund"),
        ("七天无理由退貨被拒絕了", "refund"),
        ("我拍的是蓝色，寄来的是灰色", "wrong_item"),
        ("收到一个空盒子，啥也没有", "wrong_item"),
        ("物流卡在广州三天不动了", "delivery"),
        ("显示已签收但我压根没拿到东西", "delivery"),
        ("这双鞋鉴定出来是高仿", "fake"),
        ("专柜说这个批号不存在，肯定是假货", "fake"),
        ("昨天刚下单今天就降价八十，能保价吗", "price"),
        ("满减券付款的时候用不了", "price"),
        ("我写的差评被折叠了，别人看不到", "review_deleted"),
        ("追评一直在审核中发不出去", "review_deleted"),
        ("说好的好评返现十块一直没给", "cashback"),
        ("卡片上写晒图五星送五元红包，我晒了没送", "cashback"),
        ("快递员把包裹扔在楼下就走了", "courier"),
        ("驿站取件要收一块钱", "courier"),
        ("闲鱼上付了款卖家就跑路了", "scam"),
        ("有人自称淘宝客服让我下载会议软件", "scam"),
        ("平台介入十天了小二一直不回复", "platform_service"),
        ("我的账号被限制登录了，申诉不通过", "platform_service"),
        ("tb客服态度敷衍，投诉淘宝的客服去哪", "platform_service"),
        # the most specific problem wins over the words every such message also has
        ("买到假货想退款，卖家不同意", "fake"),
        ("快递员态度很差，包裹还晚到了三天", "courier"),
        ("今天天气怎么样", None),
        ("讲个笑话吧", None),
    ],
)
def test_problem_rules(typed: str, expected: str | None) -> None:
    found = problem.default_rules().find(normalize_text(typed))
    assert (found.value if found else None) == expected


def test_every_problem_value_has_rules_and_only_contract_values() -> None:
    values = [value for value, _ in problem.default_rules().groups]
    assert sorted(values) == sorted(problem.CANONICAL)


def test_broken_problem_file_fails_loudly(tmp_path: Path) -> None:
    bad = tmp_path / "p.yml"
    bad.write_text("problems:\n  - value: refunds\n    patterns: ['退款']\n", encoding="utf-8")
    with pytest.raises(ValueError, match="not a canonical problem value"):
        problem.load_rules(bad)


# ---------------------------------------------------------------- role cues
@pytest.mark.parametrize(
    ("typed", "buyer", "seller"),
    [
        ("被店家骚扰了怎么办", True, False),
        ("被商家辱骂，可以投诉吗", True, False),
        ("被卖家缠上了", True, False),
        ("被淘宝卖家骚扰", True, False),
        ("被天貓店的客服罵了", True, False),
        ("卖家天天打电话给我", True, False),
        ("我是买家，想问问", True, False),
        ("投诉卖家骚扰要准备什么证据", True, False),
        ("店主老是打给我，我都录下来了", True, False),
        ("被买家投诉骚扰了怎么办", False, True),
        ("我是卖家，有人投诉我", False, True),
        ("买家说我骚扰他", False, True),
        ("我们店被投诉了恶意骚扰", False, True),
        ("千牛提示有个待举证", False, True),
        ("被投诉的卖家要在几天内举证", False, True),  # 被…卖家 here is not a buyer speaking
        ("被卖家投诉了", False, False),
        ("卖家骚扰怎么投诉", False, False),
        ("我是卖家，买家说被卖家骚扰，其实没有", True, True),
    ],
)
def test_role_cues(typed: str, buyer: bool, seller: bool) -> None:
    assert hesitation.default_cues().roles(normalize_text(typed)) == (buyer, seller)


def ranking(*pairs: tuple[str, float]) -> list[dict[str, Any]]:
    return [{"name": name, "confidence": confidence} for name, confidence in pairs]


PAIRS = [["report_harassment", "seller_accused"], ["report_harassment", "out_of_scope"]]


@pytest.mark.parametrize(
    ("typed", "intent", "model_ranking", "expected"),
    [
        # a buyer's words, the model said seller: ask, and the role question comes second
        ("被店家骚扰了怎么办", "seller_accused", ranking(("seller_accused", 0.9), ("ask_penalty", 0.05)),
         ("role_cue", ("seller_accused", "report_harassment"))),
        ("买家说我骚扰他，我就问了一句", "report_harassment",
         ranking(("report_harassment", 0.8), ("seller_accused", 0.15)),
         ("role_cue", ("report_harassment", "seller_accused"))),
        # the model agrees with the cue: nothing to ask
        ("被卖家骂了", "report_harassment", ranking(("report_harassment", 0.95), ("ask_penalty", 0.02)), None),
        # close call between harassment and another problem
        ("卖家不给退款还阴阳怪气", "report_harassment",
         ranking(("report_harassment", 0.5), ("out_of_scope", 0.4), ("inform", 0.05)),
         ("margin", ("report_harassment", "out_of_scope"))),
        ("卖家不给退款还阴阳怪气", "out_of_scope",
         ranking(("out_of_scope", 0.52), ("report_harassment", 0.41)),
         ("margin", ("out_of_scope", "report_harassment"))),
        # a clear win, or a close call between a pair nobody asks about
        ("卖家不给退款", "out_of_scope", ranking(("out_of_scope", 0.9), ("report_harassment", 0.05)), None),
        ("扣几分，多久处理", "ask_penalty", ranking(("ask_penalty", 0.5), ("ask_processing_time", 0.45)), None),
        # FallbackClassifier already hesitated: leave it
        ("嗯……", "nlu_fallback", ranking(("nlu_fallback", 0.45), ("affirm", 0.3)), None),
    ],
)
def test_hesitation_decision(typed: str, intent: str, model_ranking: list, expected) -> None:
    decided = hesitation.decide(intent, model_ranking, normalize_text(typed), hesitation.default_cues(), PAIRS, 0.3)
    assert (None if decided is None else (decided.reason, decided.pair)) == expected


@pytest.mark.parametrize(
    ("typed", "best", "expected"),
    [
        ("被差评师投诉了恶意骚扰，求助", "seller_accused", "seller_accused"),
        ("被卖家缠了三天了，烦", "report_harassment", "report_harassment"),
        ("被卖家缠了三天了，烦", "seller_accused", None),  # the cue says buyer: no guess is taken
        ("这种情况怎么办", "report_harassment", None),  # no cue: the question stays
        ("我是卖家，买家说被卖家骚扰", "seller_accused", None),  # both cues
    ],
)
def test_role_cue_settles_a_low_confidence_guess(typed: str, best: str, expected: str | None) -> None:
    model = ranking(("nlu_fallback", 0.45), (best, 0.4), ("ask_penalty", 0.3))
    found = hesitation.confirmed_role("nlu_fallback", model, normalize_text(typed), hesitation.default_cues())
    assert found == expected


@pytest.mark.parametrize(
    ("typed", "guesses", "asked"),
    [
        ("关于恶意骚扰", ("affirm", "stop", "seller_accused"), True),  # about harassment, no role: ask the role
        ("恶意骚扰怎么办", ("report_harassment", "ask_deadline_passed"), True),
        ("关于恶意骚扰", ("affirm", "stop", "greet"), False),  # no role among the guesses: the generic question
        ("被卖家骚扰", ("seller_accused", "affirm"), True),  # a buyer's cue, the model's seller guess: ask
        ("被差评师投诉了", ("seller_accused", "affirm"), False),  # the cue confirms the guess: no question
        ("这种情况怎么办", ("report_harassment", "affirm"), False),  # not about harassment
    ],
)
def test_a_harassment_message_without_a_role_gets_the_role_question(typed: str, guesses: tuple, asked: bool) -> None:
    guard = create(hesitation.HesitationGuard)
    model = ranking(("nlu_fallback", 0.45), *((name, 0.3 - 0.05 * i) for i, name in enumerate(guesses)))
    msg = message(typed, "nlu_fallback", model)
    guard.process([msg])
    pair = (msg.as_dict(only_output_properties=True).get("nlu_hesitation") or {}).get("pair")
    assert (pair == ["report_harassment", "seller_accused"]) is asked


@pytest.mark.parametrize(
    ("typed", "confidence", "asked"),
    [
        ("恶意骚扰怎么办", 0.53, True),  # no role word, an unsure seller guess: ask, never guess seller
        ("之前的骚扰投诉被判无效，可以重新来一次吗", 0.46, True),
        ("恶意骚扰怎么办", 0.85, False),  # a sure guess is the model's to make
        ("被买家投诉骚扰了怎么办", 0.53, False),  # the seller's own words
    ],
)
def test_an_unsure_seller_guess_without_a_seller_word_gets_the_role_question(typed, confidence, asked) -> None:
    model = ranking(("seller_accused", confidence), ("ask_deadline_passed", 0.2), ("report_harassment", 0.05))
    found = hesitation.decide("seller_accused", model, normalize_text(typed), hesitation.default_cues(),
                              [("report_harassment", "seller_accused")], 0.3, unnamed_seller_below=0.7)
    assert (found == hesitation.Hesitation("unnamed_seller", ("seller_accused", "report_harassment"))) is asked


@pytest.mark.parametrize(
    ("typed", "best", "pair"),
    [
        # the words say who is speaking: no role question, but the model's guess against that role's intent
        ("淘宝卖家骚忧我，怎么处理啊", "ask_how_to_file", ["ask_how_to_file", "report_harassment"]),
        ("被买家投诉骚扰了，这个怎么弄", "ask_evidence", ["ask_evidence", "seller_accused"]),
        # the model's guess is the other role: that is the role question
        ("店家一直骚扰我", "seller_accused", ["report_harassment", "seller_accused"]),
    ],
)
def test_a_role_the_words_name_is_not_asked(typed: str, best: str, pair: list) -> None:
    guard = create(hesitation.HesitationGuard)
    model = ranking(("nlu_fallback", 0.45), (best, 0.4), ("seller_accused" if best != "seller_accused"
                                                           else "ask_penalty", 0.2), ("report_harassment", 0.1))
    msg = message(typed, "nlu_fallback", model)
    guard.process([msg])
    found = msg.as_dict(only_output_properties=True).get("nlu_hesitation") or {}
    assert found.get("pair") == pair


def test_a_hesitation_between_two_ways_into_the_complaint_is_no_question() -> None:
    guard = create(hesitation.HesitationGuard)
    both = message("淘宝卖家天天短信轰炸我，交易成功了", "nlu_fallback",
                   ranking(("nlu_fallback", 0.45), ("report_harassment", 0.52), ("inform", 0.44)))
    other = message("嗯……", "nlu_fallback", ranking(("nlu_fallback", 0.45), ("inform", 0.4), ("affirm", 0.35)))
    guard.process([both, other])
    assert both.get("intent")["name"] == "report_harassment"
    assert other.get("intent")["name"] == "nlu_fallback"


def test_guard_takes_the_confirmed_role_and_drops_the_fallback() -> None:
    guard = create(hesitation.HesitationGuard)
    msg = message("被差评师投诉了恶意骚扰，求助各位", "nlu_fallback",
                  ranking(("nlu_fallback", 0.45), ("seller_accused", 0.41), ("ask_appeal", 0.3)))
    guard.process([msg])
    out = msg.as_dict(only_output_properties=True)
    assert out["intent"]["name"] == "seller_accused"
    assert [item["name"] for item in out["intent_ranking"]] == ["seller_accused", "ask_appeal"]
    assert out["role_confirmed"] is True and out.get("nlu_hesitation") is None


def test_ranking_keeps_the_model_order_and_puts_the_partner_second() -> None:
    model = ranking(("seller_accused", 0.7), ("ask_penalty", 0.2), ("report_harassment", 0.06), ("greet", 0.04))
    decided = hesitation.Hesitation("role_cue", ("seller_accused", "report_harassment"))
    names = [item["name"] for item in hesitation.ranking_for(model, decided)]
    assert names == ["nlu_fallback", "seller_accused", "report_harassment", "ask_penalty", "greet"]


# ---------------------------------------------------------------- components on Rasa messages
def message(text: str, intent: str | None = None, model_ranking: list | None = None, **data: Any):
    from rasa.shared.nlu.training_data.message import Message

    fields: dict[str, Any] = {"text": normalize_text(text), **data}
    if intent:
        fields["intent"] = {"name": intent, "confidence": (model_ranking or [{"confidence": 1.0}])[0]["confidence"]}
        fields["intent_ranking"] = model_ranking or []
    return Message(data=fields)


def create(cls):
    from rasa.engine.graph import ExecutionContext, GraphSchema
    from rasa.engine.storage.local_model_storage import LocalModelStorage
    from rasa.engine.storage.resource import Resource

    storage = LocalModelStorage(Path("/nonexistent"))
    return cls.create(cls.get_default_config(), storage, Resource(cls.__name__), ExecutionContext(GraphSchema({}), "t"))


def test_guard_then_safety_guard_a_threat_never_waits_for_the_question() -> None:
    from weiquan.nlu.safety import SafetyGuard

    guard, safety = create(hesitation.HesitationGuard), create(SafetyGuard)
    model = ranking(("seller_accused", 0.6), ("report_harassment", 0.35))
    asked = message("被卖家缠上了", "seller_accused", model)
    threatened = message("被卖家缠上了，他说知道我住哪", "seller_accused", model, safety_signals=["知道我住哪"])
    guard.process([asked, threatened])
    safety.process([asked, threatened])

    out = asked.as_dict(only_output_properties=True)
    assert out["intent"]["name"] == "nlu_fallback"
    assert [item["name"] for item in out["intent_ranking"][:3]] == ["nlu_fallback", "seller_accused",
                                                                   "report_harassment"]
    assert out["nlu_hesitation"] == {"reason": "role_cue", "pair": ["seller_accused", "report_harassment"]}

    out = threatened.as_dict(only_output_properties=True)
    assert out["intent"]["name"] == "report_safety_threat"
    assert out.get("nlu_hesitation") is None


def test_problem_entity_only_for_other_problems() -> None:
    extractor = create(problem.ProblemExtractor)
    other = message("退款退了半个月还没到账", "out_of_scope")
    unsure = message("退款退了半个月还没到账，客服还骂人", "nlu_fallback")
    report = message("我申请了退款，卖家就天天打电话骂我", "report_harassment")
    extractor.process([other, unsure, report])
    assert [(e["entity"], e["value"]) for e in other.get("entities")] == [("problem", "refund")]
    assert [(e["entity"], e["value"]) for e in unsure.get("entities")] == [("problem", "refund")]
    assert not report.get("entities")


@pytest.mark.parametrize(
    ("typed", "surface", "value"),
    [("手机里存着他的短信", "短信", "sms_photo"), ("簡訊都還在", "简讯", "sms_photo"), ("有录音", "录音", "recording")],
)
def test_evidence_sms_is_the_kept_message_not_the_harassment(typed: str, surface: str, value: str) -> None:
    from weiquan.nlu.entity_values import EntityValueMapper

    msg = message(typed)
    start = msg.get("text").index(surface)
    synonym_value = {"短信": "sms", "简讯": "sms", "录音": "recording"}[surface]
    msg.set("entities", [{"entity": "evidence", "start": start, "end": start + len(surface), "value": synonym_value}])
    create(EntityValueMapper).process([msg])
    assert msg.get("entities")[0]["value"] == value


def test_harassment_sms_keeps_its_value() -> None:
    from weiquan.nlu.entity_values import EntityValueMapper

    msg = message("卖家短信轰炸我")
    msg.set("entities", [{"entity": "harassment_type", "start": 2, "end": 4, "value": "sms"}])
    create(EntityValueMapper).process([msg])
    assert msg.get("entities")[0]["value"] == "sms"


# ---------------------------------------------------------------- veiled threats (spaCy rule pipeline)
@pytest.fixture(scope="module")
def rules():
    from weiquan.nlu.spacy_pipeline import DEFAULT_PIPELINE_DIR, load_pipeline

    if not DEFAULT_PIPELINE_DIR.exists():
        pytest.skip("build/spacy_zh missing: run `make setup`")
    return load_pipeline()


def threat_found(rules, typed: str) -> bool:
    return any(ent.label_ == "THREAT" for ent in rules(normalize_text(typed)).ents)


@pytest.mark.parametrize(
    "typed",
    [
        # the home
        "卖家说：你家门口见，到时候别躲",
        "他说我住几楼他清清楚楚",
        "卖家说改天去我家坐坐，顺便聊聊评价",
        "卖家又来消息了，说他已经在我家楼下了",
        "我家的门上被人喷了字，肯定是那个卖家",
        "卖家说明天来我家，我地址都没给过他",
        # the family
        "卖家问我闺女是不是在二小读书，说放学路上要小心",
        "他说我爸妈年纪大了，经不起折腾",
        "卖家说要找我老公的麻烦",
        # property
        "卖家说你那辆电动车还想要吗",
        "他说哪天把我的车胎扎了别怪他",
        "卖家扬言要砸了我的店",
        # the person
        "卖家说晚上出门最好别一个人",
        "他说他不怕坐牢，让我等着",
        "卖家说找人开车撞我",
        "賣家說要派人盯著我",
        "卖家发了个磨刀的视频给我",
        "卖家把我单位的地址发给我了，什么也没说",
        "他说要让我在这里混不下去",
        "拆开快递里面是几片刀片",
        "退款完过了两天，收到个没下单的快递，打开是一把斧头",
        "店主放话说要让我一家人都别想好过",
        "商家恐吓我，说会让我全家鸡犬不宁",
        "卖家留言说迟早让我偿命",
        "店家说你闺女几点进校门他都盯着",
        "店主说我弟弟读哪所中学他都查到了",
        "卖家私信：你儿子长得真可爱啊",
        "他说我父母岁数不小了，别让他们出什么意外",
        "卖家发过来一段我家门口的视频",
        "卖家说在我们这边有人，叫我小心",
        "他威胁说查到我公司了，明天就去闹",
        "他说下次可就不是划车那么简单了",
        "卖家说：最近回家挺晚啊",
        "卖家留言：回家的时候当心点",
        "收到一个包裹，里面有张冥钞",
        "卖家说房子给你点了信不信",
    ],
)
def test_veiled_threats_are_caught_by_rules(rules, typed: str) -> None:
    assert threat_found(rules, typed)


@pytest.mark.parametrize(
    "typed",
    [
        "卖家骂我脑子有病，说我活该被骗",
        "卖家说要去法院告我，让我等律师函",
        "卖家说我不得好死，天天咒我",
        "卖家说他要去平台投诉我恶意差评，让我小心点",
        "快递员说明天来我家送货",
        "师傅说明天来我家安装空调",
        "快递放在我家门口被人拿走了",
        "卖家说我这种人出门买东西都会被坑",
        "我是卖家，被投诉了我的店还要不要开",
        "他说我的差评害他店铺被扣分，要我赔钱",
        "卖家把我的地址发到他们的群里了",
        "我被骂得都快在这家公司待不下去了",
        "卖家说他没有威胁我的人身安全，只是想聊聊",
        "收到的水果刀刀刃有缺口，想退货",
        "差评以后卖家又寄了一个新的杯子过来",
        "卖家天天打电话，吵得我睡不好，家人也烦",
        "卖家发短信咒我出门被车撞，就是嘴上骂",
        "现在有人在我的评论区下面骂我",
        "煤气灶打不着火，想退货",
        "孩子的学校要买校服，哪家店靠谱",
    ],
)
def test_rude_but_harmless_messages_are_not_threats(rules, typed: str) -> None:
    assert not threat_found(rules, typed)
