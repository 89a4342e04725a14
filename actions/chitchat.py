
"""chitchat: when the NLU hesitates between two intents, ask one short question with a button for each."""
from __future__ import annotations

import json
from pathlib import Path

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from weiquan.core.texts import TextFile, load_text_file

LABELS_FILE = Path(__file__).with_name("intent_labels.yml")
CHOICES = 2
FALLBACK_INTENT = "nlu_fallback"


def clarify_table() -> TextFile:
    return load_text_file(LABELS_FILE)


def top_choices(latest: dict, labels: dict[str, str], count: int = CHOICES) -> list[str]:
    """The pair the NLU hesitated between (`nlu_hesitation`, weiquan/nlu/hesitation.py), else the top of its ranking."""
    pair = (latest.get("nlu_hesitation") or {}).get("pair") or []
    if len(pair) == count and all(name in labels for name in pair):
        return list(pair)
    return [item["name"] for item in latest.get("intent_ranking") or [] if item.get("name") in labels][:count]


def question_for(choices: list[str]) -> str:
    """The pair's own question ("是卖家在骚扰你，还是你作为卖家被投诉了？"), or the generic one."""
    pair = set(choices)
    for entry in clarify_table().get("pairs") or []:
        if set(entry["intents"]) == pair:
            return str(entry["response"])
    return "utter_clarify"


def misunderstood_twice(tracker: Tracker) -> bool:
    """The user's previous message was not understood either."""
    intents = [(event.get("parse_data") or {}).get("intent", {}).get("name")
               for event in tracker.events if event.get("event") == "user"]
    return len(intents) >= 2 and intents[-2] == FALLBACK_INTENT


class ActionClarify(Action):
    def name(self) -> str:
        return "action_clarify"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        labels = clarify_table()["labels"]
        choices = top_choices(tracker.latest_message, labels)
        if len(choices) < CHOICES:
            dispatcher.utter_message(response="utter_default")
        else:
            # Payloads carry the entities already understood, so clicking loses nothing the user typed.
            entities = {e["entity"]: e["value"] for e in tracker.latest_message.get("entities") or []
                        if isinstance(e.get("value"), str)}
            suffix = json.dumps(entities, ensure_ascii=False) if entities else ""
            buttons = [{"title": labels[name], "payload": f"/{name}{suffix}"} for name in choices]
            dispatcher.utter_message(response=question_for(choices), buttons=buttons)
        if misunderstood_twice(tracker):
            dispatcher.utter_message(response="utter_handoff_offer")
        return []
