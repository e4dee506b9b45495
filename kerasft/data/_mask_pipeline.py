"""Decoded `(image, mask)` arrays -> checked, split, batched, augmented.

The segmentation counterpart of `_pipeline.finish`: the same per-epoch
stateless seeds (`_pipeline.epoch_seeds`, `_pipeline.shuffled`), so a run
resumed after `kill -9` sees exactly the batches of an uninterrupted one,
but augmentation gets Keras's dict `{"images", "segmentation_masks"}` so
one warp moves pixels and labels together (masks with nearest sampling).
"""

import numpy as np
import tensorflow as tf

from kerasft.augment import ImageAugmentation
from kerasft.data import _pipeline
from kerasft.data._split import split_off

MASKS = "segmentation_masks"


def check_labels(masks, num_classes, ignore_index, names=None):
    """`num_classes` (inferred when `None`); `ValueError` naming the masks
    (file names or indices) holding labels out of range."""
    present = set()
    bad = []
    for i, mask in enumerate(masks):
        values = np.unique(mask)
        if ignore_index is not None:
            values = values[values != ignore_index]
        present.update(values.tolist())
        if num_classes is not None:
            out = values[(values < 0) | (values >= num_classes)]
            if out.size:
                where = names[i] if names is not None else f"mask {i}"
                bad.append(f"{where}: {out.tolist()[:5]}")
    if bad:
        raise ValueError(
            f"Mask labels must be in [0, {num_classes}) or "
            f"ignore_index={ignore_index!r}; {len(bad)} mask(s) are not: "
            + "; ".join(bad[:5])
            + ("; ..." if len(bad) > 5 else "")
            + ". Pass the right `num_classes` or `ignore_index`."
        )
    if num_classes is None:
        if not present:
            raise ValueError(
                "Every mask pixel is `ignore_index`: no labels to learn."
            )
        num_classes = max(2, int(max(present)) + 1)
    return num_classes


def resolve_augment(augment, ignore_index):
    """As `_pipeline.resolve_augment`; a dict of `ImageAugmentation`
    arguments without `mask_fill_value` fills uncovered mask pixels with
    `ignore_index` (when set), so they are not learned as background."""
    if isinstance(augment, dict) and "mask_fill_value" not in augment:
        if ignore_index is not None:
            augment = {**augment, "mask_fill_value": ignore_index}
    return _pipeline.resolve_augment(augment)


