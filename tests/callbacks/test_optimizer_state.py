"""`_optimizer_state`: what an optimizer knows; carrying its state over."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasft.callbacks import _optimizer_state
from kerasft.optimizers import GradientAccumulator
from kerasft.optimizers import LayerwiseLR


def _variables():
    return [
        keras.Variable(np.ones((2, 2)), dtype="float32", name="a"),
        keras.Variable(np.ones((3,)), dtype="float32", name="b"),
    ]


def _trained(variables, **kwargs):
    optimizer = LayerwiseLR(keras.optimizers.AdamW(0.1), **kwargs)
    grads = [tf.ones_like(v) for v in variables]
    for _ in range(2):
        optimizer.apply_gradients(zip(grads, variables))
    return optimizer


def test_covers_looks_through_wrappers():
    a, b = _variables()
    optimizer = keras.optimizers.LossScaleOptimizer(
        GradientAccumulator(LayerwiseLR(keras.optimizers.Adam()), 2)
    )
    assert not _optimizer_state.covers(optimizer, [a])
    optimizer.build([a])
    assert _optimizer_state.covers(optimizer, [a])
    assert not _optimizer_state.covers(optimizer, [a, b])


def test_copy_state_carries_every_slot_over_to_more_variables():
    a, b = _variables()
    source = _trained([a])
    target = LayerwiseLR.from_config(source.get_config())
    target.build([a, b])
    _optimizer_state.copy_state(source, target)
    new = {v.path: v.numpy() for v in target.variables}
    for v in source.variables:
        np.testing.assert_array_equal(new[v.path], v.numpy())
    assert int(target.iterations) == 2
    assert not np.any(new["adam_w/b_momentum"])


def test_copy_state_fails_loudly_instead_of_dropping_state():
    a, b = _variables()
    source = _trained([a, b])
    fewer = LayerwiseLR.from_config(source.get_config())
    fewer.build([a])
    with pytest.raises(ValueError, match="b_momentum"):
        _optimizer_state.copy_state(source, fewer)

    other = keras.Variable(np.ones((5,)), dtype="float32", name="a")
    reshaped = LayerwiseLR.from_config(source.get_config())
    reshaped.build([other, b])
    with pytest.raises(ValueError, match=r"shape \(2, 2\) became \(5,\)"):
        _optimizer_state.copy_state(source, reshaped)
