"""Wrapped optimizers load across precision policies (issue 24, item 3).

Under `mixed_float16` `compile` wraps the optimizer in `LossScaleOptimizer`;
a model trained on a GPU in float16 is loaded on a CPU in float32 and the
other way round. The optimizer state (the wrapped optimizer's slots and
step, the wrapper's own accumulators) must come back whole.
"""

import itertools
import warnings

import keras
import numpy as np
import pytest

from kerasft.optimizers import GradientAccumulator
from kerasft.optimizers import LayerwiseLR

POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")
PAIRS = [(a, b) for a, b in itertools.permutations(POLICIES, 2)]


def _compiled(kind):
    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(3, name="body"),
            keras.layers.Dense(2, name="top", dtype="float32"),
        ]
    )
    if kind == "layerwise":
        optimizer = LayerwiseLR(keras.optimizers.Adam(1e-2), {"body/": 1e-3})
    else:
        # 3 steps over 2 batches a fit: accumulators are non-zero at save.
        optimizer = GradientAccumulator(keras.optimizers.Adam(1e-2), 3)
    model.compile(optimizer, "mse")
    return model


def _wrapper(model):
    optimizer = model.optimizer
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        optimizer = optimizer.inner_optimizer
    return optimizer


def _state(model):
    return [keras.ops.convert_to_numpy(v) for v in _wrapper(model).variables]


@pytest.mark.parametrize("kind", ["layerwise", "accumulator"])
@pytest.mark.parametrize("saved_under,loaded_under", PAIRS)
def test_optimizer_state_survives_a_policy_change(
    tmp_path, kind, saved_under, loaded_under
):
    keras.mixed_precision.set_global_policy(saved_under)
    model = _compiled(kind)
    rng = np.random.default_rng(0)
    x = (0.3 * rng.normal(size=(8, 4))).astype("float32")
    y = (0.3 * rng.normal(size=(8, 2))).astype("float32")
    model.fit(x, y, batch_size=4, epochs=2, verbose=0)
    path = str(tmp_path / "model.keras")
    model.save(path)
    expected = _state(model)
    if kind == "accumulator":
        assert any(np.any(a != 0) for a in expected[:-11])  # accumulators

    keras.mixed_precision.set_global_policy(loaded_under)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        warnings.filterwarnings("ignore", message=".*__array__.*")
        # Keras's own note for the nested entry the wrapper already loaded.
        warnings.filterwarnings("ignore", message="Skipping variable loading")
        loaded = keras.models.load_model(path)
    assert isinstance(
        loaded.optimizer, keras.optimizers.LossScaleOptimizer
    ) == (loaded_under == "mixed_float16")
    got = _state(loaded)
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)
    loaded.fit(x, y, batch_size=4, epochs=1, verbose=0)  # trains on


def test_mismatched_state_is_refused_naming_the_optimizer(tmp_path):
    model = _compiled("layerwise")
    model.fit(np.zeros((4, 4)), np.zeros((4, 2)), verbose=0)
    path = str(tmp_path / "a.weights.h5")
    model.save_weights(path)
    other = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(5, name="body"),
         keras.layers.Dense(2, name="top")]
    )
    other.compile(LayerwiseLR(keras.optimizers.Adam(1e-2)), "mse")
    other.optimizer.build(other.trainable_variables)
    with pytest.raises(ValueError, match="Cannot load the state of optimizer"):
        other.optimizer.load_own_variables(_Store(_state(model)))


class _Store(dict):
    def __init__(self, arrays):
        super().__init__({str(i): a for i, a in enumerate(arrays)})
