"""`Curriculum`: pacing tables, easiest-first epochs, determinism, resume."""

import keras
import numpy as np
import pytest

from kerasft.callbacks import Curriculum
from kerasft.callbacks import _pacing
from kerasft.data import difficulty_scores


@pytest.mark.parametrize("pacing, table", [
    ("linear", [(0, 0.2), (1, 0.36), (4, 0.84), (5, 1.0), (9, 1.0)]),
    ("root", [(0, 0.2), (1, np.sqrt(0.04 + 0.96 * 0.2)), (5, 1.0)]),
    # 0.2 doubles ceil(log2(5)) = 3 times over 5 epochs: at t = 0, 1/3, 2/3.
    ("step", [(0, 0.2), (1, 0.2), (2, 0.4), (3, 0.4), (4, 0.8), (5, 1.0)]),
])
def test_pacing_tables(pacing, table):
    for epoch, expected in table:
        assert _pacing.pacing_fraction(epoch, pacing, 0.2, 5) == pytest.approx(expected)


def test_pacing_errors():
    with pytest.raises(ValueError, match="`pacing` must be one of"):
        _pacing.pacing_fraction(0, "cubic")
    with pytest.raises(ValueError, match=r"`start_fraction` must be in \(0, 1\]"):
        Curriculum(np.zeros(3), start_fraction=0)
    with pytest.raises(ValueError, match="`ramp_epochs` must be a positive int"):
        Curriculum(np.zeros(3), ramp_epochs=0)


def test_epoch_indices_take_the_easiest_fraction_deterministically():
    scores = np.array([5.0, 0.1, 3.0, 0.2, 9.0, 0.3, 7.0, 0.4, 1.0, 2.0])
    order = _pacing.easiest_first(scores)
    first = _pacing.epoch_indices(order, 0.3, seed=1, epoch=0)
    assert len(first) == 10  # same number of steps every epoch
    assert set(first) == {1, 3, 5}  # the three easiest, repeated
    np.testing.assert_array_equal(
        first, _pacing.epoch_indices(order, 0.3, seed=1, epoch=0))
    assert not np.array_equal(
        first, _pacing.epoch_indices(order, 0.3, seed=1, epoch=1))
    assert sorted(_pacing.epoch_indices(order, 1.0, 1, 5)) == list(range(10))


def _digits():
    from sklearn.datasets import load_digits

    digits = load_digits()
    return (digits.data[:600] / 16).astype("float32"), digits.target[:600]


def _model(seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input((64,)),
        keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    return model


def test_early_epochs_see_only_easy_digits():
    x, y = _digits()
    first = _model()
    first.fit(x, y, epochs=2, verbose=0)
    scores = difficulty_scores(first, (x, y))
    assert scores.shape == (600,)
    curriculum = Curriculum(scores, "linear", start_fraction=0.25, ramp_epochs=3)
    ds = curriculum.dataset(x, y, batch_size=50)
    easiest = set(np.argsort(scores, kind="stable")[:150].tolist())
    row = {row.tobytes(): i for i, row in enumerate(x)}
    for epoch, allowed in ((0, 150), (3, 600)):
        curriculum.on_epoch_begin(epoch)
        seen = [row[r.tobytes()] for xb, _ in ds for r in xb.numpy()]
        assert len(seen) == 600
        assert len(set(seen)) == allowed
        if epoch == 0:
            assert set(seen) == easiest
            assert np.mean(scores[seen]) < np.mean(scores)


def _train(x, y, scores, epochs, initial_epoch=0, weights=None):
    model = _model()
    if weights is not None:
        model.set_weights(weights)
    curriculum = Curriculum(scores, "root", start_fraction=0.3, ramp_epochs=3,
                            seed=7)
    model.fit(curriculum.dataset(x, y, batch_size=64), epochs=epochs,
              initial_epoch=initial_epoch, callbacks=[curriculum], shuffle=False,
              verbose=0)
    return model.get_weights()


def test_curriculum_run_is_reproducible_and_resumes_exactly():
    x, y = _digits()
    scores = np.random.default_rng(0).random(len(x))
    straight = _train(x, y, scores, epochs=4)
    again = _train(x, y, scores, epochs=4)
    for a, b in zip(straight, again):
        np.testing.assert_array_equal(a, b)
    # Stop after two epochs, resume with a new callback (plain SGD keeps no
    # state besides the weights).
    half = _train(x, y, scores, epochs=2)
    resumed = _train(x, y, scores, epochs=4, initial_epoch=2, weights=half)
    for a, b in zip(straight, resumed):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_difficulty_scores_need_a_loss_and_accept_loss_objects():
    x, y = _digits()
    model = _model()
    uncompiled = keras.Sequential(model.layers)
    with pytest.raises(ValueError, match="needs a loss"):
        difficulty_scores(uncompiled, (x, y))
    by_name = difficulty_scores(model, (x[:10], y[:10]))
    by_object = difficulty_scores(
        model, (x[:10], y[:10]),
        loss=keras.losses.SparseCategoricalCrossentropy())
    np.testing.assert_allclose(by_name, by_object, rtol=1e-5)
