"""kerasft._keras_compat: each internal works on the tested Keras, fails
loudly (feature + installed versions) when missing, and scoped changes to
Keras are undone."""

import keras
import numpy as np
import pytest

from kerasft import _keras_compat


def test_missing_names_feature_internal_and_installed_versions():
    error = _keras_compat.missing("Freezing", "Layer._x", "Keras 3.15.1")
    assert isinstance(error, _keras_compat.KerasInternalError)
    message = str(error)
    assert "Freezing" in message and "Layer._x" in message
    assert f"Keras {keras.__version__}" in message and "setup.cfg" in message


def test_sublayers_of_a_plain_layer_and_a_clear_error_otherwise():
    class Block(keras.layers.Layer):
        def __init__(self):
            super().__init__()
            self.norm = keras.layers.BatchNormalization()
            self.dense = keras.layers.Dense(2)

    names = {type(l).__name__ for l in _keras_compat.sublayers(Block())}
    assert names == {"BatchNormalization", "Dense"}
    with pytest.raises(_keras_compat.KerasInternalError, match="Freezing"):
        _keras_compat.sublayers(object())


def test_functional_internals():
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2, name="d")(inputs))
    assert _keras_compat.is_functional(model)
    assert not _keras_compat.is_functional(keras.layers.Dense(2))
    nodes = _keras_compat.functional_nodes_by_depth(model)
    ops = [n.operation.name for d in sorted(nodes) for n in nodes[d]]
    assert "d" in ops
    with pytest.raises(_keras_compat.KerasInternalError, match="remat"):
        _keras_compat.functional_nodes_by_depth(keras.layers.Dense(2))


def test_reduce_per_replica_replacement_is_undone_even_on_error():
    from keras.src.backend.tensorflow import trainer

    original = trainer.reduce_per_replica
    with pytest.raises(RuntimeError, match="boom"):
        with _keras_compat.replaced_reduce_per_replica(lambda f: "replacement"):
            assert trainer.reduce_per_replica == "replacement"
            raise RuntimeError("boom")
    assert trainer.reduce_per_replica is original


def test_fit_without_symbolic_build_is_per_model_and_undone():
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    model.compile("sgd", "mse")
    other = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    with _keras_compat.fit_without_symbolic_build(model):
        assert model._maybe_symbolic_build() is None
        assert "_maybe_symbolic_build" not in vars(other)
        _keras_compat.symbolic_build(
            model, (np.zeros((2, 3), "float32"), np.zeros((2, 1), "float32"))
        )
    assert "_maybe_symbolic_build" not in vars(model)
    assert model.built and model.optimizer.built
