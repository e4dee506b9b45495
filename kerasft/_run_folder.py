"""Reading a finished recipe run folder back: its model, classes, config.

`kerasft.export`, `kerasft predict` and `kerasft.tune` start from a run
folder (`model.keras`, `labels.json`, `config.json`); this is the one place
that knows how to read one and says clearly what is missing.
"""

import json
import os

from kerasft import _io


class FinishedRun:
    """A finished run folder, read back.

    Attributes:
        directory: the run folder.
        model: the trained `keras.Model` (from `model.keras`).
        class_names: the class names (`labels.json`), or `None`.
        config: the run's `config.json` as a dict (`{}` when absent).
    """

    def __init__(self, directory, model, class_names, config):
        self.directory = directory
        self.model = model
        self.class_names = class_names
        self.config = config


def check_run_folder(directory):
    """Raises a `ValueError` naming what is missing from `directory`."""
    directory = os.fspath(directory)
    if not os.path.exists(directory):
        raise ValueError(
            f"Run folder {directory!r} does not exist. Pass the `--output` "
            "folder of a finished recipe run."
        )
    if not os.path.isdir(directory):
        raise ValueError(
            f"{directory!r} is a file, not a run folder. Pass the `--output` "
            "folder of a finished recipe run (or a `keras.Model`)."
        )
    if not os.path.isfile(os.path.join(directory, _io.MODEL_FILE)):
        raise ValueError(
            f"Run folder {directory!r} has no {_io.MODEL_FILE}: the run has "
            "not finished (rerun the recipe with the same options to resume "
            "it)."
        )
    return directory


def _read_json(path):
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def class_names_of(labels):
    """A list of class names from `labels.json` data: a list, or a
    `{name: id}` mapping (text recipes)."""
    if labels is None:
        return None
    if isinstance(labels, dict):
        return [str(n) for n, _ in sorted(labels.items(), key=lambda kv: kv[1])]
    return [str(n) for n in labels]


def load_run(directory):
    """Reads a finished run folder into a `FinishedRun`."""
    import keras

    import kerasft  # noqa: F401 (registers kerasft's Keras objects)

    directory = check_run_folder(directory)
    model = keras.models.load_model(os.path.join(directory, _io.MODEL_FILE))
    labels = _read_json(os.path.join(directory, "labels.json"))
    config = _read_json(os.path.join(directory, _io.CONFIG_FILE)) or {}
    return FinishedRun(directory, model, class_names_of(labels), config)
