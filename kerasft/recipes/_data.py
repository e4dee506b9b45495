"""Recipe glue onto `kerasft.data`: no reader or decoder of its own.

Every pipeline gets the run's global batch, seed and epoch variable, so the
shuffle order and augmentation of every epoch are pure functions of
`(seed, epoch, batch)`; `Source` orders the text recipes' in-memory
elements by the same rule.
"""

import os

import numpy as np
import tensorflow as tf

from kerasft import data as kft_data
from kerasft.data import _pipeline

# Validation data is never shuffled, augmented or mixed.
_HELD_OUT = dict(shuffle=False, augment=None, mix=None)


def images(value, run, image_size, *, channels=3, class_names=None,
           num_classes=None, default_split="train", augment=None, shuffle=False,
           label_mode="int", validation_split=None, what="Training",
           max_samples=None, max_held_out=None, mix=None):
    """The `kerasft.data` dataset for a recipe data option, or `None`.

    `value` is a folder, a CSV of `filename,label` rows,
    `"tfds:NAME[:SPLIT]"`, `(images, labels)` arrays or a `tf.data` dataset
    of `(image, label)`. With `validation_split`, returns `(training,
    validation)` (validation neither shuffled, augmented nor mixed).
    `max_samples` (and `max_held_out` for the validation part) keep
    stratified subsets of the files or arrays, taken after the split and
    before any decoding.
    """
    if value is None:
        return None
    limits = _Limits(run, what, max_samples, max_held_out)
    kwargs = dict(batch_size=run.global_batch, seed=run.config.seed,
                  epoch=run.epoch_variable, label_mode=label_mode,
                  drop_remainder=run.on_tpu, augment=augment, mix=mix,
                  shuffle=shuffle)
    arrays = dict(image_size=image_size, channels=channels,
                  class_names=class_names, num_classes=num_classes, **kwargs)
    if isinstance(value, tuple) and len(value) == 2:
        return _arrays(value, validation_split, limits, arrays)
    if isinstance(value, tf.data.Dataset):
        ds = kft_data.image_arrays(value, **arrays)
        return limits.unsplit(sharded(ds), "tf.data datasets", validation_split)
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(
            "Data must be a folder, a CSV path, 'tfds:NAME', a tf.data.Dataset "
            f"or (images, labels) arrays. Received: {type(value).__name__}")
    value = os.fspath(value)
    if value.startswith("tfds:"):
        parts = value.split(":")
        split_name = parts[2] if len(parts) > 2 else default_split
        ds = kft_data.tfds(parts[1], split_name, image_size, **kwargs)
        return limits.unsplit(sharded(ds), "tfds names", validation_split)
    if os.path.isdir(value):
        from kerasft.data._listing import list_image_files

        names, paths, labels = list_image_files(value, class_names)
    elif value.lower().endswith(".csv"):
        from kerasft.data.images import read_image_csv

        paths, labels, names = read_image_csv(value, class_names=class_names)
    else:
        raise ValueError(
            f"Data source {value!r} is not a folder, a .csv file or "
            "'tfds:NAME'.")
    kwargs.update(image_size=image_size, where=value,
                  color_mode="grayscale" if channels == 1 else "rgb")
    labels = np.asarray(labels, "int64")
    ds = _files(list(paths), labels, names, validation_split, limits, kwargs)
    return sharded(ds)


def _files(paths, labels, names, validation_split, limits, kwargs):
    """`kerasft.data.image_files` of a listed folder or CSV, split, then
    each part subset."""
    from kerasft.data.images import image_files
    from kerasft.recipes._subsets import take

    def read(keep, held_out=False):
        keep = limits.keep(labels[keep], held_out, keep)
        return image_files(take(paths, keep), labels[keep], names,
                           **({
                               **kwargs,
                               **_HELD_OUT
                           } if held_out else kwargs))

    if not validation_split:
        return read(np.arange(len(paths)))
    from kerasft.data._split import holdout_indices

    train, val = holdout_indices(labels, validation_split, kwargs["seed"])
    return read(train), read(val, True)


class _Limits:
    """A call's `max_samples` / `max_held_out`: which indices to keep."""

    def __init__(self, run, what, max_samples, max_held_out):
        self.run, self.what = run, what
        self.max_samples, self.max_held_out = max_samples, max_held_out

    def keep(self, labels, held_out=False, index=None):
        from kerasft.recipes._subsets import log_subset, subset_indices

        k = self.max_held_out if held_out else self.max_samples
        index = np.arange(len(labels)) if index is None else np.asarray(index)
        keep = subset_indices(labels, k, self.run.config.seed)
        what = "validation" if held_out else self.what.lower()
        log_subset(self.run, f"{what} images", len(labels), len(keep))
        return index[keep]

    def unsplit(self, ds, kind, validation_split):
        """`ds`, or `(ds, None)` where a split was asked: data of `kind` has
        no index access, so it is neither subset nor split (said in the log).
        """
        if self.max_samples is not None or self.max_held_out is not None:
            self.run.log(
                f"max_train_samples / max_eval_samples not applied to "
                f"{self.what.lower()} data: {kind} have no index access; "
                "pass a folder, a CSV or arrays to take subsets.")
        if not validation_split:
            return ds
        self.run.log(
            f"validation_split={validation_split} not applied: tfds names and "
            "tf.data datasets cannot be split; pass `validation` to hold data "
            "out.")
        return ds, None


