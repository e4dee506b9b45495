"""ProgressiveUnfreeze trains exactly the scheduled groups, epoch by epoch."""

import keras
import numpy as np
import pytest

from kerasft.callbacks import ProgressiveUnfreeze
from kerasft.callbacks import _unfreeze_plan as plan_lib
from tests.callbacks.tiny import ChangeRecorder
from tests.callbacks.tiny import as_np
from tests.callbacks.tiny import tiny_backbone
from tests.callbacks.tiny import tiny_data
from tests.callbacks.tiny import tiny_model
from tests.callbacks.tiny import trainable_paths
from tests.callbacks.tiny import values

G1 = trainable_paths(["c1"], with_head=False)
G2 = trainable_paths(["c2"], with_head=False)
G3 = trainable_paths(["d3"], with_head=False)
HEAD = trainable_paths([], with_head=True)


# === Pure planning ===


@pytest.mark.parametrize(
    "epoch, expected",
    [
        (0, ()),
        (1, ()),
        (2, ("g2", "g3")),
        (3, ("g2", "g3")),
        (4, ("g1", "g2", "g3")),
        (9, ("g1", "g2", "g3")),
    ],
)
def test_plan_groups_at(epoch, expected):
    plan = plan_lib.normalize_schedule({0: 0, 2: 2, 4: "all"}, 3)
    assert plan_lib.groups_at(["g1", "g2", "g3"], plan, epoch) == expected


def test_plan_before_first_key_is_head_only_and_json_keys():
    plan = plan_lib.normalize_schedule({"3": 1}, 3)
    assert plan == {3: 1}
    assert plan_lib.groups_at(["a", "b", "c"], plan, 2) == ()
    assert plan_lib.groups_at(["a", "b", "c"], plan, 3) == ("c",)


@pytest.mark.parametrize(
    "schedule, match",
    [
        ({0: 4}, r"schedule\[0\]=4"),
        ({-1: 1}, "key -1"),
        ({0: "most"}, "'most'"),
        ({}, "non-empty"),
        ([0, 1], "non-empty dict"),
    ],
)
def test_bad_schedule(schedule, match):
    with pytest.raises(ValueError, match=match):
        ProgressiveUnfreeze(tiny_backbone(), schedule)


def test_bad_arguments():
    backbone = tiny_backbone()
    with pytest.raises(TypeError, match="learning_rates"):
        ProgressiveUnfreeze(backbone, {0: 1}, learning_rates=[1e-3])
    with pytest.raises(ValueError, match=">= 0"):
        ProgressiveUnfreeze(backbone, {0: 1}, learning_rates={0: -1.0})
    with pytest.raises(TypeError, match="Backbone"):
        ProgressiveUnfreeze(backbone.model, {0: 1})
    with pytest.raises(TypeError, match="train_batchnorm"):
        ProgressiveUnfreeze(backbone, {0: 1}, train_batchnorm="yes")


def test_rejects_a_backbone_outside_the_model():
    model = tiny_model(tiny_backbone())
    model.compile(optimizer="adam", loss="mse")
    with pytest.raises(ValueError, match="does not use the weights"):
        ProgressiveUnfreeze(tiny_backbone(), {0: 1}, verbose=0).set_model(model)


def test_helper_schedules():
    backbone = tiny_backbone()
    three = ProgressiveUnfreeze.three_stages(
        backbone, head_epochs=2, top_epochs=3, top_groups=2
    )
    assert three.schedule == {0: 0, 2: 2, 5: "all"}
    ulmfit = ProgressiveUnfreeze.one_group_per_epoch(backbone, epochs_per_group=2)
    assert ulmfit.schedule == {0: 0, 2: 1, 4: 2, 6: "all"}
    assert [ulmfit.groups_at(e) for e in (0, 2, 4, 6)] == [
        (),
        ("g3",),
        ("g2", "g3"),
        ("g1", "g2", "g3"),
    ]
    with pytest.raises(ValueError, match="head_epochs"):
        ProgressiveUnfreeze.three_stages(backbone, head_epochs=0)


