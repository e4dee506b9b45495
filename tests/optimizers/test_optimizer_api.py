"""Both wrappers behave like the optimizer they wrap.

Golden values: every optimizer of the conformance list, with decoupled
weight decay (and an exclusion made on the wrapper), global clipping and EMA,
gives the bare optimizer's variables and slots to 1e-6 through
`LayerwiseLR`, `GradientAccumulator` and both nested, eagerly, in a
`tf.function`, under `MirroredStrategy` and under `LossScaleOptimizer`.
Then every public `Optimizer` method and setting, listed, on the wrapper.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasft.optimizers import GradientAccumulator
from kerasft.optimizers import LayerwiseLR

OPTIMIZERS = {
    "adam": keras.optimizers.Adam,
    "adamw": keras.optimizers.AdamW,
    "sgd": lambda lr, **kw: keras.optimizers.SGD(lr, momentum=0.9, **kw),
    "rmsprop": keras.optimizers.RMSprop,
    "nadam": keras.optimizers.Nadam,
    "lion": keras.optimizers.Lion,
    "adafactor": keras.optimizers.Adafactor,
    "lamb": keras.optimizers.Lamb,
}
SETTINGS = dict(
    weight_decay=0.05,
    global_clipnorm=1.0,
    use_ema=True,
    ema_momentum=0.9,
    ema_overwrite_frequency=4,
)
STEPS = 6


def _variables():
    return [
        keras.Variable(
            np.linspace(-1, 1, 6).reshape(3, 2), dtype="float32", name="kernel"
        ),
        keras.Variable([0.5, -0.5], dtype="float32", name="bias"),
    ]


def _gradients(step):
    rng = np.random.default_rng(step)
    scale = 3.0 if step % 2 else 0.2  # some steps clip, some do not
    return [
        tf.constant(scale * rng.normal(size=(3, 2)), "float32"),
        tf.constant(scale * rng.normal(size=(2,)), "float32"),
    ]


def _wrap(kind, optimizer):
    if kind == "bare":
        return optimizer
    if kind == "layerwise":
        return LayerwiseLR(optimizer)
    if kind == "accumulate":
        return GradientAccumulator(optimizer, 1)
    if kind == "accumulate2":
        return GradientAccumulator(optimizer, 2)
    if kind == "nested":
        return GradientAccumulator(LayerwiseLR(optimizer), 2)
    if kind == "scaled":
        # Base rate 0.8, every variable at 0.4: the bare optimizer at 0.4.
        return LayerwiseLR(optimizer, learning_rates={".*": 0.4})
    raise ValueError(kind)


def _trajectory(name, kind, graph=False):
    """Variables after each step, the final slots, and the finalized EMA."""
    lr = 0.8 if kind == "scaled" else 0.4
    inner = OPTIMIZERS[name](lr, **SETTINGS)
    optimizer = _wrap(kind, inner)
    optimizer.exclude_from_weight_decay(var_names=["bias"])
    variables = _variables()
    repeat = 2 if kind in ("accumulate2", "nested") else 1

    def apply(grads):
        optimizer.apply_gradients(zip(grads, variables))

    if graph:
        apply = tf.function(apply)
    history = []
    for step in range(STEPS):
        for _ in range(repeat):
            apply(_gradients(step))
        history.append([v.numpy() for v in variables])
    # The optimizer's state; the rate differs by design for "scaled".
    slots = [
        v.numpy() for v in inner.variables if "learning_rate" not in v.path
    ]
    optimizer.finalize_variable_values(variables)
    assert int(optimizer.iterations) == STEPS
    return history, slots, [v.numpy() for v in variables]


def _assert_close(a, b):
    for x, y in zip(a, b):
        if isinstance(x, list):
            _assert_close(x, y)
        else:
            np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-6)


_REFERENCE = {}


def _reference(name):
    if name not in _REFERENCE:
        _REFERENCE[name] = _trajectory(name, "bare")
    return _REFERENCE[name]


@pytest.mark.parametrize("name", list(OPTIMIZERS))
@pytest.mark.parametrize(
    "kind, graph",
    [
        ("layerwise", False),
        ("layerwise", True),
        ("accumulate", False),
        ("accumulate2", True),
        ("nested", False),
        ("scaled", False),
    ],
)
def test_golden_values_match_the_bare_optimizer(name, kind, graph):
    history, slots, final = _trajectory(name, kind, graph)
    ref_history, ref_slots, ref_final = _reference(name)
    assert np.all(np.isfinite(history[-1][0]))
    _assert_close(history, ref_history)
    _assert_close(slots, ref_slots)
    _assert_close(final, ref_final)


@pytest.mark.parametrize("kind", ["layerwise", "accumulate"])
def test_nadam_three_steps_stay_finite(kind):
    """The issue's report: Nadam through LayerwiseLR reached inf."""
    results = []
    for wrapped in (False, True):
        optimizer = keras.optimizers.Nadam(0.5)
        if wrapped:
            optimizer = _wrap(kind, optimizer)
        x = keras.Variable([1.0, 2.0, 3.0, 4.0])
        for _ in range(3):
            optimizer.apply_gradients([(tf.constant([1.0, 6.0, 7.0, 2.0]), x)])
        results.append(x.numpy())
    assert np.all(np.isfinite(results[1]))
    np.testing.assert_allclose(results[1], results[0], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kind", ["layerwise", "accumulate"])
@pytest.mark.parametrize("clip", [{"clipnorm": 0.5}, {"clipvalue": 0.3}])
def test_clipping_matches_the_bare_optimizer(kind, clip):
    results = []
    for wrapped in (False, True):
        optimizer = keras.optimizers.SGD(1.0, **clip)
        if wrapped:
            optimizer = _wrap(kind, optimizer)
        variables = _variables()
        optimizer.apply_gradients(zip(_gradients(1), variables))
        results.append([v.numpy() for v in variables])
    _assert_close(results[1], results[0])
    # The gradients reach 3 * N(0, 1); clipped, no step exceeds 0.5.
    for after, before in zip(results[1], _variables()):
        assert np.max(np.abs(after - before.numpy())) <= 0.5 + 1e-6


@pytest.mark.parametrize("name", ["adam", "nadam", "lion", "adafactor"])
def test_accumulation_matches_keras_gradient_accumulation_steps(name):
    """GradientAccumulator(opt, 3) and Keras's own accumulation (what the
    excluded Keras tests exercise) give the same weights."""
    results = []
    for ours in (True, False):
        if ours:
            optimizer = GradientAccumulator(
                OPTIMIZERS[name](0.1, weight_decay=0.05), 3
            )
        else:
            optimizer = OPTIMIZERS[name](
                0.1, weight_decay=0.05, gradient_accumulation_steps=3
            )
        variables = _variables()
        for step in range(12):
            optimizer.apply_gradients(zip(_gradients(step), variables))
        results.append([v.numpy() for v in variables])
    _assert_close(results[0], results[1])


def _dense_model():
    inputs = keras.Input((3,))
    x = keras.layers.Dense(4, activation="tanh", name="body")(inputs)
    outputs = keras.layers.Dense(2, name="top", dtype="float32")(x)
    return keras.Model(inputs, outputs)


def _fit_weights(kind, name, strategy=None, policy="float32"):
    keras.mixed_precision.set_global_policy(policy)
    keras.utils.set_random_seed(3)
    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        model = _dense_model()
        optimizer = _wrap(kind, OPTIMIZERS[name](1e-2, weight_decay=0.1))
        optimizer.exclude_from_weight_decay(var_names=["bias"])
        model.compile(optimizer, "mse")
    if policy == "mixed_float16":
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 3)).astype("float32")
    y = rng.normal(size=(16, 2)).astype("float32")
    model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 4
    return [v.numpy() for v in model.trainable_variables]


