"""`kerasft.advise`: measure the data and the backbone, then choose."""

import math
import time

import numpy as np

from kerasft.advisor import _rules, measurements
from kerasft.advisor.advice import Advice


def advise(data, backbone, num_classes=None, batch_size=32, max_samples=1000,
           lr_sweep=True, seed=0, verbose=0):
    """Chooses the fine-tuning strategy, rates and epochs for `data`.

    Cheap measurements (one frozen pass over at most `max_samples`
    examples, a cross-validated logistic regression, one short full-batch
    `lr_find` sweep of the head on the cached features) feed the pure
    rules of `kerasft.advisor._rules`; each choice says which rule and
    figures gave it. `measurements["measure_parts"]` holds the seconds
    each measurement took.

    Args:
        data: the labelled training images: a tuple `(x, y)` of arrays
            (raw pixels in the backbone's input range, integer labels), a
            `tf.data.Dataset` of `(x, y)` batches (a `kerasft.data`
            dataset), or a folder with one sub-folder per class.
        backbone: a `kerasft.backbones.Backbone` (`backbones.get`,
            `from_model`).
        num_classes: number of classes. Defaults to `None` (from the
            labels).
        batch_size: the training batch size (steps per epoch). Defaults
            to `32`.
        max_samples: examples measured, a stratified random subset when
            `data` holds more. Defaults to `1000`.
        lr_sweep: run `lr_find` for the rates (else the defaults).
            Defaults to `True`.
        seed: seed of the subset and the probe's folds. Defaults to `0`.
        verbose: print the table when 1. Defaults to `0`.

    Returns:
        An `Advice`: `print(advice)`, `advice.config_fields()`,
        `advice.replace(epochs=5)`, `advice.to_json(path)`.

    Example:
    ```python
    backbone = kerasft.backbones.from_model(pretrained_cnn)
    advice = kerasft.advise((x_train, y_train), backbone)
    print(advice)
    ```
    """
    start = time.perf_counter()
    x, y, total_labels = _arrays(data, backbone, max_samples, seed)
    if num_classes is None:
        num_classes = int(total_labels.max()) + 1
    native = backbone.model.input_shape[1:] if backbone.task == "image" else None
    m = measurements.data_figures(
        total_labels, num_classes, x.shape[1:], native
    )
    m["num_examples"] = int(len(total_labels))
    m["steps_per_epoch"] = int(math.ceil(len(total_labels) / batch_size))
    m["num_groups"] = len(backbone.groups)
    m["groups"] = backbone.group_names
    m["measured_examples"] = int(len(y))
    parts = {"read": time.perf_counter() - start}
    final, kind, per_group = measurements.measure_features(backbone, x)
    if kind == "probe":
        per_group = measurements.group_probes(per_group, y, seed=seed)
    m["shift_kind"] = kind
    m["group_shift"] = [per_group[g] for g in backbone.group_names]
    _fill_missing(m["group_shift"])
    parts["features"] = time.perf_counter() - start - sum(parts.values())
    m["probe_accuracy"] = measurements.linear_probe(final, y, seed=seed)
    m["chance"] = float(np.bincount(y).max() / len(y))
    parts["probe"] = time.perf_counter() - start - sum(parts.values())
    # One sweep, of the head on the cached features: the fine-tune rate
    # follows the head's (`_rules.choose_rates`).
    m["head_rate"] = m["head_rate_steepest"] = float("nan")
    if lr_sweep:
        rates = measurements.head_sweep(final, y, num_classes)
        m["head_rate"] = rates["head_rate_min_loss"]
        m["head_rate_steepest"] = rates["head_rate_steepest"]
    parts["lr_find"] = time.perf_counter() - start - sum(parts.values())
    decided = _rules.decide(m)
    m["measure_seconds"] = time.perf_counter() - start
    m["measure_parts"] = parts
    advice = Advice(
        {k: v for k, (v, _) in decided.items()},
        {k: why for k, (_, why) in decided.items()},
        m,
    )
    if verbose:
        print(advice.table(), flush=True)
    return advice


def _fill_missing(shift):
    """A group without BatchNorm takes the figure of the group below it
    (its input statistics are that group's output's)."""
    for i, value in enumerate(shift):
        if value is None:
            shift[i] = shift[i - 1] if i else 0.0


def _arrays(data, backbone, max_samples, seed):
    """`(x, y, all_labels)`: a stratified subset of at most `max_samples`
    examples, and every label (for the counts)."""
    x, y = _read(data, backbone)
    y = np.asarray(y)
    if y.ndim == 2:
        y = y.argmax(-1)
    y = y.astype("int64")
    if len(x) != len(y):
        raise ValueError(
            f"`data` must hold as many images as labels. Received "
            f"{len(x)} images and {len(y)} labels."
        )
    if len(y) <= max_samples:
        return np.asarray(x), y, y
    from sklearn.model_selection import train_test_split

    keep, _ = train_test_split(
        np.arange(len(y)), train_size=max_samples, stratify=y,
        random_state=seed,
    )
    keep = np.sort(keep)
    return np.asarray(x)[keep], y[keep], y


def _read(data, backbone):
    import os

    import tensorflow as tf

    if isinstance(data, tuple):
        if len(data) != 2:
            raise ValueError(
                "`data` must be a tuple (x, y), a tf.data.Dataset of (x, y) "
                f"batches or a folder. Received a tuple of length {len(data)}."
            )
        return data
    if isinstance(data, (str, os.PathLike)):
        from kerasft import data as kdata

        side = backbone.model.input_shape[1] or 224
        data = kdata.image_folder(
            os.fspath(data), image_size=(side, side), batch_size=64,
            shuffle=False,
        )
    if not isinstance(data, tf.data.Dataset):
        raise TypeError(
            "`data` must be a tuple (x, y), a tf.data.Dataset of (x, y) "
            f"batches or a folder. Received: {type(data).__name__}"
        )
    xs, ys = [], []
    for x, y in data:
        xs.append(np.asarray(x))
        ys.append(np.asarray(y))
    return np.concatenate(xs), np.concatenate(ys)
