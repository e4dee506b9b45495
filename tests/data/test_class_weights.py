"""class_weights: sklearn's "balanced" formula, from counts or a folder."""

import numpy as np
import pytest
from sklearn.utils.class_weight import compute_class_weight

from kerasft.data import class_weights
from tests.data._folders import make_folder


def test_hand_computed_values():
    # n = 100, 2 classes: 100 / (2 * 90) and 100 / (2 * 10).
    weights = class_weights([90, 10])
    assert weights == pytest.approx({0: 100 / 180, 1: 5.0})
    assert class_weights([5, 5, 5]) == pytest.approx({0: 1.0, 1: 1.0, 2: 1.0})


def test_matches_sklearn_balanced():
    counts = [13, 2, 40, 7]
    y = np.repeat(np.arange(4), counts)
    expected = compute_class_weight("balanced", classes=np.arange(4), y=y)
    got = class_weights(counts)
    np.testing.assert_allclose([got[i] for i in range(4)], expected)
    # Weighted, every class carries the same total: n / n_classes.
    np.testing.assert_allclose(
        [got[i] * c for i, c in enumerate(counts)], [62 / 4] * 4
    )


def test_dict_directory_and_errors(tmp_path):
    assert class_weights({"cat": 30, "dog": 10}) == pytest.approx(
        {"cat": 40 / 60, "dog": 2.0})
    root = make_folder(tmp_path / "d", [3, 1], size=8)
    assert class_weights(root) == pytest.approx({0: 4 / 6, 1: 2.0})
    with pytest.raises(ValueError, match="positive"):
        class_weights([3, 0])
    with pytest.raises(ValueError, match="at least one"):
        class_weights([])
