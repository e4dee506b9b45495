"""Frozen dataclass configs shared by the recipe functions, CLI and scripts.

Every field carries its `help` text in the field metadata, so the CLI builds
one `--flag` per field (and `--help` documents every option) from the config
class itself. Configs round-trip through `to_dict`/`from_dict` and load from
JSON or YAML files (YAML needs PyYAML).

Data fields (`train`, `validation`, `test`) and `backbone` hold strings in
files and on the command line; in Python they may also hold a
`tf.data.Dataset`, `(x, y)` arrays or a `Backbone`. `to_dict` describes such
objects (shape and a content digest for arrays), so `config.json` records
what the run used and a changed input is noticed when resuming.
"""

import dataclasses
import hashlib
import json
import os
import typing

__all__ = ["RecipeConfig", "describe", "field", "load_config_file"]


def field(default, help, choices=None, cli=True):
    """A dataclass field with its CLI help text (and optional choices)."""
    metadata = {"help": help, "choices": choices, "cli": cli}
    if isinstance(default, (dict, list)):
        return dataclasses.field(
            default_factory=lambda: type(default)(default), metadata=metadata
        )
    return dataclasses.field(default=default, metadata=metadata)


def describe(value):
    """Plain JSON data describing a config value (objects summarized)."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, dict):
        return {str(k): describe(v) for k, v in value.items()}
    if isinstance(value, tuple) and value and all(
        hasattr(v, "shape") and hasattr(v, "dtype") for v in value
    ):
        return {"arrays": [_array_summary(v) for v in value]}
    if isinstance(value, (list, tuple)):
        return [describe(v) for v in value]
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return {"arrays": [_array_summary(value)]}
    if hasattr(value, "extended") and hasattr(value, "num_replicas_in_sync"):
        return {"strategy": type(value).__name__}
    if hasattr(value, "element_spec"):
        return {"dataset": str(value.element_spec)}
    if hasattr(value, "groups") and hasattr(value, "model"):
        return {
            "backbone": value.name,
            "groups": list(value.group_names),
            "params": int(value.model.count_params()),
        }
    if hasattr(value, "get_config"):
        return {"object": type(value).__name__, "config": value.get_config()}
    return {"object": repr(value)}


def _array_summary(array):
    import numpy as np

    array = np.asarray(array)
    digest = hashlib.sha1(np.ascontiguousarray(array).tobytes()).hexdigest()
    return {
        "shape": list(array.shape),
        "dtype": str(array.dtype),
        "sha1": digest[:16],
    }


def load_config_file(path):
    """Reads a JSON or YAML (`.yaml`/`.yml`, needs PyYAML) config file."""
    if not os.path.exists(path):
        raise ValueError(f"Config file {path!r} does not exist.")
    with open(path) as f:
        text = f.read()
    if path.endswith((".yaml", ".yml")):
        try:
            import yaml
        except ImportError:
            raise ValueError(
                f"Reading {path!r} needs PyYAML (`pip install pyyaml`); or "
                "write the config as JSON."
            ) from None
        data = yaml.safe_load(text)
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"Config file {path!r} is not JSON: {e}") from None
    if not isinstance(data, dict):
        raise ValueError(
            f"Config file {path!r} must hold a mapping of option names to "
            f"values. Received: {type(data).__name__}"
        )
    return data


@dataclasses.dataclass(frozen=True)
class RecipeConfig:
    """Options every recipe shares. Subclasses add their task's options."""

    output_dir: str = field(
        "kerasft_run",
        "Folder for metrics.json, history.csv, model.keras, plots, "
        "TensorBoard logs, config.json and the resume backup.",
    )
    epochs: int = field(10, "Total training epochs (all stages).")
    batch_size: int = field(
        32,
        "Batch size per replica; the pipeline uses batch_size x replicas.",
    )
    learning_rate: float = field(
        1e-3, "Base learning rate (the head's rate), before replica scaling."
    )
    lr_scaling: str = field(
        "linear",
        "How the learning rate grows with the replica count: linear "
        "(x replicas), sqrt (x sqrt(replicas)) or none.",
        choices=("linear", "sqrt", "none"),
    )
    strategy: str = field(
        "auto",
        "Distribution strategy: auto, tpu, mirrored, multiworker or default "
        "(in Python also a tf.distribute.Strategy).",
        choices=("auto", "tpu", "mirrored", "multiworker", "default"),
    )
    precision: str = field(
        "auto",
        "Keras dtype policy: auto (mixed_bfloat16 on TPU and bf16 CPUs, "
        "mixed_float16 on recent GPUs, else float32) or a policy name.",
        choices=("auto", "float32", "mixed_float16", "mixed_bfloat16"),
    )
    early_stopping: typing.Optional[int] = field(
        None,
        "Stop after this many epochs without val_loss improvement and "
        "restore the best weights; none disables it.",
    )
    seed: int = field(0, "Random seed (weights, shuffling, dropout).")
    verbose: int = field(1, "0 silent, 1 progress bars, 2 one line per epoch.")

    def __post_init__(self):
        self._validate()

    # === Validation ===

    def _validate(self):
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(
                    f"`{name}` must be a positive integer. Received: "
                    f"{name}={value!r}"
                )
        if not isinstance(self.learning_rate, (int, float)) or not (
            self.learning_rate > 0
        ):
            raise ValueError(
                "`learning_rate` must be a positive number. Received: "
                f"learning_rate={self.learning_rate!r}"
            )
        for f in dataclasses.fields(self):
            choices = f.metadata.get("choices")
            value = getattr(self, f.name)
            if choices and isinstance(value, str) and value not in choices:
                raise ValueError(
                    f"`{f.name}` must be one of {tuple(choices)}. Received: "
                    f"{f.name}={value!r}"
                )
        for name in ("early_stopping",):
            value = getattr(self, name)
            if value is not None and (
                not isinstance(value, int) or isinstance(value, bool) or value < 1
            ):
                raise ValueError(
                    f"`{name}` must be a positive integer or None. "
                    f"Received: {name}={value!r}"
                )

    # === Conversion ===

    def to_dict(self):
        """Plain JSON data (objects such as datasets summarized)."""
        return {
            f.name: describe(getattr(self, f.name))
            for f in dataclasses.fields(self)
        }

    @classmethod
    def field_names(cls):
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, data):
        """Builds a config from a dict; unknown keys are an error."""
        if not isinstance(data, dict):
            raise TypeError(
                f"`{cls.__name__}.from_dict` needs a dict. Received: {data!r}"
            )
        known = cls.field_names()
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ValueError(
                f"Unknown {cls.__name__} option(s) {unknown}. Known options: "
                f"{known}"
            )
        kwargs = {}
        hints = typing.get_type_hints(cls)
        for key, value in data.items():
            kwargs[key] = _coerce(value, hints.get(key))
        return cls(**kwargs)

    @classmethod
    def from_file(cls, path, **overrides):
        """Loads a JSON/YAML config file; `overrides` win over the file."""
        data = load_config_file(path)
        data.update(overrides)
        return cls.from_dict(data)

    def replace(self, **changes):
        """A copy with some fields changed (validated again)."""
        unknown = sorted(set(changes) - set(self.field_names()))
        if unknown:
            raise ValueError(
                f"Unknown {type(self).__name__} option(s) {unknown}. Known "
                f"options: {self.field_names()}"
            )
        return dataclasses.replace(self, **changes)


