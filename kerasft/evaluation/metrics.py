"""Metrics per task as plain floats, from arrays or by running a model.

`evaluate(model, dataset, task)` runs the model once over the dataset and
returns `compute_metrics(y_true, y_pred, task)`; both are usable alone.
"""

import math

import numpy as np

from kerasft.evaluation._labels import check_class_names
from kerasft.evaluation._labels import class_labels
from kerasft.evaluation.boxes import average_precision_per_class
from kerasft.evaluation.boxes import box_iou

__all__ = [
    "collect_predictions",
    "compute_metrics",
    "evaluate",
]

TASKS = ("classification", "binary", "multilabel", "regression", "detection")
BBOX = "bbox_regression"
CLASSES = "classification"


# === Running a model ===


def collect_predictions(model, dataset):
    """Runs `model` once over `dataset`; returns `(y_true, y_pred)` as numpy.

    Predictions and labels come from the same pass, so a dataset that
    reshuffles on every iteration stays aligned.

    Args:
        model: a Keras model.
        dataset: a `tf.data.Dataset` (or any iterable) of `(x, y)` or
            `(x, y, sample_weight)` batches (weights are ignored), or a
            tuple `(x, y)` of arrays.

    Returns:
        `(y_true, y_pred)`: arrays, or dicts of arrays for dict outputs.

    Example:
    ```python
    y_true, y_pred = collect_predictions(model, val_ds)
    ```
    """
    if isinstance(dataset, tuple) and len(dataset) == 2:
        x, y = dataset
        return _to_numpy(y), _to_numpy(model.predict(x, verbose=0))
    trues, preds = [], []
    for batch in dataset:
        if not isinstance(batch, (tuple, list)) or len(batch) < 2:
            raise ValueError(
                "`dataset` must yield (x, y) or (x, y, sample_weight) "
                f"batches. Received a batch of type {type(batch).__name__}"
            )
        trues.append(_to_numpy(batch[1]))
        preds.append(_to_numpy(_predict_batch(model, batch[0])))
    if not preds:
        raise ValueError("`dataset` yielded no batches.")
    return _concat(trues), _concat(preds)


def _predict_batch(model, x):
    # Under a distribution strategy Keras's `predict_on_batch` splits the
    # batch across replicas and returns every replica's rows concatenated
    # with the others' (twice as many rows on two devices), so call the
    # model directly there.
    strategy = getattr(model, "distribute_strategy", None)
    if strategy is not None and strategy.num_replicas_in_sync > 1:
        return model(x, training=False)
    return model.predict_on_batch(x)


