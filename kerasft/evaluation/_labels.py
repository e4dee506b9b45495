"""Label helpers shared by the metrics and the plots (private)."""

import numpy as np


def class_labels(y_true, num_classes):
    y_true = np.asarray(y_true)
    if y_true.ndim == 2 and y_true.shape[1] == num_classes and num_classes > 1:
        return np.argmax(y_true, axis=1)
    return y_true.reshape(-1).astype("int64")


def check_class_names(class_names, count, what):
    if class_names is not None and len(class_names) != count:
        raise ValueError(
            f"`class_names` must have one name per {what} ({count}). "
            f"Received {len(class_names)} names: {list(class_names)}"
        )
