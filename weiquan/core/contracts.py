"""What crosses a process: the shapes both sides import.

A slot value, a card or a hand-off summary travels through Rasa as JSON, where no import can follow it. Each has one
type here; the producer builds it through this module and every consumer reads it through this module, so a change of
shape fails mypy or a test (tests/test_contracts.py and the golden file tests/golden/contracts.json), never a screen.

- `SuccessTime`: the `success_time` slot once the form has read the buyer's words: `{said, earliest, latest}` (ISO
  dates). Before the form reads it, the slot holds the words themselves (a string from the NLU entity).
- Cards: the `custom` payload of a bot message; the message text is only the lead-in. `render.py` (REST, WeChat) and
  `widget/src/render.js` draw them.
- `HandoffSummary`: what the operator console shows about a conversation (weiquan/handoff/summary.py builds it).
- `Delivery`, `OperatorMessage`, `SendResult`: where an operator's message is (weiquan/stores/outbox.py), what the
  channels deliver, and what the console's `POST …/messages` answers.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from enum import Enum
from functools import cache
from typing import Any, Literal, TypedDict, Union, get_args, get_type_hints


class ContractError(ValueError):
    """A value that does not have the shape its contract promises."""


# ------------------------------------------------------------------------------------------------- the time slot

@dataclass(frozen=True)
class SuccessTime:
    """When the trade reached 交易成功, as a range: `earliest == latest` for an exact date, both None when the bot
    could not learn it (the form gave up) — `said` keeps the buyer's words when there were any."""

    said: str | None
    earliest: date | None
    latest: date | None

    def __post_init__(self) -> None:
        if (self.earliest is None) != (self.latest is None):
            raise ContractError("a success time has both ends of its range or neither")
        if self.earliest is not None and self.latest is not None and self.earliest > self.latest:
            raise ContractError(f"a success time range runs backwards: {self.earliest} > {self.latest}")

    @classmethod
    def unknown(cls, said: str | None = None) -> SuccessTime:
        return cls(said, None, None)

    @property
    def known(self) -> bool:
        return self.earliest is not None

    def days_since(self, today: date) -> tuple[int, int] | None:
        """(fewest, most) days between 交易成功 and `today`; None when the date is not known."""
        if self.earliest is None or self.latest is None:
            return None
        return (today - self.latest).days, (today - self.earliest).days

    def to_slot(self) -> dict[str, str | None]:
        return {"said": self.said, "earliest": _iso(self.earliest), "latest": _iso(self.latest)}

    @classmethod
    def from_slot(cls, value: Any) -> SuccessTime | None:
        """The slot's value as a `SuccessTime`; None when the form has not read it yet (empty, or still the words)."""
        if value is None or isinstance(value, str):
            return None
        if not isinstance(value, Mapping) or set(value) != {"said", "earliest", "latest"}:
            raise ContractError(f"not a success_time slot value: {value!r}")
        said = value["said"]
        if said is not None and not isinstance(said, str):
            raise ContractError(f"success_time.said must be text: {said!r}")
        return cls(said, _date(value["earliest"]), _date(value["latest"]))


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


def _date(value: Any) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise ContractError(f"not an ISO date: {value!r}") from None


# ------------------------------------------------------------------------------------------------------- cards

class FilingPath(TypedDict):
    title: str
    url: str
    steps: list[str]


class FilingStepsCard(TypedDict):
    kind: Literal["filing_steps"]
    paths: list[FilingPath]


class ScriptLine(TypedDict):
    speaker: str  # a speaker code of the rule data (agent, you, …)
    name: str  # how the rule data names that speaker
    text: str


class PhoneScriptCard(TypedDict):
    kind: Literal["phone_script"]
    lines: list[ScriptLine]


class EvidenceEntry(TypedDict):
    code: str
    label: str
    url: str | None  # how to get it, when the rule data links a how-to page
    have: bool  # the buyer said they already have it


class EvidenceCard(TypedDict):
    kind: Literal["evidence"]
    items: list[EvidenceEntry]


class SafetyCard(TypedDict):
    kind: Literal["safety"]


class OperatorCard(TypedDict):
    """A message an operator wrote (weiquan/handoff/service.py); `label` names the sender in the widget."""

    kind: Literal["operator"]
    label: str


class HandoffStatusCard(TypedDict):
    """A hand-off status line from domain.yml ("客服已接入"): drawn as a line, not a bubble."""

    kind: Literal["handoff_status"]
    state: Literal["waiting", "connected", "released", "transfer"]


Card = Union[FilingStepsCard, PhoneScriptCard, EvidenceCard, SafetyCard, OperatorCard, HandoffStatusCard]  # noqa: UP007 - get_args reads it


@cache
def card_fields() -> dict[str, frozenset[str]]:
    """Each card kind with the fields its type has, read from the types above (the one list of kinds)."""
    fields: dict[str, frozenset[str]] = {}
    for card in get_args(Card):
        hints = get_type_hints(card)
        (kind,) = get_args(hints["kind"])
        fields[kind] = frozenset(hints)
    return fields


def card_kind(custom: Any) -> str | None:
    """The kind of a `custom` payload this version knows; None for no card or an unknown kind."""
    if isinstance(custom, Mapping) and custom.get("kind") in card_fields():
        return str(custom["kind"])
    return None


def check_card(custom: Mapping[str, Any]) -> str:
    """The card's kind, after checking it has exactly its type's fields (a test and the golden file use this)."""
    kind = card_kind(custom)
    if kind is None:
        raise ContractError(f"unknown card kind: {custom.get('kind')!r}")
    if set(custom) != card_fields()[kind]:
        raise ContractError(f"a {kind} card has the fields {sorted(card_fields()[kind])}, not {sorted(custom)}")
    return kind


# ------------------------------------------------------------------------------------------- hand-off summary

class SummaryFacts(TypedDict):
    platform: str | None
    trade_status: str | None
    success_time: str | None  # the buyer's words, masked
    harassment_type: list[str]
    evidence: list[str]
    outcome: str | None


class HandoffSummary(TypedDict):
    facts: SummaryFacts
    days_since_success: list[int] | None  # [fewest, most]
    safety: bool  # a threat to the buyer's safety was seen in this conversation
    lines: list[str]  # what the console shows, one line a fact, in the operator's words (handoff/texts.yml)


# ------------------------------------------------------------------------------------------- operator messages

class Delivery(str, Enum):
    """Where an operator's message is. The console says which (weiquan/handoff/static/console.js)."""

    DELIVERED = "delivered"  # a widget socket acknowledged it, WeChat's API accepted it, or a REST reply carried it
    STORED = "stored"  # kept: the buyer's channel shows it when the buyer returns


# The key of an operator message's `bot` event metadata that names its outbox entry. Rasa merges the metadata into the
# message it hands to the output channel, so the channel knows which entry its acknowledgement settles.
DELIVERY_ID = "delivery_id"


class OperatorMessage(TypedDict):
    """An operator's message as the outbox keeps it and a channel delivers it later."""

    text: str
    custom: OperatorCard


class SendResult(TypedDict):
    """The console's answer to `POST /api/conversations/{sender_id}/messages`."""

    sent: bool
    delivery: Literal["delivered", "stored"]
    message_id: str
