"""chitchat: when the classifier hesitates between two intents, let the user pick."""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import yaml
from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

LABELS_FILE = Path(__file__).with_name("intent_labels.yml")
CHOICES = 2


@lru_cache(maxsize=1)
def intent_labels() -> dict[str, str]:
    return yaml.safe_load(LABELS_FILE.read_text(encoding="utf-8"))["labels"]


def top_choices(ranking: list[dict], labels: dict[str, str], count: int = CHOICES) -> list[str]:
    return [item["name"] for item in ranking if item.get("name") in labels][:count]


class ActionClarify(Action):
    def name(self) -> str:
        return "action_clarify"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        labels = intent_labels()
        choices = top_choices(tracker.latest_message.get("intent_ranking") or [], labels)
        if len(choices) < CHOICES:
            dispatcher.utter_message(response="utter_default")
            return []
        # Payloads carry the entities already understood, so clicking loses nothing the user typed.
        entities = {e["entity"]: e["value"] for e in tracker.latest_message.get("entities") or [] if "value" in e}
        suffix = json.dumps(entities, ensure_ascii=False) if entities else ""
        buttons = [{"title": labels[name], "payload": f"/{name}{suffix}"} for name in choices]
        dispatcher.utter_message(response="utter_clarify", buttons=buttons)
        return []
