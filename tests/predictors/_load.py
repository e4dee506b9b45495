"""A finished run folder read back the way `kerasft predict` reads it:
`kerasft.load` when it exists, else the same attributes from the loaders
it replaces (`_run_folder.load_run`, `_generative.load_finished_task`,
`image_captioning.load_captioner`)."""

import csv
import importlib.util
import json
import os
import types


def load(directory, recipe):
    directory = str(directory)
    if importlib.util.find_spec("kerasft.loading") is not None:
        from kerasft import loading

        run = loading.load(directory)
        assert run.recipe == recipe, (run.recipe, recipe)
        return run
    from kerasft._run_folder import class_names_of, load_run

    def read_json(name):
        path = os.path.join(directory, name)
        if not os.path.isfile(path):
            return None
        with open(path) as f:
            return json.load(f)

    config = read_json("config.json") or {}
    if recipe in ("seq2seq", "causal_lm"):
        from kerasft.recipes._generative import load_finished_task

        model, _ = load_finished_task(directory)
    elif recipe == "image_captioning":
        from kerasft.recipes.image_captioning import load_captioner

        model = load_captioner(directory)
    else:
        model = load_run(directory).model
    return types.SimpleNamespace(
        directory=directory, recipe=recipe, config=config, model=model,
        class_names=class_names_of(read_json("labels.json")),
        read_json=read_json,
    )


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def header(path):
    with open(path, newline="", encoding="utf-8") as f:
        return next(csv.reader(f))


def assert_export_matches_predict(run_dir, batch, path, atol=1e-5, **call):
    """Exports the run folder as a SavedModel and checks that its `serve`
    endpoint returns what `model.predict` returns on `batch`; returns the
    loaded SavedModel."""
    import keras
    import numpy as np
    import tensorflow as tf

    from kerasft.exporting import export

    export(str(run_dir), str(path))
    served = tf.saved_model.load(str(path))
    model = keras.models.load_model(os.path.join(str(run_dir), "model.keras"))
    expected = model.predict(batch, verbose=0)
    got = served.serve(batch)
    if isinstance(expected, dict):
        assert sorted(got) == sorted(expected)
        for key in expected:
            np.testing.assert_allclose(got[key].numpy(), expected[key], atol=atol)
    else:
        np.testing.assert_allclose(got.numpy(), expected, atol=atol)
    return served
