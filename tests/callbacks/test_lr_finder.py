"""lr_find sweeps the rate, suggests a sane one and leaves the model as it was."""

import keras
import numpy as np
import pytest

from kerasft.callbacks import ExponentialSweep
from kerasft.callbacks import LRFinder
from kerasft.callbacks import lr_find
from kerasft.callbacks.lr_finder import suggest
from tests.callbacks.tiny import as_np
from tests.helpers import assert_config_roundtrip


def _regression(n=512, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype("float32")
    w = rng.normal(size=(4, 1)).astype("float32")
    y = x @ w + 0.01 * rng.normal(size=(n, 1)).astype("float32")
    return x, y


def _linear_model():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, name="lin")])
    model.compile(keras.optimizers.SGD(0.01), "mse")
    return model


@pytest.mark.parametrize(
    "step, expected", [(0, 1e-4), (1, 1e-3), (2, 1e-2), (4, 1.0), (9, 1.0)]
)
def test_exponential_sweep_table(step, expected):
    sweep = ExponentialSweep(1e-4, 1.0, 5)
    assert float(sweep(step)) == pytest.approx(expected, rel=1e-5)


def test_configs_roundtrip():
    assert_config_roundtrip(ExponentialSweep(1e-5, 1.0, 50))
    assert_config_roundtrip(LRFinder(1e-6, 0.1, 20, smoothing=0.9, diverge_factor=3.0))


def test_suggest_is_steepest_descent_on_log_axis():
    lrs = np.logspace(-5, 0, 6)
    losses = np.array([10.0, 9.0, 7.0, 3.0, 2.5, 8.0])
    # Central differences per decade: -1, -1.5, -3, -2.25, +2.5, +5.5.
    assert suggest(lrs, losses, skip_start=0) == pytest.approx(1e-3)
    assert suggest(lrs, losses, skip_start=3) == pytest.approx(1e-2)


def test_bad_arguments():
    with pytest.raises(ValueError, match="max_lr"):
        LRFinder(min_lr=1.0, max_lr=0.1)
    with pytest.raises(ValueError, match="steps"):
        LRFinder(steps=1)
    with pytest.raises(ValueError, match="compile"):
        lr_find(keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)]), _regression())
    with pytest.raises(TypeError, match="Dataset"):
        lr_find(_linear_model(), [1, 2, 3])


def test_lr_find_on_linear_regression(tmp_path):
    """SGD on MSE with unit-variance inputs: Hessian 2I, stable below 1.0 and
    fastest near 0.5; the sweep must diverge past it and suggest below it."""
    x, y = _regression()
    model = _linear_model()
    model.fit(x, y, batch_size=32, epochs=1, shuffle=False, verbose=0)
    optimizer = model.optimizer
    before = [as_np(v) for v in model.weights]
    steps_before = int(as_np(optimizer.iterations))

    result = lr_find(model, (x, y), 1e-5, 10.0, steps=100, batch_size=32,
                     plot=str(tmp_path / "lr.png"))

    assert result.diverged and len(result.learning_rates) < 100
    assert 1e-2 <= result.suggestion <= 1.0
    rates = result.learning_rates
    np.testing.assert_allclose(rates[1] / rates[0], (10.0 / 1e-5) ** (1 / 99), rtol=1e-4)
    assert result.losses.shape == result.raw_losses.shape == rates.shape
    # Weights, optimizer object, its step and rate are all as before.
    for b, v in zip(before, model.weights):
        np.testing.assert_array_equal(as_np(v), b)
    assert model.optimizer is optimizer
    assert int(as_np(optimizer.iterations)) == steps_before
    assert float(as_np(optimizer.learning_rate)) == pytest.approx(0.01)
    with open(tmp_path / "lr.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    # The model still trains with its own optimizer afterwards.
    model.fit(x, y, batch_size=32, epochs=1, shuffle=False, verbose=0)
    assert int(as_np(optimizer.iterations)) == steps_before + 16


def test_lr_find_under_mirrored_strategy(two_cpu_strategy):
    x, y = _regression(256)
    with two_cpu_strategy.scope():
        model = _linear_model()
    optimizer = model.optimizer
    before = [as_np(v) for v in model.weights]
    result = lr_find(model, (x, y), 1e-4, 1e-1, steps=20, batch_size=32)
    assert len(result.learning_rates) == 20 and not result.diverged
    np.testing.assert_allclose(result.learning_rates[[0, -1]], [1e-4, 1e-1], rtol=1e-5)
    assert 1e-4 <= result.suggestion <= 1e-1
    assert result.raw_losses[-1] < result.raw_losses[0]
    assert model.optimizer is optimizer
    for b, v in zip(before, model.weights):
        np.testing.assert_array_equal(as_np(v), b)


def test_exponential_sweep_is_keras_exponential_decay():
    sweep = ExponentialSweep(1e-4, 1.0, 5)
    assert isinstance(sweep, keras.optimizers.schedules.ExponentialDecay)
    decay = keras.optimizers.schedules.ExponentialDecay(1e-4, 4, 1e4)
    for step in range(5):
        assert float(sweep(step)) == pytest.approx(float(decay(step)), rel=1e-6)
