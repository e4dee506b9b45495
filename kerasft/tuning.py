"""`kerasft.tune`: hyperparameter search over a recipe's config fields.

KerasTuner (`keras-tuner`) proposes the values: its oracles
(`BayesianOptimizationOracle`, `HyperbandOracle`, `RandomSearchOracle`)
decide and record every trial under `directory/oracle/`. kerasft runs each trial
as an ordinary recipe run in `directory/trials/trial_<id>/` and reports the
run's `metrics.json` value of `objective` back to the oracle.

Resuming: the oracle saves its state before each trial starts, and the
recipe run saves a backup every epoch. After `kill -9`, calling `tune` again
with the same arguments reloads the oracle (finished trials are kept, the
interrupted one is retried) and the retried trial's recipe run resumes
from its last epoch. `overwrite=True` starts afresh.

A search space maps config fields to KerasTuner hyperparameters:
- `[v1, v2, ...]` or `{"values": [...]}`: `Choice` (values may be lists,
  e.g. `head_units`, stored as JSON strings for KerasTuner);
- `{"min": a, "max": b}` (+ `"step"`, `"sampling": "log"`): `Int` when
  `a`, `b` (and `step`) are ints, else `Float`;
- a plain value: `Fixed`.

The best trial's config is written as `directory/best.json`, a recipe
config file: `kerasft <recipe> --config directory/best.json` reruns it
(into `directory/best`).
"""

import dataclasses
import difflib
import json
import math
import os

ALGORITHMS = ("bayesian", "hyperband", "random")
# Prefix of the KerasTuner values that are not config fields (Hyperband's).
_TUNER_PREFIX = "tuner/"


@dataclasses.dataclass
class TuneResult:
    """What `tune` found.

    Attributes:
        best_values: the best trial's searched values (`{field: value}`).
        best_score: its `objective` value.
        best_config: the full recipe config (dict) of the best trial.
        best_config_path: `directory/best.json`.
        trials: `[{"trial_id", "values", "score", "status"}]` in run order.
        directory: the search folder.
    """

    best_values: dict
    best_score: float
    best_config: dict
    best_config_path: str
    trials: list
    directory: str


# === Recipes and search spaces (pure) ===


def resolve_recipe(recipe):
    """`(recipe function, config class or None, fixed values)` of a recipe
    name (`"image_classification"` or `"image-classification"`) or function."""
    from kerasft.recipes import registry

    if callable(recipe):
        entry = registry.of_function(recipe)
        if entry is None:
            return recipe, None, {}
        return recipe, entry.config_class(), dict(entry.fixed)
    entry = registry.get(recipe)
    return entry.load_function(), entry.config_class(), dict(entry.fixed)


def check_search_space(search_space, fields=None, fixed=()):
    """Validates a search space; raises `ValueError` naming the problem."""
    if not isinstance(search_space, dict):
        raise TypeError(
            "`search_space` must be a dict {config field: values or range}. "
            f"Received: {type(search_space).__name__}"
        )
    if not search_space:
        raise ValueError(
            "The search space is empty: give at least one config field to "
            'search, e.g. {"learning_rate": {"min": 1e-4, "max": 1e-2, '
            '"sampling": "log"}, "dropout": [0.0, 0.3]}.'
        )
    for name, spec in search_space.items():
        if name in ("output_dir",) or name in fixed:
            raise ValueError(
                f"`{name}` cannot be searched: "
                + ("tune sets each trial's output folder."
                   if name == "output_dir" else "this recipe fixes it.")
            )
        if fields is not None and name not in fields:
            close = difflib.get_close_matches(name, list(fields), n=1)
            raise ValueError(
                f"{name!r} in the search space is not a config field"
                + (f" (did you mean {close[0]!r}?)" if close else "")
                + f". Fields: {sorted(fields)}"
            )
        if isinstance(spec, list) and not spec:
            raise ValueError(f"The choices for {name!r} are empty.")
        if isinstance(spec, dict):
            known = {"min", "max", "step", "sampling", "values"}
            unknown = sorted(set(spec) - known)
            if unknown or not ("values" in spec or {"min", "max"} <= set(spec)):
                raise ValueError(
                    f"The range for {name!r} needs 'min' and 'max' (optional "
                    "'step', 'sampling') or 'values'. Received: "
                    f"{json.dumps(spec)}"
                )


