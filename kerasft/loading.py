"""`kerasft.load`: the one reader of recipe run folders.

Every recipe writes its run folder in one format: `config.json` (the
options, the data fingerprint, and since 0.2 the `recipe` that wrote it and
the `kerasft_version`), `metrics.json` (written last: its presence means
the run finished), `model.keras` or, for generative runs with unmerged LoRA
adapters, `lora.weights.h5` + `generative.json`, and `labels.json` where
the task has classes. `kerasft.load` reads any of them back; `kerasft
predict`, `export`, `generate`, `tune` and a rerun of a completed run all
read through it.
"""

import json
import os
import warnings

from kerasft import _io


# Keras's warning for a layer that ignores the mask of its input.
MASK_WARNING = r".*was passed an input with a mask attached to it"


class LoadedRun:
    """A finished run folder, read back.

    Attributes:
        directory: the run folder.
        recipe: the run-folder format, named after the recipe that owns it
            (`"image_classification"` for the four tutorial recipes too;
            `kerasft.recipes.registry` lists them).
        config: the run's `config.json` as a dict.
        model: the trained task: a `keras.Model`; for `seq2seq` and
            `causal_lm` the KerasHub task with its preprocessor (LoRA
            adapters loaded); for `image_captioning` a `CaptionGenerator`
            (its `.model` is the Keras model).
        keras_model: the Keras model the run saved (for captioning, the
            generator's model; otherwise `model`).
        class_names: the class names (`labels.json`), or `None`.
        metrics: `metrics.json` as a dict.
    """

    def __init__(self, directory, recipe, config, model, class_names, metrics):
        self.directory = directory
        self.recipe = recipe
        self.config = config
        self.model = model
        self.class_names = class_names
        self.metrics = metrics

    @property
    def keras_model(self):
        return getattr(self.model, "model", self.model) if (
            self.recipe == "image_captioning"
        ) else self.model

    def read_json(self, name):
        """The JSON file `name` of the run folder, or `None` if absent."""
        return _read_json(os.path.join(self.directory, name))

    def predict(self, inputs, output="predictions.csv", **kwargs):
        """`kerasft predict` on this run (see `kerasft.predict_to_csv`)."""
        from kerasft.recipes import registry

        return registry.predictor(self.recipe)(self, inputs, output, **kwargs)

    def __repr__(self):
        return f"LoadedRun({self.directory!r}, recipe={self.recipe!r})"


def load(run_dir, recipe=None, compile=False):
    """Reads a finished recipe run folder back.

    Args:
        run_dir: the `output_dir` of a finished recipe run.
        recipe: the recipe that wrote it, for folders written before
            `config.json` recorded it (kerasft 0.1). Defaults to `None`:
            read from `config.json`.
        compile: also restore the training setup (optimizer and its state,
            loss, metrics), to train on. Defaults to `False`: the model is
            for predicting, and loads under any precision policy.

    Returns:
        A `LoadedRun`: `.model` is the trained task, ready to predict.

    Raises:
        ValueError: `run_dir` is missing, unfinished, or not a run folder;
            the message says which and what to do.

    Example:
    ```python
    run = kerasft.load("runs/flowers")
    run.recipe, run.class_names, run.metrics["val_accuracy"]
    probabilities = run.model.predict(images)
    ```
    """
    from kerasft.recipes import registry

    directory = check_run_folder(run_dir)
    _io.check_completed_run(directory)  # a damaged file: one line, the fix
    config = _read_json(os.path.join(directory, _io.CONFIG_FILE)) or {}
    name = recipe or recipe_of(directory, config)
    if name is None:
        raise ValueError(
            f"{directory!r}'s config.json does not name the recipe that wrote "
            "it (a run of kerasft < 0.2). Pass it: kerasft.load(run_dir, "
            f"recipe=...), one of {registry.names()}."
        )
    task = registry.get(name).task
    import kerasft

    kerasft.register_keras_objects()
    with warnings.catch_warnings():
        # KerasHub's T5 attention ignores the masks Keras attaches to its
        # inputs, by design; Keras warns about it on every call.
        warnings.filterwarnings("ignore", message=MASK_WARNING)
        if not compile:
            # KerasHub tasks compile a default optimizer when built; the saved
            # optimizer state is not wanted when only predicting.
            warnings.filterwarnings(
                "ignore", message="Skipping variable loading for optimizer")
        model = _READERS.get(task, _keras_model)(directory, compile)
    labels = _read_json(os.path.join(directory, "labels.json"))
    metrics = _read_json(os.path.join(directory, _io.METRICS_FILE)) or {}
    return LoadedRun(directory, task, config, model, class_names_of(labels),
                     metrics)


def recipe_of(directory, config=None):
    """The recipe recorded in a run folder (`config.json`'s `recipe`, or
    for generative runs of kerasft 0.1 `generative.json`'s `kind`), or
    `None`. `config`: `config.json`'s content when already read."""
    if config is None:
        config = _read_json(os.path.join(directory, _io.CONFIG_FILE)) or {}
    if config.get("recipe"):
        return config["recipe"]
    info = _read_json(os.path.join(directory, "generative.json")) or {}
    return info.get("kind")


def check_run_folder(directory):
    """`directory` as a string; a `ValueError` naming what is missing when
    it is not a finished run folder."""
    directory = os.fspath(directory)
    if not os.path.exists(directory):
        raise ValueError(
            f"Run folder {directory!r} does not exist. Pass the `--output` "
            "folder of a finished recipe run."
        )
    if not os.path.isdir(directory):
        raise ValueError(
            f"{directory!r} is a file, not a run folder. Pass the `--output` "
            "folder of a finished recipe run."
        )
    if not os.path.isfile(os.path.join(directory, _io.METRICS_FILE)):
        what = ("has not finished (no metrics.json): rerun the recipe with "
                "the same options to resume it")
        if not os.path.isfile(os.path.join(directory, _io.CONFIG_FILE)):
            what = ("is not a kerasft run folder (no config.json or "
                    "metrics.json)")
        raise ValueError(f"The run in {directory!r} {what}.")
    return directory


def class_names_of(labels):
    """A list of class names from `labels.json` data: a list, or a
    `{name: id}` mapping (text classification)."""
    if labels is None:
        return None
    if isinstance(labels, dict):
        return [str(n) for n, _ in sorted(labels.items(), key=lambda kv: kv[1])]
    return [str(n) for n in labels]


def _read_json(path):
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(
                f"{path!r} is not valid JSON ({e}); the run folder is "
                "damaged. Rerun the recipe with --overwrite (overwrite=True) "
                "to train it again."
            ) from None


def _keras_model(directory, compile):
    import keras

    path = os.path.join(directory, _io.MODEL_FILE)
    if not os.path.isfile(path):
        raise ValueError(f"The run in {directory!r} has no {_io.MODEL_FILE}.")
    return keras.models.load_model(path, compile=compile)


def _generative_task(directory, compile):
    from kerasft.recipes import _generative

    task, _ = _generative.load_finished_task(directory, compile=compile)
    return task


def _captioner(directory, compile):
    from kerasft.recipes.image_captioning import load_captioner

    return load_captioner(directory, compile=compile)


_READERS = {
    "seq2seq": _generative_task,
    "causal_lm": _generative_task,
    "image_captioning": _captioner,
}
