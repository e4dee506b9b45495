"""Rematerialized backbones compute the same outputs, gradients and training."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasft.callbacks import ProgressiveUnfreeze
from kerasft.freezing import set_trainable_groups
from kerasft.remat import RematSegment
from kerasft.remat import rematerialize
from tests.callbacks.tiny import ChangeRecorder
from tests.callbacks.tiny import tiny_backbone
from tests.callbacks.tiny import tiny_data
from tests.callbacks.tiny import trainable_paths
from tests.callbacks.tiny import values
from tests.helpers import assert_model_roundtrip


def _outer(features, size=16):
    inputs = keras.Input((size, size, 3))
    x = features(inputs, training=False)
    return keras.Model(inputs, keras.layers.Dense(1, name="head")(x))


def _pair():
    """A plain and a rematerialized model sharing one backbone's layers; the
    head weights are copied so both compute the same function."""
    backbone = tiny_backbone(16)
    set_trainable_groups(backbone, backbone.group_names)  # BN stays frozen
    plain = _outer(backbone.model)
    remat = _outer(rematerialize(backbone))
    remat.get_layer("head").set_weights(plain.get_layer("head").get_weights())
    return backbone, plain, remat


def test_structure_and_variables_shared():
    backbone = tiny_backbone(16)
    view = rematerialize(backbone, groups=["g2", "g3"])
    kinds = [type(l).__name__ for l in view.layers[1:]]
    assert kinds == ["Functional", "RematSegment", "RematSegment"]
    assert view.name == backbone.model.name
    assert {id(v) for v in view.weights} == {id(v) for v in backbone.model.weights}
    with pytest.raises(ValueError, match="Unknown groups"):
        rematerialize(backbone, groups=["g9"])


def test_same_outputs_and_gradients_in_graph_mode():
    _, plain, remat = _pair()
    x, y = tiny_data(8, 16)

    @tf.function
    def grads(model):
        with tf.GradientTape() as tape:
            out = model(x, training=True)
            loss = tf.reduce_mean((out - y) ** 2)
        return out, tape.gradient(loss, model.trainable_variables)

    out_p, g_p = grads(plain)
    out_r, g_r = grads(remat)
    np.testing.assert_allclose(out_r.numpy(), out_p.numpy(), rtol=1e-6, atol=1e-6)
    assert [v.path for v in remat.trainable_variables] == [
        v.path for v in plain.trainable_variables
    ]
    assert len(g_p) == 8
    for a, b in zip(g_r, g_p):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-7)


def test_fit_matches_plain_and_progressive_unfreeze_works():
    x, y = tiny_data(32, 16)
    results = []
    init = None
    for use_remat in (False, True):
        backbone = tiny_backbone(16)
        model = _outer(rematerialize(backbone) if use_remat else backbone.model)
        if init is None:
            init = [w.copy() for w in model.get_weights()]
        model.set_weights(init)
        model.compile(keras.optimizers.Adam(1e-2), "mse")
        rec = ChangeRecorder()
        unfreeze = ProgressiveUnfreeze(backbone, {0: 1, 1: "all"}, verbose=0)
        model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0,
                  callbacks=[unfreeze, rec])
        assert rec.changed[0] == trainable_paths(["d3"])
        assert rec.changed[1] == trainable_paths(["c1", "c2", "d3"])
        results.append(values(model))
    plain, remat = results
    for path, value in remat.items():
        np.testing.assert_allclose(value, plain[path], rtol=1e-5, atol=1e-6)


def test_save_and_load_keeps_segments():
    _, _, remat = _pair()
    x, _ = tiny_data(4, 16)
    reloaded = assert_model_roundtrip(remat, x)
    inner = reloaded.get_layer("tiny")
    assert sum(isinstance(l, RematSegment) for l in inner.layers) == 3


def test_rejects_subclassed_models():
    class Net(keras.Model):
        def call(self, x):
            return x

    backbone = tiny_backbone(16)
    backbone.model = Net()
    with pytest.raises(TypeError, match="functional"):
        rematerialize(backbone)


def test_build_model_remat_switch_with_freeze():
    import kerasft

    backbone = tiny_backbone(16)
    head = kerasft.heads.regression(1)
    model = kerasft.build_model(backbone, head, remat=True)
    nested = model.get_layer(backbone.name)
    assert any(isinstance(l, RematSegment) for l in nested.layers)
    plan = kerasft.freeze(model, backbone, "partial", n=1)
    assert plan.trainable_groups == (backbone.group_names[-1],)
    top = {v.path for l in backbone.layers_of(plan.trainable_groups) for v in l.trainable_weights}
    assert top and top <= {v.path for v in model.trainable_variables}
    model.compile(optimizer="sgd", loss="mse")
    x, y = tiny_data(8, 16)
    before = values(model)
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    after = values(model)
    changed = {p for p in before if not np.array_equal(before[p], after[p])}
    assert changed and changed <= top | {v.path for v in model.trainable_variables}
    bottom = {v.path for l in backbone.layers_of(backbone.group_names[:1]) for v in l.weights}
    assert not changed & bottom
