"""Image files as fast `tf.data` pipelines: `image_folder` and `image_csv`.

Both list their files, decode each once in parallel (`tf.io.decode_image`,
first frame of animations), resize, cache the images as uint8, and hand
the cache to the pipeline every image source shares (`_pipeline.finish`:
shuffle, batch, augment, prefetch). Files that cannot be decoded are
skipped, named in one warning and kept on the result (`skipped_files`).
"""

import csv
import logging
import os
import random

import numpy as np
import tensorflow as tf

from kerasft.data import _listing
from kerasft.data import _pipeline
from kerasft.data._split import holdout_indices
from kerasft.data._listing import IMAGE_EXTENSIONS  # noqa: F401 (public)
from kerasft.data._listing import list_image_files

_LOG = logging.getLogger("kerasft.data")
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
    epoch=None,
):
    """Loads `directory/<class>/<image>` files as a `tf.data.Dataset`.

    What it returns goes straight into `model.fit`, like
    `keras.utils.image_dataset_from_directory`: batches of float32 images
    in `[0, 255]` (unless `augment` rescales) and int (or one-hot) labels.
    Image files (`IMAGE_EXTENSIONS`, any case) are found recursively under
    each class folder. With a cache (the default), every file is decoded
    once when this is called, filling the cache; files that fail (empty,
    truncated, not an image) are skipped, named in one warning and listed
    in `skipped_files`. Each epoch then shuffles the cached uint8 images,
    batches, augments (after the cache: new augmentations every epoch) and
    prefetches.

    The dataset carries what is known about it as attributes:
    `class_names`, `class_counts`, `num_classes`, `num_samples`,
    `steps_per_epoch`, `batch_size`, `file_paths`, `skipped_files`,
    `augment`, `mix` and `class_weights()` (see `kerasft.data.class_weights`).

    Args:
        directory: folder with one subfolder of images per class (sorted
            names give the label order).
        image_size: `(height, width)`, or one int for squares.
        batch_size: images per batch.
        augment: `None`, a `kerasft.augment.ImageAugmentation`, a dict of
            its (ImageDataGenerator) keyword arguments, `"randaugment"`, or
            any callable/Keras layer taking a float32 image batch.
            Defaults to `None`.
        validation_split: fraction of the images held out, in `(0, 1)`:
            stratified by class where every class has two images or more,
            and at least one image. Needs `subset` and `seed`.
            Defaults to `None`.
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
        check_files: only used with `cache=False`: `"header"` (skip files
            whose first bytes are not an image), `"decode"` (decode every
            file once up front: exact, slower) or `None`. A file that
            passes the header check but fails to decode is then dropped
            (logged by tf.data) and its slot refilled, so epochs keep their
            length. With a cache every file is decoded up front anyway.
            Defaults to `"header"`.
        shuffle_buffer: shuffle buffer size. Defaults to `None` (the whole
            subset: a full permutation every epoch, as ImageDataGenerator).
        epoch: a `tf.Variable` holding the current epoch number (the
            recipes set it when each epoch begins). With it, the shuffle
            order and the augmentation of every batch are pure functions of
            `(seed, epoch, batch)`, so a run resumed mid-training repeats
            an uninterrupted one exactly. Defaults to `None` (new draws on
            every pass, reproducible from `seed` in one process).

    Returns:
        A `tf.data.Dataset` with the attributes above, or a pair
        `(training, validation)` of them for `subset="both"`.

    Example:
    ```python
    train, val = image_folder("flowers/", image_size=(224, 224),
                              batch_size=32, validation_split=0.2,
                              subset="both", seed=1,
                              augment=dict(rotation_range=20,
                                           horizontal_flip=True))
    model.fit(train, validation_data=val, epochs=5,
              class_weight=train.class_weights())
    print(train.class_names, train.skipped_files)
    ```
    """
    names, paths, labels = list_image_files(directory, class_names)
    return image_files(
        paths, labels, names, image_size, batch_size, where=directory,
        augment=augment, validation_split=validation_split, subset=subset,
        seed=seed, cache=cache, shuffle=shuffle, label_mode=label_mode,
        drop_remainder=drop_remainder, mix=mix, color_mode=color_mode,
        interpolation=interpolation, check_files=check_files,
        shuffle_buffer=shuffle_buffer, epoch=epoch,
    )


