"""`class_weights`: scikit-learn's "balanced" weights for imbalanced classes."""

import os

import numpy as np

from kerasft.data._listing import list_image_files


def class_weights(counts):
    """Balanced class weights: `n_samples / (n_classes * count_c)`.

    The same formula as `sklearn.utils.class_weight.compute_class_weight(
    "balanced", ...)`: every class then contributes equally to the loss, and
    a perfectly balanced dataset gets weight 1.0 everywhere. Pass the result
    as `model.fit(..., class_weight=...)`.

    Args:
        counts: images per class: a list (index -> count), a dict
            (key -> count; the keys are kept), or a class-per-folder
            directory (counted as `kerasft.data.image_folder` lists it, keyed
            by class index in sorted folder-name order).

    Returns:
        A dict `{class key: weight}`.

    Example:
    ```python
    class_weights([90, 10])  # {0: 0.5555..., 1: 5.0}
    ```
    """
    if isinstance(counts, (str, os.PathLike)):
        names, _, labels = list_image_files(os.fspath(counts))
        counts = [labels.count(i) for i in range(len(names))]
    if isinstance(counts, dict):
        keys, values = list(counts.keys()), list(counts.values())
    else:
        try:
            values = list(counts)
        except TypeError:
            raise TypeError(
                "`counts` must be a list or dict of per-class counts, or a "
                f"directory. Received: counts={counts!r}"
            ) from None
        keys = list(range(len(values)))
    if not values:
        raise ValueError("`counts` must hold at least one class. Received: []")
    for key, value in zip(keys, values):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (
            value <= 0
        ):
            raise ValueError(
                "Every class count must be a positive number (a class with "
                f"no samples cannot be weighted). Received: {key!r}: {value!r}"
            )
    if all(float(v).is_integer() for v in values):
        # scikit-learn's own function, on the labels the counts describe.
        from sklearn.utils.class_weight import compute_class_weight

        classes = np.arange(len(values))
        labels = np.repeat(classes, np.asarray(values, dtype="int64"))
        weights = compute_class_weight("balanced", classes=classes, y=labels)
        return {key: float(w) for key, w in zip(keys, weights)}
    # Fractional counts (e.g. summed sample weights) have no label array:
    # the same formula, written out.
    total = float(sum(values))
    n_classes = len(values)
    return {key: total / (n_classes * value) for key, value in zip(keys, values)}


def from_labels(labels, classes):
    """`sklearn.utils.class_weight.compute_class_weight("balanced", ...)`
    over int `labels` for class ids `range(classes)`, as a `fit` dict.

    A class without samples gets weight 1.0 (scikit-learn refuses it).
    """
    from sklearn.utils.class_weight import compute_class_weight

    labels = np.asarray(labels).astype("int64").reshape(-1)
    present = np.unique(labels)
    weights = compute_class_weight("balanced", classes=present, y=labels)
    result = {i: 1.0 for i in range(classes)}
    result.update({int(c): float(w) for c, w in zip(present, weights)})
    return result
