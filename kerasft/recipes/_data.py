"""Recipe glue onto `kerasft.data`: no reader or decoder of its own.

`images` turns a recipe's data option (a folder, a CSV of `filename,label`
rows, `"tfds:NAME[:SPLIT]"`, `(images, labels)` arrays or a `tf.data`
dataset of `(image, label)`) into the `kerasft.data` pipeline for it, with
the run's global batch, seed and epoch variable, so the shuffle order and
augmentation of every epoch are pure functions of `(seed, epoch, batch)`.
`Source` holds the in-memory (tokenized) elements of the text recipes and
orders them by the same rule.
"""

import os

import numpy as np
import tensorflow as tf

from kerasft import data as kft_data
from kerasft.data import _pipeline


def images(value, run, image_size, *, channels=3, class_names=None,
           num_classes=None, default_split="train", augment=None,
           shuffle=False, label_mode="int", validation_split=None,
           what="Training", max_samples=None, max_held_out=None, mix=None):
    """The `kerasft.data` dataset for a recipe data option, or `None`.

    With `validation_split`, returns `(training, validation)` (validation
    neither shuffled, augmented nor mixed by `mix`, a MixUp/CutMix). `max_samples` (and `max_held_out` for
    the validation part) keep stratified subsets (`_subsets.subset_indices`)
    of the files or arrays, taken after the split and before any decoding;
    `tfds:` names and `tf.data` datasets, which have no index access, are
    not subset (said in the log).
    """
    if value is None:
        return None
    limits = _Limits(run, what, max_samples, max_held_out)
    common = dict(
        batch_size=run.global_batch,
        seed=run.config.seed,
        epoch=run.epoch_variable,
        label_mode=label_mode,
        drop_remainder=run.on_tpu,
    )
    if isinstance(value, tuple) and len(value) == 2:
        return _arrays(value, channels, image_size, class_names, num_classes,
                       augment, shuffle, validation_split, what, common,
                       limits, mix)
    if isinstance(value, tf.data.Dataset):
        limits.not_applied("tf.data datasets")
        return _unsplit(run, validation_split, sharded(kft_data.image_arrays(
            value, image_size=image_size, channels=channels,
            class_names=class_names, num_classes=num_classes,
            augment=augment, mix=mix, shuffle=shuffle, **common,
        )))
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(
            "Data must be a folder, a CSV path, 'tfds:NAME', a tf.data.Dataset "
            f"or (images, labels) arrays. Received: {type(value).__name__}"
        )
    value = os.fspath(value)
    files = dict(
        image_size=image_size, augment=augment, mix=mix, shuffle=shuffle,
        color_mode="grayscale" if channels == 1 else "rgb", **common,
    )
    if value.startswith("tfds:"):
        limits.not_applied("tfds names")
        parts = value.split(":")
        split_name = parts[2] if len(parts) > 2 else default_split
        return _unsplit(run, validation_split, sharded(kft_data.tfds(
            parts[1], split_name, image_size, augment=augment, mix=mix,
            shuffle=shuffle, **common,
        )))
    if os.path.isdir(value):
        from kerasft.data._listing import list_image_files

        names, paths, labels = list_image_files(value, class_names)
    elif value.lower().endswith(".csv"):
        from kerasft.data.images import read_image_csv

        paths, labels, names = read_image_csv(value, class_names=class_names)
    else:
        raise ValueError(
            f"Data source {value!r} is not a folder, a .csv file or "
            "'tfds:NAME'."
        )
    return sharded(_files(value, list(paths), np.asarray(labels, "int64"),
                          names, validation_split, limits, files))


