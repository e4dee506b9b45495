"""Image sources for the recipes, each checked before any training.

A source is one of: `(images, labels)` arrays; an unbatched or batched
`tf.data.Dataset` of `(image, label)`; a folder with one sub-folder per class;
a CSV file of `filename,label` rows (paths relative to the CSV's folder); or
`"tfds:NAME[:SPLIT]"` for tensorflow-datasets. Every source becomes an
unbatched dataset of `(float32 image in [0, 255] at image_size, int label)`.
"""

import csv
import os

import numpy as np
import tensorflow as tf

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")


class Source:
    """Unbatched `(image, label)` data with what is known about it.

    Array and file sources keep their `elements` (`(x, y)` arrays, or
    `(paths, labels)`) and the per-element `transform`, so a pipeline can
    visit them in any order (`shuffled`); other datasets only in theirs.
    """

    def __init__(self, dataset=None, labels=None, class_names=None,
                 num_classes=None, elements=None, transform=None):
        self._dataset = dataset
        self.labels = labels  # numpy int labels when cheap to know
        self.class_names = class_names
        self.num_classes = num_classes
        self.elements = elements
        self.transform = transform

    @property
    def dataset(self):
        """The elements in their order, transformed."""
        if self._dataset is not None:
            return self._dataset
        ds = tf.data.Dataset.from_tensor_slices(self.elements)
        if self.transform is None:
            return ds
        return ds.map(self.transform, num_parallel_calls=tf.data.AUTOTUNE)

    def shuffled(self, seed, epoch_variable):
        """The elements in an order fixed by `(seed, epoch_variable)`.

        A stateless permutation of the indices: epoch `e` sees the same order
        in every process, so a resumed run repeats an uninterrupted one.
        Sources without random access fall back to `Dataset.shuffle` with a
        fixed seed (reshuffled each epoch, not reproducible across restarts).
        """
        if self.elements is None:
            n = int(self._dataset.cardinality())
            buffer_size = n if 0 < n <= 10000 else 10000
            return self._dataset.shuffle(buffer_size, seed=seed)
        elements = tf.nest.map_structure(tf.convert_to_tensor, self.elements)
        n = int(tf.nest.flatten(elements)[0].shape[0])

        def permutation(_):
            seeds = tf.stack(
                [tf.constant(seed, "int64"), epoch_variable.read_value()]
            )
            return tf.random.experimental.stateless_shuffle(
                tf.range(n, dtype="int64"), seed=seeds
            )

        ds = tf.data.Dataset.from_tensors(0).map(permutation).unbatch()
        ds = ds.apply(tf.data.experimental.assert_cardinality(n))
        ds = ds.map(
            lambda i: tf.nest.map_structure(lambda e: tf.gather(e, i), elements)
        )
        if self.transform is None:
            return ds
        return ds.map(self.transform, num_parallel_calls=tf.data.AUTOTUNE)


def _resize(image_size, channels=3):
    size = list(image_size)

    def fn(image, label):
        image = tf.cast(image, "float32")
        if image.shape.rank == 2:
            image = image[..., None]
        if image.shape[-1] == 1 and channels == 3:
            image = tf.image.grayscale_to_rgb(image)
        if tuple(image.shape[:2]) != tuple(size):
            image = tf.image.resize(image, size)
        return image, label

    return fn


def _decode(path, label, image_size):
    data = tf.io.read_file(path)
    image = tf.io.decode_image(data, channels=3, expand_animations=False)
    image = tf.image.resize(tf.cast(image, "float32"), list(image_size))
    image.set_shape(tuple(image_size) + (3,))
    return image, label


def check_columns(path, fieldnames, required):
    """`ValueError` naming the CSV and its columns when some are missing."""
    missing = [c for c in required if c not in (fieldnames or [])]
    if missing:
        raise ValueError(
            f"CSV file {path!r} has no column(s) {missing}. Its columns: "
            f"{list(fieldnames or [])}. Expected the header "
            f"{','.join(required)}."
        )


def label_ids(raw_labels, class_names=None):
    """Integer labels from ints or strings; `(ids, class_names)`."""
    try:
        ids = np.asarray([int(v) for v in raw_labels], dtype="int64")
        return ids, class_names
    except ValueError:
        pass
    names = class_names or sorted(set(raw_labels))
    index = {n: i for i, n in enumerate(names)}
    unknown = sorted(set(raw_labels) - set(index))
    if unknown:
        raise ValueError(
            f"Labels {unknown[:5]} are not among the training classes {names}."
        )
    return np.asarray([index[v] for v in raw_labels], dtype="int64"), list(names)


def from_csv(path, image_size, class_names=None, image_column="filename",
             label_column="label"):
    if not os.path.exists(path):
        raise ValueError(f"CSV file {path!r} does not exist.")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        check_columns(path, reader.fieldnames, [image_column, label_column])
        rows = list(reader)
    if not rows:
        raise ValueError(f"CSV file {path!r} has no rows.")
    root = os.path.dirname(os.path.abspath(path))
    files = [os.path.join(root, r[image_column]) for r in rows]
    missing = [f for f in files if not os.path.exists(f)]
    if missing:
        raise ValueError(
            f"{len(missing)} image file(s) named in {path!r} do not exist, "
            f"e.g. {missing[0]!r}."
        )
    labels, names = label_ids([r[label_column] for r in rows], class_names)
    return Source(
        labels=labels,
        class_names=names,
        elements=(np.asarray(files), labels),
        transform=lambda p, y: _decode(p, y, image_size),
    )