def _to_numpy(value):
    if isinstance(value, dict):
        return {k: _to_numpy(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return type(value)(_to_numpy(v) for v in value)
    return np.asarray(value)


def _concat(batches):
    first = batches[0]
    if isinstance(first, dict):
        return {k: np.concatenate([b[k] for b in batches]) for k in first}
    if isinstance(first, (tuple, list)):
        return type(first)(
            np.concatenate([b[i] for b in batches]) for i in range(len(first))
        )
    return np.concatenate(batches)


def evaluate(
    model,
    dataset,
    task="classification",
    class_names=None,
    threshold=0.5,
    box_format="xyxy",
):
    """Metrics of `model` on `dataset` for `task`, as plain Python floats.

    See `compute_metrics` for the metrics of each task.

    Args:
        model: a Keras model (compiled or not).
        dataset: `(x, y)` batches (`tf.data.Dataset` or iterable) or a
            tuple `(x, y)` of arrays. For `"detection"`, `y` is a dict with
            `"bbox_regression"` boxes and `"classification"` labels.
        task: `"classification"`, `"binary"`, `"multilabel"`,
            `"regression"` or `"detection"`. Defaults to `"classification"`.
        class_names: names of the classes (or labels); adds per-class
            entries. Defaults to `None`.
        threshold: decision threshold on sigmoid outputs. Defaults to `0.5`.
        box_format: detection box format. Defaults to `"xyxy"`.

    Returns:
        A dict of floats.

    Example:
    ```python
    metrics = kerasft.evaluation.evaluate(model, val_ds, task="classification")
    print(metrics["accuracy"], metrics["f1"])
    ```
    """
    _check_task(task)
    y_true, y_pred = collect_predictions(model, dataset)
    return compute_metrics(
        y_true,
        y_pred,
        task=task,
        class_names=class_names,
        threshold=threshold,
        box_format=box_format,
    )


# === Metrics from arrays ===


def compute_metrics(
    y_true,
    y_pred,
    task="classification",
    class_names=None,
    threshold=0.5,
    box_format="xyxy",
):
    """Metrics for `task` from labels and model outputs, as plain floats.

    - `"classification"` (softmax outputs `(N, C)`, integer or one-hot
      labels): `accuracy`; `precision`, `recall`, `f1` macro-averaged over
      the classes occurring in labels or predictions; `roc_auc`
      one-vs-rest, macro over the classes that have both positive and
      negative labels (absent when fewer than two classes occur).
    - `"binary"` (one sigmoid `(N,)`/`(N, 1)`, or a 2-way softmax):
      `accuracy`, `precision`, `recall`, `f1` of the positive class at
      `threshold`, `roc_auc` (absent when only one class occurs).
    - `"multilabel"` (sigmoids `(N, L)`, multi-hot labels): `accuracy`
      (per label, as `keras.metrics.BinaryAccuracy`), `subset_accuracy`
      (all labels right), `precision`/`recall`/`f1` macro over labels,
      `roc_auc` macro over labels with both classes.
    - `"regression"`: `mse`, `rmse`, `mae` over all outputs, `r2`
      (averaged over outputs; for constant targets 1 if exact, else 0).
    - `"detection"` (one box per image): `mean_iou`, `map50` (VOC-style
      mAP at IoU 0.5, see `mean_average_precision`) and the class
      `accuracy`.

    With `class_names`, per-class entries are added: `"f1/<name>"`,
    `"precision/<name>"`, `"recall/<name>"` (classification, multilabel) or
    `"ap50/<name>"` (detection).

    Args:
        y_true: labels (a dict for detection).
        y_pred: model outputs (a dict for detection).
        task: one of `TASKS`. Defaults to `"classification"`.
        class_names: optional class or label names. Defaults to `None`.
        threshold: threshold on sigmoid outputs. Defaults to `0.5`.
        box_format: one of `BOX_FORMATS`. Defaults to `"xyxy"`.

    Returns:
        A dict of floats.

    Example:
    ```python
    compute_metrics([0, 1, 1], [[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    # {"accuracy": 0.667, "precision": 0.75, ...}
    ```
    """
    _check_task(task)
    if not 0.0 < threshold < 1.0:
        raise ValueError(
            f"`threshold` must be in (0, 1). Received: threshold={threshold!r}"
        )
    if task == "detection":
        return _detection_metrics(
            y_true, y_pred, class_names, box_format
        )
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred, dtype="float64")
    if len(y_true) != len(y_pred):
        raise ValueError(
            "`y_true` and `y_pred` must have the same length. Received: "
            f"{len(y_true)} labels and {len(y_pred)} predictions"
        )
    if task == "classification":
        return _classification_metrics(y_true, y_pred, class_names)
    if task == "binary":
        return _binary_metrics(y_true, y_pred, threshold)
    if task == "multilabel":
        return _multilabel_metrics(y_true, y_pred, class_names, threshold)
    return _regression_metrics(y_true, y_pred)


def _check_task(task):
    if task not in TASKS:
        raise ValueError(
            f"`task` must be one of {TASKS}. Received: task={task!r}"
        )


def _per_class(result, class_names, precision, recall, f1):
    if class_names is None:
        return
    for name, p, r, f in zip(class_names, precision, recall, f1):
        result[f"precision/{name}"] = float(p)
        result[f"recall/{name}"] = float(r)
        result[f"f1/{name}"] = float(f)


def _classification_metrics(y_true, y_pred, class_names):
    from sklearn import metrics as skm

    if y_pred.ndim != 2 or y_pred.shape[1] < 2:
        raise ValueError(
            "task='classification' needs class probabilities of shape "
            "(N, num_classes >= 2); use task='binary' for one sigmoid unit. "
            f"Received: y_pred.shape={y_pred.shape}"
        )
    num_classes = y_pred.shape[1]
    check_class_names(class_names, num_classes, "class")
    labels = class_labels(y_true, num_classes)
    predicted = np.argmax(y_pred, axis=1)
    precision, recall, f1, _ = skm.precision_recall_fscore_support(
        labels, predicted, average="macro", zero_division=0
    )
    result = {
        "accuracy": float(np.mean(labels == predicted)),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
    }
    aucs = []
    for c in range(num_classes):
        positives = labels == c
        if positives.any() and not positives.all():
            aucs.append(skm.roc_auc_score(positives, y_pred[:, c]))
    if aucs:
        result["roc_auc"] = float(np.mean(aucs))
    if class_names is not None:
        per_class = skm.precision_recall_fscore_support(
            labels, predicted, labels=range(num_classes), zero_division=0
        )
        _per_class(result, class_names, *per_class[:3])
    return result


def _binary_metrics(y_true, y_pred, threshold):
    from sklearn import metrics as skm

    if y_pred.ndim == 2 and y_pred.shape[1] == 2:
        scores = y_pred[:, 1]
    elif y_pred.ndim == 1 or (y_pred.ndim == 2 and y_pred.shape[1] == 1):
        scores = y_pred.reshape(-1)
    else:
        raise ValueError(
            "task='binary' needs one probability per example ((N,) or "
            f"(N, 1)) or a 2-way softmax. Received: y_pred.shape={y_pred.shape}"
        )
    labels = class_labels(y_true, 2)
    predicted = (scores >= threshold).astype("int64")
    precision, recall, f1, _ = skm.precision_recall_fscore_support(
        labels, predicted, average="binary", zero_division=0
    )
    result = {
        "accuracy": float(np.mean(labels == predicted)),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
    }
    if 0 < labels.sum() < len(labels):
        result["roc_auc"] = float(skm.roc_auc_score(labels, scores))
    return result


def _multilabel_metrics(y_true, y_pred, class_names, threshold):
    from sklearn import metrics as skm

    if y_pred.ndim != 2 or y_true.shape != y_pred.shape:
        raise ValueError(
            "task='multilabel' needs y_true and y_pred of the same shape "
            f"(N, num_labels). Received: y_true.shape={y_true.shape}, "
            f"y_pred.shape={y_pred.shape}"
        )
    check_class_names(class_names, y_pred.shape[1], "label")
    labels = y_true.astype("int64")
    predicted = (y_pred >= threshold).astype("int64")
    precision, recall, f1, _ = skm.precision_recall_fscore_support(
        labels, predicted, average="macro", zero_division=0
    )
    result = {
        "accuracy": float(np.mean(labels == predicted)),
        "subset_accuracy": float(np.mean(np.all(labels == predicted, axis=1))),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
    }
    aucs = [
        skm.roc_auc_score(labels[:, j], y_pred[:, j])
        for j in range(labels.shape[1])
        if 0 < labels[:, j].sum() < len(labels)
    ]
    if aucs:
        result["roc_auc"] = float(np.mean(aucs))
    if class_names is not None:
        per_label = skm.precision_recall_fscore_support(
            labels, predicted, average=None, zero_division=0
        )
        _per_class(result, class_names, *per_label[:3])
    return result


def _regression_metrics(y_true, y_pred):
    y_true = y_true.astype("float64").reshape(len(y_true), -1)
    y_pred = y_pred.reshape(len(y_pred), -1)
    if y_true.shape != y_pred.shape:
        raise ValueError(
            "task='regression' needs targets and predictions of the same "
            f"size per example. Received: {y_true.shape} and {y_pred.shape}"
        )
    from sklearn import metrics as skm

    y_pred = y_pred.astype("float64")
    # Outputs weigh equally ("uniform_average"); with equal sample counts
    # that is the mean over every value. For a constant target, r2 is 1
    # for an exact fit, else 0 (`force_finite`).
    mse = float(skm.mean_squared_error(y_true, y_pred))
    return {
        "mse": mse,
        "rmse": math.sqrt(mse),
        "mae": float(skm.mean_absolute_error(y_true, y_pred)),
        "r2": float(skm.r2_score(y_true, y_pred, force_finite=True)),
    }


# === Detection ===


def _detection_parts(y, what):
    if isinstance(y, dict):
        missing = {BBOX, CLASSES} - set(y)
        if missing:
            raise ValueError(
                f"Detection {what} must be a dict with keys {BBOX!r} and "
                f"{CLASSES!r}. Missing: {sorted(missing)}"
            )
        return np.asarray(y[BBOX]), np.asarray(y[CLASSES])
    if isinstance(y, (tuple, list)) and len(y) == 2:
        return np.asarray(y[0]), np.asarray(y[1])
    raise ValueError(
        f"Detection {what} must be a dict {{{BBOX!r}: boxes, {CLASSES!r}: "
        f"classes}} or a (boxes, classes) pair. Received: {type(y).__name__}"
    )


def _detection_metrics(y_true, y_pred, class_names, box_format):
    true_boxes, true_classes = _detection_parts(y_true, "labels")
    pred_boxes, pred_probs = _detection_parts(y_pred, "predictions")
    num_classes = pred_probs.shape[1]
    check_class_names(class_names, num_classes, "class")
    labels = class_labels(true_classes, num_classes)
    predicted = np.argmax(pred_probs, axis=1)
    scores = np.max(pred_probs, axis=1)
    ious = np.diagonal(box_iou(pred_boxes, true_boxes, box_format))
    predictions = [
        {"boxes": b[None], "scores": [s], "labels": [l]}
        for b, s, l in zip(pred_boxes, scores, predicted)
    ]
    ground_truths = [
        {"boxes": b[None], "labels": [l]} for b, l in zip(true_boxes, labels)
    ]
    per_class = average_precision_per_class(
        predictions, ground_truths, 0.5, box_format
    )
    result = {
        "mean_iou": float(np.mean(ious)),
        "map50": float(np.mean(list(per_class.values()))),
        "accuracy": float(np.mean(predicted == labels)),
    }
    if class_names is not None:
        for c, ap in per_class.items():
            result[f"ap50/{class_names[c]}"] = ap
    return result
