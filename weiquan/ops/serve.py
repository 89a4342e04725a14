"""`python -m weiquan.ops.serve run …` is `rasa run …` with two start-up patches that change no behaviour, and one
that does (3): a paused conversation still answers a threat, and lets the user end the hand-off.

1. **Load without tracing the training step.** `RasaModel.load` (rasa/utils/tensorflow/models.py) builds DIET by
   running `model.fit` on one example before it loads the weights: that traces and runs the whole training step
   (loss, gradients, Adam) although a server only predicts, and it is most of the Rasa server's start-up on 2 cores.
   `install()` asks for the weights first (a TensorFlow checkpoint restores each variable when it is created), then
   runs the one prediction Rasa already runs to warm up, which creates every variable that prediction uses. Weights
   only training needs (the optimizer's) are skipped on purpose; fine-tuning keeps Rasa's path.
   tests/e2e/test_supervisor_serve.py checks that both loads give the same intent ranking, confidences and entities.

2. **Validate action-server answers with a compiled validator.** `RemoteAction._validate_action_result` calls
   `jsonschema.validate`, which first checks Rasa's response schema against the JSON-Schema 2020-12 meta-schema —
   on every call to the action server. That check was most of a custom action's cost inside Rasa (reports/profile.md).
   Here the schema is checked once and the validator is reused, and an event already found valid (same JSON) is
   not validated again; answers are accepted and rejected exactly as before, with the same error and message.

3. **Answer a threat, and 「不用人工了」, while paused** (weiquan/ops/paused.py; this one CHANGES behaviour). Rasa
   predicts nothing for a paused conversation (a hand-off to a person). For a message whose intent is
   `report_safety_threat` or `cancel_handoff` that arrives while paused, the processor's prediction loop runs one
   action instead (`action_handoff_safety`: the 110 advice, the conversation stays paused; `action_handoff_cancel`:
   the hand-off ends and the bot resumes) through the processor's own action path, with the message's output
   channel: answered on every channel and stored in the tracker. Every other message, and every conversation that
   is not paused, is handled as before. A Rasa server started without this module (`rasa run`) leaves such a
   message unanswered, as stock Rasa does: start Rasa through this module (make run, the deploy recipes and the
   test harnesses all do). Tested end to end by tests/e2e/test_handoff_safety_e2e.py.
"""
from __future__ import annotations

import json
import logging
import sys
from typing import Any

from weiquan.ops import paused

logger = logging.getLogger(__name__)
_installed: dict[str, Any] = {}


def _patch_model_load() -> None:
    from rasa.utils.tensorflow.models import RasaModel

    original = RasaModel.load.__func__
    _installed["load"] = original

    def load(cls: Any, model_file_name: str, model_data_example: Any, predict_data_example: Any = None,
             finetune_mode: bool = False, *args: Any, **kwargs: Any) -> Any:
        if finetune_mode or predict_data_example is None:
            return original(cls, model_file_name, model_data_example, predict_data_example, finetune_mode,
                            *args, **kwargs)
        import tensorflow as tf

        model = cls(*args, **kwargs)
        config = kwargs.get("config", {})
        model.compile(optimizer=tf.keras.optimizers.Adam(config.get("learning_rate", 0.001)),
                      run_eagerly=config.get("run_eagerly"))
        status = model.load_weights(model_file_name)  # deferred: each variable gets its value when it is created
        model.run_inference(predict_data_example)  # creates every variable prediction needs
        status.expect_partial()  # the optimizer's slots are not needed to predict
        status.assert_existing_objects_matched()
        logger.debug("Loaded %s for prediction without tracing the training step.", cls.__name__)
        return model

    RasaModel.load = classmethod(load)


def _patch_action_validation() -> None:
    from functools import lru_cache

    from jsonschema import exceptions, validators
    from rasa.core.actions import action as actions

    spec = actions.RemoteAction.action_response_format_spec
    schema = spec()
    validator_class = validators.validator_for(schema)
    validator_class.check_schema(schema)  # once, instead of on every call
    validator = validator_class(schema)
    # The schema is {"type": "object", "properties": {"events": {"type": "array", "items": EVENT},
    # "responses": {"type": "array", "items": {"type": "object"}}}} (no "required", no "additionalProperties"), so
    # an answer is valid exactly when it is an object whose events (if any) are a list of valid EVENTs and whose
    # responses (if any) are a list of objects. An event found valid once is remembered by its JSON text.
    event_schema = schema["properties"]["events"]["items"]
    assert schema["type"] == "object" and set(schema["properties"]) == {"events", "responses"}, "Rasa changed"
    assert set(schema) == {"type", "properties"}, "Rasa changed the action response schema"
    event_validator = validator_class(event_schema)

    @lru_cache(maxsize=4096)
    def event_is_valid(text: str) -> bool:
        return event_validator.is_valid(json.loads(text))

    def known_valid(result: Any) -> bool:
        if not isinstance(result, dict):
            return False
        events = result.get("events", [])
        responses = result.get("responses", [])
        if not isinstance(events, list) or not isinstance(responses, list):
            return False
        if not all(isinstance(response, dict) for response in responses):
            return False
        return all(isinstance(event, dict) and event_is_valid(json.dumps(event, sort_keys=True)) for event in events)

    original = actions.RemoteAction._validate_action_result
    _installed["validate"] = original

    def _validate_action_result(self: Any, result: dict[str, Any]) -> bool:
        if type(self).action_response_format_spec is not spec:  # a subclass with its own schema: Rasa's path
            return original(self, result)
        if known_valid(result):
            return True
        error = exceptions.best_match(validator.iter_errors(result))  # what jsonschema.validate does after the check
        if error is None:
            return True
        error.message += (
            f". Failed to validate Action server response from API, "
            f"make sure your response from the Action endpoint is valid. "
            f"For more information about the format visit "
            f"{actions.DOCS_BASE_URL}/custom-actions"
        )
        raise error

    actions.RemoteAction._validate_action_result = _validate_action_result


def install() -> None:
    """Apply the three patches (idempotent)."""
    if not _installed:
        _patch_model_load()
        _patch_action_validation()
        paused.install()


def main() -> None:
    install()
    from rasa.__main__ import main as rasa_main

    sys.argv[0] = "rasa"
    rasa_main()


if __name__ == "__main__":
    main()
