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
import errno
import glob
import io
import json
import os
import re
import shutil
import sys
import tempfile

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.csv"
MODEL_FILE = "model.keras"
BACKUP_DIR = "backup"
LOGS_DIR = "logs"
# The run folder's lock (see `lock_run_folder`); never removed, not an output.
LOCK_FILE = ".kerasft.lock"

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
# Config keys that do not change what a run computes (a run folder stays
# reusable across kerasft versions: the recipe and its options decide).
_RUN_ONLY_KEYS = ("verbose", "output_dir", "kerasft_version")
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


def check_output_folder(output_dir):
    """Creates `output_dir` or raises a one-line `ValueError` saying why it
    cannot hold a run: it is a file, it is under a file, or it cannot be
    written (read-only, no permission, disk full).

    Called before any data loads or model builds, so a bad `--output` fails
    at once.
    """
    output_dir = os.fspath(output_dir)
    fix = f"Choose another folder ({argument('output_dir')})."
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise ValueError(
            f"Output folder {output_dir!r} is a file, not a folder. {fix}"
        )
    parent = os.path.dirname(os.path.abspath(output_dir))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise ValueError(
            f"Output folder {output_dir!r} is under {parent!r}, which is a "
            f"file. {fix}"
        )
    try:
        os.makedirs(output_dir, exist_ok=True)
    except OSError as e:
        raise ValueError(
            f"Cannot create output folder {output_dir!r}: {e.strerror}. {fix}"
        ) from e
    if not os.access(output_dir, os.W_OK | os.X_OK):
        raise ValueError(
            f"Output folder {output_dir!r} is not writable (read-only or no "
            f"permission). {fix}"
        )


# Run folders this process holds: realpath -> open lock file descriptor.
_HELD_LOCKS = {}


