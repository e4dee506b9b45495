"""`LayerwiseLR`: per-group steps, rate 0, callbacks, strategies, saving."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasft import _grouping
from kerasft.backbones.backbone import Backbone
from kerasft.backbones.backbone import Group
from kerasft.optimizers import LayerwiseLR
from tests.helpers import assert_config_roundtrip

EPS = 1e-7  # Keras Adam's epsilon
BETA_2 = 0.999


def _adam_constant_gradient_travel(lr, g, steps):
    """How far Adam moves a weight whose gradient is always `g`.

    With a constant gradient, m_t = (1 - b1^t) g and v_t = (1 - b2^t) g^2, so
    Keras's step is lr * |g| / (|g| + eps / sqrt(1 - b2^t)).
    """
    return sum(
        lr * abs(g) / (abs(g) + EPS / np.sqrt(1 - BETA_2**t))
        for t in range(1, steps + 1)
    )


def _adamw_bias_after(lr, wd, g, steps):
    """AdamW on a bias starting at 0 with constant gradient `g`: decoupled
    decay `w -= w * wd * lr`, then the Adam step."""
    w = 0.0
    for t in range(1, steps + 1):
        w -= w * wd * lr
        w -= lr * abs(g) / (abs(g) + EPS / np.sqrt(1 - BETA_2**t))
    return w


def _parallel_model(dtype_out="float32"):
    """out = body(x) + top(x): with loss mean(out) and x = 1, every kernel and
    bias has gradient 1 / units at every step, whatever the weights."""
    inputs = keras.Input((2,))
    body = keras.layers.Dense(2, name="body")(inputs)
    top = keras.layers.Dense(2, name="top")(inputs)
    out = keras.layers.Add()([body, top])
    out = keras.layers.Activation("linear", dtype=dtype_out, name="out")(out)
    return keras.Model(inputs, out)


def _mean_output(y_true, y_pred):
    return keras.ops.mean(y_pred)


def _fit_constant(model, steps, batch_size=4, callbacks=(), epochs=1):
    x = np.ones((steps * batch_size, 2), "float32")
    y = np.zeros((steps * batch_size, 2), "float32")
    model.fit(
        x,
        y,
        batch_size=batch_size,
        epochs=epochs,
        shuffle=False,
        verbose=0,
        callbacks=list(callbacks),
    )


def _weights(model):
    return {v.path: np.array(v.numpy()) for v in model.trainable_variables}


@pytest.mark.parametrize("jit_compile", [False, True])
def test_adam_step_sizes_follow_group_rates(jit_compile):
    model = _parallel_model()
    optimizer = LayerwiseLR(
        keras.optimizers.Adam(1e-2), learning_rates={"^body/": 1e-3}
    )
    model.compile(optimizer, _mean_output, jit_compile=jit_compile)
    before = _weights(model)
    _fit_constant(model, steps=3)
    after = _weights(model)
    g = 0.5  # d mean(out) / d weight, with 2 output units and x = 1
    for path, lr in [("body/kernel", 1e-3), ("top/kernel", 1e-2),
                     ("body/bias", 1e-3), ("top/bias", 1e-2)]:
        travel = before[path] - after[path]
        np.testing.assert_allclose(
            travel, _adam_constant_gradient_travel(lr, g, 3), rtol=1e-5
        )
    assert int(optimizer.iterations) == 3
    assert optimizer.inner_optimizer.iterations is optimizer.iterations


def test_adam_scales_the_step_not_the_gradient():
    """Scaling the gradient by 0.1 would leave Adam's step unchanged; the
    rate 0.1x must shrink it 10x."""
    v_scaled = keras.Variable(np.zeros(3, "float32"), name="scaled")
    v_base = keras.Variable(np.zeros(3, "float32"), name="base")
    optimizer = LayerwiseLR(
        keras.optimizers.Adam(1e-2), learning_rates={"^scaled$": 1e-3}
    )
    grads = [np.array([1.0, -2.0, 4.0], "float32")] * 2
    optimizer.apply(grads, [v_scaled, v_base])
    np.testing.assert_allclose(
        v_scaled.numpy() / v_base.numpy(), [0.1, 0.1, 0.1], rtol=1e-5
    )


def test_rate_zero_group_is_bit_identical_with_adamw():
    model = _parallel_model()
    optimizer = LayerwiseLR(
        keras.optimizers.AdamW(1e-2, weight_decay=0.5),
        learning_rates={"^body/": 0.0},
    )
    model.compile(optimizer, _mean_output)
    before = _weights(model)
    _fit_constant(model, steps=4)
    after = _weights(model)
    assert np.array_equal(before["body/kernel"], after["body/kernel"])
    assert np.array_equal(before["body/bias"], after["body/bias"])
    assert not np.allclose(before["top/kernel"], after["top/kernel"])
    slots = [v for v in optimizer.variables if "body_" in v.path]
    assert slots and all(not np.any(v.numpy()) for v in slots)


def test_weight_decay_uses_the_group_rate():
    """SGD + decoupled decay: w1 = w0 - lr*wd*w0 - lr*g, per group rate."""
    v_a = keras.Variable(np.full(2, 2.0, "float32"), name="a")
    v_b = keras.Variable(np.full(2, 2.0, "float32"), name="b")
    optimizer = LayerwiseLR(
        keras.optimizers.SGD(0.1, weight_decay=0.5),
        learning_rates={"^a$": 0.01},
    )
    g = np.full(2, 1.0, "float32")
    optimizer.apply([g, g], [v_a, v_b])
    np.testing.assert_allclose(v_a.numpy(), 2.0 - 0.01 * 0.5 * 2.0 - 0.01)
    np.testing.assert_allclose(v_b.numpy(), 2.0 - 0.1 * 0.5 * 2.0 - 0.1)


def _three_layer_model():
    inputs = keras.Input((2,))
    x = keras.layers.Dense(2, name="l1")(inputs)
    x = keras.layers.Dense(2, name="l2")(x)
    outputs = keras.layers.Dense(1, name="l3")(x)
    return keras.Model(inputs, outputs)


def test_layer_decay_with_group_dict():
    model = _three_layer_model()
    optimizer = LayerwiseLR(
        keras.optimizers.SGD(0.1),
        layer_decay=0.5,
        groups={"g1": "^l1/", "g2": ["^l2/"]},
    )
    variables = model.trainable_variables
    before = [v.numpy() for v in variables]
    optimizer.apply([np.ones(v.shape, "float32") for v in variables], variables)
    expected = {"l1": 0.025, "l2": 0.05, "l3": 0.1}
    for v, b in zip(variables, before):
        np.testing.assert_allclose(
            b - v.numpy(), expected[v.path.split("/")[0]], rtol=1e-6
        )


def _tagged_model():
    """A model nesting a 'backbone' model, tagged like `build_model` does."""
    inner_in = keras.Input((2,))
    x = keras.layers.Dense(2, name="b1_dense")(inner_in)
    x = keras.layers.Dense(2, name="b2_dense")(x)
    backbone_model = keras.Model(inner_in, x, name="tiny_backbone")
    backbone = Backbone(
        backbone_model,
        None,
        [Group("b1", ["b1_dense"]), Group("b2", ["b2_dense"])],
        name="tiny_backbone",
    )
    inputs = keras.Input((2,))
    outputs = keras.layers.Dense(1, name="head_dense")(backbone_model(inputs))
    model = keras.Model(inputs, outputs)
    _grouping.tag_model(model, backbone)
    return model, backbone


def test_group_names_from_build_model_tags_and_reload_keeps_them(tmp_path):
    model, _ = _tagged_model()
    optimizer = LayerwiseLR(
        keras.optimizers.Adam(1e-3),
        learning_rates={"backbone": 1e-4, "b1": 1e-5},
        layer_decay=0.5,
    )
    model.compile(optimizer, "mse")
    model.fit(np.ones((4, 2)), np.zeros((4, 1)), verbose=0)
    plan = optimizer.rate_plan()
    assert plan["b1_dense/kernel"] == ("b1", "relative", pytest.approx(1e-2))
    assert plan["b2_dense/bias"] == ("b2", "relative", pytest.approx(1e-1))
    assert plan["head_dense/kernel"] == ("head", "relative", 1.0)
    assert list(optimizer.get_config()["groups"]) == ["b1", "b2"]

    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    reloaded = keras.models.load_model(path)  # no tags on these variables
    assert reloaded.optimizer.rate_plan() == plan


def test_rebuild_from_config_over_more_variables_keeps_layer_decay():
    """Progressive unfreezing: built while b1 is frozen, rebuilt from its
    config once b1 trains; b1 must get its own decayed rate."""
    model, _ = _tagged_model()
    b1 = model.get_layer("tiny_backbone").get_layer("b1_dense")
    b1.trainable = False
    optimizer = LayerwiseLR(
        keras.optimizers.SGD(1.0),
        learning_rates={"head": 1.0},
        layer_decay=0.5,
    )
    optimizer.build(model.trainable_variables)
    assert optimizer.rate_plan()["b2_dense/kernel"] == ("b2", "relative", 0.5)
    clone = LayerwiseLR.from_config(optimizer.get_config())
    b1.trainable = True
    clone.build(model.trainable_variables)
    plan = clone.rate_plan()
    assert plan["b1_dense/kernel"] == ("b1", "relative", 0.25)
    assert plan["b2_dense/kernel"] == ("b2", "relative", 0.5)
    assert plan["head_dense/kernel"] == ("head", "relative", 1.0)


def test_frozen_backbone_accepts_backbone_key():
    model, _ = _tagged_model()
    model.get_layer("tiny_backbone").trainable = False
    optimizer = LayerwiseLR(
        keras.optimizers.Adam(1e-3), learning_rates={"backbone": 1e-5}
    )
    model.compile(optimizer, "mse")
    model.fit(np.ones((4, 2)), np.zeros((4, 1)), verbose=0)
    assert set(g for g, _, _ in optimizer.rate_plan().values()) == {"head"}


def test_backbone_as_groups():
    model, backbone = _tagged_model()
    optimizer = LayerwiseLR(
        keras.optimizers.SGD(1.0), learning_rates={"b2": 0.5}, groups=backbone
    )
    assert optimizer.groups == {"b1": ["^(?:b1_dense)/"],
                                "b2": ["^(?:b2_dense)/"]}
    optimizer.build(model.trainable_variables)
    plan = optimizer.rate_plan()
    assert plan["b2_dense/kernel"] == ("b2", "relative", 0.5)
    assert plan["b1_dense/kernel"] == ("b1", "relative", 1.0)
    assert plan["head_dense/bias"] == ("head", "relative", 1.0)


def test_unknown_key_is_an_error_listing_groups():
    model, _ = _tagged_model()
    optimizer = LayerwiseLR(
        keras.optimizers.Adam(1e-3), learning_rates={"conv9": 1e-4}
    )
    with pytest.raises(ValueError, match="conv9") as info:
        optimizer.build(model.trainable_variables)
    assert "'b1', 'b2'" in str(info.value)


@pytest.mark.parametrize("callback", ["scheduler", "plateau"])
def test_lr_callbacks_scale_every_group(callback):
    model = _parallel_model()
    optimizer = LayerwiseLR(
        keras.optimizers.SGD(0.1), learning_rates={"^body/": 0.01}
    )
    model.compile(optimizer, _mean_output)
    if callback == "scheduler":
        cb = keras.callbacks.LearningRateScheduler(
            lambda epoch, lr: 0.1 if epoch == 0 else 0.025
        )
    else:
        # min_delta so large that epoch 1 never improves: lr * 0.25 after it.
        cb = keras.callbacks.ReduceLROnPlateau(
            "loss", factor=0.25, patience=1, min_delta=1e9
        )
    snapshots = []
    record = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: snapshots.append(_weights(model))
    )
    before = _weights(model)
    _fit_constant(model, steps=2, epochs=3, callbacks=[cb, record])
    travel = [
        {p: float(np.mean(b[p] - a[p])) for p in a}
        for b, a in zip([before] + snapshots[:-1], snapshots)
    ]
    # SGD with gradient 0.5: each step moves lr_group * 0.5.
    np.testing.assert_allclose(travel[0]["top/kernel"], 0.1, rtol=1e-5)
    np.testing.assert_allclose(travel[0]["body/kernel"], 0.01, rtol=1e-5)
    last = 2 if callback == "plateau" else 1
    np.testing.assert_allclose(
        travel[last]["top/kernel"], 2 * 0.025 * 0.5, rtol=1e-4
    )
    np.testing.assert_allclose(
        travel[last]["body/kernel"], 2 * 0.0025 * 0.5, rtol=1e-4
    )
    # The plateau callback reduces once more after the last epoch.
    final = 0.025 if callback == "scheduler" else 0.025 * 0.25
    assert float(optimizer.learning_rate) == pytest.approx(final)


@pytest.mark.parametrize(
    "policy", ["float32", "mixed_float16", "mixed_bfloat16"]
)
def test_mirrored_strategy_and_mixed_precision(policy, two_cpu_strategy):
    keras.mixed_precision.set_global_policy(policy)
    with two_cpu_strategy.scope():
        model = _parallel_model()
        optimizer = LayerwiseLR(
            keras.optimizers.AdamW(1e-2, weight_decay=0.1),
            learning_rates={"^body/kernel": 0.0, "^body/bias": 1e-3},
        )
        model.compile(optimizer, _mean_output)
    if policy == "mixed_float16":
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    before = _weights(model)
    _fit_constant(model, steps=3)  # global batch 4 = 2 per replica
    after = _weights(model)
    assert np.array_equal(before["body/kernel"], after["body/kernel"])
    # Biases start at 0; float16 gradients cost a little precision.
    np.testing.assert_allclose(
        after["body/bias"], _adamw_bias_after(1e-3, 0.1, 0.5, 3), rtol=1e-4
    )
    np.testing.assert_allclose(
        after["top/bias"], _adamw_bias_after(1e-2, 0.1, 0.5, 3), rtol=1e-4
    )
    iterations = keras.ops.convert_to_numpy(model.optimizer.iterations)
    assert int(iterations) == 3


def test_save_load_keeps_type_rates_and_slots(tmp_path):
    model = _three_layer_model()
    optimizer = LayerwiseLR(
        keras.optimizers.Adam(1e-2),
        learning_rates={"^l1/": 1e-3, "l2": 0.0},
        groups={"l1": "^l1/", "l2": "^l2/"},
    )
    model.compile(optimizer, "mse")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 2)), rng.normal(size=(16, 1))
    model.fit(x, y, batch_size=4, verbose=0)
    optimizer.learning_rate = 5e-3  # as ReduceLROnPlateau would
    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    reloaded = keras.models.load_model(path)

    assert type(reloaded.optimizer) is LayerwiseLR
    assert reloaded.optimizer.rate_plan() == optimizer.rate_plan()
    assert float(reloaded.optimizer.learning_rate) == pytest.approx(5e-3)
    saved = {v.path: v.numpy() for v in optimizer.variables}
    loaded = {v.path: v.numpy() for v in reloaded.optimizer.variables}
    assert saved.keys() == loaded.keys()
    for key in saved:
        np.testing.assert_array_equal(saved[key], loaded[key])
    # Training on continues identically.
    model.fit(x, y, batch_size=4, verbose=0, shuffle=False)
    reloaded.fit(x, y, batch_size=4, verbose=0, shuffle=False)
    for a, b in zip(model.trainable_variables, reloaded.trainable_variables):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-7)


def test_save_load_under_mixed_float16(tmp_path):
    keras.mixed_precision.set_global_policy("mixed_float16")
    model = _three_layer_model()
    model.compile(
        LayerwiseLR(keras.optimizers.Adam(1e-2), {"^l1/": 1e-3}), "mse"
    )
    model.fit(np.ones((8, 2)), np.zeros((8, 1)), batch_size=4, verbose=0)
    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    reloaded = keras.models.load_model(path)
    assert type(reloaded.optimizer.inner_optimizer) is LayerwiseLR
    for a, b in zip(model.optimizer.variables, reloaded.optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_built_for_more_variables_than_train():
    model = _three_layer_model()
    optimizer = LayerwiseLR(keras.optimizers.Adam(1e-2), layer_decay=0.5,
                            groups={"l1": "^l1/", "l2": "^l2/"})
    optimizer.build(model.trainable_variables)
    model.get_layer("l1").trainable = False
    model.compile(optimizer, "mse")
    before = {v.path: v.numpy() for v in model.weights}
    model.fit(np.ones((8, 2)), np.zeros((8, 1)), batch_size=4, verbose=0)
    after = {v.path: v.numpy() for v in model.weights}
    assert np.array_equal(before["l1/kernel"], after["l1/kernel"])
    assert not np.array_equal(before["l2/kernel"], after["l2/kernel"])
    assert int(optimizer.iterations) == 2


def test_schedule_group_rate_and_config_roundtrip():
    schedule = keras.optimizers.schedules.ExponentialDecay(1.0, 1, 0.5)
    optimizer = LayerwiseLR(
        keras.optimizers.SGD(0.1),
        learning_rates={"^a$": schedule, "^b$": 0.05},
        layer_decay=0.9,
        groups={"g": "^c$"},
        name="lw",
    )
    clone = assert_config_roundtrip(optimizer)
    assert clone.learning_rates["^b$"] == 0.05
    v_a = keras.Variable(np.zeros(1, "float32"), name="a")
    v_b = keras.Variable(np.zeros(1, "float32"), name="b")
    g = np.ones(1, "float32")
    for _ in range(2):
        clone.apply([g, g], [v_a, v_b])
    # a: schedule 1.0 at step 0, 0.5 at step 1; b: constant ratio 0.5 * 0.1.
    np.testing.assert_allclose(v_a.numpy(), [-1.5])
    np.testing.assert_allclose(v_b.numpy(), [-0.1], rtol=1e-6)


def test_bad_arguments():
    bad_arguments = [
        ({"optimizer": keras.optimizers.LossScaleOptimizer(
            keras.optimizers.SGD())}, TypeError, "wrapper"),
        ({"layer_decay": 1.5}, ValueError, "layer_decay"),
        ({"learning_rates": [1e-3]}, TypeError, "learning_rates"),
        ({"learning_rates": {"a": "fast"}}, TypeError, "fast"),
        ({"learning_rates": {"a": -1.0}}, ValueError, ">= 0"),
        ({"clipnorm": 1.0}, ValueError, "clipnorm"),
        ({"optimizer": keras.optimizers.SGD(
            gradient_accumulation_steps=2)}, ValueError, "GradientAccumul"),
    ]
    for kwargs, error, match in bad_arguments:
        kwargs = {"optimizer": keras.optimizers.SGD(), **kwargs}
        with pytest.raises(error, match=match):
            LayerwiseLR(**kwargs)


def test_tf_function_apply_on_default_strategy():
    v = keras.Variable(np.zeros(2, "float32"), name="w")
    optimizer = LayerwiseLR(keras.optimizers.SGD(1.0), {"^w$": 0.5})
    optimizer.build([v])

    @tf.function
    def step():
        optimizer.apply([tf.ones(2)], [v])

    step()
    step()
    np.testing.assert_allclose(v.numpy(), [-1.0, -1.0])


def test_same_as_the_bare_optimizer_when_every_rate_is_the_base():
    """Decay, clipping, EMA and the step counter behave as in Keras."""

    def make():
        return keras.optimizers.AdamW(
            1e-2, weight_decay=0.1, clipnorm=0.5, use_ema=True,
            ema_momentum=0.5, ema_overwrite_frequency=3,
        )

    x, y = np.random.default_rng(1).normal(size=(2, 16, 2))
    results = []
    for optimizer in (make(), LayerwiseLR(make(), layer_decay=None)):
        keras.utils.set_random_seed(3)
        model = _three_layer_model()
        model.compile(optimizer, "mse")
        model.fit(x, y[:, :1], batch_size=4, epochs=1, shuffle=False,
                  verbose=0)
        results.append([v.numpy() for v in model.trainable_variables])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
