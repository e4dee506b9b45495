"""Images with captions: a CSV of `image,caption` rows or COCO-captions JSON.

`read_captions` reads and checks the annotations before anything decodes
(missing images, missing columns, empty captions fail with the rows named);
`load_caption_images` decodes every image once into cached uint8 tensors
through `kerasft.data.images.load_files` (unreadable files skipped and
reported); `caption_batches` pairs each image with one of its captions per
epoch for teacher forcing, in an order and a caption choice that are pure
functions of `(seed, epoch)`, so a resumed run sees the same batches.
"""

import csv
import dataclasses
import json
import os

import numpy as np
import tensorflow as tf

from kerasft.data import _pipeline

__all__ = [
    "CaptionImages",
    "CaptionTable",
    "caption_batches",
    "image_batches",
    "load_caption_images",
    "readable_images",
    "read_captions",
]

_SHOWN = 5


@dataclasses.dataclass(frozen=True)
class CaptionTable:
    """Images and their reference captions.

    Attributes:
        image_paths: image files, one per image.
        captions: for each image, a tuple of its captions (at least one).
        source: where the table was read from (for messages).
    """

    image_paths: tuple
    captions: tuple
    source: str = "captions"

    def __len__(self):
        return len(self.image_paths)

    @property
    def num_captions(self):
        return sum(len(c) for c in self.captions)

    def take(self, indices):
        """The table of the images at `indices`."""
        indices = [int(i) for i in indices]
        return CaptionTable(
            tuple(self.image_paths[i] for i in indices),
            tuple(self.captions[i] for i in indices),
            self.source,
        )


def read_captions(source, image_dir=None, image_column="image",
                  caption_column="caption"):
    """Reads a caption CSV or a COCO-captions JSON file into a `CaptionTable`.

    A CSV has one `image,caption` row per caption (an image may have many
    rows); a COCO JSON has `images` (`id`, `file_name`) and `annotations`
    (`image_id`, `caption`). Image paths are relative to `image_dir`, or to
    the annotation file's folder when `image_dir` is `None`. Images keep the
    order of their first appearance; COCO images without any caption are
    left out.

    Args:
        source: a `.csv` or `.json` path; in Python also a list of
            `(image_path, caption)` pairs.
        image_dir: folder the image paths are relative to. Defaults to
            `None` (the annotation file's folder).
        image_column: the CSV column of image paths. Defaults to `"image"`.
        caption_column: the CSV column of captions. Defaults to `"caption"`.

    Returns:
        A `CaptionTable`.

    Raises:
        ValueError: the file or a column is missing, a caption is empty, an
            annotation names an unknown image, or image files do not exist
            (the first few and their count are named).

    Example:
    ```python
    table = kerasft.data.read_captions("captions.csv")
    print(len(table), table.captions[0])
    ```
    """
    if isinstance(source, (list, tuple)):
        pairs, where = _checked_pairs(source), "the given pairs"
        root = image_dir or os.getcwd()
    else:
        where = os.fspath(source)
        if not os.path.isfile(where):
            raise ValueError(f"Caption file {where!r} does not exist.")
        root = image_dir or os.path.dirname(os.path.abspath(where))
        if where.lower().endswith(".json"):
            pairs = _coco_pairs(where)
        elif where.lower().endswith((".csv", ".tsv")):
            pairs = _csv_pairs(where, image_column, caption_column)
        else:
            raise ValueError(
                "`source` must be a .csv of image,caption rows or a COCO "
                f"captions .json file. Received: source={where!r}"
            )
    by_image = {}
    for image, caption in pairs:
        by_image.setdefault(os.path.join(root, image), []).append(caption)
    if not by_image:
        raise ValueError(f"{where!r} holds no captions.")
    missing = [p for p in by_image if not os.path.isfile(p)]
    if missing:
        shown = ", ".join(repr(p) for p in missing[:_SHOWN])
        raise ValueError(
            f"{len(missing)} of {len(by_image)} image file(s) named in "
            f"{where!r} do not exist, e.g. {shown}. Image paths are read "
            f"relative to {root!r}; pass `image_dir` if they live elsewhere."
        )
    return CaptionTable(
        tuple(by_image), tuple(tuple(c) for c in by_image.values()), where
    )


def _checked_pairs(pairs):
    out = []
    for i, pair in enumerate(pairs):
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
            raise ValueError(
                "Caption pairs must be (image_path, caption) tuples. "
                f"Received: {pair!r} at position {i}"
            )
        out.append((os.fspath(pair[0]), _caption(pair[1], f"pair {i}")))
    return out


