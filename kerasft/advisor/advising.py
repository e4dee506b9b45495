"""`kerasft.advise`: measure the data and the backbone, then choose."""

import math
import time

import numpy as np

from kerasft.advisor import _rules, measurements
from kerasft.advisor.advice import Advice


def advise(data, backbone, num_classes=None, batch_size=32, max_samples=1000,
           lr_sweep=True, seed=0, verbose=0, num_examples=None,
           allowed_modes=None, default_rates=None, head_stage=True):
    """Chooses the fine-tuning strategy, rates and epochs for `data`.

    Cheap measurements (one frozen pass over at most `max_samples`
    examples, a cross-validated logistic regression, one short full-batch
    `lr_find` sweep of the head on the cached features) feed the pure
    rules of `kerasft.advisor._rules`; each choice says which rule and
    figures gave it. `measurements["measure_parts"]` holds the seconds
    each measurement took.

    Without class labels (segmentation masks, boxes, captions, target
    text) nothing is probed or swept: the strategy comes from the data size
    and, on BatchNorm backbones, the shift per group; the rates are
    `default_rates`.

    Args:
        data: the labelled training examples (`None`: only
            `num_examples` is known, nothing is measured): a tuple `(x, y)`
            (`x` raw
            pixels in the backbone's input range, or the dict of token
            arrays a text backbone takes, `kerasft.data.text.tokenize`;
            `y` integer labels, or `None` when the task has no class per
            example), a `tf.data.Dataset` of `(x, y)` batches (a
            `kerasft.data` dataset), or a folder with one sub-folder per
            class.
        backbone: a `kerasft.backbones.Backbone` (`backbones.get`,
            `from_model`, `bert`).
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
        num_examples: training examples in all, when `data` is a sample of
            them (counts per class scale by `num_examples / len(data)`).
            Defaults to `None` (`data` is all of them).
        allowed_modes: the strategies the recipe has. Defaults to `None`
            (all four).
        default_rates: `(learning_rate, fine_tune_learning_rate)` used
            when no sweep runs. Defaults to `None` (`_rules`' defaults).
        head_stage: whether the recipe can train a head alone first
            (generative models have no head). Defaults to `True`.

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
    if data is None:  # nothing to measure but the size
        if not num_examples:
            raise ValueError("`advise` without `data` needs `num_examples`.")
        x, y, counted = None, None, np.zeros(int(num_examples), "int64")
    else:
        x, y, counted = _arrays(data, backbone, max_samples, seed)
    total = int(num_examples or len(counted))
    m = _data_figures(backbone, x, None if y is None else counted,
                      num_classes, total)
    m["steps_per_epoch"] = int(math.ceil(total / batch_size))
    m["num_groups"] = len(backbone.groups)
    m["groups"] = backbone.group_names
    m["measured_examples"] = 0 if x is None else measurements.num_examples(x)
    if allowed_modes is not None:
        m["allowed_modes"] = list(allowed_modes)
    parts = {"read": time.perf_counter() - start}

    def lap(name):
        parts[name] = time.perf_counter() - start - sum(parts.values())

    has_bn = bool(measurements.output_batchnorms(backbone))
    final = None
    m["probe_accuracy"] = m["chance"] = float("nan")
    if y is None and (x is None or not has_bn):
        # No statistics to compare and no classes to probe: nothing to run.
        m["shift_kind"] = "none"
        m["group_shift"] = [float("nan")] * len(backbone.groups)
    else:
        final, kind, per_group = measurements.measure_features(backbone, x)
        if kind == "probe":
            per_group = measurements.group_probes(per_group, y, seed=seed)
        m["shift_kind"] = kind
        m["group_shift"] = [per_group[g] for g in backbone.group_names]
        _fill_missing(m["group_shift"])
        lap("features")
        if y is not None:
            m["probe_accuracy"] = measurements.linear_probe(final, y, seed=seed)
            m["chance"] = float(np.bincount(y).max() / len(y))
            lap("probe")
    # One sweep, of the head on the cached features: the fine-tune rate
    # follows the head's (`_rules.choose_rates`).
    m["head_rate"] = m["head_rate_steepest"] = float("nan")
    if lr_sweep and y is not None:
        rates = measurements.head_sweep(final, y, m["num_classes"])
        m["head_rate"] = rates["head_rate_min_loss"]
        m["head_rate_steepest"] = rates["head_rate_steepest"]
        lap("lr_find")
    decided = _rules.decide(m)
    if default_rates is not None and not math.isfinite(m["head_rate"]):
        why = ("no lr_find sweep (no class labels, or not asked): the "
               "recipe's rates")
        decided["learning_rate"] = (default_rates[0], why)
        if decided["fine_tune_learning_rate"][0] is not None:
            decided["fine_tune_learning_rate"] = (default_rates[1], why)
    if not head_stage and decided["head_epochs"][0]:
        head, why = decided["head_epochs"]
        after = decided["epochs"][0] - head
        why = f"{why}; no head trains alone in this recipe: no head stage"
        decided["head_epochs"] = (0, why)
        decided["epochs"] = (after, why)
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


def _data_figures(backbone, x, labels, num_classes, total):
    """`measurements.data_figures` of the labels (scaled from a sample to
    `total`), or, without labels, every example its own target."""
    shape = None if x is None or isinstance(x, dict) else np.shape(x)[1:]
    native = (backbone.model.input_shape[1:]
              if backbone.task == "image" and shape is not None else None)
    if labels is None:
        m = measurements.data_figures(
            np.zeros(total, "int64"), 1, shape, native)
        m["num_classes"] = None
        m["class_counts"] = None
        m["examples_per_class"] = total  # no classes: every example counts
    else:
        if num_classes is None:
            num_classes = int(labels.max()) + 1
        m = measurements.data_figures(labels, num_classes, shape, native)
        if total != len(labels):
            scale = total / len(labels)
            m["class_counts"] = [int(round(c * scale)) for c in m["class_counts"]]
            m["examples_per_class"] = min(m["class_counts"])
            m["median_per_class"] = float(np.median(m["class_counts"]))
    m["num_examples"] = total
    return m


def _fill_missing(shift):
    """A group without BatchNorm takes the figure of the group below it
    (its input statistics are that group's output's)."""
    for i, value in enumerate(shift):
        if value is None:
            shift[i] = shift[i - 1] if i else 0.0


def _arrays(data, backbone, max_samples, seed):
    """`(x, y, counted)`: a subset of at most `max_samples` examples
    (stratified by label), and what to count examples by: every label, or
    one entry per example when `y` is `None`."""
    x, y = _read(data, backbone)
    x = ({k: np.asarray(v) for k, v in x.items()} if isinstance(x, dict)
         else np.asarray(x))
    n = measurements.num_examples(x)
    if y is not None:
        y = np.asarray(y)
        if y.ndim == 2:
            y = y.argmax(-1)
        y = y.astype("int64")
        if n != len(y):
            raise ValueError(
                f"`data` must hold as many examples as labels. Received "
                f"{n} examples and {len(y)} labels."
            )
    counted = y if y is not None else np.zeros(n, "int64")
    if n <= max_samples:
        return x, y, counted
    from sklearn.model_selection import train_test_split

    keep, _ = train_test_split(
        np.arange(n), train_size=max_samples, stratify=y, random_state=seed,
    )
    keep = np.sort(keep)
    return (measurements.take(x, keep), None if y is None else y[keep],
            counted)


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
