"""`image_folder`: a class-per-folder image directory as a fast `tf.data` pipeline."""

import logging
import os
import random

import tensorflow as tf

from kerasft.data import _pipeline

_LOG = logging.getLogger("kerasft.data")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
_CHANNELS = {"rgb": 3, "grayscale": 1, "rgba": 4}
_SUBSETS = ("training", "validation", "both")


def image_folder(
    directory,
    image_size,
    batch_size,
    augment=None,
    validation_split=None,
    subset=None,
    seed=None,
    cache=True,
    shuffle=True,
    label_mode="int",
    drop_remainder=None,
    mix=None,
    class_names=None,
    color_mode="rgb",
    interpolation="bilinear",
    check_files="header",
    shuffle_buffer=None,
):
    """Loads `directory/<class>/<image>` files into an `ImageData` pipeline.

    Files are listed once, checked, decoded in parallel
    (`tf.io.decode_image`, first frame of animations), resized to
    `image_size`, and cached as uint8; then shuffled, batched, augmented
    (after the cache, so every epoch sees new augmentations) and
    prefetched. Unreadable files are skipped and reported in one warning;
    a file that passes the check but still fails to decode is dropped
    (logged) and its slot refilled with another image, so an epoch never
    ends early or crashes and its length stays known to `fit`.

    Args:
        directory: folder with one subfolder of images per class (sorted
            names give the label order).
        image_size: `(height, width)`, or one int for squares.
        batch_size: images per batch.
        augment: `None`, a `kerasft.augment.ImageAugmentation`, a dict of
            its (ImageDataGenerator) keyword arguments, `"randaugment"`, or
            any callable/Keras layer taking a float32 image batch.
            Defaults to `None`.
        validation_split: fraction of the images held out, in `(0, 1)`.
            Needs `subset` and `seed`. Defaults to `None`.
        subset: `"training"`, `"validation"` or `"both"` (returns a pair).
            Defaults to `None`.
        seed: seed for the split, the shuffle and the augmentation.
            Defaults to `None`.
        cache: `True` caches decoded images in memory, a string caches
            them in that file (one file per subset), `False` decodes every
            epoch. Defaults to `True`.
        shuffle: reshuffle every epoch. Defaults to `True`.
        label_mode: `"int"` (sparse labels) or `"categorical"` (one-hot).
            Defaults to `"int"`.
        drop_remainder: drop the last partial batch; `None` means `False`,
            or `True` when a TPU strategy is active (static shapes).
            Defaults to `None`.
        mix: `kerasft.augment.MixUp` or `CutMix` (or any callable on
            `(images, one_hot_labels)` batches); needs
            `label_mode="categorical"`. Defaults to `None`.
        class_names: explicit list of class subfolders to use, in label
            order. Defaults to `None` (all subfolders, sorted).
        color_mode: `"rgb"`, `"grayscale"` or `"rgba"`. Defaults to `"rgb"`.
        interpolation: resize method of `tf.image.resize`.
            Defaults to `"bilinear"`.
        check_files: `"header"` (skip files whose first bytes are not an
            image: empty, truncated at the header, other formats),
            `"decode"` (decode every file once up front: exact, slower) or
            `None`. Defaults to `"header"`.
        shuffle_buffer: shuffle buffer size. Defaults to `None` (the whole
            subset: a full permutation every epoch, as ImageDataGenerator).

    Returns:
        An `ImageData` (`.dataset`, `.class_names`, `.class_counts`,
        `.num_samples`, `.steps_per_epoch`, `.class_weights()`), or a pair
        `(training, validation)` of them for `subset="both"`.

    Example:
    ```python
    data = image_folder("flowers/", image_size=(224, 224), batch_size=32,
                        augment=dict(rotation_range=20, horizontal_flip=True),
                        validation_split=0.2, subset="both", seed=1)
    train, val = data
    model.fit(train.dataset, validation_data=val.dataset,
              class_weight=train.class_weights())
    ```
    """
    image_size = _pipeline.check_image_size(image_size)
    _pipeline.check_common(batch_size, label_mode, mix)
    augment = _pipeline.resolve_augment(augment)
    drop_remainder = _pipeline.resolve_drop_remainder(drop_remainder)
    if color_mode not in _CHANNELS:
        raise ValueError(
            f"`color_mode` must be one of {tuple(_CHANNELS)}. "
            f"Received: color_mode={color_mode!r}"
        )
    if check_files not in ("header", "decode", None):
        raise ValueError(
            "`check_files` must be 'header', 'decode' or None. "
            f"Received: check_files={check_files!r}"
        )
    _check_split(validation_split, subset, seed)
    names, paths, labels = list_image_files(directory, class_names)

    skipped = []
    if check_files == "header":
        skipped = [p for p in paths if not _has_image_header(p)]
    elif check_files == "decode":
        skipped = _undecodable(paths, _CHANNELS[color_mode])
    if skipped:
        bad = set(skipped)
        kept = [(p, l) for p, l in zip(paths, labels) if p not in bad]
        paths = [p for p, _ in kept]
        labels = [l for _, l in kept]
        shown = ", ".join(skipped[:5]) + (", ..." if len(skipped) > 5 else "")
        _LOG.warning(
            "Skipped %d unreadable image file(s) in %s: %s",
            len(skipped),
            directory,
            shown,
        )
    if not paths:
        raise ValueError(
            f"No readable images in {directory!r} (all {len(skipped)} "
            "files were unreadable)."
        )

    # One seeded permutation up front: the cache then holds a mixed order
    # (a class-sorted cache would need a full shuffle buffer) and the
    # validation split takes a random subset of every class.
    # Without shuffle or split, files keep their sorted order.
    if shuffle or validation_split:
        order = list(range(len(paths)))
        random.Random(seed).shuffle(order)
        paths = [paths[i] for i in order]
        labels = [labels[i] for i in order]

    def build(sub_paths, sub_labels, sub_cache, sub_shuffle, sub_augment,
              sub_mix):
        counts = tuple(sub_labels.count(i) for i in range(len(names)))
        ds = tf.data.Dataset.from_tensor_slices(
            (tf.constant(sub_paths), tf.constant(sub_labels, tf.int32))
        )
        load = _loader(image_size, _CHANNELS[color_mode], interpolation)
        ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE)
        # A file that passed the header check but fails to decode is
        # dropped (logged by tf.data), and repeat/take refill its slot so
        # every epoch has the same, statically known length.
        ds = ds.ignore_errors(log_warning=True).repeat().take(len(sub_paths))
        ds = _pipeline.finish(
            ds,
            num_samples=len(sub_paths),
            num_classes=len(names),
            batch_size=batch_size,
            augment=sub_augment,
            mix=sub_mix,
            cache=sub_cache,
            shuffle=sub_shuffle,
            shuffle_buffer=shuffle_buffer,
            seed=seed,
            label_mode=label_mode,
            drop_remainder=drop_remainder,
        )
        return _pipeline.ImageData(
            dataset=ds,
            class_names=tuple(names),
            class_counts=counts,
            num_samples=len(sub_paths),
            batch_size=batch_size,
            drop_remainder=drop_remainder,
            augment=sub_augment,
            mix=sub_mix,
            file_paths=tuple(sub_paths),
            skipped=tuple(skipped),
        )

    if not validation_split:
        return build(paths, labels, cache, shuffle, augment, mix)
    n_val = int(validation_split * len(paths))
    if n_val == 0 or n_val == len(paths):
        raise ValueError(
            f"`validation_split={validation_split}` of {len(paths)} images "
            "leaves one subset empty."
        )
    split = len(paths) - n_val
    train = lambda: build(  # noqa: E731
        paths[:split], labels[:split], _cache_for(cache, "training"),
        shuffle, augment, mix,
    )
    # Validation data is never augmented, mixed or shuffled.
    val = lambda: build(  # noqa: E731
        paths[split:], labels[split:], _cache_for(cache, "validation"),
        False, None, None,
    )
    if subset == "training":
        return train()
    if subset == "validation":
        return val()
    return train(), val()


