"""`image_arrays`: images already in memory through the shared pipeline."""

import numpy as np
import tensorflow as tf

from kerasft.data import _pipeline


def image_arrays(
    images,
    labels=None,
    batch_size=32,
    image_size=None,
    augment=None,
    seed=None,
    shuffle=True,
    label_mode="int",
    drop_remainder=None,
    mix=None,
    class_names=None,
    num_classes=None,
    channels=None,
    shuffle_buffer=None,
    epoch=None,
):
    """Images in memory (arrays or a `tf.data.Dataset`) as `image_folder` gives them.

    The same pipeline as `kerasft.data.image_folder` (resize once, cache,
    shuffle, batch, augment, prefetch) with the same attributes on the
    returned dataset (`class_names`, `class_counts`, `num_samples`,
    `steps_per_epoch`, `class_weights()`, ...), for data that is not in
    files: `(images, labels)` arrays, or a `tf.data.Dataset` of
    `(image, label)` pairs, unbatched or batched (read once, cached).

    Args:
        images: an array `(N, height, width[, channels])` with pixel values
            in `[0, 255]`, or a `tf.data.Dataset` of `(image, label)`.
        labels: integer class ids `(N,)`; `None` with a dataset.
        batch_size: images per batch. Defaults to `32`.
        image_size: `(height, width)` or one int to resize to.
            Defaults to `None` (keep the size).
        augment, seed, shuffle, label_mode, drop_remainder, mix,
        shuffle_buffer, epoch: as in `image_folder`.
        class_names: class names in label order. Defaults to `None`
            (the ids as strings).
        num_classes: number of classes. Defaults to `None` (from
            `class_names`, else the largest label + 1).
        channels: `3` turns one-channel images to RGB, `1` keeps them.
            Defaults to `None` (as given).

    Returns:
        A `tf.data.Dataset` of `(float32 images, labels)` batches with the
        attributes `image_folder` documents.

    Example:
    ```python
    (x, y), _ = keras.datasets.cifar10.load_data()
    train = image_arrays(x, y[:, 0], batch_size=64, seed=0,
                         augment=dict(horizontal_flip=True))
    model.fit(train, epochs=3)
    ```
    """
    _pipeline.check_common(batch_size, label_mode, mix)
    if image_size is not None:
        image_size = _pipeline.check_image_size(image_size)
    augment = _pipeline.resolve_augment(augment)
    drop_remainder = _pipeline.resolve_drop_remainder(drop_remainder)
    if isinstance(images, tf.data.Dataset):
        if labels is not None:
            raise ValueError(
                "A dataset holds its own labels: pass `labels=None`. "
                f"Received: labels of type {type(labels).__name__}"
            )
        elements = _pairs(images)
    else:
        elements = _array_elements(images, labels)
    elements = elements.map(
        _reshape(image_size, channels), num_parallel_calls=tf.data.AUTOTUNE
    ).cache()
    # One pass fills the cache and reads every label.
    label_values = np.concatenate(
        [b.numpy() for b in elements.map(lambda x, y: y).batch(4096)]
        or [np.zeros([0], np.int64)]
    ).astype("int64")
    if not len(label_values):
        raise ValueError("The image data holds no images.")
    if label_values.min() < 0:
        raise ValueError(
            "Labels must be class ids >= 0. Received: "
            f"{sorted(set(label_values[label_values < 0].tolist()))[:5]}"
        )
    names = _class_names(class_names, num_classes, label_values)
    if label_values.max() >= len(names):
        raise ValueError(
            f"Labels {sorted(set(label_values[label_values >= len(names)].tolist()))[:10]} "
            f"are outside [0, num_classes) with num_classes={len(names)}. "
            "Set num_classes to the number of classes, or fix the labels."
        )
    ds = _pipeline.finish(
        elements,
        num_samples=len(label_values),
        num_classes=len(names),
        batch_size=batch_size,
        augment=augment,
        mix=mix,
        cache=False,  # cached above
        shuffle=shuffle,
        shuffle_buffer=shuffle_buffer,
        seed=seed,
        label_mode=label_mode,
        drop_remainder=drop_remainder,
        epoch=epoch,
    )
    return _pipeline.with_info(
        ds,
        class_names=names,
        class_counts=np.bincount(label_values, minlength=len(names)),
        num_samples=len(label_values),
        batch_size=batch_size,
        drop_remainder=drop_remainder,
        augment=augment,
        mix=mix,
    )


def _array_elements(images, labels):
    images = np.asarray(images)
    if labels is None:
        raise ValueError("`labels` are required with image arrays.")
    labels = np.asarray(labels)
    if images.ndim not in (3, 4):
        raise ValueError(
            "Images must be an array of shape (N, height, width[, channels])."
            f" Received shape {images.shape}"
        )
    if len(images) != len(labels):
        raise ValueError(
            f"Images and labels differ in length: {len(images)} != "
            f"{len(labels)}."
        )
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            "Labels must be a 1-D array of integer class ids. Received "
            f"shape {labels.shape}, dtype {labels.dtype}"
        )
    return tf.data.Dataset.from_tensor_slices((images, labels.astype("int32")))


def _pairs(ds):
    spec = ds.element_spec
    if not isinstance(spec, tuple) or len(spec) < 2:
        raise ValueError(
            "A dataset must yield (image, label) pairs. Received element "
            f"spec {spec}"
        )
    if spec[0].shape.rank == 4:
        ds = ds.unbatch()
    return ds.map(lambda x, y, *rest: (x, tf.cast(y, tf.int32)))


def _reshape(image_size, channels):
    def fn(image, label):
        if image.shape.rank == 2:
            image = image[..., None]
        if channels == 3 and image.shape[-1] == 1:
            image = tf.image.grayscale_to_rgb(image)
        if image_size is not None and tuple(image.shape[:2]) != image_size:
            resized = tf.image.resize(image, image_size)
            if image.dtype == tf.uint8:
                resized = tf.clip_by_value(tf.round(resized), 0.0, 255.0)
            image = tf.cast(resized, image.dtype)
        return image, label

    return fn


def _class_names(class_names, num_classes, labels):
    if class_names is not None:
        names = tuple(str(n) for n in class_names)
        if num_classes is not None and num_classes != len(names):
            raise ValueError(
                f"`class_names` has {len(names)} names but "
                f"num_classes={num_classes}."
            )
        return names
    count = num_classes if num_classes is not None else int(labels.max()) + 1
    return tuple(str(i) for i in range(count))