def test_get_config_holds_plain_arguments():
    backbone = tiny_backbone()
    callback = ProgressiveUnfreeze(
        backbone, {0: 0, 2: "all"}, learning_rates={2: 1e-5}, verbose=0
    )
    config = callback.get_config()
    assert config == {
        "schedule": {0: 0, 2: "all"},
        "learning_rates": {2: 1e-5},
        "train_batchnorm": False,
        "verbose": 0,
    }
    clone = ProgressiveUnfreeze.from_config({**config, "backbone": backbone})
    assert clone.get_config() == config
    with pytest.raises(ValueError, match="backbone"):
        ProgressiveUnfreeze.from_config(config)


# === Training ===


def _fit(schedule, epochs, model=None, backbone=None, optimizer=None, **kwargs):
    backbone = backbone or tiny_backbone()
    model = model or tiny_model(backbone)
    model.compile(optimizer=optimizer or keras.optimizers.Adam(1e-2), loss="mse")
    x, y = tiny_data()
    recorder = ChangeRecorder()
    unfreeze = ProgressiveUnfreeze(backbone, schedule, verbose=0, **kwargs)
    model.fit(
        x, y, batch_size=8, epochs=epochs, shuffle=False, verbose=0,
        callbacks=[unfreeze, recorder],
    )
    return model, recorder


def test_trains_exactly_scheduled_groups_per_epoch():
    backbone = tiny_backbone()
    model = tiny_model(backbone)
    bn_before = {k: v for k, v in values(model).items() if "bn" in k}
    model, rec = _fit(
        {0: 0, 1: 1, 2: 2, 3: "all"}, 4, model=model, backbone=backbone
    )
    assert rec.changed[0] == HEAD
    assert rec.changed[1] == HEAD | G3
    assert rec.changed[2] == HEAD | G3 | G2
    assert rec.changed[3] == HEAD | G3 | G2 | G1
    # BatchNorm: gamma/beta and moving statistics never move.
    after = values(model)
    for path, value in bn_before.items():
        np.testing.assert_array_equal(after[path], value)
    # One optimizer object, never rebuilt after training began, 4 steps/epoch.
    assert len({id(o) for o in rec.optimizers.values()}) == 1
    assert int(as_np(model.optimizer.iterations)) == 16


