"""The pure rate plan behind `LayerwiseLR`: no Keras objects involved."""

import pytest

from kerasft.optimizers import _rate_plan
from kerasft.optimizers._rate_plan import Rate

PATHS = [
    "stem_conv/kernel",
    "conv2_a/kernel",
    "conv2_a/bias",
    "conv3_a/kernel",
    "head_dense/kernel",
    "head_dense/bias",
]


@pytest.fixture(autouse=True)
def _clean_keras_state():
    """Overrides the shared Keras reset: these tests build no Keras state."""
    yield


GROUPS = {
    "stem": ["^stem_"],
    "conv2": ["^conv2_"],
    "conv3": ["^conv3_"],
}


def _values(plan):
    return [(r.kind, round(r.value, 12) if r.kind != "schedule" else r.value)
            for r in plan]


def test_no_rates_everything_at_base_rate():
    plan = _rate_plan.plan_rates(PATHS, GROUPS, base_rate=1e-3)
    assert [r.kind for r in plan] == ["relative"] * 6
    assert [r.value for r in plan] == [1.0] * 6
    assert [r.group for r in plan] == [
        "stem", "conv2", "conv2", "conv3", "head", "head"
    ]


def test_layer_decay_counts_groups_from_the_top():
    plan = _rate_plan.plan_rates(PATHS, GROUPS, layer_decay=0.5, base_rate=1.0)
    # head 1, top group conv3 0.5, conv2 0.25, stem 0.125.
    assert [r.value for r in plan] == [0.125, 0.25, 0.25, 0.5, 1.0, 1.0]


def test_float_rates_are_multipliers_of_the_base_rate():
    plan = _rate_plan.plan_rates(
        PATHS, GROUPS, {"backbone": 1e-5, "head": 1e-3}, base_rate=1e-3
    )
    assert _values(plan) == [("relative", 0.01)] * 4 + [("relative", 1.0)] * 2


def test_specific_keys_beat_umbrella_keys_regardless_of_order():
    plan = _rate_plan.plan_rates(
        PATHS,
        GROUPS,
        {"conv3": 4.0, "backbone": 2.0, "bias$": 0.0},
        base_rate=2.0,
    )
    assert _values(plan) == [
        ("relative", 1.0),  # stem: backbone
        ("relative", 1.0),  # conv2 kernel: backbone
        ("relative", 0.0),  # conv2 bias: regex, later than conv3
        ("relative", 2.0),  # conv3: group name
        ("relative", 1.0),  # head kernel: unmatched -> base
        ("relative", 0.0),  # head bias: regex
    ]


def test_explicit_rates_override_layer_decay():
    plan = _rate_plan.plan_rates(
        PATHS, GROUPS, {"stem": 0.5}, layer_decay=0.5, base_rate=1.0
    )
    assert [r.value for r in plan] == [0.5, 0.25, 0.25, 0.5, 1.0, 1.0]


def test_schedule_base_makes_float_rates_constant_and_schedules_by_key():
    schedule = object()
    plan = _rate_plan.plan_rates(
        PATHS,
        GROUPS,
        {"backbone": 1e-5, "head": schedule},
        layer_decay=0.5,
        base_rate=None,
    )
    assert plan[0] == Rate("constant", 1e-5, "stem")
    assert plan[4] == Rate("schedule", "head", "head")


def test_unknown_key_names_the_key_and_lists_groups():
    with pytest.raises(ValueError, match="conv9") as info:
        _rate_plan.plan_rates(PATHS, GROUPS, {"conv9": 1e-3}, base_rate=1.0)
    for name in ("head", "backbone", "stem", "conv2", "conv3"):
        assert name in str(info.value)


def test_group_names_need_groups():
    with pytest.raises(ValueError, match="build_model"):
        _rate_plan.plan_rates(PATHS, {}, {"backbone": 1e-3}, base_rate=1.0)
    # Regexes work without groups.
    plan = _rate_plan.plan_rates(PATHS, {}, {"^head_": 2.0}, base_rate=1.0)
    assert [r.value for r in plan] == [1.0] * 4 + [2.0] * 2


def test_known_group_without_variables_is_not_an_error():
    plan = _rate_plan.plan_rates(
        PATHS[4:], GROUPS, {"conv2": 0.1}, base_rate=1.0
    )
    assert [r.value for r in plan] == [1.0, 1.0]


TAGS = ["stem", "conv2", "conv2", "conv3", "head", "head"]


def test_groups_from_tags_keep_model_order_and_exact_paths():
    groups = _rate_plan.merge_tag_groups(PATHS, TAGS)
    assert list(groups) == ["stem", "conv2", "conv3"]
    assert groups["conv2"] == ["^conv2_a/kernel$", "^conv2_a/bias$"]
    plan = _rate_plan.plan_rates(PATHS, groups, layer_decay=0.5, base_rate=1.0)
    assert [r.value for r in plan] == [0.125, 0.25, 0.25, 0.5, 1.0, 1.0]


def test_groups_found_on_a_partial_build_grow_on_a_full_rebuild():
    """Built first with conv3 + head training (bottom frozen), then rebuilt
    from config over every variable, as progressive unfreezing does."""
    first = _rate_plan.merge_tag_groups(PATHS[3:], TAGS[3:])
    assert list(first) == ["conv3"]
    full = _rate_plan.merge_tag_groups(PATHS, TAGS, first)
    assert list(full) == ["stem", "conv2", "conv3"]
    plan = _rate_plan.plan_rates(PATHS, full, layer_decay=0.5, base_rate=1.0)
    assert [r.value for r in plan] == [0.125, 0.25, 0.25, 0.5, 1.0, 1.0]
    # Without tags (a reload), the stored groups alone give the same plan.
    assert _rate_plan.merge_tag_groups(PATHS, [None] * 6, full) == full


def test_explicit_groups_win_over_tags():
    groups = {"low": ["^(stem|conv2)_"], "high": ["^conv3_"]}
    merged = _rate_plan.merge_tag_groups(PATHS, TAGS, groups)
    assert merged == groups


def test_head_only_build_with_tags_accepts_umbrella_keys():
    plan = _rate_plan.plan_rates(
        PATHS[4:], {}, {"backbone": 1e-5, "head": 1e-3}, base_rate=1e-3,
        tagged=True,
    )
    assert [r.value for r in plan] == [1.0, 1.0]
    with pytest.raises(ValueError, match="groups=backbone"):
        _rate_plan.plan_rates(PATHS[4:], {}, {"conv3": 1e-4}, base_rate=1e-3,
                              tagged=True)


def test_normalize_groups_rejects_bad_input():
    for groups, error, match in [
        ([("a", "x")], TypeError, "ordered input -> output"),
        ({"a": 3}, TypeError, "groups\\['a'\\]"),
        ({"a": "("}, ValueError, "not a valid regex"),
        ({"head": "x"}, ValueError, "derived"),
    ]:
        with pytest.raises(error, match=match):
            _rate_plan.normalize_groups(groups)


def test_normalize_groups_lists_patterns():
    assert _rate_plan.normalize_groups({"a": "^a/", "b": ["^b/", "^c/"]}) == {
        "a": ["^a/"],
        "b": ["^b/", "^c/"],
    }


def test_negative_rate_and_zero_base_are_errors():
    with pytest.raises(ValueError, match=">= 0"):
        _rate_plan.plan_rates(PATHS, GROUPS, {"head": -1.0}, base_rate=1.0)
    with pytest.raises(ValueError, match="non-zero"):
        _rate_plan.plan_rates(PATHS, GROUPS, {"head": 1.0}, base_rate=0.0)
