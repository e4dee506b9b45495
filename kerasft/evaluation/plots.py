"""Plots as PNG files: training curves and confusion matrices.

matplotlib's object API (no pyplot state, no display needed).
"""

import numpy as np

from kerasft.evaluation._labels import class_labels

__all__ = [
    "plot_confusion_matrix",
    "plot_history",
]


def plot_history(history, path, title=None):
    """Saves training curves (train and validation) as a PNG.

    One panel per metric; `val_<metric>` is drawn with `<metric>`. Epochs
    are whole numbers on the x axis. Without any `val_` curve the title
    says that no data was held out (the curves show training data only).

    Args:
        history: a `keras.callbacks.History` (what `fit` returns) or a dict
            `{metric: [value per epoch]}`.
        path: PNG file to write.
        title: figure title. Defaults to `None`.

    Returns:
        `path`.

    Example:
    ```python
    history = model.fit(train_ds, validation_data=val_ds, epochs=3)
    plot_history(history, "curves.png")
    ```
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    logs = getattr(history, "history", history)
    if not isinstance(logs, dict) or not logs:
        raise ValueError(
            "`history` must be a keras History or a non-empty dict of "
            f"metric -> values. Received: {history!r}"
        )
    names = [k for k in logs if not k.startswith("val_")]
    names += [k[4:] for k in logs if k.startswith("val_") and k[4:] not in logs]
    fig = Figure(figsize=(4.5 * len(names), 3.5), layout="tight")
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    for ax, name in zip(axes, names):
        for key, label in ((name, "train"), (f"val_{name}", "validation")):
            if key in logs:
                values = list(logs[key])
                ax.plot(range(1, len(values) + 1), values, marker="o", label=label)
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend()
    if not any(k.startswith("val_") for k in logs):
        note = "training data only: no validation data held out"
        title = f"{title} ({note})" if title else note.capitalize()
    if title:
        fig.suptitle(title)
    fig.savefig(path, format="png")
    return path


def plot_confusion_matrix(y_true, y_pred, class_names, path, normalize=False):
    """Saves a confusion matrix (rows: true class, columns: predicted) as PNG.

    Args:
        y_true: class indices `(N,)` or one-hot `(N, C)`.
        y_pred: class indices `(N,)` or probabilities `(N, C)` (argmax).
        class_names: one name per class; fixes the matrix size.
        path: PNG file to write.
        normalize: show each row as fractions of its true class.
            Defaults to `False`.

    Returns:
        The count matrix, `numpy` int array `(C, C)`.

    Example:
    ```python
    y_true, y_pred = collect_predictions(model, val_ds)
    plot_confusion_matrix(y_true, y_pred, ["cat", "dog"], "confusion.png")
    ```
    """
    from matplotlib.figure import Figure

    num_classes = len(class_names)
    y_pred = np.asarray(y_pred)
    if y_pred.ndim == 2:
        y_pred = np.argmax(y_pred, axis=1)
    labels = class_labels(y_true, num_classes)
    predicted = y_pred.reshape(-1).astype("int64")
    for arg, values in (("y_true", labels), ("y_pred", predicted)):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(
                f"`{arg}` holds class indices outside [0, {num_classes}) "
                f"for {num_classes} class_names. Received: {sorted(set(values))}"
            )
    counts = np.zeros((num_classes, num_classes), dtype="int64")
    np.add.at(counts, (labels, predicted), 1)
    shown = counts.astype("float64")
    if normalize:
        totals = shown.sum(axis=1, keepdims=True)
        shown = np.divide(shown, totals, out=np.zeros_like(shown), where=totals > 0)

    size = max(4.0, 0.6 * num_classes + 2)
    fig = Figure(figsize=(size, size), layout="tight")
    ax = fig.subplots()
    image = ax.imshow(shown, cmap="Blues")
    fig.colorbar(image, ax=ax)
    ticks = range(num_classes)
    ax.set_xticks(ticks, [str(n) for n in class_names], rotation=45, ha="right")
    ax.set_yticks(ticks, [str(n) for n in class_names])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    middle = shown.max() / 2 if shown.size else 0
    for i in ticks:
        for j in ticks:
            text = f"{shown[i, j]:.2f}" if normalize else str(counts[i, j])
            color = "white" if shown[i, j] > middle else "black"
            ax.text(j, i, text, ha="center", va="center", color=color)
    fig.savefig(path, format="png")
    return counts
