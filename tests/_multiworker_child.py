"""One worker of a two-process MultiWorkerMirroredStrategy run (see
tests/test_distribute.py): fits and evaluates a `build_model` model inside
the runner's multi-worker scope, checks that the scope leaves Keras as it
found it, and prints one JSON line of results."""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from kerasft import distribute  # noqa: E402

strategy = distribute.strategy("auto")  # before any other TensorFlow work

import tensorflow as tf  # noqa: E402
from keras.src.backend.tensorflow import trainer  # noqa: E402

from kerasft import build_model, heads  # noqa: E402
from kerasft.evaluation import collect_predictions  # noqa: E402
from kerasft.recipes import _runner  # noqa: E402
from tests.recipes.tiny import tiny_backbone, tiny_images  # noqa: E402


def main():
    original = trainer.reduce_per_replica
    x, y = tiny_images(48)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    with strategy.scope():
        head = heads.classification(3)
        model = build_model(tiny_backbone(), head)
        model.compile(optimizer="adam", **head.compile_kwargs())
    with _runner._multiworker_scope(model, ds, strategy):
        history = model.fit(ds, epochs=2, verbose=0)
        evaluated = model.evaluate(ds, verbose=0, return_dict=True)
    _, y_pred = collect_predictions(model, ds)
    print(json.dumps({
        "strategy": type(strategy).__name__,
        "loss": history.history["loss"],
        "evaluated": sorted(evaluated),
        "restored": trainer.reduce_per_replica is original
        and "_maybe_symbolic_build" not in vars(model),
        "predictions": list(y_pred.shape),
    }))


if __name__ == "__main__":
    sys.exit(main())
