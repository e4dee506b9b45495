"""Hand-computed cases shared by the evaluation tests."""

import numpy as np
import pytest

# Classes 0,0,1,1,2,2; argmax predictions 0,1,1,2,2,2.
CLS_TRUE = np.array([0, 0, 1, 1, 2, 2])
CLS_PROBS = np.array(
    [
        [0.7, 0.2, 0.1],
        [0.3, 0.6, 0.1],
        [0.2, 0.5, 0.3],
        [0.1, 0.3, 0.6],
        [0.1, 0.2, 0.7],
        [0.1, 0.1, 0.8],
    ]
)
CLS_EXPECTED = {
    "accuracy": 4 / 6,
    # per class P: 1/1, 1/2, 2/3; R: 1/2, 1/2, 2/2; F1: 2/3, 1/2, 4/5
    "precision": (1 + 1 / 2 + 2 / 3) / 3,
    "recall": (1 / 2 + 1 / 2 + 1) / 3,
    "f1": (2 / 3 + 1 / 2 + 4 / 5) / 3,
    # one-vs-rest AUC per class: 8/8, 6/8, 8/8 (pairs ranked right)
    "roc_auc": (1 + 6 / 8 + 1) / 3,
}


def assert_metrics(got, expected):
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert isinstance(got[key], float), key
        assert got[key] == pytest.approx(value, abs=1e-9), key