def batches(images, masks, batch_size, augment=None, shuffle=True, seed=None,
            drop_remainder=False, epoch=None):
    """Unbatched uint8 `images` `(N, h, w, c)` and `masks` `(N, h, w)` ->
    batches of `(float32 images, int32 masks (b, h, w))`, one pass per
    epoch."""
    num_samples = len(images)
    # Cached as uint8 when the labels fit (a quarter of the memory).
    fits = masks.size == 0 or (masks.min() >= 0 and masks.max() < 256)
    mask_dtype = tf.uint8 if fits else tf.int32
    ds = tf.data.Dataset.from_tensor_slices(
        (tf.constant(images, tf.uint8), tf.constant(masks, mask_dtype))
    ).cache()

    def transform(step_seed, x, y):
        if isinstance(augment, ImageAugmentation):
            out = augment.augment(
                {"images": x, MASKS: tf.cast(y, tf.int32)[..., None]},
                step_seed,
            )
            x, y = out["images"], out[MASKS][..., 0]
        elif augment is not None:
            out = augment({"images": tf.cast(x, tf.float32), MASKS: y[..., None]})
            x, y = out["images"], out[MASKS][..., 0]
        return tf.cast(x, tf.float32), tf.cast(y, tf.int32)

    def one_epoch(epoch_seed):
        elements = ds
        if shuffle:
            elements = _pipeline.shuffled(elements, num_samples, epoch_seed)
        batched = elements.batch(batch_size, drop_remainder=drop_remainder)
        return batched.enumerate().map(
            lambda step, batch: transform(
                tf.random.experimental.stateless_fold_in(epoch_seed, step),
                batch[0],
                batch[1],
            ),
            num_parallel_calls=tf.data.AUTOTUNE,
        )

    if drop_remainder:
        steps = num_samples // batch_size
    else:
        steps = -(-num_samples // batch_size)
    if steps < 1:
        raise ValueError(
            f"{num_samples} examples make no full batch of {batch_size} "
            "with drop_remainder=True. Pass a smaller `batch_size`."
        )
    out = _pipeline.epoch_seeds(seed, epoch).flat_map(one_epoch)
    out = out.apply(tf.data.experimental.assert_cardinality(steps))
    return out.prefetch(tf.data.AUTOTUNE)


def annotate(ds, masks, num_classes, class_names, batch_size, drop_remainder,
             augment, file_paths=(), ignore_index=255, skipped_files=()):
    """`_pipeline.with_info` plus `ignore_index`; `class_counts` are pixel
    counts per class (so `class_weights()` balances pixels)."""
    if class_names is None:
        class_names = [str(i) for i in range(num_classes)]
    flat = masks.reshape(-1)
    if ignore_index is not None:
        flat = flat[flat != ignore_index]
    counts = np.bincount(flat.astype(np.int64), minlength=num_classes)
    ds = _pipeline.with_info(
        ds,
        class_names=class_names,
        class_counts=counts[:num_classes],
        num_samples=len(masks),
        batch_size=batch_size,
        drop_remainder=drop_remainder,
        augment=augment,
        file_paths=file_paths,
        skipped_files=skipped_files,
    )
    object.__setattr__(ds, "ignore_index", ignore_index)
    return ds


def rgb(image):
    """Grey `(h, w)` or `(h, w, 1)` images repeated to RGB; alpha dropped."""
    if image.ndim == 2:
        image = image[..., None]
    if image.shape[-1] == 1:
        return np.repeat(image, 3, axis=-1)
    return image[..., :3]


def resize_array(array, size, method):
    """`array` `(h, w[, c])` resized to `size` with a PIL `method`
    (`Image.NEAREST` for masks: int32 labels, never blended)."""
    from PIL import Image

    if array.shape[:2] == tuple(size):
        return array
    if method == Image.NEAREST:
        mask = Image.fromarray(array.astype(np.int32))
        return np.asarray(mask.resize(size[::-1], method))
    planes = array if array.ndim == 3 else array[..., None]
    return np.stack([
        np.asarray(Image.fromarray(planes[..., c].astype(np.float32)).resize(
            size[::-1], method))
        for c in range(planes.shape[-1])
    ], axis=-1)


def num_classes_of(num_classes, class_names):
    if class_names is not None:
        if num_classes is not None and num_classes != len(class_names):
            raise ValueError(
                f"`num_classes`={num_classes} differs from the "
                f"{len(class_names)} `class_names`. Pass one of them."
            )
        return len(class_names)
    if num_classes is not None and (
        isinstance(num_classes, bool) or not isinstance(num_classes, int)
        or num_classes < 2
    ):
        raise ValueError(
            "`num_classes` must be an int >= 2 (background counts as a "
            f"class). Received: num_classes={num_classes!r}"
        )
    return num_classes


def finish(images, masks, batch_size, num_classes, class_names, ignore_index,
            augment=None, validation_split=None, subset=None, seed=None,
            shuffle=True, drop_remainder=None, epoch=None, file_paths=(),
            skipped_files=()):
    augment = resolve_augment(augment, ignore_index)
    drop_remainder = _pipeline.resolve_drop_remainder(drop_remainder)
    file_paths = list(file_paths) or [""] * len(images)

    def make(idx, aug, shuf, skipped=skipped_files):
        ds = batches(
            images[idx], masks[idx], batch_size, augment=aug, shuffle=shuf,
            seed=seed, drop_remainder=drop_remainder, epoch=epoch)
        paths = [file_paths[i] for i in idx] if any(file_paths) else ()
        return annotate(
            ds, masks[idx], num_classes, class_names, batch_size,
            drop_remainder, aug, paths, ignore_index, skipped)

    everything = np.arange(len(images))
    if not validation_split:
        if subset is not None:
            raise ValueError(
                "`subset` needs `validation_split`. Received: "
                f"subset={subset!r}, validation_split={validation_split!r}"
            )
        return make(everything, augment, shuffle)
    if subset not in ("training", "validation", "both") or seed is None:
        raise ValueError(
            "`validation_split` needs `subset` ('training', 'validation' or "
            f"'both') and a `seed`. Received: subset={subset!r}, seed={seed!r}"
        )
    n_val = max(1, int(round(len(images) * validation_split)))
    if not 0 < validation_split < 1 or n_val >= len(images):
        raise ValueError(
            "`validation_split` must be in (0, 1) and leave training data. "
            f"Received: validation_split={validation_split!r} of {len(images)}"
        )
    train, val = split_off(np.zeros((len(images), 2)), n_val, seed)
    if subset == "training":
        return make(train, augment, shuffle)
    if subset == "validation":
        return make(val, None, False)
    # Files were skipped before the split: the training subset lists them.
    return make(train, augment, shuffle), make(val, None, False, ())