def _encode(value):
    """KerasTuner choices are scalars: lists and dicts travel as JSON."""
    if isinstance(value, (list, tuple, dict)) or value is None:
        return json.dumps(value)
    return value


def read_search_space(path):
    """A search space from a JSON file, errors naming the file.

    Args:
        path: a JSON file holding an object of config field names to a list
            of choices or a `{"min", "max"[, "step", "sampling"]}` range.

    Returns:
        The search space dict, for `tune`.

    Example:
    ```python
    space = kerasft.tuning.read_search_space("space.json")
    ```
    """
    from kerasft._json_file import load_json

    expected = ('a search space: an object of config field names to a list '
                'of choices or a range, e.g. {"learning_rate": [1e-3, 1e-4], '
                '"dropout": {"min": 0.0, "max": 0.5}}')
    space = load_json(path, expected)
    if space == {}:
        raise ValueError(
            f"Search space file {os.fspath(path)!r} holds {{}}: the search space "
            f"is empty. Expected {expected}."
        )
    if not isinstance(space, dict):
        raise ValueError(
            f"Search space file {os.fspath(path)!r} holds "
            f"{json.dumps(space)[:60]}. Expected {expected}."
        )
    return space


def decode_values(values, search_space):
    """Config values from KerasTuner's (JSON-encoded choices decoded)."""
    out = {}
    for name, value in values.items():
        if name.startswith(_TUNER_PREFIX):
            continue
        spec = search_space.get(name)
        choices = spec.get("values") if isinstance(spec, dict) else spec
        if isinstance(choices, list) and any(
            isinstance(c, (list, tuple, dict)) or c is None for c in choices
        ):
            value = json.loads(value)
        out[name] = value
    return out


def _keras_tuner():
    try:
        import keras_tuner
    except ImportError:
        raise ImportError(
            "`kerasft.tune` needs KerasTuner: `pip install keras-tuner` (or "
            "`pip install kerasft[tune]`)."
        ) from None
    return keras_tuner


def hyperparameters(search_space):
    """A `keras_tuner.HyperParameters` for a (checked) search space."""
    keras_tuner = _keras_tuner()

    hp = keras_tuner.HyperParameters()
    for name, spec in search_space.items():
        if isinstance(spec, dict) and "values" in spec:
            spec = spec["values"]
        if isinstance(spec, list):
            hp.Choice(name, [_encode(v) for v in spec])
        elif isinstance(spec, dict):
            sampling = spec.get("sampling", "linear")
            bounds = (spec["min"], spec["max"], spec.get("step", 1))
            if all(isinstance(b, int) and not isinstance(b, bool) for b in bounds):
                hp.Int(name, spec["min"], spec["max"], step=spec.get("step", 1),
                       sampling=sampling)
            else:
                hp.Float(name, float(spec["min"]), float(spec["max"]),
                         step=spec.get("step"), sampling=sampling)
        else:
            hp.Fixed(name, _encode(spec))
    return hp


def direction(objective):
    """`"min"` for losses and errors, else `"max"`."""
    lowered = objective.lower()
    return "min" if ("loss" in lowered or "error" in lowered) else "max"


# === The search ===


def _base_config(config, fields):
    if config is None:
        return {}
    if isinstance(config, (str, os.PathLike)):
        from kerasft.recipes.config import load_config_file

        return dict(load_config_file(os.fspath(config)))
    if hasattr(config, "to_dict"):
        return dict(config.to_dict())
    if isinstance(config, dict):
        return dict(config)
    raise TypeError(
        "`config` must be a recipe config, a dict or a config file path. "
        f"Received: {type(config).__name__}"
    )


