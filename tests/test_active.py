"""`kerasft.active`: scores by hand, selection, and a digits simulation."""

import keras
import numpy as np
import pytest

from kerasft import active


def test_uncertainty_scores_by_hand():
    p = np.array([[0.5, 0.5, 0.0], [0.9, 0.05, 0.05], [0.4, 0.35, 0.25]])
    np.testing.assert_allclose(
        active.uncertainty(p, "entropy"),
        [np.log(2), -(0.9 * np.log(0.9) + 0.1 * np.log(0.05)),
         -(0.4 * np.log(0.4) + 0.35 * np.log(0.35) + 0.25 * np.log(0.25))],
    )
    np.testing.assert_allclose(active.uncertainty(p, "margin"), [0, -0.85, -0.05])
    np.testing.assert_allclose(
        active.uncertainty(p, "least_confidence"), [0.5, 0.1, 0.6]
    )
    # One sigmoid column counts as two classes.
    np.testing.assert_allclose(
        active.uncertainty(np.array([[0.5], [0.9]]), "margin"), [0, -0.8]
    )


def test_k_center_greedy_picks_the_farthest_points():
    x = np.array([[0.0], [1.0], [10.0], [11.0], [5.0]])
    assert active.k_center_greedy(x, 2, labeled=[[0.0]]) == [3, 4]
    # Nothing labelled: start nearest the mean (5.4 -> index 4).
    assert active.k_center_greedy(x, 3) == [4, 3, 0]


def _classifier(seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input((4,)),
        keras.layers.Dense(8, activation="relu"),
        keras.layers.Dense(3, activation="softmax"),
    ])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_select_every_strategy_returns_distinct_indices():
    model = _classifier()
    pool = np.random.default_rng(0).normal(size=(40, 4)).astype("float32")
    probs = model.predict(pool, verbose=0)
    for strategy in active.STRATEGIES:
        picks = active.select(model, pool, 5, strategy, labeled=pool[:3])
        assert len(set(picks.tolist())) == 5 and picks.max() < 40
    entropy = active.select(model, pool, 5, "entropy")
    expected = np.argsort(-active.uncertainty(probs), kind="stable")[:5]
    np.testing.assert_array_equal(entropy, expected)
    np.testing.assert_array_equal(  # seeded
        active.select(model, pool, 5, "random", seed=3),
        active.select(model, pool, 5, "random", seed=3),
    )
    with pytest.raises(ValueError, match="`strategy` must be one of"):
        active.select(model, pool, 5, "bald")
    with pytest.raises(ValueError, match=r"`k` must be an int in \[1, len"):
        active.select(model, pool, 41)


def _digits():
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.data / 16).astype("float32")
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], digits.target[order]
    return x[:1300], y[:1300], x[1300:], y[1300:]


def _mlp():
    model = keras.Sequential([
        keras.Input((64,)),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


@pytest.mark.slow
def test_entropy_beats_random_on_digits_at_equal_labels(tmp_path):
    """Measured here (3 seeds, 20 + 10 x 25 labels, last three rounds):
    entropy 0.974 vs random 0.947 test accuracy, a 2.7-point margin; the
    test asks for 1.5 points."""
    x, y, x_test, y_test = _digits()
    late = {"entropy": [], "random": []}
    for seed in (0, 1, 2):
        curves = active.loop(
            _mlp, x, y, x_test, y_test, strategies=("entropy", "random"),
            initial=20, per_round=25, rounds=10, epochs=40, batch_size=64,
            seed=seed, plot=str(tmp_path / f"curves{seed}.png"),
        )
        assert [n for n, _ in curves["entropy"]] == [20 + 25 * r for r in range(11)]
        assert curves["entropy"][0] == curves["random"][0]  # same start
        for strategy, curve in curves.items():
            late[strategy] += [accuracy for _, accuracy in curve[-3:]]
    assert (tmp_path / "curves0.png").stat().st_size > 0
    margin = np.mean(late["entropy"]) - np.mean(late["random"])
    assert margin >= 0.015, (margin, late)