@pytest.mark.parametrize("name", ["nadam", "adamw"])
@pytest.mark.parametrize("kind", ["layerwise", "accumulate"])
def test_mirrored_strategy_matches_the_bare_optimizer(
    name, kind, two_cpu_strategy
):
    bare = _fit_weights("bare", name, two_cpu_strategy)
    _assert_close(_fit_weights(kind, name, two_cpu_strategy), bare)


@pytest.mark.parametrize("kind", ["layerwise", "accumulate"])
def test_loss_scale_optimizer_around_the_wrappers(kind):
    """`compile` under mixed_float16 wraps the wrapper in LossScaleOptimizer;
    the weights follow the bare optimizer's."""
    bare = _fit_weights("bare", "nadam", policy="mixed_float16")
    _assert_close(_fit_weights(kind, "nadam", policy="mixed_float16"), bare)


@pytest.mark.parametrize("kind", ["layerwise", "accumulate"])
def test_loss_scale_optimizer_skips_non_finite_steps_through_wrappers(kind):
    results = []
    for wrapped in (False, True):
        inner = keras.optimizers.Nadam(0.1)
        optimizer = keras.optimizers.LossScaleOptimizer(
            _wrap(kind, inner) if wrapped else inner, initial_scale=8.0
        )
        assert inner.loss_scale_factor is None
        x = keras.Variable([1.0, 2.0])
        optimizer.apply([tf.constant([np.inf, 1.0])], [x])
        assert int(optimizer.iterations) == 0
        np.testing.assert_array_equal(x.numpy(), [1.0, 2.0])
        assert float(optimizer.dynamic_scale) == 4.0
        for _ in range(2):
            optimizer.apply([tf.constant([4.0, -2.0])], [x])
        assert int(optimizer.iterations) == 2
        results.append(x.numpy())
    np.testing.assert_allclose(results[1], results[0], rtol=1e-6, atol=1e-6)


