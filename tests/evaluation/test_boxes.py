import numpy as np
import pytest

from kerasft import evaluation


@pytest.mark.parametrize(
    "fmt, a, b",
    [
        ("xyxy", [0, 0, 2, 2], [1, 1, 3, 3]),
        ("yxyx", [0, 0, 2, 2], [1, 1, 3, 3]),
        ("xywh", [0, 0, 2, 2], [1, 1, 2, 2]),
        ("center_xywh", [1, 1, 2, 2], [2, 2, 2, 2]),
    ],
)
def test_box_iou(fmt, a, b):
    # Overlap 1x1, union 4 + 4 - 1.
    iou = evaluation.box_iou([a, a], [b, a], box_format=fmt)
    np.testing.assert_allclose(iou, [[1 / 7, 1], [1 / 7, 1]])
    assert evaluation.box_iou([[0, 0, 1, 1]], [[2, 2, 3, 3]])[0, 0] == 0.0


def test_average_precision_over_lists_hand_computed():
    box = [0, 0, 1, 1]
    ground_truths = [
        {"boxes": [box, [2, 2, 3, 3]], "labels": [0, 0]},
        {"boxes": [box, box], "labels": [0, 1]},
    ]
    predictions = [
        {"boxes": [box, box, [5, 5, 6, 6]], "scores": [0.9, 0.8, 0.3], "labels": [0, 0, 0]},
        {"boxes": [box, box], "scores": [0.7, 0.6], "labels": [0, 1]},
    ]
    # Class 0 ranked: TP (.9), FP duplicate (.8), TP (.7), FP (.3); 3 boxes.
    # Recall 1/3 at precision 1, 2/3 at precision 2/3: AP = 1/3 + 2/9.
    per_class = evaluation.average_precision_per_class(predictions, ground_truths)
    assert per_class == pytest.approx({0: 5 / 9, 1: 1.0})
    assert evaluation.mean_average_precision(predictions, ground_truths) == pytest.approx(7 / 9)


def test_bad_box_format():
    with pytest.raises(ValueError, match="box_format"):
        evaluation.box_iou([[0, 0, 1, 1]], [[0, 0, 1, 1]], box_format="polygon")
