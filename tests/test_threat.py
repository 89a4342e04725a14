"""The threat detector (weiquan/nlu/threat.py): folding, the JSON model, its data, the build, and SafetyGuard.

Fast: no trained Rasa model. The tests that need the built detector use build/threat (`make setup` builds it) and
fail when it is older than its data, so a stale detector cannot pass.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from weiquan.nlu import threat
from weiquan.nlu.textnorm import normalize_text

ROOT = Path(__file__).resolve().parents[1]
HELDOUT = ["safety_set.yml", "nlu_heldout.yml", "nlu_heldout_real.yml", "nlu_blind.yml", "safety_eval.yml",
           "safety_final.yml"]


@pytest.fixture(scope="module")
def detector() -> threat.ThreatDetector:
    if not (threat.DEFAULT_BUILD_DIR / threat.MODEL_NAME).is_file():
        pytest.fail("build/threat missing: run `make setup`")
    return threat.ThreatDetector.load()


# ---------------------------------------------------------------- folding
@pytest.mark.parametrize(
    ("typed", "folded"),
    [
        ("賣家說要弄死我", "卖家说要弄死我"),  # Traditional, through the project's normaliser
        ("卖家说要🔪了我", "卖家说要刀了我"),  # emoji for the violent word
        ("卖家发了🔥你家", "卖家发了火你家"),
        ("他说 nong si ni", "他说弄死你"),  # pinyin typed instead of hanzi
        ("卖家说要sha了我", "卖家说要杀了我"),
        ("卖家：nsdl", "卖家：你死定了"),
        ("卖家说要把我鲨了", "卖家说要把我杀了"),  # homophone
        ("你給我等著", "你给我等着"),
        ("他说 ni er zi ji dian fang xue", "他说你儿子几点放学"),  # pinyin phrases, with or without spaces
        ("卖家发 kaihe shang men", "卖家发开盒上门"),
        ("seller说 u r dead", "seller说你死定了"),  # English phrases
        ("佢話今晚嚟揾你", "他说今晚来找你"),  # Cantonese words, after Traditional → Simplified
        ("他说要整思我", "他说要整死我"),  # typed forms of 死 after a violent verb
        ("打4你", "打死你"),
    ],
)
def test_fold_spells_out_the_violent_word(typed: str, folded: str) -> None:
    assert threat.fold(typed) == folded


def test_fold_leaves_other_ascii_and_button_payloads_alone() -> None:
    assert threat.fold("iphone 充电器 html") == normalize_text("iphone 充电器 html")
    assert threat.fold("U盘 fa huo 了吗") == "u盘 fa huo 了吗"  # no single-letter or 货/火 guesses
    assert threat.fold("电话打不通，思路乱了") == "电话打不通，思路乱了"
    assert threat.fold("/affirm") == ""
    assert threat.fold("") == ""


# ---------------------------------------------------------------- the JSON model equals scikit-learn's
def test_the_json_model_scores_like_scikit_learn() -> None:
    texts = ["卖家说要弄死我", "卖家说要砍我", "他说知道我住哪", "今晚去你家", "卖家一直打电话", "卖家骂我穷鬼",
             "快递什么时候到", "我要退款", "卖家说要告我", "你好"]
    labels = [True] * 4 + [False] * 6
    model = threat.fit(texts, labels)
    vectorizer = threat._vectorizer()
    matrix = vectorizer.fit_transform([threat.fold(t) for t in texts])
    reference = threat._classifier().fit(matrix, labels)
    for text in [*texts, "卖家说要弄我", "完全无关的句子"]:
        expected = reference.predict_proba(vectorizer.transform([threat.fold(text)]))[0, 1]
        assert math.isclose(model.score(threat.fold(text)), expected, abs_tol=1e-4)
    again = threat.LinearModel.from_json(json.loads(json.dumps(model.to_json())))
    assert again.score(threat.fold("卖家说要弄死我")) == model.score(threat.fold("卖家说要弄死我"))


def test_recall_threshold_keeps_the_target_share_of_threats() -> None:
    scores = [i / 100 for i in range(100)]
    labels = [True] * 100
    threshold = threat.recall_threshold(scores, labels, target=0.98)
    kept = sum(1 for s in scores if s >= threshold)
    assert kept >= 98 and threshold > 0.01


# ---------------------------------------------------------------- the data
@pytest.fixture(scope="module")
def examples() -> list[threat.Example]:
    return threat.load_examples()


def test_the_data_is_large_varied_and_has_more_negatives(examples: list[threat.Example]) -> None:
    threats = [e for e in examples if e.threat]
    negatives = [e for e in examples if not e.threat]
    assert len(threats) > 1000 and len(negatives) > len(threats)
    assert {e.family for e in threats} >= {"body", "home", "family", "work_school", "property", "fire_acid_paint",
                                          "parcels", "people_sent", "thrown", "watched", "pasted", "forms"}


def test_no_text_is_both_a_threat_and_not(examples: list[threat.Example]) -> None:
    labels: dict[str, set[bool]] = {}
    for e in [*examples, *threat.expand_templates(), *threat.load_intent_examples()]:
        labels.setdefault(threat.fold(e.text), set()).add(e.threat)
    assert not [text for text, seen in labels.items() if len(seen) > 1]


def test_no_evaluation_message_is_in_the_training_data(examples: list[threat.Example]) -> None:
    import yaml

    trained = {threat.fold(e.text) for e in [*examples, *threat.expand_templates()]}
    held_out = []
    for name in HELDOUT:
        text = (ROOT / "tests" / "data" / name).read_text(encoding="utf-8")
        data = yaml.safe_load(text)
        if "threats" in data:
            held_out += [row["text"] for key in ("threats", "non_threats") for row in data[key]]
        else:
            held_out += [line.strip()[2:] for block in data["nlu"] for line in str(block["examples"]).splitlines()
                         if line.strip().startswith("- ")]
    folded = [threat.fold(threat.ENTITY_MARKUP.sub(r"\1", text)) for text in held_out]
    copied = [text for text in folded if len(text) >= 6 and text in trained]
    assert not copied, copied


def test_templates_expand_the_same_way_every_time() -> None:
    assert threat.expand_templates() == threat.expand_templates()
    assert len({e.text for e in threat.expand_templates()}) > 400


# ---------------------------------------------------------------- the built detector
def test_the_built_detector_is_current_and_its_threshold_in_range(detector: threat.ThreatDetector) -> None:
    assert detector.info["data_digest"] == threat.data_digest(), "build/threat is stale: run `make setup`"
    assert 0.05 <= detector.threshold <= 0.8
    report = detector.info["report"]
    assert report["cv_model"]["recall"] >= threat.RECALL_TARGET  # out-of-fold, on data the fold never saw


@pytest.mark.parametrize(
    "typed",
    ["卖家说他今晚带人过来，让我把门锁好", "他发消息说我女儿放学那条路他很熟", "卖家讲要拿刀捅我",
     "收到一个包裹，里面是一把斧子", "你家几楼我知道，等着"],
)
def test_the_detector_flags_threats(detector: threat.ThreatDetector, typed: str) -> None:
    assert detector.verdict(typed).threat


@pytest.mark.parametrize("typed", ["卖家一天打了十几个电话让我删差评", "卖家说要去平台投诉我", "这把菜刀生锈了能退吗",
                                   "双十一秒杀没抢到", "我要报警，卖家骗了我的钱", "你好"])
def test_the_detector_leaves_ordinary_messages_alone(detector: threat.ThreatDetector, typed: str) -> None:
    verdict = detector.verdict(typed)
    assert not verdict.threat, verdict


def test_rule_and_model_each_raise_the_alarm_alone(detector: threat.ThreatDetector) -> None:
    by_rule_only = detector.verdict("他说你住哪他一清二楚，还问我家是不是几栋几单元")
    assert by_rule_only.by_rule and by_rule_only.rule_hits
    by_model = detector.verdict("卖家说要拿刀来找我")
    assert by_model.by_model and by_model.score >= detector.threshold
    assert threat.Verdict(0.9, False, True).threat and threat.Verdict(0.0, True, False).threat


# ---------------------------------------------------------------- SafetyGuard in the NLU
def _guard():
    from rasa.engine.graph import ExecutionContext, GraphSchema
    from rasa.engine.storage.local_model_storage import LocalModelStorage
    from rasa.engine.storage.resource import Resource

    from weiquan.nlu.safety import SafetyGuard

    return SafetyGuard.create(SafetyGuard.get_default_config(), LocalModelStorage(Path("/nonexistent")),
                              Resource("SafetyGuard"), ExecutionContext(GraphSchema({}), "t"))


def _message(text: str, intent: str, signals: list[str] | None = None):
    from rasa.shared.nlu.training_data.message import Message

    ranking = [{"name": intent, "confidence": 0.8}, {"name": "report_safety_threat", "confidence": 0.1}]
    return Message(data={"text": text, "intent": {"name": intent, "confidence": 0.8}, "intent_ranking": ranking,
                         "safety_signals": signals or []})


def test_safety_guard_overrides_the_intent_when_the_detector_fires(detector: threat.ThreatDetector) -> None:
    guard = _guard()
    threatened = _message("卖家说要拿刀来找我", "report_harassment")
    spacy_hit = _message("随便什么话", "out_of_scope", signals=["知道我住哪"])
    calm = _message("卖家一天打了十几个电话让我删差评", "report_harassment")
    guard.process([threatened, spacy_hit, calm])

    out = threatened.as_dict(only_output_properties=True)
    assert out["intent"] == {"name": "report_safety_threat", "confidence": 1.0}
    assert out["safety_override"] is True and out["threat"]["by_model"] is True
    assert [item["name"] for item in threatened.get("intent_ranking")][:2] == ["report_harassment",
                                                                             "report_safety_threat"]  # kept

    out = spacy_hit.as_dict(only_output_properties=True)
    assert out["intent"]["name"] == "report_safety_threat" and out["threat"]["by_rule"] is True

    out = calm.as_dict(only_output_properties=True)
    assert calm.get("intent")["name"] == "report_harassment" and out["safety_override"] is False
    assert out["threat"]["by_rule"] is False and out["threat"]["by_model"] is False


def _safety_first(text: str):
    from rasa.shared.nlu.training_data.message import Message

    ranking = [{"name": "report_safety_threat", "confidence": 0.7}, {"name": "report_harassment", "confidence": 0.2}]
    return Message(data={"text": text, "intent": {"name": "report_safety_threat", "confidence": 0.7},
                         "intent_ranking": ranking, "safety_signals": []})


def test_safety_guard_drops_the_intent_models_threat_only_when_the_detector_is_sure(
        detector: threat.ThreatDetector) -> None:
    guard = _guard()
    sure_not = _safety_first("请问这个快递什么时候到")
    both = _safety_first("卖家说要拿刀来找我")
    assert detector.verdict(sure_not.get("text")).score < 0.05
    guard.process([sure_not, both])

    out = sure_not.as_dict(only_output_properties=True)
    assert out["intent"]["name"] == "report_harassment" and out["safety_veto"] is True
    assert [item["name"] for item in sure_not.get("intent_ranking")][0] == "report_safety_threat"  # ranking kept

    out = both.as_dict(only_output_properties=True)
    assert both.get("intent")["name"] == "report_safety_threat" and out["safety_veto"] is False



def test_a_long_messages_sentences_are_scored_alone() -> None:
    long = "第一句话说的是物流很慢，等了好几天。第二句话说卖家的态度很差，一直不回消息！"
    assert threat.sentences(threat.fold(long)) == ["第一句话说的是物流很慢，等了好几天",
                                                   "第二句话说卖家的态度很差，一直不回消息"]
    assert threat.sentences(threat.fold("只有一句话，而且足够长，不用拆开")) == []
    assert threat.sentences(threat.fold("短。也短。")) == []


def test_no_training_example_is_a_message_of_a_set_kept_apart(examples: list[threat.Example]) -> None:
    """The detector never trains on a message of an evaluation set (6+ characters after folding): round 3 read the
    second blind set's misses, and three short lines of rounds 1-2 (「走夜路小心点」, 「晚上出门试试」,
    「下一个快递什么时候到」) had turned up in it by chance; they were taken out of the training files."""
    from bench import safety

    kept_apart = {threat.fold(item.text) for spec in safety.SETS if spec.path.is_file() for item in safety.load(spec)}
    written = examples + threat.expand_templates()
    copied = [f"{e.source}: {e.text}" for e in written
              if len(threat.fold(e.text)) >= 6 and threat.fold(e.text) in kept_apart]
    assert not copied, copied
