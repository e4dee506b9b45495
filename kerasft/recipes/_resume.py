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
"""

import glob
import json
import os
import re

import keras
import numpy as np

from kerasft import _io
from kerasft import _keras_compat

_CKPT = re.compile(r"^ckpt-(\d+)\.weights\.h5$")
HISTORY_BACKUP = "history.json"


def latest_checkpoint(backup_dir):
    """`(epoch, path)` of the newest complete backup, or `(0, None)`."""
    best = (0, None)
    for path in glob.glob(os.path.join(backup_dir, "ckpt-*.weights.h5")):
        match = _CKPT.match(os.path.basename(path))
        if match and int(match.group(1)) >= best[0]:
            best = (int(match.group(1)), path)
    return best


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
        epoch, path = latest_checkpoint(self.backup_dir)
        if path is None:
            return
        optimizer = self.model.optimizer
        if optimizer is not None and not optimizer.built:
            optimizer.build(self.model.trainable_variables)
        self.model.load_weights(path)
        rng_path = _rng_path(path)
        if os.path.exists(rng_path):
            with np.load(rng_path) as saved:
                for i, state in enumerate(_seed_states(self.model)):
                    state.assign(saved[str(i)])
        _keras_compat.set_initial_epoch(self.model, epoch)

    def _save_model(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        path = os.path.join(
            self.backup_dir, f"ckpt-{self._current_epoch:05d}.weights.h5"
        )
        # Random-layer (dropout) states are not in weights files; written
        # first, so a complete weights file always has its states beside it.
        with _io.atomic_path(_rng_path(path)) as tmp:
            states = {
                str(i): keras.ops.convert_to_numpy(s)
                for i, s in enumerate(_seed_states(self.model))
            }
            np.savez(tmp, **states)
        with _io.atomic_path(path) as tmp:
            self.model.save_weights(tmp)
        for old in glob.glob(os.path.join(self.backup_dir, "ckpt-*")):
            if not os.path.basename(old).startswith(os.path.basename(path)[:10]):
                os.remove(old)


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
        start, _ = latest_checkpoint(self.backup_dir)
        self.history = {}
        if start and os.path.exists(self.path):
            with open(self.path) as f:
                saved = json.load(f)
            self.history = {k: v[:start] for k, v in saved.items()}

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            values = self.history.setdefault(key, [])
            del values[epoch:]
            values.extend([None] * (epoch - len(values)))
            values.append(float(value))
        os.makedirs(self.backup_dir, exist_ok=True)
        _io.write_json(self.path, self.history)