def list_image_files(directory, class_names=None):
    """`(class_names, file_paths, labels)` of a class-per-folder directory.

    Image files are found recursively under each class folder (extensions
    `IMAGE_EXTENSIONS`, any case), sorted, so the listing is reproducible.
    """
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise ValueError(
            f"`directory` must be an existing folder. Received: {directory!r}"
        )
    found = sorted(
        d for d in os.listdir(directory)
        if os.path.isdir(os.path.join(directory, d))
    )
    if class_names is None:
        names = found
    else:
        names = list(class_names)
        missing = [n for n in names if n not in found]
        if missing:
            raise ValueError(
                f"`class_names` {missing} are not subfolders of "
                f"{directory!r}. Subfolders: {found}"
            )
    paths, labels = [], []
    for index, name in enumerate(names):
        class_dir = os.path.join(directory, name)
        files = []
        for root, _, filenames in os.walk(class_dir):
            for filename in filenames:
                if filename.lower().endswith(IMAGE_EXTENSIONS):
                    files.append(os.path.join(root, filename))
        files.sort()
        paths.extend(files)
        labels.extend([index] * len(files))
    if not paths:
        raise ValueError(
            f"Found no images in {directory!r}: expected one subfolder per "
            f"class holding {', '.join(IMAGE_EXTENSIONS)} files. "
            f"Subfolders: {found}"
        )
    if len(names) < 2:
        raise ValueError(
            f"Found {len(names)} class folder(s) in {directory!r} "
            f"({names}); classification needs at least 2 classes, one "
            "subfolder each."
        )
    empty = [n for i, n in enumerate(names) if i not in set(labels)]
    if empty:
        _LOG.warning("Class folders with no images in %s: %s", directory, empty)
    return names, paths, labels


