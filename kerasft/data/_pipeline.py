"""The part every image source shares: cache -> shuffle -> batch -> augment ->
labels -> mix -> prefetch, and the `ImageData` result it returns."""

import dataclasses
import logging
import keras
import tensorflow as tf

from kerasft.augment import ImageAugmentation
from kerasft.augment import rand_augment
from kerasft.data.class_weights import class_weights as _class_weights

_LOG = logging.getLogger("kerasft.data")
LABEL_MODES = ("int", "categorical")


@dataclasses.dataclass(frozen=True)
class ImageData:
    """An image `tf.data` pipeline and what recipes need to know about it.

    Attributes:
        dataset: the `tf.data.Dataset` of `(images, labels)` batches; images
            are float32 `[b, h, w, c]` in `[0, 255]` (unless `augment`
            rescales), labels int `[b]` or one-hot float32 `[b, classes]`.
        class_names: class names; label `i` is `class_names[i]`.
        class_counts: number of images per class in this subset.
        num_samples: number of images in this subset (after skipping
            unreadable files).
        batch_size: the batch size.
        drop_remainder: whether the last partial batch is dropped.
        augment: the augmentation applied (or `None`).
        mix: the MixUp/CutMix applied (or `None`).
        file_paths: the image files of this subset, in cache order
            (`()` for sources without files).
        skipped: files skipped as unreadable.
    """

    dataset: tf.data.Dataset
    class_names: tuple
    class_counts: tuple
    num_samples: int
    batch_size: int
    drop_remainder: bool = False
    augment: object = None
    mix: object = None
    file_paths: tuple = ()
    skipped: tuple = ()

    @property
    def num_classes(self):
        return len(self.class_names)

    @property
    def steps_per_epoch(self):
        if self.drop_remainder:
            return self.num_samples // self.batch_size
        return -(-self.num_samples // self.batch_size)

    def class_weights(self):
        """Balanced class weights `{index: n / (classes * count)}` for `fit`."""
        return _class_weights(list(self.class_counts))


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
):
    """Turns decoded `(uint8 image, int label)` elements into batches."""
    if cache is True:
        ds = ds.cache()
    elif isinstance(cache, str):
        ds = ds.cache(cache)
    elif cache not in (False, None):
        raise TypeError(
            "`cache` must be True (memory), False or a file path. "
            f"Received: cache={cache!r}"
        )
    if shuffle:
        buffer = num_samples if shuffle_buffer is None else shuffle_buffer
        ds = ds.shuffle(
            max(1, min(buffer, num_samples)),
            seed=seed,
            reshuffle_each_iteration=True,
        )
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    autotune = tf.data.AUTOTUNE
    if augment is not None:
        if isinstance(augment, ImageAugmentation):
            # Per-batch stateless seeds: reproducible with `seed`, new
            # draws every epoch.
            seeds = tf.data.Dataset.random(
                seed=seed, rerandomize_each_iteration=True
            ).batch(2)
            ds = tf.data.Dataset.zip(ds, seeds).map(
                lambda batch, s: (augment.augment(batch[0], s), batch[1]),
                num_parallel_calls=autotune,
            )
        else:
            ds = ds.map(
                lambda x, y: (_call_augment(augment, x), y),
                num_parallel_calls=autotune,
            )
    else:
        ds = ds.map(lambda x, y: (tf.cast(x, tf.float32), y))
    if label_mode == "categorical":
        ds = ds.map(lambda x, y: (x, tf.one_hot(y, num_classes)))
    if mix is not None:
        if hasattr(mix, "mix"):
            mix_seeds = tf.data.Dataset.random(
                seed=None if seed is None else seed + 1,
                rerandomize_each_iteration=True,
            ).batch(2)
            ds = tf.data.Dataset.zip(ds, mix_seeds).map(
                lambda batch, s: mix.mix(batch[0], batch[1], s),
                num_parallel_calls=autotune,
            )
        else:
            ds = ds.map(mix, num_parallel_calls=autotune)
    return ds.prefetch(autotune)


def _call_augment(augment, images):
    images = tf.cast(images, tf.float32)
    if isinstance(augment, keras.layers.Layer):
        return augment(images, training=True)
    return augment(images)
