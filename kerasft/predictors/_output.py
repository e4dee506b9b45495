"""What every predictor writes: `Predictions`, an atomic CSV, the files folder.

A predictor writes one CSV (or JSON lines) file with a row per input, and
puts any extra files (overlays, masks) in a folder next to it named after
its stem: `predictions.csv` -> `predictions/`. Files are written to a
temporary name in the same folder and moved into place (`os.replace`), so a
reader never sees half a file.
"""

import csv
import dataclasses
import json
import os
import sys

# Longest input text shown in the `input` column.
_SHOWN = 200


@dataclasses.dataclass
class Predictions:
    """What a predictor wrote.

    Attributes:
        output: the CSV (or JSON lines) path.
        rows: one dict per input (per box for detection), as written.
        unreadable: `[(input, reason)]` for the inputs that were skipped.
        files: every file written, `output` first.
    """

    output: str
    rows: list
    unreadable: list
    files: list = dataclasses.field(default_factory=list)


def check_options(top_k, batch_size):
    """Raises a `ValueError` on a bad `top_k` or `batch_size`."""
    if top_k is not None and (
        isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1
    ):
        raise ValueError(f"`top_k` must be a positive int. Received: top_k={top_k!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(
            f"`batch_size` must be a positive int. Received: batch_size={batch_size!r}"
        )


def refuse_top_k(top_k, what):
    """Raises when `top_k` is given to a predictor without classes to rank."""
    if top_k is not None:
        raise ValueError(
            f"`top_k` ranks classes; {what} has none to rank. "
            f"Received: top_k={top_k!r}. Leave it out."
        )


def files_folder(output):
    """The folder of a prediction file's extra files: `p.csv` -> `p/`."""
    root, _ = os.path.splitext(os.path.abspath(os.fspath(output)))
    os.makedirs(root, exist_ok=True)
    return root


def shown(item):
    """An input as the `input` column shows it (long texts cut)."""
    text = str(item)
    return text if len(text) < _SHOWN else text[: _SHOWN - 3] + "..."


def _atomic_open(path, mode="w"):
    path = os.fspath(path)
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    kwargs = {} if "b" in mode else {"newline": "", "encoding": "utf-8"}
    return tmp, open(tmp, mode, **kwargs)


def write_csv(path, rows, columns=None):
    """Writes `rows` (dicts) as CSV, atomically; returns `path`.

    Columns are `columns`, else every key in first-seen order; `error` is
    always present and always last, empty on the rows that went well.
    """
    if columns is None:
        columns = []
        for row in rows:
            columns += [k for k in row if k not in columns]
    columns = [c for c in columns if c != "error"] + ["error"]
    tmp, f = _atomic_open(path)
    try:
        with f:
            writer = csv.DictWriter(f, fieldnames=columns, restval="")
            writer.writeheader()
            writer.writerows(
                {**row, "error": row.get("error") or ""} for row in rows
            )
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return os.fspath(path)


def write_json_lines(path, rows):
    """Writes one JSON object per row, atomically; returns `path`."""
    tmp, f = _atomic_open(path)
    try:
        with f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return os.fspath(path)


def write_table(path, rows, columns=None):
    """`write_json_lines` for a `.jsonl`/`.json` path, else `write_csv`."""
    if os.fspath(path).lower().endswith((".jsonl", ".json")):
        return write_json_lines(path, rows)
    return write_csv(path, rows, columns)


def save_png(path, array, palette=None):
    """Writes a uint8 image (or a palette image of class ids) atomically."""
    from PIL import Image

    import numpy as np

    image = Image.fromarray(np.asarray(array, np.uint8))
    if palette is not None:  # "L" -> "P": the pixel values stay the ids
        image.putpalette(palette)
    tmp, f = _atomic_open(path, "wb")
    try:
        with f:
            image.save(f, format="PNG")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return os.fspath(path)


def progress(total, verbose):
    """A Keras progress bar over `total` inputs (silent with `verbose=0`)."""
    import keras

    # Keras redraws its bar with control characters even when stdout is a
    # file or a pipe; there, one line at the end (verbose=2) instead.
    mode = 0 if not verbose else (1 if _isatty(sys.stdout) else 2)
    return keras.utils.Progbar(total, verbose=mode, unit_name="input")


def _isatty(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def finish(output, rows, unreadable, files, verbose, columns=None):
    """Writes the table, reports unreadable inputs; returns `Predictions`."""
    write_table(output, rows, columns)
    if unreadable and verbose:
        print(f"{len(unreadable)} unreadable input(s), listed in the `error` "
              "column:", file=sys.stderr)
        for item, reason in unreadable:
            print(f"  {item}: {reason}", file=sys.stderr)
    return Predictions(os.fspath(output), rows, unreadable,
                       [os.fspath(output), *files])
