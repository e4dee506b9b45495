"""`GradientAccumulator`: N batches of B equal one batch of N*B."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasft.optimizers import GradientAccumulator
from kerasft.optimizers import LayerwiseLR
from tests.helpers import assert_config_roundtrip

STEPS = 4


def _data():
    rng = np.random.default_rng(0)
    # Small values keep float16 gradients x the loss scale finite.
    x = (0.3 * rng.normal(size=(32, 3))).astype("float32")
    y = (0.3 * rng.normal(size=(32, 1))).astype("float32")
    return x, y


def _model():
    keras.utils.set_random_seed(7)
    inputs = keras.Input((3,))
    x = keras.layers.Dense(4, activation="tanh", name="body")(inputs)
    outputs = keras.layers.Dense(1, name="top", dtype="float32")(x)
    return keras.Model(inputs, outputs)


def _make_optimizer(kind):
    if kind == "sgd":
        return keras.optimizers.SGD(0.1, momentum=0.9)
    if kind == "adam":
        return keras.optimizers.Adam(1e-2)
    return LayerwiseLR(keras.optimizers.Adam(1e-2), {"^body/": 1e-3})


def _train_pair(kind, strategy=None, jit_compile=False, epochs=1):
    """(accumulating model with batch 4, reference model with batch 16)."""
    strategy = strategy or tf.distribute.get_strategy()
    x, y = _data()
    models = []
    for accumulate in (True, False):
        with strategy.scope():
            model = _model()
            optimizer = _make_optimizer(kind)
            if accumulate:
                optimizer = GradientAccumulator(optimizer, STEPS)
            model.compile(optimizer, "mse", jit_compile=jit_compile)
        model.fit(
            x,
            y,
            batch_size=4 if accumulate else 4 * STEPS,
            epochs=epochs,
            shuffle=False,
            verbose=0,
        )
        models.append(model)
    return models


def _assert_same_weights(a, b, atol):
    for va, vb in zip(a.trainable_variables, b.trainable_variables):
        np.testing.assert_allclose(va.numpy(), vb.numpy(), atol=atol)


def _iterations(model):
    return int(keras.ops.convert_to_numpy(model.optimizer.iterations))


@pytest.mark.parametrize(
    "kind, atol, jit_compile",
    [("sgd", 1e-6, False), ("adam", 1e-5, False), ("layerwise", 1e-5, True)],
)
def test_accumulation_equals_the_large_batch(kind, atol, jit_compile):
    accumulated, large = _train_pair(kind, jit_compile=jit_compile)
    _assert_same_weights(accumulated, large, atol)
    # 8 batches of 4 -> 2 real updates, like 2 batches of 16.
    assert _iterations(accumulated) == _iterations(large) == 2


def test_weights_move_only_every_steps_batches():
    model = _model()
    optimizer = GradientAccumulator(keras.optimizers.SGD(0.1), STEPS)
    model.compile(optimizer, "mse")
    x, y = _data()
    history = []
    record = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: history.append(
            model.get_layer("top").kernel.numpy().copy()
        )
    )
    start = model.get_layer("top").kernel.numpy().copy()
    model.fit(x[:24], y[:24], batch_size=4, shuffle=False, verbose=0,
              callbacks=[record])
    changed = [not np.array_equal(w, start) for w in history]
    assert changed == [False, False, False, True, True, True]
    assert np.array_equal(history[3], history[4])
    assert int(optimizer.iterations) == 1
    # Two batches are waiting in the accumulators.
    acc = optimizer._accumulators[-1].numpy()
    assert np.any(acc)


def test_schedule_counts_real_updates():
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay(
        [0], [0.1, 0.0]
    )
    model = _model()
    optimizer = GradientAccumulator(keras.optimizers.SGD(schedule), STEPS)
    model.compile(optimizer, "mse")
    x, y = _data()
    model.fit(x[:8], y[:8], batch_size=4, verbose=0)  # 2 batches, no update
    assert int(optimizer.iterations) == 0
    model.fit(x[8:16], y[8:16], batch_size=4, verbose=0)  # update 1 at 0.1
    after_first = [v.numpy().copy() for v in model.trainable_variables]
    model.fit(x[16:32], y[16:32], batch_size=4, verbose=0)  # update 2 at 0.0
    assert int(optimizer.iterations) == 2
    assert float(optimizer.learning_rate) == 0.0
    for v, w in zip(model.trainable_variables, after_first):
        np.testing.assert_array_equal(v.numpy(), w)


@pytest.mark.parametrize(
    "kind, policy, atol",
    [
        ("sgd", "float32", 1e-6),
        ("layerwise", "mixed_float16", 1e-4),
    ],
)
def test_mirrored_strategy_and_mixed_precision(
    kind, policy, atol, two_cpu_strategy
):
    keras.mixed_precision.set_global_policy(policy)
    accumulated, large = _train_pair(kind, strategy=two_cpu_strategy)
    if policy == "mixed_float16":
        assert isinstance(
            accumulated.optimizer, keras.optimizers.LossScaleOptimizer
        )
    _assert_same_weights(accumulated, large, atol)
    assert _iterations(accumulated) == _iterations(large) == 2


def test_save_load_mid_accumulation(tmp_path):
    x, y = _data()
    model = _model()
    model.compile(GradientAccumulator(keras.optimizers.Adam(1e-2), STEPS),
                  "mse")
    model.fit(x[:24], y[:24], batch_size=4, shuffle=False, verbose=0)
    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    reloaded = keras.models.load_model(path)
    assert type(reloaded.optimizer) is GradientAccumulator
    assert reloaded.optimizer.steps == STEPS
    for a, b in zip(model.optimizer.variables, reloaded.optimizer.variables):
        assert a.path == b.path
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # The two waiting batches complete the window identically.
    for m in (model, reloaded):
        m.fit(x[24:], y[24:], batch_size=4, shuffle=False, verbose=0)
    assert int(reloaded.optimizer.iterations) == 2
    _assert_same_weights(model, reloaded, atol=0)


def test_config_roundtrip_with_layerwise_inner():
    optimizer = GradientAccumulator(
        LayerwiseLR(keras.optimizers.Adam(1e-3), {"^a/": 1e-4}), 8, name="acc"
    )
    clone = assert_config_roundtrip(optimizer)
    assert isinstance(clone.inner_optimizer, LayerwiseLR)
    assert clone.steps == 8


def test_bad_arguments():
    bad_arguments = [
        (lambda: GradientAccumulator(keras.optimizers.SGD(), 0),
         ValueError, "steps"),
        (lambda: GradientAccumulator(keras.optimizers.SGD(), 2.5),
         ValueError, "steps"),
        (lambda: GradientAccumulator(
            keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD()), 2),
         TypeError, "goes outside"),
        (lambda: LayerwiseLR(
            GradientAccumulator(keras.optimizers.SGD(), 2)),
         TypeError, "GradientAccumulator"),
        (lambda: GradientAccumulator(
            keras.optimizers.SGD(gradient_accumulation_steps=2), 2),
         ValueError, "gradient_accumulation_steps"),
    ]
    for build, error, match in bad_arguments:
        with pytest.raises(error, match=match):
            build()
