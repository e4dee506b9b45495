"""`box_dataset`: detection annotations as a fast, static-shape `tf.data`
pipeline, on the decoding and caching path every image source shares."""

import numpy as np
import tensorflow as tf

from kerasft.augment import ImageAugmentation
from kerasft.data import _pipeline
from kerasft.data.boxes import BoxAnnotations, read_boxes
from kerasft.data.images import load_files


def box_dataset(
    annotations,
    image_size,
    batch_size,
    max_boxes=None,
    augment=None,
    shuffle=True,
    seed=None,
    epoch=None,
    cache=True,
    drop_remainder=None,
    class_names=None,
):
    """Batches of images with padded boxes, ready for a detection model.

    Every image is decoded once (`kerasft.data.image_folder`'s path:
    unreadable files are skipped and listed), resized to `image_size`
    and cached as uint8; boxes are scaled with it. Each epoch then
    shuffles, batches and augments, with orders and augmentations pure
    functions of `(seed, epoch, batch)` when `epoch` is given.

    Elements are `(images, {"boxes": ..., "labels": ...})`: float32 images
    `(batch, height, width, 3)` in `[0, 255]`, boxes `(batch, max_boxes, 4)`
    as absolute `xyxy` pixels of the resized image, int32 labels
    `(batch, max_boxes)`; padding rows have label `-1` and box `-1`s
    (Keras's convention), so shapes are static (TPU).

    Args:
        annotations: a `kerasft.data.BoxAnnotations`, or a path
            `kerasft.data.read_boxes` reads (CSV, COCO JSON, VOC folder).
        image_size: `(height, width)`, or one int for squares.
        batch_size: images per batch.
        max_boxes: box rows per image. Defaults to `None`: the most boxes
            any image has. An image with more raises a `ValueError`.
        augment: `None`, a `kerasft.augment.ImageAugmentation` made with
            `bounding_box_format="xyxy"`, or a dict of its keyword
            arguments (the format is then set for you). Boxes move with
            the pixels; boxes that leave the image become padding.
            Defaults to `None`.
        shuffle: reshuffle every epoch. Defaults to `True`.
        seed: seed of the shuffle and augmentation. Defaults to `None`.
        epoch: a `tf.Variable` holding the epoch (as in `image_folder`).
            Defaults to `None`.
        cache: `True` (memory) or a file path. Defaults to `True`.
        drop_remainder: as in `image_folder`. Defaults to `None`.
        class_names: class names when `annotations` is a path (to read a
            validation split with the training ids). Defaults to `None`.

    Returns:
        A `tf.data.Dataset` with `kerasft.data`'s attributes
        (`class_names`, `class_counts` counting boxes, `num_samples`,
        `steps_per_epoch`, `file_paths`, `skipped_files`, ...),
        `max_boxes` and `image_sizes` (original `(height, width)` of each
        kept file, in `file_paths` order).

    Example:
    ```python
    train = kerasft.data.box_dataset("shapes/train.csv", 128, 16, seed=0,
                                     augment=dict(horizontal_flip=True))
    images, targets = next(iter(train))
    targets["boxes"].shape  # (16, train.max_boxes, 4)
    ```
    """
    if not isinstance(annotations, BoxAnnotations):
        annotations = read_boxes(annotations, class_names)
    image_size = _pipeline.check_image_size(image_size)
    _pipeline.check_common(batch_size, "int", None)
    max_boxes = _max_boxes(annotations, max_boxes)
    augment = _box_augment(augment, max_boxes)
    drop_remainder = _pipeline.resolve_drop_remainder(drop_remainder)
    boxes = -np.ones((len(annotations), max_boxes, 4), "float32")
    labels = -np.ones((len(annotations), max_boxes), "int32")
    for i, (b, l) in enumerate(zip(annotations.boxes, annotations.labels)):
        boxes[i, :len(b)], labels[i, :len(l)] = b, l
    if cache is False or cache is None:
        raise ValueError(
            "`cache` must be True (memory) or a file path: detection data "
            f"is decoded once up front. Received: cache={cache!r}"
        )
    loaded = load_files(annotations.paths, (boxes, labels), image_size,
                        cache=cache, where="the detection annotations")
    height, width = image_size

    def scaled(image, target, size):
        box, label = target
        size = tf.cast(size, tf.float32)
        scale = tf.stack([width / size[1], height / size[0]] * 2)
        box = tf.where(label[:, None] >= 0, box * scale, -1.0)
        return image, {"boxes": box, "labels": label}

    num = len(loaded.paths)
    ds = _batches(loaded.dataset.map(scaled), num, batch_size, augment,
                  shuffle, seed, epoch, drop_remainder)
    kept = set(loaded.paths)
    counts = np.bincount(
        np.concatenate([np.zeros(0, "int64")] + [
            l for p, l in zip(annotations.paths, annotations.labels) if p in kept
        ]).astype("int64"),
        minlength=len(annotations.class_names),
    )
    ds = _pipeline.with_info(
        ds, class_names=annotations.class_names, class_counts=counts,
        num_samples=num, batch_size=batch_size, drop_remainder=drop_remainder,
        augment=augment, file_paths=loaded.paths,
        skipped_files=loaded.skipped,
    )
    sizes = np.concatenate([
        s.numpy() for s in loaded.dataset.map(lambda i, t, s: s).batch(4096)
    ])
    object.__setattr__(ds, "max_boxes", max_boxes)
    object.__setattr__(ds, "image_sizes", sizes)
    return ds


