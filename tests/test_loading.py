"""`kerasft.load`: the one reader of run folders, and its refusals."""

import json
import os

import keras
import numpy as np
import pytest

import kerasft
from kerasft import _io


def _finished_run(folder, recipe="image_classification"):
    os.makedirs(folder, exist_ok=True)
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs))
    _io.save_model(model, os.path.join(folder, _io.MODEL_FILE))
    _io.write_json(os.path.join(folder, _io.CONFIG_FILE),
                   {"recipe": recipe, "epochs": 1})
    _io.write_json(os.path.join(folder, "labels.json"), {"b": 1, "a": 0})
    _io.write_json(os.path.join(folder, _io.METRICS_FILE), {"val_accuracy": 0.5})
    return model


def test_load_reads_recipe_model_classes_and_metrics(tmp_path):
    folder = str(tmp_path / "run")
    model = _finished_run(folder)
    run = kerasft.load(folder)
    assert run.recipe == "image_classification"
    assert run.class_names == ["a", "b"]  # a {name: id} labels.json, in id order
    assert run.metrics == {"val_accuracy": 0.5}
    x = np.ones((3, 4), "float32")
    np.testing.assert_allclose(run.model.predict(x, verbose=0),
                               model.predict(x, verbose=0), atol=1e-6)


@pytest.mark.parametrize("damage, match", [
    ("unfinished", "has not finished"),
    ("truncated", "model.keras"),
    ("metrics", "metrics.json"),
    ("no recipe", "does not name the recipe"),
])
def test_damaged_or_unfinished_folders_are_named(tmp_path, damage, match):
    folder = str(tmp_path / "run")
    _finished_run(folder)
    path = os.path.join(folder, _io.MODEL_FILE)
    if damage == "unfinished":
        os.remove(os.path.join(folder, _io.METRICS_FILE))
    elif damage == "truncated":
        with open(path, "rb") as f:
            data = f.read()
        with open(path, "wb") as f:
            f.write(data[: len(data) // 2])
    elif damage == "metrics":
        with open(os.path.join(folder, _io.METRICS_FILE), "w") as f:
            f.write("{not json")
    else:
        with open(os.path.join(folder, _io.CONFIG_FILE), "w") as f:
            json.dump({"epochs": 1}, f)
    with pytest.raises(ValueError, match=match):
        kerasft.load(folder)
