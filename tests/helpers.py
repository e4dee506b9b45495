"""Round-trip checks shared by every serializable kerasft object."""

import os
import tempfile

import keras
import numpy as np


def assert_config_roundtrip(obj):
    """`from_config(get_config())` rebuilds an object with the same config,
    and generic deserialization finds the class without `custom_objects`."""
    config = obj.get_config()
    clone = obj.__class__.from_config(config)
    assert clone.get_config() == config
    serialized = keras.saving.serialize_keras_object(obj)
    revived = keras.saving.deserialize_keras_object(serialized)
    assert type(revived) is type(obj)
    assert revived.get_config() == config
    return clone


def assert_model_roundtrip(model, inputs, atol=1e-6):
    """`model.save(.keras)` then `load_model` (no `custom_objects`) predicts
    the same on `inputs`; returns the reloaded model."""
    expected = model.predict(inputs, verbose=0)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        reloaded = keras.models.load_model(path)
    got = reloaded.predict(inputs, verbose=0)
    for e, g in zip(keras.tree.flatten(expected), keras.tree.flatten(got)):
        np.testing.assert_allclose(e, g, atol=atol)
    return reloaded