def _max_boxes(annotations, max_boxes):
    most = annotations.max_boxes
    if max_boxes is None:
        return max(1, most)
    if isinstance(max_boxes, bool) or not isinstance(max_boxes, int) or max_boxes < 1:
        raise ValueError(
            "`max_boxes` must be a positive int or None. "
            f"Received: max_boxes={max_boxes!r}"
        )
    if most > max_boxes:
        worst = max(range(len(annotations)), key=lambda i: len(annotations.boxes[i]))
        raise ValueError(
            f"{annotations.paths[worst]!r} has {most} boxes, more than "
            f"`max_boxes`={max_boxes}. Pass max_boxes={most} or more."
        )
    return max_boxes


def _box_augment(augment, max_boxes):
    if augment is None or augment is False:
        return None
    if isinstance(augment, dict):
        return ImageAugmentation(
            **{"bounding_box_format": "xyxy", "max_boxes": max_boxes, **augment}
        )
    if not isinstance(augment, ImageAugmentation):
        raise TypeError(
            "`augment` must be None, a kerasft.augment.ImageAugmentation or "
            f"a dict of its arguments. Received: augment={augment!r}"
        )
    if augment.bounding_box_format != "xyxy":
        raise ValueError(
            "`augment` must move boxes given as absolute xyxy pixels: make it "
            "with ImageAugmentation(..., bounding_box_format='xyxy'). "
            f"Received: bounding_box_format={augment.bounding_box_format!r}"
        )
    return augment


def _batches(ds, num, batch_size, augment, shuffle, seed, epoch, drop_remainder):
    """Shuffle, batch, augment and prefetch `(uint8 image, targets)`
    elements, one stateless seed per epoch (as `_pipeline.finish`)."""

    def transform(step_seed, images, targets):
        images = tf.cast(images, tf.float32)
        if augment is None:
            return images, targets
        out = augment.augment(
            {"images": images, "bounding_boxes": targets},
            _pipeline._fold(step_seed, 0),
        )
        boxes = out["bounding_boxes"]
        labels = tf.cast(boxes["labels"], tf.int32)
        box = tf.where(labels[..., None] >= 0, boxes["boxes"], -1.0)
        return out["images"], {"boxes": box, "labels": labels}

    def one_epoch(epoch_seed):
        elements = _pipeline.shuffled(ds, num, epoch_seed) if shuffle else ds
        batches = elements.batch(batch_size, drop_remainder=drop_remainder)
        return batches.enumerate().map(
            lambda step, batch: transform(
                _pipeline._fold(epoch_seed, step), batch[0], batch[1]
            ),
            num_parallel_calls=tf.data.AUTOTUNE,
        )

    steps = num // batch_size if drop_remainder else -(-num // batch_size)
    ds = _pipeline.epoch_seeds(seed, epoch).flat_map(one_epoch)
    ds = ds.apply(tf.data.experimental.assert_cardinality(steps))
    return ds.prefetch(tf.data.AUTOTUNE)