def image_csv(
    path,
    image_size,
    batch_size,
    image_column="filename",
    label_column="label",
    class_names=None,
    **kwargs,
):
    """Loads the images a CSV file names, with their labels.

    Rows are `filename,label` (column names configurable); file names are
    relative to the CSV's folder. Labels are class names (ids in sorted
    order, or in the order of `class_names`) or integer ids. Everything
    else is as in `image_folder`, whose keyword arguments it takes
    (`augment`, `validation_split`, `subset`, `seed`, `cache`, ...).

    Args:
        path: the CSV file.
        image_size: `(height, width)`, or one int for squares.
        batch_size: images per batch.
        image_column: column of the file names. Defaults to `"filename"`.
        label_column: column of the labels. Defaults to `"label"`.
        class_names: class names in label order. Defaults to `None`
            (sorted names found in the file).
        **kwargs: `image_folder`'s other arguments.

    Returns:
        As `image_folder`.

    Example:
    ```python
    train = image_csv("lesions/train.csv", 224, 32, seed=0)
    ```
    """
    paths, labels, names = read_image_csv(
        path, image_column, label_column, class_names
    )
    return image_files(
        paths, labels, names, image_size, batch_size, where=path, **kwargs
    )


def image_files(
    paths,
    labels,
    class_names,
    image_size,
    batch_size,
    where=None,
    augment=None,
    validation_split=None,
    subset=None,
    seed=None,
    cache=True,
    shuffle=True,
    label_mode="int",
    drop_remainder=None,
    mix=None,
    color_mode="rgb",
    interpolation="bilinear",
    check_files="header",
    shuffle_buffer=None,
    epoch=None,
):
    """The pipeline of `image_folder` over given files and int labels."""
    image_size = _pipeline.check_image_size(image_size)
    _pipeline.check_common(batch_size, label_mode, mix)
    augment = _pipeline.resolve_augment(augment)
    _check_modes(color_mode, check_files)
    _check_split(validation_split, subset, seed)
    paths, labels = list(paths), [int(v) for v in labels]
    held_out = None
    if validation_split:
        # Stratified: every class keeps its share on both sides.
        keep, held_out = holdout_indices(labels, validation_split, seed)
        held_out = [paths[i] for i in held_out], [labels[i] for i in held_out]
        paths, labels = [paths[i] for i in keep], [labels[i] for i in keep]
    # One seeded permutation up front: the cache then holds a mixed order
    # (a class-sorted cache would need a full shuffle buffer). Without
    # shuffle, files keep their given order.
    if shuffle:
        order = list(range(len(paths)))
        random.Random(seed).shuffle(order)
        paths = [paths[i] for i in order]
        labels = [labels[i] for i in order]
    common = dict(
        names=tuple(class_names), image_size=image_size, batch_size=batch_size,
        where=where if where is not None else "the given files",
        channels=_CHANNELS[color_mode], interpolation=interpolation,
        check_files=check_files, shuffle_buffer=shuffle_buffer, seed=seed,
        label_mode=label_mode,
        drop_remainder=_pipeline.resolve_drop_remainder(drop_remainder),
        epoch=epoch,
    )
    if not validation_split:
        return _subset(paths, labels, cache, shuffle, augment, mix, **common)
    train = lambda: _subset(  # noqa: E731
        paths, labels, _cache_for(cache, "training"),
        shuffle, augment, mix, **common,
    )
    # Validation data is never augmented, mixed or shuffled.
    val = lambda: _subset(  # noqa: E731
        *held_out, _cache_for(cache, "validation"),
        False, None, None, **common,
    )
    if subset == "training":
        return train()
    if subset == "validation":
        return val()
    return train(), val()


