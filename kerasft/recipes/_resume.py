"""Resumable training state: atomic backups, epoch-seeded shuffling, history.

A run killed at any moment and started again with the same command continues
from the last completed epoch and ends with the weights an uninterrupted run
would have:

- `AtomicBackup` (a `keras.callbacks.BackupAndRestore`) writes the model and
  optimizer state (hence the schedule's step) to `ckpt-<epoch>.weights.h5`
  through a temporary file and `os.replace`, then removes older ones, so the
  newest complete file always names its epoch: there is no separate
  metadata file to disagree with it. ProgressiveUnfreeze derives its stage
  from the epoch.
- `EpochSeed` sets the variable the recipes' input pipelines read to seed
  their shuffle (`_data.Source.shuffled`), so the order is a function of
  (seed, epoch) instead of an iterator count that restarts with the process.
- `HistoryLog` keeps the per-epoch logs next to the backup so the final
  `history.csv` covers every epoch, including those before a restart.

Checkpoints are checked before they are trusted: each is written with
`ckpt-<epoch>.sha256.json`, the SHA-256 of its weights file and of its RNG
state (`ckpt-<epoch>.rng.npz`). On resume a checkpoint that does not match
its checksums, or whose epoch is past the run's epochs, is named and
refused; an older good one is used when there is one, else the run stops
with a one-line message naming the file and `--overwrite`.
"""

import glob
import hashlib
import json
import os
import re

import keras
import numpy as np

from kerasft import _io
from kerasft import _keras_compat

_CKPT = re.compile(r"^ckpt-(\d+)\.weights\.h5$")
HISTORY_BACKUP = "history.json"


def checkpoints(backup_dir):
    """`[(epoch, path)]` of the backup's checkpoint files, newest first."""
    found = []
    for path in glob.glob(os.path.join(backup_dir, "ckpt-*.weights.h5")):
        match = _CKPT.match(os.path.basename(path))
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found, reverse=True)


def latest_checkpoint(backup_dir, epochs=None):
    """`(epoch, path)` of the newest good backup, or `(0, None)`.

    A checkpoint that does not match the checksums recorded when it was
    written, or whose epoch is past `epochs` (the run's), is refused with a
    one-line notice naming it, and the next older good one is used.

    Args:
        backup_dir: the run's `backup/` folder.
        epochs: the run's number of epochs, or `None` (not checked).

    Raises:
        ValueError: checkpoints exist but none is good; the message names
            the newest and `--overwrite`.
    """
    refused = []
    for epoch, path in checkpoints(backup_dir):
        problem = checkpoint_problem(epoch, path, epochs)
        if problem is None:
            for bad, why in refused:
                _notify_once(
                    f"refusing checkpoint {bad!r}: {why}; resuming from "
                    f"{os.path.basename(path)} (after epoch {epoch}) instead."
                )
            return epoch, path
        refused.append((path, problem))
    if refused:
        bad, why = refused[0]
        raise ValueError(
            f"Cannot resume from checkpoint {bad!r}: {why}, and the backup "
            f"holds no good one. Pass {_io.argument('overwrite', True)} to "
            "discard this run's outputs and train again."
        )
    return 0, None


def checkpoint_problem(epoch, path, epochs=None):
    """Why the checkpoint `path` (after `epoch`) cannot be trusted, or
    `None`. A checkpoint written before checksums were recorded (no
    `.sha256.json` beside it) is trusted, with a notice."""
    if epochs is not None and epoch > epochs:
        return f"it is after epoch {epoch}, past this run's {epochs} epochs"
    sums_path = _checksum_path(path)
    if not os.path.exists(sums_path):
        _notify_once(
            f"checkpoint {path!r} has no recorded checksum (written by an "
            "older kerasft): resuming from it unverified."
        )
        return None
    try:
        with open(sums_path) as f:
            sums = json.load(f)
        expected = sums["weights"]
    except (OSError, ValueError, KeyError, TypeError):
        return f"its checksum file {sums_path!r} cannot be read"
    if _sha256(path) != expected:
        return (
            "it does not match the checksum recorded when it was written "
            "(the file was changed or is corrupt)"
        )
    rng_path = _rng_path(path)
    if sums.get("rng") and os.path.exists(rng_path):
        if _sha256(rng_path) != sums["rng"]:
            return (
                f"its RNG state {rng_path!r} does not match the checksum "
                "recorded when it was written"
            )
    return None


_SHA_CACHE = {}
_NOTIFIED = set()


def _sha256(path):
    """SHA-256 of the file at `path` (cached by size and mtime)."""
    stat = os.stat(path)
    key = (os.path.realpath(path), stat.st_size, stat.st_mtime_ns)
    if key not in _SHA_CACHE:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(2**20), b""):
                digest.update(block)
        _SHA_CACHE[key] = digest.hexdigest()
    return _SHA_CACHE[key]


def _notify_once(message):
    if message not in _NOTIFIED:
        _NOTIFIED.add(message)
        _io.notify(message)


def _checksum_path(weights_path):
    return weights_path[: -len(".weights.h5")] + ".sha256.json"


def _unusable(path, error):
    reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
    return ValueError(
        f"Cannot resume from {path!r}: it cannot be read ({reason}). Pass "
        f"{_io.argument('overwrite', True)} to discard this run's outputs "
        "and train again."
    )


