import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasft import evaluation
from kerasft.evaluation import compute_metrics
from tests.evaluation.cases import CLS_EXPECTED
from tests.evaluation.cases import CLS_PROBS
from tests.evaluation.cases import CLS_TRUE
from tests.evaluation.cases import assert_metrics


def test_classification_hand_computed():
    assert_metrics(compute_metrics(CLS_TRUE, CLS_PROBS), CLS_EXPECTED)
    one_hot = np.eye(3)[CLS_TRUE]
    assert_metrics(compute_metrics(one_hot, CLS_PROBS), CLS_EXPECTED)


def test_classification_per_class_entries():
    got = compute_metrics(CLS_TRUE, CLS_PROBS, class_names=["a", "b", "c"])
    assert got["precision/a"] == 1.0 and got["recall/a"] == 0.5
    assert got["f1/c"] == pytest.approx(0.8)
    with pytest.raises(ValueError, match="one name per class"):
        compute_metrics(CLS_TRUE, CLS_PROBS, class_names=["a", "b"])


def test_binary_hand_computed():
    y = np.array([0, 0, 1, 1, 1])
    p = np.array([[0.1], [0.6], [0.4], [0.8], [0.9]])  # predicted 0 1 0 1 1
    expected = {
        "accuracy": 3 / 5,
        "precision": 2 / 3,  # TP 2, FP 1
        "recall": 2 / 3,  # FN 1
        "f1": 2 / 3,
        "roc_auc": 5 / 6,  # 0.4 loses to 0.6; the other 5 pairs ranked right
    }
    assert_metrics(compute_metrics(y, p, task="binary"), expected)
    softmax = np.concatenate([1 - p, p], axis=1)
    assert_metrics(compute_metrics(y, softmax, task="binary"), expected)


def test_multilabel_hand_computed():
    y = np.array([[1, 0], [0, 1], [1, 1]])
    p = np.array([[0.9, 0.2], [0.6, 0.7], [0.4, 0.8]])  # [[1,0],[1,1],[0,1]]
    expected = {
        "accuracy": 4 / 6,
        "subset_accuracy": 1 / 3,
        "precision": (1 / 2 + 1) / 2,
        "recall": (1 / 2 + 1) / 2,
        "f1": (1 / 2 + 1) / 2,
        "roc_auc": (1 / 2 + 1) / 2,
    }
    assert_metrics(compute_metrics(y, p, task="multilabel"), expected)


def test_regression_hand_computed():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    p = np.array([[1.5], [2.0], [2.0], [5.0]])  # errors .5 0 -1 1
    expected = {
        "mse": 2.25 / 4,
        "rmse": 0.75,
        "mae": 2.5 / 4,
        "r2": 1 - 2.25 / 5,  # SS_tot around 2.5 is 5
    }
    assert_metrics(compute_metrics(y, p, task="regression"), expected)


DET_TRUE = {
    "bbox_regression": np.array([[0, 0, 0.5, 0.5]] * 3),
    "classification": np.array([0, 1, 1]),
}
DET_PRED = {
    "bbox_regression": np.array([[0, 0, 0.5, 0.5], [0, 0, 0.4, 0.4], [0.5, 0.5, 1, 1]]),
    "classification": np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7]]),
}


def test_detection_hand_computed():
    # IoUs 1, 0.16/0.25, 0. Class 0: one TP -> AP 1. Class 1: TP (.8) then
    # FP (.7, IoU 0) over 2 boxes -> AP 1/2.
    expected = {"mean_iou": (1 + 0.64) / 3, "map50": 0.75, "accuracy": 1.0}
    assert_metrics(compute_metrics(DET_TRUE, DET_PRED, task="detection"), expected)
    got = compute_metrics(DET_TRUE, DET_PRED, task="detection", class_names=["cat", "dog"])
    assert got["ap50/cat"] == 1.0 and got["ap50/dog"] == 0.5


def test_evaluate_runs_model_once_per_batch_aligned_with_shuffling():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Activation("linear")])
    dataset = (
        tf.data.Dataset.from_tensor_slices((CLS_PROBS.astype("float32"), CLS_TRUE))
        .shuffle(6, reshuffle_each_iteration=True)
        .batch(4)
    )
    assert_metrics(evaluation.evaluate(model, dataset), CLS_EXPECTED)
    assert_metrics(evaluation.evaluate(model, (CLS_PROBS, CLS_TRUE)), CLS_EXPECTED)


def test_evaluate_detection_model_dict_outputs():
    boxes = keras.Input((4,), name="boxes")
    probs = keras.Input((2,), name="probs")
    identity = keras.layers.Activation("linear")
    model = keras.Model(
        [boxes, probs],
        {"bbox_regression": identity(boxes), "classification": identity(probs)},
    )
    x = (DET_PRED["bbox_regression"], DET_PRED["classification"])
    dataset = tf.data.Dataset.from_tensor_slices((x, DET_TRUE)).batch(2)
    got = evaluation.evaluate(model, dataset, task="detection")
    assert got["map50"] == pytest.approx(0.75)
    assert got["mean_iou"] == pytest.approx(1.64 / 3)


def test_bad_inputs():
    with pytest.raises(ValueError, match="task"):
        compute_metrics(CLS_TRUE, CLS_PROBS, task="ranking")
    with pytest.raises(ValueError, match="task='binary'"):
        compute_metrics([0, 1], [[0.2], [0.7]])
    with pytest.raises(ValueError, match="same length"):
        compute_metrics([0, 1, 2], CLS_PROBS)


def test_regression_multi_output_and_constant_target():
    y = np.array([[1.0, 5.0], [3.0, 5.0]])
    p = np.array([[2.0, 5.0], [2.0, 5.0]])
    got = compute_metrics(y, p, task="regression")
    # Output 0: SS_res 2, SS_tot 2 -> r2 0; output 1 constant and exact -> 1.
    assert got["r2"] == pytest.approx(0.5)
    assert got["mse"] == pytest.approx(0.5) and got["mae"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="threshold"):
        compute_metrics([0, 1], [0.2, 0.7], task="binary", threshold=1.5)


def test_collect_predictions_one_row_per_example_under_mirrored_strategy(
    two_cpu_strategy,
):
    import keras
    import tensorflow as tf

    from kerasft.evaluation import collect_predictions

    with two_cpu_strategy.scope():
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    x = np.arange(30, dtype="float32").reshape(10, 3)
    y = np.arange(10) % 2
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
    y_true, y_pred = collect_predictions(model, ds)
    assert y_true.shape == (10,)
    assert y_pred.shape == (10, 2)
    np.testing.assert_allclose(y_pred, model.predict(x, verbose=0), atol=1e-5)