def _oracle(algorithm, objective, max_trials, max_epochs, hp, seed):
    keras_tuner = _keras_tuner()

    goal = keras_tuner.Objective(objective, direction(objective))
    common = dict(objective=goal, hyperparameters=hp, seed=seed,
                  max_consecutive_failed_trials=1)
    if algorithm == "bayesian":
        return keras_tuner.oracles.BayesianOptimizationOracle(
            max_trials=max_trials, **common
        )
    if algorithm == "random":
        return keras_tuner.oracles.RandomSearchOracle(max_trials=max_trials, **common)
    return keras_tuner.oracles.HyperbandOracle(max_epochs=max_epochs, **common)


def _tuner_class():
    keras_tuner = _keras_tuner()
    from keras_tuner.engine import base_tuner

    class RecipeTuner(base_tuner.BaseTuner):
        """Runs each trial as a recipe run and reports its metrics."""

        def __init__(self, oracle, recipe_fn, base, space, objective,
                     runs_dir, **kwargs):
            self.recipe_fn = recipe_fn
            self.runs_dir = runs_dir
            self.base = base
            self.space = space
            self.objective_name = objective
            super().__init__(oracle, **kwargs)

        def trial_config(self, trial):
            values = trial.hyperparameters.values
            config = {**self.base, **decode_values(values, self.space)}
            if "tuner/epochs" in values:  # Hyperband's budget for this trial
                config["epochs"] = int(values["tuner/epochs"])
            config["output_dir"] = os.path.join(
                self.runs_dir, f"trial_{trial.trial_id}"
            )
            return config

        def run_trial(self, trial, *args, **kwargs):
            config = self.trial_config(trial)
            try:
                result = self.recipe_fn(config=config)
            except (ValueError, TypeError) as e:
                # A config the recipe refuses: stop, do not skip silently.
                raise keras_tuner.errors.FatalValueError(
                    f"Trial {trial.trial_id} ({decode_values(trial.hyperparameters.values, self.space)}): {e}"
                ) from e
            value = result.metrics.get(self.objective_name)
            if not isinstance(value, (int, float)) or math.isnan(value):
                numeric = sorted(k for k, v in result.metrics.items()
                                 if isinstance(v, (int, float)))
                raise keras_tuner.errors.FatalValueError(
                    f"The run has no metric {self.objective_name!r} to "
                    f"optimize (is there validation data?). Metrics: {numeric}"
                )
            return {self.objective_name: float(value)}

    return RecipeTuner


