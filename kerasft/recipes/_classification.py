"""The classification glue of the image, text, video and token recipes:
label mode, loss, `class_weight`, `num_classes`, curriculum data, metrics
from one pass of predictions, and the plots (`plots`, `write_curves`)."""

import functools
import os

import keras
import numpy as np

from kerasft.recipes._runner import prefixed


def classification_label_mode(config):
    """One-hot labels where the loss or the data needs them (smoothing,
    focal, MixUp/CutMix's soft labels)."""
    if (config.loss == "focal" or config.label_smoothing
            or split_mixing(getattr(config, "augment", None))[1] is not None):
        return "categorical"
    return "int"


def split_mixing(augment, seed=None):
    """`(augment, mix)`: the `augment` option without its `mixup_alpha` /
    `cutmix_alpha` keys (timm's names; `None` when nothing else is left),
    and the `kerasft.augment.MixUp` / `CutMix` they ask for, or `None`.

    Example:
    ```python
    split_mixing({"horizontal_flip": True, "mixup_alpha": 0.2}, seed=0)
    # ({'horizontal_flip': True}, MixUp(alpha=0.2, seed=0))
    ```
    """
    from kerasft.recipes.configs import MIXING_KEYS

    if not isinstance(augment, dict):
        return augment, None
    asked = [k for k in MIXING_KEYS if augment.get(k)]
    if not asked:
        return augment, None
    from kerasft.augment import CutMix, MixUp

    rest = {k: v for k, v in augment.items() if k not in MIXING_KEYS}
    mixer = MixUp if asked[0] == "mixup_alpha" else CutMix
    return rest or None, mixer(augment[asked[0]], seed=seed)


def checked_num_classes(config, train, what="data"):
    """`train`'s number of classes; `num_classes`, when set, must match."""
    if config.num_classes not in (None, train.num_classes):
        raise ValueError(f"`num_classes`={config.num_classes} differs from the "
                         f"{train.num_classes} classes of the training {what} "
                         f"({list(train.class_names)}).")
    return train.num_classes


def curriculum_data(run, config, train, label_mode, loss, per_clip=None):
    """`(training dataset, Curriculum)` of `curriculum=`: the training
    examples (read in order) decoded into memory, ranked by `difficulty`,
    each epoch the easiest fraction the pacing allows, augmented and mixed
    (`per_clip(augment, mix)`: video's clip-wise versions of both)."""
    from kerasft.recipes import _curriculum, _data

    x, y = _data.decoded(train)
    targets = y
    if label_mode == "categorical":
        targets = np.eye(len(train.class_names), dtype="float32")[y]
    scores = _curriculum.difficulty_scores(
        run, config, (x, y), x, targets, loss
    )
    picker = _curriculum.curriculum_callback(run, config, scores)
    augment, mix = split_mixing(config.augment, seed=config.seed)
    if per_clip is not None:
        augment, mix = per_clip(augment, mix)
    ds = _data.curriculum_images(
        picker, x, y, train, run, augment, label_mode, mix
    )
    return ds, picker


def classification_loss(config):
    """The configured loss, or `None` for the head's own."""
    smoothing = config.label_smoothing
    if config.loss == "focal":
        return keras.losses.CategoricalFocalCrossentropy(
            label_smoothing=smoothing
        )
    if smoothing:
        return keras.losses.CategoricalCrossentropy(label_smoothing=smoothing)
    return None


def resolve_class_weight(value, train):
    """`fit`'s `class_weight` dict: `"balanced"` (scikit-learn's, from
    `train.class_counts`), or a dict (or its JSON) keyed by class name or
    id, classes it leaves out weighing 1.0."""
    if value is None:
        return None
    import json

    from kerasft.data.class_weights import from_labels

    names = list(train.class_names)
    if isinstance(value, str) and value.strip().startswith("{"):
        value = json.loads(value)
    if value == "balanced":
        counts = np.asarray(train.class_counts, "int64")
        return from_labels(
            np.repeat(np.arange(len(counts)), counts), len(counts)
        )
    weights = {i: 1.0 for i in range(len(names))}
    for key, weight in value.items():
        if key in names:
            index = names.index(key)
        elif str(key).lstrip("-").isdigit() and 0 <= int(key) < len(names):
            index = int(key)
        else:
            raise ValueError(
                f"`class_weight` key {key!r} is neither a class name nor a "
                f"class id. Classes: {names}"
            )
        weights[index] = float(weight)
    return weights


def classification_metrics(model, results, class_names):
    """`val_`/`test_` metrics from `results` (prefix -> `(y_true, y_pred)`
    or `None`): the compiled loss and `kerasft.evaluation.compute_metrics`."""
    from kerasft import evaluation

    metrics = {}
    loss = keras.losses.get(model.loss)
    for prefix, result in results.items():
        if result is None:
            continue
        y_true, y_pred = result
        metrics[prefix + "loss"] = float(keras.ops.convert_to_numpy(
            keras.ops.mean(loss(y_true, y_pred))))
        report = evaluation.compute_metrics(
            class_ids(y_true), y_pred, task="classification",
            class_names=class_names,
        )
        metrics.update(prefixed(report, prefix))
    return metrics


def class_ids(y_true):
    y_true = np.asarray(y_true)
    return y_true.argmax(axis=-1) if y_true.ndim == 2 else y_true


def write_curves(history, directory):
    """`training_curves.png` in `directory` (nothing without a history)."""
    from kerasft import _io, evaluation

    path = os.path.join(directory, "training_curves.png")
    if history:
        with _io.atomic_path(path) as tmp:
            evaluation.plot_history(history, tmp)


def plots(history, files=None):
    """A `run.finish` plot function: `write_curves`, then each file of
    `files` (`{name: write(path)}`) written atomically."""
    from kerasft import _io

    def plot(directory):
        write_curves(history, directory)
        for name, write in (files or {}).items():
            with _io.atomic_path(os.path.join(directory, name)) as tmp:
                write(tmp)

    return plot


def plotter(history, result, class_names):
    """Training curves, and the confusion matrix of `(y_true, y_pred)`."""
    from kerasft import evaluation

    files = {}
    if result is not None:
        files["confusion_matrix.png"] = functools.partial(
            evaluation.plot_confusion_matrix, class_ids(result[0]),
            np.asarray(result[1]), class_names)
    return plots(history, files)
