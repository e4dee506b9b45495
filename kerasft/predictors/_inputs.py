"""Listing what to predict: image paths, texts, clips, CSV columns.

Inputs, for every predictor:
- a folder: every image file under it, recursively (image models), every
  clip (video files and folders of frames) under it (video models), or
  every `.txt` file, one text each (text models);
- a CSV (or TSV) file: the column `filename` (or `path`, `image`, `file`)
  holds paths, relative to the CSV's folder; text models read the run's
  `text_column` (default `text`);
- any other file: one path, or one text, per line.

Images are decoded by `kerasft.data.images.load_files`, the decoder the
image recipes trained with (same resize), so unreadable files are found
the same way.
"""

import csv
import os

import numpy as np

PATH_COLUMNS = ("filename", "path", "image", "file")


def check_exists(inputs):
    """Raises a `ValueError` when `inputs` does not exist; returns it."""
    inputs = os.fspath(inputs)
    if not os.path.exists(inputs):
        raise ValueError(f"Input {inputs!r} does not exist.")
    return inputs


def image_paths(inputs):
    """Image file paths: a folder's images, a CSV's path column, or lines."""
    from kerasft.data._listing import IMAGE_EXTENSIONS

    inputs = check_exists(inputs)
    if os.path.isdir(inputs):
        found = []
        for root, dirs, files in os.walk(inputs):
            dirs.sort()
            found += [os.path.join(root, f) for f in sorted(files)
                      if f.lower().endswith(IMAGE_EXTENSIONS)]
        if not found:
            raise ValueError(f"No image files ({', '.join(IMAGE_EXTENSIONS)}) "
                             f"under {inputs!r}.")
        return found
    return _listed_paths(inputs)


def clip_paths(inputs):
    """Video clips: a folder's video files and frame folders (a folder of
    frames itself is one clip), a CSV's path column, or lines."""
    from kerasft.data import _video_decode
    from kerasft.data._listing import IMAGE_EXTENSIONS

    inputs = check_exists(inputs)
    if not os.path.isdir(inputs):
        return _listed_paths(inputs)
    if any(f.lower().endswith(IMAGE_EXTENSIONS) for f in os.listdir(inputs)):
        return [inputs]
    clips = _video_decode._clips_under(inputs)
    if not clips:
        raise ValueError(
            f"No clips under {inputs!r}: video files "
            f"({', '.join(_video_decode.VIDEO_EXTENSIONS)}) or folders of "
            "frame images."
        )
    return clips


def texts(inputs, column="text"):
    """Texts: a folder's `.txt` files, a CSV's `column`, or lines."""
    inputs = check_exists(inputs)
    if os.path.isdir(inputs):
        paths = sorted(
            os.path.join(root, f)
            for root, _, files in os.walk(inputs) for f in files
            if f.lower().endswith(".txt")
        )
        if not paths:
            raise ValueError(f"No .txt files under {inputs!r}.")
        out = []
        for p in paths:
            with open(p, encoding="utf-8", errors="replace") as f:
                out.append(f.read().strip())
        return out
    if is_table(inputs):
        return csv_values(inputs, csv_column(inputs, (column or "text",)))
    return lines(inputs)


def is_table(path):
    return os.fspath(path).lower().endswith((".csv", ".tsv"))


def lines(path):
    """The non-blank lines of a text file."""
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\r\n") for line in f if line.strip()]


def csv_header(path):
    with open(path, newline="", encoding="utf-8") as f:
        return next(csv.reader(f, delimiter=_delimiter(path)), [])


def csv_column(path, candidates):
    """The first of `candidates` in the CSV's header; raises naming both."""
    header = csv_header(path)
    for name in candidates:
        if name in header:
            return name
    raise ValueError(
        f"{path!r} has no column {' or '.join(map(repr, candidates))}. "
        f"Columns: {header}"
    )


def csv_rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter=_delimiter(path)))


def csv_values(path, column):
    return [row[column] for row in csv_rows(path)]


def _delimiter(path):
    return "\t" if os.fspath(path).lower().endswith(".tsv") else ","


def _listed_paths(inputs):
    base = os.path.dirname(os.path.abspath(inputs))
    if is_table(inputs):
        values = csv_values(inputs, csv_column(inputs, PATH_COLUMNS))
    else:
        values = lines(inputs)
    return [v if os.path.isabs(v) else os.path.join(base, v) for v in values]


# === Images ===


def image_batches(paths, image_size, channels, batch_size):
    """`(batches, errors)`: `errors` maps an input index to why it was
    skipped; `batches` yields `(uint8 images, input indices, original
    (height, width) sizes)` numpy arrays for the readable ones."""
    from kerasft.data.images import load_files

    if not paths:
        return iter(()), {}
    try:
        loaded = load_files(
            paths, np.arange(len(paths)), tuple(image_size),
            channels=channels or 3, cache=True, where="the inputs",
        )
    except ValueError:  # every file unreadable
        return iter(()), {i: _reason(p) for i, p in enumerate(paths)}
    skipped = set(loaded.skipped)
    errors = {i: _reason(p) for i, p in enumerate(paths) if p in skipped}

    def batches():
        for images, index, size in loaded.dataset.batch(batch_size):
            yield images.numpy(), index.numpy(), size.numpy()

    return batches(), errors


def _reason(path):
    return "missing file" if not os.path.exists(path) else "unreadable image"


def image_input_size(model):
    """`(height, width, channels)` of an image model's input."""
    shape = model.inputs[0].shape
    if len(shape) != 4 or shape[1] is None or shape[2] is None:
        raise ValueError(
            f"{model.name!r} does not take fixed-size images: its input "
            f"shape is {tuple(shape)}."
        )
    return int(shape[1]), int(shape[2]), int(shape[3] or 3)
