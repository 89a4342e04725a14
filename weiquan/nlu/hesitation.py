"""Rasa component: ask instead of guessing between a buyer's report and its look-alikes.

Runs after FallbackClassifier and before SafetyGuard. The message's intent becomes `nlu_fallback` (the model's
`intent_ranking` kept, with `nlu_fallback` put first as FallbackClassifier does) when

- margin: the model's top two intents are one of `pairs` (report_harassment/seller_accused,
  report_harassment/out_of_scope) and their confidences differ by less than `margin`; or
- role cue: the model chose one role but the text carries only the other role's cue (role_cues.yml), e.g.
  "被卖家缠上了" (a buyer) taken for seller_accused. The other role's intent is moved up to second place in the
  ranking, so the clarifying question is the role question.
- unnamed seller: the model chose seller_accused below `unnamed_seller_below` and the text has no seller cue at all
  ("恶意骚扰怎么办"): the role question too. Giving a harassed buyer the seller's advice is the worst answer this bot
  can give; a seller asked once loses one click.

- no role: FallbackClassifier hesitated, no role was confirmed (below), the text is about harassment (role_cues.yml
  `topic`) or carries a role cue, and a role is among the model's first three guesses ("关于恶意骚扰"): the pair
  becomes the two roles. When the words name one role only, the role is not asked: the pair is the model's best
  guess and that role's intent ("role_settled").

- no real hesitation: FallbackClassifier hesitated between two intents that lead to the same place (`same_path`:
  report_harassment and inform both start the complaint form) — the model's best guess is taken.

- the other way round, when FallbackClassifier hesitated but the model's best guess is a role and the text carries
  that role's cue and not the other's ("被差评师投诉了恶意骚扰" with seller_accused on top), the guess is taken:
  the words settle what the model could not (`nlu_hesitation` is then empty and `role_confirmed` is true).

`nlu_hesitation` on the parse result says why (`reason`) and between which two intents (`pair`), for the dialogue's
action_clarify. A safety signal still wins: SafetyGuard runs after this and clears the hesitation.
"""
from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import (
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message

CUES_FILE = Path(__file__).with_name("role_cues.yml")
FALLBACK = "nlu_fallback"
BUYER_INTENT = "report_harassment"
SELLER_INTENT = "seller_accused"
HESITATION = "nlu_hesitation"
ROLE_CONFIRMED = "role_confirmed"


@dataclass(frozen=True)
class RoleCues:
    buyer: tuple[re.Pattern[str], ...]
    seller: tuple[re.Pattern[str], ...]
    topic: tuple[re.Pattern[str], ...] = ()

    def about_harassment(self, text: str) -> bool:
        lowered = text.lower()
        return any(p.search(lowered) for p in self.topic)

    def roles(self, text: str) -> tuple[bool, bool]:
        """(has a buyer cue, has a seller cue)."""
        lowered = text.lower()
        return any(p.search(lowered) for p in self.buyer), any(p.search(lowered) for p in self.seller)


def load_cues(path: Path = CUES_FILE) -> RoleCues:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    buyer = tuple(re.compile(str(p)) for p in data.get("buyer") or [])
    seller = tuple(re.compile(str(p)) for p in data.get("seller") or [])
    if not buyer or not seller:
        raise ValueError(f"{path}: needs `buyer` and `seller` cue lists")
    return RoleCues(buyer, seller, tuple(re.compile(str(p)) for p in data.get("topic") or []))


@functools.lru_cache(maxsize=1)
def default_cues() -> RoleCues:
    return load_cues()


@dataclass(frozen=True)
class Hesitation:
    reason: str  # "margin", "role_cue", "unnamed_seller", "no_role" or "role_settled"
    pair: tuple[str, str]  # the model's choice first


def decide(
    intent: str,
    ranking: Sequence[dict[str, Any]],
    text: str,
    cues: RoleCues,
    pairs: Sequence[Sequence[str]],
    margin: float,
    unnamed_seller_below: float = 0.0,
) -> Hesitation | None:
    """Whether to ask instead of taking `intent`; pure, so it is tested without a model."""
    if intent == FALLBACK or not ranking:
        return None
    buyer, seller = cues.roles(text)
    if intent == SELLER_INTENT and buyer and not seller:
        return Hesitation("role_cue", (SELLER_INTENT, BUYER_INTENT))
    if intent == BUYER_INTENT and seller and not buyer:
        return Hesitation("role_cue", (BUYER_INTENT, SELLER_INTENT))
    top = ranking[0]
    sure = float(top.get(PREDICTED_CONFIDENCE_KEY) or 0) >= unnamed_seller_below
    if intent == SELLER_INTENT and not seller and top.get(INTENT_NAME_KEY) == SELLER_INTENT and not sure:
        return Hesitation("unnamed_seller", (SELLER_INTENT, BUYER_INTENT))
    if len(ranking) < 2:
        return None
    first, second = ranking[0], ranking[1]
    names = {first.get(INTENT_NAME_KEY), second.get(INTENT_NAME_KEY)}
    if first.get(INTENT_NAME_KEY) != intent or not any(names == set(pair) for pair in pairs):
        return None
    gap = float(first.get(PREDICTED_CONFIDENCE_KEY) or 0) - float(second.get(PREDICTED_CONFIDENCE_KEY) or 0)
    if gap < margin:
        return Hesitation("margin", (first[INTENT_NAME_KEY], second[INTENT_NAME_KEY]))
    return None


def model_guesses(ranking: Sequence[dict[str, Any]], count: int) -> list[str]:
    """The model's first `count` intents, nlu_fallback left out."""
    return [str(item.get(INTENT_NAME_KEY)) for item in ranking if item.get(INTENT_NAME_KEY) != FALLBACK][:count]


def confirmed_role(intent: str, ranking: Sequence[dict[str, Any]], text: str, cues: RoleCues) -> str | None:
    """Under nlu_fallback: the model's best role guess when the text's role cues agree with it and only with it."""
    if intent != FALLBACK:
        return None
    best = next(iter(model_guesses(ranking, 1)), None)
    buyer, seller = cues.roles(text)
    if best == BUYER_INTENT and buyer and not seller:
        return BUYER_INTENT
    if best == SELLER_INTENT and seller and not buyer:
        return SELLER_INTENT
    return None


def unplaced_role(intent: str, ranking: Sequence[dict[str, Any]], text: str, cues: RoleCues) -> Hesitation | None:
    """Under nlu_fallback, when no role was confirmed: a message about harassment or with a role cue, with a role
    among the model's first three guesses, gets the role question (its buttons are the two roles) — unless the
    words name one role only ("淘宝卖家骚扰我，怎么处理"): then the role is not in doubt, and the question offers the
    model's best guess and that role's intent ("role_settled")."""
    if intent != FALLBACK or not (cues.about_harassment(text) or any(cues.roles(text))):
        return None
    guesses = model_guesses(ranking, 3)
    if BUYER_INTENT not in guesses and SELLER_INTENT not in guesses:
        return None
    buyer, seller = cues.roles(text)
    if buyer != seller:
        named = BUYER_INTENT if buyer else SELLER_INTENT
        other = SELLER_INTENT if buyer else BUYER_INTENT
        if guesses[0] not in (named, other):
            return Hesitation("role_settled", (guesses[0], named))
    return Hesitation("no_role", (BUYER_INTENT, SELLER_INTENT))


def one_path(intent: str, ranking: Sequence[dict[str, Any]], groups: Sequence[Sequence[str]]) -> bool:
    """Under nlu_fallback: the model's top two intents lead to the same place, so there is nothing to ask."""
    if intent != FALLBACK:
        return False
    names = set(model_guesses(ranking, 2))
    return len(names) == 2 and any(names <= set(group) for group in groups)


def ranking_for(ranking: Sequence[dict[str, Any]], hesitation: Hesitation) -> list[dict[str, Any]]:
    """nlu_fallback first, then the model's ranking with the pair's second intent right after its first."""
    top = ranking[0] if ranking else {PREDICTED_CONFIDENCE_KEY: 0.0}
    rest = [dict(item) for item in ranking]
    partner = hesitation.pair[1]
    index = next((i for i, item in enumerate(rest) if item.get(INTENT_NAME_KEY) == partner), None)
    moved = {INTENT_NAME_KEY: partner, PREDICTED_CONFIDENCE_KEY: 0.0} if index is None else rest.pop(index)
    rest.insert(1 if rest else 0, moved)
    fallback = {INTENT_NAME_KEY: FALLBACK, PREDICTED_CONFIDENCE_KEY: float(top.get(PREDICTED_CONFIDENCE_KEY) or 0)}
    return [fallback, *rest]


def fallback_hesitation(intent: dict[str, Any], ranking: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """When FallbackClassifier already hesitated: the same record, with its top two intents as the pair."""
    if intent.get(INTENT_NAME_KEY) != FALLBACK:
        return None
    return {"reason": "low_confidence", "pair": model_guesses(ranking, 2)}


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False)
class HesitationGuard(GraphComponent):
    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {
            "margin": 0.3,
            "unnamed_seller_below": 0.7,
            "pairs": [[BUYER_INTENT, SELLER_INTENT], [BUYER_INTENT, "out_of_scope"]],
            "same_path": [[BUYER_INTENT, "inform"]],
            "cues_path": None,
        }

    def __init__(self, config: dict[str, Any], cues: RoleCues) -> None:
        self._margin = float(config.get("margin", 0.3))
        self._unnamed_seller_below = float(config.get("unnamed_seller_below", 0.7))
        self._pairs = [tuple(pair) for pair in config.get("pairs") or []]
        self._same_path = [tuple(group) for group in config.get("same_path") or []]
        self._cues = cues

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> HesitationGuard:
        path = config.get("cues_path")
        return cls(config, load_cues(Path(path)) if path else default_cues())

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            intent = message.get(INTENT) or {}
            name, text = intent.get(INTENT_NAME_KEY) or "", message.get(TEXT) or ""
            ranking = message.get(INTENT_RANKING_KEY) or []
            confirmed = confirmed_role(name, ranking, text, self._cues)
            if confirmed or one_path(name, ranking, self._same_path):
                model_ranking = [item for item in ranking if item.get(INTENT_NAME_KEY) != FALLBACK]
                message.set(INTENT, dict(model_ranking[0]), add_to_output=True)
                message.set(INTENT_RANKING_KEY, model_ranking, add_to_output=True)
                message.set(HESITATION, None, add_to_output=True)
                message.set(ROLE_CONFIRMED, bool(confirmed), add_to_output=True)
                continue
            hesitation = decide(name, ranking, text, self._cues, self._pairs, self._margin, self._unnamed_seller_below)
            if hesitation is None:
                unplaced = unplaced_role(name, ranking, text, self._cues)
                record = {"reason": unplaced.reason, "pair": list(unplaced.pair)} if unplaced else None
                message.set(HESITATION, record or fallback_hesitation(intent, ranking), add_to_output=True)
                continue
            new_ranking = ranking_for(ranking, hesitation)
            message.set(INTENT, dict(new_ranking[0]), add_to_output=True)
            message.set(INTENT_RANKING_KEY, new_ranking, add_to_output=True)
            message.set(HESITATION, {"reason": hesitation.reason, "pair": list(hesitation.pair)}, add_to_output=True)
        return messages
