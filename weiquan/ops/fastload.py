"""Start the Rasa server without tracing TensorFlow's training step.

`RasaModel.load` (rasa/utils/tensorflow/models.py) builds a DIET model by running `model.fit` on one example before it
loads the weights: that traces and compiles the whole training step (loss, gradients, Adam) although a server only
predicts. On this 2-core machine that single fit is most of the Rasa server's start-up (see reports/profile.md).

`fast_load` does what a TensorFlow checkpoint allows instead: it asks for the weights first (restored as each variable
is created), then runs the one prediction Rasa already runs to warm up, which creates every variable the predictions
use. Weights that only training needs (the optimizer's) are left out on purpose. Fine-tuning still takes Rasa's path.
The predictions are identical: tests/e2e/test_supervisor.py does not check this; `python -m weiquan.ops.fastload
--check MODEL` compares both loads on the held-out set and the test in tests/test_fastload.py runs it.

Use: `python -m weiquan.ops.fastload run …` is `rasa run …` with the patch applied.
"""
from __future__ import annotations

import logging
import sys
from typing import Any

logger = logging.getLogger(__name__)
_original_load = None


def install() -> None:
    """Replace RasaModel.load for prediction-only loads (idempotent)."""
    global _original_load
    from rasa.utils.tensorflow.models import RasaModel

    if _original_load is not None:
        return
    _original_load = RasaModel.load.__func__

    def load(cls: Any, model_file_name: str, model_data_example: Any, predict_data_example: Any = None,
             finetune_mode: bool = False, *args: Any, **kwargs: Any) -> Any:
        if finetune_mode or predict_data_example is None:
            return _original_load(cls, model_file_name, model_data_example, predict_data_example, finetune_mode,
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


def main() -> None:
    install()
    from rasa.__main__ import main as rasa_main

    sys.argv[0] = "rasa"
    rasa_main()


if __name__ == "__main__":
    main()