def _subset(paths, labels, cache, shuffle, augment, mix, *, names, image_size,
            batch_size, where, channels, interpolation, check_files,
            shuffle_buffer, seed, label_mode, drop_remainder, epoch):
    """One subset's files -> decoded, cached -> batches, with its info."""
    loaded = load_files(
        paths, np.asarray(labels, np.int32), image_size, channels=channels,
        interpolation=interpolation, cache=cache, check_files=check_files,
        where=where,
    )
    kept = loaded.targets
    ds = _pipeline.finish(
        loaded.dataset.map(lambda image, label, size: (image, label)),
        num_samples=len(kept),
        num_classes=len(names),
        batch_size=batch_size,
        augment=augment,
        mix=mix,
        cache=False,  # load_files cached the decoded images
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
        class_counts=np.bincount(kept, minlength=len(names)),
        num_samples=len(kept),
        batch_size=batch_size,
        drop_remainder=drop_remainder,
        augment=augment,
        mix=mix,
        file_paths=loaded.paths,
        skipped_files=loaded.skipped,
    )


def _check_modes(color_mode, check_files):
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


class LoadedFiles:
    """Decoded images of `load_files` and which files they came from.

    Attributes:
        dataset: unbatched `(uint8 image, target, original [height, width])`
            elements, cached, in file order.
        paths: the files kept, in that order.
        targets: their targets (numpy, or a tuple of numpy arrays).
        skipped: the files skipped as unreadable.
    """

    def __init__(self, dataset, paths, targets, skipped):
        self.dataset = dataset
        self.paths = paths
        self.targets = targets
        self.skipped = skipped


def load_files(
    paths,
    targets,
    image_size,
    channels=3,
    interpolation="bilinear",
    cache=True,
    check_files="header",
    where=None,
):
    """Decodes image files once into cached uint8 elements; skips bad files.

    With a cache (memory or file) one parallel pass decodes every file and
    fills the cache; the files whose decoding failed are the skipped ones,
    exactly. Without a cache, `check_files` finds them ("header" or
    "decode") and a file that still fails later is dropped and its slot
    refilled, so every pass yields `len(kept)` elements.

    Args:
        paths: image file paths.
        targets: one target per file: an array, or a tuple of arrays.
        image_size: `(height, width)`.
        channels: channels to decode to. Defaults to `3`.
        interpolation: resize method. Defaults to `"bilinear"`.
        cache: `True` (memory), a file path, or `False`. Defaults to `True`.
        check_files: as in `image_folder`. Defaults to `"header"`.
        where: what to name in the warning. Defaults to `None`.

    Returns:
        A `LoadedFiles`.
    """
    paths = [os.fspath(p) for p in paths]
    index = np.arange(len(paths))
    # Only regular files under the size cap are ever opened (a FIFO would
    # block, /dev/zero would fill memory); the others are skipped.
    unsafe = {
        i for i, p in enumerate(paths)
        if _listing.unreadable_file_reason(p) is not None
    }
    if cache is False or cache is None:
        bad = set(unsafe)
        safe = [(i, p) for i, p in enumerate(paths) if i not in unsafe]
        if check_files == "header":
            bad |= {i for i, p in safe if not _has_image_header(p)}
        elif check_files == "decode":
            undecodable = set(_undecodable([p for _, p in safe], channels))
            bad |= {i for i, p in safe if p in undecodable}
        index = np.asarray([i for i in index if i not in bad], np.int64)
    elif not (cache is True or isinstance(cache, str)):
        raise TypeError(
            "`cache` must be True (memory), False or a file path. "
            f"Received: cache={cache!r}"
        )
    else:
        index = np.asarray([i for i in index if i not in unsafe], np.int64)
    take = lambda values: np.asarray(values)[index]  # noqa: E731
    kept_targets = tf.nest.map_structure(take, targets)
    kept_paths = [paths[i] for i in index]
    if not kept_paths:
        raise ValueError(
            f"No readable images in {where!r} (all {len(paths)} files "
            "were unreadable)."
        )
    load = _loader(tuple(image_size), channels, interpolation)
    ds = tf.data.Dataset.from_tensor_slices(
        (index, tf.constant(kept_paths, tf.string), kept_targets)
    )
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE)
    if cache is False or cache is None:
        # A file that passed the check but fails to decode is dropped
        # (logged by tf.data), and repeat/take refill its slot so every
        # pass has the same, statically known length.
        ds = ds.ignore_errors(log_warning=True).repeat().take(len(kept_paths))
    else:
        ds, index = _decode_once(ds, cache, index)
        kept_targets = tf.nest.map_structure(take, targets)
        kept_paths = [paths[i] for i in index]
    kept = set(index.tolist())
    skipped = tuple(p for i, p in enumerate(paths) if i not in kept)
    if skipped:
        shown = ", ".join(skipped[:5]) + (", ..." if len(skipped) > 5 else "")
        _LOG.warning(
            "Skipped %d unreadable image file(s) in %s: %s",
            len(skipped), where or "the given files", shown,
        )
    if not kept_paths:
        raise ValueError(
            f"No readable images in {where!r} (all {len(skipped)} files "
            "were unreadable)."
        )
    ds = ds.map(lambda i, image, target, size: (image, target, size))
    return LoadedFiles(ds, tuple(kept_paths), kept_targets, skipped)


