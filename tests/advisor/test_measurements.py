"""`kerasft.advisor.measurements`: the head sweep on tiny cached features,
and token features pooled over the real tokens."""

import numpy as np

from kerasft.advisor import _rules, measurements


def _features(n=40, dims=8, classes=4, seed=0):
    rng = np.random.RandomState(seed)
    y = np.arange(n) % classes
    centers = rng.normal(0, 3, (classes, dims))
    return (centers[y] + rng.normal(0, 1, (n, dims))).astype("float32"), y


def test_head_sweep_finds_a_lowest_loss_rate_inside_the_sweep():
    x, y = _features()
    rates = measurements.head_sweep(x, y, num_classes=4, steps=20)
    low = rates["head_rate_min_loss"]
    # Full-batch Adam on separable features keeps descending past 1e-5:
    # the lowest loss lies well inside the sweep, and the rule's head rate
    # follows it (a tenth, clipped).
    assert 1e-4 < low <= 1.0
    assert np.isfinite(rates["head_rate_steepest"])
    lr, _, _ = _rules.choose_rates(low, "feature_extraction")
    assert _rules.HEAD_RATE_RANGE[0] <= lr <= _rules.HEAD_RATE_RANGE[1]


def test_head_sweep_is_not_batch_noise():
    # Every step sees every example: reordering the data (which changes
    # every 32-example batch) leaves the lowest-loss rate where it was.
    import keras

    x, y = _features(n=96, seed=1)
    order = np.random.RandomState(2).permutation(len(y))
    found = []
    for xs, ys in ((x, y), (x[order], y[order])):
        keras.utils.set_random_seed(0)
        found.append(measurements.head_sweep(xs, ys, 4, steps=20)["head_rate_min_loss"])
    assert found[0] == found[1]


def test_token_features_are_pooled_over_real_tokens_only(tmp_path):
    from kerasft import backbones
    from kerasft.advisor import measurements
    from kerasft.data.text import tokenize
    from tests.fixtures.tiny_hf import make_tiny_folder

    folder, _ = make_tiny_folder(str(tmp_path / "bert"))
    texts = ["a good film", "the film was very dull"]
    pooled = {}
    for length in (8, 16):  # the same texts, more padding
        backbone = backbones.bert(folder, sequence_length=length)
        x = tokenize(texts, backbone.tokenizer, None, length)
        final, kind, per_group = measurements.measure_features(backbone, x)
        assert kind == "probe" and final.shape == (2, 16)
        pooled[length] = per_group
    for group, features in pooled[8].items():
        np.testing.assert_allclose(features, pooled[16][group], atol=1e-5,
                                   err_msg=group)
