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
        "head_rate": 3e-3,
        "backbone_rate": 1e-3,
    }
    m.update(overrides)
    return m


@pytest.mark.parametrize(
    "overrides, mode, groups",
    [
        # Separable frozen features: nothing to gain.
        ({"probe_accuracy": 0.99}, "feature_extraction", 0),
        # Too few labels to open anything, however far.
        ({"examples_per_class": 5, "group_shift": [1, 1, 1]},
         "feature_extraction", 0),
        # Data for every group: full (unshifted groups slowed by decay).
        ({}, "full", 3),
        ({"examples_per_class": 500, "group_shift": [0.6, 0.6, 0.6]}, "full", 3),
        # Data for some groups, shift from the bottom: progressive.
        ({"examples_per_class": 20, "group_shift": [0.6, 0.6, 0.6]},
         "progressive", 1),
        # Data for some groups, shift only at the top: partial, top group.
        ({"examples_per_class": 30, "num_groups": 4,
          "group_shift": [0.0, 0.0, 0.0, 0.5]}, "partial", 1),
    ],
)
def test_strategy(overrides, mode, groups):
    decided = _rules.decide(_measured(**overrides))
    assert decided["mode"][0] == mode
    if groups:
        assert decided["unfreeze_groups"][0] == groups


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
    [(1, _rules.MAX_EPOCHS), (20, 10), (1000, _rules.MIN_EPOCHS)],
)
def test_epochs_for_steps(steps_per_epoch, epochs):
    assert _rules.epochs_for(200, steps_per_epoch) == epochs


def test_feature_extraction_has_no_head_stage():
    head, epochs, _ = _rules.choose_epochs("feature_extraction", 5)
    assert head == 0
    assert epochs == _rules.epochs_for(_rules.FEATURE_STEPS, 5)


def test_rates_are_clipped_and_the_backbone_slower():
    lr, ft, _ = _rules.choose_rates(0.7, 0.05, "full")
    assert lr == _rules.OPEN_HEAD_RATE_MAX
    assert ft == _rules.FINE_TUNE_RANGE[1]
    lr, ft, _ = _rules.choose_rates(0.7, None, "feature_extraction")
    assert lr == _rules.HEAD_RATE_RANGE[1] and ft is None
    lr, ft, why = _rules.choose_rates(float("nan"), None, "partial")
    assert lr == _rules.DEFAULT_HEAD_RATE and "no descent" in why
    assert math.isclose(ft, lr / _rules.FINE_TUNE_DIVISOR)
    # The opened model's sweep only lowers the fine-tune rate.
    lr, ft, why = _rules.choose_rates(3e-4, 2e-6, "full")
    assert lr == 3e-4 and ft == pytest.approx(2e-5) and "lowered" in why
    lr, ft, _ = _rules.choose_rates(3e-4, 1e-7, "full")
    assert ft == _rules.FINE_TUNE_RANGE[0]


def test_layer_decay_follows_the_shift_profile():
    # Bottom opened group shifted 0.81 of the top over 3 groups: 0.9.
    decay, _ = _rules.choose_layer_decay([0.405, 0.45, 0.5], "batchnorm", 3)
    assert decay == pytest.approx(0.9, abs=0.01)
    assert _rules.choose_layer_decay([0.4, 0.4, 0.4], "batchnorm", 3)[0] is None
    assert _rules.choose_layer_decay([0.1, 0.2, 0.4], "batchnorm", 1)[0] is None
    assert _rules.choose_layer_decay([0.0, 0.0, 1.0], "batchnorm", 3)[0] == (
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
