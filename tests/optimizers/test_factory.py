"""`make_optimizer` and `kerasft.optimizers.AdamW`: the recipes' one optimizer."""

import keras
import numpy as np
import pytest

from kerasft.optimizers import AdamW
from kerasft.optimizers import GradientAccumulator
from kerasft.optimizers import LayerwiseLR
from kerasft.optimizers import make_optimizer
from kerasft.optimizers import WarmupSchedule


def _model(batchnorm=True):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6, 6, 3))
    x = keras.layers.Conv2D(2, 3, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn", trainable=batchnorm)(x)
    x = keras.layers.Conv2D(2, 3, name="conv2")(x)
    x = keras.layers.BatchNormalization(name="bn2", trainable=batchnorm)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.LayerNormalization(name="ln")(x)
    return keras.Model(inputs, keras.layers.Dense(1, name="dense")(x))


def _decay_only_changes(optimizer):
    """Weights after 3 steps whose gradients are all zero: only weight decay
    moves anything."""
    model = _model()
    before = {v.path: v.numpy().copy() for v in model.trainable_variables}
    model.compile(optimizer, "mse")
    x = np.zeros((2, 6, 6, 3), "float32")  # zero inputs: zero kernel grads
    y = model.predict(x, verbose=0)  # zero loss: zero bias grads
    model.fit(x, y, epochs=3, verbose=0)
    return {v.path: np.abs(v.numpy() - before[v.path]).max()
            for v in model.trainable_variables}


@pytest.mark.parametrize("wrap", ["plain", "layerwise", "accumulator"])
def test_weight_decay_spares_biases_and_norms_bit_for_bit(wrap):
    optimizer = make_optimizer(
        0.1, weight_decay=0.5, layer_decay=0.5 if wrap == "layerwise" else None,
        accumulation_steps=2 if wrap == "accumulator" else 1)
    changes = _decay_only_changes(optimizer)
    for path, change in changes.items():
        if path.endswith("kernel"):
            assert change > 0, (path, changes)
        else:  # bias, gamma, beta
            assert change == 0.0, (path, changes)


def test_exclusions_are_configurable():
    changes = _decay_only_changes(
        make_optimizer(0.1, weight_decay=0.5, no_weight_decay=("rank<=1", "conv2")))
    assert changes["conv2/kernel"] == 0.0 and changes["dense/kernel"] > 0
    changes = _decay_only_changes(make_optimizer(0.1, weight_decay=0.5,
                                                 no_weight_decay=()))
    assert changes["dense/bias"] == 0.0  # zero weights stay zero under decay
    assert changes["bn2/gamma"] > 0  # gamma starts at 1: decayed now


def test_exclusions_survive_get_config_and_saving(tmp_path):
    optimizer = AdamW(1e-3, weight_decay=0.1, no_weight_decay=("rank<=1", "emb"))
    config = optimizer.get_config()
    assert config["no_weight_decay"] == ["rank<=1", "emb"]
    clone = AdamW.from_config(config)  # what ProgressiveUnfreeze rebuilds
    assert clone.no_weight_decay == ("rank<=1", "emb")
    model = _model()
    model.compile(optimizer, "mse")
    model.fit(np.ones((2, 6, 6, 3)), np.ones((2, 1)), verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert isinstance(loaded.optimizer, AdamW)
    assert loaded.optimizer.no_weight_decay == ("rank<=1", "emb")


def test_composition_order_and_schedule():
    optimizer = make_optimizer(
        1e-3, lr_schedule="cosine", warmup_ratio=0.1, total_steps=100,
        layer_decay=0.8, accumulation_steps=4)
    assert isinstance(optimizer, GradientAccumulator)
    assert isinstance(optimizer.inner_optimizer, LayerwiseLR)
    adamw = optimizer.inner_optimizer.inner_optimizer
    assert isinstance(adamw, AdamW)
    schedule = adamw._learning_rate
    assert isinstance(schedule, WarmupSchedule)
    assert float(schedule(5)) == pytest.approx(5e-4)
    assert float(schedule(100)) == pytest.approx(0.0, abs=1e-9)


def test_accumulation_equals_the_larger_batch():
    """BatchNorm frozen (inference mode), as kerasft keeps it: batch
    statistics would differ between batch sizes."""
    x = np.random.default_rng(0).normal(size=(8, 6, 6, 3)).astype("float32")
    y = np.random.default_rng(1).normal(size=(8, 1)).astype("float32")
    weights = []
    for steps, batch in ((1, 8), (2, 4), (4, 2)):
        model = _model(batchnorm=False)
        model.compile(make_optimizer(1e-2, accumulation_steps=steps), "mse")
        model.fit(x, y, batch_size=batch, epochs=2, shuffle=False, verbose=0)
        weights.append(model.get_weights())
    for other in weights[1:]:
        for a, b in zip(weights[0], other):
            np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("kwargs, match", [
    ({"accumulation_steps": 0}, "accumulation_steps"),
    ({"weight_decay": -1}, "weight_decay"),
    ({"lr_schedule": "step"}, "lr_schedule"),
    ({"lr_schedule": "linear"}, "total_steps"),
    ({"no_weight_decay": ("[",)}, "invalid regex"),
])
def test_bad_arguments_name_the_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_optimizer(1e-3, **kwargs)
