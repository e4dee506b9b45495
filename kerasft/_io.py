"""Atomic output files and run folders for the recipes.

Every final file of a run is written to a temporary file in the same folder,
flushed and fsynced, then moved over the target with `os.replace`, which is
atomic on POSIX and Windows: a run killed at any moment leaves either the old
good file or the new good file, never a half-written one.

A run folder holds `config.json`: the run's options and a fingerprint of
its data (`RecipeConfig.identity`). Starting a run in a folder:

- that holds the same options and data: the run resumes from `backup/`
  after the last completed epoch, or, when `metrics.json` is there, the
  completed run is reused (one line says so, even with `verbose=0`);
- that holds a run which never completed an epoch (no `backup/` checkpoint,
  `model.keras` or `metrics.json`: a run that crashed early leaves only
  `config.json` and `logs/`): it holds nothing to lose, so it is replaced,
  and one line says so;
- that holds a run with other options, or the same options on other data
  (files added, removed or changed), which completed at least an epoch:
  refused, unless `overwrite=True` (`--overwrite`), which removes that
  run's outputs (only those) and trains again.
"""

import contextlib
import contextvars
import csv
import glob
import io
import json
import os
import shutil
import sys
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
    # kerasft.exporting.RUN_EXPORTS (the `export` option)
    "model_saved_model",
    "model.tflite",
    "model.labels.json",
    # kerasft.recipes._generative (seq2seq, causal_lm)
    "generative.json",
    "lora.weights.h5",
    "base_preset",
    "predictions.csv",
    "samples.json",
)
# Config keys that do not change what a run computes.
_RUN_ONLY_KEYS = ("verbose", "output_dir")
FINGERPRINT_KEY = "data_fingerprint"

# Under the command line, `field name -> --flag` (set by `kerasft.cli`), so
# that messages name the flags the user typed instead of Python arguments.
CLI_FLAGS = contextvars.ContextVar("kerasft_cli_flags", default=None)


def argument(name, value=None):
    """How to tell the user to set option `name`: `name=value` in Python,
    the flag (`--name value`, `--name` for True) under the command line."""
    flag = CLI_FLAGS.get()
    if flag is None:
        return f"{name}=" if value is None else f"{name}={value!r}"
    if value is None or value is True:
        return flag(name)
    return f"{flag(name)} {value}"


def notify(message):
    """Prints a one-line notice about the run folder on stderr.

    Notices say what happened to a folder (reused, replaced): they change
    what the user gets back, so they show whatever the verbosity.
    """
    print(f"kerasft: {message}", file=sys.stderr, flush=True)


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
    return {
        k: v
        for k, v in config.items()
        if k not in _RUN_ONLY_KEYS and k != FINGERPRINT_KEY
    }


def completed_an_epoch(output_dir):
    """Whether the run in `output_dir` got anywhere: a backup checkpoint,
    `model.keras` or `metrics.json`."""
    return any(
        os.path.exists(os.path.join(output_dir, name))
        for name in (METRICS_FILE, MODEL_FILE, HISTORY_FILE)
    ) or bool(glob.glob(os.path.join(output_dir, BACKUP_DIR, "ckpt-*.weights.h5")))


def _read_config(path):
    with open(path) as f:
        try:
            previous = json.load(f)
        except json.JSONDecodeError:
            return None
    return previous if isinstance(previous, dict) else None


def data_changes(previous, current):
    """Which data fields differ between two `data_fingerprint` dicts, each
    as a short phrase (`"train: classes ['cat', 'dog'] -> [...]"`)."""
    previous, current = previous or {}, current or {}
    changes = []
    for name in sorted(set(previous) | set(current)):
        old, new = previous.get(name), current.get(name)
        if old == new:
            continue
        if old is None or new is None:
            changes.append(f"{name}: {'added' if old is None else 'removed'}")
            continue
        for key, what in (("classes", "classes"), ("files", "files")):
            if old.get(key) != new.get(key) and key in old and key in new:
                changes.append(f"{name}: {what} {old[key]} -> {new[key]}")
                break
        else:
            changes.append(f"{name}: its files changed")
    return changes


def prepare_run_folder(output_dir, config, overwrite=False, log=notify):
    """Checks `output_dir` against `config`; returns the run's state.

    The rules (the module docstring gives them in full): same options and
    data resume or reuse; a run that never completed an epoch is replaced;
    other options or data are refused unless `overwrite`.

    Args:
        output_dir: the run folder (created when missing).
        config: the run's identity as plain JSON data (the config's fields,
            plus its data fingerprints under `"data_fingerprint"`).
        overwrite: remove a previous run's outputs instead of refusing.
            Defaults to `False`.
        log: called with a one-line notice when a folder is replaced.
            Defaults to `notify` (stderr).

    Returns:
        `"new"`, `"resume"` (same config and data, not finished) or
        `"complete"` (same config and data, `metrics.json` present).

    Raises:
        ValueError: the folder holds another run (other options or data)
            that completed an epoch, or outputs without a `config.json`,
            and `overwrite` is False.
    """
    config = to_jsonable(config)
    config_path = os.path.join(output_dir, CONFIG_FILE)
    if overwrite:
        clear_run_outputs(output_dir)
        return "new"
    has_outputs = os.path.isdir(output_dir) and any(
        name in RUN_OUTPUTS for name in os.listdir(output_dir)
    )
    if not has_outputs:
        return "new"
    previous = _read_config(config_path) if os.path.exists(config_path) else None
    problem = _difference(output_dir, previous, config)
    if problem is None:
        if os.path.exists(os.path.join(output_dir, METRICS_FILE)):
            return "complete"
        return "resume"
    if not completed_an_epoch(output_dir):
        clear_run_outputs(output_dir)
        log(
            f"{output_dir!r} held a run that never completed an epoch (nothing "
            "to lose: no checkpoint, model or metrics); replacing it."
        )
        return "new"
    raise ValueError(
        f"Output folder {output_dir!r} holds {problem}. Pass "
        f"{argument('overwrite', True)} to replace it and train again, or "
        "choose another folder."
    )


def _difference(output_dir, previous, config):
    """`None` when the folder's run is this one, else what differs."""
    if previous is None:
        if not os.path.exists(os.path.join(output_dir, CONFIG_FILE)):
            return "outputs of a run without its config.json"
        return "a run whose config.json cannot be read"
    if _comparable(previous) != _comparable(config):
        changed = sorted(
            k
            for k in set(_comparable(previous)) | set(_comparable(config))
            if previous.get(k) != config.get(k)
        )
        return f"another run (its config.json differs in: {changed})"
    changes = data_changes(
        previous.get(FINGERPRINT_KEY), config.get(FINGERPRINT_KEY)
    )
    if FINGERPRINT_KEY in previous and changes:
        done = os.path.exists(os.path.join(output_dir, METRICS_FILE))
        return (
            f"{'a completed' if done else 'an interrupted'} run with the same "
            f"options on other data ({'; '.join(changes)})"
        )
    return None


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