class AtomicBackup(keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` whose files are written atomically, once per epoch.

    Args:
        backup_dir: folder of the backups (only this callback writes there).
    """

    def __init__(self, backup_dir):
        super().__init__(backup_dir, save_freq="epoch", delete_checkpoint=False)

    def on_train_begin(self, logs=None):
        self._load_model()

    def _load_model(self):
        epoch, path = latest_checkpoint(
            self.backup_dir, (self.params or {}).get("epochs")
        )
        if path is None:
            return
        optimizer = self.model.optimizer
        if optimizer is not None and not optimizer.built:
            optimizer.build(self.model.trainable_variables)
        try:
            self.model.load_weights(path)
        except (OSError, ValueError, KeyError) as e:
            raise _unusable(path, e) from e
        rng_path = _rng_path(path)
        states = _seed_states(self.model)
        if os.path.exists(rng_path):
            try:
                with np.load(rng_path) as saved:
                    for i, state in enumerate(states):
                        state.assign(saved[str(i)])
            except (OSError, ValueError, KeyError) as e:
                raise _unusable(rng_path, e) from e
        elif states:
            _notify_once(
                f"{rng_path!r} is missing: resuming without the random "
                "(dropout) state, so this resume is not exact (the result "
                "will differ from an uninterrupted run's)."
            )
        _keras_compat.set_initial_epoch(self.model, epoch)

    def _save_model(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        path = os.path.join(
            self.backup_dir, f"ckpt-{self._current_epoch:05d}.weights.h5"
        )
        _io.ensure_free_space(path, self._checkpoint_bytes(path))
        # Random-layer (dropout) states are not in weights files; written
        # first, so a complete weights file always has its states beside it.
        rng_path = _rng_path(path)
        with _io.atomic_path(rng_path) as tmp:
            states = {
                str(i): keras.ops.convert_to_numpy(s)
                for i, s in enumerate(_seed_states(self.model))
            }
            np.savez(tmp, **states)
        try:
            with _io.atomic_path(path) as tmp:
                self.model.save_weights(tmp)
                # Recorded before the weights file takes its name, so every
                # checkpoint has its checksums beside it.
                _io.write_json(
                    _checksum_path(path),
                    {"weights": _sha256(tmp), "rng": _sha256(rng_path)},
                )
        except BaseException:
            # No weights file: its companions would be strays.
            for companion in (rng_path, _checksum_path(path)):
                if os.path.exists(companion):
                    os.remove(companion)
            raise
        for old in glob.glob(os.path.join(self.backup_dir, "ckpt-*")):
            if not os.path.basename(old).startswith(os.path.basename(path)[:10]):
                os.remove(old)

    def _checkpoint_bytes(self, path):
        """About how large the checkpoint at `path` will be: the newest
        one's size, else the model's and optimizer's variables."""
        previous = checkpoints(self.backup_dir)
        if previous:
            return os.path.getsize(previous[0][1])
        variables = list(self.model.weights)
        if self.model.optimizer is not None:
            variables += list(self.model.optimizer.variables)
        return sum(int(np.prod(v.shape)) * _itemsize(v.dtype) for v in variables)


def _itemsize(dtype):
    try:
        return np.dtype(str(dtype)).itemsize
    except TypeError:  # bfloat16, float8...: not numpy dtypes
        digits = "".join(c for c in str(dtype) if c.isdigit())
        return max(1, int(digits or 32) // 8)


def _rng_path(weights_path):
    return weights_path[: -len(".weights.h5")] + ".rng.npz"


def _seed_states(model):
    """State variables of every `SeedGenerator` in the model (dropout...)."""
    states = []
    for layer in _keras_compat.all_layers(model):
        for generator in _keras_compat.seed_generators(layer):
            states.append(generator.state)
    return states


class EpochSeed(keras.callbacks.Callback):
    """Sets `variable` to the epoch number when each epoch begins.

    Input pipelines built by the recipes read it to seed their shuffle, so
    epoch `e` sees the same order whether or not the run restarted.
    """

    def __init__(self, variable):
        super().__init__()
        self.variable = variable

    def on_epoch_begin(self, epoch, logs=None):
        self.variable.assign(epoch)


class HistoryLog(keras.callbacks.Callback):
    """Saves each epoch's logs atomically to `backup_dir/history.json`.

    `history` holds the logs of every epoch, those of earlier (interrupted)
    processes included, trimmed to the epoch the backup restored.
    """

    def __init__(self, backup_dir):
        super().__init__()
        self.backup_dir = backup_dir
        self.path = os.path.join(backup_dir, HISTORY_BACKUP)
        self.history = {}

    def on_train_begin(self, logs=None):
        start, _ = latest_checkpoint(
            self.backup_dir, (self.params or {}).get("epochs")
        )
        self.history = {}
        if start and os.path.exists(self.path):
            try:
                with open(self.path) as f:
                    saved = json.load(f)
                self.history = {k: list(v[:start]) for k, v in saved.items()}
            except (OSError, ValueError, AttributeError, TypeError) as e:
                raise _unusable(self.path, e) from e

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            values = self.history.setdefault(key, [])
            del values[epoch:]
            values.extend([None] * (epoch - len(values)))
            values.append(float(value))
        os.makedirs(self.backup_dir, exist_ok=True)
        _io.write_json(self.path, self.history)
