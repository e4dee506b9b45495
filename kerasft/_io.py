"""Atomic output files and run folders for the recipes.

Every final file of a run is written to a temporary file in the same folder,
flushed and fsynced, then moved over the target with `os.replace`, which is
atomic on POSIX and Windows: a run killed at any moment leaves either the old
good file or the new good file, never a half-written one.

A run folder holds `config.json`. Starting a run in a folder that holds a
different config is refused (unless `overwrite=True`); the same config
resumes from `backup/`, and a completed run (its `metrics.json` present) is
reported as complete.
"""

import contextlib
import csv
import io
import json
import os
import shutil
import tempfile

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.csv"
MODEL_FILE = "model.keras"
BACKUP_DIR = "backup"
LOGS_DIR = "logs"

# Outputs a run may leave; `overwrite=True` removes exactly these.
RUN_OUTPUTS = (
    CONFIG_FILE,
    METRICS_FILE,
    HISTORY_FILE,
    MODEL_FILE,
    BACKUP_DIR,
    LOGS_DIR,
    "training_curves.png",
    "confusion_matrix.png",
    "labels.json",
)
# Config keys that do not change what a run computes.
_RUN_ONLY_KEYS = ("verbose", "output_dir")


def _fsync_dir(directory):
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. Windows: directories cannot be opened
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path next to `path`; moves it over `path` on success.

    The temporary name keeps `path`'s suffix (Keras checks `.keras` and
    `.weights.h5` endings). On an exception the temporary file is removed and
    `path` is left untouched.

    Example:
    >>> with atomic_path("/tmp/kerasft_example.txt") as tmp:
    ...     with open(tmp, "w") as f:
    ...         _ = f.write("done")
    """
    directory = os.path.dirname(os.path.abspath(path)) or "."
    os.makedirs(directory, exist_ok=True)
    base = os.path.basename(path)
    suffix = ".weights.h5" if base.endswith(".weights.h5") else (
        os.path.splitext(base)[1]
    )
    fd, tmp = tempfile.mkstemp(
        prefix=f".{base}.", suffix=f".tmp{suffix}", dir=directory
    )
    os.close(fd)
    os.remove(tmp)  # writers such as h5py/zipfile want to create the file
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(directory)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_text(path, text):
    """Writes `text` to `path` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)


def write_json(path, obj):
    """Writes `obj` as indented, key-sorted JSON to `path` atomically."""
    write_text(path, json.dumps(to_jsonable(obj), indent=2, sort_keys=True) + "\n")


def write_history_csv(path, history):
    """Writes a Keras `History.history` dict as CSV (`epoch,<metrics...>`)."""
    keys = sorted(history)
    n = max((len(history[k]) for k in keys), default=0)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["epoch"] + keys)
    for i in range(n):
        row = [i]
        for k in keys:
            values = history[k]
            row.append(float(values[i]) if i < len(values) else "")
        writer.writerow(row)
    write_text(path, buffer.getvalue())


def read_history_csv(path):
    """Reads a CSV written by `write_history_csv` back into a dict."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return {}
    keys = [k for k in rows[0] if k != "epoch"]
    return {k: [float(r[k]) for r in rows if r[k] != ""] for k in keys}


def save_model(model, path):
    """`model.save(path)` through a temporary file and `os.replace`."""
    with atomic_path(path) as tmp:
        model.save(tmp)


def to_jsonable(obj):
    """Plain JSON data from numpy scalars/arrays, tuples and nested dicts."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if hasattr(obj, "tolist"):  # numpy scalar or array
        return obj.tolist()
    if isinstance(obj, float) and obj != obj:  # NaN is not JSON
        return None
    return obj


def _comparable(config):
    return {k: v for k, v in config.items() if k not in _RUN_ONLY_KEYS}


def prepare_run_folder(output_dir, config, overwrite=False):
    """Checks `output_dir` against `config`; returns the run's state.

    Args:
        output_dir: the run folder (created when missing).
        config: the run's config as plain JSON data.
        overwrite: remove a previous run's outputs instead of refusing.

    Returns:
        `"new"`, `"resume"` (same config, not finished) or `"complete"`
        (same config, `metrics.json` present).

    Raises:
        ValueError: the folder holds another run (a different `config.json`)
            or files that are not a kerasft run, and `overwrite` is False.
    """
    config = to_jsonable(config)
    config_path = os.path.join(output_dir, CONFIG_FILE)
    if overwrite:
        clear_run_outputs(output_dir)
    if os.path.exists(config_path):
        with open(config_path) as f:
            try:
                previous = json.load(f)
            except json.JSONDecodeError:
                previous = None
        if previous is None or _comparable(previous) != _comparable(config):
            changed = sorted(
                k
                for k in set(_comparable(previous or {})) | set(_comparable(config))
                if (previous or {}).get(k) != config.get(k)
            )
            raise ValueError(
                f"Output folder {output_dir!r} holds another run (its "
                f"config.json differs in: {changed}). Pass overwrite=True "
                "(--overwrite) to replace it, or choose another folder."
            )
        if os.path.exists(os.path.join(output_dir, METRICS_FILE)):
            return "complete"
        return "resume"
    if os.path.isdir(output_dir) and any(
        name in RUN_OUTPUTS for name in os.listdir(output_dir)
    ):
        raise ValueError(
            f"Output folder {output_dir!r} holds outputs of a run without "
            "its config.json. Pass overwrite=True (--overwrite) to replace "
            "them, or choose another folder."
        )
    return "new"


def clear_run_outputs(output_dir):
    """Removes the files and folders a run writes (only those)."""
    if not os.path.isdir(output_dir):
        return
    for name in RUN_OUTPUTS:
        path = os.path.join(output_dir, name)
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)
    for name in os.listdir(output_dir):
        if name.startswith(".worker-"):
            shutil.rmtree(os.path.join(output_dir, name), ignore_errors=True)


def worker_dir(output_dir, chief, task_type="worker", task_id=0):
    """Where this process writes: `output_dir` for the chief, else a
    hidden per-worker folder inside it that the recipe removes at the end."""
    if chief:
        return output_dir
    return os.path.join(output_dir, f".worker-{task_type}-{task_id}")
