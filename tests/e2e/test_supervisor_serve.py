"""The supervisor starts Rasa through weiquan.ops.serve (no training step traced at load): the model must predict
exactly what Rasa's own loader predicts — same intent ranking, same confidences, same entities.

Each load runs in a child process of its own (a clean TensorFlow), on 120 held-out messages the model never saw.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from weiquan.ops.harness import ROOT, latest_model

pytestmark = pytest.mark.e2e

PARSE = r"""
import asyncio, json, sys
if sys.argv[1] == "fast":
    from weiquan.ops.serve import install
    install()
from rasa.core.agent import Agent
agent = Agent.load(sys.argv[2])
texts = json.loads(open(sys.argv[3], encoding="utf-8").read())
async def parse():
    out = []
    for text in texts:
        result = await agent.parse_message(text)
        out.append({"ranking": [(r["name"], float(r["confidence"])) for r in result["intent_ranking"]],
                    "entities": [(e["entity"], e["start"], e["end"], e.get("value")) for e in result["entities"]]})
    return out
print("RESULT" + json.dumps(asyncio.run(parse()), ensure_ascii=False))
"""


def heldout(count: int) -> list[str]:
    data = yaml.safe_load((ROOT / "tests" / "data" / "nlu_heldout.yml").read_text(encoding="utf-8"))
    texts = [line.strip()[2:] for block in data["nlu"] for line in block["examples"].splitlines()
             if line.strip().startswith("- ")]
    return texts[:: max(1, len(texts) // count)][:count]


def parse_with(loader: str, texts_file: Path) -> list[dict]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([sys.executable, "-c", PARSE, loader, str(latest_model()), str(texts_file)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=1200)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT")]
    assert lines, done.stdout[-2000:] + done.stderr[-4000:]
    return json.loads(lines[-1][len("RESULT"):])


def test_fast_load_predicts_exactly_what_rasa_load_predicts(tmp_path: Path) -> None:
    texts = heldout(120)
    texts_file = tmp_path / "texts.json"
    texts_file.write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
    fast = parse_with("fast", texts_file)
    rasa = parse_with("rasa", texts_file)
    assert len(fast) == len(rasa) == len(texts)
    for text, mine, theirs in zip(texts, fast, rasa, strict=True):
        assert mine["entities"] == theirs["entities"], text
        assert [name for name, _ in mine["ranking"]] == [name for name, _ in theirs["ranking"]], text
        for (_, a), (_, b) in zip(mine["ranking"], theirs["ranking"], strict=True):
            assert a == pytest.approx(b, abs=1e-6), text


def test_action_answers_are_validated_as_before() -> None:
    """The compiled validator accepts and rejects what Rasa's `jsonschema.validate` does, with the same message."""
    from jsonschema import ValidationError
    from rasa.core.actions.action import RemoteAction

    from weiquan.ops import serve

    stock = serve._installed.get("validate", RemoteAction._validate_action_result)
    serve.install()
    action = RemoteAction("action_answer_faq", None)
    good = [{"events": [{"event": "slot", "name": "outcome", "value": "eligible"}],
             "responses": [{"response": "utter_greet"}]},
            {"events": [{"event": "slot", "timestamp": None, "name": name, "value": None} for name in "abc"]},
            {"events": [{"event": "active_loop", "name": "complaint_form"}, {"event": "followup", "name": "x"}]},
            {"responses": []}, {}]
    for answer in good * 2:  # the second time from the remembered events
        assert action._validate_action_result(json.loads(json.dumps(answer))) is True
        assert stock(action, json.loads(json.dumps(answer))) is True
    valid_event = good[0]["events"][0]
    for bad in ({"events": "not a list"}, {"responses": [1]}, {"events": [{"event": 3}]}, {"events": None},
                {"events": [valid_event, {"event": "slot"}]}, {"events": [valid_event, "slot"]}, ["events"],
                {"events": [{"event": "no_such_event"}]}, {"responses": [{"text": "hi"}, None]}):
        with pytest.raises(ValidationError) as ours:
            action._validate_action_result(json.loads(json.dumps(bad)))
        with pytest.raises(ValidationError) as theirs:
            stock(action, json.loads(json.dumps(bad)))
        assert ours.value.message == theirs.value.message
