"""A finished run folder read back the way `kerasft predict` reads it,
and the checks the predictor tests share."""

import csv
import os


def load(directory, recipe):
    """`kerasft.load(directory)`, checking that it names `recipe`."""
    from kerasft import loading

    run = loading.load(str(directory))
    assert run.recipe == recipe, (run.recipe, recipe)
    return run


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
