import keras
import numpy as np
import pytest

import kerasft
from kerasft import heads
from kerasft.freezing import STRATEGIES
from kerasft.freezing import plan_freeze
from kerasft.freezing import set_trainable_groups
from tests.heads.tiny_backbone import tiny_backbone

GROUPS = ("stem", "conv2", "conv3", "conv4")


# === Pure planning (no Keras) ===


@pytest.mark.parametrize(
    "strategy, n, expected",
    [
        ("full_freeze", None, ()),
        ("head_only", None, ()),
        ("progressive", None, ()),
        ("partial", 1, ("conv4",)),
        ("partial", 3, ("conv2", "conv3", "conv4")),
        ("partial", 4, GROUPS),
        ("partial", np.int64(2), ("conv3", "conv4")),
        ("full", None, GROUPS),
    ],
)
def test_plan_freeze_table(strategy, n, expected):
    assert plan_freeze(GROUPS, strategy, n) == expected


def test_plan_freeze_errors():
    with pytest.raises(ValueError, match="full_freeze, head_only, partial, progressive, full"):
        plan_freeze(GROUPS, "unfreeze_all")
    with pytest.raises(ValueError, match="needs `n`"):
        plan_freeze(GROUPS, "partial")
    for n in (0, 5, -1):
        with pytest.raises(ValueError, match=r"\[1, 4\]"):
            plan_freeze(GROUPS, "partial", n)
    with pytest.raises(TypeError, match="integer"):
        plan_freeze(GROUPS, "partial", 1.5)
    with pytest.raises(ValueError, match="only used by strategy='partial'"):
        plan_freeze(GROUPS, "full", 2)
    assert set(STRATEGIES) == {"full_freeze", "head_only", "partial", "progressive", "full"}


# === Keras glue: one real training step per strategy ===


def _build(nested=False):
    backbone = tiny_backbone(nested=nested)
    head = heads.classification(3)
    return backbone, head, kerasft.build_model(backbone, head)


def _snapshot(model):
    return {v.path: v.numpy().copy() for v in model.weights}


def _train_step(model, head):
    model.compile(optimizer=keras.optimizers.SGD(0.1), **head.compile_kwargs())
    x = np.random.rand(8, 16, 16, 3).astype("float32")
    y = np.arange(8) % 3
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)


def _changed(before, model):
    return {v.path for v in model.weights if not np.array_equal(before[v.path], v.numpy())}


CONV = {i: {f"b{i}_conv/kernel", f"b{i}_conv/bias"} for i in (1, 2, 3)}
HEAD = {"head_output/kernel", "head_output/bias"}


@pytest.mark.parametrize(
    "strategy, n, trained_blocks, groups",
    [
        ("full_freeze", None, (), ()),
        ("head_only", None, (), ()),
        ("progressive", None, (), ()),
        ("partial", 1, (3,), ("block3",)),
        ("partial", 2, (2, 3), ("block2", "block3")),
        ("full", None, (1, 2, 3), ("block1", "block2", "block3")),
    ],
)
def test_each_strategy_trains_exactly_what_it_promises(strategy, n, trained_blocks, groups):
    backbone, head, model = _build()
    plan = kerasft.freeze(model, backbone, strategy, n=n)
    assert plan.trainable_groups == groups
    assert plan.trainable_layers == tuple(f"b{i}_conv" for i in trained_blocks)
    before = _snapshot(model)
    _train_step(model, head)
    expected = set(HEAD)
    for i in trained_blocks:
        expected |= CONV[i]
    # Frozen weights and every BatchNorm variable (moving statistics
    # included: inference mode) are unchanged; the rest moved.
    assert _changed(before, model) == expected


def test_param_counts_hand_computed():
    # conv: 3*3*cin*cout + cout; BN: 4 * channels (gamma, beta, mean, var).
    conv = {1: 3 * 3 * 3 * 4 + 4, 2: 3 * 3 * 4 * 8 + 8, 3: 3 * 3 * 8 * 8 + 8}
    bn = {1: 4 * 4, 2: 4 * 8, 3: 4 * 8}
    head = 8 * 3 + 3
    backbone_total = sum(conv.values()) + sum(bn.values())

    backbone, _, model = _build()
    plan = kerasft.freeze(model, backbone, "full_freeze")
    assert (plan.trainable_params, plan.non_trainable_params) == (head, backbone_total)
    plan = kerasft.freeze(model, backbone, "partial", n=1)
    assert plan.trainable_params == head + conv[3]
    plan = kerasft.freeze(model, backbone, "full")
    assert plan.trainable_params == head + sum(conv.values())
    assert plan.non_trainable_params == sum(bn.values())
    plan = kerasft.freeze(model, backbone, "full", train_batchnorm=True)
    assert plan.trainable_params == head + sum(conv.values()) + sum(bn.values()) // 2


