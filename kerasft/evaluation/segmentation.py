"""Segmentation metrics from one confusion matrix: accuracy, IoU, Dice.

Pure numpy. Every score comes from a single `(num_classes, num_classes)`
pixel confusion matrix (rows: true class, columns: predicted class), so
they agree with each other and can be accumulated batch by batch:

```python
confusion = 0
for images, masks in dataset:
    logits = model.predict_on_batch(images)
    confusion = confusion + segmentation_confusion_matrix(masks, logits, 3)
scores = segmentation_scores(confusion)
```

Pixels whose true label is `ignore_index` are left out of the matrix.
"""

import numpy as np

__all__ = ["segmentation_confusion_matrix", "segmentation_scores"]


def segmentation_confusion_matrix(y_true, y_pred, num_classes, ignore_index=255):
    """Pixel confusion matrix `(num_classes, num_classes)`, int64.

    Args:
        y_true: integer masks, `(..., h, w)` or `(..., h, w, 1)`.
        y_pred: predicted integer masks of the same shape, or per-class
            scores (logits or probabilities) with a last axis of
            `num_classes`, reduced with `argmax`.
        num_classes: number of classes.
        ignore_index: true label of pixels to leave out, or `None`.
            Defaults to `255`.

    Returns:
        `matrix[t, p]` = number of pixels of true class `t` predicted `p`.

    Raises:
        ValueError: shapes that do not match, or true labels outside
            `[0, num_classes)` other than `ignore_index`.

    Example:

    >>> segmentation_confusion_matrix([[0, 1, 255]], [[0, 0, 1]], 2).tolist()
    [[1, 0], [1, 0]]
    """
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_pred.ndim == y_true.ndim + 1 or (
        y_pred.ndim == y_true.ndim
        and y_pred.shape[-1] == num_classes
        and y_true.shape[-1] == 1
        and num_classes > 1
    ):
        y_pred = np.argmax(y_pred, axis=-1)
    if y_true.ndim == y_pred.ndim + 1 and y_true.shape[-1] == 1:
        y_true = y_true[..., 0]
    if y_true.shape != y_pred.shape:
        raise ValueError(
            "`y_true` and `y_pred` must hold one label per pixel (or scores "
            "with a last axis of `num_classes`). Received shapes: "
            f"y_true={y_true.shape}, y_pred={y_pred.shape}"
        )
    y_true = y_true.reshape(-1).astype("int64")
    y_pred = y_pred.reshape(-1).astype("int64")
    if ignore_index is not None:
        keep = y_true != ignore_index
        y_true, y_pred = y_true[keep], y_pred[keep]
    bad = (y_true < 0) | (y_true >= num_classes)
    if bad.any():
        raise ValueError(
            f"True labels must be in [0, {num_classes}) or "
            f"ignore_index={ignore_index!r}. Received labels "
            f"{sorted(set(y_true[bad].tolist()))[:10]}"
        )
    y_pred = np.clip(y_pred, 0, num_classes - 1)
    return np.bincount(
        y_true * num_classes + y_pred, minlength=num_classes * num_classes
    ).reshape(num_classes, num_classes)


def segmentation_scores(confusion, class_names=None):
    """Pixel accuracy, mean/per-class IoU and Dice from a confusion matrix.

    A class that appears neither in the truth nor in the predictions has
    no IoU or Dice (`nan` per class) and is left out of the means, as
    `keras.metrics.MeanIoU` does.

    Args:
        confusion: `(C, C)` counts from `segmentation_confusion_matrix`
            (summed over batches).
        class_names: `C` names for the per-class dicts. Defaults to
            `None`: `"0"`, `"1"`, ...

    Returns:
        `{"pixel_accuracy", "mean_iou", "mean_dice"}` floats plus
        `"iou_per_class"` and `"dice_per_class"` dicts `{name: float or
        None}` (`None` where undefined, so it writes to JSON).

    Example:

    >>> scores = segmentation_scores([[3, 1], [0, 4]])
    >>> scores["pixel_accuracy"], scores["iou_per_class"]
    (0.875, {'0': 0.75, '1': 0.8})
    """
    confusion = np.asarray(confusion, dtype="float64")
    if confusion.ndim != 2 or confusion.shape[0] != confusion.shape[1]:
        raise ValueError(
            "`confusion` must be a square (num_classes, num_classes) matrix. "
            f"Received shape: {confusion.shape}"
        )
    num_classes = confusion.shape[0]
    if class_names is None:
        class_names = [str(i) for i in range(num_classes)]
    if len(class_names) != num_classes:
        raise ValueError(
            f"`class_names` must hold {num_classes} names. Received "
            f"{len(class_names)}: {list(class_names)}"
        )
    hits = np.diag(confusion)
    true_count = confusion.sum(axis=1)
    pred_count = confusion.sum(axis=0)
    union = true_count + pred_count - hits
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, hits / union, np.nan)
        dice = np.where(union > 0, 2 * hits / (true_count + pred_count), np.nan)
    total = confusion.sum()
    return {
        "pixel_accuracy": float(hits.sum() / total) if total else float("nan"),
        "mean_iou": _nanmean(iou),
        "mean_dice": _nanmean(dice),
        "iou_per_class": _per_class(iou, class_names),
        "dice_per_class": _per_class(dice, class_names),
    }


def _nanmean(values):
    defined = values[~np.isnan(values)]
    return float(defined.mean()) if defined.size else float("nan")


def _per_class(values, names):
    return {
        str(name): (None if np.isnan(v) else float(v))
        for name, v in zip(names, values)
    }
