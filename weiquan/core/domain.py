"""domain.yml, read once: the one source of the lists other code derives from.

- the form's questions (`forms.complaint_form.required_slots`) and, by Rasa's convention, the response that asks
  each one (`utter_ask_<slot>`);
- what the form records for a question it moved past, from the slot's type (a list slot: `["unknown"]`; a slot with
  a contract type, the time range: that type's "unknown"; any other: `"unknown"`);
- which responses carry a card, and of which kind (`custom: {kind: …}` on the response in domain.yml).

Read from the file because the action server does not get the domain with every call (domain.yml sets
`send_domain: false` on the form's validation: it was two thirds of each call's payload).
"""
from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from weiquan.core.contracts import SuccessTime, card_fields
from weiquan.core.engine import UNKNOWN

DOMAIN_FILE = Path(__file__).resolve().parents[2] / "domain.yml"
COMPLAINT_FORM = "complaint_form"
# Slots whose value is a contract type (weiquan/core/contracts.py) rather than a code or a list of codes.
SLOT_CONTRACTS = {"success_time": SuccessTime}


@cache
def domain() -> Mapping[str, Any]:
    return yaml.safe_load(DOMAIN_FILE.read_text(encoding="utf-8"))


def form_slots(form: str = COMPLAINT_FORM) -> tuple[str, ...]:
    """The form's questions, in the order domain.yml lists them."""
    return tuple(domain()["forms"][form]["required_slots"])


def question(slot: str) -> str:
    """The response that asks for `slot` (Rasa's `utter_ask_<slot>` convention; the consistency test checks it)."""
    return f"utter_ask_{slot}"


def is_list_slot(slot: str) -> bool:
    return bool(domain()["slots"][slot]["type"] == "list")


def give_up_value(slot: str) -> Any:
    """What the form records for `slot` once it stopped asking: "not known", in the slot's own shape."""
    if slot in SLOT_CONTRACTS:
        return SLOT_CONTRACTS[slot].unknown().to_slot()
    return [UNKNOWN] if is_list_slot(slot) else UNKNOWN


@cache
def response_cards() -> Mapping[str, str]:
    """{response: card kind} for every response whose variations declare `custom: {kind: …}`."""
    cards: dict[str, str] = {}
    for name, variations in domain()["responses"].items():
        kinds = {str((variation.get("custom") or {}).get("kind")) for variation in variations}
        if kinds == {"None"}:
            continue
        if len(kinds) != 1 or not kinds <= set(card_fields()):
            raise ValueError(f"{name}: every variation must declare the same known card kind, not {kinds}")
        cards[name] = kinds.pop()
    return cards
