"""`lr_schedule`/`warmup_ratio` in every mode: a staged run restarts the
schedule in each stage at the stage's rate; one schedule over a single
stage; a clear error where the run's steps are unknown."""

import math

import keras
import numpy as np
import pytest

from kerasft import heads, recipes
from kerasft.optimizers.schedules import OneCycle
from kerasft.recipes import _stages
from kerasft.recipes._runner import Run
from kerasft.recipes.configs import ImageClassificationConfig
from tests.recipes.tiny import tiny_backbone, tiny_images

FAST = dict(precision="float32", strategy="default", verbose=0, dropout=0.0,
            validation_split=0.0, seed=3, head_units=())


class RecordRates(keras.callbacks.Callback):
    """The optimizer's rate and step before every batch."""

    def __init__(self):
        super().__init__()
        self.rates, self.steps = [], []

    def on_train_batch_begin(self, batch, logs=None):
        self.rates.append(float(self.model.optimizer.learning_rate))
        self.steps.append(int(self.model.optimizer.iterations))


def _run(tmp_path, name, n=32, batch_size=8, callbacks=(), **options):
    x, y = tiny_images(n)
    recorder = RecordRates()
    result = recipes.image_classification(
        train=(x, y), backbone=tiny_backbone(), batch_size=batch_size,
        output_dir=str(tmp_path / name), callbacks=[recorder, *callbacks],
        **{**FAST, **options})
    return result, recorder


def _cosine(peak, length, ratio, t):
    warmup = math.ceil(ratio * length)
    if t < warmup:
        return peak * t / warmup
    return peak * 0.5 * (1 + math.cos(math.pi * (t - warmup) / (length - warmup)))


def _progressive_expected(lr=1e-2, ft=1e-3):
    # 4 batches an epoch, 4 epochs; progressive with head_epochs=1: the head
    # for epoch 0 (steps 0-3), the top group from epoch 1 (4-7), everything
    # at a tenth from epoch 2 = 1 + (4 - 1) // 2 (steps 8-15).
    return ([_cosine(lr, 4, 0.2, t) for t in range(4)]
            + [_cosine(ft, 4, 0.2, t) for t in range(4)]
            + [_cosine(ft / 10, 8, 0.2, t) for t in range(8)])


def test_progressive_cosine_with_warmup_runs_one_curve_per_stage(tmp_path):
    result, recorder = _run(
        tmp_path, "progressive", epochs=4, mode="progressive", head_epochs=1,
        unfreeze_groups=1, learning_rate=1e-2, fine_tune_learning_rate=1e-3,
        lr_schedule="cosine", warmup_ratio=0.2)
    assert recorder.steps == list(range(16))
    np.testing.assert_allclose(recorder.rates, _progressive_expected(),
                               rtol=1e-5, atol=1e-12)
    # Each stage starts from 0 (warmup).
    assert [recorder.rates[s] for s in (0, 4, 8)] == [0.0, 0.0, 0.0]