# === Every public Optimizer name, on the wrapper ===

# Methods and settings that act on the wrapped optimizer's state.
FORWARDED = {
    "apply", "apply_gradients", "iterations", "learning_rate", "variables",
    "set_weights", "save_own_variables", "load_own_variables",
    "exclude_from_weight_decay", "finalize_variable_values", "scale_loss",
    "weight_decay", "clipnorm", "clipvalue", "global_clipnorm", "use_ema",
    "ema_momentum", "ema_overwrite_frequency", "loss_scale_factor",
}
# The wrapper's own: its config, name, build state; Keras's accumulation is
# replaced by GradientAccumulator (None on both wrappers and rejected inside).
OWN = {"build", "built", "get_config", "from_config", "name",
       "gradient_accumulation_steps"}
# For optimizer authors (called by `update_step` implementations), not by
# users of a compiled optimizer.
SUBCLASS_API = {"add_variable", "add_variable_from_reference",
                "add_optimizer_variables", "assign", "assign_add",
                "assign_sub", "update_step"}
# Raises on the TensorFlow backend for the bare optimizer too.
UNSUPPORTED = {"stateless_apply"}


def test_every_public_optimizer_name_is_listed():
    bare = keras.optimizers.Adam()
    names = {n for n in dir(keras.optimizers.Optimizer) if n[0] != "_"}
    names |= {n for n in vars(bare) if n[0] != "_"}
    names -= {"amsgrad", "beta_1", "beta_2", "epsilon"}  # Adam's own
    assert names == FORWARDED | OWN | SUBCLASS_API | UNSUPPORTED


@pytest.mark.parametrize("kind", ["layerwise", "accumulate"])
def test_settings_are_the_wrapped_optimizers(kind):
    inner = keras.optimizers.AdamW(1e-3, clipnorm=2.0, use_ema=True)
    optimizer = _wrap(kind, inner)
    settings = ["weight_decay", "clipnorm", "clipvalue", "global_clipnorm",
                "use_ema", "ema_momentum", "ema_overwrite_frequency",
                "loss_scale_factor"]
    assert set(settings) <= FORWARDED
    for name in settings:
        assert getattr(optimizer, name) == getattr(inner, name), name
    optimizer.ema_momentum = 0.5
    optimizer.weight_decay = 0.2
    optimizer.learning_rate = 0.25
    assert inner.ema_momentum == 0.5 and inner.weight_decay == 0.2
    assert float(inner.learning_rate) == 0.25
    assert optimizer.iterations is inner.iterations
    optimizer.loss_scale_factor = 4.0
    assert float(optimizer.scale_loss(2.0)) == 8.0


