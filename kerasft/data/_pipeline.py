"""The part every image source shares: cache -> shuffle -> batch -> augment ->
labels -> mix -> prefetch, and `with_info`, which annotates the result."""

import logging
import keras
import tensorflow as tf

from kerasft.augment import ImageAugmentation
from kerasft.augment import rand_augment
from kerasft.data.class_weights import class_weights as _balanced

_LOG = logging.getLogger("kerasft.data")
LABEL_MODES = ("int", "categorical")


# What `with_info` attaches to a dataset: the names a user reads off it.
INFO = (
    "class_names", "class_counts", "num_samples", "batch_size",
    "drop_remainder", "augment", "mix", "file_paths", "skipped_files",
)


def with_info(
    dataset,
    class_names,
    class_counts,
    num_samples,
    batch_size,
    drop_remainder=False,
    augment=None,
    mix=None,
    file_paths=(),
    skipped_files=(),
):
    """`dataset` itself, with what recipes and users need to know about it.

    Like `keras.utils.image_dataset_from_directory`'s `class_names`, the
    facts are plain attributes of the `tf.data.Dataset` that goes straight
    into `model.fit`:

    - `class_names`, `class_counts` (per class, this subset), `num_classes`;
    - `num_samples` (after skipping unreadable files), `batch_size`,
      `drop_remainder`, `steps_per_epoch` (also the dataset's cardinality);
    - `augment`, `mix` (or `None`), `file_paths` (cache order, `()` for
      sources without files), `skipped_files` (unreadable files left out;
      `skipped` is the same tuple);
    - `class_weights()`: balanced weights for `fit(class_weight=...)`;
    - `dataset`: the dataset itself, for code written against the earlier
      `ImageData` wrapper.

    Datasets derived with `map`, `batch`, ... do not carry the attributes.
    """
    # Set with object.__setattr__: plain values, not tracked dependencies
    # of the dataset (which would also make `dataset.dataset` a cycle).
    values = dict(
        class_names=tuple(class_names),
        class_counts=tuple(int(c) for c in class_counts),
        num_samples=int(num_samples),
        batch_size=int(batch_size),
        drop_remainder=bool(drop_remainder),
        augment=augment,
        mix=mix,
        file_paths=tuple(file_paths),
        skipped_files=tuple(skipped_files),
    )
    if drop_remainder:
        steps = values["num_samples"] // values["batch_size"]
    else:
        steps = -(-values["num_samples"] // values["batch_size"])
    values.update(
        num_classes=len(values["class_names"]),
        steps_per_epoch=steps,
        skipped=values["skipped_files"],
        dataset=dataset,
        class_weights=_balanced_weights(values["class_counts"]),
    )
    for name, value in values.items():
        object.__setattr__(dataset, name, value)
    return dataset


def has_info(value):
    """Whether `value` is a dataset `with_info` annotated."""
    return isinstance(value, tf.data.Dataset) and all(
        hasattr(value, name) for name in INFO
    )


def _balanced_weights(counts):
    def class_weights():
        """Balanced class weights `{index: n / (classes * count)}` for `fit`."""
        return _balanced(list(counts))

    return class_weights


def on_tpu():
    """Whether the current `tf.distribute` strategy runs on TPUs."""
    return isinstance(tf.distribute.get_strategy(), tf.distribute.TPUStrategy)


def resolve_drop_remainder(drop_remainder):
    """`None` means False, except under a TPU strategy (static shapes)."""
    if drop_remainder is None:
        drop = on_tpu()
        if drop:
            _LOG.info("TPU strategy active: dropping the last partial batch.")
        return drop
    if not isinstance(drop_remainder, bool):
        raise TypeError(
            "`drop_remainder` must be True, False or None (automatic). "
            f"Received: drop_remainder={drop_remainder!r}"
        )
    return drop_remainder


def resolve_augment(augment):
    """None, an `ImageAugmentation`, a dict of its kwargs, `"randaugment"`,
    or any callable on image batches (e.g. a Keras preprocessing layer)."""
    if augment is None or augment is False:
        return None
    if isinstance(augment, dict):
        return ImageAugmentation(**augment)
    if isinstance(augment, str):
        if augment.lower() == "randaugment":
            return rand_augment()
        raise ValueError(
            "`augment` must be None, an ImageAugmentation, a dict of its "
            "arguments, 'randaugment' or a callable. "
            f"Received: augment={augment!r}"
        )
    if not callable(augment):
        raise TypeError(
            "`augment` must be None, an ImageAugmentation, a dict of its "
            "arguments, 'randaugment' or a callable. "
            f"Received: augment={augment!r}"
        )
    return augment


def check_common(batch_size, label_mode, mix):
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or (
        batch_size < 1
    ):
        raise ValueError(
            f"`batch_size` must be a positive int. Received: "
            f"batch_size={batch_size!r}"
        )
    if label_mode not in LABEL_MODES:
        raise ValueError(
            f"`label_mode` must be one of {LABEL_MODES}. "
            f"Received: label_mode={label_mode!r}"
        )
    if mix is not None:
        if not callable(mix):
            raise TypeError(
                "`mix` must be a callable on (images, one_hot_labels), e.g. "
                f"kerasft.augment.MixUp(). Received: mix={mix!r}"
            )
        if label_mode != "categorical":
            raise ValueError(
                "`mix` (MixUp/CutMix) makes soft labels: pass "
                "label_mode='categorical'. "
                f"Received: label_mode={label_mode!r}"
            )


def check_image_size(image_size):
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    if (
        not isinstance(image_size, (tuple, list))
        or len(image_size) != 2
        or not all(isinstance(s, int) and s > 0 for s in image_size)
    ):
        raise ValueError(
            "`image_size` must be (height, width) positive ints. "
            f"Received: image_size={image_size!r}"
        )
    return tuple(image_size)


def finish(
    ds,
    num_samples,
    num_classes,
    batch_size,
    augment=None,
    mix=None,
    cache=True,
    shuffle=True,
    shuffle_buffer=None,
    seed=None,
    label_mode="int",
    drop_remainder=False,
    epoch=None,
):
    """Turns decoded `(uint8 image, label)` elements into batches.

    Each pass over the result (each epoch) draws one stateless seed: from
    `(seed, epoch)` when `epoch` is given (a `tf.Variable` holding the epoch
    number, as the recipes keep it), else a new one per pass from `seed`.
    The shuffle order and every batch's augmentation and mixing derive from
    it (`fold_in` of the batch index), so with `epoch` the batches of epoch
    `e` are the same in every process: a run resumed after `kill -9`
    trains on exactly what an uninterrupted run would have.
    """
    if cache is True:
        ds = ds.cache()
    elif isinstance(cache, str):
        ds = ds.cache(cache)
    elif cache not in (False, None):
        raise TypeError(
            "`cache` must be True (memory), False or a file path. "
            f"Received: cache={cache!r}"
        )
    autotune = tf.data.AUTOTUNE
    buffer = num_samples if shuffle_buffer is None else shuffle_buffer
    buffer = max(1, min(buffer, num_samples))

    def transform(step_seed, x, y):
        if hasattr(augment, "augment"):  # stateless: exact resume
            x = augment.augment(x, _fold(step_seed, 0))
        elif augment is not None:
            x = _call_augment(augment, x)
        else:
            x = tf.cast(x, tf.float32)
        if label_mode == "categorical":
            y = tf.one_hot(y, num_classes)
        if mix is not None and hasattr(mix, "mix"):
            x, y = mix.mix(x, y, _fold(step_seed, 1))
        elif mix is not None:
            x, y = mix(x, y)
        return x, y

    def one_epoch(epoch_seed):
        elements = ds
        if shuffle:
            elements = shuffled(elements, buffer, epoch_seed)
        batches = elements.batch(batch_size, drop_remainder=drop_remainder)
        return batches.enumerate().map(
            lambda step, batch: transform(
                _fold(epoch_seed, step), batch[0], batch[1]
            ),
            num_parallel_calls=autotune,
        )

    if drop_remainder:
        steps = num_samples // batch_size
    else:
        steps = -(-num_samples // batch_size)
    ds = epoch_seeds(seed, epoch).flat_map(one_epoch)
    ds = ds.apply(tf.data.experimental.assert_cardinality(steps))
    return ds.prefetch(autotune)


def shuffled(ds, block, epoch_seed):
    """`ds` in an order that is a pure function of `epoch_seed`.

    Blocks of `block` elements (the whole dataset when `block` is its
    size: a full permutation, as `Dataset.shuffle` with a full buffer) are
    permuted with `tf.random.experimental.stateless_shuffle`, each block
    with its own seed. Not `Dataset.shuffle(seed=tensor)`: with a global
    seed of 0, TensorFlow's seed logic evaluates the tensor as a Python
    bool and fails.
    """

    def permute(index, batch):
        count = tf.shape(tf.nest.flatten(batch)[0])[0]
        order = tf.random.experimental.stateless_shuffle(
            tf.range(count), seed=_fold(epoch_seed, index)
        )
        return tf.nest.map_structure(lambda t: tf.gather(t, order), batch)

    return ds.batch(block).enumerate().map(permute).unbatch()


def epoch_seeds(seed, epoch=None):
    """A dataset of one `[2]` int64 seed per pass over it.

    `(seed, epoch)` read when the pass starts if `epoch` (a `tf.Variable`)
    is given; otherwise fresh draws from `seed` on every pass.
    """
    if epoch is not None:
        base = tf.constant(0 if seed is None else seed, tf.int64)
        return tf.data.Dataset.from_tensors(base).map(
            lambda s: tf.stack([s, tf.cast(epoch.read_value(), tf.int64)])
        )
    return (
        tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        .take(2)
        .batch(2)
    )


def _fold(seed, value):
    return tf.random.experimental.stateless_fold_in(
        tf.cast(seed, tf.int64), tf.cast(value, tf.int64)
    )


def _call_augment(augment, images):
    images = tf.cast(images, tf.float32)
    if isinstance(augment, keras.layers.Layer):
        return augment(images, training=True)
    return augment(images)
