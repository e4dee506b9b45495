"""Segmentation metrics: hand-computed values, sklearn, keras.metrics.MeanIoU."""

import keras
import numpy as np
import pytest
from sklearn import metrics as skm

from kerasft.evaluation import segmentation_confusion_matrix
from kerasft.evaluation import segmentation_scores


def test_hand_computed_with_ignored_pixels():
    y_true = np.array([[0, 0, 1, 1], [2, 2, 255, 255]])
    y_pred = np.array([[0, 1, 1, 1], [2, 0, 2, 0]])
    confusion = segmentation_confusion_matrix(y_true, y_pred, 3)
    assert confusion.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    scores = segmentation_scores(confusion, class_names=["bg", "a", "b"])
    assert scores["pixel_accuracy"] == pytest.approx(4 / 6)
    # IoU: bg 1/(2+2-1), a 2/(2+3-2), b 1/(2+1-1).
    assert scores["iou_per_class"] == pytest.approx({"bg": 1 / 3, "a": 2 / 3, "b": 1 / 2})
    assert scores["mean_iou"] == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)
    # Dice = 2|A n B| / (|A| + |B|).
    assert scores["dice_per_class"] == pytest.approx({"bg": 2 / 4, "a": 4 / 5, "b": 2 / 3})
    assert scores["mean_dice"] == pytest.approx((2 / 4 + 4 / 5 + 2 / 3) / 3)


def test_logits_are_argmaxed_and_batches_accumulate():
    rng = np.random.RandomState(0)
    y_true = rng.randint(0, 4, (6, 8, 8))
    logits = rng.normal(size=(6, 8, 8, 4))
    whole = segmentation_confusion_matrix(y_true[..., None], logits, 4)
    parts = sum(
        segmentation_confusion_matrix(y_true[i : i + 2], logits[i : i + 2], 4)
        for i in range(0, 6, 2)
    )
    np.testing.assert_array_equal(whole, parts)
    assert whole.sum() == 6 * 8 * 8


def test_against_sklearn_and_keras_mean_iou():
    rng = np.random.RandomState(1)
    y_true = rng.randint(0, 5, (4, 16, 16))
    y_true[:, :3] = 255
    y_pred = np.where(rng.rand(4, 16, 16) < 0.6, y_true, rng.randint(0, 5, (4, 16, 16)))
    y_pred = np.where(y_pred == 255, 0, y_pred)
    scores = segmentation_scores(segmentation_confusion_matrix(y_true, y_pred, 5))
    keep = y_true != 255
    t, p = y_true[keep], y_pred[keep]
    labels = list(range(5))
    assert scores["pixel_accuracy"] == pytest.approx(skm.accuracy_score(t, p))
    np.testing.assert_allclose(
        list(scores["iou_per_class"].values()),
        skm.jaccard_score(t, p, labels=labels, average=None),
    )
    np.testing.assert_allclose(
        list(scores["dice_per_class"].values()),
        skm.f1_score(t, p, labels=labels, average=None),
    )
    metric = keras.metrics.MeanIoU(5, ignore_class=255)
    metric.update_state(y_true, y_pred)
    assert scores["mean_iou"] == pytest.approx(float(metric.result()), rel=1e-6)


def test_absent_class_is_undefined_and_left_out_of_means():
    scores = segmentation_scores([[2, 0, 0], [0, 2, 0], [0, 0, 0]])
    assert scores["iou_per_class"]["2"] is None
    assert scores["mean_iou"] == 1.0 and scores["mean_dice"] == 1.0


def test_out_of_range_labels_and_bad_shapes():
    with pytest.raises(ValueError, match=r"\[0, 3\) or ignore_index=255.*\[3, 7\]"):
        segmentation_confusion_matrix([[0, 3, 7, 255]], [[0, 0, 0, 0]], 3)
    with pytest.raises(ValueError, match="one label per pixel"):
        segmentation_confusion_matrix(np.zeros((2, 4, 4)), np.zeros((2, 4, 5)), 3)
    with pytest.raises(ValueError, match="square"):
        segmentation_scores(np.zeros((2, 3)))