def _files(where, paths, labels, names, validation_split, limits, files):
    """`kerasft.data.image_files` of a listed folder or CSV: the held-out
    part split off (as `image_files` splits), then each part subset."""
    from kerasft.data.images import image_files
    from kerasft.recipes._subsets import take

    def read(keep, held_out=False, **kwargs):
        keep = limits.keep(labels[keep], held_out, keep)
        return image_files(take(paths, keep), labels[keep], names,
                           where=where, **{**files, **kwargs})

    if not validation_split:
        return read(np.arange(len(paths)))
    from kerasft.data._split import holdout_indices

    train, val = holdout_indices(labels, validation_split, files["seed"])
    # Validation data is never augmented, mixed or shuffled.
    return read(train), read(val, True, shuffle=False, augment=None, mix=None)


class _Limits:
    """A call's `max_samples` / `max_held_out`: which indices to keep."""

    def __init__(self, run, what, max_samples, max_held_out):
        self.run, self.what = run, what
        self.max_samples, self.max_held_out = max_samples, max_held_out

    def keep(self, labels, held_out=False, index=None):
        """`index` (default: all) at a stratified subset of `labels`."""
        from kerasft.recipes._subsets import log_subset, subset_indices

        k = self.max_held_out if held_out else self.max_samples
        index = np.arange(len(labels)) if index is None else np.asarray(index)
        keep = subset_indices(labels, k, self.run.config.seed)
        what = "validation" if held_out else self.what.lower()
        log_subset(self.run, f"{what} images", len(labels), len(keep))
        return index[keep]

    def not_applied(self, kind):
        if self.max_samples is not None or self.max_held_out is not None:
            self.run.log(
                f"max_train_samples / max_eval_samples not applied to "
                f"{self.what.lower()} data: {kind} have no index access; "
                "pass a folder, a CSV or arrays to take subsets."
            )


def _arrays(value, channels, image_size, class_names, num_classes, augment,
            shuffle, validation_split, what, common, limits, mix=None):
    x, y = np.asarray(value[0]), np.asarray(value[1])
    if num_classes is None and class_names is not None:
        num_classes = len(class_names)
    if num_classes is not None and y.ndim == 1 and len(y):
        bad = sorted(set(y[(y < 0) | (y >= num_classes)].tolist()))
        if bad:
            raise ValueError(
                f"{what} labels {bad[:10]} are outside [0, num_classes) with "
                f"num_classes={num_classes}. Set num_classes to the number "
                "of classes, or fix the labels."
            )
    kwargs = dict(image_size=image_size, channels=channels,
                  class_names=class_names, num_classes=num_classes, **common)
    # Classes counted on all the labels: a split or subset may miss some.
    if kwargs["num_classes"] is None and class_names is None and (
            y.ndim == 1 and len(y)):
        kwargs["num_classes"] = int(y.max()) + 1
    if not validation_split:
        keep = limits.keep(y)
        return sharded(kft_data.image_arrays(
            x[keep], y[keep], augment=augment, mix=mix, shuffle=shuffle,
            **kwargs))
    from kerasft.data._split import holdout_indices

    # Stratified by label when every class can be in both parts.
    train, val = holdout_indices(y, validation_split, common["seed"])
    train = limits.keep(y[train], index=train)
    val = limits.keep(y[val], True, val)
    return (
        sharded(kft_data.image_arrays(
            x[train], y[train], augment=augment, mix=mix, shuffle=shuffle,
            **kwargs)),
        sharded(kft_data.image_arrays(x[val], y[val], shuffle=False, **kwargs)),
    )


def decoded(ds):
    """`(images, int labels)` numpy arrays of an unshuffled, unaugmented
    `kerasft.data` dataset: its decoded examples in order (uint8 where the
    pixels are whole numbers in [0, 255], as decoded files are)."""
    images, labels = [], []
    for x, y in ds:
        images.append(x.numpy())
        y = y.numpy()
        labels.append(y.argmax(-1) if y.ndim == 2 else y)
    x, y = np.concatenate(images), np.concatenate(labels).astype("int64")
    if x.min() >= 0 and x.max() <= 255 and np.array_equal(x, np.round(x)):
        x = x.astype("uint8")
    return x, y


