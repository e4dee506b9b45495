"""`tfds`: a tensorflow-datasets image dataset through the same fast pipeline."""

import tensorflow as tf

from kerasft.data import _pipeline


def tfds(
    name,
    split,
    image_size,
    batch_size,
    augment=None,
    seed=None,
    cache=True,
    shuffle=True,
    label_mode="int",
    drop_remainder=None,
    mix=None,
    data_dir=None,
    download=True,
    image_key="image",
    label_key="label",
    shuffle_buffer=None,
    epoch=None,
):
    """Loads an image classification dataset from tensorflow-datasets.

    `name` goes through `tfds.load` (which downloads and prepares it the
    first time, so it needs a network), or is a `tfds` builder already made
    locally (e.g. `tfds.folder_dataset.ImageFolder(root)`). Images are
    resized to `image_size`, cached as uint8, then shuffled, batched,
    augmented and prefetched exactly as in `kerasft.data.image_folder`.
    tensorflow-datasets is imported only when this runs (`pip install
    kerasft[tfds]`).

    Args:
        name: a registered dataset name (`"tf_flowers"`), prepared as
            `tfds.load` does (`tfds.builder(name, data_dir)` then
            `download_and_prepare()`), or a ready `tfds.core.DatasetBuilder`
            instance such as `tfds.folder_dataset.ImageFolder(root)`.
        split: a tfds split string, e.g. `"train[:80%]"`.
        image_size: `(height, width)`, or one int for squares.
        batch_size: images per batch.
        augment: as in `image_folder`. Defaults to `None`.
        seed: seed for the shuffle and the augmentation. Defaults to `None`.
        cache: `True` (memory), `False`, or a cache file path.
            Defaults to `True`.
        shuffle: reshuffle every epoch. Defaults to `True`.
        label_mode: `"int"` or `"categorical"`. Defaults to `"int"`.
        drop_remainder: as in `image_folder` (automatic on TPU).
            Defaults to `None`.
        mix: `MixUp`/`CutMix`, needs `label_mode="categorical"`.
            Defaults to `None`.
        data_dir: where tfds keeps its data. Defaults to `None` (tfds's).
        download: download and prepare a named dataset first (as
            `tfds.load(download=True)`). Defaults to `True`.
        image_key: feature holding the image. Defaults to `"image"`.
        label_key: feature holding the class label. Defaults to `"label"`.
        shuffle_buffer: shuffle buffer size. Defaults to `None` (the
            whole split).
        epoch: as in `image_folder`: a `tf.Variable` holding the epoch
            makes every epoch's order and augmentation a pure function of
            `(seed, epoch, batch)`. Defaults to `None`.

    Returns:
        A `tf.data.Dataset` with the attributes `image_folder` documents;
        `class_names` come from the label feature.

    Example:
    ```python
    data = kerasft.data.tfds("tf_flowers", "train[:80%]", (224, 224), 32,
                             augment=dict(horizontal_flip=True), seed=1)
    ```
    """
    image_size = _pipeline.check_image_size(image_size)
    _pipeline.check_common(batch_size, label_mode, mix)
    augment = _pipeline.resolve_augment(augment)
    drop_remainder = _pipeline.resolve_drop_remainder(drop_remainder)
    try:
        import tensorflow_datasets as tfds_lib
    except ImportError as error:
        raise ImportError(
            "kerasft.data.tfds needs tensorflow-datasets: "
            "`pip install kerasft[tfds]`."
        ) from error

    if isinstance(name, tfds_lib.core.DatasetBuilder):
        builder = name  # made and prepared by the caller
    elif isinstance(name, str):
        builder = tfds_lib.builder(name, data_dir=data_dir)
        if download:
            builder.download_and_prepare()
    else:
        raise TypeError(
            "`name` must be a tfds dataset name or a tfds DatasetBuilder. "
            f"Received: name={name!r}"
        )
    info = builder.info
    label_feature = info.features[label_key]
    class_names = tuple(label_feature.names)
    ds = builder.as_dataset(split=split, shuffle_files=False)
    num_samples = int(info.splits[split].num_examples)
    labels_only = builder.as_dataset(
        split=split,
        shuffle_files=False,
        decoders={image_key: tfds_lib.decode.SkipDecoding()},
    )
    counts = _class_counts(labels_only, label_key, len(class_names))
    channels = info.features[image_key].shape[-1] or 3

    def load(example):
        image = example[image_key]
        image.set_shape([None, None, channels])
        image = tf.image.resize(image, image_size)
        image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
        return image, tf.cast(example[label_key], tf.int32)

    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE)
    ds = _pipeline.finish(
        ds,
        num_samples=num_samples,
        num_classes=len(class_names),
        batch_size=batch_size,
        augment=augment,
        mix=mix,
        cache=cache,
        shuffle=shuffle,
        shuffle_buffer=shuffle_buffer,
        seed=seed,
        label_mode=label_mode,
        drop_remainder=drop_remainder,
        epoch=epoch,
    )
    return _pipeline.with_info(
        ds,
        class_names=class_names,
        class_counts=counts,
        num_samples=num_samples,
        batch_size=batch_size,
        drop_remainder=drop_remainder,
        augment=augment,
        mix=mix,
    )


def _class_counts(ds, label_key, num_classes):
    """Counts labels in one pass (images are left undecoded)."""
    labels = ds.map(
        lambda ex: ex[label_key],
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    counts = [0] * num_classes
    for batch in labels.batch(4096):
        for label in batch.numpy().tolist():
            counts[label] += 1
    return tuple(counts)
