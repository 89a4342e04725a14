"""Baseline (c) of the NLU benchmark: a hand-written keyword table, not a model and not used by the bot.

It answers "how far does matching a few obvious words get you?", the floor any trained pipeline has to clear.
Written from the intent meanings in docs/architecture.md, not from the training or held-out examples, and never
tuned on them. Rules are tried top to bottom on the raw text (no normalisation); the first intent with a keyword
in the message wins, otherwise DEFAULT_INTENT. It extracts no entities.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEFAULT_INTENT = "out_of_scope"

# Order matters: danger first (never miss it), then the specific questions, then the general report, then chit-chat.
KEYWORD_TABLE: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("report_safety_threat", ("杀", "砍", "捅", "弄死", "打死", "上门", "家门口", "知道我住", "冥币", "寿衣", "花圈",
                              "刀", "人身安全", "小心点", "家人", "报警")),
    ("seller_accused", ("我是卖家", "我是店主", "买家投诉我", "被买家投诉", "被投诉骚扰", "买家说我骚扰")),
    ("request_human", ("人工", "真人客服", "转客服", "小二")),
    ("ask_deadline_passed", ("超过15天", "过了15天", "超过十五天", "过了十五天", "超时", "过期", "来不及")),
    ("ask_appeal", ("申诉", "不服", "不认可", "结果不对", "不公平", "驳回")),
    ("ask_processing_time", ("多久", "多长时间", "几天", "什么时候出结果", "进度")),
    ("ask_penalty", ("扣分", "处罚", "扣几分", "怎么处理卖家", "封店", "后果")),
    ("ask_evidence", ("证据", "举证", "截图有用", "录音", "凭证")),
    ("ask_how_to_file", ("怎么投诉", "如何投诉", "在哪投诉", "哪里投诉", "投诉入口", "投诉按钮", "怎么举报")),
    ("report_harassment", ("骚扰", "打电话", "电话", "短信", "骂", "辱骂", "泄露", "威胁", "恐吓", "轰炸")),
    ("stop", ("算了", "不弄了", "不投诉了", "先不", "取消")),
    ("bot_challenge", ("机器人", "你是人", "真人吗", "是不是人")),
    ("thank", ("谢谢", "感谢", "多谢", "谢了")),
    ("goodbye", ("再见", "拜拜", "下次见", "先走了")),
    ("greet", ("你好", "您好", "在吗", "哈喽", "嗨")),
    ("deny", ("不是", "没有", "不对", "不要", "否")),
    ("affirm", ("是的", "对的", "好的", "没错", "嗯", "可以")),
    ("inform", ("淘宝", "天猫", "交易成功", "确认收货", "天前", "截图", "旺旺")),
)


@dataclass(frozen=True)
class KeywordClassifier:
    table: tuple[tuple[str, tuple[str, ...]], ...] = KEYWORD_TABLE
    default: str = DEFAULT_INTENT

    def classify(self, text: str) -> str:
        for intent, keywords in self.table:
            if any(keyword in text for keyword in keywords):
                return intent
        return self.default

    def parse(self, text: str) -> dict[str, Any]:
        """Same shape as Rasa's parse result, so the benchmark treats all three alike."""
        intent = self.classify(text)
        return {"text": text, "intent": {"name": intent, "confidence": 1.0}, "entities": []}