def test_optimizer_slots_survive_stage_changes():
    """Adam moments of the head carry over into the next stage, and slots of
    a group stay zero until that group opens."""

    class SlotProbe(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seen = {}

        def _slots(self):
            opt = self.model.optimizer
            out = {}
            for name in ("head/kernel", "c1/kernel"):
                var = next(v for v in self.model.weights if v.path == name)
                index = opt._get_variable_index(var)
                out[name] = as_np(opt._momentums[index])
            return out

        def on_epoch_begin(self, epoch, logs=None):
            self.seen[("begin", epoch)] = self._slots()

        def on_epoch_end(self, epoch, logs=None):
            self.seen[("end", epoch)] = self._slots()

    backbone = tiny_backbone()
    model = tiny_model(backbone)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    probe = SlotProbe()
    x, y = tiny_data()
    model.fit(
        x, y, batch_size=8, epochs=2, shuffle=False, verbose=0,
        callbacks=[ProgressiveUnfreeze(backbone, {0: 0, 1: "all"}, verbose=0), probe],
    )
    end0, begin1 = probe.seen[("end", 0)], probe.seen[("begin", 1)]
    assert np.abs(end0["head/kernel"]).sum() > 0
    np.testing.assert_array_equal(begin1["head/kernel"], end0["head/kernel"])
    assert np.abs(end0["c1/kernel"]).sum() == 0
    assert np.abs(probe.seen[("end", 1)]["c1/kernel"]).sum() > 0


def test_saved_model_reloads_optimizer_state_mid_schedule(tmp_path):
    """A fit that stops before its last stage leaves every scheduled group
    trainable, so a `.keras` file reloads the optimizer with its slots."""
    import warnings

    model, _ = _fit({0: 1, 5: "all"}, 2)
    assert len(model.trainable_weights) == 8
    path = str(tmp_path / "model.keras")
    model.save(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        loaded = keras.models.load_model(path)
    assert int(as_np(loaded.optimizer.iterations)) == 8
    for opt_var, loaded_var in zip(model.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(as_np(loaded_var), as_np(opt_var))


def test_learning_rate_steps():
    _, rec = _fit(
        {0: 0, 1: "all"}, 3, learning_rates={0: 1e-2, 1: 1e-3, 2: 5e-4}
    )
    np.testing.assert_allclose(
        [rec.learning_rates[e] for e in range(3)], [1e-2, 1e-3, 5e-4], rtol=1e-6
    )


def test_a_second_fit_keeps_state_of_an_earlier_head_only_fit():
    """The optimizer built by a head-only fit is replaced by one over every
    scheduled variable, keeping the step counter and the head's slots."""
    backbone = tiny_backbone()
    model = tiny_model(backbone)
    backbone.model.trainable = False
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    x, y = tiny_data()
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    old = model.optimizer
    head = next(v for v in model.weights if v.path == "head/kernel")
    m_old = as_np(old._momentums[old._get_variable_index(head)])
    rec = ChangeRecorder()
    unfreeze = ProgressiveUnfreeze(backbone, {1: "all"}, verbose=0)
    # set_model (called by fit) already replaced the optimizer; probe it here.
    unfreeze.set_model(model)
    new = model.optimizer
    assert new is not old
    assert int(as_np(new.iterations)) == 4
    np.testing.assert_array_equal(
        as_np(new._momentums[new._get_variable_index(head)]), m_old
    )
    model.fit(
        x, y, batch_size=8, epochs=2, initial_epoch=1, shuffle=False,
        verbose=0, callbacks=[unfreeze, rec],
    )
    assert rec.changed[1] == HEAD | G1 | G2 | G3
    assert int(as_np(model.optimizer.iterations)) == 8


class _Interrupt(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise RuntimeError("interrupted")


@pytest.mark.parametrize("backup_first", [False, True])
def test_resume_after_interruption_matches_uninterrupted(tmp_path, backup_first):
    schedule = {0: 0, 1: 1, 2: "all"}
    rates = {0: 1e-2, 2: 3e-3}
    x, y = tiny_data()
    init = values(tiny_model(tiny_backbone()))

    def run(callbacks):
        backbone = tiny_backbone()
        model = tiny_model(backbone)
        model.set_weights([init[v.path] for v in model.weights])
        model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
        unfreeze = ProgressiveUnfreeze(
            backbone, schedule, learning_rates=rates, verbose=0
        )
        recorder = ChangeRecorder()
        extra = list(callbacks)
        cbs = extra + [unfreeze] if backup_first else [unfreeze] + extra
        model.fit(
            x, y, batch_size=8, epochs=4, shuffle=False, verbose=0,
            callbacks=cbs + [recorder],
        )
        return model, recorder

    reference, _ = run([])
    backup = str(tmp_path / "backup")
    with pytest.raises(RuntimeError, match="interrupted"):
        run([keras.callbacks.BackupAndRestore(backup), _Interrupt(2)])
    resumed, rec = run([keras.callbacks.BackupAndRestore(backup)])
    assert sorted(rec.changed) == [2, 3]
    assert rec.changed[2] == HEAD | G1 | G2 | G3
    assert rec.learning_rates[2] == pytest.approx(3e-3)
    assert int(as_np(resumed.optimizer.iterations)) == int(as_np(reference.optimizer.iterations))
    expected = values(reference)
    for path, value in values(resumed).items():
        np.testing.assert_allclose(value, expected[path], rtol=1e-5, atol=1e-6)


def test_mirrored_strategy(two_cpu_strategy):
    """Under a strategy `fit` builds the optimizer before callbacks run; with
    the backbone frozen it knows the head only and must be rebuilt in scope."""
    with two_cpu_strategy.scope():
        backbone = tiny_backbone()
        model = tiny_model(backbone)
        backbone.model.trainable = False
        model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    x, y = tiny_data()
    rec = ChangeRecorder()
    model.fit(
        x, y, batch_size=8, epochs=2, shuffle=False, verbose=0,
        callbacks=[ProgressiveUnfreeze(backbone, {0: 1, 1: "all"}, verbose=0), rec],
    )
    assert rec.changed[0] == HEAD | G3
    assert rec.changed[1] == HEAD | G1 | G2 | G3
    assert int(as_np(model.optimizer.iterations)) == 8


def test_mixed_float16():
    keras.mixed_precision.set_global_policy("mixed_float16")
    model, rec = _fit({0: 0, 1: "all"}, 2, learning_rates={1: 1e-3})
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert rec.changed[0] == HEAD
    assert rec.changed[1] == HEAD | G1 | G2 | G3
    assert rec.learning_rates[1] == pytest.approx(1e-3)
    assert int(as_np(model.optimizer.iterations)) == 8


def test_ema_optimizer_when_fit_ends_before_the_last_stage():
    """Keras swaps the EMA into `model.trainable_weights` at the end of fit;
    those must be the variables the EMA tracks even though the last stage
    never opened, and frozen variables keep their value."""
    backbone = tiny_backbone()
    model = tiny_model(backbone)
    c1_before = values(model)["c1/kernel"]
    model, rec = _fit(
        {0: 1, 5: "all"}, 2, model=model, backbone=backbone,
        optimizer=keras.optimizers.Adam(1e-2, use_ema=True, ema_momentum=0.9),
    )
    assert rec.changed[1] == HEAD | G3
    assert len(model.optimizer._model_variables_moving_average) == 8
    after = values(model)
    np.testing.assert_array_equal(after["c1/kernel"], c1_before)
    head = next(v for v in model.weights if v.path == "head/kernel")
    index = model.optimizer._get_variable_index(head)
    average = model.optimizer._model_variables_moving_average[index]
    np.testing.assert_array_equal(after["head/kernel"], as_np(average))


def test_with_build_model_layerwise_lr_and_ema():
    """kerasft.build_model + LayerwiseLR(Adam(use_ema=True)): stages open as
    scheduled, the base rate steps, every group follows it, EMA covers all."""
    import kerasft

    backbone = tiny_backbone()
    model = kerasft.build_model(
        backbone, lambda f: keras.layers.Dense(1, name="head")(f)
    )
    optimizer = kerasft.optimizers.LayerwiseLR(
        keras.optimizers.Adam(1e-2, use_ema=True, ema_momentum=0.9),
        layer_decay=0.5,
    )
    _, rec = _fit(
        {0: 1, 1: "all"}, 2, model=model, backbone=backbone,
        optimizer=optimizer, learning_rates={1: 1e-3},
    )
    assert rec.changed[0] == HEAD | G3
    assert rec.changed[1] == HEAD | G1 | G2 | G3
    assert rec.learning_rates == {0: pytest.approx(1e-2), 1: pytest.approx(1e-3)}
    inner = model.optimizer.inner_optimizer
    assert len(inner._model_variables_moving_average) == 8
    assert model.optimizer.rate_plan()["c1/kernel"][0] == "g1"


@pytest.mark.parametrize("variant", ["jit_compile", "gradient_accumulator"])
def test_jit_compile_and_gradient_accumulator(variant):
    import kerasft

    backbone = tiny_backbone()
    model = tiny_model(backbone)
    optimizer = keras.optimizers.Adam(1e-2)
    if variant == "gradient_accumulator":
        optimizer = kerasft.optimizers.GradientAccumulator(optimizer, 2)
    model.compile(optimizer, "mse", jit_compile=variant == "jit_compile")
    x, y = tiny_data()
    rec = ChangeRecorder()
    model.fit(
        x, y, batch_size=8, epochs=2, shuffle=False, verbose=0,
        callbacks=[ProgressiveUnfreeze(backbone, {0: 1, 1: "all"}, verbose=0), rec],
    )
    assert rec.changed[0] == HEAD | G3
    assert rec.changed[1] == HEAD | G1 | G2 | G3
    updates = 8 if variant == "jit_compile" else 4
    assert int(as_np(model.optimizer.iterations)) == updates