def lock_run_folder(output_dir):
    """Takes an exclusive OS lock on the run folder `output_dir` for this
    process, or raises a `ValueError` naming the process that holds it.

    The lock is `fcntl.flock` on `output_dir/.kerasft.lock`: the kernel
    drops it when the holding process ends however it ends (kill -9
    included), so a stale lock cannot outlive its run. The file records the
    holder's PID for the message. Taking a lock this process already holds
    does nothing; `unlock_run_folder` releases it. On systems without
    `fcntl` (Windows) run folders are not locked.

    Args:
        output_dir: the run folder (checked and created first, see
            `check_output_folder`).

    Raises:
        ValueError: another process holds the folder, or it cannot be a run
            folder.
    """
    check_output_folder(output_dir)
    key = os.path.realpath(output_dir)
    if key in _HELD_LOCKS:
        return
    try:
        import fcntl
    except ImportError:  # Windows
        return
    path = os.path.join(output_dir, LOCK_FILE)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise ValueError(
            f"Cannot create the lock file {path!r}: {e.strerror}. Choose "
            f"another folder ({argument('output_dir')})."
        ) from e
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        os.close(fd)
        if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise
        holder = _lock_holder(path)
        raise ValueError(
            f"Output folder {output_dir!r} is in use by another kerasft run "
            f"({holder}). Wait for it to end, stop it, or choose another "
            "folder."
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    _HELD_LOCKS[key] = fd


def _lock_holder(path):
    try:
        with open(path) as f:
            pid = f.read().strip()
    except OSError:
        pid = ""
    return f"PID {pid}" if pid.isdigit() else "PID unknown"


def unlock_run_folder(output_dir):
    """Releases this process's lock on `output_dir` (no-op when not held)."""
    fd = _HELD_LOCKS.pop(os.path.realpath(output_dir), None)
    if fd is not None:
        os.close(fd)  # closing the descriptor drops the flock


class WriteError(ValueError):
    """A run's output could not be written (disk full, read-only...): the
    message is one line naming the file and the free space; the file's
    previous version is intact. A `ValueError`, so the CLI exits 2."""


def _free_space(directory):
    try:
        free = shutil.disk_usage(directory).free
    except OSError:
        return "unknown free space"
    return f"{_size(free)} free on its disk"


def _size(nbytes):
    for unit in ("bytes", "KB", "MB", "GB"):
        if nbytes < 1024 or unit == "GB":
            return f"{nbytes:.0f} {unit}" if unit == "bytes" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024


def write_error(path, error):
    """A `WriteError` for `error` (an `OSError`) raised writing `path`."""
    directory = os.path.dirname(os.path.abspath(path))
    reason = error.strerror or str(error) or type(error).__name__
    return WriteError(
        f"Cannot write {path!r}: {reason} ({_free_space(directory)}). "
        "The previous version of the file is intact: free some space (or "
        "fix the folder's permissions) and run the same command again to "
        "resume."
    )


def ensure_free_space(path, nbytes):
    """Raises a `WriteError` naming `path` when its disk has less than
    `nbytes` (plus 10% and 1 MB) free, so a write that cannot fit is
    refused before it starts (h5py can crash the process when the disk
    fills in the middle of a file)."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        free = shutil.disk_usage(directory).free
    except OSError:
        return
    needed = int(nbytes * 1.1) + 2**20
    if free < needed:
        raise write_error(
            path, OSError(errno.ENOSPC, f"needs about {_size(needed)}")
        )


# `atomic_path`'s temporary names: `.<name>.<8 random>.tmp<suffix>`.
_TEMP_NAME = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp(\..*)?$")


def remove_temp_files(output_dir):
    """Removes kerasft's own temporary files (`atomic_path` names) left in
    `output_dir` and its `backup/` by a process that was killed mid-write.

    Only called while this process holds the folder's lock, so no other
    writer can be in the middle of one.
    """
    for directory in (output_dir, os.path.join(output_dir, BACKUP_DIR)):
        if not os.path.isdir(directory):
            continue
        for name in os.listdir(directory):
            path = os.path.join(directory, name)
            if _TEMP_NAME.match(name) and os.path.isfile(path):
                os.remove(path)


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
    `path` is left untouched; an `OSError` (disk full, read-only) becomes a
    one-line `WriteError` naming `path` and the free space.

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
    except BaseException as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        if isinstance(e, OSError):
            raise write_error(path, e) from e
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
    """Reads a CSV written by `write_history_csv` back into a dict.

    Raises:
        ValueError: the file does not parse (one line naming it).
    """
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        if not rows:
            return {}
        keys = [k for k in rows[0] if k != "epoch"]
        return {k: [float(r[k]) for r in rows if r[k] != ""] for k in keys}
    except (ValueError, TypeError, KeyError, csv.Error, UnicodeDecodeError) as e:
        raise unreadable_output(path, e) from e


def unreadable_output(path, error):
    """The one-line `ValueError` for a run output that does not parse."""
    reason = str(error).splitlines()[0] if str(error) else type(error).__name__
    return ValueError(
        f"Cannot read {path!r} ({reason}): the file is damaged. Pass "
        f"{argument('overwrite', True)} to discard this run's outputs and "
        "train again."
    )


def check_completed_run(output_dir):
    """Raises a one-line `ValueError` naming the first damaged final file
    of a completed run (`metrics.json`, `history.csv`, `model.keras`), so a
    reused run fails with the file and the fix instead of a traceback."""
    import zipfile

    path = os.path.join(output_dir, METRICS_FILE)
    try:
        with open(path) as f:
            if not isinstance(json.load(f), dict):
                raise ValueError("not a JSON object")
    except (ValueError, UnicodeDecodeError) as e:
        raise unreadable_output(path, e) from e
    path = os.path.join(output_dir, HISTORY_FILE)
    if os.path.exists(path):
        read_history_csv(path)
    path = os.path.join(output_dir, MODEL_FILE)
    if os.path.exists(path):
        try:
            with zipfile.ZipFile(path) as archive:
                names = set(archive.namelist())
            if "config.json" not in names:
                raise ValueError("no config.json inside")
        except (zipfile.BadZipFile, ValueError, OSError) as e:
            raise unreadable_output(path, e) from e


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
    # Normalised again here, so that folders written before `identity`
    # normalised (relative paths, "none") still compare equal.
    from kerasft.recipes.config import normalised_value

    return {
        k: normalised_value(k, v)
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
    lock_run_folder(output_dir)
    remove_temp_files(output_dir)
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
            # Complete (`metrics.json` is written last): a process killed
            # before it removed its backup leaves one nothing will read.
            shutil.rmtree(os.path.join(output_dir, BACKUP_DIR), ignore_errors=True)
            check_completed_run(output_dir)
            return "complete"
        if not completed_an_epoch(output_dir):
            clear_run_outputs(output_dir)
            log(
                f"{output_dir!r} held this run, stopped before it completed an "
                "epoch (nothing to lose: no checkpoint, model or metrics); "
                "starting it again."
            )
            return "new"
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
    if previous.get("recipe") and previous.get("recipe") != config.get("recipe"):
        return f"a run of another recipe ({previous['recipe']})"
    old, new = _comparable(previous), _comparable(config)
    if old != new:
        changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
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