def curriculum_images(curriculum, x, y, like, run, augment, label_mode,
                      mix=None):
    """The training pipeline of a `Curriculum` over decoded `(x, y)`.

    Each epoch yields the examples the curriculum picks for it (the
    easiest fraction its pacing allows, in its `(seed, epoch)` order),
    augmented and batched as every `kerasft.data` pipeline is, by
    `(seed, epoch, batch)`: deterministic, and resumable at any epoch.
    `like` is the same data's dataset, whose information is kept.
    """
    augment = _pipeline.resolve_augment(augment)
    ds = _pipeline.finish(
        curriculum.examples(x, y.astype("int32")), num_samples=len(y),
        num_classes=len(like.class_names), batch_size=run.global_batch,
        augment=augment, mix=mix, cache=False, shuffle=False,
        seed=run.config.seed, label_mode=label_mode, drop_remainder=run.on_tpu,
        epoch=run.epoch_variable,
    )
    info = {name: getattr(like, name) for name in _pipeline.INFO}
    info.update(augment=augment, mix=mix)
    return sharded(_pipeline.with_info(ds, **info))


def _unsplit(run, validation_split, ds):
    """`ds`, or `(ds, None)` where a split was asked of data that has no
    random access (a `tfds:` name, a `tf.data.Dataset`): said in the log."""
    if not validation_split:
        return ds
    run.log(
        f"validation_split={validation_split} not applied: tfds names and "
        "tf.data datasets cannot be split; pass `validation` to hold data out."
    )
    return ds, None


def sharded(ds):
    """Multi-worker runs shard in-memory pipelines by data (each worker
    keeps its part of every batch); the dataset's attributes are kept."""
    if isinstance(ds, tuple):
        return tuple(sharded(d) for d in ds)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA
    )
    info = {name: getattr(ds, name) for name in _pipeline.INFO}
    return _pipeline.with_info(ds.with_options(options), **info)


def skipped_files(*datasets):
    """The unreadable files every given dataset left out, in order."""
    files = []
    for ds in datasets:
        files.extend(getattr(ds, "skipped_files", ()) if ds is not None else ())
    return list(files)


def check_labels(source, num_classes, what):
    """`ValueError` when labels fall outside `[0, num_classes)`."""
    if source is None or source.labels is None or not len(source.labels):
        return
    labels = np.asarray(source.labels)
    bad = sorted(set(labels[(labels < 0) | (labels >= num_classes)].tolist()))
    if bad:
        raise ValueError(
            f"{what} labels {bad[:10]} are outside [0, num_classes) with "
            f"num_classes={num_classes}. Set num_classes to the number of "
            "classes, or fix the labels."
        )


class Source:
    """In-memory elements (e.g. tokenized texts) and their labels.

    `dataset` yields them in order; `shuffled(seed, epoch_variable)` in an
    order fixed by `(seed, epoch)`: a stateless permutation, so epoch `e`
    sees the same order in every process and a resumed run repeats.
    """

    def __init__(self, labels=None, elements=None):
        self.labels = labels
        self.elements = elements

    @property
    def dataset(self):
        """The elements in their order."""
        return tf.data.Dataset.from_tensor_slices(self.elements)

    def shuffled(self, seed, epoch_variable):
        """The elements in an order fixed by `(seed, epoch_variable)`."""
        elements = tf.nest.map_structure(tf.convert_to_tensor, self.elements)
        n = int(tf.nest.flatten(elements)[0].shape[0])

        def permutation(epoch_seed):
            return tf.random.experimental.stateless_shuffle(
                tf.range(n, dtype="int64"), seed=epoch_seed
            )

        ds = _pipeline.epoch_seeds(seed, epoch_variable).map(permutation)
        ds = ds.unbatch().apply(tf.data.experimental.assert_cardinality(n))
        return ds.map(
            lambda i: tf.nest.map_structure(lambda e: tf.gather(e, i), elements)
        )
