"""The advisor's pure rules, on plain numbers (no model is built)."""

import math

import pytest

from kerasft.advisor import _rules
from kerasft.advisor.advice import Advice


def _measured(**overrides):
    m = {
        "examples_per_class": 100,
        "num_groups": 3,
        "probe_accuracy": 0.8,
        "group_shift": [0.01, 0.02, 0.5],
        "shift_kind": "batchnorm",
        "steps_per_epoch": 10,
        "head_rate": 3e-2,
    }
    m.update(overrides)
    return m


@pytest.mark.parametrize(
    "overrides, mode, groups",
    [
        # Separable frozen features: nothing to gain.
        ({"probe_accuracy": 0.99}, "feature_extraction", 0),
        # Too few labels to open anything, however far.
        ({"examples_per_class": _rules.MIN_PER_CLASS - 1,
          "group_shift": [1, 1, 1]}, "feature_extraction", 0),
        # Data for every group: full (unshifted groups slowed by decay).
        ({}, "full", 3),
        ({"examples_per_class": 500, "group_shift": [0.6, 0.6, 0.6]}, "full", 3),
        # From the panel's "tiny" bound every group opens, near or far.
        ({"examples_per_class": _rules.FULL_PER_CLASS,
          "group_shift": [0.0, 0.0, 0.5]}, "full", 3),
    ],
)
def test_strategy(overrides, mode, groups):
    decided = _rules.decide(_measured(**overrides))
    assert decided["mode"][0] == mode
    if groups:
        assert decided["unfreeze_groups"][0] == groups


@pytest.mark.parametrize(
    "overrides, mode, groups",
    [
        # Data for some groups, shift from the bottom: progressive.
        ({"examples_per_class": 20, "group_shift": [0.6, 0.6, 0.6]},
         "progressive", 1),
        # Data for some groups, shift only at the top: partial, top group.
        ({"examples_per_class": 30, "num_groups": 4,
          "group_shift": [0.0, 0.0, 0.0, 0.5]}, "partial", 1),
    ],
)
def test_strategy_between_the_data_bounds(monkeypatch, overrides, mode, groups):
    # The panel left the band between the bounds empty (full won from the
    # tiny bound); the rule for a backbone where it is not stays tested.
    monkeypatch.setattr(_rules, "MIN_PER_CLASS", 15)
    monkeypatch.setattr(_rules, "FULL_PER_CLASS", 50)
    decided = _rules.decide(_measured(**overrides))
    assert decided["mode"][0] == mode
    assert decided["unfreeze_groups"][0] == groups


def test_near_tiny_task_gets_feature_extraction_and_larger_opens_more():
    near = dict(group_shift=[0.0, 0.01, 0.2], probe_accuracy=0.5)
    tiny = _rules.decide(_measured(examples_per_class=_rules.MIN_PER_CLASS - 1,
                                   **near))
    assert tiny["mode"][0] == "feature_extraction"
    far = _rules.decide(_measured(examples_per_class=50,
                                  group_shift=[0.6, 0.7, 0.9]))
    assert far["mode"][0] == "full"


def test_more_data_never_opens_fewer_groups():
    opened = [
        _rules.groups_affordable(n, 4)[0] for n in (1, 10, 15, 30, 60, 149, 150, 10_000)
    ]
    assert opened == sorted(opened)
    assert opened[0] == 0 and opened[-1] == 4


def test_probe_kind_opens_groups_above_the_best_probe():
    k, _ = _rules.groups_needed([0.5, 0.9, 0.7, 0.6], "probe", 0.6)
    assert k == 2  # groups 3 and 4 lie above the best-probing group 2
    k, _ = _rules.groups_needed([0.5, 0.6, 0.7, 0.9], "probe", 0.9)
    assert k == 1  # at least the top group


@pytest.mark.parametrize(
    "steps_per_epoch, epochs",
    [(1, 200), (3, 67), (20, 10), (1000, _rules.MIN_EPOCHS)],
)
def test_epochs_for_steps(steps_per_epoch, epochs):
    assert _rules.epochs_for(200, steps_per_epoch) == epochs


@pytest.mark.parametrize("steps_per_epoch", [1, 2, 5, 47, 400])
def test_small_data_still_gets_the_step_targets(steps_per_epoch):
    # No epoch cap: a 1-step epoch gets as many epochs as the steps need
    # (a cap left 10-per-class runs ~20 steps, decided by the head's start).
    head, epochs, why = _rules.choose_epochs("full", steps_per_epoch)
    assert head * steps_per_epoch >= _rules.HEAD_STEPS
    assert (epochs - head) * steps_per_epoch >= _rules.TRAIN_STEPS
    assert epochs - head >= _rules.MIN_EPOCHS
    _, fe_epochs, _ = _rules.choose_epochs("feature_extraction", steps_per_epoch)
    assert fe_epochs * steps_per_epoch >= _rules.FEATURE_STEPS