def _decode_once(ds, cache, index):
    """Caches `ds` (memory or file) in one pass that decodes every file;
    returns it and the indices that decoded (the others failed)."""
    ds = ds.ignore_errors()
    ds = ds.cache() if cache is True else ds.cache(cache)
    decoded = set()
    for batch in ds.map(lambda i, *rest: i).batch(4096):
        decoded.update(batch.numpy().tolist())
    return ds, np.asarray([i for i in index if i in decoded], np.int64)


def read_image_csv(path, image_column="filename", label_column="label",
                   class_names=None, columns=None):
    """`(paths, int labels, class_names)` of a `filename,label` CSV file.

    `columns` lists further required columns; the rows are then returned
    too, as `(paths, labels, class_names, rows)`.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ValueError(f"CSV file {path!r} does not exist.")
    required = [image_column, *(columns or ()), label_column]
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        fieldnames = list(reader.fieldnames or [])
        missing = [c for c in required if c not in fieldnames]
        if missing:
            raise ValueError(
                f"CSV file {path!r} has no column(s) {missing}. Its columns: "
                f"{fieldnames}. Expected the header {','.join(required)}."
            )
        rows = list(reader)
    if not rows:
        raise ValueError(f"CSV file {path!r} has no rows.")
    root = os.path.dirname(os.path.abspath(path))
    files = [os.path.join(root, r[image_column]) for r in rows]
    # Paths are followed wherever they point; a dangling or looping symlink
    # is listed and then skipped as unreadable, a missing name is an error.
    missing = [
        (i, f) for i, f in enumerate(files, start=2) if not os.path.lexists(f)
    ]
    if missing:
        line, file = missing[0]
        raise ValueError(
            f"{len(missing)} image file(s) named in {path!r} do not exist, "
            f"e.g. {file!r} (line {line})."
        )
    labels, names = label_ids([r[label_column] for r in rows], class_names)
    if columns:
        return files, labels, names, rows
    return files, labels, names


def label_ids(raw_labels, class_names=None):
    """Integer labels from ids or names: `(ids, class_names)`.

    Names map through `class_names` (sorted names when `None`); ids are
    kept, with `class_names` the ids as strings when not given.
    """
    try:
        ids = np.asarray([int(v) for v in raw_labels], dtype="int64")
    except ValueError:
        ids = None
    if ids is not None:
        names = class_names or [str(i) for i in range(int(ids.max()) + 1)]
        return ids, tuple(names)
    names = list(class_names or sorted(set(raw_labels)))
    lookup = {n: i for i, n in enumerate(names)}
    unknown = sorted(set(raw_labels) - set(lookup))
    if unknown:
        raise ValueError(
            f"Labels {unknown[:5]} are not among the classes {names}."
        )
    return np.asarray([lookup[v] for v in raw_labels], "int64"), tuple(names)


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
    def load(index, path, target):
        data = tf.io.read_file(path)
        image = tf.io.decode_image(
            data, channels=channels, expand_animations=False
        )
        image.set_shape([None, None, channels])
        size = tf.shape(image)[:2]
        image = tf.image.resize(image, image_size, method=interpolation)
        image = tf.cast(
            tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8
        )
        return index, image, target, size

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