def _arrays(value, validation_split, limits, kwargs):
    """`kerasft.data.image_arrays` of `(images, labels)`, split and subset."""
    x, y = np.asarray(value[0]), np.asarray(value[1])
    if kwargs["num_classes"] is None and kwargs["class_names"] is not None:
        kwargs["num_classes"] = len(kwargs["class_names"])
    if y.ndim == 1 and len(y):
        if kwargs["num_classes"] is not None:
            _check_range(y, kwargs["num_classes"], limits.what)
        else:  # counted on all the labels: a split or subset may miss some
            kwargs["num_classes"] = int(y.max()) + 1
    if not validation_split:
        keep = limits.keep(y)
        return sharded(kft_data.image_arrays(x[keep], y[keep], **kwargs))
    from kerasft.data._split import holdout_indices

    # Stratified by label when every class can be in both parts.
    train, val = holdout_indices(y, validation_split, kwargs["seed"])
    train = limits.keep(y[train], index=train)
    val = limits.keep(y[val], True, val)
    return sharded((kft_data.image_arrays(x[train], y[train], **kwargs),
                    kft_data.image_arrays(x[val], y[val], **{
                        **kwargs,
                        **_HELD_OUT
                    })))


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
    """The training pipeline of a `Curriculum` over decoded `(x, y)`: each
    epoch the examples it picks, augmented and batched by `(seed, epoch,
    batch)`. `like` is the same data's dataset, whose attributes are kept.
    """
    augment = _pipeline.resolve_augment(augment)
    ds = _pipeline.finish(curriculum.examples(x, y.astype("int32")),
                          num_samples=len(y), num_classes=len(like.class_names),
                          batch_size=run.global_batch, augment=augment, mix=mix,
                          cache=False, shuffle=False, seed=run.config.seed,
                          label_mode=label_mode, drop_remainder=run.on_tpu,
                          epoch=run.epoch_variable)
    info = {name: getattr(like, name) for name in _pipeline.INFO}
    info.update(augment=augment, mix=mix)
    return sharded(_pipeline.with_info(ds, **info))


def sharded(ds):
    """`by_data(ds)` keeping the dataset's attributes."""
    if isinstance(ds, tuple):
        return tuple(sharded(d) for d in ds)
    info = {name: getattr(ds, name) for name in _pipeline.INFO}
    return _pipeline.with_info(by_data(ds), **info)


def by_data(ds):
    """`ds` sharded by data in multi-worker runs: in-memory sources have no
    files to shard, so each worker keeps its part of every batch."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA)
    return ds.with_options(options)


def skipped_files(*datasets):
    """The unreadable files every given dataset left out, in order."""
    return [
        f for ds in datasets if ds is not None
        for f in getattr(ds, "skipped_files", ())
    ]


def check_labels(source, num_classes, what):
    """`ValueError` when labels fall outside `[0, num_classes)`."""
    if source is not None and source.labels is not None and len(source.labels):
        _check_range(np.asarray(source.labels), num_classes, what)


def _check_range(labels, num_classes, what):
    bad = sorted(set(labels[(labels < 0) | (labels >= num_classes)].tolist()))
    if bad:
        raise ValueError(
            f"{what} labels {bad[:10]} are outside [0, num_classes) with "
            f"num_classes={num_classes}. Set num_classes to the number of "
            "classes, or fix the labels.")


class Source:
    """In-memory elements (e.g. tokenized texts) and their labels.

    `shuffled` orders them by a stateless permutation of `(seed, epoch)`,
    so epoch `e` sees the same order in every process and on resume.
    """

    def __init__(self, labels=None, elements=None):
        self.labels = labels
        self.elements = elements

    @property
    def dataset(self):
        return tf.data.Dataset.from_tensor_slices(self.elements)

    def shuffled(self, seed, epoch_variable):
        """The elements in an order fixed by `(seed, epoch_variable)`."""
        elements = tf.nest.map_structure(tf.convert_to_tensor, self.elements)
        n = int(tf.nest.flatten(elements)[0].shape[0])

        def permutation(epoch_seed):
            return tf.random.experimental.stateless_shuffle(
                tf.range(n, dtype="int64"), seed=epoch_seed)

        ds = _pipeline.epoch_seeds(seed, epoch_variable).map(permutation)
        ds = ds.unbatch().apply(tf.data.experimental.assert_cardinality(n))
        return ds.map(lambda i: tf.nest.map_structure(lambda e: tf.gather(e, i),
                                                      elements))