def test_progressive_schedule_with_accumulation_counts_updates(tmp_path):
    """Two batches per update: 2 updates an epoch, stages at updates 2, 4."""
    _, recorder = _run(
        tmp_path, "accumulated", epochs=4, mode="progressive", head_epochs=1,
        learning_rate=1e-2, fine_tune_learning_rate=1e-3, lr_schedule="linear",
        accumulation_steps=2, layer_decay=0.5)
    assert recorder.steps == [s // 2 for s in range(16)]
    expected = [1e-2, 5e-3, 1e-3, 5e-4, 1e-4, 7.5e-5, 5e-5, 2.5e-5]
    np.testing.assert_allclose(recorder.rates, np.repeat(expected, 2),
                               rtol=1e-5)


def test_constant_rate_stays_with_the_unfreeze_callback(tmp_path):
    """Without a schedule `ProgressiveUnfreeze` sets each stage's rate."""
    _, recorder = _run(tmp_path, "constant", epochs=3, mode="partial",
                       head_epochs=1, learning_rate=1e-2,
                       fine_tune_learning_rate=1e-3)
    np.testing.assert_allclose(recorder.rates, [1e-2] * 4 + [1e-3] * 8,
                               rtol=1e-6)


def test_one_cycle_over_a_single_stage(tmp_path):
    _, recorder = _run(tmp_path, "one_cycle", epochs=2, mode="full",
                       head_epochs=0, fine_tune_learning_rate=1e-3,
                       lr_schedule="one_cycle")
    expected = OneCycle(1e-3, 8, pct_start=0.25)
    np.testing.assert_allclose(recorder.rates,
                               [float(expected(t)) for t in range(8)],
                               rtol=1e-5)


def test_one_cycle_per_stage(tmp_path):
    _, recorder = _run(tmp_path, "one_cycle_staged", epochs=2, mode="partial",
                       head_epochs=1, learning_rate=1e-2,
                       fine_tune_learning_rate=1e-3, lr_schedule="one_cycle",
                       warmup_ratio=0.5)
    head, body = OneCycle(1e-2, 4, 0.5), OneCycle(1e-3, 4, 0.5)
    np.testing.assert_allclose(
        recorder.rates,
        [float(head(t)) for t in range(4)] + [float(body(t)) for t in range(4)],
        rtol=1e-5)


def test_feature_cache_trains_the_head_on_the_whole_run_schedule(tmp_path):
    """`feature_extraction` is one stage; cached features reuse the model's
    optimizer, schedule included."""
    result, recorder = _run(tmp_path, "features", epochs=2,
                       mode="feature_extraction", learning_rate=1e-2,
                       lr_schedule="cosine", warmup_ratio=0.25,
                       feature_cache="memory")
    assert recorder.model is not result.model  # the head alone trained
    np.testing.assert_allclose(
        recorder.rates, [_cosine(1e-2, 8, 0.25, t) for t in range(8)],
        rtol=1e-5, atol=1e-12)


@pytest.mark.parametrize("options", [
    dict(mode="progressive", head_epochs=1, lr_schedule="cosine"),
    dict(mode="full", head_epochs=0, warmup_ratio=0.1),
])
def test_a_schedule_without_the_run_steps_is_refused(tmp_path, options):
    config = ImageClassificationConfig(
        train="unused", output_dir=str(tmp_path / "run"), epochs=3,
        **{**FAST, **options})
    run = Run(config)
    try:
        with run.strategy.scope():
            backbone = tiny_backbone()
            head = heads.classification(3)
            with pytest.raises(ValueError, match=(
                    r"lr_schedule=.* needs the number of training steps.*"
                    r"lr_schedule='constant'")):
                _stages.build_and_compile(run, config, backbone, head)
    finally:
        run.close()


@pytest.mark.parametrize("lr_schedule, rates", [
    ("cosine", None), ("constant", {0: 1e-2, 1: 1e-3, 2: 1e-4})])
def test_the_unfreeze_callback_sets_rates_only_without_a_schedule(
        tmp_path, lr_schedule, rates):
    config = ImageClassificationConfig(
        train="unused", output_dir=str(tmp_path / "run"), epochs=4,
        mode="progressive", head_epochs=1, learning_rate=1e-2,
        fine_tune_learning_rate=1e-3, lr_schedule=lr_schedule, **FAST)
    run = Run(config)
    try:
        callback = _stages.unfreeze_callback(run, config, tiny_backbone())
    finally:
        run.close()
    assert callback.schedule == {0: 0, 1: 2, 2: "all"}
    if rates is None:
        assert callback.learning_rates is None
    else:
        assert callback.learning_rates == pytest.approx(rates)


class _StopAt(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt("stopped")


def test_a_resumed_run_continues_the_schedule_at_its_step(tmp_path):
    options = dict(epochs=4, mode="progressive", head_epochs=1,
                   learning_rate=1e-2, fine_tune_learning_rate=1e-3,
                   lr_schedule="cosine", warmup_ratio=0.2)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, "resumed", callbacks=[_StopAt(2)], **options)
    _, recorder = _run(tmp_path, "resumed", **options)
    assert recorder.steps == list(range(8, 16))
    np.testing.assert_allclose(recorder.rates, _progressive_expected()[8:],
                               rtol=1e-5, atol=1e-12)