def _coerce(value, hint):
    """JSON lists back to tuples for tuple-typed fields."""
    origin = typing.get_origin(hint)
    if origin is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        return _coerce(value, args[0]) if len(args) == 1 else value
    if (hint is tuple or origin is tuple) and isinstance(value, list):
        return tuple(value)
    return value


def resolve_config(config_class, config=None, **kwargs):
    """A recipe's config from a config object, dict, file path and/or kwargs.

    Keyword arguments override the values in `config`.
    """
    if config is None:
        return config_class(**_check_keys(config_class, kwargs))
    if isinstance(config, (str, os.PathLike)):
        return config_class.from_file(os.fspath(config), **kwargs)
    if isinstance(config, dict):
        return config_class.from_dict({**config, **kwargs})
    if isinstance(config, RecipeConfig):
        data = {
            f.name: getattr(config, f.name)
            for f in dataclasses.fields(config)
            if f.name in config_class.field_names()
        }
        if type(config) is not config_class:
            extra = sorted(set(config.field_names()) - set(config_class.field_names()))
            if extra:
                raise TypeError(
                    f"A {type(config).__name__} cannot configure this recipe "
                    f"(it needs {config_class.__name__}; extra options {extra})."
                )
        data.update(_check_keys(config_class, kwargs))
        return config_class(**data)
    raise TypeError(
        f"`config` must be a {config_class.__name__}, a dict or a path to a "
        f"JSON/YAML file. Received: config={config!r}"
    )


def _check_keys(config_class, kwargs):
    unknown = sorted(set(kwargs) - set(config_class.field_names()))
    if unknown:
        raise TypeError(
            f"Unknown {config_class.__name__} option(s) {unknown}. Known "
            f"options: {config_class.field_names()}"
        )
    return kwargs
