"""The threat rules (THREAT in weiquan/nlu/rule_patterns.yml), matched by the detector on the folded text.

Each family must raise the alarm alone, without the model; the same words without menace must not. Also: the
rules stay silent on the intent model's everyday training data and on the held-out sets' non-threats.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from weiquan.nlu import threat

ROOT = Path(__file__).resolve().parents[1]
RULES = threat.ThreatRules.from_file()


def fires(text: str) -> bool:
    return bool(RULES.hits(threat.fold(text)))


FAMILIES = {
    "body": ["卖家扬言要弄残我", "他说抓到我就打断我的腿", "店主说要宰了我"],
    "life": ["卖家说你这种人活不长的", "他留言让我准备好后事", "卖家说等着给你收尸"],
    "home": ["卖家说他知道我住哪里", "他说已经到了我们小区楼下", "卖家扬言明天来我家"],
    "workplace_school": ["对方说在我公司门口等着", "卖家说他蹲在我学校大门外"],
    "family": ["卖家说我家孩子放学路上要小心", "他说要找我爸妈的麻烦"],
    "people_sent": ["卖家在群里喊人帮我去问候一下这个买家", "店主说他叫了一车兄弟过来", "他说要找人来揍我"],
    "thrown": ["他说要往我家窗户上扔砖头", "卖家说要拿酒瓶砸我"],
    "fire": ["他说要一把火烧了我的店", "卖家说要往我家门上浇汽油", "卖家说要拧开我家煤气"],
    "acid_paint": ["他说要泼我硫酸", "卖家说要在我家门口泼红漆"],
    "parcels": ["差评后收到一个包裹，里面是寿衣", "卖家说下次寄来的快递里就是刀", "门把手上挂着一袋冥币"],
    "coming_to_beat": ["他说明晚就过来收拾我", "客服说她老公会去找我，到时候揍成什么样她不管"],
    "veiled_imminent": ["他说我会后悔的，马上", "卖家说有我好看，等着吧"],
    "slang_pinyin_emoji": ["卖家发了 nsn", "卖家说要 sha le ni", "卖家先发🔪，然后发了我家的小区名"],
    # round 2
    "doxxing": ["卖家把我开盒了", "他说人肉出来就上门", "卖家把我的地址发到群里，叫附近的人去会会我",
                "他说我住几栋几楼他都打听到了", "对方说我在哪上班他门儿清"],
    "people_sent_r2": ["他说他的人已经在路上了", "卖家说叫几个老乡过来教训我一下"],
    "tonight_r2": ["他说今儿晚上找我算账", "卖家让我半夜别睡太死", "佢話今晚嚟揾我算賬"],
    "body_slang": ["对方说要锤死你", "卖家说要开我的瓢", "他说手给我剁了", "老子迟早收拾你", "删评，不然见血"],
    "thrown_r2": ["他说要泼我一身墨水", "卖家说要拿开水浇我"],
    "fire_r2": ["他说我家木门一点就着", "卖家说要让我的店冒烟"],
    "parcel_r2": ["卖家说要给我寄一件寿衣", "他说补寄的包裹里有刀片"],
    "family_r2": ["他说动不了我就动我家人", "卖家说要让我爸妈白发人送黑发人"],
    "veiled_place": ["你们公司在软件园那栋是吧，下班留意一下", "他把我的照片P成遗像", "楼主等着，我们村的人提刀赶来了"],
    # round 3
    "visit_r3": ["卖家说照着你填的地址周末找过去", "他问我猜他敢不敢上门", "对方发消息说已经在我家楼道里了",
                 "卖家说你住的那个小区他踩过点", "他就回了一句：小区门口见吧", "卖家说有你的地址，随时能过来",
                 "你等着，老子这就过去"],
    "life_disposal_r3": ["卖家说想退款就用命来抵", "他说把你塞进编织袋沉江", "卖家说让你人间蒸发", "他说给你留个全尸"],
    "narrative_r3": ["被告人王某持斧头到被害人家中打砸", "张某某纠集多人到被害人单位门口围堵",
                     "被告人多次扬言要烧死被害人", "一男子掏出菜刀对店员进行威胁"],
    "tampered_r3": ["卖家说你家孩子以后吃的东西可不一定干净"],
}


@pytest.mark.parametrize(("family", "text"), [(f, t) for f, texts in FAMILIES.items() for t in texts])
def test_each_family_raises_the_alarm_alone(family: str, text: str) -> None:
    assert fires(text), f"{family}: {text}"


@pytest.mark.parametrize(
    "text",
    [
        "这个价钱是要我的命啊",  # exasperation
        "杀了我吧，又要排队退货",
        "一棍子打死一船人不公平",  # idiom
        "我老婆说颜色不好看",
        "给老人买的寿衣尺码小了",  # products
        "骨灰盒能不能七天无理由退",
        "买的硫酸铜是做实验用的",
        "磨刀石是假的",
        "同行找人给我打恶意差评",
        "被同行雇人刷差评了",
        "我明天来找你",  # to the bot
        "朋友今晚来我家吃饭，能不能下午送到",
        "卖家说售后人员明天去我家",
        "我家的门牌号写错了",
        "⚰️造型的万圣节蜡烛还有货吗",
        "这破东西我想一把火烧了",
        "卖家说你死定了，平台肯定判你输",
        "卖家没说要伤害我，就是天天骂",  # negated
        "卖家说知道我住哪个城市，要去当地消协投诉我",
        "快递到了我们小区的驿站",
        "卖家一天打了二十个电话",
        "卖家骂我穷鬼，说我买不起别买",
        "卖家说要去法院告我",
        "双十一秒杀，砍价砍到一块钱，笑死",
        "卖家把我的收货地址发到群里，说大家看看这个奇葩",  # a leak without menace
        "盲盒开盒视频今晚发",
        "兄弟们出发去吃烧烤了",
        "晚上气得睡不着",
        "给奶奶买的寿衣到了",
        "你等着，我下楼给你开门",
        # round 3
        "快递员按地址找过来了，我不在家",
        "卖家说会按地址补发",
        "我明天去门店看看",
        "外卖小哥说到我楼下了",
        "朋友说在我家楼下了，一起去吃饭",
        "明天学校门口见",
        "你猜我买了什么颜色",
        "打工就是拿命换钱",
        "手机掉河里了还能修吗",
        "被告人李某盗窃被害人手机一部",
        "被告人驾车与被害人相撞，致其轻伤",
        "我表弟刚出来工作",
        "门口见过",
    ],
)
def test_the_same_words_without_menace_stay_quiet(text: str) -> None:
    assert not fires(text), RULES.hits(threat.fold(text))


def test_rules_are_silent_on_the_intent_models_everyday_data() -> None:
    noisy = [e.text for e in threat.load_intent_examples() if not e.threat and fires(e.text)]
    assert not noisy, noisy


def test_rules_are_almost_silent_on_held_out_non_threats() -> None:
    from bench import safety

    alarms = [item.text for spec in safety.SETS if spec.path.is_file() and not spec.secret
              for item in safety.load(spec) if not item.threat and fires(item.text)]
    # measured: 2 of about 1,550 (a rule question about mailed 冥币, a phone case one would burn)
    assert len(alarms) <= 3, alarms


def test_the_spacy_pipeline_reads_the_same_rules() -> None:
    from weiquan.nlu.spacy_pipeline import load_patterns

    assert len(load_patterns()["patterns"]) == len(RULES.patterns) + 2  # plus ORDER_ID and PHONE
