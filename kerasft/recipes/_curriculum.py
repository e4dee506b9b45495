"""`curriculum=` / `difficulty=`: the recipes' glue onto `Curriculum`. The
difficulty scores are kept in the run's backup folder, so a resumed run
ranks as before. No TensorFlow at import (configs use it)."""

import json
import os

import numpy as np

SPEC_KEYS = ("pacing", "start_fraction", "ramp_epochs")
SCORES_FILE = "curriculum_scores.npy"


def _off(value):
    """`None`, or `none` / `null` from the command line."""
    return value is None or (
        isinstance(value, str) and value.strip().lower() in ("", "none", "null")
    )


def pacing_options(curriculum):
    """`Curriculum` keyword arguments from a spec, or `None` when off."""
    if _off(curriculum):
        return None
    spec = curriculum
    if isinstance(spec, str) and spec.strip().startswith("{"):
        try:
            spec = json.loads(spec)
        except json.JSONDecodeError as e:
            raise ValueError(f"`curriculum` is not valid JSON: {e}") from None
    if isinstance(spec, str):
        spec = {"pacing": spec}
    if not isinstance(spec, dict):
        raise ValueError(
            "`curriculum` must be a pacing name ('linear', 'root', 'step') or "
            f"a dict of {list(SPEC_KEYS)}. Received: curriculum={curriculum!r}"
        )
    unknown = sorted(set(spec) - set(SPEC_KEYS))
    if unknown:
        raise ValueError(
            f"Unknown `curriculum` key(s) {unknown}. Known keys: "
            f"{list(SPEC_KEYS)}"
        )
    return {"pacing": "linear", "start_fraction": 0.2, "ramp_epochs": 5, **spec}


def check_options(curriculum, difficulty):
    """Validates the two options together (config time)."""
    options = pacing_options(curriculum)
    if options is None:
        if not _off(difficulty):
            raise ValueError(
                "`difficulty` ranks examples for a curriculum: set "
                "`curriculum` too (e.g. curriculum='root'), or drop it."
            )
        return
    # The one validator of pacing arguments (imports Keras: only when asked).
    from kerasft.callbacks._pacing import check_pacing

    check_pacing(**options)
    if _off(difficulty):
        raise ValueError(
            "`curriculum` needs `difficulty`: a finished run folder or a "
            ".keras model (its per-example loss ranks the examples), or in "
            "Python a function scores(inputs, labels) or one score per "
            "training example."
        )
    if not (callable(difficulty) or isinstance(difficulty, (str, os.PathLike))
            or np.ndim(difficulty) == 1):
        raise TypeError(
            "`difficulty` must be a run folder, a .keras file, a function or "
            "one score per training example. Received: "
            f"{type(difficulty).__name__}"
        )


def difficulty_scores(run, config, raw, inputs, targets, loss):
    """One score per training example (lower = easier), saved for resume:
    from `config.difficulty` called on `raw` (`(inputs, labels)` as the user
    knows them), or a first model's per-example `loss` on the model's
    `inputs` and `targets`."""
    saved = os.path.join(run.backup_dir, SCORES_FILE)
    first = next(iter(inputs.values())) if isinstance(inputs, dict) else inputs
    n = len(first)
    if os.path.exists(saved):
        scores = np.load(saved)
        if len(scores) == n:
            run.log("Curriculum: difficulty scores from the backup.")
            return scores
    value = config.difficulty
    if callable(value):
        scores = value(*raw)
    elif isinstance(value, (str, os.PathLike)):
        scores = _model_scores(os.fspath(value), inputs, targets, loss)
    else:
        scores = value
    scores = np.asarray(scores, np.float64).reshape(-1)
    if len(scores) != n:
        raise ValueError(
            f"`difficulty` gave {len(scores)} scores for {n} training "
            "examples (after validation_split and max_train_samples): give "
            "one per training example."
        )
    if not np.all(np.isfinite(scores)):
        raise ValueError("`difficulty` scores must be finite numbers.")
    from kerasft import _io

    os.makedirs(run.backup_dir, exist_ok=True)
    with _io.atomic_path(saved) as tmp, open(tmp, "wb") as f:
        np.save(f, scores)
    return scores


def _model_scores(path, inputs, targets, loss):
    import keras

    from kerasft import _io
    from kerasft.data import difficulty_scores

    model_path = path
    if os.path.isdir(path):
        model_path = os.path.join(path, _io.MODEL_FILE)
    if not os.path.isfile(model_path):
        raise ValueError(
            f"`difficulty`={path!r} is neither a finished run folder (with "
            f"{_io.MODEL_FILE}) nor a .keras file."
        )
    first = keras.models.load_model(model_path, compile=False)
    return difficulty_scores(first, (inputs, targets), loss=loss)


def curriculum_callback(run, config, scores):
    """The `Curriculum` of the config's pacing, seeded by the run."""
    from kerasft.callbacks import Curriculum

    options = pacing_options(config.curriculum)
    curriculum = Curriculum(scores, seed=config.seed, **options)
    run.log(
        f"Curriculum ({options['pacing']}): epoch 0 trains on the easiest "
        f"{curriculum.fraction(0):.0%}, every example from epoch "
        f"{options['ramp_epochs']}."
    )
    return curriculum


def training_data(run, config, source, raw, loss):
    """`(batched training dataset, callbacks)` of an in-memory `Source`:
    shuffled by `(seed, epoch)`, or with `curriculum` in the order of a
    `Curriculum` (returned as the callback that picks each epoch)."""
    if pacing_options(config.curriculum) is None:
        return run.batched(run.shuffled(source)), []
    inputs, targets = source.elements
    scores = difficulty_scores(run, config, raw, inputs, targets, loss)
    curriculum = curriculum_callback(run, config, scores)
    return run.batched(curriculum.examples(inputs, targets)), [curriculum]