def test_feature_extraction_has_no_head_stage():
    head, epochs, _ = _rules.choose_epochs("feature_extraction", 5)
    assert head == 0
    assert epochs == _rules.epochs_for(_rules.FEATURE_STEPS, 5)


def test_frozen_head_rate_is_a_tenth_of_the_lowest_loss_and_clipped():
    lr, ft, why = _rules.choose_rates(3e-3, "feature_extraction")
    assert lr == pytest.approx(3e-4) and ft is None and "lowest loss" in why
    lr, ft, _ = _rules.choose_rates(50.0, "feature_extraction")
    assert lr == _rules.HEAD_RATE_RANGE[1] and ft is None
    lr, _, why = _rules.choose_rates(float("nan"), "feature_extraction")
    assert lr == _rules.DEFAULT_HEAD_RATE and "no lr_find" in why


@pytest.mark.parametrize("mode", ["partial", "progressive", "full"])
def test_open_layers_take_the_open_rate_unless_the_head_sweep_rises_below_it(mode):
    # A sweep whose loss is lowest above the open rate leaves it alone:
    # its "/ 10" is a frozen head's figure (4.9e-3 / 10 cost 21.5 points).
    for swept in (0.7, 4.9e-3, _rules.OPEN_HEAD_RATE, float("nan"), None):
        lr, ft, _ = _rules.choose_rates(swept, mode)
        assert lr == _rules.OPEN_HEAD_RATE
        assert ft == pytest.approx(lr / _rules.FINE_TUNE_DIVISOR)
    # A head whose loss already rises below it takes the sweep's rate.
    lr, ft, why = _rules.choose_rates(3e-4, mode)
    assert lr == pytest.approx(3e-4) and "below" in why
    assert ft == pytest.approx(3e-5)
    lr, ft, _ = _rules.choose_rates(1e-6, mode)
    assert lr == _rules.HEAD_RATE_RANGE[0]
    assert ft == _rules.FINE_TUNE_RANGE[0]


def test_layer_decay_only_on_long_runs_and_follows_the_shift_profile():
    long = _rules.DECAY_MIN_STEPS
    # Bottom opened group shifted 0.81 of the top over 3 groups: 0.9.
    decay, _ = _rules.choose_layer_decay([0.405, 0.45, 0.5], "batchnorm", 3, long)
    assert decay == pytest.approx(0.9, abs=0.01)
    decay, why = _rules.choose_layer_decay(
        [0.405, 0.45, 0.5], "batchnorm", 3, long - 1)
    assert decay is None and "steps" in why
    assert _rules.choose_layer_decay([0.4, 0.4, 0.4], "batchnorm", 3, long)[0] is None
    assert _rules.choose_layer_decay([0.1, 0.2, 0.4], "batchnorm", 1, long)[0] is None
    assert _rules.choose_layer_decay([0.0, 0.0, 1.0], "batchnorm", 3, long)[0] == (
        _rules.DECAY_RANGE[0]
    )


def test_every_choice_has_a_reason():
    decided = _rules.decide(_measured())
    assert set(decided) == {
        "mode", "unfreeze_groups", "head_epochs", "epochs", "learning_rate",
        "fine_tune_learning_rate", "layer_decay",
    }
    assert all(isinstance(why, str) and why for _, why in decided.values())


def _advice():
    decided = _rules.decide(_measured())
    return Advice({k: v for k, (v, _) in decided.items()},
                  {k: why for k, (_, why) in decided.items()}, _measured())


def test_advice_replace_keeps_the_rest(tmp_path):
    advice = _advice()
    changed = advice.replace(epochs=5)
    assert changed.epochs == 5 and changed.mode == advice.mode
    assert changed.reasons["epochs"] == "set by the user"
    assert changed.overridden == ("epochs",)
    with pytest.raises(ValueError, match="epochz"):
        advice.replace(epochz=5)


def test_advice_json_round_trip_and_table(tmp_path):
    import json

    advice = _advice().replace(layer_decay=0.5)
    path = advice.to_json(str(tmp_path / "advice.json"))
    with open(path) as f:
        again = Advice.from_dict(json.load(f))
    assert again == advice
    table = str(advice)
    assert "measured" in table and "because" in table
    assert "set by the user" in table
    assert advice.config_fields()["layer_decay"] == 0.5