def tune(recipe, search_space, objective="val_accuracy", max_trials=10,
         algorithm="bayesian", directory="tuning", config=None, seed=0,
         max_epochs=None, overwrite=False, **fields):
    """Searches recipe config values with KerasTuner.

    Args:
        recipe: a recipe name (`"image_classification"`,
            `"text-classification"`, ...) or recipe function
            (`kerasft.recipes.image_classification`).
        search_space: `{config field: choices, range or value}` (see the
            module doc), e.g. `{"learning_rate": {"min": 1e-4, "max": 1e-2,
            "sampling": "log"}, "dropout": [0.0, 0.2, 0.4]}`.
        objective: a key of the recipe's `metrics.json`; losses and errors
            are minimized, the rest maximized. Defaults to `"val_accuracy"`.
        max_trials: trials for `"bayesian"` and `"random"`.
            Defaults to `10`.
        algorithm: `"bayesian"`, `"hyperband"` or `"random"`.
            Defaults to `"bayesian"`.
        directory: the search folder (oracle state, trial runs,
            `best.json`). Defaults to `"tuning"`.
        config: the options every trial shares: a recipe config, a dict or
            a config file. Defaults to `None`.
        seed: the oracle's seed. Defaults to `0`.
        max_epochs: Hyperband's largest budget. Defaults to `None`: the
            config's `epochs`.
        overwrite: start afresh instead of resuming `directory`.
            Defaults to `False`.
        **fields: config fields, overriding `config`.

    Returns:
        A `TuneResult`.

    Example:
    ```python
    result = kerasft.tune(
        "image_classification",
        {"learning_rate": {"min": 1e-4, "max": 1e-2, "sampling": "log"},
         "dropout": [0.0, 0.3]},
        config="base.json", max_trials=8, directory="runs/search")
    print(result.best_values, result.best_score)
    ```
    """
    if algorithm not in ALGORITHMS:
        raise ValueError(
            f"`algorithm` must be one of {ALGORITHMS}. "
            f"Received: algorithm={algorithm!r}"
        )
    if not isinstance(max_trials, int) or max_trials < 1:
        raise ValueError(
            f"`max_trials` must be a positive int. Received: max_trials={max_trials!r}"
        )
    recipe_fn, config_class, fixed = resolve_recipe(recipe)
    field_names = config_class.field_names() if config_class else None
    check_search_space(search_space, field_names, fixed)
    if config_class is not None:
        check_objective(recipe_fn, objective)
    base = {**_base_config(config, field_names), **fields, **fixed}
    base.pop("data_fingerprint", None)
    if config_class is not None:
        config_class.from_dict({**base, "output_dir": directory})  # fail fast
    _prepare_search_folder(
        os.fspath(directory),
        {"recipe": f"{recipe_fn.__module__}:{recipe_fn.__name__}",
         "search_space": search_space, "objective": objective,
         "algorithm": algorithm, "max_trials": max_trials, "seed": seed,
         "max_epochs": max_epochs, "config": base},
        overwrite,
    )
    if algorithm == "hyperband" and max_epochs is None:
        max_epochs = int(base.get("epochs") or 10)
    oracle = _oracle(algorithm, objective, max_trials, max_epochs,
                     hyperparameters(search_space), seed)
    tuner = _tuner_class()(
        oracle, recipe_fn, base, search_space, objective,
        runs_dir=os.path.join(os.fspath(directory), "trials"),
        directory=os.fspath(directory), project_name="oracle",
        overwrite=overwrite,
    )
    tuner.search()
    return _result(tuner, base, search_space, objective, directory)


# === The search folder ===

_SEARCH_FILE = "search.json"
# What a search writes into its folder (and `overwrite` removes).
_SEARCH_OUTPUTS = (_SEARCH_FILE, "oracle", "trials", "best.json", "best")


def _prepare_search_folder(directory, identity, overwrite):
    """A search folder behaves like a run folder: the same search resumes,
    another is refused unless `overwrite`, which replaces it.

    `search.json` records the search (recipe, space, objective, algorithm,
    trials, seed, shared config).
    """
    import shutil

    from kerasft import _io

    identity = _io.to_jsonable(identity)
    path = os.path.join(directory, _SEARCH_FILE)
    if overwrite:
        for name in _SEARCH_OUTPUTS:
            target = os.path.join(directory, name)
            if os.path.isdir(target):
                shutil.rmtree(target)
            elif os.path.exists(target):
                os.remove(target)
    elif os.path.exists(path):
        try:
            with open(path, encoding="utf-8") as f:
                previous = json.load(f)
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(
                f"{path!r} cannot be read ({e}). Pass "
                f"{_io.argument('overwrite', True)} to start the search afresh."
            ) from None
        changed = sorted(k for k in set(previous) | set(identity)
                         if previous.get(k) != identity.get(k))
        if changed:
            raise ValueError(
                f"Search folder {directory!r} holds another search (it differs "
                f"in: {changed}). Pass {_io.argument('overwrite', True)} to "
                "replace it, or choose another folder."
            )
        return
    elif os.path.isdir(os.path.join(directory, "oracle")):
        raise ValueError(
            f"Search folder {directory!r} holds a search without its "
            f"{_SEARCH_FILE}. Pass {_io.argument('overwrite', True)} to replace "
            "it, or choose another folder."
        )
    os.makedirs(directory, exist_ok=True)
    _io.write_json(path, identity)


