"""`ProgressiveUnfreeze` + `LayerwiseLR`: every variable's update after a
stage change is the plain optimizer's update times its group's multiplier.

Two copies of one model train the same steps, one with `AdamW`, one with
`LayerwiseLR(AdamW, layer_decay=0.5)`. The first stage trains the head only
(multiplier 1), so both copies are identical when the backbone opens; the
first step after it must then move head, g3, g2, g1 by 1, 0.5, 0.25, 0.125
times the plain step, for variables that open at the stage change, after
the stage's base rate is set, whether the optimizer was built by
`ProgressiveUnfreeze` or rebuilt by it (built over the head only before
`fit`). Guards the suspected interaction of issue 25 (multipliers missing or
wrong for variables that open later, or state lost on a rebuild).
"""

import keras
import numpy as np
import pytest

from kerasft.callbacks import ProgressiveUnfreeze
from tests.callbacks.tiny import as_np
from tests.callbacks.tiny import tiny_backbone
from tests.callbacks.tiny import tiny_data

MULTIPLIERS = {"head": 1.0, "d3": 0.5, "c2": 0.25, "c1": 0.125}


class _FirstStepOfEpoch(keras.callbacks.Callback):
    """Weights when `epoch` begins and after its first batch."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch, self.current = epoch, None
        self.before = self.after = None

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch
        if epoch == self.epoch:
            self.before = _snapshot(self.model)

    def on_train_batch_end(self, batch, logs=None):
        if self.current == self.epoch and batch == 0:
            self.after = _snapshot(self.model)


def _snapshot(model):
    return {v.path: as_np(v) for v in model.trainable_weights}


def _train(layerwise, prebuilt):
    import kerasft

    keras.utils.set_random_seed(0)
    backbone = tiny_backbone()
    model = kerasft.build_model(
        backbone, lambda f: keras.layers.Dense(1, name="head")(f)
    )
    optimizer = keras.optimizers.AdamW(1e-2, weight_decay=0.1)
    if layerwise:
        optimizer = kerasft.optimizers.LayerwiseLR(optimizer, layer_decay=0.5)
    if prebuilt:
        # Built over the head alone: ProgressiveUnfreeze must rebuild it.
        kerasft.freeze(model, backbone, "full_freeze")
        optimizer.build(model.trainable_variables)
    model.compile(optimizer=optimizer, loss="mse")
    x, y = tiny_data()
    probe = _FirstStepOfEpoch(1)
    model.fit(
        x, y, batch_size=8, epochs=2, shuffle=False, verbose=0,
        callbacks=[
            ProgressiveUnfreeze(backbone, {0: 0, 1: "all"},
                                learning_rates={0: 1e-2, 1: 3e-3}, verbose=0),
            probe,
        ],
    )
    return model, probe


@pytest.mark.parametrize("prebuilt", [False, True], ids=["built", "rebuilt"])
def test_update_after_stage_change_is_plain_update_times_multiplier(prebuilt):
    _, plain = _train(layerwise=False, prebuilt=prebuilt)
    model, scaled = _train(layerwise=True, prebuilt=prebuilt)
    assert model.optimizer.learning_rate.numpy() == pytest.approx(3e-3)
    # Head-only first stage at multiplier 1: identical when the backbone opens.
    assert set(plain.before) == set(scaled.before)
    for path in plain.before:
        np.testing.assert_allclose(scaled.before[path], plain.before[path],
                                   rtol=1e-6, atol=1e-7, err_msg=path)
    checked = set()
    for path in plain.before:
        layer = path.split("/")[0]
        if layer not in MULTIPLIERS:
            continue  # BatchNorm stays frozen.
        step_plain = plain.after[path] - plain.before[path]
        step_scaled = scaled.after[path] - scaled.before[path]
        assert np.abs(step_plain).max() > 1e-5, path  # the variable moved
        np.testing.assert_allclose(
            step_scaled, MULTIPLIERS[layer] * step_plain,
            rtol=1e-3, atol=1e-8, err_msg=path,
        )
        checked.add(layer)
    assert checked == set(MULTIPLIERS)