def _caption(text, where):
    if not isinstance(text, str) or not text.strip():
        raise ValueError(
            f"Captions must be non-empty strings. Received: {text!r} ({where})."
        )
    return " ".join(text.split())


def _csv_pairs(path, image_column, caption_column):
    delimiter = "\t" if path.lower().endswith(".tsv") else ","
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f, delimiter=delimiter)
        columns = list(reader.fieldnames or [])
        missing = [c for c in (image_column, caption_column) if c not in columns]
        if missing:
            raise ValueError(
                f"Caption file {path!r} has no column(s) {missing}. Its "
                f"columns: {columns}. Expected the header "
                f"{image_column},{caption_column} (or pass `image_column` / "
                "`caption_column`)."
            )
        return [
            (row[image_column], _caption(row[caption_column], f"{path}, line {line}"))
            for line, row in enumerate(reader, start=2)
        ]


def _coco_pairs(path):
    with open(path) as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path!r} is not JSON: {e}") from None
    if not isinstance(data, dict) or not {"images", "annotations"} <= set(data):
        found = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise ValueError(
            f"COCO captions file {path!r} needs 'images' and 'annotations'. "
            f"Found: {found}"
        )
    files = {image["id"]: image["file_name"] for image in data["images"]}
    pairs = []
    for i, note in enumerate(data["annotations"]):
        if note.get("image_id") not in files:
            raise ValueError(
                f"Annotation {i} of {path!r} names image_id="
                f"{note.get('image_id')!r}, which is not among its images."
            )
        pairs.append((files[note["image_id"]],
                      _caption(note.get("caption"), f"{path}, annotation {i}")))
    return pairs


class CaptionImages:
    """Decoded images of a `CaptionTable` (see `load_caption_images`).

    Attributes:
        table: the images kept (unreadable ones left out).
        dataset: unbatched `(uint8 image, index into table)`, cached.
        skipped: image files skipped as unreadable.
    """

    def __init__(self, table, dataset, skipped):
        self.table = table
        self.dataset = dataset
        self.skipped = tuple(skipped)


def load_caption_images(table, image_size, cache=True):
    """Decodes `table`'s images once (uint8, cached); skips unreadable ones.

    Args:
        table: a `CaptionTable`.
        image_size: `(height, width)`.
        cache: `True` (memory), a file path, or `False`. Defaults to `True`.

    Returns:
        A `CaptionImages`.
    """
    from kerasft.data.images import load_files

    loaded = load_files(
        table.image_paths, np.arange(len(table), dtype="int64"), image_size,
        cache=cache, where=table.source,
    )
    kept = table.take(np.asarray(loaded.targets))
    # Renumber: the element's index is its position among the kept images.
    positions = {int(old): new for new, old in enumerate(loaded.targets)}
    lookup = tf.constant([positions.get(i, -1) for i in range(len(table))],
                         tf.int64)
    ds = loaded.dataset.map(lambda image, i, size: (image, tf.gather(lookup, i)))
    return CaptionImages(kept, ds, loaded.skipped)


def readable_images(table):
    """`(table of readable images, skipped files)`: the images
    `tf.io.decode_image` cannot decode left out (one parallel decode pass),
    named in one warning.

    Split a table after this, so that skipping never empties a held-out
    part (one corrupt image drawn alone into validation).

    Args:
        table: a `CaptionTable`.

    Returns:
        `(CaptionTable, tuple of skipped paths)`.

    Raises:
        ValueError: when no image of `table` is readable.
    """
    import logging

    from kerasft.data.images import _undecodable

    paths = [os.fspath(p) for p in table.image_paths]
    bad = set(_undecodable(paths, 3))
    if not bad:
        return table, ()
    skipped = tuple(p for p in paths if p in bad)
    if len(skipped) == len(paths):
        raise ValueError(
            f"No readable images in {table.source!r} (all {len(paths)} files "
            "were unreadable)."
        )
    shown = ", ".join(skipped[:5]) + (", ..." if len(skipped) > 5 else "")
    logging.getLogger("kerasft.data").warning(
        "Skipped %d unreadable image file(s) in %s: %s",
        len(skipped), table.source, shown,
    )
    kept = [i for i, p in enumerate(paths) if p not in bad]
    return table.take(kept), skipped