@pytest.mark.parametrize("kind", ["layerwise", "accumulate"])
@pytest.mark.parametrize("how", ["var_names", "var_list"])
def test_exclude_from_weight_decay_on_the_wrapper(kind, how):
    results = []
    for wrapped in (False, True):
        optimizer = keras.optimizers.AdamW(0.1, weight_decay=0.5)
        if wrapped:
            optimizer = _wrap(kind, optimizer)
        kernel, bias = _variables()
        if how == "var_names":
            optimizer.exclude_from_weight_decay(var_names=["bias"])
        else:
            optimizer.exclude_from_weight_decay(var_list=[bias])
        zero = [tf.zeros_like(kernel), tf.zeros_like(bias)]
        optimizer.apply_gradients(zip(zero, [kernel, bias]))
        np.testing.assert_array_equal(bias.numpy(), [0.5, -0.5])
        assert not np.allclose(kernel.numpy(), _variables()[0].numpy())
        results.append(kernel.numpy())
    np.testing.assert_allclose(results[1], results[0], rtol=1e-6)


@pytest.mark.parametrize("kind", ["layerwise", "accumulate"])
def test_set_weights_and_own_variables_round_trip(kind):
    def trained():
        optimizer = _wrap(kind, keras.optimizers.Nadam(0.1, use_ema=True))
        variables = _variables()
        for step in range(2):
            optimizer.apply_gradients(zip(_gradients(step), variables))
        return optimizer, variables

    source, _ = trained()
    values = [v.numpy() for v in source.variables]
    store = {}
    source.save_own_variables(store)
    assert len(store) == len(source.variables)

    target = _wrap(kind, keras.optimizers.Nadam(0.1, use_ema=True))
    with pytest.raises(ValueError, match="not yet been built"):
        target.set_weights(values)
    variables = _variables()
    target.build(variables)
    target.load_own_variables(store)
    _assert_close([v.numpy() for v in target.variables], values)

    again = _wrap(kind, keras.optimizers.Nadam(0.1, use_ema=True))
    again.build(_variables())
    again.set_weights(values)
    _assert_close([v.numpy() for v in again.variables], values)
    with pytest.raises(ValueError, match="not compatible"):
        again.set_weights([np.zeros((7,))] * len(values))


def test_layerwise_lr_leaves_the_wrapped_optimizer_as_it_was():
    inner = keras.optimizers.Nadam(0.1)
    optimizer = LayerwiseLR(inner, learning_rates={"kernel": 0.05})
    variables = _variables()
    optimizer.apply_gradients(zip(_gradients(0), variables))
    # The per-variable rates apply inside `LayerwiseLR.apply` only.
    assert "update_step" not in vars(inner)
    assert "_apply_weight_decay" not in vars(inner)


def test_optimizer_with_its_own_weight_decay_rule_is_refused():
    with pytest.raises(TypeError, match="Muon"):
        LayerwiseLR(keras.optimizers.Muon())


def test_a_step_where_every_rate_is_zero_still_counts():
    optimizer = LayerwiseLR(
        keras.optimizers.AdamW(0.1), learning_rates={".*": 0.0}
    )
    variables = _variables()
    optimizer.apply_gradients(zip(_gradients(0), variables))
    assert int(optimizer.iterations) == 1
    _assert_close([v.numpy() for v in variables],
                  [v.numpy() for v in _variables()])


def test_load_own_variables_reads_kerasft_0_1_files_and_refuses_others():
    """kerasft 0.1 saved only the wrapper's own variables in its entry (the
    wrapped optimizer's state is in the wrapped optimizer's entry)."""
    optimizer = GradientAccumulator(keras.optimizers.Adam(0.1), 2)
    variables = _variables()
    optimizer.build(variables)
    legacy = {str(i): np.full(v.shape, 3, v.dtype)
              for i, v in enumerate(optimizer._own_variables())}
    optimizer.load_own_variables(legacy)
    assert int(optimizer._batches.numpy()) == 3
    assert int(optimizer.iterations) == 0  # the wrapped entry loads it
    layerwise = LayerwiseLR(keras.optimizers.Adam(0.1))
    layerwise.build(variables)
    layerwise.load_own_variables({})
    with pytest.raises(ValueError, match="holds 6 variables, the file 1"):
        layerwise.load_own_variables({"0": np.zeros(())})