def from_folder(path, image_size, class_names=None):
    classes = sorted(
        d for d in os.listdir(path) if os.path.isdir(os.path.join(path, d))
    )
    if len(classes) < 2:
        raise ValueError(
            f"Image folder {path!r} must hold one sub-folder per class (at "
            f"least 2). Found: {classes}"
        )
    if class_names is not None and list(class_names) != classes:
        raise ValueError(
            f"Classes of {path!r} ({classes}) differ from the training "
            f"classes ({list(class_names)})."
        )
    files, labels = [], []
    for i, name in enumerate(classes):
        folder = os.path.join(path, name)
        for f in sorted(os.listdir(folder)):
            if f.lower().endswith(IMAGE_EXTENSIONS):
                files.append(os.path.join(folder, f))
                labels.append(i)
    if not files:
        raise ValueError(f"Image folder {path!r} holds no images.")
    labels = np.asarray(labels, dtype="int64")
    return Source(
        labels=labels,
        class_names=classes,
        elements=(np.asarray(files), labels),
        transform=lambda p, y: _decode(p, y, image_size),
    )


def from_tfds(spec, image_size, default_split):
    parts = spec.split(":")
    name = parts[1]
    split = parts[2] if len(parts) > 2 else default_split
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise ValueError(
            f"{spec!r} needs tensorflow-datasets (pip install "
            "tensorflow-datasets)."
        ) from None
    ds, info = tfds.load(name, split=split, as_supervised=True, with_info=True)
    label = info.features["label"]
    ds = ds.map(_resize(image_size), num_parallel_calls=tf.data.AUTOTUNE)
    return Source(
        ds.cache(),
        None,
        list(getattr(label, "names", None) or []) or None,
        getattr(label, "num_classes", None),
    )


def from_arrays(x, y, image_size, channels=3):
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim not in (3, 4):
        raise ValueError(
            "Images must be an array of shape (N, height, width[, channels])."
            f" Received shape {x.shape}"
        )
    if len(x) != len(y):
        raise ValueError(
            f"Images and labels differ in length: {len(x)} != {len(y)}."
        )
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(
            "Labels must be a 1-D array of integer class ids. Received "
            f"shape {y.shape}, dtype {y.dtype}"
        )
    y = y.astype("int64")
    return Source(
        labels=y, elements=(x, y), transform=_resize(image_size, channels)
    )


def from_dataset(ds, image_size, channels=3):
    spec = ds.element_spec
    if not isinstance(spec, tuple) or len(spec) < 2:
        raise ValueError(
            "A dataset must yield (image, label) pairs. Received element "
            f"spec {spec}"
        )
    if spec[0].shape.rank == 4:
        ds = ds.unbatch()
    ds = ds.map(lambda x, y, *rest: (x, y))
    labels = np.fromiter(
        (int(v) for v in ds.map(lambda x, y: y).as_numpy_iterator()),
        dtype="int64",
    )
    ds = ds.map(_resize(image_size, channels)).apply(
        tf.data.experimental.assert_cardinality(len(labels))
    )
    return Source(ds, labels)


def image_source(value, image_size, class_names=None, default_split="train",
                 channels=3):
    """A `Source` from any supported value; `ValueError` for others.

    Arrays and datasets keep one-channel images when `channels` is 1 and
    turn them to RGB otherwise; files are decoded as RGB.
    """
    if value is None:
        return None
    if isinstance(value, tuple) and len(value) == 2:
        return from_arrays(value[0], value[1], image_size, channels)
    if isinstance(value, tf.data.Dataset):
        return from_dataset(value, image_size, channels)
    if isinstance(value, str):
        if value.startswith("tfds:"):
            return from_tfds(value, image_size, default_split)
        if os.path.isdir(value):
            return from_folder(value, image_size, class_names)
        if value.lower().endswith(".csv"):
            return from_csv(value, image_size, class_names)
        raise ValueError(
            f"Data source {value!r} is not a folder, a .csv file or "
            "'tfds:NAME'."
        )
    raise TypeError(
        "Data must be a folder, a CSV path, 'tfds:NAME', a tf.data.Dataset "
        f"or (images, labels) arrays. Received: {type(value).__name__}"
    )


def check_labels(source, num_classes, what):
    """`ValueError` when labels fall outside `[0, num_classes)`."""
    if source is None or source.labels is None or not len(source.labels):
        return
    low, high = int(source.labels.min()), int(source.labels.max())
    if low < 0 or high >= num_classes:
        bad = sorted(set(source.labels[(source.labels < 0) | (source.labels >= num_classes)].tolist()))
        raise ValueError(
            f"{what} labels {bad[:10]} are outside [0, num_classes) with "
            f"num_classes={num_classes}. Set num_classes to the number of "
            "classes, or fix the labels."
        )


def split(source, fraction, seed):
    """Splits a random-access source into (train, validation) sources."""
    if source.elements is None:
        raise ValueError(
            "`validation_split` needs arrays, a folder or a CSV as `train`; "
            "pass `validation` for other data."
        )
    n = len(source.labels)
    order = np.random.RandomState(seed).permutation(n)
    n_val = max(1, int(round(n * fraction)))

    def take(indices):
        indices = np.sort(indices)
        return Source(
            labels=source.labels[indices],
            class_names=source.class_names,
            num_classes=source.num_classes,
            elements=tuple(np.asarray(e)[indices] for e in source.elements),
            transform=source.transform,
        )

    return take(order[n_val:]), take(order[:n_val])