def _flat_tokens(token_ids):
    """`(rows [captions, length], offsets [images + 1])` of per-image ids."""
    counts = [len(ids) for ids in token_ids]
    flat = np.concatenate([np.asarray(ids, "int32") for ids in token_ids])
    return tf.constant(flat), tf.constant(np.cumsum([0, *counts]), tf.int64)


def caption_batches(images, token_ids, batch_size, shuffle=True, seed=0,
                    epoch=None, drop_remainder=False, captions="random",
                    augment=None):
    """Teacher-forcing batches: `({"image", "tokens"}, next tokens, weights)`.

    Every pass visits each image once with one of its captions: a random
    one (`captions="random"`, drawn from `(seed, epoch)` and the image) or
    its first (`"first"`, for validation loss). `tokens` are a caption's ids
    without the last, the targets the ids shifted by one, weighted 0 on
    padding (id 0). With `augment`, every batch's images are transformed
    after batching, with a seed folded from the pass's seed and the batch
    index (as `kerasft.data.image_folder` augments), so a resumed run sees
    the same pixels.

    Args:
        images: a `CaptionImages`.
        token_ids: for each image of `images.table`, an int array
            `[its captions, length + 1]` (start and end tokens packed).
        batch_size: images per batch.
        shuffle: shuffle the images every pass. Defaults to `True`.
        seed: seed of the order and the caption choice. Defaults to `0`.
        epoch: a `tf.Variable` holding the epoch (resumable order), or
            `None` (a fresh draw per pass). Defaults to `None`.
        drop_remainder: drop the last partial batch. Defaults to `False`.
        captions: `"random"` or `"first"`. Defaults to `"random"`.
        augment: `None`, a `kerasft.augment.ImageAugmentation`, a dict of
            its (ImageDataGenerator) arguments, `"randaugment"` or a
            callable on image batches. Defaults to `None`.

    Returns:
        A `tf.data.Dataset`.
    """
    if captions not in ("random", "first"):
        raise ValueError(
            "`captions` must be 'random' or 'first'. Received: "
            f"captions={captions!r}"
        )
    if len(token_ids) != len(images.table):
        raise ValueError(
            f"`token_ids` must hold one array per image: {len(images.table)}. "
            f"Received: {len(token_ids)}"
        )
    rows, offsets = _flat_tokens(token_ids)
    n = len(images.table)
    augment = _pipeline.resolve_augment(augment)

    def transform(step_seed, image, ids):
        if hasattr(augment, "augment"):  # stateless: exact resume
            image = augment.augment(tf.cast(image, tf.float32),
                                    _pipeline._fold(step_seed, 0))
        elif augment is not None:
            image = _pipeline._call_augment(augment, image)
        return _teacher_forcing(image, ids)

    def pick(epoch_seed, image, index):
        start, stop = offsets[index], offsets[index + 1]
        if captions == "first":
            row = start
        else:
            draw = tf.random.stateless_uniform(
                [], _pipeline._fold(epoch_seed, index), 0, 2**31 - 1, tf.int64
            )
            row = start + draw % (stop - start)
        ids = tf.gather(rows, row)
        return image, ids

    def one_epoch(epoch_seed):
        elements = images.dataset
        if shuffle:
            elements = _pipeline.shuffled(elements, n, epoch_seed)
        elements = elements.map(lambda image, i: pick(epoch_seed, image, i))
        batched = elements.batch(batch_size, drop_remainder=drop_remainder)
        return batched.enumerate().map(
            lambda step, batch: transform(
                _pipeline._fold(epoch_seed, step), batch[0], batch[1]
            )
        )

    steps = n // batch_size if drop_remainder else -(-n // batch_size)
    ds = _pipeline.epoch_seeds(seed, epoch).flat_map(one_epoch)
    ds = ds.apply(tf.data.experimental.assert_cardinality(steps))
    return ds.prefetch(tf.data.AUTOTUNE)


def _teacher_forcing(image, ids):
    targets = ids[:, 1:]
    weights = tf.cast(tf.not_equal(targets, 0), tf.float32)
    return (
        {"image": tf.cast(image, tf.float32), "tokens": ids[:, :-1]},
        targets,
        weights,
    )


def image_batches(images, batch_size):
    """`images`' pictures as float32 batches, in table order."""
    return (
        images.dataset.map(lambda image, i: tf.cast(image, tf.float32))
        .batch(batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )
