"""`StagedSchedule` and the factory's per-stage schedules: each stage warms
up and decays over its own steps at its own rate, composed with
`LayerwiseLR` and `GradientAccumulator`, and saved with the model."""

import math

import keras
import numpy as np
import pytest

from kerasft.optimizers import StagedSchedule, make_optimizer
from kerasft.optimizers import factory
from kerasft.optimizers.schedules import OneCycle
from kerasft.recipes import configs
from tests.helpers import assert_config_roundtrip


def _cosine(peak, length, ratio, t):
    """Hugging Face's warmup + cosine to 0 over `length` steps, at step t."""
    warmup = math.ceil(ratio * length)
    if t < warmup:
        return peak * t / warmup
    return peak * 0.5 * (1 + math.cos(math.pi * (t - warmup) / (length - warmup)))


def _values(schedule, steps):
    return np.array([float(schedule(t)) for t in steps])


def test_lr_schedules_are_the_configs():
    assert factory.LR_SCHEDULES == configs.LR_SCHEDULES


def test_each_stage_warms_up_and_decays_over_its_own_steps():
    # Stages of 10 and 20 steps, 20% warmup each: 2 and 4 warmup steps.
    schedule = factory.learning_rate_schedule(
        {0: 1e-3, 10: 1e-4}, "cosine", warmup_ratio=0.2, total_steps=30)
    assert isinstance(schedule, StagedSchedule)
    assert schedule.boundaries == [10]
    expected = [_cosine(1e-3, 10, 0.2, t) for t in range(10)]
    expected += [_cosine(1e-4, 20, 0.2, t) for t in range(20)]
    np.testing.assert_allclose(_values(schedule, range(30)), expected,
                               rtol=1e-5, atol=1e-12)
    # Warmup ramps from 0 at each stage's first step; peaks where it ends.
    assert float(schedule(0)) == 0.0 and float(schedule(10)) == 0.0
    np.testing.assert_allclose(float(schedule(1)), 5e-4, rtol=1e-6)
    np.testing.assert_allclose(float(schedule(2)), 1e-3, rtol=1e-6)
    np.testing.assert_allclose(float(schedule(14)), 1e-4, rtol=1e-6)
    # The decay reaches 0 at each stage's end (Hugging Face: after the last
    # update), so the last step of a stage is nearly 0.
    assert float(schedule(9)) < 0.04 * 1e-3
    assert float(schedule(29)) < 0.01 * 1e-4
    assert float(schedule.schedules[0](10)) == pytest.approx(0.0, abs=1e-12)


def test_linear_and_constant_with_warmup_per_stage():
    linear = factory.learning_rate_schedule(
        {0: 1.0, 4: 0.5}, "linear", warmup_ratio=0.0, total_steps=8)
    np.testing.assert_allclose(
        _values(linear, range(8)),
        [1.0, 0.75, 0.5, 0.25, 0.5, 0.375, 0.25, 0.125], rtol=1e-6)
    warm = factory.learning_rate_schedule(
        {0: 1.0, 4: 0.5}, "constant", warmup_ratio=0.5, total_steps=8)
    np.testing.assert_allclose(
        _values(warm, range(8)), [0.0, 0.5, 1.0, 1.0, 0.0, 0.25, 0.5, 0.5],
        rtol=1e-6)


def test_one_cycle_per_stage_and_default_warmup():
    whole = factory.learning_rate_schedule(1e-3, "one_cycle", 0.0, 20)
    assert isinstance(whole, OneCycle)
    assert whole.pct_start == factory.ONE_CYCLE_WARMUP == 0.25
    assert float(whole(4)) == pytest.approx(1e-3, rel=1e-5)  # 0.25 * 20 - 1
    assert float(whole(0)) == pytest.approx(1e-3 / 25, rel=1e-5)
    assert float(whole(19)) == pytest.approx(1e-3 / 25 / 1e4, rel=1e-3)
    staged = factory.learning_rate_schedule(
        {0: 1e-3, 8: 1e-4}, "one_cycle", 0.5, 16)
    np.testing.assert_allclose(
        _values(staged, range(16)),
        [*_values(OneCycle(1e-3, 8, 0.5), range(8)),
         *_values(OneCycle(1e-4, 8, 0.5), range(8))], rtol=1e-6)


def test_schedules_need_total_steps():
    with pytest.raises(ValueError, match=r"needs `total_steps`"):
        factory.learning_rate_schedule({0: 1e-3, 5: 1e-4}, "cosine")
    with pytest.raises(ValueError, match=r"needs `total_steps`"):
        factory.learning_rate_schedule(1e-3, "one_cycle")
    # A constant rate per stage needs no step count.
    plain = factory.learning_rate_schedule({0: 1e-3, 5: 1e-4}, "constant")
    assert float(plain(4)) == pytest.approx(1e-3, rel=1e-6)
    assert float(plain(5)) == pytest.approx(1e-4, rel=1e-6)


@pytest.mark.parametrize("boundaries, schedules, match", [
    ([5, 3], [1.0, 1.0, 1.0], "increasing"),
    ([5], [1.0], "len\\(boundaries\\) \\+ 1 = 2"),
    ([5], [1.0, "x"], r"`schedules\[1\]` must be a float"),
])
def test_staged_schedule_refuses_bad_arguments(boundaries, schedules, match):
    with pytest.raises((ValueError, TypeError), match=match):
        StagedSchedule(boundaries, schedules)


def test_config_round_trip_with_nested_and_float_stages():
    schedule = StagedSchedule(
        [0, 4, 9], [1.0, OneCycle(1e-3, 5), 0.5,
                    keras.optimizers.schedules.CosineDecay(1e-4, 7)])
    clone = assert_config_roundtrip(schedule)
    np.testing.assert_allclose(_values(clone, range(20)),
                               _values(schedule, range(20)), rtol=1e-6)
    # An empty first stage: step 0 already belongs to the second.
    assert float(schedule(0)) == pytest.approx(float(OneCycle(1e-3, 5)(0)))


def test_staged_rates_need_stage_zero():
    with pytest.raises(ValueError, match="starting with 0"):
        factory.learning_rate_schedule({3: 1e-3}, "cosine", total_steps=10)


def _grouped_model():
    inputs = keras.Input((2,))
    x = keras.layers.Dense(2, name="low")(inputs)
    x = keras.layers.Dense(2, name="high")(x)
    outputs = keras.layers.Dense(1, name="head")(x)
    return keras.Model(inputs, outputs)


def test_layerwise_lr_scales_the_staged_rate_per_group():
    """Adam's first update moves each weight by its rate (the gradient's
    sign times the rate): the head at the schedule's rate, the groups below
    at that rate times decay**i, at a step inside the second stage."""
    schedule_rates = {0: 1e-2, 4: 1e-3}
    model = _grouped_model()
    optimizer = make_optimizer(
        schedule_rates, weight_decay=0.0, lr_schedule="cosine",
        warmup_ratio=0.25, total_steps=12, layer_decay=0.5,
        groups={"low": "^low/", "high": "^high/"})
    optimizer.build(model.trainable_variables)
    step = 7  # stage 2, local step 3 of 8: past its 2 warmup steps
    optimizer.iterations.assign(step)
    rate = _cosine(1e-3, 8, 0.25, 3)
    assert float(optimizer.learning_rate) == pytest.approx(rate, rel=1e-5)
    before = [v.numpy() for v in model.trainable_variables]
    optimizer.apply_gradients(
        [(keras.ops.ones_like(v), v) for v in model.trainable_variables])
    # Adam at update t = step + 1 from zero moments: |dw| = rate *
    # sqrt(1 - b2**t) / (1 - b1**t) * (1 - b1) / sqrt(1 - b2) (eps aside).
    t = step + 1
    adam = math.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t) * 0.1 / math.sqrt(0.001)
    multiplier = {"head": 1.0, "high": 0.5, "low": 0.25}
    for var, old in zip(model.trainable_variables, before):
        moved = np.abs(old - var.numpy())
        group = var.path.split("/")[0]
        np.testing.assert_allclose(moved, rate * adam * multiplier[group],
                                   rtol=1e-3)


def test_gradient_accumulator_steps_the_staged_schedule_per_update():
    model = _grouped_model()
    schedule_rates = {0: 1.0, 2: 0.5}
    optimizer = make_optimizer(
        schedule_rates, weight_decay=0.0, lr_schedule="linear",
        total_steps=4, accumulation_steps=2)
    expected = factory.learning_rate_schedule(schedule_rates, "linear",
                                              total_steps=4)
    optimizer.build(model.trainable_variables)
    grads = [keras.ops.ones_like(v) for v in model.trainable_variables]
    seen = []
    for _ in range(8):
        seen.append((int(optimizer.iterations),
                     float(optimizer.learning_rate)))
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
    assert [s for s, _ in seen] == [0, 0, 1, 1, 2, 2, 3, 3]
    np.testing.assert_allclose([r for _, r in seen],
                               [float(expected(s)) for s, _ in seen], rtol=1e-6)


def test_saved_model_reloads_the_staged_schedule_and_its_step(tmp_path):
    model = _grouped_model()
    optimizer = make_optimizer(
        {0: 1e-3, 3: 1e-4}, lr_schedule="cosine", warmup_ratio=0.2,
        total_steps=9, layer_decay=0.7, groups={"low": "^low/", "high": "^high/"},
        accumulation_steps=2)
    model.compile(optimizer=optimizer, loss="mse")
    x, y = np.ones((8, 2), "float32"), np.zeros((8, 1), "float32")
    model.fit(x, y, batch_size=2, epochs=2, verbose=0)  # 8 batches, 4 updates
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert int(loaded.optimizer.iterations) == 4
    restored, original = (
        keras.saving.deserialize_keras_object(
            opt.inner_optimizer.inner_optimizer.get_config()["learning_rate"])
        for opt in (loaded.optimizer, optimizer))
    assert isinstance(restored, StagedSchedule)
    assert restored.get_config() == original.get_config()
    np.testing.assert_allclose(_values(restored, range(9)),
                               _values(original, range(9)), rtol=1e-6)
    # The reloaded optimizer reads the rate of the step it stopped at.
    assert float(loaded.optimizer.learning_rate) == pytest.approx(
        float(original(4)), rel=1e-6)