def _check_split(validation_split, subset, seed):
    if validation_split is None or validation_split == 0:
        if subset is not None:
            raise ValueError(
                f"`subset={subset!r}` needs `validation_split`. "
                "Received: validation_split=None"
            )
        return
    if not 0 < validation_split < 1:
        raise ValueError(
            "`validation_split` must be in (0, 1). "
            f"Received: validation_split={validation_split!r}"
        )
    if subset not in _SUBSETS:
        raise ValueError(
            f"`subset` must be one of {_SUBSETS} with `validation_split`. "
            f"Received: subset={subset!r}"
        )
    if seed is None:
        raise ValueError(
            "`seed` is required with `validation_split`, so that the "
            "'training' and 'validation' subsets of separate calls are "
            "disjoint. Received: seed=None"
        )


def _cache_for(cache, subset):
    if isinstance(cache, str):
        return f"{cache}-{subset}"
    return cache


def _loader(image_size, channels, interpolation):
    def load(path, label):
        data = tf.io.read_file(path)
        image = tf.io.decode_image(
            data, channels=channels, expand_animations=False
        )
        image.set_shape([None, None, channels])
        image = tf.image.resize(image, image_size, method=interpolation)
        image = tf.cast(
            tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8
        )
        return image, label

    return load


_MAGIC = (
    b"\xff\xd8\xff",  # JPEG
    b"\x89PNG\r\n\x1a\n",
    b"GIF87a",
    b"GIF89a",
    b"BM",
)


def _has_image_header(path):
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError:
        return False
    if head.startswith(_MAGIC):
        return True
    return head[:4] == b"RIFF" and head[8:12] == b"WEBP"


def _undecodable(paths, channels):
    """Paths `tf.io.decode_image` cannot decode (one parallel pass)."""

    def decode(index, path):
        image = tf.io.decode_image(
            tf.io.read_file(path), channels=channels, expand_animations=False
        )
        return index, tf.shape(image)[0]

    ds = tf.data.Dataset.from_tensor_slices(
        (tf.range(len(paths)), tf.constant(paths))
    )
    ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.ignore_errors().map(lambda i, _: i).batch(1024)
    ok = set()
    for batch in ds:
        ok.update(batch.numpy().tolist())
    return [p for i, p in enumerate(paths) if i not in ok]
