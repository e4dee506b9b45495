"""Resumable training state: checked, atomic per-epoch backups.

A run killed at any moment and started again with the same command continues
from the last completed epoch and ends with the weights an uninterrupted run
would have (the shuffle order is a function of (seed, epoch), see `_data`).
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
                _io.notify(
                    f"refusing checkpoint {bad!r}: {why}; resuming from "
                    f"{os.path.basename(path)} (after epoch {epoch}) instead.")
            return epoch, path
        refused.append((path, problem))
    if refused:
        bad, why = refused[0]
        raise ValueError(
            f"Cannot resume from checkpoint {bad!r}: {why}, and the backup "
            f"holds no good one. Pass {_io.argument('overwrite', True)} to "
            "discard this run's outputs and train again.")
    return 0, None


def checkpoint_problem(epoch, path, epochs=None):
    """Why the checkpoint `path` (after `epoch`) cannot be trusted, or
    `None`; one without recorded checksums is trusted, with a notice."""
    if epochs is not None and epoch > epochs:
        return f"it is after epoch {epoch}, past this run's {epochs} epochs"
    sums_path = _companion(path, ".sha256.json")
    if not os.path.exists(sums_path):
        _io.notify(
            f"checkpoint {path!r} has no recorded checksum (written by an "
            "older kerasft): resuming from it unverified.")
        return None
    try:
        with open(sums_path) as f:
            sums = json.load(f)
        expected = sums["weights"]
    except (OSError, ValueError, KeyError, TypeError):
        return f"its checksum file {sums_path!r} cannot be read"
    if _sha256(path) != expected:
        return ("it does not match the checksum recorded when it was written "
                "(the file was changed or is corrupt)")
    rng_path = _companion(path, ".rng.npz")
    if (sums.get("rng") and os.path.exists(rng_path) and
            _sha256(rng_path) != sums["rng"]):
        return (f"its RNG state {rng_path!r} does not match the checksum "
                "recorded when it was written")
    return None


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def _companion(weights_path, suffix):
    return weights_path[:-len(".weights.h5")] + suffix


def _seed_states(model):
    return [
        generator.state for layer in _keras_compat.all_layers(model)
        for generator in _keras_compat.seed_generators(layer)
    ]


class AtomicBackup(keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` whose files are written atomically, once per epoch,
    with the logs of every epoch.

    Args:
        backup_dir: folder of the backups (only this callback writes there).
        log: called with one line when the run resumes. Defaults to `None`.

    Attributes:
        history: the logs of every epoch, those of earlier (interrupted)
            processes included, trimmed to the epoch the backup restored.
    """

    def __init__(self, backup_dir, log=None):
        super().__init__(backup_dir, save_freq="epoch", delete_checkpoint=False)
        self.log = log
        self.history = {}

    def on_train_begin(self, logs=None):
        epoch, path = latest_checkpoint(self.backup_dir,
                                        self.params.get("epochs"))
        self.history = {}
        if path is None:
            return
        if self.log is not None:
            self.log(f"Resuming from the backup after epoch {epoch}.")
        history_path = os.path.join(self.backup_dir, HISTORY_BACKUP)
        if os.path.exists(history_path):
            try:
                with open(history_path) as f:
                    saved = json.load(f)
                self.history = {k: list(v[:epoch]) for k, v in saved.items()}
            except (OSError, ValueError, AttributeError, TypeError) as e:
                raise _io.unreadable_output(history_path, e) from e
        optimizer = self.model.optimizer
        if optimizer is not None and not optimizer.built:
            optimizer.build(self.model.trainable_variables)
        try:
            self.model.load_weights(path)
        except (OSError, ValueError, KeyError) as e:
            raise _io.unreadable_output(path, e) from e
        rng_path = _companion(path, ".rng.npz")
        states = _seed_states(self.model)
        if os.path.exists(rng_path):
            try:
                with np.load(rng_path) as saved:
                    for i, state in enumerate(states):
                        state.assign(saved[str(i)])
            except (OSError, ValueError, KeyError) as e:
                raise _io.unreadable_output(rng_path, e) from e
        elif states:
            _io.notify(
                f"{rng_path!r} is missing: resuming without the random "
                "(dropout) state, so this resume is not exact (the result "
                "will differ from an uninterrupted run's).")
        _keras_compat.set_initial_epoch(self.model, epoch)

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            values = self.history.setdefault(key, [])
            del values[epoch:]
            values.extend([None] * (epoch - len(values)))
            values.append(float(value))
        # Before the checkpoint, so the history never lags it.
        _io.write_json(os.path.join(self.backup_dir, HISTORY_BACKUP),
                       self.history)
        super().on_epoch_end(epoch, logs)

    def _save_model(self):
        path = os.path.join(self.backup_dir,
                            f"ckpt-{self._current_epoch:05d}.weights.h5")
        _io.ensure_free_space(path, self._checkpoint_bytes())
        # Random-layer (dropout) states are not in weights files; written
        # first, so a complete weights file always has its states beside it.
        rng_path = _companion(path, ".rng.npz")
        sums_path = _companion(path, ".sha256.json")
        with _io.atomic_path(rng_path) as tmp:
            states = _seed_states(self.model)
            np.savez(
                tmp, **{
                    str(i): keras.ops.convert_to_numpy(s)
                    for i, s in enumerate(states)
                })
        try:
            with _io.atomic_path(path) as tmp:
                self.model.save_weights(tmp)
                # Recorded before the weights file takes its name, so every
                # checkpoint has its checksums beside it.
                _io.write_json(sums_path, {
                    "weights": _sha256(tmp),
                    "rng": _sha256(rng_path)
                })
        except BaseException:
            # No weights file: its companions would be strays.
            for companion in (rng_path, sums_path):
                if os.path.exists(companion):
                    os.remove(companion)
            raise
        current = os.path.basename(path)[:10]  # ckpt-NNNNN
        for old in glob.glob(os.path.join(self.backup_dir, "ckpt-*")):
            if not os.path.basename(old).startswith(current):
                os.remove(old)

    def _checkpoint_bytes(self):
        """The newest checkpoint's size, else the variables' bytes."""
        previous = checkpoints(self.backup_dir)
        if previous:
            return os.path.getsize(previous[0][1])
        variables = list(self.model.weights)
        if self.model.optimizer is not None:
            variables += list(self.model.optimizer.variables)
        # Keras registers ml_dtypes, so numpy knows bfloat16 and float8 too.
        return sum(
            int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize
            for v in variables)