def test_train_batchnorm_updates_batchnorm():
    backbone, head, model = _build()
    kerasft.freeze(model, backbone, "partial", n=1, train_batchnorm=True)
    before = _snapshot(model)
    _train_step(model, head)
    bn3 = {f"b3_bn/{n}" for n in ("gamma", "beta", "moving_mean", "moving_variance")}
    assert _changed(before, model) == HEAD | CONV[3] | bn3


def test_last_k_weighted_layers():
    # Weighted layers: b1_conv b1_bn b2_conv b2_bn b3_conv b3_bn.
    backbone, head, model = _build()
    plan = kerasft.freeze(model, backbone, "partial", layers=3)
    assert plan.trainable_layers == ("b3_conv",)
    assert plan.trainable_groups == ("block3",)
    plan = kerasft.freeze(model, backbone, "partial", layers=3, train_batchnorm=True)
    assert plan.trainable_layers == ("b2_bn", "b3_conv", "b3_bn")
    assert plan.trainable_groups == ("block2", "block3")
    before = _snapshot(model)
    _train_step(model, head)
    changed = _changed(before, model)
    assert CONV[3] <= changed and "b2_bn/gamma" in changed and not CONV[2] & changed


def test_freeze_argument_errors():
    backbone, _, model = _build()
    with pytest.raises(ValueError, match="only used by strategy='partial'"):
        kerasft.freeze(model, backbone, "full", layers=2)
    with pytest.raises(ValueError, match="not both"):
        kerasft.freeze(model, backbone, "partial", n=1, layers=2)
    with pytest.raises(ValueError, match=r"\[1, 6\]"):
        kerasft.freeze(model, backbone, "partial", layers=7)
    with pytest.raises(ValueError, match="Valid strategies"):
        kerasft.freeze(model, backbone, "everything")
    other = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="build it with kerasft.build_model"):
        kerasft.freeze(other, backbone, "full")


def test_refreezing_reenables_layers_frozen_one_by_one():
    # On TF, setting `trainable = True` on a container that reads True does
    # not reach sublayers frozen earlier: freeze must set each layer.
    backbone, head, model = _build()
    kerasft.freeze(model, backbone, "full_freeze")
    assert backbone.model.trainable  # the container flag still reads True
    kerasft.freeze(model, backbone, "full")
    before = _snapshot(model)
    _train_step(model, head)
    assert _changed(before, model) == HEAD | CONV[1] | CONV[2] | CONV[3]


def test_nested_submodel_batchnorm_stays_frozen():
    backbone, head, model = _build(nested=True)
    set_trainable_groups(backbone, ["block3"])
    sub = backbone.model.get_layer("b3_sub")
    assert sub.trainable and not sub.get_layer("b3_bn").trainable
    kerasft.freeze(model, backbone, "full")
    before = _snapshot(model)
    _train_step(model, head)
    assert _changed(before, model) == HEAD | CONV[1] | CONV[2] | CONV[3]


def test_set_trainable_groups_returns_layers():
    backbone = tiny_backbone()
    assert set_trainable_groups(backbone, ["block2"]) == ("b2_conv",)
    assert set_trainable_groups(backbone, ["block2"], train_batchnorm=True) == (
        "b2_conv", "b2_bn",
    )
    assert {l.name for l in backbone.model.layers if l.trainable_weights} == {
        "b2_conv", "b2_bn",
    }
    with pytest.raises(KeyError, match="block9"):
        set_trainable_groups(backbone, ["block9"])


def test_full_strategy_under_mirrored_strategy(two_cpu_strategy):
    # Two replicas: BatchNorm must stay in inference mode across replicas too.
    with two_cpu_strategy.scope():
        backbone, head, model = _build()
        kerasft.freeze(model, backbone, "full")
        model.compile(optimizer=keras.optimizers.SGD(0.1), **head.compile_kwargs())
    before = _snapshot(model)
    x = np.random.rand(8, 16, 16, 3).astype("float32")
    model.fit(x, np.arange(8) % 3, batch_size=8, epochs=1, verbose=0)
    assert _changed(before, model) == HEAD | CONV[1] | CONV[2] | CONV[3]