# === Objectives ===

_CLASSIFICATION = (
    "loss", "accuracy", r"top\d+_accuracy", "precision", "recall", "f1",
    "macro_f1", "subset_accuracy", "roc_auc", "mse", "rmse", "mae", "r2",
    r"(precision|recall|f1|roc_auc)/.+",
)
# The metric names (regexes, without the `val_`/`test_`/`train_` prefix)
# each run-folder format writes to `metrics.json`.
METRICS = {
    "image_classification": _CLASSIFICATION,
    "text_classification": _CLASSIFICATION,
    "video_classification": _CLASSIFICATION,
    "object_detection": (
        "loss", r"\w+_loss", "mean_iou", "accuracy", "map", r"map\d+",
        r"map_\w+", r"mar\d+", r"mar_\w+", r"ap50/.+", r"ap_.+",
    ),
    "segmentation": (
        "loss", "pixel_accuracy", "mean_iou", "dice", "mean_dice",
        r"(iou|dice)[/_].+",
    ),
    "image_captioning": ("loss", r"bleu\w*", r"rouge\w*", r"cider\w*",
                         "accuracy", "token_accuracy"),
    "question_answering": ("loss", r"\w+_loss", "exact_match", "f1",
                           r"(has_ans|no_ans|best)_\w+"),
    "token_classification": ("loss", "precision", "recall", "f1", "accuracy",
                             r"(precision|recall|f1)/.+"),
    "seq2seq": ("loss", "bleu", "exact_match", r"rouge\w+", r"beam_\w+"),
    "causal_lm": ("loss", "perplexity"),
}


def check_objective(recipe, objective):
    """Refuses an `objective` that the recipe's `metrics.json` never holds,
    before any trial trains.

    Args:
        recipe: a recipe name or function.
        objective: e.g. `"val_accuracy"`.
    """
    import re

    from kerasft.recipes import registry

    entry = (registry.of_function(recipe) if callable(recipe)
             else registry.get(recipe))
    if entry is None:  # a function of your own: its metrics are unknown
        return
    patterns = METRICS[entry.task]
    match = re.fullmatch(r"(val|test|train)_(.+)", str(objective))
    if match and any(re.fullmatch(p, match.group(2)) for p in patterns):
        return
    plain = [p for p in patterns if re.fullmatch(r"\w+", p)]
    known = [f"val_{p}" for p in plain]
    close = difflib.get_close_matches(str(objective), known, n=1)
    raise ValueError(
        f"`objective` {objective!r} is not a metric the {entry.name} recipe "
        f"writes. Expected val_, test_ or train_ and a metric name, e.g. "
        f"{', '.join(known)}." + (f" Did you mean {close[0]!r}?" if close else "")
    )


def _result(tuner, base, search_space, objective, directory):
    trials = []
    for trial_id in tuner.oracle.start_order:
        trial = tuner.oracle.trials[trial_id]
        score = trial.metrics.get_best_value(objective) if trial.metrics.exists(
            objective) else None
        trials.append({
            "trial_id": trial_id,
            "values": decode_values(trial.hyperparameters.values, search_space),
            "score": score,
            "status": str(trial.status),
        })
    best = tuner.oracle.get_best_trials(1)
    if not best:
        raise ValueError(
            f"No trial finished with a value of {objective!r}; see the trial "
            f"runs under {tuner.runs_dir}."
        )
    best = best[0]
    config = {**tuner.trial_config(best),
              "output_dir": os.path.join(os.fspath(directory), "best")}
    path = os.path.join(os.fspath(directory), "best.json")
    with open(path, "w") as f:
        json.dump(config, f, indent=2, default=str)
    return TuneResult(
        best_values=decode_values(best.hyperparameters.values, search_space),
        best_score=best.metrics.get_best_value(objective),
        best_config=config,
        best_config_path=path,
        trials=trials,
        directory=os.fspath(directory),
    )
